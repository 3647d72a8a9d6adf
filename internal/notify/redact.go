package notify

import (
	"encoding/json"
	netmail "net/mail"
	"net/url"
	"strings"

	"github.com/deadbolt/deadbolt"
)

// Placeholders for what redact removes. They name what was there, so an
// operator reading "to=[recipient] body=[text]" still understands the
// provider's complaint, and they contain no digits, so no later rule (here
// or in the delivery worker) matches them again.
const (
	redactedRecipient = "[recipient]"
	redactedText      = "[text]"
	redactedDigits    = "[digits]"
)

// minTextLen is the shortest message text replaced as a whole: a shorter
// one ("hi") would erase parts of unrelated words. Its passcode, if any, is
// still caught by the digit rules.
const minTextLen = 8

// redact removes from text, which comes from a provider (an HTTP response
// body, an SMTP reply), what it may echo of m: providers answer a bad
// request by quoting it, and the error ends up in the database, the audit
// log and the process log, where neither the live passcode nor the full
// address belongs. Removed are
//
//   - the message text as sent (raw, JSON-escaped, form-encoded);
//   - the recipient: as given, and for a phone number also "%2B…" and the
//     digits without "+"; for email the bare address, also percent-encoded;
//     all case-insensitively;
//   - every run of 4 or more digits found in the text, subject or HTML (the
//     passcode), wherever it appears;
//   - any other standalone run of 4 to 10 digits (a code or part of a
//     number in a form not listed above), standalone meaning not touching a
//     letter or another digit, so ids such as "msg0123abcd" survive.
//
// The rest of the provider's words stay, for debugging. m may be nil.
func redact(text string, m *deadbolt.Message) string {
	if m != nil {
		for _, t := range textForms(m.Text) {
			text = strings.ReplaceAll(text, t, redactedText)
		}
		for _, r := range recipientForms(m) {
			text = replaceFold(text, r, redactedRecipient)
		}
		for _, d := range digitRuns(m.Text + " " + m.Subject + " " + m.HTML) {
			text = strings.ReplaceAll(text, d, redactedDigits)
		}
	}
	return redactDigitRuns(text, 4, 10)
}

// textForms is the message text in the encodings the senders use, longest
// first so that no form is left half-replaced by a shorter one.
func textForms(text string) []string {
	if len(text) < minTextLen {
		return nil
	}
	forms := []string{text, url.QueryEscape(text)}
	if b, err := json.Marshal(text); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	return uniqueLongestFirst(forms)
}

// recipientForms is m.To as a provider may write it, longest first.
func recipientForms(m *deadbolt.Message) []string {
	to := strings.TrimSpace(m.To)
	if to == "" {
		return nil
	}
	forms := []string{to}
	if m.Channel == deadbolt.ChannelEmail {
		addr := to
		if a, err := netmail.ParseAddress(to); err == nil {
			addr = a.Address
		}
		forms = append(forms, addr, url.QueryEscape(addr))
	} else if digits, ok := strings.CutPrefix(to, "+"); ok && len(digits) >= 4 {
		// The 4-digit floor keeps a malformed "+1" from erasing every "1".
		forms = append(forms, "%2B"+digits, digits)
	}
	return uniqueLongestFirst(forms)
}

func uniqueLongestFirst(forms []string) []string {
	out := forms[:0]
	for _, f := range forms {
		if f != "" && !containsFold(out, f) {
			out = append(out, f)
		}
	}
	// Insertion sort: at most a handful of forms.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// replaceFold replaces every case-insensitive occurrence of old in s: SMTP
// servers lower-case addresses, and %2B may come back as %2b.
func replaceFold(s, old, repl string) string {
	if old == "" || len(old) > len(s) {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i+len(old) <= len(s); {
		if strings.EqualFold(s[i:i+len(old)], old) {
			b.WriteString(s[last:i])
			b.WriteString(repl)
			i += len(old)
			last = i
			continue
		}
		i++
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// digitRuns returns the runs of 4 or more ASCII digits in s, longest first.
func digitRuns(s string) []string {
	var runs []string
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j-i >= 4 {
			runs = append(runs, s[i:j])
		}
		i = j
	}
	if len(runs) == 0 {
		return nil
	}
	return uniqueLongestFirst(runs)
}

// redactDigitRuns replaces each standalone run of lo to hi digits (hi 0: no
// limit); see redact.
func redactDigitRuns(s string, lo, hi int) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		n := j - i
		standalone := (i == 0 || !isAlnum(s[i-1])) && (j == len(s) || !isAlnum(s[j]))
		if standalone && n >= lo && (hi == 0 || n <= hi) {
			b.WriteString(s[last:i])
			b.WriteString(redactedDigits)
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// redactedError shows a cleaned message and wraps the original error, so
// that errors.Is and errors.As (context errors, go-mail's SendError) still
// work. Only Error() reaches logs and the store.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// withMessage returns err with the message msg, keeping its chain and its
// permanence.
func withMessage(err error, msg string) error {
	if err == nil || msg == err.Error() {
		return err
	}
	r := &redactedError{msg: msg, err: err}
	if IsPermanent(err) {
		return &PermanentError{Err: r}
	}
	return r
}
