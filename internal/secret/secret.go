// Package secret protects Deadbolt's secrets at rest: it seals small values
// (TOTP seeds, WebAuthn state and the like) with AES-256-GCM and turns bearer
// tokens, recovery codes and one-time passcodes into keyed hashes, all under
// the keys of a [Keyring] that lives in a key file outside the database.
//
// # Sealing and the AAD
//
// [Keyring.Seal] encrypts with the primary key and a fresh random nonce. The
// result describes itself: a version byte, the id of the key that sealed it,
// the nonce, then the ciphertext and tag. The version and key id are
// authenticated together with the caller's additional data (AAD), so any
// change to any byte makes [Keyring.Open] fail.
//
// Callers must put the owner of a value in the AAD, for example
// "factors.secret/<account id>/<factor id>". The database is the thing being
// protected against, so it must be assumed that someone who can write to it
// can also move rows around: without the owner in the AAD, an attacker could
// copy the sealed TOTP seed of their own factor onto a victim's factor row
// (or the other way round) and it would still decrypt. With the owner bound
// in, a value opens only in the place it was sealed for.
//
// # Keyed hashes
//
// Tokens, recovery codes and 6-digit passcodes are stored only as
// HMAC-SHA-256 values ([Keyring.Hash]) and compared with [Equal]. A plain hash
// of a 6-digit code can be reversed by trying all million codes; a keyed hash
// cannot be checked at all without the HMAC key, which is not in the
// database, so a stolen database alone does not allow offline guessing.
//
// # The key file and rotation
//
// The key file holds one hmac line and one or more aes lines (see [Parse]).
// The last aes line is the primary key, used for all new seals; every key in
// the file can still open what it sealed, because sealed values name their
// key. To rotate, add a new aes line with a new key id at the end of the file
// ([Keyring.AddKey] and [Keyring.Marshal] do this) and restart: new values
// are sealed with the new key and old ones keep opening. An old aes line may
// be removed only once nothing sealed under it remains (re-seal it first).
//
// The hmac key cannot be rotated this way: hashes are compared, never
// decrypted, so if the hmac key changes every stored token, recovery code and
// pending passcode stops matching. Never change or drop the hmac line.
//
// Losing the key file makes every sealed secret unreadable and every stored
// hash useless, so it must be backed up, separately from database backups.
package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

const (
	// KeySize is the size in bytes of every key in a Keyring: AES-256 keys
	// and the HMAC-SHA-256 key alike.
	KeySize = 32

	// HashSize is the size in bytes of the values returned by [Keyring.Hash].
	HashSize = sha256.Size

	// MaxKeyIDLen is the maximum length of a key id.
	MaxKeyIDLen = 32

	version   = 1
	nonceSize = 12
	tagSize   = 16

	// maxKeyFileSize bounds how much LoadFile reads: a real key file is a
	// few hundred bytes.
	maxKeyFileSize = 1 << 20

	fileHeader = "# deadbolt key file: keep it secret, back it up; losing it makes stored secrets unreadable\n" +
		"# The last aes line is the primary key. To rotate, append a new aes line with a new id;\n" +
		"# keep the old ones so existing data still opens. Never change the hmac line.\n"
)

var (
	// ErrOpen is returned by [Keyring.Open] when sealed data is malformed or
	// fails authentication, for example because the AAD differs or a byte
	// was changed.
	ErrOpen = errors.New("secret: cannot open sealed data: malformed, tampered with, or sealed for a different owner")

	// ErrUnknownKey is returned by [Keyring.Open] when sealed data names a
	// key id that the keyring does not hold (for example an aes line was
	// removed from the key file too early).
	ErrUnknownKey = errors.New("secret: sealed data names a key id that is not in the key file")

	errNotInitialized = errors.New("secret: Keyring not initialized; use LoadFile, Parse, Generate or CreateFile")
)

// aesKey is one AES-256 key with its pre-built AEAD.
type aesKey struct {
	id   string
	key  [KeySize]byte
	aead cipher.AEAD
}

