// Package useragent names a device from its User-Agent header, for the
// sign-in history and new-sign-in notices ("Firefox on Linux"). It wraps
// github.com/medama-io/go-useragent, a trie-based parser with no
// allocations per parse, because browser detection is data that changes
// with every release, not code to keep by hand.
//
// The header is chosen by the client, so whatever Describe returns is short
// and holds no control or format characters; escaping it for HTML, email
// or a log stays the caller's job.
package useragent

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	uaparser "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// maxLen is the most bytes of the agent itself that Describe returns, so a
// page or a notice never carries a kilobyte of header.
const maxLen = 64

// maxInput is how much of the header is looked at. Real agents are a few
// hundred bytes; the cap bounds the work a client can cause with a huge
// header (net/http allows 1 MiB of headers).
const maxInput = 1024

// parser builds the library's trie (some 25 ms) on first use rather than at
// init, so programs and tests that never describe an agent do not pay for
// it. The parser is read-only after it is built (Parse only walks the trie
// and returns a value), so one is shared by all goroutines.
var parser = sync.OnceValue(uaparser.NewParser)

// tools are command-line clients and HTTP libraries, named by their
// product token ("curl/8.5.0"). The library marks some of them as bots and
// names no browser, so Describe recognises them itself.
var tools = map[string]bool{
	"curl":            true,
	"Wget":            true,
	"HTTPie":          true,
	"python-requests": true,
	"Go-http-client":  true,
	"okhttp":          true,
	"PostmanRuntime":  true,
}

// Describe returns a short name for the device behind a User-Agent:
// "Firefox on Linux", "Chrome on Android", "Safari on iPhone", "Edge on
// Windows", or "curl" for a known command-line client. An agent it does not
// recognise (no browser or no operating system found) is returned itself,
// cleaned: every run of characters that are not printable (controls,
// format characters such as bidi overrides, invalid UTF-8, tabs) becomes
// one space, the ends are trimmed, and it is cut to at most 64 bytes on a
// character boundary. An empty agent, or one with nothing printable, is
// "Unknown device". The result never holds a control character.
func Describe(ua string) string {
	if len(ua) > maxInput {
		// A rune cut in two here is invalid UTF-8, which clean drops.
		ua = ua[:maxInput]
	}
	s := clean(ua)
	if s == "" {
		return "Unknown device"
	}
	if product, _, _ := strings.Cut(s, "/"); tools[product] {
		return product
	}
	a := parser().Parse(s)
	browser, system := a.Browser(), a.OS()
	if browser == "" || system == "" {
		return truncate(s)
	}
	return string(browser) + " on " + osName(system, a)
}

// osName names the operating system as people know their device: an iOS
// device by its kind, since "Safari on iPhone" says more than "on iOS".
func osName(system agents.OS, a uaparser.UserAgent) string {
	switch system {
	case agents.OSIOS:
		if a.IsTablet() {
			return "iPad"
		}
		return "iPhone"
	case agents.OSMacOS:
		return "macOS"
	}
	return string(system)
}

// clean replaces each run of unprintable characters or spaces in s by one
// space and trims the ends. Printable is unicode.IsPrint: letters, marks,
// numbers, punctuation, symbols and the ASCII space, so no control, format
// (U+202E), line or paragraph separator survives.
func clean(s string) string {
	if isClean(s) {
		return s // the common case: a well-formed agent, no allocation
	}
	var b strings.Builder
	b.Grow(len(s))
	space := true // drops leading separators
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == ' ' || (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteRune(r)
		space = false
	}
	return strings.TrimSuffix(b.String(), " ")
}

// isClean reports whether s is printable ASCII without leading, trailing
// or doubled spaces, which clean would return unchanged.
func isClean(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || (c == ' ' && s[i-1] == ' ') {
			return false
		}
	}
	return true
}

// truncate cuts a cleaned string to at most maxLen bytes, on a rune
// boundary so the result stays valid UTF-8, without a trailing space.
func truncate(s string) string {
	if len(s) <= maxLen {
		return s
	}
	n := maxLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSuffix(s[:n], " ")
}
