package redact

import (
	"net/url"
	"testing"

	"github.com/deadbolt/deadbolt"
)

// The bounds on standalone digit runs of the two callers: package notify's
// senders keep longer numbers (traces, ids); the delivery worker keeps none.
type bounds struct{ min, max int }

var (
	sender = bounds{4, 10}
	worker = bounds{4, 0}
)

const (
	testPhone = "+12025550143"
	testCode  = "123456"
	testText  = "Your Deadbolt code is " + testCode + ". It expires soon."
)

func TestMessage(t *testing.T) {
	sms := &deadbolt.Message{ID: "msg0abc1234", Channel: deadbolt.ChannelSMS, To: testPhone, Text: testText}
	short := &deadbolt.Message{Channel: deadbolt.ChannelSMS, To: testPhone, Text: "hi"}
	alice := &deadbolt.Message{Channel: deadbolt.ChannelEmail, To: "Alice <alice@example.org>",
		Subject: "Code 987654", Text: "Your code is 987654.\nBye"}
	acme := &deadbolt.Message{Channel: deadbolt.ChannelEmail, To: "o@acme.example", Subject: "Code 987654", Text: "Your code is 987654"}
	tests := []struct {
		name  string
		rules bounds
		in    string
		m     *deadbolt.Message
		want  string
	}{
		// The senders' rules.
		{"echoed request", sender, "invalid request: to=+12025550143 body=" + testText, sms,
			"invalid request: to=[recipient] body=[text]"},
		{"form-encoded", sender, "bad: To=%2b12025550143&Body=" + url.QueryEscape(testText), sms,
			"bad: To=[recipient]&Body=[text]"},
		{"JSON-escaped text", sender, `{"body":"line\nYour code is 123456"}`,
			&deadbolt.Message{Channel: deadbolt.ChannelSMS, To: testPhone, Text: "line\nYour code is 123456"},
			`{"body":"[text]"}`},
		{"digits without plus", sender, "number 12025550143 unreachable", sms, "number [recipient] unreachable"},
		{"national form", sender, "number (202) 555-0143 unreachable", sms, "number (202) 555-[digits] unreachable"},
		{"code glued to a word", sender, "got code123456", sms, "got code[digits]"},
		{"code reformatted", sender, "code: 123456!", sms, "code: [digits]!"},
		{"other standalone code", sender, "pin 4711 and 0987654321", sms, "pin [digits] and [digits]"},
		{"ids and status kept", sender, "HTTP 400: id msg0abc1234, ref AC98765432ab", sms, "HTTP 400: id msg0abc1234, ref AC98765432ab"},
		{"long numbers kept", sender, "trace 987654321098765", sms, "trace 987654321098765"},
		{"11 digits kept", sender, "trace 09876543210", sms, "trace 09876543210"},
		{"email address, any case", sender, "550 5.1.1 <ALICE@example.org>: Recipient address rejected", alice,
			"550 5.1.1 <[recipient]>: Recipient address rejected"},
		{"email with name", sender, "rejected Alice <alice@example.org>", alice, "rejected [recipient]"},
		{"email code from subject", sender, "spam score for 987654", alice, "spam score for [digits]"},
		{"short text not replaced as a whole", sender, "hi there, this is fine", short, "hi there, this is fine"},
		{"nil message", sender, "code 123456 for +12025550143", nil, "code [digits] for +12025550143"},
		{"empty", sender, "", sms, ""},

		// The delivery worker's rules.
		{"everything echoed", worker, "400: to=+12025550143 body=" + testText, sms, "400: to=[recipient] body=[text]"},
		{"encoded and bare number", worker, "To=%2b12025550143 or 12025550143", sms, "To=[recipient] or [recipient]"},
		{"national number", worker, "call 2025550143", sms, "call [digits]"},
		{"code glued to a word, worker", worker, "code123456", sms, "code[digits]"},
		{"any standalone 4+ digits", worker, "pin 4711, ref 98765432109876", sms, "pin [digits], ref [digits]"},
		{"3 digits and ids kept", worker, "HTTP 503: id msg0abc9876", sms, "HTTP 503: id msg0abc9876"},
		{"placeholders kept", worker, "to=[recipient] body=[text] [digits]", sms, "to=[recipient] body=[text] [digits]"},
		{"email address any case", worker, "550 <O@Acme.Example> rejected", acme, "550 <[recipient]> rejected"},
		{"email code from subject, worker", worker, "spam: 987654", acme, "spam: [digits]"},
		{"short text not replaced as a whole, worker", worker, "hi there", short, "hi there"},
		{"no recipient", worker, "connection refused", &deadbolt.Message{}, "connection refused"},
		{"form-encoded text, worker", worker, "Body=" + url.QueryEscape(testText), sms, "Body=[text]"},
		{"nil message, worker", worker, "code 123456 for +12025550143", nil, "code [digits] for +[digits]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Message(tt.in, tt.m, tt.rules.min, tt.rules.max); got != tt.want {
				t.Errorf("Message(%q, %d, %d) = %q, want %q", tt.in, tt.rules.min, tt.rules.max, got, tt.want)
			}
		})
	}
}
