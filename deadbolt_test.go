package deadbolt_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"ann@example.com", "ann@example.com", true},
		{"  Ann.Lee@Example.COM ", "ann.lee@example.com", true},
		{"ann+tag@sub.example.co.uk", "ann+tag@sub.example.co.uk", true},
		{"", "", false},
		{"ann", "", false},
		{"ann@", "", false},
		{"@example.com", "", false},
		{"ann@localhost", "", false},
		{"Ann <ann@example.com>", "", false},
		{"ann@example.com\r\nBcc: x@y.z", "", false},
		{"ann @example.com", "", false},
		{"a@b.c" + string(make([]byte, 300)), "", false},
		{"ann@exa\xffmple.com", "", false},
	}
	for _, tt := range tests {
		got, err := deadbolt.NormalizeEmail(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !tt.ok && (err == nil || deadbolt.ErrorCode(err) != deadbolt.EInvalid) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want an invalid_request error", tt.in, got, err)
		}
	}
}

func TestUserValidate(t *testing.T) {
	ok := func() deadbolt.User {
		return deadbolt.User{Email: "a@example.com", Name: "Ann", Role: deadbolt.RoleAgent}
	}
	tests := []struct {
		name  string
		edit  func(*deadbolt.User)
		code  string
		field string
	}{
		{"valid", func(*deadbolt.User) {}, "", ""},
		{"bad email", func(u *deadbolt.User) { u.Email = "nope" }, deadbolt.EInvalid, "email"},
		{"empty name", func(u *deadbolt.User) { u.Name = "  " }, deadbolt.EInvalid, "name"},
		{"unknown role", func(u *deadbolt.User) { u.Role = "root" }, deadbolt.EInvalid, "role"},
		{"unknown auth source", func(u *deadbolt.User) { u.AuthSource = "ldap" }, deadbolt.EInvalid, "auth_source"},
		{"phone not E.164", func(u *deadbolt.User) { u.Phone = "202-555-0143" }, deadbolt.EInvalidPhone, ""},
		{"phone E.164", func(u *deadbolt.User) { u.Phone = "+12025550143" }, "", ""},
	}
	for _, tt := range tests {
		u := ok()
		tt.edit(&u)
		err := u.Validate()
		var e *deadbolt.Error
		errors.As(err, &e)
		if got := deadbolt.ErrorCode(err); got != tt.code || (e != nil && e.Field != tt.field) {
			t.Errorf("%s: Validate() = %v, want code %q field %q", tt.name, err, tt.code, tt.field)
		}
		if tt.code == "" && u.AuthSource != deadbolt.AuthPassword {
			t.Errorf("%s: AuthSource = %q, want the default password", tt.name, u.AuthSource)
		}
	}
}

