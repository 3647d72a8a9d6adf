// Package totp implements time-based one-time passwords (RFC 6238) as used by
// authenticator apps: HMAC-SHA-1, 6 digits, 30-second steps and 160-bit
// secrets, the combination every common app supports.
//
// # Why not pquerna/otp
//
// The usual Go library's Validate returns only a bool. It does not say which
// time step the code matched, so the caller cannot remember it, and without
// that a code seen once (over a shoulder, in a phishing proxy, in a log) can
// be replayed for as long as it stays inside the drift window. [Validate]
// here returns the matched step; RFC 6238 section 5.2 asks that a verifier
// accept each OTP only once, and the step is what makes that possible.
//
// # Drift and replay protection
//
// Clocks on phones drift and people take a while to type. [Validate] accepts
// the code of the current step and of one step either side ([Skew]), so a
// code is good for between 60 and 90 seconds. It returns the step that
// matched, and callers MUST record it and refuse any later code whose step is
// not greater than the recorded one:
//
//	step, ok := totp.Validate(secret, code, now)
//	if !ok || step <= factor.LastStep {
//		// refuse
//	}
//	factor.LastStep = step // stored atomically with the sign-in
//
// This blocks reuse of the same code and also of older codes from the
// window, once a newer one has been used.
//
// # Input
//
// [Validate] takes the code exactly as it must be: 6 ASCII digits. It does
// not normalise; callers pass user input through [Normalize] first, which
// removes the spaces and hyphens people type ("123 456", "123-456"). Anything
// else, including Unicode digits such as "١٢٣٤٥٦" or fullwidth "１２３４５６",
// is refused rather than folded.
//
// # Enrolment
//
// [NewSecret] makes a secret, [URI] makes the otpauth:// URI for the QR code
// (Google Authenticator's Key Uri Format), and [Base32] with [Grouped] gives
// the text for people who type the secret in by hand.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"hash"
	"net/url"
	"strings"
	"time"
)

const (
	// Digits is the number of digits in a code.
	Digits = 6
	// Period is the length of one time step.
	Period = 30 * time.Second
	// SecretSize is the size in bytes of the secrets NewSecret makes (160
	// bits, the size of a SHA-1 output, as RFC 4226 recommends).
	SecretSize = 20
	// Skew is how many steps either side of the current one Validate
	// accepts.
	Skew = 1
)

// periodSeconds is Period in whole seconds.
const periodSeconds = int64(Period / time.Second)

// b32 is RFC 4648 base32 without padding, the form authenticator apps expect.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a new random secret of SecretSize bytes from crypto/rand.
func NewSecret() []byte {
	s := make([]byte, SecretSize)
	// crypto/rand.Read never returns an error (it crashes the program
	// instead if the system's random source fails).
	_, _ = rand.Read(s)
	return s
}

// Step returns the time step that t falls in: Unix seconds divided by 30,
// rounded down (so times before 1970 give negative steps, each still 30
// seconds long).
func Step(t time.Time) int64 {
	// t.Unix() already rounds down to the whole second.
	s := t.Unix()
	q := s / periodSeconds
	if s%periodSeconds < 0 {
		q--
	}
	return q
}

// Code returns the 6-digit code of secret for a time step.
func Code(secret []byte, step int64) string {
	return CodeDigits(secret, step, Digits)
}

// CodeDigits returns the HOTP value (RFC 4226) of secret for the counter
// step with the given number of digits, zero-padded. digits must be 6, 7 or
// 8 (the lengths RFC 4226 allows); it panics otherwise. A negative step is
// used as its two's-complement 64-bit counter.
func CodeDigits(secret []byte, step int64, digits int) string {
	if digits < 6 || digits > 8 {
		panic("totp: digits must be 6, 7 or 8")
	}
	var buf [8]byte
	return string(appendCode(buf[:0], hmac.New(sha1.New, secret), step, digits))
}

