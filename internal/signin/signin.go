// Package signin is the sign-in and enrolment state machine: the one place
// that makes security decisions. It checks passwords and second factors,
// keeps challenges, sessions and remembered devices, and applies the
// attempt limits. It reaches storage only through the deadbolt interfaces.
//
// Every authentication failure a caller can see is one of a few generic
// errors (invalid_credentials, invalid_code, challenge_expired,
// rate_limited); the real cause goes to the audit log.
package signin

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
)

// Token prefixes, so that leaked tokens can be recognised by scanners.
const (
	PrefixSession   = "dbs_"
	PrefixChallenge = "dbc_"
	PrefixDevice    = "dbd_"
	PrefixAPIToken  = "dbt_"
)

// StepUpWindow is how recent a proof must be for sensitive actions.
const StepUpWindow = 15 * time.Minute

// Keys hashes tokens and codes for storage (an HMAC under a server key).
type Keys interface {
	Hash(token string) []byte
}

// Limits are the attempt limits. The zero value means the defaults.
type Limits struct {
	// BackoffFrom is the consecutive failure count from which a user must
	// wait before trying again; the wait doubles with each failure.
	BackoffFrom int
	// PauseAt is the failure count at which the wait becomes Pause.
	PauseAt int
	Pause   time.Duration
	// FailureMemory is how long consecutive failures are remembered.
	FailureMemory time.Duration
	// IPFailures is how many wrong passwords one client IP may send to
	// an account per IPWindow.
	IPFailures int
	IPWindow   time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.BackoffFrom == 0 {
		l.BackoffFrom = 5
	}
	if l.PauseAt == 0 {
		l.PauseAt = 10
	}
	if l.Pause == 0 {
		l.Pause = 15 * time.Minute
	}
	if l.FailureMemory == 0 {
		l.FailureMemory = 24 * time.Hour
	}
	if l.IPFailures == 0 {
		l.IPFailures = 100
	}
	if l.IPWindow == 0 {
		l.IPWindow = time.Hour
	}
	return l
}

// Options configure a Service.
type Options struct {
	Store  deadbolt.Store
	Keys   Keys
	Hasher *password.Hasher
	Limits Limits
	Sends  SendLimits
	// Notify is called when a message was queued, so the delivery worker
	// can send it at once; default: nothing (the worker polls).
	Notify func()
	// PublicURL is where people reach the service, for the links in
	// notices (no trailing slash).
	PublicURL string
	// SessionsEnded is called after sessions ended (sign-out, revocation,
	// a password change, a 2FA reset, expiry), so that the applications
	// signed in through them are told; default: nothing. It must not block.
	SessionsEnded func()
	// Now is the clock; default time.Now. Tests inject a fixed one.
	Now    func() time.Time
	Logger *slog.Logger
	// MaxConcurrentHashes bounds the Argon2id hashes computed at once; each
	// takes about 19 MiB, so without a bound a burst of sign-ins could take
	// the process's memory. Default: 2 × GOMAXPROCS.
	MaxConcurrentHashes int
}

// Service is the sign-in state machine. It is safe for concurrent use.
type Service struct {
	store  deadbolt.Store
	keys   Keys
	hasher *password.Hasher
	limits Limits
	sends  SendLimits
	notify func()
	// sessionsEnded is Options.SessionsEnded.
	sessionsEnded func()
	// publicURL is where people reach the service, for links in emails.
	// The WebAuthn relying party, made from publicURL at first use.
	waOnce    sync.Once
	wa        *webauthn.WebAuthn
	waErr     error
	publicURL string
	now       func() time.Time
	log       *slog.Logger
	hashes    chan struct{}
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Notify == nil {
		opts.Notify = func() {}
	}
	if opts.SessionsEnded == nil {
		opts.SessionsEnded = func() {}
	}
	if opts.MaxConcurrentHashes <= 0 {
		opts.MaxConcurrentHashes = 2 * runtime.GOMAXPROCS(0)
	}
	return &Service{
		store:         opts.Store,
		keys:          opts.Keys,
		hasher:        opts.Hasher,
		limits:        opts.Limits.withDefaults(),
		sends:         opts.Sends.withDefaults(),
		notify:        opts.Notify,
		sessionsEnded: opts.SessionsEnded,
		publicURL:     strings.TrimRight(opts.PublicURL, "/"),
		now:           opts.Now,
		log:           opts.Logger,
		hashes:        make(chan struct{}, opts.MaxConcurrentHashes),
	}
}

