package password

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// small keeps the tests fast.
var small = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestDefaultParams(t *testing.T) {
	want := Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if diff := cmp.Diff(want, DefaultParams()); diff != "" {
		t.Errorf("DefaultParams() mismatch (-want +got):\n%s", diff)
	}
	if got, want := DefaultParams().String(), "argon2id:m=19456,t=2,p=1"; got != want {
		t.Errorf("DefaultParams().String() = %q, want %q", got, want)
	}
}

func TestParseParams(t *testing.T) {
	p := func(m, tm uint32, th uint8) Params {
		return Params{Memory: m, Time: tm, Threads: th, SaltLen: 16, KeyLen: 32}
	}
	tests := []struct {
		in      string
		want    Params
		wantErr bool
	}{
		{in: "argon2id:m=19456,t=2,p=1", want: DefaultParams()},
		{in: "  argon2id:m=19456,t=2,p=1\n", want: DefaultParams()},
		{in: "argon2id:m=65536,t=3,p=4", want: p(65536, 3, 4)},
		{in: "argon2id:t=2,p=1,m=19456", want: DefaultParams()},
		{in: "argon2id:m=8,t=1,p=1", want: p(8, 1, 1)},
		{in: "argon2id:m=2040,t=1,p=255", want: p(2040, 1, 255)},
		{in: "argon2id:m=1048576,t=100,p=1", want: p(1048576, 100, 1)},
		// Missing fields.
		{in: "", wantErr: true},
		{in: "argon2id", wantErr: true},
		{in: "argon2id:", wantErr: true},
		{in: "argon2id:m=19456,t=2", wantErr: true},
		{in: "argon2id:m=19456,p=1", wantErr: true},
		{in: "argon2id:m=19456,t=2,p=", wantErr: true},
		{in: "argon2id:m=19456,t=2,p", wantErr: true},
		{in: "argon2id:m=19456,t=2,t=2", wantErr: true},
		{in: "argon2id:m=19456,t=2,p=1,x=3", wantErr: true},
		{in: "argon2id:m=19456,t=2,x=1", wantErr: true},
		// Non-numeric.
		{in: "argon2id:m=lots,t=2,p=1", wantErr: true},
		{in: "argon2id:m=19456,t=two,p=1", wantErr: true},
		{in: "argon2id:m=19456,t=2,p=1.5", wantErr: true},
		{in: "argon2id:m=-1,t=2,p=1", wantErr: true},
		{in: "argon2id:m=19 456,t=2,p=1", wantErr: true},
		// Zero.
		{in: "argon2id:m=0,t=2,p=1", wantErr: true},
		{in: "argon2id:m=19456,t=0,p=1", wantErr: true},
		{in: "argon2id:m=19456,t=2,p=0", wantErr: true},
		// Out of range.
		{in: "argon2id:m=7,t=1,p=1", wantErr: true},
		{in: "argon2id:m=31,t=1,p=4", wantErr: true},
		{in: "argon2id:m=1048577,t=2,p=1", wantErr: true},
		{in: "argon2id:m=4294967295,t=2,p=1", wantErr: true},
		{in: "argon2id:m=4294967296,t=2,p=1", wantErr: true},
		{in: "argon2id:m=19456,t=101,p=1", wantErr: true},
		{in: "argon2id:m=19456,t=2,p=256", wantErr: true},
		// Wrong algorithm.
		{in: "argon2i:m=19456,t=2,p=1", wantErr: true},
		{in: "argon2d:m=19456,t=2,p=1", wantErr: true},
		{in: "ARGON2ID:m=19456,t=2,p=1", wantErr: true},
		{in: "bcrypt:cost=12", wantErr: true},
		{in: "scrypt:n=32768,r=8,p=1", wantErr: true},
		{in: "m=19456,t=2,p=1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseParams(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseParams(%q) = %+v, nil; want error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseParams(%q): got error %v, want nil", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseParams(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
		// String gives back a form that parses to the same value.
		again, err := ParseParams(got.String())
		if err != nil || again != got {
			t.Errorf("ParseParams(%q) = %+v, %v; want %+v, nil", got.String(), again, err, got)
		}
	}
}

func TestNewHasherPanicsOnInvalidParams(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("NewHasher(Memory: 0): got no panic, want panic")
		}
	}()
	NewHasher(Params{Memory: 0, Time: 1, Threads: 1})
}

