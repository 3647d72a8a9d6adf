package deadbolt

import (
	"context"
	"slices"
	"strings"
	"time"
)

// SSO: an account's own identity providers (its company's Google
// Workspace, Entra ID, Okta...), through which its SSO users sign in. The
// protocols are libraries' (internal/sso); these are the records.

// SSOKind is the protocol of an identity provider.
type SSOKind string

// SSO kinds.
const (
	SSOOIDC SSOKind = "oidc"
	SSOSAML SSOKind = "saml"
)

// Valid reports whether k is a known kind.
func (k SSOKind) Valid() bool { return k == SSOOIDC || k == SSOSAML }

// SSO lifetimes and limits.
const (
	// SSOStateTTL is how long a sign-in may stay at the identity provider.
	SSOStateTTL = 10 * time.Minute
	// MaxSSOProviders is how many identity providers an account may have.
	MaxSSOProviders = 20
	maxSSODomains   = 50
)

// SSOProvider is an identity provider an account's admin configured.
type SSOProvider struct {
	AccountID string
	ID        string
	Kind      SSOKind
	// Name is shown on the sign-in page: "Sign in with {Name}".
	Name string
	// Domains are email domains (lower case). An email of one of them is
	// sent to this provider from the sign-in page (home-realm discovery);
	// when the list is not empty, only emails of these domains are
	// accepted from the provider.
	Domains []string
	// JIT creates a user on the first sign-in of an email the account does
	// not know, with DefaultRole; without it such a sign-in is refused.
	JIT         bool
	DefaultRole Role
	// TrustMFA accepts the provider's word (amr or acr for OpenID Connect,
	// the AuthnContextClassRef for SAML) that a second factor was used,
	// where the policy demands Deadbolt's second factor of SSO users.
	TrustMFA bool

	// OpenID Connect: the issuer (discovery is at its
	// /.well-known/openid-configuration), the client registered there and
	// its secret (sealed at rest by the store).
	Issuer       string
	ClientID     string
	ClientSecret string

	// SAML 2.0: the IdP's metadata, as XML given by the admin or fetched
	// from MetadataURL. The SP's own signing key is the provider's
	// (sealed at rest), its certificate published in the SP metadata.
	MetadataURL string
	MetadataXML string
	SPKeyPEM    string
	SPCertPEM   string

	CreatedAt time.Time
	UpdatedAt time.Time
}

// HasDomain reports whether the provider is named for the email's domain.
func (p *SSOProvider) HasDomain(email string) bool {
	at := strings.LastIndexByte(email, '@')
	return at >= 0 && slices.Contains(p.Domains, strings.ToLower(email[at+1:]))
}

// Accepts reports whether the provider may vouch for the email: any, or
// only its domains when it has some.
func (p *SSOProvider) Accepts(email string) bool {
	return len(p.Domains) == 0 || p.HasDomain(email)
}