// keySet is an immutable snapshot of the AES keys; AddKey replaces it whole.
type keySet struct {
	keys    []*aesKey // in file order; the last is the primary
	byID    map[string]*aesKey
	primary *aesKey
}

// hasher is a pooled HMAC instance plus a scratch buffer, so that hashing a
// string needs no allocation besides the result.
type hasher struct {
	mac hash.Hash
	buf []byte
}

// Keyring holds the AES-256 keys used to seal secrets, each named by a key
// id, and the HMAC key used to hash tokens and codes. The last AES key is the
// primary one, used by [Keyring.Seal].
//
// A Keyring must be obtained from [LoadFile], [Parse], [Generate] or
// [CreateFile]; the zero value is not usable. All methods are safe for
// concurrent use, including [Keyring.AddKey]. A Keyring must not be copied
// after first use.
//
// String and GoString never print key material, so a Keyring that ends up in
// a log line reveals only its key ids.
type Keyring struct {
	hmacKey [KeySize]byte
	keys    atomic.Pointer[keySet]
	hashers sync.Pool // of *hasher
}

// newKeyring builds a Keyring from validated keys; ids and keys must already
// have been checked (valid, unique ids; at least one aes key).
func newKeyring(hmacKey [KeySize]byte, keys []*aesKey) (*Keyring, error) {
	k := &Keyring{hmacKey: hmacKey}
	set, err := buildKeySet(keys)
	if err != nil {
		return nil, err
	}
	k.keys.Store(set)
	k.hashers.New = func() any {
		return &hasher{mac: hmac.New(sha256.New, k.hmacKey[:])}
	}
	return k, nil
}

// buildKeySet builds the AEADs that are not built yet and indexes the keys.
func buildKeySet(keys []*aesKey) (*keySet, error) {
	set := &keySet{
		keys:    keys,
		byID:    make(map[string]*aesKey, len(keys)),
		primary: keys[len(keys)-1],
	}
	for _, ak := range keys {
		if ak.aead == nil {
			block, err := aes.NewCipher(ak.key[:])
			if err != nil {
				return nil, fmt.Errorf("secret: aes key %q: %w", ak.id, err)
			}
			ak.aead, err = cipher.NewGCM(block)
			if err != nil {
				return nil, fmt.Errorf("secret: aes key %q: %w", ak.id, err)
			}
		}
		set.byID[ak.id] = ak
	}
	return set, nil
}

// validKeyID reports whether id is 1 to 32 characters of [A-Za-z0-9_-].
func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// randomKey returns a fresh key from crypto/rand.
func randomKey() ([KeySize]byte, error) {
	var key [KeySize]byte
	if _, err := rand.Read(key[:]); err != nil {
		return key, fmt.Errorf("secret: generating key: %w", err)
	}
	return key, nil
}

// Generate returns a Keyring with a fresh random HMAC key and one fresh
// random AES-256 key with id "k1".
func Generate() (*Keyring, error) {
	hmacKey, err := randomKey()
	if err != nil {
		return nil, err
	}
	aesBytes, err := randomKey()
	if err != nil {
		return nil, err
	}
	return newKeyring(hmacKey, []*aesKey{{id: "k1", key: aesBytes}})
}