func TestNewHasherFillsLengths(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Time: 1, Threads: 1})
	if got, want := h.Params(), small; got != want {
		t.Errorf("Params() = %+v, want %+v", got, want)
	}
}

func TestHashVerify(t *testing.T) {
	h := NewHasher(small)
	const pw = "correct horse battery staple 42"
	enc, err := h.Hash(pw)
	if err != nil {
		t.Fatalf("Hash: got error %v, want nil", err)
	}
	if want := "$argon2id$v=19$m=64,t=1,p=1$"; !strings.HasPrefix(enc, want) {
		t.Errorf("Hash = %q, want prefix %q", enc, want)
	}
	parts := strings.Split(enc, "$")
	if got, want := len(parts), 6; got != want {
		t.Fatalf("Hash has %d $-separated parts, want %d", got, want)
	}
	if got, want := len(parts[4]), 22; got != want { // 16 bytes, unpadded
		t.Errorf("salt length = %d chars, want %d", got, want)
	}
	if got, want := len(parts[5]), 43; got != want { // 32 bytes, unpadded
		t.Errorf("hash length = %d chars, want %d", got, want)
	}

	for _, tt := range []struct {
		pw   string
		want bool
	}{
		{pw, true},
		{"correct horse battery staple 43", false},
		{"Correct horse battery staple 42", false},
		{pw + " ", false},
		{"", false},
		{strings.Repeat("x", 5000), false},
	} {
		ok, err := h.Verify(tt.pw, enc)
		if err != nil || ok != tt.want {
			t.Errorf("Verify(%.20q...) = %v, %v; want %v, nil", tt.pw, ok, err, tt.want)
		}
	}

	// Fresh salt each time.
	enc2, err := h.Hash(pw)
	if err != nil {
		t.Fatalf("Hash: got error %v, want nil", err)
	}
	if enc2 == enc {
		t.Errorf("Hash twice gave the same encoding %q, want different salts", enc)
	}
	if h.NeedsRehash(enc) {
		t.Errorf("NeedsRehash(own hash) = true, want false")
	}
}

func TestHashTooLong(t *testing.T) {
	h := NewHasher(small)
	if _, err := h.Hash(strings.Repeat("x", 5000)); err == nil {
		t.Errorf("Hash(5000 bytes): got nil error, want error")
	}
}

