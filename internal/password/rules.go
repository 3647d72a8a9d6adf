package password

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Length limits, in Unicode code points after NFC normalisation.
const (
	// MinLength is the minimum length of a password that is the only
	// authentication factor (NIST SP 800-63B-4: 15).
	MinLength = 15
	// MinLengthWith2FA is the minimum length of a password used with a
	// second factor (NIST SP 800-63B-4: 8). It is also the lowest minimum
	// [Check] accepts.
	MinLengthWith2FA = 8
	// MaxLength is the maximum length of a password (NIST requires at
	// least 64 to be allowed).
	MaxLength = 256
)

// minContextWord is the shortest context word that a password may not
// contain. Shorter words would refuse too many good passwords.
const minContextWord = 4

// maxAffix is the longest run of digits or symbols that may be added to a
// blocklisted word and still count as that word.
const maxAffix = 4

// RuleError reports a password that breaks a rule. Reason is a
// human-readable, lower-case phrase meant to follow "Your password ", such
// as "must be at least 15 characters". It never contains the password.
type RuleError struct {
	Reason string
}

// Error returns "password " followed by the reason.
func (e *RuleError) Error() string { return "password " + e.Reason }

// Reasons given in RuleError.
const (
	reasonInvalidUTF8 = "must be valid UTF-8 text"
	reasonControl     = "must not contain control characters such as tabs or line breaks"
	reasonTooLong     = "must be at most 256 characters"
	reasonRepeatedOne = "must not be a single character repeated"
	reasonRepeated    = "must not be a short pattern repeated"
	reasonSequence    = "must not be a simple sequence such as abcd or 1234"
	reasonCommon      = "is too common: it appears in lists of breached passwords"
	reasonDerived     = "is too easy to guess: it is a common password with a few characters added"
	reasonContext     = "must not contain your email address, account name or other words related to you"
)

func ruleErr(reason string) error { return &RuleError{Reason: reason} }

//go:embed blocklist.txt
var blocklistText string

// blocklist returns the set of blocklisted passwords, case-folded.
var blocklist = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 1200)
	for line := range strings.Lines(blocklistText) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[fold(line)] = struct{}{}
	}
	return m
})

func blocked(s string) bool {
	_, ok := blocklist()[s]
	return ok
}

// fold returns s case-folded (so that "PASSWORD", "Password" and
// "password" compare equal) and in NFC.
func fold(s string) string {
	return norm.NFC.String(cases.Fold().String(s))
}

// Check reports whether password satisfies the password rules, returning a
// [*RuleError] if not. After NFC normalisation the password must be at least
// minLen and at most [MaxLength] Unicode code points long; callers pass
// [MinLength], or [MinLengthWith2FA] when the account must use a second
// factor (a minLen below MinLengthWith2FA is raised to it). It must be valid
// UTF-8 without control characters (tabs and line breaks included; spaces
// are fine), must not be a character or short pattern repeated or a simple
// sequence, and must not be on the blocklist of common and breached
// passwords, compared case-insensitively, even with a few digits or symbols
// added. There are no composition rules.
func Check(password string, minLen int) error {
	return CheckWithContext(password, minLen)
}