// Client describes where a request comes from.
type Client struct {
	IP          string
	UserAgent   string
	DeviceToken string // the Deadbolt-Device header, if any
	// KeepsDevice says the caller keeps a device token it is given (the
	// pages do, in a cookie), so a sign-in with a second factor from an
	// unknown device may make it recognised without remembering it. The
	// API returns a device token after a second factor only when asked to
	// remember the device.
	KeepsDevice bool
}

type clientKey struct{}

// WithClient returns a context that carries the client of the request it
// serves, so that every audit event the request causes, admin actions
// included, records where it came from.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientOf returns the client the context carries (zero for the command
// line and background work).
func ClientOf(ctx context.Context) Client { return clientOf(ctx) }

func clientOf(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}

// stamp fills in an event's time and, from the request, its client.
func (s *Service) stamp(ctx context.Context, e *deadbolt.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	c := clientOf(ctx)
	if e.IP == "" {
		e.IP = c.IP
	}
	if e.UserAgent == "" {
		e.UserAgent = truncate(c.UserAgent, 256)
	}
}

// audit records an event. The action has happened whether or not the
// event is stored, so a failure is logged rather than returned.
func (s *Service) audit(ctx context.Context, e deadbolt.AuditEvent) {
	s.stamp(ctx, &e)
	if err := s.store.RecordEvent(ctx, &e); err != nil {
		s.log.ErrorContext(ctx, "audit event not recorded", "type", e.Type, "account", e.AccountID, "err", err)
	}
}

// verifyPassword checks a password against an encoded hash, or against a
// dummy hash when there is none, so that both take the same time.
func (s *Service) verifyPassword(ctx context.Context, pw, encoded string) (bool, error) {
	select {
	case s.hashes <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashes }()
	if encoded == "" {
		s.hasher.VerifyDummy(pw)
		return false, nil
	}
	return s.hasher.Verify(pw, encoded)
}

// hashPassword hashes a new password under the same bound.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	select {
	case s.hashes <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.hashes }()
	return s.hasher.Hash(pw)
}

// Generic failures. The same value for every cause, so that a caller
// learns nothing from which one it got.
var (
	errInvalidCredentials = deadbolt.Errorf(deadbolt.EInvalidCredentials, "The email or password is not right.")
	errChallengeExpired   = deadbolt.Errorf(deadbolt.EChallengeExpired, "This sign-in has expired. Start again with your email and password.")
	errUnauthorized       = deadbolt.Errorf(deadbolt.EUnauthorized, "Sign in first.")
)

// invalidCode is the one answer to a wrong, replayed or unusable code.
func invalidCode(attemptsLeft int) error {
	return &deadbolt.Error{Code: deadbolt.EInvalidCode, Message: "That code is not right. Check it and try again.",
		Details: map[string]any{"attempts_left": attemptsLeft}}
}

// rateLimited is the answer while a back-off or pause runs.
func rateLimited(retry time.Duration, what string) error {
	return &deadbolt.Error{Code: deadbolt.ERateLimited, RetryAfter: retry,
		Message: "Too many failed attempts. " + what + " Try again in " + humanDuration(retry) + "."}
}

// humanDuration says a wait in words people read.
func humanDuration(d time.Duration) string {
	switch {
	case d <= time.Second:
		return "a second"
	case d < time.Minute:
		return strconv.Itoa(int((d+time.Second-1)/time.Second)) + " seconds"
	case d < 2*time.Minute:
		return "a minute"
	}
	return strconv.Itoa(int((d+time.Minute-1)/time.Minute)) + " minutes"
}

// Housekeep removes expired challenges and sessions. The service calls it
// now and then; nothing depends on it for security (expiry is checked on
// every use), it only keeps the tables small.
func (s *Service) Housekeep(ctx context.Context) {
	now := s.now()
	if n, err := s.store.DeleteExpiredChallenges(ctx, now.Add(-time.Hour)); err != nil {
		s.log.WarnContext(ctx, "housekeeping: challenges", "err", err)
	} else if n > 0 {
		s.log.DebugContext(ctx, "housekeeping: expired challenges removed", "count", n)
	}
	if n, err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
		s.log.WarnContext(ctx, "housekeeping: sessions", "err", err)
	} else if n > 0 {
		s.log.DebugContext(ctx, "housekeeping: expired sessions removed", "count", n)
		s.sessionsEnded()
	}
	if _, err := s.store.DeleteExpiredWebAuthnCeremonies(ctx, now); err != nil {
		s.log.WarnContext(ctx, "housekeeping: passkey ceremonies", "err", err)
	}
}