func TestHashVerifyDefault(t *testing.T) {
	h := NewHasher(DefaultParams())
	enc, err := h.Hash("tr0ub4dor&3 is not good enough")
	if err != nil {
		t.Fatalf("Hash: got error %v, want nil", err)
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(enc, want) {
		t.Errorf("Hash = %q, want prefix %q", enc, want)
	}
	if ok, err := h.Verify("tr0ub4dor&3 is not good enough", enc); !ok || err != nil {
		t.Errorf("Verify(right password) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := h.Verify("tr0ub4dor&3 is not good enougH", enc); ok || err != nil {
		t.Errorf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
	h.VerifyDummy("anything")
}

// TestKnownVectors checks against hashes made by the reference
// implementation's command-line tool (argon2 saltsaltsaltsalt -id -t 1
// -k 64 -p 1 -l 32 -e).
func TestKnownVectors(t *testing.T) {
	h := NewHasher(small)
	tests := []struct {
		pw, enc string
		want    bool
	}{
		{"password", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + knownKey, true},
		{"passwore", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + knownKey, false},
		// "café" with U+00E9; the decomposed form must match it.
		{"caf\u00e9", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$ZkfOIIJBENdrIbj5T6qSAnot2/BQRDtPKDmDkWOIDkc", true},
		{"cafe\u0301", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$ZkfOIIJBENdrIbj5T6qSAnot2/BQRDtPKDmDkWOIDkc", true},
		// The reference hash of the decomposed bytes is never produced or matched.
		{"cafe\u0301", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$x4Xw+2W9JaX/fp4Y3YGdVPL/wl/d3KVPAGgZURNvAPY", false},
	}
	for _, tt := range tests {
		ok, err := h.Verify(tt.pw, tt.enc)
		if err != nil || ok != tt.want {
			t.Errorf("Verify(%q, %q) = %v, %v; want %v, nil", tt.pw, tt.enc, ok, err, tt.want)
		}
	}
}

func TestNFC(t *testing.T) {
	h := NewHasher(small)
	precomposed := "caf\u00e9 au lait, s'il vous pla\u00eet" // é, î
	combining := "cafe\u0301 au lait, s'il vous plai\u0302t" // e + U+0301, i + U+0302
	if precomposed == combining {
		t.Fatal("test strings are equal; want different byte sequences")
	}
	enc, err := h.Hash(precomposed)
	if err != nil {
		t.Fatalf("Hash: got error %v, want nil", err)
	}
	if ok, err := h.Verify(combining, enc); !ok || err != nil {
		t.Errorf("Verify(combining, hash(precomposed)) = %v, %v; want true, nil", ok, err)
	}
	enc, err = h.Hash(combining)
	if err != nil {
		t.Fatalf("Hash: got error %v, want nil", err)
	}
	if ok, err := h.Verify(precomposed, enc); !ok || err != nil {
		t.Errorf("Verify(precomposed, hash(combining)) = %v, %v; want true, nil", ok, err)
	}
	// Rules count the normalised form too.
	const decomposed = "cafe\u0301 bleu" // 10 runes, 9 after NFC
	if err := Check(decomposed, 9); err != nil {
		t.Errorf("Check(%q, 9) = %v, want nil", decomposed, err)
	}
	checkReason(t, Check(decomposed, 10), "must be at least 10 characters")
}

func TestParamsFromStoredHash(t *testing.T) {
	a := NewHasher(small)
	b := NewHasher(Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 8, KeyLen: 16})
	enc, err := a.Hash("it is stored with params a")
	if err != nil {
		t.Fatalf("Hash: got error %v, want nil", err)
	}
	if ok, err := b.Verify("it is stored with params a", enc); !ok || err != nil {
		t.Errorf("B.Verify(hash by A) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := b.Verify("it is stored with params b", enc); ok || err != nil {
		t.Errorf("B.Verify(wrong password, hash by A) = %v, %v; want false, nil", ok, err)
	}
	if !b.NeedsRehash(enc) {
		t.Errorf("B.NeedsRehash(hash by A) = false, want true")
	}
	if a.NeedsRehash(enc) {
		t.Errorf("A.NeedsRehash(hash by A) = true, want false")
	}
	encB, err := b.Hash("x")
	if err != nil {
		t.Fatalf("Hash: got error %v, want nil", err)
	}
	if want := "$argon2id$v=19$m=128,t=2,p=2$"; !strings.HasPrefix(encB, want) {
		t.Errorf("B.Hash = %q, want prefix %q", encB, want)
	}
	if !a.NeedsRehash(encB) {
		t.Errorf("A.NeedsRehash(hash by B) = false, want true")
	}

	// Only the salt or key length differs.
	c := NewHasher(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 32})
	if !c.NeedsRehash(enc) {
		t.Errorf("NeedsRehash(hash with other salt length) = false, want true")
	}
}

const (
	goodSalt = "c2FsdHNhbHRzYWx0c2FsdA"                      // 16 bytes
	knownKey = "Wb9DOLKUgwlL5fjad9tfCPU0SBAo0PEY/evJRhwtUR0" // see TestKnownVector
)

func TestVerifyMalformed(t *testing.T) {
	h := NewHasher(small)
	tests := []struct {
		name, enc string
		want      error
	}{
		{"empty", "", ErrMalformedHash},
		{"garbage", "not a hash", ErrMalformedHash},
		{"dollars only", "$$$$$", ErrUnsupportedHash},
		{"too few parts", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt, ErrMalformedHash},
		{"too many parts", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + knownKey + "$", ErrMalformedHash},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + knownKey + "$x", ErrMalformedHash},
		{"bcrypt", "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", ErrMalformedHash},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + goodSalt + "$" + knownKey, ErrUnsupportedHash},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + goodSalt + "$" + knownKey, ErrUnsupportedHash},
		{"no version", "$argon2id$m=64,t=1,p=1$" + goodSalt + "$" + knownKey + "$x", ErrMalformedHash},
		{"bad version", "$argon2id$v=x$m=64,t=1,p=1$" + goodSalt + "$" + knownKey, ErrMalformedHash},
		{"missing p", "$argon2id$v=19$m=64,t=1$" + goodSalt + "$" + knownKey, ErrMalformedHash},
		{"order", "$argon2id$v=19$t=1,m=64,p=1$" + goodSalt + "$" + knownKey, ErrMalformedHash},
		{"non-numeric m", "$argon2id$v=19$m=x,t=1,p=1$" + goodSalt + "$" + knownKey, ErrMalformedHash},
		{"negative t", "$argon2id$v=19$m=64,t=-1,p=1$" + goodSalt + "$" + knownKey, ErrMalformedHash},
		{"p overflow", "$argon2id$v=19$m=64,t=1,p=256$" + goodSalt + "$" + knownKey, ErrMalformedHash},
		{"m overflow", "$argon2id$v=19$m=4294967296,t=1,p=1$" + goodSalt + "$" + knownKey, ErrMalformedHash},
		{"zero t", "$argon2id$v=19$m=64,t=0,p=1$" + goodSalt + "$" + knownKey, ErrUnsupportedHash},
		{"zero p", "$argon2id$v=19$m=64,t=1,p=0$" + goodSalt + "$" + knownKey, ErrUnsupportedHash},
		{"m < 8p", "$argon2id$v=19$m=16,t=1,p=4$" + goodSalt + "$" + knownKey, ErrUnsupportedHash},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + knownKey, ErrMalformedHash},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "==$" + knownKey, ErrMalformedHash},
		{"salt url alphabet", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + strings.NewReplacer("+", "-", "/", "_").Replace(knownKey), ErrMalformedHash},
		{"salt empty", "$argon2id$v=19$m=64,t=1,p=1$$" + knownKey, ErrUnsupportedHash},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + knownKey, ErrUnsupportedHash},
		{"hash empty", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$", ErrUnsupportedHash},
		{"hash too short", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$c2FsdA", ErrUnsupportedHash},
		{"hash truncated base64", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + knownKey[:len(knownKey)-1], ErrMalformedHash},
		{"too long", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + strings.Repeat("A", 1000), ErrMalformedHash},
		{"nul", "$argon2id$v=19$m=64,t=1,p=1\x00$" + goodSalt + "$" + knownKey, ErrMalformedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify("password", tt.enc)
			if ok || !errors.Is(err, tt.want) {
				t.Errorf("Verify(%q) = %v, %v; want false, %v", tt.enc, ok, err, tt.want)
			}
			if !h.NeedsRehash(tt.enc) {
				t.Errorf("NeedsRehash(%q) = false, want true", tt.enc)
			}
		})
	}
}

