package deadbolt

import "time"

// Session is a signed-in client. The token itself is never stored: only its
// keyed hash, so a copy of the database signs no one in.
type Session struct {
	ID        string
	AccountID string
	UserID    string
	TokenHash []byte
	// IdleTimeout and ExpiresAt come from the policy when the session was
	// made; a policy change applies from the next sign-in.
	IdleTimeout time.Duration
	ExpiresAt   time.Time
	// SecondFactorAt and PasswordAt are when the user last proved a second
	// factor or a password on this session (step-up); zero if never.
	SecondFactorAt time.Time
	PasswordAt     time.Time
	// SecondFactorMethod is how the last second factor was proven: a
	// FactorKind, or "recovery_code"; empty when none was.
	SecondFactorMethod string
	// SSOProviderID names the identity provider of an SSO sign-in, which
	// vouched at FederatedAt; UpstreamMFA is true when it said a second
	// factor was used and the provider is trusted for that.
	SSOProviderID string
	FederatedAt   time.Time
	UpstreamMFA   bool
	DeviceID      string
	IP            string
	UserAgent     string
	CreatedAt     time.Time
	LastSeenAt    time.Time
}

// Active reports whether the session is usable at now: neither past its
// absolute lifetime nor idle for too long.
func (s *Session) Active(now time.Time) bool {
	return now.Before(s.ExpiresAt) && now.Before(s.LastSeenAt.Add(s.IdleTimeout))
}
