package deadbolt

import (
	"context"
	"time"
)

// The storage interfaces. Every method is one transaction; every method but
// the lookups by token hash is scoped to one account, and nothing of another
// account is ever visible through it. Errors are *Error values with the
// codes listed; anything else is an internal failure.

// Completion is everything that ends a sign-in, written in one
// transaction: one commit on the path every sign-in takes, and no state
// where the code is used but no session exists (or the reverse).
type Completion struct {
	AccountID   string
	ChallengeID string
	MaxAttempts int
	Now         time.Time
	// TOTPFactorID and TOTPStep, when set, record the step as UseTOTPStep
	// does: a replayed step fails the whole completion.
	TOTPFactorID string
	TOTPStep     int64
	// Device, when set, is stored: created when its ID is empty, else its
	// token and remember times are updated.
	Device *Device
	// ResetCounters are counters of the account removed in the same
	// transaction (the consecutive failures a success ends).
	ResetCounters []string
	// Session is stored; its ID is filled in.
	Session *Session
	Events  []*AuditEvent
}

// AccountStore keeps accounts.
type AccountStore interface {
	// CreateAccount stores a new account and its owner together. It fills
	// in ids and times. EConflict if the slug is taken.
	CreateAccount(ctx context.Context, a *Account, owner *User) error
	// FindAccountBySlug returns EAccountNotFound if there is none.
	FindAccountBySlug(ctx context.Context, slug string) (*Account, error)
	// FindAccountByID returns EAccountNotFound if there is none.
	FindAccountByID(ctx context.Context, id string) (*Account, error)
	// UpdatePolicy replaces the account's policy. EAccountNotFound.
	UpdatePolicy(ctx context.Context, accountID string, p Policy) error
}

// UserUpdate holds the fields of a user to change; nil fields stay.
type UserUpdate struct {
	Name         *string
	Role         *Role
	Phone        *string
	PasswordHash *string
	// AuthSource switches how the user signs in; to SSO, it also removes
	// the password.
	AuthSource *AuthSource
}

// UserFilter selects users of an account.
type UserFilter struct {
	Role Role // empty: any
}

// UserStore keeps users.
type UserStore interface {
	// CreateUser fills in the id and times. EConflict if the email is taken
	// in the account.
	CreateUser(ctx context.Context, u *User) error
	// FindUserByID returns ENotFound if there is none in the account.
	FindUserByID(ctx context.Context, accountID, id string) (*User, error)
	// FindUserByEmail takes a normalised email. ENotFound.
	FindUserByEmail(ctx context.Context, accountID, email string) (*User, error)
	// FindUsers lists users ordered by email.
	FindUsers(ctx context.Context, accountID string, f UserFilter) ([]*User, error)
	// UpdateUser applies upd and returns the new user. ENotFound.
	UpdateUser(ctx context.Context, accountID, id string, upd UserUpdate) (*User, error)
	// DeleteUser removes the user and everything of theirs. ENotFound.
	DeleteUser(ctx context.Context, accountID, id string) error
}

// FactorStore keeps second factors.
type FactorStore interface {
	// CreateFactor stores a pending factor. It fills in the id and times.
	CreateFactor(ctx context.Context, f *Factor) error
	// FindFactor returns ENotFound if the factor is not in the account.
	FindFactor(ctx context.Context, accountID, id string) (*Factor, error)
	// FindFactors lists a user's factors, oldest first.
	FindFactors(ctx context.Context, accountID, userID string) ([]*Factor, error)
	// ActivateFactor turns a pending factor active; the user's first active
	// factor becomes the default. It reports whether this was the user's
	// first active factor. ENotFound if no such pending factor exists (so
	// two racing confirmations activate it once).
	ActivateFactor(ctx context.Context, accountID, id string, now time.Time) (first bool, err error)
	// SetDefaultFactor makes an active factor the user's default. ENotFound.
	SetDefaultFactor(ctx context.Context, accountID, userID, id string) error
	// DeleteFactor removes a factor; if it was the default, the oldest
	// remaining active factor becomes the default. ENotFound.
	DeleteFactor(ctx context.Context, accountID, userID, id string) error
	// DeleteFactors removes all of a user's factors and recovery codes.
	DeleteFactors(ctx context.Context, accountID, userID string) error
	// MarkFactorUsed records that a factor's code signed someone in (for
	// SMS and email; TOTP records it with its step). ENotFound.
	MarkFactorUsed(ctx context.Context, accountID, id string, now time.Time) error
	// UseTOTPStep records that the factor accepted the TOTP time step and
	// marks it used. EConflict if the step, or a later one, was already used:
	// a code is accepted once, even across processes.
	UseTOTPStep(ctx context.Context, accountID, factorID string, step int64, now time.Time) error

	// ActivateWebAuthnFactor stores a pending WebAuthn factor's credential
	// and activates it (as ActivateFactor). EConflict if the credential id
	// is another factor's of the account.
	ActivateWebAuthnFactor(ctx context.Context, accountID, id string, credentialID, credential []byte, signCount uint32,
		now time.Time) (first bool, err error)
	// FindFactorByCredentialID returns the account's active WebAuthn
	// factor with the credential id. ENotFound.
	FindFactorByCredentialID(ctx context.Context, accountID string, credentialID []byte) (*Factor, error)
	// UseWebAuthnSignature records a signature of the factor: its count
	// must be above the stored one, or both zero. EConflict otherwise (a
	// cloned authenticator, or the same signature twice).
	UseWebAuthnSignature(ctx context.Context, accountID, factorID string, signCount uint32, credential []byte, now time.Time) error

	// CreateWebAuthnCeremony stores a ceremony until its answer; one of the
	// same token hash is replaced.
	CreateWebAuthnCeremony(ctx context.Context, c *WebAuthnCeremony) error
	// ConsumeWebAuthnCeremony returns the live ceremony and deletes it, in
	// one transaction. ENotFound if unknown, expired or used.
	ConsumeWebAuthnCeremony(ctx context.Context, tokenHash []byte, now time.Time) (*WebAuthnCeremony, error)
	// DeleteExpiredWebAuthnCeremonies removes ceremonies nobody answered.
	DeleteExpiredWebAuthnCeremonies(ctx context.Context, now time.Time) (int, error)
}