func TestVerifyRefusesAbsurdParams(t *testing.T) {
	h := NewHasher(small)
	tests := []string{
		"$argon2id$v=19$m=1048577,t=1,p=1$" + goodSalt + "$" + knownKey, // > 1 GiB
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + goodSalt + "$" + knownKey,
		"$argon2id$v=19$m=64,t=101,p=1$" + goodSalt + "$" + knownKey,
		"$argon2id$v=19$m=64,t=4294967295,p=1$" + goodSalt + "$" + knownKey,
		"$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 88) + "$" + knownKey, // 66-byte salt
		"$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + strings.Repeat("A", 88), // 66-byte key
	}
	for _, enc := range tests {
		// This would take minutes and gigabytes if it were computed.
		ok, err := h.Verify("password", enc)
		if ok || !errors.Is(err, ErrUnsupportedHash) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrUnsupportedHash", enc, ok, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	h := NewHasher(small)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + knownKey)
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, enc string) {
		// Must not panic, and must not accept absurd parameters.
		p, _, _, err := decode(enc)
		if err == nil && (p.Memory > 4096 || p.Time > 4) {
			return // valid but too slow to run in a fuzz loop
		}
		_, _ = h.Verify("password", enc)
	})
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		pw     string
		minLen int
		want   string // reason; "" means OK
	}{
		{"empty", "", MinLength, "must be at least 15 characters"},
		{"14 chars", "purple tiger 7", MinLength, "must be at least 15 characters"},
		{"15 chars", "purple tiger 77", MinLength, ""},
		{"8 chars with 2FA", "gR8t-owl", MinLengthWith2FA, ""},
		{"7 chars with 2FA", "gR8t-ow", MinLengthWith2FA, "must be at least 8 characters"},
		{"8 chars without 2FA", "gR8t-owl", MinLength, "must be at least 15 characters"},
		{"minLen below 8 is raised", "gR8t-ow", 4, "must be at least 8 characters"},
		{"256 runes", strings.Repeat("a few words ", 21) + "last", MinLength, ""},
		{"257 runes", strings.Repeat("a few words ", 21) + "last!", MinLength, "must be at most 256 characters"},
		{"256 multi-byte runes", strings.Repeat("ключ ", 51) + "ж", MinLength, ""},
		{"257 multi-byte runes", strings.Repeat("ключ ", 51) + "жж", MinLength, "must be at most 256 characters"},
		{"multi-byte runes count as one (15)", "日本語のパスワードはとても長いです", MinLength, ""},
		{"multi-byte runes count as one (14)", "ключ от двери!", MinLength, "must be at least 15 characters"},
		{"emoji count as one", "🔑🔒🚪🐕🐈🦉🌵🍄", MinLengthWith2FA, ""},
		{"spaces are fine", "  a b c d e f g h  ", MinLength, ""},
		{"no composition rules", "all lower case words here", MinLength, ""},
		{"blocklisted", "passwordpassword", MinLength, reasonCommon},
		{"blocklisted upper case", "PASSWORDPASSWORD", MinLength, reasonCommon},
		{"blocklisted mixed case", "ILoveYouILoveYou", MinLength, reasonCommon},
		{"blocklisted keyboard walk", "qwertyuiopasdfgh", MinLength, reasonCommon},
		{"blocklisted keyboard walk 19", "QwertyuiopAsdfghjkl", MinLength, reasonCommon},
		{"blocklisted short with 2FA", "letmein1", MinLengthWith2FA, reasonCommon},
		{"blocklisted phrase", "Correct Horse Battery Staple", MinLength, reasonCommon},
		{"blocklisted with suffix", "Password12345!", MinLengthWith2FA, reasonDerived},
		{"blocklisted with prefix and suffix", "!!iloveyou2024", MinLengthWith2FA, reasonDerived},
		{"blocklisted with repeated suffix", "sunshine!!!!!!!!", MinLength, reasonDerived},
		{"blocklisted with sequential suffix", "dragon123456789", MinLength, reasonDerived},
		{"blocklisted with digit word", "trustno1!!", MinLengthWith2FA, reasonDerived},
		{"blocklisted word with long random suffix", "monkey!8302957146", MinLength, ""},
		{"repeated char", "aaaaaaaaaaaaaaaa", MinLength, reasonRepeatedOne},
		{"repeated char mixed case", "aAaAaAaAaAaAaAaA", MinLength, reasonRepeatedOne},
		{"repeated space", strings.Repeat(" ", 20), MinLength, reasonRepeatedOne},
		{"repeated multi-byte", strings.Repeat("ж", 15), MinLength, reasonRepeatedOne},
		{"repeated pattern", "ab1ab1ab1ab1ab1ab1", MinLength, reasonRepeated},
		{"repeated 7-rune pattern", "xk3!pq9xk3!pq9", MinLengthWith2FA, reasonRepeated},
		{"repeated 8-rune pattern", "xk3!pq9zxk3!pq9z", MinLength, ""},
		{"sequence", "abcdefghijklmnopq", MinLength, reasonSequence},
		{"sequence digits wrapping", "7890123456789012", MinLength, reasonSequence},
		{"sequence descending", "ZYXWVUTSRQPONMLK", MinLength, reasonSequence},
		{"control tab", "purple\ttiger elephant", MinLength, reasonControl},
		{"control newline", "purple tiger\nelephant", MinLength, reasonControl},
		{"control NUL", "purple tiger\x00elephant", MinLength, reasonControl},
		{"control DEL", "purple tiger\x7felephant", MinLength, reasonControl},
		{"control C1", "purple tiger\u0085elephant", MinLength, reasonControl},
		{"line separator", "purple tiger\u2028elephant", MinLength, reasonControl},
		{"invalid UTF-8", "purple tiger \xff\xfe elephant", MinLength, reasonInvalidUTF8},
		{"invalid UTF-8 short", "\xc3", MinLength, reasonInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "256 runes" || tt.name == "256 multi-byte runes" {
				if n := utf8.RuneCountInString(tt.pw); n != 256 {
					t.Fatalf("test password has %d runes, want 256", n)
				}
			}
			checkReason(t, Check(tt.pw, tt.minLen), tt.want)
		})
	}
}