// appendCode appends to dst the code for step of mac, an HMAC-SHA-1 keyed
// with the secret, which it resets first. Its run time does not depend on
// the secret or the value of the code.
func appendCode(dst []byte, mac hash.Hash, step int64, digits int) []byte {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	mac.Reset()
	mac.Write(msg[:])
	var sum [sha1.Size]byte
	h := mac.Sum(sum[:0])

	// Dynamic truncation (RFC 4226 section 5.3).
	off := h[len(h)-1] & 0x0f
	v := binary.BigEndian.Uint32(h[off:off+4]) & 0x7fffffff

	n := len(dst)
	for range digits {
		dst = append(dst, 0)
	}
	for i := n + digits - 1; i >= n; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

// wellFormed reports whether code is exactly Digits ASCII digits.
func wellFormed(code string) bool {
	if len(code) != Digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Validate checks code against secret at time t. It accepts the codes of
// steps Step(t)-1, Step(t) and Step(t)+1 and returns the step that matched;
// the caller must record that step and refuse any later code whose step is
// not greater (see the package documentation), because Validate itself has
// no memory and would accept the same code again.
//
// code must be exactly 6 ASCII digits; Validate does not normalise it (pass
// user input through Normalize first) and refuses anything else, as it does
// an empty secret. All three candidates are computed and compared in
// constant time, so the time taken does not tell which step matched. In the
// one-in-a-million case that two steps in the window have the same code, the
// latest of them is returned, which is the safer choice for replay
// protection.
func Validate(secret []byte, code string, t time.Time) (step int64, ok bool) {
	if len(secret) == 0 || !wellFormed(code) {
		return 0, false
	}
	now := Step(t)
	var buf [Digits]byte
	mac := hmac.New(sha1.New, secret)
	matched := 0
	var s int64
	for d := int64(-Skew); d <= Skew; d++ {
		cand := now + d
		c := appendCode(buf[:0], mac, cand, Digits)
		eq := subtle.ConstantTimeCompare(c, []byte(code))
		matched |= eq
		// s = eq ? cand : s, without a branch on eq.
		mask := -int64(eq)
		s = (cand & mask) | (s &^ mask)
	}
	if matched != 1 {
		return 0, false
	}
	return s, true
}

// Normalize turns a code as a person typed it into the form Validate takes:
// it removes ASCII spaces and hyphens ("123 456", "123-456") and then
// requires exactly 6 ASCII digits. Other characters, including tabs,
// Unicode digits and fullwidth digits, make it return "", false.
func Normalize(code string) (string, bool) {
	var b strings.Builder
	b.Grow(Digits)
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case c == ' ' || c == '-':
			continue
		case c >= '0' && c <= '9':
			if b.Len() == Digits {
				return "", false
			}
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	if b.Len() != Digits {
		return "", false
	}
	return b.String(), true
}

// Base32 returns secret in RFC 4648 base32, upper case and without padding,
// the form authenticator apps take for manual entry.
func Base32(secret []byte) string {
	return b32.EncodeToString(secret)
}

// Grouped splits a base32 secret into blocks of 4 characters separated by
// single spaces ("JBSW Y3DP EHPK 3PXP"), for reading out or typing in.
// Authenticator apps ignore the spaces.
func Grouped(secretB32 string) string {
	if len(secretB32) <= 4 {
		return secretB32
	}
	var b strings.Builder
	b.Grow(len(secretB32) + len(secretB32)/4)
	for i := 0; i < len(secretB32); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(secretB32[i:min(i+4, len(secretB32))])
	}
	return b.String()
}

// URI returns the otpauth:// URI that enrols secret in an authenticator app,
// in the Key Uri Format of Google Authenticator:
//
//	otpauth://totp/Issuer:account?secret=...&issuer=Issuer&algorithm=SHA1&digits=6&period=30
//
// Issuer and account are percent-encoded in the label and the query, spaces
// as %20 (never '+', which some apps show literally), '+' as %2B and
// non-ASCII text as UTF-8. The label uses a colon to separate issuer from account, so a colon
// in issuer is replaced by a space (in both the label and the issuer
// parameter, so that they agree); a colon in account is kept but
// percent-encoded, and apps split the label at its first colon. If issuer is
// empty the label is the account alone and there is no issuer parameter.
func URI(issuer, account string, secret []byte) string {
	issuer = strings.ReplaceAll(issuer, ":", " ")
	label := escapePath(account)
	if issuer != "" {
		label = escapePath(issuer) + ":" + label
	}
	var q strings.Builder
	q.WriteString("secret=")
	q.WriteString(Base32(secret))
	if issuer != "" {
		q.WriteString("&issuer=")
		q.WriteString(escapeQuery(issuer))
	}
	q.WriteString("&algorithm=SHA1&digits=6&period=30")
	return "otpauth://totp/" + label + "?" + q.String()
}

// pathFixer escapes the characters url.PathEscape leaves alone that would
// be misread in a label: the colon that separates issuer from account, and
// '+', which decoders of the form kind (Java's URLDecoder, say) turn into a
// space.
var pathFixer = strings.NewReplacer(":", "%3A", "+", "%2B")

// escapePath escapes s for the label, colons and plus signs included.
func escapePath(s string) string {
	return pathFixer.Replace(url.PathEscape(s))
}

// escapeQuery escapes s for a query value with spaces as %20 rather than
// '+'. A literal '+' is already escaped as %2B, so the replacement is safe.
func escapeQuery(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
