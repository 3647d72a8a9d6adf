package signin

import (
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func TestWait(t *testing.T) {
	l := Limits{}.withDefaults()
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {1, 0}, {4, 0},
		{5, 2 * time.Second}, {6, 4 * time.Second}, {7, 8 * time.Second}, {8, 16 * time.Second}, {9, 32 * time.Second},
		{10, 15 * time.Minute}, {11, 15 * time.Minute}, {1000, 15 * time.Minute},
	}
	for _, tt := range tests {
		if got := l.wait(tt.failures); got != tt.want {
			t.Errorf("wait(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestRecoveryCodeFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := newRecoveryCode()
		if len(c) != 11 || c[5] != '-' {
			t.Fatalf("newRecoveryCode() = %q, want xxxxx-xxxxx", c)
		}
		n, ok := normalizeRecoveryCode(c)
		if !ok || n != strings.Replace(c, "-", "", 1) {
			t.Fatalf("normalizeRecoveryCode(%q) = %q, %v", c, n, ok)
		}
		if seen[n] {
			t.Fatalf("newRecoveryCode repeated %q", c)
		}
		seen[n] = true
	}
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"abcde-fghjk", "abcdefghjk", true},
		{"ABCDE FGHJK", "abcdefghjk", true},
		{" abcdefghjk\t", "abcdefghjk", true},
		{"abcde-fghj", "", false},   // too short
		{"abcde-fghjkm", "", false}, // too long
		{"abcde-fghj0", "", false},  // 0 is not in the alphabet
		{"abcde-fghjl", "", false},  // nor l
		{"abcde-fghjé", "", false},  // nor anything outside ASCII
		{"ａｂｃｄｅ-fghjk", "", false},  // fullwidth
		{strings.Repeat("a", 100), "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := normalizeRecoveryCode(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("normalizeRecoveryCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMethodsOf(t *testing.T) {
	f := func(kind deadbolt.FactorKind, def bool) *deadbolt.Factor {
		return &deadbolt.Factor{Kind: kind, Status: deadbolt.FactorActive, Default: def}
	}
	tests := []struct {
		factors []*deadbolt.Factor
		want    string
		def     string
	}{
		{[]*deadbolt.Factor{f("totp", true)}, "totp recovery_code", "totp"},
		{[]*deadbolt.Factor{f("totp", false), f("sms", true)}, "sms totp recovery_code", "sms"},
		{[]*deadbolt.Factor{f("totp", false), f("totp", true)}, "totp recovery_code", "totp"},
		{[]*deadbolt.Factor{f("email", false)}, "email recovery_code", "email"},
	}
	for _, tt := range tests {
		methods, def := methodsOf(tt.factors)
		if got := strings.Join(methods, " "); got != tt.want || def != tt.def {
			t.Errorf("methodsOf = %q, %q; want %q, %q", got, def, tt.want, tt.def)
		}
	}
}

func TestDeviceName(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0", "Edge on Windows"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"curl/8.5.0", "curl"},
		{"", "Unknown device"},
		{"SomeBot", "SomeBot"},
	}
	for _, tt := range tests {
		if got := deviceName(tt.ua); got != tt.want {
			t.Errorf("deviceName(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{500 * time.Millisecond, "a second"}, {2 * time.Second, "2 seconds"}, {1500 * time.Millisecond, "2 seconds"},
		{time.Minute, "a minute"}, {15 * time.Minute, "15 minutes"}, {14*time.Minute + time.Second, "15 minutes"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo", 2); got != "h" {
		t.Errorf("truncate cut a rune in half: %q", got)
	}
	if got := truncate("abc", 10); got != "abc" {
		t.Errorf("truncate(abc, 10) = %q", got)
	}
}
