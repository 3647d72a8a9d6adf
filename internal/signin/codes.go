package signin

import (
	"crypto/rand"
	"strings"

	"github.com/deadbolt/deadbolt"
)

// recoveryAlphabet has no characters that are easy to confuse when written
// down or read aloud (no 0/o, 1/l/i): 31 symbols, so a 10-character code
// holds about 49.5 bits. Stored as keyed hashes and usable once, that is
// far beyond what the attempt limits let anyone guess.
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// newRecoveryCode returns a random code of deadbolt.RecoveryCodeLength
// characters, shown to people as two groups: "abcde-fghjk".
func newRecoveryCode() string {
	b := make([]byte, deadbolt.RecoveryCodeLength)
	// rand.Read never fails (Go 1.24+); the modulo bias is removed by
	// rejecting bytes at or above the largest multiple of the alphabet size.
	limit := byte(256 - 256%len(recoveryAlphabet))
	var buf [1]byte
	for i := 0; i < len(b); {
		rand.Read(buf[:])
		if buf[0] >= limit {
			continue
		}
		b[i] = recoveryAlphabet[int(buf[0])%len(recoveryAlphabet)]
		i++
	}
	half := deadbolt.RecoveryCodeLength / 2
	return string(b[:half]) + "-" + string(b[half:])
}

// normalizeRecoveryCode turns what a person typed into the stored form:
// lower case, without spaces or hyphens. ok is false when it cannot be a
// recovery code at all.
func normalizeRecoveryCode(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			continue
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		}
		if r > 127 || !strings.ContainsRune(recoveryAlphabet, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != deadbolt.RecoveryCodeLength {
		return "", false
	}
	return b.String(), true
}

// newRecoveryCodes returns a fresh set and the hashes to store.
func (s *Service) newRecoveryCodes() (codes []string, hashes [][]byte) {
	for range deadbolt.RecoveryCodeCount {
		c := newRecoveryCode()
		n, _ := normalizeRecoveryCode(c)
		codes = append(codes, c)
		hashes = append(hashes, s.keys.Hash(n))
	}
	return codes, hashes
}