func TestCheckWithContext(t *testing.T) {
	ctx := []string{"Jane.Doe@Example.com", "janedoe77", "Deadbolt", "", "Jo"}
	tests := []struct {
		name string
		pw   string
		want string
	}{
		{"unrelated", "purple tiger elephant", ""},
		{"equal to email", "jane.doe@example.com", reasonContext},
		{"equal to email upper case", "JANE.DOE@EXAMPLE.COM", reasonContext},
		{"contains email local part", "my name is jane.doe!", reasonContext},
		{"contains first name", "purple tiger jane", reasonContext},
		{"contains surname", "XXDOEXX elephant", ""}, // "doe" is shorter than 4
		{"contains domain word", "i work at example co", reasonContext},
		{"contains account name", "Janedoe77 forever and ever", reasonContext},
		{"contains service name", "my deadbolt password", reasonContext},
		{"short context word ignored", "jo jo jo purple tiger", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkReason(t, CheckWithContext(tt.pw, MinLength, ctx...), tt.want)
		})
	}
	// Without context, the same passwords are fine.
	if err := Check("my name is jane.doe!", MinLength); err != nil {
		t.Errorf("Check(without context) = %v, want nil", err)
	}
}

func checkReason(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("got error %v, want nil", err)
		}
		return
	}
	var re *RuleError
	if !errors.As(err, &re) {
		t.Fatalf("got error %v (%T), want *RuleError with reason %q", err, err, want)
	}
	if re.Reason != want {
		t.Errorf("got reason %q, want %q", re.Reason, want)
	}
	if got, wantErr := err.Error(), "password "+want; got != wantErr {
		t.Errorf("got Error() %q, want %q", got, wantErr)
	}
}

