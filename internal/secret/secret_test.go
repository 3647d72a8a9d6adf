package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Fixed test keys, so that error messages can be checked for key material.
var (
	testHMAC = bytes.Repeat([]byte{0x11}, KeySize)
	testK1   = bytes.Repeat([]byte{0x22}, KeySize)
	testK2   = bytes.Repeat([]byte{0x33}, KeySize)

	b64HMAC = base64.StdEncoding.EncodeToString(testHMAC)
	b64K1   = base64.StdEncoding.EncodeToString(testK1)
	b64K2   = base64.StdEncoding.EncodeToString(testK2)
)

func mustGenerate(t testing.TB) *Keyring {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatalf("Generate() error = %v", err)
	}
	return k
}

func mustParse(t testing.TB, s string) *Keyring {
	t.Helper()
	k, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	return k
}

// blobKeyID returns the key id recorded in a sealed blob.
func blobKeyID(t *testing.T, sealed []byte) string {
	t.Helper()
	if len(sealed) < 2 || len(sealed) < 2+int(sealed[1]) {
		t.Fatalf("sealed blob too short: %d bytes", len(sealed))
	}
	return string(sealed[2 : 2+int(sealed[1])])
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustGenerate(t)
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"empty plaintext, nil aad", nil, nil},
		{"empty plaintext", []byte{}, []byte("factors.secret/1/2")},
		{"totp seed", []byte("JBSWY3DPEHPK3PXP"), []byte("factors.secret/42/7")},
		{"binary", []byte{0, 1, 2, 255, 0}, []byte{0}},
		{"large", bytes.Repeat([]byte("x"), 1<<16), bytes.Repeat([]byte("a"), 300)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := k.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatalf("Seal() error = %v", err)
			}
			if got, want := len(sealed), len(tt.plaintext)+2+len("k1")+nonceSize+tagSize; got != want {
				t.Errorf("len(sealed) = %d, want %d", got, want)
			}
			if got, want := sealed[0], byte(1); got != want {
				t.Errorf("version byte = %d, want %d", got, want)
			}
			if got, want := blobKeyID(t, sealed), "k1"; got != want {
				t.Errorf("key id in blob = %q, want %q", got, want)
			}
			if len(tt.plaintext) > 0 && bytes.Contains(sealed, tt.plaintext) {
				t.Errorf("sealed data contains the plaintext")
			}
			got, err := k.Open(sealed, tt.aad)
			if err != nil {
				t.Fatalf("Open() error = %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open() = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	k := mustGenerate(t)
	a, err := k.Seal([]byte("same"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Seal([]byte("same"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two seals of the same plaintext are identical: got equal, want different")
	}
}

func TestOpenWrongAAD(t *testing.T) {
	k := mustGenerate(t)
	sealed, err := k.Seal([]byte("seed"), []byte("factors.secret/1/2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, aad := range [][]byte{
		nil,
		[]byte(""),
		[]byte("factors.secret/1/3"),
		[]byte("factors.secret/2/2"),
		[]byte("factors.secret/1/2 "),
		[]byte("factors.secret/1/"),
		// The header is part of the authenticated data; make sure moving
		// bytes between it and the caller's AAD does not help.
		append([]byte("\x01\x02k1"), "factors.secret/1/2"...),
	} {
		got, err := k.Open(sealed, aad)
		if !errors.Is(err, ErrOpen) {
			t.Errorf("Open(aad %q) = %q, %v; want error %v", aad, got, err, ErrOpen)
		}
	}
}

func TestOpenTampered(t *testing.T) {
	k := mustGenerate(t)
	aad := []byte("factors.secret/1/2")
	sealed, err := k.Seal([]byte("a secret value"), aad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(sealed)
			bad[i] ^= flip
			if got, err := k.Open(bad, aad); err == nil {
				t.Errorf("Open(byte %d ^ %#x) = %q, nil; want an error", i, flip, got)
			}
		}
	}
	// Appending a byte must fail too.
	if got, err := k.Open(append(bytes.Clone(sealed), 0), aad); err == nil {
		t.Errorf("Open(sealed + 1 byte) = %q, nil; want an error", got)
	}
	// The original still opens: Open must not have modified its input.
	if _, err := k.Open(sealed, aad); err != nil {
		t.Errorf("Open(original) error = %v, want nil", err)
	}
}

func TestOpenTruncated(t *testing.T) {
	k := mustGenerate(t)
	aad := []byte("factors.secret/1/2")
	for _, pt := range [][]byte{nil, []byte("x"), []byte("a longer secret value")} {
		sealed, err := k.Seal(pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(sealed) {
			got, err := k.Open(sealed[:n], aad)
			if err == nil {
				t.Errorf("Open(first %d of %d bytes) = %q, nil; want an error", n, len(sealed), got)
			}
		}
	}
}

func TestOpenGarbage(t *testing.T) {
	k := mustGenerate(t)
	tests := []struct {
		name   string
		sealed []byte
		want   error
	}{
		{"nil", nil, ErrOpen},
		{"version 0", append([]byte{0, 2, 'k', '1'}, make([]byte, 40)...), ErrOpen},
		{"version 2", append([]byte{2, 2, 'k', '1'}, make([]byte, 40)...), ErrOpen},
		{"empty key id", append([]byte{1, 0}, make([]byte, 40)...), ErrOpen},
		{"key id too long", append([]byte{1, 33}, make([]byte, 80)...), ErrOpen},
		{"key id length 255, short", []byte{1, 255, 'k'}, ErrOpen},
		{"all zero", make([]byte, 64), ErrOpen},
		{"all 0xff", bytes.Repeat([]byte{0xff}, 64), ErrOpen},
		{"right shape, zero body", append([]byte{1, 2, 'k', '1'}, make([]byte, 40)...), ErrOpen},
		{"unknown key id", append([]byte{1, 2, 'k', '9'}, make([]byte, 40)...), ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Open(tt.sealed, nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open() = %q, %v; want error %v", got, err, tt.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	k := mustGenerate(t)
	aad := []byte("factors.secret/1/2")
	old, err := k.Seal([]byte("old secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := blobKeyID(t, old), "k1"; got != want {
		t.Fatalf("key id of first seal = %q, want %q", got, want)
	}

	if err := k.AddKey("k2"); err != nil {
		t.Fatalf("AddKey(k2) error = %v", err)
	}
	if got, want := k.PrimaryID(), "k2"; got != want {
		t.Errorf("PrimaryID() = %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(k.KeyIDs()), "[k1 k2]"; got != want {
		t.Errorf("KeyIDs() = %s, want %s", got, want)
	}

	// Go through the key file, as a restart after rotation would.
	k2, err := Parse(k.Marshal())
	if err != nil {
		t.Fatalf("Parse(Marshal()) error = %v", err)
	}
	for name, kr := range map[string]*Keyring{"in memory": k, "reloaded": k2} {
		t.Run(name, func(t *testing.T) {
			got, err := kr.Open(old, aad)
			if err != nil {
				t.Fatalf("Open(old blob) error = %v", err)
			}
			if want := "old secret"; string(got) != want {
				t.Errorf("Open(old blob) = %q, want %q", got, want)
			}
			sealed, err := kr.Seal([]byte("new secret"), aad)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := blobKeyID(t, sealed), "k2"; got != want {
				t.Errorf("key id of new seal = %q, want %q", got, want)
			}
			if got, err := kr.Open(sealed, aad); err != nil || string(got) != "new secret" {
				t.Errorf("Open(new blob) = %q, %v; want %q, nil", got, err, "new secret")
			}
		})
	}

	// A keyring that only has the old key cannot open the new data.
	onlyOld, err := Parse([]byte(strings.Join(strings.Split(string(k.Marshal()), "\n")[:5], "\n")))
	if err != nil {
		t.Fatalf("Parse(without k2) error = %v", err)
	}
	sealed, err := k.Seal([]byte("new"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := onlyOld.Open(sealed, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open(k2 blob) with only k1 = %q, %v; want error %v", got, err, ErrUnknownKey)
	}
	// The hmac key survives rotation.
	if got, want := k2.Hash("tok"), k.Hash("tok"); !Equal(got, want) {
		t.Errorf("Hash after reload = %x, want %x", got, want)
	}
}

func TestAddKeyErrors(t *testing.T) {
	k := mustGenerate(t)
	for _, id := range []string{"", "k1", "has space", "semi;colon", "ümlaut", strings.Repeat("a", 33)} {
		if err := k.AddKey(id); err == nil {
			t.Errorf("AddKey(%q) = nil, want an error", id)
		}
	}
	if err := k.AddKey(strings.Repeat("a", 32)); err != nil {
		t.Errorf("AddKey(32 chars) = %v, want nil", err)
	}
	if err := k.AddKey("A-z_9"); err != nil {
		t.Errorf("AddKey(A-z_9) = %v, want nil", err)
	}
}

func TestUnknownKeyID(t *testing.T) {
	a := mustParse(t, "hmac "+b64HMAC+"\naes k1 "+b64K1+"\n")
	b := mustParse(t, "hmac "+b64HMAC+"\naes other "+b64K1+"\n")
	sealed, err := a.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open(sealed, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open() = %q, %v; want error %v", got, err, ErrUnknownKey)
	}
}

func TestSameIDDifferentKey(t *testing.T) {
	a := mustParse(t, "hmac "+b64HMAC+"\naes k1 "+b64K1+"\n")
	b := mustParse(t, "hmac "+b64HMAC+"\naes k1 "+b64K2+"\n")
	sealed, err := a.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open(sealed, nil); !errors.Is(err, ErrOpen) {
		t.Errorf("Open() = %q, %v; want error %v", got, err, ErrOpen)
	}
}

func TestParse(t *testing.T) {
	const hdr = "# deadbolt key file\n"
	valid := []struct {
		name    string
		file    string
		wantIDs string
	}{
		{"minimal", "hmac " + b64HMAC + "\naes k1 " + b64K1 + "\n", "[k1]"},
		{"no trailing newline", "hmac " + b64HMAC + "\naes k1 " + b64K1, "[k1]"},
		{"comments, blanks, CRLF, tabs", hdr + "\r\n  # indented comment\r\nhmac\t" + b64HMAC + "\r\n\r\naes  old   " + b64K1 + "  \r\n", "[old]"},
		{"two keys, last is primary", hdr + "aes a " + b64K1 + "\nhmac " + b64HMAC + "\naes b " + b64K2 + "\n", "[a b]"},
		{"UTF-8 BOM", "\uFEFFhmac " + b64HMAC + "\naes k1 " + b64K1 + "\n", "[k1]"},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse([]byte(tt.file))
			if err != nil {
				t.Fatalf("Parse() error = %v, want nil", err)
			}
			if got := fmt.Sprint(k.KeyIDs()); got != tt.wantIDs {
				t.Errorf("KeyIDs() = %s, want %s", got, tt.wantIDs)
			}
			ids := k.KeyIDs()
			if got, want := k.PrimaryID(), ids[len(ids)-1]; got != want {
				t.Errorf("PrimaryID() = %q, want %q", got, want)
			}
		})
	}

	short := base64.StdEncoding.EncodeToString(testK1[:31])
	long := base64.StdEncoding.EncodeToString(append(bytes.Clone(testK1), 0x22))
	unpadded := base64.RawStdEncoding.EncodeToString(testK1)
	urlKey := base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, KeySize))
	// Non-canonical: same length as a valid key but with nonzero padding bits.
	nonCanonical := b64K1[:42] + "j="
	invalid := []struct {
		name    string
		file    string
		wantErr string // substring of the error
	}{
		{"empty", "", "no hmac line"},
		{"only comments", hdr + "\n# nothing\n", "no hmac line"},
		{"missing hmac", hdr + "aes k1 " + b64K1 + "\n", "no hmac line"},
		{"missing aes", hdr + "hmac " + b64HMAC + "\n", "no aes line"},
		{"two hmac lines", "hmac " + b64HMAC + "\nhmac " + b64K2 + "\naes k1 " + b64K1 + "\n", "line 2: second hmac line (first on line 1)"},
		{"duplicate id", "hmac " + b64HMAC + "\naes k1 " + b64K1 + "\naes k1 " + b64K2 + "\n", `line 3: duplicate key id "k1" (also on line 2)`},
		{"duplicate key", "hmac " + b64HMAC + "\naes a " + b64K1 + "\naes b " + b64K1 + "\n", "line 3: aes key \"b\" is the same as the key on line 2"},
		{"aes key equals hmac key", "hmac " + b64K1 + "\naes a " + b64K1 + "\n", "line 2: aes key \"a\" is the same as the key on line 1"},
		{"bad base64 hmac", "hmac " + b64HMAC[:40] + "!!!=\naes k1 " + b64K1 + "\n", "line 1: hmac key: not valid standard base64"},
		{"bad base64 aes", "hmac " + b64HMAC + "\n\naes k1 *" + b64K1[1:] + "\n", "line 3: aes key \"k1\": not valid standard base64"},
		{"url base64", "hmac " + b64HMAC + "\naes k1 " + urlKey + "\n", "line 2: aes key \"k1\": not valid standard base64"},
		{"unpadded base64", "hmac " + b64HMAC + "\naes k1 " + unpadded + "\n", "line 2: aes key \"k1\": not valid standard base64"},
		{"non-canonical base64", "hmac " + b64HMAC + "\naes k1 " + nonCanonical + "\n", "line 2: aes key \"k1\": not valid standard base64"},
		{"short key", "hmac " + b64HMAC + "\naes k1 " + short + "\n", "line 2: aes key \"k1\": wrong length: want 32 bytes (44 base64 characters), got 31 bytes"},
		{"long key", "hmac " + b64HMAC + "\naes k1 " + long + "\n", "got 33 bytes"},
		{"short hmac", "hmac " + short + "\naes k1 " + b64K1 + "\n", "line 1: hmac key: wrong length"},
		{"unknown directive", "hmac " + b64HMAC + "\naes k1 " + b64K1 + "\nrsa k2 " + b64K2 + "\n", "line 3: unknown directive"},
		{"bare key", hdr + b64K2 + "\nhmac " + b64HMAC + "\naes k1 " + b64K1 + "\n", "line 2: unknown directive"},
		{"uppercase directive", "HMAC " + b64HMAC + "\naes k1 " + b64K1 + "\n", "line 1: unknown directive"},
		{"aes missing id", "hmac " + b64HMAC + "\naes " + b64K1 + "\n", "line 2: want \"aes <key id> <base64 key>\" (3 fields), got 2 fields"},
		{"aes fields swapped", "hmac " + b64HMAC + "\naes " + b64K2 + " k1\n", "line 2: invalid key id"},
		{"aes extra field", "hmac " + b64HMAC + "\naes k1 " + b64K1 + " " + b64K2 + "\n", "line 2: want \"aes <key id> <base64 key>\" (3 fields), got 4 fields"},
		{"hmac extra field", "hmac k0 " + b64HMAC + "\naes k1 " + b64K1 + "\n", "line 1: want \"hmac <base64 key>\" (2 fields), got 3 fields"},
		{"hmac no key", "hmac\naes k1 " + b64K1 + "\n", "line 1: want \"hmac <base64 key>\" (2 fields), got 1 fields"},
		{"id too long", "hmac " + b64HMAC + "\naes " + strings.Repeat("k", 33) + " " + b64K1 + "\n", "line 2: invalid key id"},
		{"id bad char", "hmac " + b64HMAC + "\naes k.1 " + b64K1 + "\n", "line 2: invalid key id"},
		{"trailing comment", "hmac " + b64HMAC + " # the hmac key\naes k1 " + b64K1 + "\n", "line 1: want \"hmac <base64 key>\" (2 fields), got 6 fields"},
	}
	secrets := []string{b64HMAC, b64K1, b64K2, short, long, unpadded, urlKey, nonCanonical, b64HMAC[:40], b64K1[1:]}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse([]byte(tt.file))
			if err == nil {
				t.Fatalf("Parse() = %v, nil; want error containing %q", k, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse() error = %q, want it to contain %q", err, tt.wantErr)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s[:16]) {
					t.Errorf("Parse() error = %q, contains key material %q", err, s[:16])
				}
			}
		})
	}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	k := mustGenerate(t)
	if err := k.AddKey("k2"); err != nil {
		t.Fatal(err)
	}
	data := k.Marshal()
	if want := "# deadbolt key file: keep it secret, back it up; losing it makes stored secrets unreadable\n"; !bytes.HasPrefix(data, []byte(want)) {
		t.Errorf("Marshal() starts %q, want prefix %q", data[:min(len(data), len(want))], want)
	}
	k2, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal()) error = %v", err)
	}
	if got, want := k2.Marshal(), data; !bytes.Equal(got, want) {
		t.Errorf("Marshal(Parse(Marshal())) =\n%s\nwant\n%s", got, want)
	}
	if got, want := k2.Hash("x"), k.Hash("x"); !Equal(got, want) {
		t.Errorf("Hash() after round trip = %x, want %x", got, want)
	}
	for _, pair := range [][2]*Keyring{{k, k2}, {k2, k}} {
		sealed, err := pair[0].Seal([]byte("v"), []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := pair[1].Open(sealed, []byte("aad")); err != nil || string(got) != "v" {
			t.Errorf("Open() across round trip = %q, %v; want %q, nil", got, err, "v")
		}
	}

	// A fixed file marshals back to its exact keys.
	fixed := mustParse(t, "hmac "+b64HMAC+"\naes a "+b64K1+"\naes b "+b64K2+"\n")
	wantBody := "hmac " + b64HMAC + "\naes a " + b64K1 + "\naes b " + b64K2 + "\n"
	if got := string(fixed.Marshal()); !strings.HasSuffix(got, "\n"+wantBody) {
		t.Errorf("Marshal() =\n%s\nwant it to end with\n%s", got, wantBody)
	}
}

func TestStringHidesKeys(t *testing.T) {
	k := mustParse(t, "hmac "+b64HMAC+"\naes a "+b64K1+"\naes b "+b64K2+"\n")
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		got := fmt.Sprintf(format, k)
		for _, s := range []string{b64HMAC, b64K1, b64K2, strings.Repeat("11", 16), strings.Repeat("22", 16), strings.Repeat("33", 16), "[17 17", "[34 34"} {
			if strings.Contains(got, s) {
				t.Errorf("Sprintf(%q, k) = %q, contains key material %q", format, got, s)
			}
		}
		if !strings.Contains(got, "b") {
			t.Errorf("Sprintf(%q, k) = %q, want it to mention the primary key id", format, got)
		}
	}
}

func TestLoadFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permissions")
	}
	dir := t.TempDir()
	content := []byte("hmac " + b64HMAC + "\naes k1 " + b64K1 + "\n")

	tests := []struct {
		name    string
		mode    os.FileMode
		wantErr string // "" for success
	}{
		{"0600", 0o600, ""},
		{"0400", 0o400, ""},
		{"0644", 0o644, "chmod 600"},
		{"0640", 0o640, "chmod 600"},
		{"0604", 0o604, "chmod 600"},
		{"0620", 0o620, "chmod 600"},
		{"0601", 0o601, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "keys-"+tt.name)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			k, err := LoadFile(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadFile() error = %v, want nil", err)
				}
				if got, want := k.PrimaryID(), "k1"; got != want {
					t.Errorf("PrimaryID() = %q, want %q", got, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadFile() error = %v, want error containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("LoadFile() error = %q, want it to name the file %q", err, path)
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		_, err := LoadFile(filepath.Join(dir, "nope"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("LoadFile(missing) error = %v, want %v", err, os.ErrNotExist)
		}
	})
	t.Run("directory", func(t *testing.T) {
		sub := filepath.Join(dir, "sub")
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFile(sub); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadFile(dir) error = %v, want error containing %q", err, "not a regular file")
		}
	})
	t.Run("bad content", func(t *testing.T) {
		path := filepath.Join(dir, "bad")
		if err := os.WriteFile(path, []byte("hmac "+b64HMAC+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), "no aes line") || !strings.Contains(err.Error(), path) {
			t.Errorf("LoadFile(bad) error = %v, want error containing %q and the path", err, "no aes line")
		}
	})
}

func TestCreateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deadbolt.keys")
	k, err := CreateFile(path)
	if err != nil {
		t.Fatalf("CreateFile() error = %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("file mode = %04o, want %04o", got, want)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := data, k.Marshal(); !bytes.Equal(got, want) {
		t.Errorf("file content =\n%s\nwant\n%s", got, want)
	}

	loaded, err := LoadFile(path)
	if err != nil {
		t.Fatalf("LoadFile(created) error = %v", err)
	}
	if got, want := loaded.Hash("x"), k.Hash("x"); !Equal(got, want) {
		t.Errorf("Hash() from loaded file = %x, want %x", got, want)
	}
	sealed, err := k.Seal([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := loaded.Open(sealed, nil); err != nil || string(got) != "v" {
		t.Errorf("Open() with loaded file = %q, %v; want %q, nil", got, err, "v")
	}

	// A second CreateFile must not overwrite the keys.
	if _, err := CreateFile(path); !errors.Is(err, os.ErrExist) {
		t.Errorf("CreateFile(existing) error = %v, want %v", err, os.ErrExist)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, data) {
		t.Errorf("CreateFile(existing) changed the file")
	}

	if _, err := CreateFile(filepath.Join(dir, "no-such-dir", "keys")); err == nil {
		t.Errorf("CreateFile(missing dir) = nil error, want an error")
	}
}

func TestGenerate(t *testing.T) {
	a, b := mustGenerate(t), mustGenerate(t)
	if got, want := a.PrimaryID(), "k1"; got != want {
		t.Errorf("PrimaryID() = %q, want %q", got, want)
	}
	if bytes.Equal(a.Marshal(), b.Marshal()) {
		t.Errorf("two Generate() calls gave the same keys")
	}
	if a.hmacKey == a.keySet().primary.key {
		t.Errorf("Generate() hmac key equals aes key")
	}
}

func TestHash(t *testing.T) {
	a := mustParse(t, "hmac "+b64HMAC+"\naes k1 "+b64K1+"\n")
	a2 := mustParse(t, "hmac "+b64HMAC+"\naes other "+b64K2+"\n")
	b := mustParse(t, "hmac "+b64K2+"\naes k1 "+b64K1+"\n")

	for _, token := range []string{"", "123456", "dbs_ABCDEFGHIJKLMNOPQRSTUVWXYZ", strings.Repeat("x", 5000)} {
		h := a.Hash(token)
		if got, want := len(h), 32; got != want {
			t.Errorf("len(Hash(%.10q)) = %d, want %d", token, got, want)
		}
		if got, want := a.Hash(token), h; !Equal(got, want) {
			t.Errorf("Hash(%.10q) second call = %x, want %x", token, got, want)
		}
		if got, want := a2.Hash(token), h; !Equal(got, want) {
			t.Errorf("Hash(%.10q) with same hmac key, other aes keys = %x, want %x", token, got, want)
		}
		if got := b.Hash(token); Equal(got, h) {
			t.Errorf("Hash(%.10q) with a different hmac key = %x, want something else", token, got)
		}
	}
	if Equal(a.Hash("123456"), a.Hash("123457")) {
		t.Errorf("Hash(123456) == Hash(123457), want different")
	}
	// The result must not alias pooled state.
	h1 := a.Hash("one")
	want := bytes.Clone(h1)
	a.Hash("two")
	if !bytes.Equal(h1, want) {
		t.Errorf("earlier Hash result changed to %x after another call, want %x", h1, want)
	}
	// Known answer: HMAC-SHA-256 with key 32×0x11 of "123456".
	if got, want := fmt.Sprintf("%x", a.Hash("123456")), knownHMAC(t); got != want {
		t.Errorf("Hash(123456) = %s, want %s", got, want)
	}
}

// knownHMAC computes the expected value independently of the pool.
func knownHMAC(t *testing.T) string {
	t.Helper()
	k := mustParse(t, "hmac "+b64HMAC+"\naes k1 "+b64K1+"\n")
	h := k.hashers.New().(*hasher).mac
	h.Write([]byte("123456"))
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestConcurrentUse(t *testing.T) {
	k := mustGenerate(t)
	want := fmt.Sprintf("%x", k.Hash("token"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if got := fmt.Sprintf("%x", k.Hash("token")); got != want {
					t.Errorf("Hash() = %s, want %s", got, want)
					return
				}
				aad := fmt.Appendf(nil, "owner/%d/%d", g, i)
				sealed, err := k.Seal(aad, aad)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := k.Open(sealed, aad); err != nil || !bytes.Equal(got, aad) {
					t.Errorf("Open() = %q, %v; want %q, nil", got, err, aad)
					return
				}
				if g == 0 && i%50 == 0 {
					if err := k.AddKey(fmt.Sprintf("r%d", i)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if got, want := len(k.KeyIDs()), 5; got != want {
		t.Errorf("len(KeyIDs()) = %d, want %d", got, want)
	}
}

func TestZeroKeyring(t *testing.T) {
	var k Keyring
	if _, err := k.Seal([]byte("x"), nil); err == nil {
		t.Errorf("zero Keyring Seal() error = nil, want an error")
	}
	if _, err := k.Open([]byte("x"), nil); err == nil {
		t.Errorf("zero Keyring Open() error = nil, want an error")
	}
	if err := k.AddKey("k2"); err == nil {
		t.Errorf("zero Keyring AddKey() error = nil, want an error")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("zero Keyring Hash() did not panic, want a panic")
		}
	}()
	k.Hash("x")
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b []byte
		want bool
	}{
		{nil, nil, true},
		{nil, []byte{}, true},
		{[]byte("abc"), []byte("abc"), true},
		{[]byte("abc"), []byte("abd"), false},
		{[]byte("abc"), []byte("ab"), false},
		{[]byte{}, []byte{0}, false},
	}
	for _, tt := range tests {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNewToken(t *testing.T) {
	seen := make(map[string]bool)
	for _, prefix := range []string{"dbs_", "dbr_", ""} {
		for range 1000 {
			tok := NewToken(prefix)
			if !strings.HasPrefix(tok, prefix) {
				t.Fatalf("NewToken(%q) = %q, want prefix %q", prefix, tok, prefix)
			}
			body := tok[len(prefix):]
			if got, want := len(body), 26; got != want {
				t.Fatalf("NewToken(%q) = %q, random part has %d chars, want %d", prefix, tok, got, want)
			}
			if strings.Trim(body, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
				t.Fatalf("NewToken(%q) = %q, want base32 characters only after the prefix", prefix, tok)
			}
			if seen[body] {
				t.Fatalf("NewToken(%q) = %q, repeated", prefix, tok)
			}
			seen[body] = true
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	k := mustGenerate(b)
	pt := []byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP") // a 32-char TOTP seed
	aad := []byte("factors.secret/1234567890/42")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Seal(pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := mustGenerate(b)
	aad := []byte("factors.secret/1234567890/42")
	sealed, err := k.Seal([]byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"), aad)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(sealed, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	k := mustGenerate(b)
	token := NewToken("dbs_")
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k.Hash(token)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k.Hash(token)
			}
		})
	})
}

func TestLoadOrCreateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deadbolt.key")
	k1, created, err := LoadOrCreateFile(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateFile = %v, created %v; want a new file", err, created)
	}
	k2, created, err := LoadOrCreateFile(path)
	if err != nil || created || k2.PrimaryID() != k1.PrimaryID() || !Equal(k1.Hash("x"), k2.Hash("x")) {
		t.Errorf("second LoadOrCreateFile = %v, created %v; want the same keys loaded", err, created)
	}
}