// RecoveryCodeStore keeps recovery codes.
type RecoveryCodeStore interface {
	// ReplaceRecoveryCodes stores a user's new set of code hashes; the old
	// set (but not admin-generated codes) dies in the same transaction.
	ReplaceRecoveryCodes(ctx context.Context, accountID, userID string, hashes [][]byte, now time.Time) error
	// CreateAdminRecoveryCode stores one admin-generated code.
	CreateAdminRecoveryCode(ctx context.Context, c *RecoveryCode) error
	// ConsumeRecoveryCode marks the unused, unexpired code with the hash
	// used and returns it. ENotFound if there is none: racing callers with
	// the same code get exactly one success.
	ConsumeRecoveryCode(ctx context.Context, accountID, userID string, hash []byte, now time.Time) (*RecoveryCode, error)
	// CountRecoveryCodes counts the user's unused codes of their own set.
	CountRecoveryCodes(ctx context.Context, accountID, userID string) (int, error)
}

// CounterStore keeps attempt and send counters.
type CounterStore interface {
	// HitCounter adds one to the counter and returns it; a counter past its
	// window starts again at one with a new window. Atomic across processes.
	HitCounter(ctx context.Context, accountID, key string, window time.Duration, now time.Time) (Counter, error)
	// PeekCounter returns the counter without changing it; a missing or
	// expired counter has Count 0.
	PeekCounter(ctx context.Context, accountID, key string, now time.Time) (Counter, error)
	// ResetCounter removes the counter.
	ResetCounter(ctx context.Context, accountID, key string) error
	// ReserveAttempts reserves one attempt under each limit if its rule
	// lets it go ahead at now, all in one transaction: all are counted, or,
	// when a rule refuses, none is and refused is the index of that limit
	// (else −1). Of any number of racing callers, in any number of
	// processes, no more get through than the rules allow. The counters are
	// returned as they stand after it (a missing or expired one has Count
	// 0), up to the refusal, so the caller can say when to try again.
	ReserveAttempts(ctx context.Context, accountID string, now time.Time, limits ...AttemptLimit) (counters []Counter, refused int, err error)
	// SettleAttempts ends reserved attempts in one transaction: the
	// counters under reset are removed (a success ends consecutive
	// failures), those under release give one attempt back.
	SettleAttempts(ctx context.Context, accountID string, reset, release []string) error
}

