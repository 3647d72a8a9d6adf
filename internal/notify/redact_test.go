package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	smtpd "github.com/emersion/go-smtp"

	"github.com/deadbolt/deadbolt"
)

// The message of the echo tests: a US number, for its national form too.
const (
	echoTo   = "+12025550143"
	echoCode = "123456"
	echoText = "Your Deadbolt code is " + echoCode + ". It expires soon."
)

// phoneLeaks are the forms of echoTo that must not survive, and the code.
var phoneLeaks = []string{echoTo, "%2B12025550143", "12025550143", "2025550143", "5550143", echoCode}

func echoSMS() *deadbolt.Message {
	return &deadbolt.Message{ID: "msg0abc1234", Channel: deadbolt.ChannelSMS, To: echoTo, Text: echoText}
}

// checkNoLeak fails if text contains any of leaks (case-insensitively) or
// the message text, or lacks any of keep.
func checkNoLeak(t *testing.T, text string, leaks, keep []string) {
	t.Helper()
	for _, l := range append(leaks, echoText) {
		if strings.Contains(strings.ToLower(text), strings.ToLower(l)) {
			t.Errorf("%q contains %q", text, l)
		}
	}
	for _, k := range keep {
		if !strings.Contains(text, k) {
			t.Errorf("%q does not contain %q", text, k)
		}
	}
}

// The rules are package redact's; the senders' own choice is the bound:
// standalone runs of 4 to 10 digits go, longer ones (traces) stay.
func TestRedactEcho(t *testing.T) {
	for in, want := range map[string]string{
		"pin 4711 and 0987654321":            "pin [digits] and [digits]",
		"trace 987654321098765":              "trace 987654321098765",
		"to " + echoTo + " body=" + echoText: "to [recipient] body=[text]",
	} {
		if got := redactEcho(in, echoSMS()); got != want {
			t.Errorf("redactEcho(%q) = %q, want %q", in, got, want)
		}
	}
}

// echoServer answers every request with status and what answer makes of
// the request: a provider that quotes the request it refuses.
func echoServer(t *testing.T, status int, answer func(r *http.Request, body []byte) string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer(r, b))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Answers of echoing providers.
var (
	echoRaw  = func(_ *http.Request, b []byte) string { return "invalid request: " + string(b) }
	echoJSON = func(_ *http.Request, b []byte) string {
		return `{"error":"invalid request","request":` + string(b) + `}`
	}
	echoDecodedJSON = func(_ *http.Request, b []byte) string {
		var req webhookBody
		_ = json.Unmarshal(b, &req)
		return fmt.Sprintf("invalid request: to=%s body=%s", req.To, req.Body)
	}
	echoDecodedForm = func(_ *http.Request, b []byte) string {
		f, _ := url.ParseQuery(string(b))
		return fmt.Sprintf("invalid request: to=%s body=%s", f.Get("To"), f.Get("Body"))
	}
	echoTwilioError = func(_ *http.Request, b []byte) string {
		f, _ := url.ParseQuery(string(b))
		msg, _ := json.Marshal(fmt.Sprintf("invalid request: The 'To' number %s is not valid (body %q)", f.Get("To"), f.Get("Body")))
		return `{"code":21211,"message":` + string(msg) + `,"more_info":"https://www.twilio.com/docs/errors/21211?to=` +
			url.QueryEscape(f.Get("To")) + `","status":400}`
	}
	// echoLong pads the echo so that the 1 KiB cut falls inside the code.
	echoLong = func(_ *http.Request, b []byte) string {
		f, _ := url.ParseQuery(string(b))
		prefix, body := "invalid request: code ", f.Get("Body")
		cut := strings.Index(body, echoCode) + 3 // "…code is 123|456…"
		return prefix + strings.Repeat("x", maxErrorBody-len(prefix)-1-cut) + " " + body
	}
)

