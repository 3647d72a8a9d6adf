package deadbolt

import (
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is what a user is to the account.
type Role string

// Roles. Owner, admin and agent are team members; end users are the help
// desk's customers.
const (
	RoleOwner   Role = "owner"
	RoleAdmin   Role = "admin"
	RoleAgent   Role = "agent"
	RoleEndUser Role = "end_user"
)

// Roles lists every role, most privileged first.
var Roles = []Role{RoleOwner, RoleAdmin, RoleAgent, RoleEndUser}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleOwner, RoleAdmin, RoleAgent, RoleEndUser:
		return true
	}
	return false
}

// TeamMember reports whether the role belongs to the help desk's staff.
func (r Role) TeamMember() bool { return r == RoleOwner || r == RoleAdmin || r == RoleAgent }

// Admin reports whether the role may administer the account.
func (r Role) Admin() bool { return r == RoleOwner || r == RoleAdmin }

// AuthSource says how a user proves who they are.
type AuthSource string

// Auth sources. SSO users sign in through a third party: Deadbolt's 2FA and
// 2-step verification do not apply to them.
const (
	AuthPassword AuthSource = "password"
	AuthSSO      AuthSource = "sso"
)

// Valid reports whether s is a known auth source.
func (s AuthSource) Valid() bool { return s == AuthPassword || s == AuthSSO }

// User is a person of an account.
type User struct {
	ID         string
	AccountID  string
	Email      string // normalised: see NormalizeEmail
	Name       string
	Role       Role
	AuthSource AuthSource
	// Phone is an E.164 number, or empty. The store encrypts it at rest.
	Phone string
	// PasswordHash is an encoded Argon2id hash with its parameters, or empty
	// when the user has no password (SSO, or not set yet).
	PasswordHash string
	// PasswordChangedAt is when the password was last set; zero if never.
	PasswordChangedAt time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// NormalizeEmail trims an email address and lower-cases its domain and local
// part, so that one mailbox is one user. It checks the syntax.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || !utf8.ValidString(s) || strings.IndexFunc(s, forbiddenInText) >= 0 {
		return "", Invalid("email", "A valid email address is required.")
	}
	a, err := mail.ParseAddress(s)
	// ParseAddress accepts "Name <a@b>": only a bare address is an email here.
	if err != nil || a.Address != s || a.Name != "" || strings.ContainsAny(s, "<> \t\r\n") {
		return "", Invalid("email", "A valid email address is required.")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 || !strings.Contains(s[at:], ".") {
		return "", Invalid("email", "A valid email address is required.")
	}
	return strings.ToLower(s), nil
}

var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// ValidE164 reports whether s has the shape of an E.164 phone number. Whether
// the number exists in its country is checked where SMS is configured.
func ValidE164(s string) bool { return e164RE.MatchString(s) }

// Validate checks and normalises the user's fields.
func (u *User) Validate() error {
	email, err := NormalizeEmail(u.Email)
	if err != nil {
		return err
	}
	u.Email = email
	u.Name = strings.TrimSpace(u.Name)
	if u.Name == "" {
		return Invalid("name", "The name must be 1 to 200 characters.")
	}
	if err := CheckText("name", u.Name, 200); err != nil {
		return err
	}
	if !u.Role.Valid() {
		return Invalid("role", "The role must be one of owner, admin, agent or end_user.")
	}
	if u.AuthSource == "" {
		u.AuthSource = AuthPassword
	}
	if !u.AuthSource.Valid() {
		return Invalid("auth_source", "The auth source must be password or sso.")
	}
	if u.Phone != "" && !ValidE164(u.Phone) {
		return Errorf(EInvalidPhone, "The phone number must be in E.164 form, such as +12025550143.")
	}
	return nil
}