// SessionStore keeps sessions.
type SessionStore interface {
	// CreateSession fills in the id; the caller sets the times.
	CreateSession(ctx context.Context, s *Session) error
	// FindSessionByTokenHash looks a session up by the hash of its token,
	// across accounts (the token is the caller's only handle). ENotFound.
	FindSessionByTokenHash(ctx context.Context, hash []byte) (*Session, error)
	// FindSessions lists a user's sessions, newest first.
	FindSessions(ctx context.Context, accountID, userID string) ([]*Session, error)
	// FindSession returns one session of the account by id, active or not.
	// ENotFound.
	FindSession(ctx context.Context, accountID, id string) (*Session, error)
	// UpdateSessionAuth records a proof on the session: a second factor
	// (of the method named, see Session.SecondFactorMethod) or a password
	// (step-up). Zero times leave the field as it is. ENotFound.
	UpdateSessionAuth(ctx context.Context, accountID, id string, secondFactorAt time.Time, method string, passwordAt time.Time) error
	// TouchSession records activity. ENotFound.
	TouchSession(ctx context.Context, accountID, id string, now time.Time) error
	// DeleteSession ends one of the user's sessions. ENotFound.
	DeleteSession(ctx context.Context, accountID, userID, id string) error
	// DeleteExpiredSessions removes sessions past their lifetime or idle
	// timeout at now, in all accounts (housekeeping); it returns how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
	// DeleteSessions ends all of a user's sessions but keep (may be empty)
	// and returns how many ended.
	DeleteSessions(ctx context.Context, accountID, userID, keep string) (int, error)
}

// ChallengeStore keeps sign-in challenges.
type ChallengeStore interface {
	// CreateChallenge fills in the id.
	CreateChallenge(ctx context.Context, c *Challenge) error
	// FindChallengeByTokenHash looks a challenge up by the hash of its token,
	// across accounts. ENotFound.
	FindChallengeByTokenHash(ctx context.Context, hash []byte) (*Challenge, error)
	// FailChallenge counts one attempt and returns the attempts so far. The
	// service calls it before it checks a code (a reservation), so that
	// racing codes cannot be checked more than max times. ENotFound if the
	// challenge is used or already has max attempts: the count is atomic.
	FailChallenge(ctx context.Context, accountID, id string, max int) (int, error)
	// ReserveCodeAttempt reserves, in one transaction, the try of a code
	// answering a challenge: one of the challenge's attempts (as
	// FailChallenge, whose ENotFound it returns for a dead challenge) and
	// one under the user's key and rule (as ReserveAttempt). When the rule
	// refuses, neither is counted and ok is false, with the counter as it
	// stands. It returns the challenge's attempts with this one.
	ReserveCodeAttempt(ctx context.Context, accountID, challengeID string, max int, key string, rule AttemptRule, now time.Time) (attempts int, c Counter, ok bool, err error)
	// ReturnChallengeAttempt gives back one attempt counted by
	// FailChallenge, for a code checked in advance that proved nothing
	// (the right passcode, too late). ENotFound if the challenge is used
	// or has no attempt to give back.
	ReturnChallengeAttempt(ctx context.Context, accountID, id string) error
	// ConsumeChallenge marks the challenge used. ENotFound if it is used,
	// expired at now, or has max attempts: of racing callers, one wins.
	ConsumeChallenge(ctx context.Context, accountID, id string, max int, now time.Time) error
	// CompleteChallenge ends a sign-in in one transaction (see
	// Completion). ENotFound if the challenge cannot be consumed,
	// EConflict if the TOTP step was already used; either way nothing is
	// stored.
	CompleteChallenge(ctx context.Context, c *Completion) error
	// DeleteExpiredChallenges removes challenges that expired before now.
	DeleteExpiredChallenges(ctx context.Context, now time.Time) (int, error)
}

// DeviceStore keeps recognised and remembered devices.
type DeviceStore interface {
	// CreateDevice fills in the id. The user's recognised but not
	// remembered devices beyond MaxRecognisedDevices, least recently seen
	// first, are forgotten in the same transaction (so in CompleteChallenge).
	CreateDevice(ctx context.Context, d *Device) error
	// FindDeviceByTokenHash finds the account's device by its token hash.
	// ENotFound.
	FindDeviceByTokenHash(ctx context.Context, accountID string, hash []byte) (*Device, error)
	// FindDevices lists a user's devices, most recently seen first.
	FindDevices(ctx context.Context, accountID, userID string) ([]*Device, error)
	// UpdateDevice stores the device's token hash, remember times, IP and
	// last-seen time. ENotFound.
	UpdateDevice(ctx context.Context, d *Device) error
	// DeleteDevice forgets one of the user's devices. ENotFound.
	DeleteDevice(ctx context.Context, accountID, userID, id string) error
	// DeleteDevices forgets all of a user's devices; it returns how many.
	DeleteDevices(ctx context.Context, accountID, userID string) (int, error)
}

