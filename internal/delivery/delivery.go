// Package delivery is the outbox relay: a worker that takes queued messages
// from the store and hands them to the senders, with retries.
//
// Messages are written to the store in the same transaction as the
// passcode they carry, so nothing is lost when a provider is down or the
// process dies. Each message is leased to one worker at a time (across
// processes); the lease outlives the send timeout, so a message is never in
// two sends at once. The only way to send one twice is a crash between the
// provider accepting it and the store recording that: for that window the
// senders pass the message id along (Message-ID, Idempotency-Key) so the
// receiving side can drop the duplicate.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is what the worker needs of the storage.
type Store interface {
	deadbolt.MessageStore
	RecordEvent(ctx context.Context, e *deadbolt.AuditEvent) error
}

// Options configure a Worker.
type Options struct {
	Store   Store
	Senders map[deadbolt.Channel]deadbolt.Sender
	Now     func() time.Time
	Logger  *slog.Logger
	// Registry receives the delivery metrics, if set.
	Registry prometheus.Registerer
	// Poll is how often the queue is checked without a kick (other
	// processes' messages, retries); default 1 s.
	Poll time.Duration
	// Lease is how long a claimed message is the worker's; it must exceed
	// the senders' timeout. Default 2 min.
	Lease time.Duration
	// MaxAttempts before a message fails for good; default 8.
	MaxAttempts int
	// Concurrency is how many messages are in flight at once; default 8.
	Concurrency int
}

// Worker delivers queued messages.
type Worker struct {
	o       Options
	kick    chan struct{}
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	retried *prometheus.CounterVec

	mu        sync.Mutex
	lastError string
	lastErrAt time.Time
}

// New returns a Worker; call Run to start it.
func New(o Options) *Worker {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	if o.Lease == 0 {
		o.Lease = 2 * time.Minute
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 8
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	w := &Worker{o: o, kick: make(chan struct{}, 1)}
	w.sent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deadbolt_messages_sent_total",
		Help: "Messages accepted by a provider, by channel."}, []string{"channel"})
	w.retried = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deadbolt_message_attempts_failed_total",
		Help: "Delivery attempts that failed and will be retried, by channel."}, []string{"channel"})
	w.failed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deadbolt_messages_failed_total",
		Help: "Messages that failed for good, by channel."}, []string{"channel"})
	if o.Registry != nil {
		o.Registry.MustRegister(w.sent, w.retried, w.failed)
	}
	return w
}

// Kick asks the worker to look at the queue now: a message was just queued
// and the person is waiting for it. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.o.Poll)
	defer t.Stop()
	for {
		w.Drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}

// Drain delivers every message that is due now, then returns.
func (w *Worker) Drain(ctx context.Context) {
	for ctx.Err() == nil {
		ms, err := w.o.Store.ClaimMessages(ctx, w.o.Now(), w.o.Lease, w.o.Concurrency)
		if err != nil {
			if ctx.Err() == nil {
				w.o.Logger.ErrorContext(ctx, "delivery: claiming messages", "err", err)
			}
			return
		}
		if len(ms) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.deliver(ctx, m)
			}()
		}
		wg.Wait()
	}
}

// backoff is the wait before attempt n+1: 5 s doubling, at most 5 min.
func backoff(attempts int) time.Duration {
	d := 5 * time.Second << min(attempts-1, 6)
	return min(d, 5*time.Minute)
}

type permanent interface{ Permanent() bool }

func (w *Worker) deliver(ctx context.Context, m *deadbolt.Message) {
	ch := string(m.Channel)
	sender, ok := w.o.Senders[m.Channel]
	var err error
	if !ok {
		err = permanentError("no sender for channel " + ch)
	} else {
		err = sender.Send(ctx, m)
	}
	now := w.o.Now()
	ev := deadbolt.AuditEvent{AccountID: m.AccountID, SubjectID: m.UserID, Time: now,
		Details: map[string]string{"channel": ch, "message_id": m.ID, "to": m.MaskedTo(), "attempt": strconv.Itoa(m.Attempts)}}
	if m.PasscodeID != "" {
		ev.Details["passcode_id"] = m.PasscodeID
	}
	if err == nil {
		if err := w.o.Store.MarkMessageSent(ctx, m, now); err != nil {
			w.o.Logger.ErrorContext(ctx, "delivery: sent, but not recorded", "message", m.ID, "err", err)
		}
		w.sent.WithLabelValues(ch).Inc()
		ev.Type = deadbolt.AuditMessageSent
		w.audit(ctx, ev)
		w.o.Logger.InfoContext(ctx, "message delivered", "channel", ch, "message", m.ID, "attempt", m.Attempts)
		return
	}
	var p permanent
	final := m.Attempts >= w.o.MaxAttempts || (errors.As(err, &p) && p.Permanent()) ||
		(!m.ExpiresAt.IsZero() && !now.Add(backoff(m.Attempts)).Before(m.ExpiresAt))
	// Everything below keeps the text, never err itself: a provider's answer
	// may echo the code and the recipient (see scrub). Scrub before
	// truncating, so that no cut-off piece of a number escapes the rules.
	errText := scrub(err.Error(), m)
	w.mu.Lock()
	w.lastError, w.lastErrAt = errText, now
	w.mu.Unlock()
	ev.Details["error"] = truncate(errText, 300)
	next := now.Add(backoff(m.Attempts))
	if final {
		next = now
		w.failed.WithLabelValues(ch).Inc()
		ev.Type = deadbolt.AuditMessageFailed
		w.o.Logger.ErrorContext(ctx, "message not delivered, giving up", "channel", ch, "message", m.ID, "attempts", m.Attempts, "err", errText)
	} else {
		w.retried.WithLabelValues(ch).Inc()
		ev.Type = deadbolt.AuditMessageAttemptFailed
		w.o.Logger.WarnContext(ctx, "message not delivered, will retry", "channel", ch, "message", m.ID, "attempt", m.Attempts, "retry_at", next, "err", errText)
	}
	if err := w.o.Store.RetryMessage(ctx, m, errText, next, final); err != nil {
		w.o.Logger.ErrorContext(ctx, "delivery: failure not recorded", "message", m.ID, "err", err)
	}
	w.audit(ctx, ev)
}

func (w *Worker) audit(ctx context.Context, ev deadbolt.AuditEvent) {
	if err := w.o.Store.RecordEvent(ctx, &ev); err != nil {
		w.o.Logger.ErrorContext(ctx, "audit event not recorded", "type", ev.Type, "err", err)
	}
}

// Status is the delivery state for /readyz.
type Status struct {
	Queued       int
	OldestQueued time.Duration
	FailedLastHr int
	LastError    string
	LastErrorAt  time.Time
	Healthy      bool
}

// Status reports the queue: unhealthy when a message has waited over two
// minutes, which means the provider is failing (a code lives 60 seconds).
func (w *Worker) Status(ctx context.Context) (Status, error) {
	now := w.o.Now()
	st, err := w.o.Store.MessageStats(ctx, now.Add(-time.Hour))
	if err != nil {
		return Status{}, err
	}
	s := Status{Queued: st.Queued, FailedLastHr: st.Failed, Healthy: true}
	if !st.OldestQueued.IsZero() {
		s.OldestQueued = now.Sub(st.OldestQueued)
		s.Healthy = s.OldestQueued < 2*time.Minute
	}
	w.mu.Lock()
	s.LastError, s.LastErrorAt = w.lastError, w.lastErrAt
	w.mu.Unlock()
	return s, nil
}

type permanentError string

func (e permanentError) Error() string   { return string(e) }
func (e permanentError) Permanent() bool { return true }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
