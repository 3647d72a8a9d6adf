package deadbolt

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckText refuses free text that people type (names, descriptions) when
// it is not valid UTF-8, is longer than max characters, or holds a
// control character: NUL breaks PostgreSQL, CR and LF forge lines in
// emails, logs and CSV files, and the bidirectional overrides make an
// audit log or a report say something other than what is stored.
func CheckText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "The %s must be valid UTF-8 text.", fieldWords(field))
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Invalid(field, "The %s is at most %d characters.", fieldWords(field), max)
	}
	if i := strings.IndexFunc(s, forbiddenInText); i >= 0 {
		return Invalid(field, "The %s must not contain control characters such as line breaks or tabs.", fieldWords(field))
	}
	return nil
}

// forbiddenInText: C0 and C1 controls (tab and line breaks included), the
// Unicode line and paragraph separators, and the bidi embeddings,
// overrides and isolates.
func forbiddenInText(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

func fieldWords(field string) string { return strings.ReplaceAll(field, "_", " ") }
