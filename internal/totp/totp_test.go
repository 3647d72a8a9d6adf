package totp

import (
	"bytes"
	"encoding/base32"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA-1 secret of RFC 4226 Appendix D and RFC 6238
// Appendix B.
var rfcSecret = []byte("12345678901234567890")

func TestRFC6238Vectors(t *testing.T) {
	tests := []struct {
		unix int64
		step int64
		want string
	}{
		{59, 0x1, "94287082"},
		{1111111109, 0x23523EC, "07081804"},
		{1111111111, 0x23523ED, "14050471"},
		{1234567890, 0x273EF07, "89005924"},
		{2000000000, 0x3F940AA, "69279037"},
		{20000000000, 0x27BC86AA, "65353130"},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatInt(tt.unix, 10), func(t *testing.T) {
			tm := time.Unix(tt.unix, 0)
			if got := Step(tm); got != tt.step {
				t.Errorf("Step(%d) = %#x, want %#x", tt.unix, got, tt.step)
			}
			if got := CodeDigits(rfcSecret, Step(tm), 8); got != tt.want {
				t.Errorf("CodeDigits(rfc, Step(%d), 8) = %q, want %q", tt.unix, got, tt.want)
			}
			// The 6-digit code is the last 6 digits of the 8-digit one.
			if got, want := Code(rfcSecret, Step(tm)), tt.want[2:]; got != want {
				t.Errorf("Code(rfc, Step(%d)) = %q, want %q", tt.unix, got, want)
			}
		})
	}
}

func TestRFC4226Vectors(t *testing.T) {
	want := []string{
		"755224", "287082", "359152", "969429", "338314",
		"254676", "287922", "162583", "399871", "520489",
	}
	for counter, w := range want {
		if got := Code(rfcSecret, int64(counter)); got != w {
			t.Errorf("Code(rfc, %d) = %q, want %q", counter, got, w)
		}
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(29, 999999999), 0},
		{time.Unix(30, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Unix(0, -1), -1}, // one nanosecond before the epoch
		{time.Unix(-30, 0), -1},
		{time.Unix(-31, 0), -2},
		{time.Unix(-60, 0), -2},
		{time.Date(1969, 12, 31, 23, 59, 45, 0, time.UTC), -1},
		{time.Unix(1111111111, 0).In(time.FixedZone("x", 5*3600)), 0x23523ED},
	}
	for _, tt := range tests {
		if got := Step(tt.t); got != tt.want {
			t.Errorf("Step(%v) = %d, want %d", tt.t, got, tt.want)
		}
	}
}

func TestCodeDigitsPanics(t *testing.T) {
	for _, d := range []int{-1, 0, 5, 9, 10} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("CodeDigits(_, _, %d) did not panic", d)
				}
			}()
			CodeDigits(rfcSecret, 0, d)
		}()
	}
}

// needTool returns the path of an external program the test needs. Without
// it the test fails under CI (which installs it) and is skipped elsewhere.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found on PATH (apt-get install -y %s): %v", name, pkg, err)
		}
		t.Skipf("%s not found on PATH (apt-get install -y %s)", name, pkg)
	}
	return p
}

