package deadbolt

import (
	"context"
	"strings"
	"time"
)

// Channel is how a message travels.
type Channel string

// Channels.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
)

// MessageStatus is where a message is in its delivery.
type MessageStatus string

// Message statuses. A message is queued until a sender accepts it (sent),
// it fails for good (failed), or what it carries is no longer worth sending
// (expired: a passcode past its lifetime).
const (
	MessageQueued  MessageStatus = "queued"
	MessageSent    MessageStatus = "sent"
	MessageFailed  MessageStatus = "failed"
	MessageExpired MessageStatus = "expired"
)

// Message is an email or SMS to deliver. It is stored, sealed, in the same
// transaction as the passcode it carries, and delivered by a background
// worker, so a crash or a provider outage loses nothing.
type Message struct {
	ID        string
	AccountID string
	UserID    string
	Channel   Channel
	// To is an email address or an E.164 phone number.
	To      string
	Subject string // email only
	Text    string // the plain-text body (the SMS itself)
	HTML    string // email only, optional
	// PasscodeID is the passcode the message carries, if any.
	PasscodeID string
	Status     MessageStatus
	Attempts   int
	LastError  string
	// ExpiresAt is when the message stops being worth sending; zero: never.
	ExpiresAt     time.Time
	NextAttemptAt time.Time
	CreatedAt     time.Time
	SentAt        time.Time
	// LeaseToken identifies the worker's claim on the message.
	LeaseToken string
}

// Sender delivers messages of one channel. An error that has a method
// Permanent() bool returning true means retrying cannot help (a refused
// address, say); any other error is retried.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// MaskedTo is the recipient as people may see it in lists and logs:
// "a•••@example.com", "+1•••••••43".
func (m *Message) MaskedTo() string { return MaskAddress(m.Channel, m.To) }

// MaskAddress hides most of an email address or phone number.
func MaskAddress(ch Channel, to string) string {
	if ch == ChannelEmail {
		at := strings.LastIndexByte(to, '@')
		if at <= 0 {
			return "•••"
		}
		return to[:1] + "•••" + to[at:]
	}
	if len(to) <= 4 {
		return "•••"
	}
	return to[:2] + strings.Repeat("•", len(to)-4) + to[len(to)-2:]
}