// TestErrorsDoNotContainPassword checks every kind of error against
// passwords that carry a distinctive marker.
func TestErrorsDoNotContainPassword(t *testing.T) {
	const marker = "zebra"
	ctx := []string{"zebra@example.com"}
	bad := []string{
		marker,                                  // too short
		marker + strings.Repeat("q", 300),       // too long
		marker + "\t tabbed and long enough",    // control
		marker + "\xff invalid and long enough", // invalid UTF-8
		"a zebra is not a horse",                // context
		strings.Repeat(marker, 4),               // repeated pattern
		"zebrazebrazebra!!!",                    // not blocked, but context
		"Password123!",                          // blocked, derived
		"iloveyouiloveyou",                      // blocked
		"qwertyuiopasdfghjkl",                   // blocked
		"abcdefghijklmnop",                      // sequence
		strings.Repeat("Z", 20),                 // repeated char
	}
	for _, pw := range bad {
		err := CheckWithContext(pw, MinLength, ctx...)
		if err == nil {
			t.Errorf("CheckWithContext(%q): got nil, want error", pw)
			continue
		}
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(pw)) ||
			strings.Contains(strings.ToLower(err.Error()), marker) {
			t.Errorf("CheckWithContext: got error %q, want one not containing the password", err)
		}
	}

	// Hashing errors do not contain the password or the stored hash.
	h := NewHasher(small)
	for _, enc := range []string{
		"$argon2id$v=19$m=64,t=1,p=1$zebrazebra!$" + knownKey,
		"$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$zebrazebra!",
		"$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$zebrazebrazebrazebrazebrazebra",
		"$argon2id$v=19$m=99999999,t=1,p=1$zebrazebrazebrazebra$" + knownKey,
	} {
		_, err := h.Verify("zebra crossing at night", enc)
		if err == nil {
			t.Errorf("Verify(%q): got nil error, want error", enc)
			continue
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("Verify: got error %q, want one not containing the password or hash", err)
		}
	}
	if _, err := h.Hash(marker + strings.Repeat("!", 5000)); err == nil || strings.Contains(err.Error(), marker) {
		t.Errorf("Hash(too long): got error %v, want an error not containing the password", err)
	}
}

