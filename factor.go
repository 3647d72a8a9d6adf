package deadbolt

import "time"

// FactorKind is a kind of second factor.
type FactorKind string

// Factor kinds.
const (
	FactorTOTP  FactorKind = "totp"
	FactorSMS   FactorKind = "sms"
	FactorEmail FactorKind = "email"
	// FactorWebAuthn is a passkey or security key: the only factor that
	// phishing cannot relay (its signature names the site).
	FactorWebAuthn FactorKind = "webauthn"
)

// FactorKinds are the kinds, in the order the pages offer them.
var FactorKinds = []FactorKind{FactorTOTP, FactorWebAuthn, FactorSMS, FactorEmail}

// Valid reports whether k is a known factor kind.
func (k FactorKind) Valid() bool {
	return k == FactorTOTP || k == FactorSMS || k == FactorEmail || k == FactorWebAuthn
}

// Strong reports whether the kind resists interception: NIST SP 800-63B
// restricts SMS and does not count email as a second factor at all.
func (k FactorKind) Strong() bool { return k == FactorTOTP || k == FactorWebAuthn }

// Strength is the kind's strength as shown in reports: strong, restricted
// (SMS) or weak (email).
func (k FactorKind) Strength() string {
	switch k {
	case FactorTOTP, FactorWebAuthn:
		return "strong"
	case FactorSMS:
		return "restricted"
	}
	return "weak"
}

// FactorStatus is where a factor is in its life.
type FactorStatus string

// Factor statuses: a factor is pending until the user proves a code with it,
// then active. Nothing else exists, so a crash never leaves a half factor.
const (
	FactorPending FactorStatus = "pending"
	FactorActive  FactorStatus = "active"
)

// Factor is a second factor of a user.
type Factor struct {
	ID        string
	AccountID string
	UserID    string
	Kind      FactorKind
	Status    FactorStatus
	Default   bool
	// Secret is the TOTP shared secret (raw bytes). Encrypted at rest.
	Secret []byte
	// Phone is the E.164 number of an SMS factor. Encrypted at rest.
	Phone string
	// A WebAuthn factor: the name its user gave it, its credential id
	// (unique within the account), the library's credential record (JSON,
	// encrypted at rest) and the last signature count it showed.
	Name         string
	CredentialID []byte
	Credential   []byte
	SignCount    uint32
	CreatedAt    time.Time
	ActivatedAt  time.Time // zero while pending
	LastUsedAt   time.Time // zero if never used
}

// WebAuthnPurpose is what a WebAuthn ceremony is for.
type WebAuthnPurpose string

// WebAuthn ceremony purposes.
const (
	WebAuthnRegister     WebAuthnPurpose = "register"
	WebAuthnSecondFactor WebAuthnPurpose = "second_factor"
	WebAuthnPasswordless WebAuthnPurpose = "passwordless"
	WebAuthnStepUp       WebAuthnPurpose = "step_up"
)

// WebAuthnCeremonyTTL is how long a WebAuthn ceremony waits for its answer.
const WebAuthnCeremonyTTL = 5 * time.Minute

// WebAuthnCeremony is the server's half of a WebAuthn ceremony: the
// library's session data (the challenge, the user, the credentials
// allowed, whether user verification is required), kept until its one
// answer. The client holds only a token, stored as its keyed hash.
type WebAuthnCeremony struct {
	AccountID string
	TokenHash []byte
	Purpose   WebAuthnPurpose
	// UserID is empty for a passwordless sign-in: the credential says who.
	UserID string
	// FactorID is the pending factor of a registration; ChallengeID the
	// sign-in challenge a second-factor ceremony answers.
	FactorID    string
	ChallengeID string
	Session     []byte // encrypted at rest
	CreatedAt   time.Time
	ExpiresAt   time.Time
}
