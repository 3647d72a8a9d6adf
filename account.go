package deadbolt

import (
	"regexp"
	"strings"
	"time"
)

// Account is a tenant: one help desk with its own users, policy and audit
// log. Its slug appears in URLs.
type Account struct {
	ID        string
	Slug      string
	Name      string
	Policy    Policy
	CreatedAt time.Time
	UpdatedAt time.Time
}

var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateSlug checks an account slug: 1 to 63 lower-case letters, digits and
// inner hyphens, so that it is safe in URLs and host names.
func ValidateSlug(slug string) error {
	if !slugRE.MatchString(slug) {
		return Invalid("slug", "The slug must be 1 to 63 lower-case letters, digits or hyphens, not starting or ending with a hyphen.")
	}
	return nil
}

// Validate checks the account's own fields and its policy.
func (a *Account) Validate() error {
	if err := ValidateSlug(a.Slug); err != nil {
		return err
	}
	a.Name = strings.TrimSpace(a.Name)
	if a.Name == "" {
		return Invalid("name", "The account name must be 1 to 200 characters.")
	}
	if err := CheckText("name", a.Name, 200); err != nil {
		return err
	}
	return a.Policy.Validate()
}