// PasscodeStore keeps passcodes sent by SMS or email.
type PasscodeStore interface {
	// CreatePasscode stores the passcode and the message that carries it in
	// one transaction, so that no code exists without its message and no
	// message without its code. The earlier unused passcodes of the same
	// challenge (or factor) and channel die with it: a new code kills the
	// previous one. It fills in the ids. ENotFound if the user is gone.
	CreatePasscode(ctx context.Context, p *Passcode, m *Message) error
	// LatestPasscode returns the newest passcode of the challenge, or of the
	// factor when challengeID is empty, on the channel, used or not.
	// ENotFound if there is none.
	LatestPasscode(ctx context.Context, accountID, challengeID, factorID string, ch Channel) (*Passcode, error)
	// UsePasscode marks an unused passcode that is live at now used.
	// ENotFound otherwise: of racing callers, one wins.
	UsePasscode(ctx context.Context, accountID, id string, now time.Time) error
}

// MessageStats describe the outbox.
type MessageStats struct {
	Queued       int
	OldestQueued time.Time // zero when nothing is queued
	Failed       int       // messages that failed for good, in the window asked
}

// MessageStore is the outbox of messages to deliver, shared by every
// process: each message is leased by one worker at a time.
type MessageStore interface {
	// ClaimMessages leases up to n messages that are due at now to the
	// caller for the lease duration and returns them, opened. Messages past
	// their expiry are marked expired instead. A leased message is not
	// handed to anyone else until the lease ends.
	ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, n int) ([]*Message, error)
	// MarkMessageSent records a delivery and drops the content. ENotFound
	// if the caller's lease was lost.
	MarkMessageSent(ctx context.Context, m *Message, now time.Time) error
	// RetryMessage records a failed attempt: the message is due again at
	// next, or, with final, failed for good. ENotFound if the lease was lost.
	RetryMessage(ctx context.Context, m *Message, errText string, next time.Time, final bool) error
	// MessageStats counts the queue and the messages failed since since.
	MessageStats(ctx context.Context, since time.Time) (MessageStats, error)
}

// APITokenStore keeps API tokens.
type APITokenStore interface {
	// CreateAPIToken fills in the id. ENotFound if the user is not in the
	// account.
	CreateAPIToken(ctx context.Context, t *APIToken) error
	// FindAPITokenByHash finds a token by its hash, across accounts: the
	// token is the caller's only handle. ENotFound.
	FindAPITokenByHash(ctx context.Context, hash []byte) (*APIToken, error)
	// FindAPITokens lists the account's tokens, newest first.
	FindAPITokens(ctx context.Context, accountID string) ([]*APIToken, error)
	// TouchAPIToken records a use.
	TouchAPIToken(ctx context.Context, accountID, id string, now time.Time) error
	// DeleteAPIToken revokes a token. ENotFound.
	DeleteAPIToken(ctx context.Context, accountID, id string) error
	// DeleteUserAPITokens revokes all of a user's tokens and returns their
	// ids.
	DeleteUserAPITokens(ctx context.Context, accountID, userID string) ([]string, error)
}

// Report is an emailed link to a report.
type Report struct {
	ID          string
	AccountID   string
	RequestedBy string
	Kind        string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// UserSummary is a user with their 2FA state, for lists and reports.
type UserSummary struct {
	User               *User
	Methods            []FactorKind // active factors' kinds, sorted, unique
	DefaultMethod      FactorKind
	LastSecondFactorAt time.Time
	RecoveryCodesLeft  int
	RememberedDevices  int
	LastAdminActionAt  time.Time
}

// SummaryFilter selects the users of a summary.
type SummaryFilter struct {
	Roles []Role // empty: all
}

// ReportStore keeps what the admin reports read.
type ReportStore interface {
	// StreamUserSummaries calls fn for each user of the account matching
	// f, ordered by email, from one query: no per-user queries, memory
	// that does not grow with the account. Devices count as remembered
	// when remembered at now.
	StreamUserSummaries(ctx context.Context, accountID string, f SummaryFilter, now time.Time, fn func(*UserSummary) error) error
	// CreateReport fills in the id.
	CreateReport(ctx context.Context, r *Report) error
	// FindReport returns a report of the account. ENotFound.
	FindReport(ctx context.Context, accountID, id string) (*Report, error)
	// QueueMessage queues a message that carries no passcode (a notice).
	QueueMessage(ctx context.Context, m *Message) error
}

// AuditLog keeps audit events.
type AuditLog interface {
	// RecordEvent stores an event; it fills in the id.
	RecordEvent(ctx context.Context, e *AuditEvent) error
	// FindEvents returns an account's events, newest first.
	FindEvents(ctx context.Context, accountID string, f AuditFilter) ([]*AuditEvent, error)
}

// Store is all of the storage.
type Store interface {
	AccountStore
	UserStore
	FactorStore
	RecoveryCodeStore
	CounterStore
	SessionStore
	ChallengeStore
	DeviceStore
	PasscodeStore
	MessageStore
	APITokenStore
	ReportStore
	AuditLog
	OIDCStore
	SSOStore
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}