func TestSMSProviderEchoRedacted(t *testing.T) {
	webhook := func(u string) deadbolt.Sender { return NewWebhook(u+"/sms", nil) }
	twilio := func(u string) deadbolt.Sender {
		tw, err := NewTwilio(u, testSID, testToken, "+15005550006", nil)
		if err != nil {
			panic(err)
		}
		return tw
	}
	tests := []struct {
		name   string
		sender func(url string) deadbolt.Sender
		answer func(r *http.Request, body []byte) string
		keep   []string // besides "HTTP <status>"
	}{
		{"webhook raw JSON", webhook, echoRaw, []string{"invalid request"}},
		{"webhook JSON document", webhook, echoJSON, []string{`\"error\":\"invalid request\"`}},
		{"webhook decoded", webhook, echoDecodedJSON, []string{"invalid request: to=[recipient] body=[text]"}},
		{"twilio raw form", twilio, echoRaw, []string{"invalid request"}},
		{"twilio decoded form", twilio, echoDecodedForm, []string{"invalid request: to=[recipient] body=[text]"}},
		{"twilio JSON error", twilio, echoTwilioError, []string{"The 'To' number [recipient] is not valid", "Twilio error 21211"}},
		{"twilio truncated echo", twilio, echoLong, []string{"invalid request: code", "(truncated)"}},
	}
	for _, tt := range tests {
		for _, status := range []int{http.StatusBadRequest, http.StatusInternalServerError} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, status), func(t *testing.T) {
				u := echoServer(t, status, tt.answer)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err := tt.sender(u).Send(ctx, echoSMS())
				if err == nil {
					t.Fatal("Send succeeded, want an error")
				}
				t.Logf("error: %v", err)
				if got, want := IsPermanent(err), status == http.StatusBadRequest; got != want {
					t.Errorf("IsPermanent = %v, want %v", got, want)
				}
				checkNoLeak(t, err.Error(), phoneLeaks, append([]string{fmt.Sprintf("HTTP %d", status)}, tt.keep...))
				// Partial pieces of the code at a cut, too.
				if strings.Contains(err.Error(), "1234") {
					t.Errorf("error %q contains a piece of the code", err)
				}
			})
		}
	}
}

func TestSMTPReplyEchoRedacted(t *testing.T) {
	reply := func(code int, ec smtpd.EnhancedCode, msg string) *smtpd.SMTPError {
		return &smtpd.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
	}
	m := testEmail() // alice@example.org, code 123456
	leaks := []string{m.To, "123456"}
	tests := []struct {
		name   string
		config serverConfig
		keep   []string
	}{
		{"550 on RCPT echoes the recipient",
			serverConfig{rcptErr: reply(550, smtpd.EnhancedCode{5, 1, 1}, "<"+m.To+">: Recipient address rejected: User unknown")},
			[]string{"550", "<[recipient]>: Recipient address rejected"}},
		{"450 on RCPT echoes it upper-cased",
			serverConfig{rcptErr: reply(450, smtpd.EnhancedCode{4, 2, 1}, "<"+strings.ToUpper(m.To)+"> mailbox busy")},
			[]string{"450", "mailbox busy"}},
		{"554 on DATA quotes the body",
			serverConfig{dataErr: reply(554, smtpd.EnhancedCode{5, 7, 1}, "rejected for "+m.To+": content 'Your code is 123456.' looks like spam")},
			[]string{"554", "looks like spam"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.config)
			s, err := NewSMTP("smtp://127.0.0.1:"+ts.port, "noreply@example.com", SMTPOptions{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), m)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			t.Logf("error: %v", err)
			checkNoLeak(t, err.Error(), leaks, tt.keep)
			// The error chain still classifies: 5xx permanent, 4xx not.
			if got, want := IsPermanent(err), tt.config.rcptErr == nil || tt.config.rcptErr.Code >= 500; got != want {
				t.Errorf("IsPermanent = %v, want %v", got, want)
			}
		})
	}
}