func TestValidateSlug(t *testing.T) {
	for _, s := range []string{"a", "acme", "acme-support", "a1", "123"} {
		if err := deadbolt.ValidateSlug(s); err != nil {
			t.Errorf("ValidateSlug(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "-acme", "acme-", "Acme", "ac me", "acme_x", "ac/me", string(make([]byte, 64))} {
		if err := deadbolt.ValidateSlug(s); deadbolt.ErrorCode(err) != deadbolt.EInvalid {
			t.Errorf("ValidateSlug(%q) = %v, want invalid_request", s, err)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*deadbolt.Policy)
		field string // "" = valid
	}{
		{"default", func(*deadbolt.Policy) {}, ""},
		{"grace too long", func(p *deadbolt.Policy) { p.GracePeriodDays = 91 }, "grace_period_days"},
		{"grace negative", func(p *deadbolt.Policy) { p.GracePeriodDays = -1 }, "grace_period_days"},
		{"no methods", func(p *deadbolt.Policy) { p.AllowedMethods = nil }, "allowed_methods"},
		{"unknown method", func(p *deadbolt.Policy) { p.AllowedMethods = []deadbolt.FactorKind{"carrier-pigeon"} }, "allowed_methods"},
		{"strong only without a strong method", func(p *deadbolt.Policy) {
			p.StrongMethodsOnly = true
			p.AllowedMethods = []deadbolt.FactorKind{deadbolt.FactorSMS}
		}, "allowed_methods"},
		{"remember unknown role", func(p *deadbolt.Policy) { p.RememberDeviceDays["guest"] = 1 }, "remember_device_days"},
		{"remember too long", func(p *deadbolt.Policy) { p.RememberDeviceDays[deadbolt.RoleAgent] = 366 }, "remember_device_days"},
		{"remember 0 is allowed", func(p *deadbolt.Policy) { p.RememberDeviceDays[deadbolt.RoleAgent] = 0 }, ""},
		{"idle 0", func(p *deadbolt.Policy) { p.SessionIdleMinutes = 0 }, "session_idle_minutes"},
		{"max too long", func(p *deadbolt.Policy) { p.SessionMaxHours = 721 }, "session_max_hours"},
		{"bad country", func(p *deadbolt.Policy) { p.SMSBlockedCountries = []string{"IND"} }, "sms_blocked_countries"},
		{"digit country", func(p *deadbolt.Policy) { p.SMSBlockedCountries = []string{"1N"} }, "sms_blocked_countries"},
	}
	for _, tt := range tests {
		p := deadbolt.DefaultPolicy()
		tt.edit(&p)
		err := p.Validate()
		var e *deadbolt.Error
		errors.As(err, &e)
		if tt.field == "" && err != nil || tt.field != "" && (e == nil || e.Field != tt.field || e.Code != deadbolt.EInvalid) {
			t.Errorf("%s: Validate() = %v, want field %q", tt.name, err, tt.field)
		}
	}

	// Validate normalises: sorted unique lists, upper-case countries, every
	// role present.
	p := deadbolt.Policy{
		AllowedMethods:      []deadbolt.FactorKind{"totp", "email", "totp"},
		RememberDeviceDays:  map[deadbolt.Role]int{deadbolt.RoleAdmin: 0},
		SessionIdleMinutes:  15,
		SessionMaxHours:     8,
		SMSBlockedCountries: []string{"in", "NG", "IN"},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := p.AllowedMethods, []deadbolt.FactorKind{"totp", "email"}; !slices.Equal(got, want) {
		t.Errorf("AllowedMethods = %v, want %v", got, want)
	}
	if got, want := p.SMSBlockedCountries, []string{"IN", "NG"}; !slices.Equal(got, want) {
		t.Errorf("SMSBlockedCountries = %v, want %v", got, want)
	}
	if p.RememberDeviceDays[deadbolt.RoleAdmin] != 0 || p.RememberDeviceDays[deadbolt.RoleAgent] != 30 {
		t.Errorf("RememberDeviceDays = %v, want admin 0 and the default 30 for the rest", p.RememberDeviceDays)
	}
	if p.RememberDevice(deadbolt.RoleAgent) != 30*24*time.Hour || p.SessionIdle() != 15*time.Minute || p.SessionMax() != 8*time.Hour {
		t.Errorf("durations: remember %v idle %v max %v", p.RememberDevice(deadbolt.RoleAgent), p.SessionIdle(), p.SessionMax())
	}
	if !p.SMSCountryBlocked("in") || p.SMSCountryBlocked("US") {
		t.Errorf("SMSCountryBlocked: IN should be blocked, US not")
	}
}

func TestPolicyAllows(t *testing.T) {
	p := deadbolt.DefaultPolicy()
	tests := []struct {
		kind   deadbolt.FactorKind
		role   deadbolt.Role
		strong bool
		want   bool
	}{
		{deadbolt.FactorTOTP, deadbolt.RoleAgent, false, true},
		{deadbolt.FactorSMS, deadbolt.RoleAgent, false, true},
		{deadbolt.FactorSMS, deadbolt.RoleEndUser, false, false}, // never SMS for end users
		{deadbolt.FactorEmail, deadbolt.RoleEndUser, false, true},
		{deadbolt.FactorSMS, deadbolt.RoleAgent, true, false},
		{deadbolt.FactorEmail, deadbolt.RoleAdmin, true, false},
		{deadbolt.FactorTOTP, deadbolt.RoleAdmin, true, true},
	}
	for _, tt := range tests {
		p.StrongMethodsOnly = tt.strong
		if got := p.Allows(tt.kind, tt.role); got != tt.want {
			t.Errorf("Allows(%s, %s) with strong=%v = %v, want %v", tt.kind, tt.role, tt.strong, got, tt.want)
		}
	}
	p.Require2FATeamMembers = true
	if !p.Requires2FA(deadbolt.RoleOwner) || !p.Requires2FA(deadbolt.RoleAgent) || p.Requires2FA(deadbolt.RoleEndUser) {
		t.Errorf("Requires2FA with team members required: wrong roles")
	}
}

func TestErrorCode(t *testing.T) {
	inner := deadbolt.Errorf(deadbolt.EConflict, "Taken.")
	inner.Err = errors.New("UNIQUE constraint failed: secret detail")
	tests := []struct {
		err      error
		code     string
		message  string
		errorsIs bool
	}{
		{nil, "", "", false},
		{errors.New("disk on fire"), deadbolt.EInternal, "Internal error.", false},
		{inner, deadbolt.EConflict, "Taken.", true},
		{fmt.Errorf("create user: %w", inner), deadbolt.EConflict, "Taken.", true},
	}
	for _, tt := range tests {
		if got := deadbolt.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if tt.err != nil {
			if got := deadbolt.ErrorMessage(tt.err); got != tt.message {
				t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.message)
			}
		}
	}
	// The public message never carries the cause; the cause is reachable.
	if msg := deadbolt.ErrorMessage(inner); msg != "Taken." {
		t.Errorf("public message = %q", msg)
	}
	if !errors.Is(fmt.Errorf("x: %w", inner), inner.Err) {
		t.Errorf("errors.Is does not reach the cause")
	}
}

func TestSessionActive(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := deadbolt.Session{IdleTimeout: time.Hour, ExpiresAt: now.Add(2 * time.Hour), LastSeenAt: now}
	tests := []struct {
		at   time.Time
		want bool
	}{
		{now, true},
		{now.Add(59 * time.Minute), true},
		{now.Add(time.Hour), false}, // idle
	}
	for _, tt := range tests {
		if got := s.Active(tt.at); got != tt.want {
			t.Errorf("Active(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
	s.LastSeenAt = now.Add(110 * time.Minute)
	if s.Active(now.Add(2 * time.Hour)) {
		t.Errorf("Active past the absolute lifetime = true, want false")
	}
}