// Parse parses a key file:
//
//	# deadbolt key file: keep it secret, back it up; losing it makes stored secrets unreadable
//	hmac <base64 of 32 bytes>
//	aes <key id> <base64 of 32 bytes>
//	aes <key id> <base64 of 32 bytes>
//
// Blank lines and lines starting with # are ignored. There must be exactly
// one hmac line and at least one aes line; key ids are 1 to 32 characters of
// [A-Za-z0-9_-] and must be unique; keys are standard base64 (with padding)
// of exactly 32 bytes, and no two keys may be equal. The last aes line is the
// primary key. Errors name the offending line but never contain key material.
func Parse(data []byte) (*Keyring, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // tolerate a UTF-8 BOM from editors
	var (
		hmacKey  [KeySize]byte
		hmacLine int // 0 until an hmac line is seen
		keys     []*aesKey
		seenID   = make(map[string]int)        // key id -> line
		seenKey  = make(map[[KeySize]byte]int) // key bytes -> line
		lines    = strings.Split(string(data), "\n")
	)
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		switch fields[0] {
		case "hmac":
			if len(fields) != 2 {
				return nil, fmt.Errorf("secret: key file line %d: want \"hmac <base64 key>\" (2 fields), got %d fields", n, len(fields))
			}
			if hmacLine != 0 {
				return nil, fmt.Errorf("secret: key file line %d: second hmac line (first on line %d); there must be exactly one", n, hmacLine)
			}
			key, err := decodeKey(fields[1])
			if err != nil {
				return nil, fmt.Errorf("secret: key file line %d: hmac key: %w", n, err)
			}
			if prev, ok := seenKey[key]; ok {
				return nil, fmt.Errorf("secret: key file line %d: hmac key is the same as the key on line %d; every key must be distinct", n, prev)
			}
			seenKey[key] = n
			hmacKey, hmacLine = key, n
		case "aes":
			if len(fields) != 3 {
				return nil, fmt.Errorf("secret: key file line %d: want \"aes <key id> <base64 key>\" (3 fields), got %d fields", n, len(fields))
			}
			id := fields[1]
			if !validKeyID(id) {
				// Do not echo the id: a line with fields in the wrong order
				// would put key material here.
				return nil, fmt.Errorf("secret: key file line %d: invalid key id (want 1 to %d characters of A-Z a-z 0-9 _ -)", n, MaxKeyIDLen)
			}
			if prev, ok := seenID[id]; ok {
				return nil, fmt.Errorf("secret: key file line %d: duplicate key id %q (also on line %d)", n, id, prev)
			}
			key, err := decodeKey(fields[2])
			if err != nil {
				return nil, fmt.Errorf("secret: key file line %d: aes key %q: %w", n, id, err)
			}
			if prev, ok := seenKey[key]; ok {
				return nil, fmt.Errorf("secret: key file line %d: aes key %q is the same as the key on line %d; every key must be distinct", n, id, prev)
			}
			seenID[id] = n
			seenKey[key] = n
			keys = append(keys, &aesKey{id: id, key: key})
		default:
			// Do not echo the directive: it could be a pasted key.
			return nil, fmt.Errorf("secret: key file line %d: unknown directive (want \"hmac\", \"aes\", a # comment or a blank line)", n)
		}
	}
	if hmacLine == 0 {
		return nil, errors.New("secret: key file has no hmac line")
	}
	if len(keys) == 0 {
		return nil, errors.New("secret: key file has no aes line")
	}
	return newKeyring(hmacKey, keys)
}

// decodeKey decodes a standard base64 key of exactly KeySize bytes. Its
// errors never contain the input.
func decodeKey(s string) ([KeySize]byte, error) {
	var key [KeySize]byte
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		// Not wrapped: say what is wrong without quoting anything.
		return key, errors.New("not valid standard base64 (with = padding)")
	}
	defer clear(b)
	if len(b) != KeySize {
		return key, fmt.Errorf("wrong length: want %d bytes (%d base64 characters), got %d bytes", KeySize, base64.StdEncoding.EncodedLen(KeySize), len(b))
	}
	copy(key[:], b)
	return key, nil
}

// LoadFile reads and parses the key file at path (see [Parse]). It refuses a
// file that group or others can access in any way; such a file must be fixed
// with chmod 600 first.
func LoadFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("secret: key file %s has mode %04o, so group or others can access it; "+
			"it must be readable by its owner only: run chmod 600 %s (and consider replacing the keys if others may have read it)",
			path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("secret: reading key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("secret: key file %s is larger than %d bytes; is it the right file?", path, maxKeyFileSize)
	}
	k, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// CreateFile generates a fresh Keyring (see [Generate]) and writes it to a
// new file at path with mode 0600, synced to stable storage. It fails if
// anything already exists at path, so it can never overwrite keys.
func CreateFile(path string) (*Keyring, error) {
	k, err := Generate()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("secret: creating key file: %w", err)
	}
	_, err = f.Write(k.Marshal())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // we created it; do not leave a partial key file behind
		return nil, fmt.Errorf("secret: writing key file: %w", err)
	}
	// Make the new directory entry durable too. Best effort: not every
	// platform or file system can sync a directory.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return k, nil
}

