package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func TestOutboxRing(t *testing.T) {
	tests := []struct {
		keep, send int
		want       []string // IDs, newest first
	}{
		{keep: 3, send: 0, want: nil},
		{keep: 3, send: 2, want: []string{"m1", "m0"}},
		{keep: 3, send: 3, want: []string{"m2", "m1", "m0"}},
		{keep: 3, send: 4, want: []string{"m3", "m2", "m1"}},
		{keep: 3, send: 8, want: []string{"m7", "m6", "m5"}},
		{keep: 1, send: 5, want: []string{"m4"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("keep %d send %d", tt.keep, tt.send), func(t *testing.T) {
			o := NewOutbox(slog.New(slog.DiscardHandler), tt.keep)
			for i := range tt.send {
				if err := o.Send(context.Background(), &deadbolt.Message{ID: fmt.Sprintf("m%d", i), Channel: deadbolt.ChannelSMS}); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, e := range o.Messages() {
				got = append(got, e.Message.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Messages() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOutboxDefaultSize(t *testing.T) {
	o := NewOutbox(nil, 0)
	o.log = slog.New(slog.DiscardHandler)
	for i := range 150 {
		if err := o.Send(context.Background(), &deadbolt.Message{ID: fmt.Sprint(i), Channel: deadbolt.ChannelEmail}); err != nil {
			t.Fatal(err)
		}
	}
	got := o.Messages()
	if len(got) != 100 || got[0].Message.ID != "149" || got[99].Message.ID != "50" {
		t.Errorf("got %d messages from %s to %s, want 100 from 149 to 50", len(got), got[0].Message.ID, got[len(got)-1].Message.ID)
	}
}

func TestOutboxCopiesAndLogs(t *testing.T) {
	var buf bytes.Buffer
	o := NewOutbox(slog.New(slog.NewJSONHandler(&buf, nil)), 10)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o.now = func() time.Time { return at }
	m := &deadbolt.Message{ID: "m1", Channel: deadbolt.ChannelEmail, To: "a@example.org", Subject: "Your code", Text: "Code: 123456"}
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	m.Text = "changed after Send"

	got := o.Messages()
	if len(got) != 1 || got[0].Message.Text != "Code: 123456" || !got[0].At.Equal(at) {
		t.Errorf("Messages() = %+v, want the message as sent, at %v", got, at)
	}
	got[0].Message.Text = "changed by the reader"
	if o.Messages()[0].Message.Text != "Code: 123456" {
		t.Error("Messages() shares its entries with the outbox")
	}

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.Bytes(), err)
	}
	want := map[string]any{
		"level":      "WARN",
		"msg":        "DEVELOPMENT OUTBOX: not delivered, not for production",
		"channel":    "email",
		"message_id": "m1",
		"to":         "a@example.org",
		"subject":    "Your code",
		"text":       "Code: 123456",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
}

func TestOutboxRefuses(t *testing.T) {
	o := NewOutbox(slog.New(slog.DiscardHandler), 2)
	for name, m := range map[string]*deadbolt.Message{
		"nil":             nil,
		"unknown channel": {Channel: "pigeon"},
	} {
		if err := o.Send(context.Background(), m); !IsPermanent(err) {
			t.Errorf("%s: Send = %v, want a permanent error", name, err)
		}
	}
	if n := len(o.Messages()); n != 0 {
		t.Errorf("outbox kept %d messages, want 0", n)
	}
}

func TestOutboxConcurrent(t *testing.T) {
	o := NewOutbox(slog.New(slog.DiscardHandler), 7)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				_ = o.Send(context.Background(), &deadbolt.Message{ID: fmt.Sprintf("%d-%d", i, j), Channel: deadbolt.ChannelSMS})
				_ = o.Messages()
			}
		})
	}
	wg.Wait()
	if n := len(o.Messages()); n != 7 {
		t.Errorf("outbox kept %d messages, want 7", n)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("mailbox unavailable")
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	err := Permanent(base)
	var pe *PermanentError
	if !errors.As(err, &pe) || !pe.Permanent() || !errors.Is(err, base) || err.Error() != base.Error() {
		t.Errorf("Permanent(%v) = %#v: want a *PermanentError wrapping it with the same message", base, err)
	}
	if again := Permanent(err); again != err {
		t.Errorf("Permanent(permanent) = %#v, want it unchanged", again)
	}
	wrapped := fmt.Errorf("send: %w", err)
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{base, false},
		{err, true},
		{wrapped, true},
		{&PermanentError{}, true},
		{notPermanent{}, false},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	// The worker's own test: an interface check, not this package's type.
	var p interface{ Permanent() bool }
	if !errors.As(wrapped, &p) || !p.Permanent() {
		t.Error("a wrapped PermanentError does not satisfy interface{ Permanent() bool }")
	}
	if !strings.Contains((&PermanentError{}).Error(), "permanent") {
		t.Error("PermanentError{} has no message")
	}
}

type notPermanent struct{}

func (notPermanent) Error() string   { return "temporary" }
func (notPermanent) Permanent() bool { return false }
