package delivery

import (
	netmail "net/mail"
	"net/url"
	"strings"

	"github.com/deadbolt/deadbolt"
)

// Placeholders; the same words as package notify uses, and without digits so
// that the digit rule below cannot match them.
const (
	redactedRecipient = "[recipient]"
	redactedText      = "[text]"
	redactedDigits    = "[digits]"
)

// scrub cleans a sender's error text before it is stored (last_error),
// audited, logged or shown on /readyz. The senders of package notify redact
// provider answers already; this is defence in depth, for any Sender, so
// it is deliberately blunter and does not depend on notify. It removes
//
//   - the message text (when at least 8 bytes: a shorter one would erase
//     parts of unrelated words);
//   - the recipient as given and, for a phone number, "%2B…" and the digits
//     without "+"; for email the bare address, also percent-encoded; all
//     case-insensitively;
//   - every run of 4+ digits that occurs in the message's text, subject or
//     HTML (its passcode), wherever it appears;
//   - every other standalone run of 4+ digits (not touching a letter or a
//     digit): codes and pieces of numbers in forms not listed above. This
//     also hides 4-digit and longer numbers that are harmless (ports,
//     provider error codes); losing those is the price of not leaking a
//     code through a sender that forgot to redact.
func scrub(s string, m *deadbolt.Message) string {
	if len(m.Text) >= 8 {
		s = strings.ReplaceAll(s, m.Text, redactedText)
	}
	for _, r := range recipientForms(m) {
		s = replaceFold(s, r, redactedRecipient)
	}
	for _, d := range digitRuns(m.Text + " " + m.Subject + " " + m.HTML) {
		s = strings.ReplaceAll(s, d, redactedDigits)
	}
	return scrubDigitRuns(s)
}

// recipientForms is m.To as an error may show it, longest first.
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
		// "Name <addr>" (to) must go before addr, which it contains; the
		// encoded form contains neither.
		forms = append(forms, url.QueryEscape(addr), addr)
		return forms
	}
	if digits, ok := strings.CutPrefix(to, "+"); ok && len(digits) >= 4 {
		// Longest first: "%2B…" and "+…" before the bare digits they contain.
		forms = []string{"%2B" + digits, to, digits}
	}
	return forms
}

// replaceFold replaces every case-insensitive occurrence of old in s.
func replaceFold(s, old, repl string) string {
	if old == "" {
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

// digitRuns returns the runs of 4+ digits in s, longest first, so that a
// shorter run cannot split a longer one before it is replaced.
func digitRuns(s string) []string {
	var runs []string
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j-i >= 4 {
			runs = append(runs, s[i:j])
		}
		i = max(j, i+1)
	}
	for i := 1; i < len(runs); i++ {
		for j := i; j > 0 && len(runs[j]) > len(runs[j-1]); j-- {
			runs[j], runs[j-1] = runs[j-1], runs[j]
		}
	}
	return runs
}

// scrubDigitRuns replaces each standalone run of 4+ digits.
func scrubDigitRuns(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j-i >= 4 && (i == 0 || !isAlnum(s[i-1])) && (j == len(s) || !isAlnum(s[j])) {
			b.WriteString(s[last:i])
			b.WriteString(redactedDigits)
			last = j
		}
		i = max(j, i+1)
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
