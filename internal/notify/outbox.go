package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/deadbolt/deadbolt"
)

// OutboxMarker starts every log line of the development outbox.
const OutboxMarker = "DEVELOPMENT OUTBOX: not delivered, not for production"

// DefaultOutboxSize is how many messages an [Outbox] keeps by default.
const DefaultOutboxSize = 100

// OutboxEntry is a message kept by an [Outbox].
type OutboxEntry struct {
	Message deadbolt.Message
	At      time.Time
}

// Outbox is the development stand-in for a transport: it delivers nothing,
// keeps the last messages in memory and logs each one, body included, at
// WARN level. It accepts email and SMS. It is safe for concurrent use.
type Outbox struct {
	log  *slog.Logger
	now  func() time.Time
	mu   sync.Mutex
	ring []OutboxEntry // capacity: the size; next is the oldest once full
	next int
}

// NewOutbox returns an outbox that logs to log (nil: slog.Default()) and
// keeps the last keep messages (keep <= 0: [DefaultOutboxSize]).
func NewOutbox(log *slog.Logger, keep int) *Outbox {
	if log == nil {
		log = slog.Default()
	}
	if keep <= 0 {
		keep = DefaultOutboxSize
	}
	return &Outbox{log: log, now: time.Now, ring: make([]OutboxEntry, 0, keep)}
}

// Send keeps a copy of m and logs it. It fails only for a nil message or an
// unknown channel.
func (o *Outbox) Send(ctx context.Context, m *deadbolt.Message) error {
	if m == nil {
		return Permanent(errors.New("notify: outbox: nil message"))
	}
	if m.Channel != deadbolt.ChannelEmail && m.Channel != deadbolt.ChannelSMS {
		return Permanent(fmt.Errorf("notify: outbox: unknown channel %q", m.Channel))
	}
	e := OutboxEntry{Message: *m, At: o.now()}
	o.mu.Lock()
	if len(o.ring) < cap(o.ring) {
		o.ring = append(o.ring, e)
	} else {
		o.ring[o.next] = e
		o.next = (o.next + 1) % len(o.ring)
	}
	o.mu.Unlock()

	// Logging the body is the purpose of the outbox: see the package doc.
	o.log.LogAttrs(ctx, slog.LevelWarn, OutboxMarker,
		slog.String("channel", string(m.Channel)),
		slog.String("message_id", m.ID),
		slog.String("to", m.To),
		slog.String("subject", m.Subject),
		slog.String("text", m.Text),
	)
	return nil
}

// Messages returns the kept messages, newest first.
func (o *Outbox) Messages() []OutboxEntry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]OutboxEntry, 0, len(o.ring))
	// Newest is just before next (which is 0 until the ring is full).
	for i := range len(o.ring) {
		j := (o.next - 1 - i + 2*len(o.ring)) % len(o.ring)
		out = append(out, o.ring[j])
	}
	return out
}
