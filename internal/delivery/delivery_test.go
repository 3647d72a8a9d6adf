package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempts int
		want     time.Duration
	}{{1, 5 * time.Second}, {2, 10 * time.Second}, {3, 20 * time.Second}, {6, 160 * time.Second}, {7, 5 * time.Minute}, {50, 5 * time.Minute}}
	for _, tt := range tests {
		if got := backoff(tt.attempts); got != tt.want {
			t.Errorf("backoff(%d) = %v, want %v", tt.attempts, got, tt.want)
		}
	}
}

// sender answers with the errors it is given, in turn, then nil.
type sender struct {
	mu   sync.Mutex
	errs []error
	sent []string
}

func (s *sender) Send(_ context.Context, m *deadbolt.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return err
	}
	s.sent = append(s.sent, m.Text)
	return nil
}

type permanentErr struct{}

func (permanentErr) Error() string   { return "550 no such mailbox" }
func (permanentErr) Permanent() bool { return true }

func setup(t *testing.T) (*store.DB, *deadbolt.User) {
	keys, _ := secret.Generate()
	db := storetest.OpenSQLite(t, keys)
	acc := &deadbolt.Account{Slug: "acme", Name: "Acme", Policy: deadbolt.DefaultPolicy()}
	u := &deadbolt.User{Email: "o@acme.example", Name: "O", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
	if err := db.CreateAccount(context.Background(), acc, u); err != nil {
		t.Fatal(err)
	}
	return db, u
}

func TestDeliver(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		errs       []error
		expires    time.Duration // 0: never
		advance    time.Duration // between attempts
		attempts   int           // Drain calls
		wantSent   int
		wantStatus string // the last audit event type
	}{
		{"first time", nil, 0, 0, 1, 1, deadbolt.AuditMessageSent},
		{"retried after a temporary failure", []error{errors.New("connection refused")}, 0, 5 * time.Second, 2, 1, deadbolt.AuditMessageSent},
		{"not retried before its time", []error{errors.New("connection refused")}, 0, 4 * time.Second, 2, 0, deadbolt.AuditMessageAttemptFailed},
		{"a permanent failure is final", []error{permanentErr{}}, 0, time.Hour, 2, 0, deadbolt.AuditMessageFailed},
		{"no retry past the code's expiry", []error{errors.New("timeout")}, 3 * time.Second, time.Hour, 2, 0, deadbolt.AuditMessageFailed},
		{"gives up after max attempts", []error{errors.New("a"), errors.New("b"), errors.New("c")}, 0, time.Hour, 3, 0, deadbolt.AuditMessageFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, u := setup(t)
			clock := now
			snd := &sender{errs: tt.errs}
			w := New(Options{Store: db, Senders: map[deadbolt.Channel]deadbolt.Sender{deadbolt.ChannelEmail: snd},
				Now: func() time.Time { return clock }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxAttempts: 3})
			m := &deadbolt.Message{AccountID: u.AccountID, UserID: u.ID, Channel: deadbolt.ChannelEmail, To: u.Email, Text: "hello", CreatedAt: now}
			if tt.expires > 0 {
				m.ExpiresAt = now.Add(tt.expires)
			}
			if err := db.QueueMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
			for i := range tt.attempts {
				if i > 0 {
					clock = clock.Add(tt.advance)
				}
				w.Drain(ctx)
			}
			if len(snd.sent) != tt.wantSent {
				t.Errorf("sent %d, want %d", len(snd.sent), tt.wantSent)
			}
			events, _ := db.FindEvents(ctx, u.AccountID, deadbolt.AuditFilter{})
			if len(events) == 0 || events[0].Type != tt.wantStatus {
				t.Fatalf("last event = %v, want %s", events, tt.wantStatus)
			}
			if events[0].Details["to"] == u.Email || events[0].Details["message_id"] != m.ID {
				t.Errorf("event details = %v, want the message id and a masked address", events[0].Details)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	db, u := setup(t)
	now := time.Now()
	w := New(Options{Store: db, Senders: map[deadbolt.Channel]deadbolt.Sender{}, Now: func() time.Time { return now }})
	if st, err := w.Status(ctx); err != nil || !st.Healthy || st.Queued != 0 {
		t.Errorf("empty queue status = %+v, %v", st, err)
	}
	db.QueueMessage(ctx, &deadbolt.Message{AccountID: u.AccountID, UserID: u.ID, Channel: deadbolt.ChannelSMS, To: "+12025550143", Text: "x", CreatedAt: now.Add(-3 * time.Minute)})
	if st, _ := w.Status(ctx); st.Healthy || st.Queued != 1 || st.OldestQueued < 3*time.Minute {
		t.Errorf("status with a message queued 3 minutes = %+v, want unhealthy", st)
	}
}
