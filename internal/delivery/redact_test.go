package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/notify"
)

const (
	testPhone = "+12025550143"
	testCode  = "123456"
	testText  = "Your Deadbolt code is " + testCode + ". It expires soon."
)

// The rules are package redact's; the worker's own choice is the bound:
// every standalone run of 4 or more digits goes, however long.
func TestScrub(t *testing.T) {
	m := &deadbolt.Message{Channel: deadbolt.ChannelSMS, To: testPhone, Text: testText}
	in := "HTTP 503: pin 4711, ref 98765432109876, to " + testPhone + " body=" + testText
	if got, want := scrub(in, m), "HTTP 503: pin [digits], ref [digits], to [recipient] body=[text]"; got != want {
		t.Errorf("scrub(%q) = %q, want %q", in, got, want)
	}
}

// echoProvider is an SMS provider that refuses every request with status,
// quoting the request: the raw body, and its decoded fields.
func echoProvider(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req struct{ To, Body string } // the webhook's JSON
		if json.Unmarshal(b, &req) != nil {
			f, _ := url.ParseQuery(string(b)) // Twilio's form
			req.To, req.Body = f.Get("To"), f.Get("Body")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "invalid request: %s (to=%s body=%s)", b, req.To, req.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// senderFunc adapts a function to deadbolt.Sender.
type senderFunc func(ctx context.Context, m *deadbolt.Message) error

func (f senderFunc) Send(ctx context.Context, m *deadbolt.Message) error { return f(ctx, m) }

// forgetful is a sender that redacts nothing: the worker must.
func forgetful(permanent bool) deadbolt.Sender {
	return senderFunc(func(_ context.Context, m *deadbolt.Message) error {
		err := fmt.Errorf("provider: HTTP 400: to=%s (%s, %s) body=%q code=%s",
			m.To, url.QueryEscape(m.To), strings.TrimPrefix(m.To, "+"), m.Text, testCode)
		if permanent {
			return notify.Permanent(err)
		}
		return err
	})
}

func TestDeliverRedactsErrors(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	webhook := func(status int) func(*testing.T) deadbolt.Sender {
		return func(t *testing.T) deadbolt.Sender { return notify.NewWebhook(echoProvider(t, status)+"/sms", nil) }
	}
	twilio := func(status int) func(*testing.T) deadbolt.Sender {
		return func(t *testing.T) deadbolt.Sender {
			tw, err := notify.NewTwilio(echoProvider(t, status), "AC0123", "tok_secret", "+15005550006", nil)
			if err != nil {
				t.Fatal(err)
			}
			return tw
		}
	}
	tests := []struct {
		name      string
		channel   deadbolt.Channel
		to        string
		sender    func(*testing.T) deadbolt.Sender
		wantEvent string
		wantInErr string
	}{
		{"webhook 400", deadbolt.ChannelSMS, testPhone, webhook(400), deadbolt.AuditMessageFailed, "HTTP 400"},
		{"webhook 500", deadbolt.ChannelSMS, testPhone, webhook(500), deadbolt.AuditMessageAttemptFailed, "HTTP 500"},
		{"twilio 400", deadbolt.ChannelSMS, testPhone, twilio(400), deadbolt.AuditMessageFailed, "HTTP 400"},
		{"twilio 500", deadbolt.ChannelSMS, testPhone, twilio(500), deadbolt.AuditMessageAttemptFailed, "HTTP 500"},
		{"forgetful sender, temporary", deadbolt.ChannelSMS, testPhone,
			func(*testing.T) deadbolt.Sender { return forgetful(false) }, deadbolt.AuditMessageAttemptFailed, "HTTP 400"},
		{"forgetful sender, permanent", deadbolt.ChannelSMS, testPhone,
			func(*testing.T) deadbolt.Sender { return forgetful(true) }, deadbolt.AuditMessageFailed, "HTTP 400"},
		{"forgetful email sender", deadbolt.ChannelEmail, "Someone@Acme.example",
			func(*testing.T) deadbolt.Sender { return forgetful(true) }, deadbolt.AuditMessageFailed, "HTTP 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, u := setup(t)
			var logs bytes.Buffer
			w := New(Options{Store: db, Senders: map[deadbolt.Channel]deadbolt.Sender{tt.channel: tt.sender(t)},
				Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			m := &deadbolt.Message{AccountID: u.AccountID, UserID: u.ID, Channel: tt.channel, To: tt.to, Text: testText, CreatedAt: now}
			if err := db.QueueMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
			w.Drain(ctx)

			leaks := []string{tt.to, testCode, testText, strings.TrimPrefix(tt.to, "+"), url.QueryEscape(tt.to), "2025550143"}
			check := func(where, got string) {
				t.Helper()
				for _, l := range leaks {
					if strings.Contains(strings.ToLower(got), strings.ToLower(l)) {
						t.Errorf("%s %q contains %q", where, got, l)
					}
				}
				if !strings.Contains(got, tt.wantInErr) {
					t.Errorf("%s %q does not contain %q", where, got, tt.wantInErr)
				}
			}

			var lastError string
			if err := db.SQL().QueryRowContext(ctx, `SELECT last_error FROM messages WHERE id = ?`, m.ID).Scan(&lastError); err != nil {
				t.Fatal(err)
			}
			check("stored last error", lastError)

			events, err := db.FindEvents(ctx, u.AccountID, deadbolt.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(events) == 0 || events[0].Type != tt.wantEvent {
				t.Fatalf("last event = %v, want %s", events, tt.wantEvent)
			}
			check("audit event error", events[0].Details["error"])

			check("log output", logs.String())

			st, err := w.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			check("status last error", st.LastError)
			t.Logf("stored: %s", lastError)
		})
	}
}

// The forgetful sender's error really carries the secrets: without it the
// test above would prove nothing about the worker.
func TestForgetfulSenderLeaks(t *testing.T) {
	m := &deadbolt.Message{Channel: deadbolt.ChannelSMS, To: testPhone, Text: testText}
	err := forgetful(false).Send(context.Background(), m)
	for _, want := range []string{testPhone, "%2B12025550143", testCode} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("forgetful error %v does not contain %q", err, want)
		}
	}
}