// Marshal returns the keyring in key file format (see [Parse]), with a
// comment header, the hmac line and the aes lines in order, primary last.
// The result contains all key material: write it only to a file with mode
// 0600.
func (k *Keyring) Marshal() []byte {
	set := k.keySet()
	enc := base64.StdEncoding
	var b bytes.Buffer
	b.WriteString(fileHeader)
	b.WriteString("hmac ")
	b.WriteString(enc.EncodeToString(k.hmacKey[:]))
	b.WriteByte('\n')
	for _, ak := range set.keys {
		b.WriteString("aes ")
		b.WriteString(ak.id)
		b.WriteByte(' ')
		b.WriteString(enc.EncodeToString(ak.key[:]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// AddKey generates a fresh AES-256 key with the given id and makes it the
// primary key, for key rotation tooling: seal with the new key from now on,
// keep opening with the old ones. The id must be valid (1 to 32 characters
// of [A-Za-z0-9_-]) and not already in use. Write the result out with
// [Keyring.Marshal].
func (k *Keyring) AddKey(id string) error {
	if !validKeyID(id) {
		return fmt.Errorf("secret: invalid key id %q (want 1 to %d characters of A-Z a-z 0-9 _ -)", id, MaxKeyIDLen)
	}
	key, err := randomKey()
	if err != nil {
		return err
	}
	for {
		old := k.keys.Load()
		if old == nil {
			return errNotInitialized
		}
		if _, ok := old.byID[id]; ok {
			return fmt.Errorf("secret: key id %q already in use", id)
		}
		keys := make([]*aesKey, len(old.keys), len(old.keys)+1)
		copy(keys, old.keys)
		keys = append(keys, &aesKey{id: id, key: key})
		set, err := buildKeySet(keys)
		if err != nil {
			return err
		}
		if k.keys.CompareAndSwap(old, set) {
			return nil
		}
	}
}

// PrimaryID returns the id of the primary key, the one [Keyring.Seal] uses.
func (k *Keyring) PrimaryID() string {
	if set := k.keys.Load(); set != nil {
		return set.primary.id
	}
	return ""
}

// KeyIDs returns the ids of all AES keys in key file order; the last is the
// primary.
func (k *Keyring) KeyIDs() []string {
	set := k.keys.Load()
	if set == nil {
		return nil
	}
	ids := make([]string, len(set.keys))
	for i, ak := range set.keys {
		ids[i] = ak.id
	}
	return ids
}

// String describes the keyring by its key ids only, never its keys.
func (k *Keyring) String() string {
	if k == nil {
		return "secret.Keyring(nil)"
	}
	return fmt.Sprintf("secret.Keyring(aes keys %v, primary %q)", k.KeyIDs(), k.PrimaryID())
}

// GoString is like String, so that %#v does not print key material either.
func (k *Keyring) GoString() string { return k.String() }

// keySet returns the current key set, panicking with a clear message on a
// Keyring that was not built by this package.
func (k *Keyring) keySet() *keySet {
	set := k.keys.Load()
	if set == nil {
		panic(errNotInitialized)
	}
	return set
}

// authData returns the AAD actually given to GCM: the sealed header
// (version, key id length, key id) followed by the caller's AAD. The header
// carries its own length, so the concatenation is unambiguous.
func authData(header, aad []byte) []byte {
	full := make([]byte, 0, len(header)+len(aad))
	full = append(full, header...)
	return append(full, aad...)
}

// Seal encrypts and authenticates plaintext with the primary key, binding
// aad, which must identify the owner of the value (see the package
// documentation); the same aad must be given to [Keyring.Open]. The result
// is: version byte 1, key id length byte, key id, 12-byte random nonce,
// ciphertext with 16-byte GCM tag. It is len(plaintext)+30+len(key id) bytes
// long.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	set := k.keys.Load()
	if set == nil {
		return nil, errNotInitialized
	}
	pk := set.primary
	hdrLen := 2 + len(pk.id)
	prefixLen := hdrLen + nonceSize
	if uint64(len(plaintext)) > 1<<36-64 { // GCM's limit, and far beyond any sane secret
		return nil, errors.New("secret: plaintext too large")
	}
	out := make([]byte, prefixLen, prefixLen+len(plaintext)+tagSize)
	out[0] = version
	out[1] = byte(len(pk.id))
	copy(out[2:], pk.id)
	nonce := out[hdrLen:prefixLen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secret: generating nonce: %w", err)
	}
	fullAAD := authData(out[:hdrLen], aad)
	return pk.aead.Seal(out, nonce, plaintext, fullAAD), nil
}

// Open checks and decrypts data sealed by [Keyring.Seal] with any key of the
// keyring, given the same aad. It returns [ErrUnknownKey] if the data names a
// key the keyring does not hold and [ErrOpen] if the data is malformed or
// does not authenticate (wrong aad, changed bytes, truncated). It never
// panics, whatever the input.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	set := k.keys.Load()
	if set == nil {
		return nil, errNotInitialized
	}
	if len(sealed) < 2 || sealed[0] != version {
		return nil, ErrOpen
	}
	idLen := int(sealed[1])
	hdrLen := 2 + idLen
	if idLen == 0 || idLen > MaxKeyIDLen || len(sealed) < hdrLen+nonceSize+tagSize {
		return nil, ErrOpen
	}
	ak, ok := set.byID[string(sealed[2:hdrLen])] // no allocation for map lookups
	if !ok {
		return nil, ErrUnknownKey
	}
	nonce := sealed[hdrLen : hdrLen+nonceSize]
	ciphertext := sealed[hdrLen+nonceSize:]
	fullAAD := authData(sealed[:hdrLen], aad)
	plaintext, err := ak.aead.Open(nil, nonce, ciphertext, fullAAD)
	if err != nil {
		return nil, ErrOpen
	}
	return plaintext, nil
}

// Hash returns HMAC-SHA-256 of token under the keyring's HMAC key, 32
// bytes. Store tokens, recovery codes and passcodes only as such hashes and
// compare them with [Equal]. Hash is safe for concurrent use.
func (k *Keyring) Hash(token string) []byte {
	h, _ := k.hashers.Get().(*hasher)
	if h == nil {
		panic(errNotInitialized)
	}
	h.mac.Reset()
	h.buf = append(h.buf[:0], token...)
	h.mac.Write(h.buf)
	sum := h.mac.Sum(make([]byte, 0, HashSize))
	if cap(h.buf) > 1024 {
		h.buf = nil // do not pin large buffers in the pool
	} else {
		clear(h.buf) // do not keep the last token around
	}
	k.hashers.Put(h)
	return sum
}

// Equal reports whether a and b are equal, in time that depends only on
// their lengths, not their contents. Use it to compare hashes from
// [Keyring.Hash].
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// NewToken returns a new random bearer token: prefix followed by 26
// characters of base32 from [crypto/rand.Text], 130 bits of randomness,
// for example "dbs_" + "4VQ2JFJ6TM3ZOQ5MF4KPBKAHKE". Store only its
// [Keyring.Hash].
func NewToken(prefix string) string {
	return prefix + rand.Text()
}

// LoadOrCreateFile loads the key file at path, creating it (mode 0600) when
// it does not exist; created says whether it did. Two processes starting at
// once on a new database end up with the same file: the one that loses the
// race to create it loads the winner's.
func LoadOrCreateFile(path string) (k *Keyring, created bool, err error) {
	k, err = LoadFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		return k, false, err
	}
	k, err = CreateFile(path)
	if errors.Is(err, os.ErrExist) {
		k, err = LoadFile(path)
		return k, false, err
	}
	return k, err == nil, err
}
