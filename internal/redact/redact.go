// Package redact removes from error text what must never be stored or
// logged of a message: its recipient, its text and its codes. Providers
// answer a bad request by quoting it (an HTTP response body, an SMTP reply),
// and the error ends up in the database, the audit log and the process log,
// where neither the live passcode nor the full address belongs.
//
// The rules live here once; the senders of package notify and the delivery
// worker apply them with their own bound on standalone digit runs.
package redact

import (
	"encoding/json"
	"iter"
	netmail "net/mail"
	"net/url"
	"strings"

	"github.com/deadbolt/deadbolt"
)

// Placeholders for what Message removes. They name what was there, so an
// operator reading "to=[recipient] body=[text]" still understands the
// provider's complaint, and they contain no digits, so no later rule (a
// second pass, such as the delivery worker's after a sender's) matches them
// again.
const (
	redactedRecipient = "[recipient]"
	redactedText      = "[text]"
	redactedDigits    = "[digits]"
)

// minTextLen is the shortest message text replaced as a whole: a shorter
// one ("hi") would erase parts of unrelated words. Its passcode, if any, is
// still caught by the digit rules.
const minTextLen = 8

// Message removes from text what must never be stored or logged of m:
//
//   - the message text as sent (raw, JSON-escaped, form-encoded), when it
//     is at least 8 bytes long;
//   - the recipient: as given, and for a phone number also "%2B…" and the
//     digits without "+"; for email the bare address, also percent-encoded;
//     all case-insensitively;
//   - every run of 4 or more digits found in the text, subject or HTML (the
//     passcode), wherever it appears;
//   - any other standalone run of minDigits to maxDigits digits (maxDigits
//     0: no limit), standalone meaning not touching a letter or another
//     digit, so ids such as "msg0123abcd" survive: a code, or part of a
//     number in a form not listed above.
//
// The rest of the text stays, for debugging. m may be nil: then only the
// standalone digit rule applies.
func Message(text string, m *deadbolt.Message, minDigits, maxDigits int) string {
	if m != nil {
		for _, t := range textForms(m.Text) {
			text = strings.ReplaceAll(text, t, redactedText)
		}
		for _, r := range recipientForms(m) {
			text = replaceFold(text, r, redactedRecipient)
		}
		for _, d := range codes(m.Text + " " + m.Subject + " " + m.HTML) {
			text = strings.ReplaceAll(text, d, redactedDigits)
		}
	}
	return standaloneDigits(text, minDigits, maxDigits)
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

// recipientForms is m.To as a provider may write it, longest first: "Name
// <addr>" before the addr it contains, "%2B…" and "+…" before the bare
// digits they contain.
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

// uniqueLongestFirst drops empty and case-insensitively repeated forms and
// sorts the rest longest first, keeping the order of equally long ones.
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

// codes returns the runs of 4 or more digits in s, longest first, so that
// a shorter run cannot split a longer one before it is replaced.
func codes(s string) []string {
	var runs []string
	for i, j := range digitRuns(s) {
		if j-i >= 4 {
			runs = append(runs, s[i:j])
		}
	}
	return uniqueLongestFirst(runs)
}

// standaloneDigits replaces each standalone run of lo to hi digits (hi 0:
// no limit); see Message.
func standaloneDigits(s string, lo, hi int) string {
	var b strings.Builder
	last := 0
	for i, j := range digitRuns(s) {
		n := j - i
		standalone := (i == 0 || !isAlnum(s[i-1])) && (j == len(s) || !isAlnum(s[j]))
		if standalone && n >= lo && (hi == 0 || n <= hi) {
			b.WriteString(s[last:i])
			b.WriteString(redactedDigits)
			last = j
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// digitRuns yields the start and end of each maximal run of ASCII digits in
// s.
func digitRuns(s string) iter.Seq2[int, int] {
	return func(yield func(int, int) bool) {
		for i := 0; i < len(s); {
			if !isDigit(s[i]) {
				i++
				continue
			}
			j := i + 1
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			if !yield(i, j) {
				return
			}
			i = j
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
