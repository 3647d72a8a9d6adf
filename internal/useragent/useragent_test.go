package useragent

import (
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"
)

const (
	firefoxLinux   = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	firefoxUbuntu  = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:141.0) Gecko/20100101 Firefox/141.0"
	chromeWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36"
	chromeAndroid  = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36"
	chromeIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/138.0.7204.119 Mobile/15E148 Safari/604.1"
	safariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
	safariIPad     = "Mozilla/5.0 (iPad; CPU OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
	safariMac      = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15"
	edgeWindows    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.3351.83"
	firefoxAndroid = "Mozilla/5.0 (Android 14; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0"
	chromeOS       = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36"
	googlebot      = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

func TestDescribe(t *testing.T) {
	tests := []struct{ name, ua, want string }{
		{"Firefox on Linux", firefoxLinux, "Firefox on Linux"},
		{"Firefox on Ubuntu", firefoxUbuntu, "Firefox on Linux"},
		{"Chrome on Windows", chromeWindows, "Chrome on Windows"},
		{"Chrome on Android", chromeAndroid, "Chrome on Android"},
		{"Chrome on iPhone", chromeIPhone, "Chrome on iPhone"},
		{"Safari on iPhone", safariIPhone, "Safari on iPhone"},
		{"Safari on iPad", safariIPad, "Safari on iPad"},
		{"Safari on macOS", safariMac, "Safari on macOS"},
		{"Edge on Windows", edgeWindows, "Edge on Windows"},
		{"Firefox on Android", firefoxAndroid, "Firefox on Android"},
		{"Chrome on ChromeOS", chromeOS, "Chrome on ChromeOS"},
		{"curl", "curl/8.5.0", "curl"},
		{"curl 8.14", "curl/8.14.1", "curl"},
		{"Go client", "Go-http-client/2.0", "Go-http-client"},
		{"Wget", "Wget/1.21.4", "Wget"},
		// Not recognised: the agent itself, cleaned and cut.
		{"own app", "deadbolt-cli/1.2 (linux)", "deadbolt-cli/1.2 (linux)"},
		{"curl-like prefix", "curly/1.0", "curly/1.0"},
		{"browser without OS", "Chrome", "Chrome"},
		{"bot", googlebot, googlebot[:64]},
		{"long", strings.Repeat("x", 100), strings.Repeat("x", 64)},
		{"long multibyte", strings.Repeat("a", 63) + "é", strings.Repeat("a", 63)},
		{"cut before a space", strings.Repeat("a", 63) + " b", strings.Repeat("a", 63)},
		{"empty", "", "Unknown device"},
		{"only spaces", "   ", "Unknown device"},
		{"only controls", "\x00\r\n\t\x7f", "Unknown device"},
		{"control characters", "\x1b[31mevil\r\nSet-Cookie: x\x00", "[31mevil Set-Cookie: x"},
		{"invalid UTF-8", "caf\xe9 \xff\xfe agent", "caf agent"},
		{"bidi override", "abc\u202edef", "abc def"},
		{"unicode kept", "Navigateur-été/1.0", "Navigateur-été/1.0"},
		{"control around a tool", "\tcurl/8.5.0\n", "curl"},
		{"trimmed", "  my agent  ", "my agent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Describe(tc.ua); got != tc.want {
				t.Errorf("Describe(%q) = %q, want %q", tc.ua, got, tc.want)
			}
		})
	}
}

// TestDescribeSafe checks the promises about any input: valid UTF-8,
// printable only, at most 64 bytes for an unrecognised agent.
func TestDescribeSafe(t *testing.T) {
	inputs := []string{
		"", "\x00", "\xff", strings.Repeat("\xe2\x80", 700),
		strings.Repeat("é", 2000), strings.Repeat("a\x01", 1000),
		chromeWindows + "\r\n" + strings.Repeat("z", 5000),
	}
	for c := rune(0); c < 0x3000; c += 7 {
		inputs = append(inputs, "x"+string(c)+"y")
	}
	for _, ua := range inputs {
		got := Describe(ua)
		if !utf8.ValidString(got) {
			t.Errorf("Describe(%q) = %q, not valid UTF-8", ua, got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Errorf("Describe(%q) = %q, holds unprintable %U", ua, got, r)
			}
		}
		if len(got) > maxLen {
			t.Errorf("Describe(%q) = %q, %d bytes, want at most %d", ua, got, len(got), maxLen)
		}
	}
}

// TestDescribeConcurrent shares the parser between goroutines; run with
// -race it shows the shared trie is only read.
func TestDescribeConcurrent(t *testing.T) {
	agents := []string{firefoxLinux, chromeWindows, chromeAndroid, safariIPhone, edgeWindows, "curl/8.5.0", "x\x00y"}
	want := make([]string, len(agents))
	for i, ua := range agents {
		want[i] = Describe(ua)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(agents)
				if got := Describe(agents[k]); got != want[k] {
					t.Errorf("concurrent Describe(%q) = %q, want %q", agents[k], got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkDescribe(b *testing.B) {
	agents := []string{firefoxLinux, chromeWindows, chromeAndroid, safariIPhone, safariMac, edgeWindows, "curl/8.5.0", "x\x00y"}
	Describe("") // build the trie outside the timing
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Describe(agents[i%len(agents)])
	}
}