// TestOathtool compares Code with Debian's oathtool, an independent
// implementation.
func TestOathtool(t *testing.T) {
	oathtool := needTool(t, "oathtool", "oathtool")

	secrets := [][]byte{
		rfcSecret,
		bytes.Repeat([]byte{0xff}, SecretSize),
		make([]byte, SecretSize),
		[]byte("0123456789"), // 80 bits, 16 base32 characters
		NewSecret(),
		NewSecret(),
	}
	times := []int64{0, 59, 1111111109, 1234567890, 1700000000, 2000000000, 4102444800, time.Now().Unix()}
	for _, secret := range secrets {
		b32 := Base32(secret)
		for _, unix := range times {
			for _, digits := range []int{6, 8} {
				out, err := exec.Command(oathtool, "--totp", "-b", "-d", strconv.Itoa(digits),
					"-N", "@"+strconv.FormatInt(unix, 10), b32).CombinedOutput()
				if err != nil {
					t.Fatalf("oathtool -b %s -N @%d: %v\n%s", b32, unix, err, out)
				}
				want := strings.TrimSpace(string(out))
				if got := CodeDigits(secret, Step(time.Unix(unix, 0)), digits); got != want {
					t.Errorf("CodeDigits(%s, Step(@%d), %d) = %q, oathtool says %q", b32, unix, digits, got, want)
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	secret := rfcSecret
	now := time.Unix(1111111111, 0)
	s := Step(now)
	tests := []struct {
		name     string
		code     string
		wantStep int64
		wantOK   bool
	}{
		{"current", Code(secret, s), s, true},
		{"previous", Code(secret, s-1), s - 1, true},
		{"next", Code(secret, s+1), s + 1, true},
		{"two back", Code(secret, s-2), 0, false},
		{"two ahead", Code(secret, s+2), 0, false},
		{"other secret", Code([]byte("another secret......"), s), 0, false},
		{"wrong", wrongCode(secret, s), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok := Validate(secret, tt.code, now)
			if step != tt.wantStep || ok != tt.wantOK {
				t.Errorf("Validate(rfc, %q, @%d) = %d, %v; want %d, %v", tt.code, now.Unix(), step, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
}

// wrongCode returns a 6-digit code that matches none of the steps s-2..s+2.
func wrongCode(secret []byte, s int64) string {
	used := map[string]bool{}
	for d := int64(-2); d <= 2; d++ {
		used[Code(secret, s+d)] = true
	}
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", i)
		if !used[c] {
			return c
		}
	}
}

func TestValidateWindowEdges(t *testing.T) {
	secret := NewSecret()
	s := int64(56666666)
	code := Code(secret, s)
	// A code is good from the start of the step before to the end of the
	// step after: 90 seconds.
	start := time.Unix((s-1)*30, 0)
	end := time.Unix((s+2)*30, 0).Add(-time.Nanosecond)
	tests := []struct {
		t      time.Time
		wantOK bool
	}{
		{start.Add(-time.Nanosecond), false},
		{start, true},
		{time.Unix(s*30+15, 0), true},
		{end, true},
		{end.Add(time.Nanosecond), false},
	}
	for _, tt := range tests {
		step, ok := Validate(secret, code, tt.t)
		if ok != tt.wantOK || (ok && step != s) {
			t.Errorf("Validate(code of %d, %v) = %d, %v; want %d, %v", s, tt.t.UTC(), step, ok, s, tt.wantOK)
		}
	}
}

func TestValidateMalformed(t *testing.T) {
	secret := rfcSecret
	now := time.Unix(1111111111, 0)
	good := Code(secret, Step(now))
	if _, ok := Validate(secret, good, now); !ok {
		t.Fatalf("Validate(rfc, %q) refused the current code", good)
	}
	tests := []struct {
		name string
		code string
	}{
		{"empty", ""},
		{"arabic-indic digits", "١٢٣٤٥٦"},
		{"fullwidth digits", "１２３４５６"},
		{"fullwidth current code", toFullwidth(good)},
		{"five digits", good[:5]},
		{"seven digits", good + "0"},
		{"leading space", " " + good},
		{"trailing space", good + " "},
		{"inner space", good[:3] + " " + good[3:]},
		{"hyphen", good[:3] + "-" + good[3:]},
		{"trailing newline", good + "\n"},
		{"plus sign", "+" + good[1:]},
		{"minus sign", "-" + good[1:]},
		{"letter", "12345a"},
		{"NUL", good[:5] + "\x00"},
		{"eight digits", CodeDigits(secret, Step(now), 8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if step, ok := Validate(secret, tt.code, now); ok || step != 0 {
				t.Errorf("Validate(rfc, %q) = %d, %v; want 0, false", tt.code, step, ok)
			}
		})
	}
}

func TestValidateEmptySecret(t *testing.T) {
	now := time.Unix(1111111111, 0)
	code := Code(nil, Step(now))
	if step, ok := Validate(nil, code, now); ok {
		t.Errorf("Validate(nil, %q) = %d, true; want refusal", code, step)
	}
}

func toFullwidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r - '0' + '０')
	}
	return b.String()
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"123456", "123456", true},
		{"123 456", "123456", true},
		{"123-456", "123456", true},
		{" 123456 ", "123456", true},
		{"12 34 56", "123456", true},
		{"000000", "000000", true},
		{"", "", false},
		{"   ", "", false},
		{"12345", "", false},
		{"1234567", "", false},
		{"123 4567", "", false},
		{"12345a", "", false},
		{"123\t456", "", false},
		{"123456\n", "", false},
		{"123_456", "", false},
		{"+123456", "", false},
		{"١٢٣٤٥٦", "", false},
		{"１２３４５６", "", false},
		{"123\u00a0456", "", false}, // no-break space is not ASCII
		{"123\u2010456", "", false}, // Unicode hyphen
	}
	for _, tt := range tests {
		got, ok := Normalize(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if len(a) != SecretSize || len(b) != SecretSize {
		t.Fatalf("len(NewSecret()) = %d, %d; want %d", len(a), len(b), SecretSize)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two NewSecret() calls returned the same %x", a)
	}
	if bytes.Equal(a, make([]byte, SecretSize)) {
		t.Errorf("NewSecret() = all zero")
	}
}

func TestBase32(t *testing.T) {
	tests := []struct {
		secret []byte
		want   string
	}{
		{rfcSecret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"},
		{[]byte("Hello!\xde\xad\xbe\xef"), "JBSWY3DPEHPK3PXP"},
		{[]byte{0}, "AA"}, // no padding
		{nil, ""},
	}
	for _, tt := range tests {
		if got := Base32(tt.secret); got != tt.want {
			t.Errorf("Base32(%x) = %q, want %q", tt.secret, got, tt.want)
		}
	}
	for range 20 {
		s := NewSecret()
		enc := Base32(s)
		if strings.ContainsAny(enc, "=abcdefghijklmnopqrstuvwxyz") {
			t.Errorf("Base32(%x) = %q has padding or lower case", s, enc)
		}
		dec, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enc)
		if err != nil || !bytes.Equal(dec, s) {
			t.Errorf("decode(Base32(%x)) = %x, %v; want the secret", s, dec, err)
		}
	}
}

func TestGrouped(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"AB", "AB"},
		{"ABCD", "ABCD"},
		{"ABCDE", "ABCD E"},
		{"JBSWY3DPEHPK3PXP", "JBSW Y3DP EHPK 3PXP"},
		{"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"},
	}
	for _, tt := range tests {
		if got := Grouped(tt.in); got != tt.want {
			t.Errorf("Grouped(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestURI(t *testing.T) {
	secret := NewSecret()
	tests := []struct {
		name, issuer, account string
		wantIssuer            string // after ':' is replaced
		wantRaw               string // substring the raw URI must contain
	}{
		{"plain", "Deadbolt", "alice@example.com", "Deadbolt", "otpauth://totp/Deadbolt:alice@example.com?secret="},
		{"spaces", "Deadbolt Corp", "Alice Smith", "Deadbolt Corp", "/Deadbolt%20Corp:Alice%20Smith?"},
		{"unicode", "Dédbölt 株式会社", "zoë@例え.jp", "Dédbölt 株式会社", "totp/D%C3%A9db%C3%B6lt%20"},
		{"colon in issuer", "Acme: Login", "bob", "Acme  Login", "/Acme%20%20Login:bob?"},
		{"colon in account", "Acme", "corp:bob", "Acme", "/Acme:corp%3Abob?"},
		{"plus and ampersand", "A+B & C", "x+y&z=1#f?g/h", "A+B & C", "&issuer=A%2BB%20%26%20C&"},
		{"percent", "100%", "50%off", "100%", "/100%25:50%25off?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := URI(tt.issuer, tt.account, secret)
			if !strings.Contains(raw, tt.wantRaw) {
				t.Errorf("URI(%q, %q) = %q, want it to contain %q", tt.issuer, tt.account, raw, tt.wantRaw)
			}
			if strings.Contains(raw, "+") {
				t.Errorf("URI(%q, %q) = %q contains '+'", tt.issuer, tt.account, raw)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("url.Parse(%q): %v", raw, err)
			}
			if u.Scheme != "otpauth" || u.Host != "totp" {
				t.Errorf("scheme, host = %q, %q; want otpauth, totp", u.Scheme, u.Host)
			}
			label := strings.TrimPrefix(u.Path, "/")
			gotIssuer, gotAccount, found := strings.Cut(label, ":")
			if !found || gotIssuer != tt.wantIssuer || gotAccount != tt.account {
				t.Errorf("label %q = issuer %q, account %q; want %q, %q", label, gotIssuer, gotAccount, tt.wantIssuer, tt.account)
			}
			q := u.Query()
			want := url.Values{
				"secret":    {Base32(secret)},
				"issuer":    {tt.wantIssuer},
				"algorithm": {"SHA1"},
				"digits":    {"6"},
				"period":    {"30"},
			}
			if got, want := q.Encode(), want.Encode(); got != want {
				t.Errorf("query = %s, want %s", got, want)
			}
			dec, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(q.Get("secret"))
			if err != nil || !bytes.Equal(dec, secret) {
				t.Errorf("secret in URI decodes to %x, %v; want %x", dec, err, secret)
			}
		})
	}
}

func TestURINoIssuer(t *testing.T) {
	raw := URI("", "alice", rfcSecret)
	want := "otpauth://totp/alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30"
	if raw != want {
		t.Errorf("URI(\"\", \"alice\") = %q, want %q", raw, want)
	}
}

func TestURIExact(t *testing.T) {
	raw := URI("Deadbolt", "alice@example.com", rfcSecret)
	want := "otpauth://totp/Deadbolt:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Deadbolt&algorithm=SHA1&digits=6&period=30"
	if raw != want {
		t.Errorf("URI = %q, want %q", raw, want)
	}
}

func BenchmarkValidate(b *testing.B) {
	secret := NewSecret()
	now := time.Unix(1700000000, 0)
	code := Code(secret, Step(now))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Validate(secret, code, now); !ok {
			b.Fatal("Validate refused the current code")
		}
	}
}

func FuzzValidate(f *testing.F) {
	now := time.Unix(1111111111, 0)
	f.Add(rfcSecret, Code(rfcSecret, Step(now)), now.Unix())
	f.Add(rfcSecret, "١٢٣٤٥٦", int64(0))
	f.Add([]byte{}, "123456", int64(-1))
	f.Add([]byte{1}, "123 456", int64(-9e15))
	f.Add([]byte{1}, "", int64(9e15))
	f.Fuzz(func(t *testing.T, secret []byte, code string, unix int64) {
		tm := time.Unix(unix, 0)
		step, ok := Validate(secret, code, tm)
		if !ok {
			if step != 0 {
				t.Errorf("Validate refused but returned step %d", step)
			}
			return
		}
		if !wellFormed(code) {
			t.Errorf("Validate accepted malformed code %q", code)
		}
		if d := step - Step(tm); d < -Skew || d > Skew {
			t.Errorf("Validate matched step %d, %d away from %d", step, d, Step(tm))
		}
		if got := Code(secret, step); got != code {
			t.Errorf("Validate matched step %d whose code is %q, not %q", step, got, code)
		}
		if n, ok := Normalize(code); !ok || n != code {
			t.Errorf("Normalize(%q) = %q, %v for an accepted code", code, n, ok)
		}
	})
}
