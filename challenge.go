package deadbolt

import "time"

// ChallengePurpose is what a challenge waits for.
type ChallengePurpose string

// Challenge purposes.
const (
	// ChallengeSecondFactor waits for a code from one of the user's factors.
	ChallengeSecondFactor ChallengePurpose = "second_factor"
	// ChallengeDeviceVerification waits for the emailed code of 2-step
	// verification on an unrecognised device.
	ChallengeDeviceVerification ChallengePurpose = "device_verification"
	// ChallengeEnrollment waits for the user to set up a first factor that
	// the policy requires.
	ChallengeEnrollment ChallengePurpose = "enrollment"
)

// Challenge limits.
const (
	ChallengeTTL         = 10 * time.Minute
	ChallengeMaxAttempts = 5
)

// Challenge is the server-side state between the password and the second
// step of a sign-in. The client holds only an opaque token.
type Challenge struct {
	ID        string
	AccountID string
	UserID    string
	TokenHash []byte
	Purpose   ChallengePurpose
	// Attempts counts wrong codes; the challenge dies at ChallengeMaxAttempts.
	Attempts int
	DeviceID string // the recognised device the sign-in came from, if any
	// SSOProviderID is set when the challenge follows an SSO sign-in (the
	// policy asks SSO users for Deadbolt's second factor too).
	SSOProviderID string
	IP            string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        time.Time // zero until the challenge completes
}

// Device is a browser or client that proved itself once. It is recognised
// (no 2-step verification) until revoked, and remembered (no second factor)
// until RememberUntil.
// MaxRecognisedDevices is how many devices that are recognised but not
// remembered a user keeps; the least recently seen beyond it are
// forgotten, so a client that never sends its device token does not grow
// the list without end.
const MaxRecognisedDevices = 10

type Device struct {
	ID        string
	AccountID string
	UserID    string
	TokenHash []byte
	Name      string // a label from the user agent, for the user's list
	IP        string
	// RememberedAt is when the user last proved a second factor on this
	// device and asked to be remembered; RememberUntil is the deadline then
	// set. Both zero: recognised but not remembered.
	RememberedAt  time.Time
	RememberUntil time.Time
	CreatedAt     time.Time
	LastSeenAt    time.Time
}

// Remembered reports whether the device may skip the second factor at now
// under the policy's remember duration for the user's role. The policy at
// sign-in time counts: lowering it (to 0, say) takes effect at once.
func (d *Device) Remembered(now time.Time, policyDuration time.Duration) bool {
	if policyDuration <= 0 || d.RememberedAt.IsZero() {
		return false
	}
	return now.Before(d.RememberUntil) && now.Before(d.RememberedAt.Add(policyDuration))
}

// Passcode is a one-time code sent by SMS or email: for a sign-in, to confirm
// a new factor, or for 2-step verification. Stored only as a keyed hash.
type Passcode struct {
	ID          string
	AccountID   string
	UserID      string
	ChallengeID string // empty when confirming a factor
	FactorID    string // empty for 2-step verification
	Channel     Channel
	CodeHash    []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      time.Time
}

// Passcode lifetimes.
const (
	PasscodeTTL           = 60 * time.Second
	DeviceVerificationTTL = 5 * time.Minute
)

// APIToken lets an integration call the admin API as the admin who made it.
type APIToken struct {
	ID          string
	AccountID   string
	UserID      string
	Description string
	TokenHash   []byte
	CreatedAt   time.Time
	LastUsedAt  time.Time
	ExpiresAt   time.Time // zero: no expiry
}

// Active reports whether the token can be used at now.
func (t *APIToken) Active(now time.Time) bool { return t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt) }
