package deadbolt

import (
	"slices"
	"strings"
	"time"
)

// Policy is an account's sign-in rules. Its JSON form is the public one of
// GET/PUT /api/v1/accounts/{account}/policy and is also how it is stored.
type Policy struct {
	Require2FATeamMembers bool `json:"require_2fa_team_members"`
	Require2FAEndUsers    bool `json:"require_2fa_end_users"`
	// GracePeriodDays lets users who must set up 2FA sign in without it for
	// this many days after the requirement first applies to them.
	GracePeriodDays int          `json:"grace_period_days"`
	AllowedMethods  []FactorKind `json:"allowed_methods"`
	// StrongMethodsOnly allows only phishing-resistant or app-based methods
	// (see FactorKind.Strong), whatever AllowedMethods says.
	StrongMethodsOnly bool `json:"strong_methods_only"`
	// RememberDeviceDays is per role; 0 means a second factor at every
	// sign-in.
	RememberDeviceDays  map[Role]int `json:"remember_device_days"`
	SessionIdleMinutes  int          `json:"session_idle_minutes"`
	SessionMaxHours     int          `json:"session_max_hours"`
	SMSBlockedCountries []string     `json:"sms_blocked_countries"`
	// PasswordAPIAccess lets users without 2FA call the admin API with HTTP
	// Basic and their password, for legacy integrations. Off by default:
	// a password alone skips 2-step verification and step-up.
	PasswordAPIAccess bool `json:"password_api_access"`
	// NewDeviceNotices emails users when their account is signed in from a
	// device Deadbolt did not recognise. On by default.
	NewDeviceNotices bool `json:"new_device_notices"`
	// Require2FASSOUsers asks users who sign in through an identity
	// provider for Deadbolt's second factor too (by default they skip it:
	// their provider is trusted to do its own), unless the provider is
	// trusted for MFA and says it was done.
	Require2FASSOUsers bool `json:"require_2fa_sso_users"`
	// RequireSSOTeamMembers refuses password sign-in to admins and agents:
	// they sign in through an identity provider. Owners keep their
	// password and 2FA, to get in when the provider is down (break-glass).
	RequireSSOTeamMembers bool `json:"require_sso_team_members"`
	// WebAuthnAAGUIDAllow, when not empty, is the only authenticator
	// models (AAGUIDs, lower-case UUIDs) whose passkeys are accepted;
	// WebAuthnAAGUIDDeny are refused. Both apply at registration and at
	// every sign-in, so tightening them retires passkeys already made.
	WebAuthnAAGUIDAllow []string `json:"webauthn_aaguid_allow"`
	WebAuthnAAGUIDDeny  []string `json:"webauthn_aaguid_deny"`

	// When each requirement was switched on: the grace period of a user
	// runs from the later of this and their creation. Kept by the service;
	// what a client sends here is ignored.
	TeamMembersRequiredSince time.Time `json:"team_members_required_since,omitzero"`
	EndUsersRequiredSince    time.Time `json:"end_users_required_since,omitzero"`
}

// Policy limits.
const (
	MaxGracePeriodDays    = 90
	MaxRememberDeviceDays = 365
	MaxSessionIdleMinutes = 7 * 24 * 60
	MaxSessionHours       = 30 * 24
)

// DefaultPolicy is the policy of a new account, and the value of every field
// a PUT leaves out.
func DefaultPolicy() Policy {
	return Policy{
		WebAuthnAAGUIDAllow: []string{},
		WebAuthnAAGUIDDeny:  []string{},
		AllowedMethods:      []FactorKind{FactorTOTP, FactorSMS, FactorEmail},
		RememberDeviceDays: map[Role]int{
			RoleOwner: 30, RoleAdmin: 30, RoleAgent: 30, RoleEndUser: 30,
		},
		SessionIdleMinutes:  60,
		SessionMaxHours:     12,
		SMSBlockedCountries: []string{},
		NewDeviceNotices:    true,
	}
}