// CheckWithContext is [Check] that also refuses passwords that equal
// (case-insensitively) any of the context strings or contain any word of
// at least 4 characters from them. Pass the user's email address, account
// name, display name and the name of the service. Each context string is
// used whole and also split into words at every character that is not a
// letter or digit, so "jane.doe@example.com" contributes "jane.doe@example.com",
// "jane", "example" and so on. Empty context strings are ignored.
func CheckWithContext(password string, minLen int, context ...string) error {
	if !utf8.ValidString(password) {
		return ruleErr(reasonInvalidUTF8)
	}
	for _, r := range password {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ruleErr(reasonControl)
		}
	}

	minLen = max(minLen, MinLengthWith2FA)
	minLen = min(minLen, MaxLength)
	n := utf8.RuneCountInString(norm.NFC.String(password))
	if n < minLen {
		return ruleErr(fmt.Sprintf("must be at least %d characters", minLen))
	}
	if n > MaxLength {
		return ruleErr(reasonTooLong)
	}

	f := fold(password)
	runes := []rune(f)
	if period := repetitionPeriod(runes); period < len(runes) && period < MinLengthWith2FA {
		if period == 1 {
			return ruleErr(reasonRepeatedOne)
		}
		return ruleErr(reasonRepeated)
	}
	if isSequence(runes) {
		return ruleErr(reasonSequence)
	}
	if blocked(f) {
		return ruleErr(reasonCommon)
	}
	if isDerived(f) {
		return ruleErr(reasonDerived)
	}
	if containsContext(f, context) {
		return ruleErr(reasonContext)
	}
	return nil
}

// repetitionPeriod returns the length of the shortest unit that r is a
// whole number of repetitions of (len(r) if none).
func repetitionPeriod(r []rune) int {
	n := len(r)
outer:
	for d := 1; d < n; d++ {
		if n%d != 0 {
			continue
		}
		for i := d; i < n; i++ {
			if r[i] != r[i-d] {
				continue outer
			}
		}
		return d
	}
	return n
}

// isSequence reports whether r (at least 3 runes) is an ascending or
// descending run of consecutive code points such as "abcdef" or "98765",
// digits wrapping around ("7890123").
func isSequence(r []rune) bool {
	if len(r) < 3 {
		return false
	}
	for _, dir := range []rune{1, -1} {
		ok := true
		for i := 1; i < len(r) && ok; i++ {
			a, b := r[i-1], r[i]
			ok = b == a+dir ||
				(dir == 1 && a == '9' && b == '0') ||
				(dir == -1 && a == '0' && b == '9')
		}
		if ok {
			return true
		}
	}
	return false
}

// isDerived reports whether f (folded) is a blocklisted password of at least
// 4 characters with trivial prefixes or suffixes of digits, symbols or
// spaces added, such as "password123!" or "!!iloveyou2024".
func isDerived(f string) bool {
	notLetter := func(r rune) bool { return !unicode.IsLetter(r) }
	notAlnum := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	type trim struct {
		left, right bool
		cut         func(rune) bool
	}
	for _, t := range []trim{
		{true, true, notLetter},
		{false, true, notLetter},
		{true, false, notLetter},
		{true, true, notAlnum},
	} {
		start, end := 0, len(f)
		if t.left {
			start = len(f) - len(strings.TrimLeftFunc(f, t.cut))
		}
		if t.right {
			end = len(strings.TrimRightFunc(f, t.cut))
		}
		if start >= end || (start == 0 && end == len(f)) {
			continue
		}
		core := f[start:end]
		if utf8.RuneCountInString(core) < 4 || !blocked(core) {
			continue
		}
		if trivialAffix(f[:start]) && trivialAffix(f[end:]) {
			return true
		}
	}
	return false
}

// trivialAffix reports whether s adds little to a password it is attached
// to: it is short, repetitive, sequential or itself blocklisted.
func trivialAffix(s string) bool {
	r := []rune(s)
	return len(r) <= maxAffix || repetitionPeriod(r) < len(r) || isSequence(r) || blocked(s)
}

// containsContext reports whether f (folded) equals a context string or
// contains a context word of at least minContextWord characters.
func containsContext(f string, context []string) bool {
	for _, c := range context {
		c = fold(strings.TrimSpace(c))
		if c == "" {
			continue
		}
		if f == c {
			return true
		}
		words := strings.FieldsFunc(c, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		words = append(words, c)
		if local, _, ok := strings.Cut(c, "@"); ok {
			words = append(words, local)
		}
		for _, w := range words {
			if utf8.RuneCountInString(w) >= minContextWord && strings.Contains(f, w) {
				return true
			}
		}
	}
	return false
}
