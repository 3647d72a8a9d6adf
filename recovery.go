package deadbolt

import "time"

// Recovery codes: a set of RecoveryCodeCount codes of RecoveryCodeLength
// characters is made when the first factor is activated; each works once.
const (
	RecoveryCodeCount  = 10
	RecoveryCodeLength = 10
	// AdminRecoveryCodeTTL is how long an admin-generated code lives.
	AdminRecoveryCodeTTL = 24 * time.Hour
)

// RecoveryCode is one single-use code, stored only as a keyed hash.
type RecoveryCode struct {
	ID        string
	AccountID string
	UserID    string
	Hash      []byte
	// CreatedBy is the admin who generated this code for the user, or empty
	// for the user's own set. Admin codes expire and are not part of the set.
	CreatedBy string
	ExpiresAt time.Time // zero: does not expire
	UsedAt    time.Time // zero: unused
	CreatedAt time.Time
}

// Admin reports whether an admin generated the code.
func (c *RecoveryCode) Admin() bool { return c.CreatedBy != "" }