// Validate checks the policy and normalises it (sorted, de-duplicated
// lists, upper-case country codes, a value for every role).
func (p *Policy) Validate() error {
	if p.GracePeriodDays < 0 || p.GracePeriodDays > MaxGracePeriodDays {
		return Invalid("grace_period_days", "grace_period_days must be between 0 and %d.", MaxGracePeriodDays)
	}
	if len(p.AllowedMethods) == 0 {
		return Invalid("allowed_methods", "allowed_methods must name at least one method.")
	}
	for _, k := range p.AllowedMethods {
		if !k.Valid() {
			return Invalid("allowed_methods", "allowed_methods: unknown method %q.", string(k))
		}
	}
	// Canonical order, the strongest first, without repeats.
	var methods []FactorKind
	for _, k := range FactorKinds {
		if slices.Contains(p.AllowedMethods, k) {
			methods = append(methods, k)
		}
	}
	p.AllowedMethods = methods
	if p.StrongMethodsOnly && !slices.ContainsFunc(p.AllowedMethods, FactorKind.Strong) {
		return Invalid("allowed_methods", "strong_methods_only needs a strong method (totp) in allowed_methods.")
	}
	for _, l := range []struct {
		field string
		list  *[]string
	}{{"webauthn_aaguid_allow", &p.WebAuthnAAGUIDAllow}, {"webauthn_aaguid_deny", &p.WebAuthnAAGUIDDeny}} {
		if len(*l.list) > 100 {
			return Invalid(l.field, "%s takes at most 100 AAGUIDs.", l.field)
		}
		out := []string{}
		for _, a := range *l.list {
			a = strings.ToLower(strings.TrimSpace(a))
			if !validUUID(a) {
				return Invalid(l.field, "%s: %q is not an AAGUID (a UUID such as cb69481e-8ff7-4039-93ec-0a2729a154a8).", l.field, truncateText(a, 40))
			}
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		*l.list = out
	}
	if p.RememberDeviceDays == nil {
		p.RememberDeviceDays = map[Role]int{}
	}
	def := DefaultPolicy().RememberDeviceDays
	for r, d := range p.RememberDeviceDays {
		if !r.Valid() {
			return Invalid("remember_device_days", "remember_device_days: unknown role %q.", string(r))
		}
		if d < 0 || d > MaxRememberDeviceDays {
			return Invalid("remember_device_days", "remember_device_days must be between 0 and %d.", MaxRememberDeviceDays)
		}
	}
	for _, r := range Roles {
		if _, ok := p.RememberDeviceDays[r]; !ok {
			p.RememberDeviceDays[r] = def[r]
		}
	}
	if p.SessionIdleMinutes < 1 || p.SessionIdleMinutes > MaxSessionIdleMinutes {
		return Invalid("session_idle_minutes", "session_idle_minutes must be between 1 and %d.", MaxSessionIdleMinutes)
	}
	if p.SessionMaxHours < 1 || p.SessionMaxHours > MaxSessionHours {
		return Invalid("session_max_hours", "session_max_hours must be between 1 and %d.", MaxSessionHours)
	}
	if p.SMSBlockedCountries == nil {
		p.SMSBlockedCountries = []string{}
	}
	for i, c := range p.SMSBlockedCountries {
		c = strings.ToUpper(c)
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			return Invalid("sms_blocked_countries", "sms_blocked_countries holds ISO 3166-1 alpha-2 codes such as \"IN\".")
		}
		p.SMSBlockedCountries[i] = c
	}
	slices.Sort(p.SMSBlockedCountries)
	p.SMSBlockedCountries = slices.Compact(p.SMSBlockedCountries)
	return nil
}

// Requires2FA reports whether users of the role must have a second factor.
func (p *Policy) Requires2FA(r Role) bool {
	if r == RoleEndUser {
		return p.Require2FAEndUsers
	}
	return p.Require2FATeamMembers
}

// GraceDeadline is when a user of the role, created at created, must have
// 2FA set up; zero when 2FA is not required or there is no grace period.
func (p *Policy) GraceDeadline(r Role, created time.Time) time.Time {
	if !p.Requires2FA(r) || p.GracePeriodDays == 0 {
		return time.Time{}
	}
	since := p.TeamMembersRequiredSince
	if r == RoleEndUser {
		since = p.EndUsersRequiredSince
	}
	if created.After(since) {
		since = created
	}
	return since.Add(time.Duration(p.GracePeriodDays) * 24 * time.Hour)
}

// Allows reports whether users may enrol and use factors of the kind. SMS is
// never allowed for end users (see DESIGN.md).
func (p *Policy) Allows(k FactorKind, r Role) bool {
	if k == FactorSMS && r == RoleEndUser {
		return false
	}
	if p.StrongMethodsOnly && !k.Strong() {
		return false
	}
	return slices.Contains(p.AllowedMethods, k)
}

// RememberDevice is how long a device that proved a second factor skips it
// for users of the role; 0 means never.
func (p *Policy) RememberDevice(r Role) time.Duration {
	return time.Duration(p.RememberDeviceDays[r]) * 24 * time.Hour
}

// SessionIdle is the session idle timeout.
func (p *Policy) SessionIdle() time.Duration {
	return time.Duration(p.SessionIdleMinutes) * time.Minute
}

// SessionMax is the absolute session lifetime.
func (p *Policy) SessionMax() time.Duration {
	return time.Duration(p.SessionMaxHours) * time.Hour
}

// SMSCountryBlocked reports whether SMS to the ISO country is refused.
func (p *Policy) SMSCountryBlocked(country string) bool {
	return slices.Contains(p.SMSBlockedCountries, strings.ToUpper(country))
}

// validUUID accepts the canonical form of a UUID, lower case.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
				return false
			}
		}
	}
	return true
}

// AAGUIDString is the canonical form of a 16-byte AAGUID.
func AAGUIDString(b []byte) string {
	if len(b) != 16 {
		return "00000000-0000-0000-0000-000000000000"
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

// AllowsAuthenticator reports whether passkeys of the authenticator model
// are accepted.
func (p *Policy) AllowsAuthenticator(aaguid string) bool {
	if slices.Contains(p.WebAuthnAAGUIDDeny, aaguid) {
		return false
	}
	return len(p.WebAuthnAAGUIDAllow) == 0 || slices.Contains(p.WebAuthnAAGUIDAllow, aaguid)
}
