package deadbolt

import "time"

// FactorKind is a kind of second factor.
type FactorKind string

// Factor kinds.
const (
	FactorTOTP  FactorKind = "totp"
	FactorSMS   FactorKind = "sms"
	FactorEmail FactorKind = "email"
)

// Valid reports whether k is a known factor kind.
func (k FactorKind) Valid() bool {
	return k == FactorTOTP || k == FactorSMS || k == FactorEmail
}

// Strong reports whether the kind resists interception: NIST SP 800-63B
// restricts SMS and does not count email as a second factor at all.
func (k FactorKind) Strong() bool { return k == FactorTOTP }

// Strength is the kind's strength as shown in reports: strong, restricted
// (SMS) or weak (email).
func (k FactorKind) Strength() string {
	switch k {
	case FactorTOTP:
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
	Phone       string
	CreatedAt   time.Time
	ActivatedAt time.Time // zero while pending
	LastUsedAt  time.Time // zero if never used
}
