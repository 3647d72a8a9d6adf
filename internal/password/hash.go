package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Default Argon2id parameters: the OWASP minimum configuration.
const (
	DefaultMemory  uint32 = 19456 // KiB (19 MiB)
	DefaultTime    uint32 = 2
	DefaultThreads uint8  = 1
	DefaultSaltLen uint32 = 16
	DefaultKeyLen  uint32 = 32
)

// Limits on Argon2id parameters. They apply both to the parameters a
// [Hasher] is built with and to the parameters read from stored hashes, so
// that every hash this package makes can also be verified, and so that a
// corrupted stored hash cannot make [Hasher.Verify] exhaust memory or CPU.
const (
	MaxMemory  uint32 = 1 << 20 // KiB (1 GiB)
	MaxTime    uint32 = 100
	MinSaltLen uint32 = 8
	MaxSaltLen uint32 = 64
	MinKeyLen  uint32 = 16
	MaxKeyLen  uint32 = 64
)

// maxInputBytes bounds the size of a password given to Hash and Verify, so
// that a caller cannot be made to normalise and hash megabytes of input.
// It is far above MaxLength runes in any encoding form.
const maxInputBytes = 4096

const (
	algorithm = "argon2id"
	// dummyPassword is hashed by NewHasher; its value does not matter.
	dummyPassword = "deadbolt dummy password for timing equalisation"
)

var (
	// ErrMalformedHash is returned (wrapped) by [Hasher.Verify] when the
	// stored hash is not a well-formed Argon2id PHC string.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrUnsupportedHash is returned (wrapped) by [Hasher.Verify] when the
	// stored hash uses another algorithm or version, or parameters outside
	// the limits ([MaxMemory], [MaxTime], ...).
	ErrUnsupportedHash = errors.New("password: unsupported hash")
)

// Params are the Argon2id parameters.
type Params struct {
	Memory  uint32 // memory in KiB
	Time    uint32 // number of passes
	Threads uint8  // degree of parallelism
	SaltLen uint32 // salt length in bytes
	KeyLen  uint32 // hash (tag) length in bytes
}

// DefaultParams returns the default parameters: m=19456 KiB, t=2, p=1,
// a 16-byte salt and a 32-byte key (the OWASP minimum for Argon2id).
func DefaultParams() Params {
	return Params{
		Memory:  DefaultMemory,
		Time:    DefaultTime,
		Threads: DefaultThreads,
		SaltLen: DefaultSaltLen,
		KeyLen:  DefaultKeyLen,
	}
}

// String returns the configuration form of p, such as
// "argon2id:m=19456,t=2,p=1", which [ParseParams] accepts. The salt and key
// lengths are not part of it.
func (p Params) String() string {
	return fmt.Sprintf("%s:m=%d,t=%d,p=%d", algorithm, p.Memory, p.Time, p.Threads)
}

// Validate reports whether p is within the limits: 1 <= Threads,
// 8*Threads <= Memory <= [MaxMemory], 1 <= Time <= [MaxTime],
// [MinSaltLen] <= SaltLen <= [MaxSaltLen] and [MinKeyLen] <= KeyLen <= [MaxKeyLen].
func (p Params) Validate() error {
	switch {
	case p.Threads < 1:
		return errors.New("parallelism p must be between 1 and 255")
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("time t=%d must be between 1 and %d", p.Time, MaxTime)
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("memory m=%d KiB must be at least 8*p = %d KiB", p.Memory, 8*uint32(p.Threads))
	case p.Memory > MaxMemory:
		return fmt.Errorf("memory m=%d KiB must be at most %d KiB (1 GiB)", p.Memory, MaxMemory)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("salt length %d must be between %d and %d bytes", p.SaltLen, MinSaltLen, MaxSaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("key length %d must be between %d and %d bytes", p.KeyLen, MinKeyLen, MaxKeyLen)
	}
	return nil
}

// ParseParams parses the configuration form of the hashing parameters,
// "argon2id:m=<KiB>,t=<passes>,p=<threads>" (the --password-hash flag), for
// example "argon2id:m=19456,t=2,p=1". All three fields are required, each
// once, in any order. The salt and key lengths are the defaults. The result
// is checked with [Params.Validate].
func ParseParams(s string) (Params, error) {
	p, err := parseParams(s)
	if err != nil {
		return Params{}, fmt.Errorf("password: invalid hash parameters %q (want e.g. %q): %w", s, DefaultParams().String(), err)
	}
	return p, nil
}

func parseParams(s string) (Params, error) {
	alg, fields, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Params{}, errors.New(`missing "argon2id:" prefix`)
	}
	if alg != algorithm {
		return Params{}, fmt.Errorf("unsupported algorithm %q: only %s is supported", alg, algorithm)
	}
	m, t, par, err := parseMTP(fields, false)
	if err != nil {
		return Params{}, err
	}
	p := Params{Memory: m, Time: t, Threads: par, SaltLen: DefaultSaltLen, KeyLen: DefaultKeyLen}
	if err := p.Validate(); err != nil {
		return Params{}, err
	}
	return p, nil
}