func TestBlocklist(t *testing.T) {
	m := blocklist()
	if got, min := len(m), 300; got < min {
		t.Errorf("blocklist has %d entries, want at least %d", got, min)
	}
	var long8, long15 int
	for line := range strings.Lines(blocklistText) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line != strings.ToLower(line) || line != strings.TrimSpace(line) {
			t.Errorf("blocklist entry %q: want lower case without surrounding space", line)
		}
		if n := utf8.RuneCountInString(line); n >= 15 {
			long15++
		} else if n >= 8 {
			long8++
		}
	}
	if long8 < 100 || long15 < 20 {
		t.Errorf("blocklist has %d entries of 8..14 runes and %d of >= 15, want >= 100 and >= 20", long8, long15)
	}
	for _, pw := range []string{
		"password", "123456789012345", "1234567890123456", "qwertyuiopasdfgh",
		"qwertyuiopasdfghjkl", "passwordpassword", "iloveyouiloveyou", "iloveyou",
		"letmein", "welcome", "12345678", "12345678901234567890", "abcdefghijklmnop",
	} {
		if !blocked(pw) {
			t.Errorf("blocked(%q) = false, want true", pw)
		}
	}
}

func BenchmarkHashDefault(b *testing.B) {
	h := NewHasher(DefaultParams())
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := NewHasher(DefaultParams())
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := h.Verify("correct horse battery staple", enc); !ok || err != nil {
			b.Fatalf("Verify = %v, %v; want true, nil", ok, err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	for b.Loop() {
		_ = CheckWithContext("purple tiger elephant", MinLength, "jane.doe@example.com")
	}
}