// Validate checks and normalises what an admin gives (not the id, times or
// the SAML SP key, which the service makes).
func (p *SSOProvider) Validate() error {
	if !p.Kind.Valid() {
		return Invalid("kind", "kind must be oidc or saml.")
	}
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		return Invalid("name", "The provider's name must be 1 to 100 characters.")
	}
	if err := CheckText("name", p.Name, 100); err != nil {
		return err
	}
	if len(p.Domains) > maxSSODomains {
		return Invalid("domains", "Give at most %d domains.", maxSSODomains)
	}
	var domains []string
	for _, d := range p.Domains {
		d = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "@")))
		if !validDomain(d) {
			return Invalid("domains", "%q is not a domain name.", truncateText(d, 80))
		}
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	p.Domains = domains
	if p.DefaultRole == "" {
		p.DefaultRole = RoleEndUser
	}
	if !p.DefaultRole.Valid() || p.DefaultRole == RoleOwner {
		return Invalid("default_role", "default_role must be admin, agent or end_user.")
	}
	switch p.Kind {
	case SSOOIDC:
		p.Issuer, p.ClientID = strings.TrimSpace(p.Issuer), strings.TrimSpace(p.ClientID)
		if err := validateSSOURL("issuer", p.Issuer); err != nil {
			return err
		}
		if err := CheckText("client_id", p.ClientID, 500); err != nil || p.ClientID == "" {
			return Invalid("client_id", "The client id that the provider gave is required (at most 500 characters).")
		}
		if len(p.ClientSecret) > 2000 || strings.ContainsAny(p.ClientSecret, "\r\n") {
			return Invalid("client_secret", "The client secret must be at most 2000 characters on one line.")
		}
		p.MetadataURL, p.MetadataXML = "", ""
	case SSOSAML:
		p.MetadataURL = strings.TrimSpace(p.MetadataURL)
		if p.MetadataURL == "" && strings.TrimSpace(p.MetadataXML) == "" {
			return Invalid("metadata_url", "Give the identity provider's metadata: its URL (metadata_url) or the XML (metadata_xml).")
		}
		if p.MetadataURL != "" {
			if err := validateSSOURL("metadata_url", p.MetadataURL); err != nil {
				return err
			}
		}
		if len(p.MetadataXML) > 256<<10 {
			return Invalid("metadata_xml", "The metadata must be at most 256 KiB.")
		}
		p.Issuer, p.ClientID, p.ClientSecret = "", "", ""
	}
	return nil
}

// validDomain accepts a DNS name of at least two labels.
func validDomain(d string) bool {
	if len(d) < 3 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validateSSOURL accepts an absolute https URL, or http on a loopback host.
func validateSSOURL(field, raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Invalid(field, "%s is required.", field)
	}
	return validateClientURI(field, raw)
}

// SSOState is a sign-in sent to an identity provider, until it comes back
// (once: a state is consumed by its first answer).
type SSOState struct {
	AccountID  string
	ID         string // the OAuth state / the SAML AuthnRequest ID and RelayState
	ProviderID string
	// Nonce and Verifier are the OpenID Connect nonce and PKCE verifier.
	Nonce    string
	Verifier string
	// BrowserHash is the keyed hash of a random value in the browser's
	// cookie: the answer must come back to the browser that left.
	BrowserHash []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// SSOStore keeps identity providers, the sign-ins at them, and the SAML
// assertions already used.
type SSOStore interface {
	// CreateSSOProvider fills in the times; EConflict past MaxSSOProviders
	// or when a domain is another provider's of the account.
	CreateSSOProvider(ctx context.Context, p *SSOProvider) error
	// UpdateSSOProvider replaces the provider's fields; ENotFound if it is
	// not the account's.
	UpdateSSOProvider(ctx context.Context, p *SSOProvider) error
	FindSSOProvider(ctx context.Context, accountID, id string) (*SSOProvider, error)
	// FindSSOProviders lists the account's providers by name.
	FindSSOProviders(ctx context.Context, accountID string) ([]*SSOProvider, error)
	// DeleteSSOProvider removes it and its pending states.
	DeleteSSOProvider(ctx context.Context, accountID, id string) error

	CreateSSOState(ctx context.Context, s *SSOState) error
	// ConsumeSSOState returns the live state and deletes it, in one
	// transaction: of two answers for one state, one gets it. ENotFound if
	// unknown, expired or used.
	ConsumeSSOState(ctx context.Context, accountID, id string, now time.Time) (*SSOState, error)
	// UseSSOAssertion records a SAML assertion's ID until it expires;
	// EConflict if it was used before (a replay).
	UseSSOAssertion(ctx context.Context, accountID, providerID, assertionID string, expiresAt, now time.Time) error
	// DeleteExpiredSSO removes dead states and assertion records.
	DeleteExpiredSSO(ctx context.Context, now time.Time) (int, error)
}

// Identity is what an identity provider vouched for.
type Identity struct {
	// Subject is the provider's stable id of the person.
	Subject string
	Email   string
	Name    string
	// MFA is true when the provider says a second factor was used.
	MFA bool
}