// parseMTP parses "m=..,t=..,p=..". With strict set (stored hashes), the
// order must be m, t, p as in the PHC format.
func parseMTP(s string, strict bool) (m, t uint32, p uint8, err error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("want 3 fields m, t and p, got %d", len(parts))
	}
	var seen [3]bool
	for i, part := range parts {
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return 0, 0, 0, fmt.Errorf("field %d: want key=value", i+1)
		}
		var idx, bits int
		switch key {
		case "m":
			idx, bits = 0, 32
		case "t":
			idx, bits = 1, 32
		case "p":
			idx, bits = 2, 8
		default:
			return 0, 0, 0, fmt.Errorf("unknown field %q", key)
		}
		if seen[idx] {
			return 0, 0, 0, fmt.Errorf("duplicate field %q", key)
		}
		if strict && idx != i {
			return 0, 0, 0, errors.New("fields must be in the order m, t, p")
		}
		seen[idx] = true
		n, perr := strconv.ParseUint(val, 10, bits)
		if perr != nil {
			return 0, 0, 0, fmt.Errorf("field %q: %q is not a number in range", key, val)
		}
		switch idx {
		case 0:
			m = uint32(n)
		case 1:
			t = uint32(n)
		case 2:
			p = uint8(n)
		}
	}
	return m, t, p, nil
}

// Hasher hashes and verifies passwords with Argon2id. It is safe for
// concurrent use. Each hash or verification allocates Params.Memory KiB, so
// callers should bound the number of concurrent calls (for example with
// rate limiting).
type Hasher struct {
	params Params
	dummy  string // hash of dummyPassword with params, for VerifyDummy
}

// NewHasher returns a Hasher that makes new hashes with p. A zero SaltLen or
// KeyLen is replaced by the default. NewHasher computes one hash (the dummy
// hash used by [Hasher.VerifyDummy]), so it takes as long as [Hasher.Hash].
// It panics if p is invalid (see [Params.Validate]); parameters from
// [ParseParams] or [DefaultParams] are always valid.
func NewHasher(p Params) *Hasher {
	if p.SaltLen == 0 {
		p.SaltLen = DefaultSaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = DefaultKeyLen
	}
	if err := p.Validate(); err != nil {
		panic("password: NewHasher: invalid parameters: " + err.Error())
	}
	h := &Hasher{params: p}
	dummy, err := h.Hash(dummyPassword)
	if err != nil {
		panic("password: NewHasher: " + err.Error())
	}
	h.dummy = dummy
	return h
}

// Params returns the parameters h uses for new hashes.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC-encoded Argon2id hash of the NFC-normalised
// password with a fresh random salt, such as
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (salt and hash in
// unpadded standard base64). It returns an error if the password is longer
// than 4096 bytes.
func (h *Hasher) Hash(password string) (string, error) {
	if len(password) > maxInputBytes {
		return "", fmt.Errorf("password: input longer than %d bytes", maxInputBytes)
	}
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	key := derive(password, salt, h.params)
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches the encoded hash made by
// [Hasher.Hash]. The Argon2id parameters are read from encoded, not taken
// from h, so hashes made with older parameters still verify. The comparison
// is in constant time. A malformed hash is an error wrapping
// [ErrMalformedHash]; a hash with another algorithm, version or parameters
// outside the limits is an error wrapping [ErrUnsupportedHash] and is
// refused without computing anything. A password longer than 4096 bytes
// does not match.
func (h *Hasher) Verify(password, encoded string) (ok bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > maxInputBytes {
		return false, nil
	}
	got := derive(password, salt, p)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// VerifyDummy does the same work as [Hasher.Verify] with the current
// parameters, against a dummy hash, and discards the result. Call it when no
// account matches the submitted identifier, so that an unknown account
// takes as long to refuse as a wrong password.
func (h *Hasher) VerifyDummy(password string) {
	_, _ = h.Verify(password, h.dummy)
}

// NeedsRehash reports whether encoded was made with parameters (memory,
// time, threads, salt or key length) other than h's, in which case the
// caller should store a new hash after verifying the password. It also
// reports true for hashes that cannot be parsed.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, _, err := decode(encoded)
	return err != nil || p != h.params
}

func derive(password string, salt []byte, p Params) []byte {
	pw := []byte(norm.NFC.String(password))
	return argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s",
		algorithm, argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC string made by encode and checks its parameters
// against the limits. Errors never include the salt or hash.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	malformed := func(msg string) error { return fmt.Errorf("%w: %s", ErrMalformedHash, msg) }

	if len(encoded) > 512 {
		return Params{}, nil, nil, malformed("too long")
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return Params{}, nil, nil, malformed("want $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	if parts[1] != algorithm {
		return Params{}, nil, nil, fmt.Errorf("%w: algorithm %q, want %s", ErrUnsupportedHash, parts[1], algorithm)
	}
	verStr, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return Params{}, nil, nil, malformed("missing version")
	}
	ver, verr := strconv.ParseUint(verStr, 10, 32)
	if verr != nil {
		return Params{}, nil, nil, malformed("bad version")
	}
	if ver != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("%w: version %d, want %d", ErrUnsupportedHash, ver, argon2.Version)
	}
	m, t, par, perr := parseMTP(parts[3], true)
	if perr != nil {
		return Params{}, nil, nil, malformed("parameters: " + perr.Error())
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, serr := b64.DecodeString(parts[4])
	if serr != nil {
		return Params{}, nil, nil, malformed("salt is not unpadded base64")
	}
	key, kerr := b64.DecodeString(parts[5])
	if kerr != nil {
		return Params{}, nil, nil, malformed("hash is not unpadded base64")
	}
	p = Params{Memory: m, Time: t, Threads: par, SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.Validate(); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedHash, err.Error())
	}
	return p, salt, key, nil
}
