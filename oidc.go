package deadbolt

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Deadbolt as an OpenID Connect provider: each account is an issuer, and
// the applications its admins register (clients) delegate their sign-in to
// it. The protocol itself is a library's (internal/oidc); these are the
// records it keeps.

// OIDCScopes are the scopes a client may be allowed. openid is always
// allowed; offline_access gives refresh tokens.
var OIDCScopes = []string{"openid", "profile", "email", "role", "offline_access"}

// OIDC lifetimes.
const (
	// OIDCAuthRequestTTL is how long a sign-in started by an application
	// may take, and how long its code is remembered (so that a replayed
	// code is recognised and its tokens revoked).
	OIDCAuthRequestTTL = 10 * time.Minute
	// OIDCCodeTTL is how long an authorization code may wait for its
	// exchange.
	OIDCCodeTTL = time.Minute
	// OIDCAccessTokenTTL is the lifetime of access and ID tokens; a
	// retired signing key stays published at least this long.
	OIDCAccessTokenTTL = 15 * time.Minute
)

// OIDCClient is an application registered by an account's admin.
type OIDCClient struct {
	AccountID string
	// ID is the client_id: random, public, unique across accounts.
	ID   string
	Name string
	// SecretHash is the keyed hash of a confidential client's secret; nil
	// for a public client (a single-page or native app), which must use
	// PKCE with S256.
	SecretHash []byte
	// RedirectURIs are matched exactly.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, when set, is sent a logout token when a
	// session the client got tokens for ends.
	BackchannelLogoutURI string
	// Scopes are the scopes the client may ask for, besides openid.
	Scopes []string
	// Require2FA sends users without a second factor to enrolment and
	// always asks for one: the client only ever sees acr "mfa".
	Require2FA bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Public reports whether the client has no secret.
func (c *OIDCClient) Public() bool { return len(c.SecretHash) == 0 }

// Limits of a client's registration.
const (
	maxClientURIs   = 20
	maxClientURILen = 2000
)

// Validate checks and normalises a client's fields (not its id or secret).
func (c *OIDCClient) Validate() error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		return Invalid("name", "The application name must be 1 to 200 characters.")
	}
	if err := CheckText("name", c.Name, 200); err != nil {
		return err
	}
	if len(c.RedirectURIs) == 0 {
		return Invalid("redirect_uris", "Give at least one redirect URI.")
	}
	for _, list := range []struct {
		field string
		uris  []string
	}{{"redirect_uris", c.RedirectURIs}, {"post_logout_redirect_uris", c.PostLogoutRedirectURIs}} {
		if len(list.uris) > maxClientURIs {
			return Invalid(list.field, "Give at most %d URIs.", maxClientURIs)
		}
		for _, u := range list.uris {
			if err := validateClientURI(list.field, u); err != nil {
				return err
			}
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := validateClientURI("backchannel_logout_uri", c.BackchannelLogoutURI); err != nil {
			return err
		}
	}
	var scopes []string
	for _, s := range c.Scopes {
		if !slices.Contains(OIDCScopes, s) {
			return Invalid("scopes", "Unknown scope %q: the scopes are %s.", truncateText(s, 40), strings.Join(OIDCScopes, ", "))
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	c.Scopes = scopes
	return nil
}

// validateClientURI accepts an absolute https URI without a fragment, or
// an http one on a loopback host (for development and native apps).
func validateClientURI(field, raw string) error {
	if len(raw) > maxClientURILen || CheckText(field, raw, maxClientURILen) != nil {
		return Invalid(field, "A URI must be at most %d characters of text.", maxClientURILen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(raw, " \t\r\n") {
		return Invalid(field, "%q is not an absolute URI without a fragment.", truncateText(raw, 80))
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return Invalid(field, "%q: only https is allowed, or http on localhost.", truncateText(raw, 80))
		}
	default:
		return Invalid(field, "%q: only https is allowed, or http on localhost.", truncateText(raw, 80))
	}
	return nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// OIDCAuthRequest is an application's sign-in request, from the
// authorization endpoint until its code is exchanged.
type OIDCAuthRequest struct {
	AccountID string
	ID        string
	// The request as the application sent it (after validation).
	ClientID            string
	RedirectURI         string
	State               string
	Nonce               string
	Scopes              []string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	// MaxAge is the max_age in seconds; nil when absent.
	MaxAge    *int64
	LoginHint string
	ACRValues []string
	// Set when the user has signed in for it.
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	DoneAt    time.Time
	// CodeUsedAt is when its code was exchanged (zero until then).
	CodeUsedAt time.Time
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// OIDCToken is one issue of tokens to a client: an opaque access token
// (its ID) and, when the client may have one, a refresh token (stored as
// its hash). Refreshing replaces the row. Every token is bound to the
// Deadbolt session it came from and dies with it.
type OIDCToken struct {
	AccountID     string
	ID            string
	ClientID      string
	UserID        string
	SessionID     string
	AuthRequestID string
	RefreshHash   []byte // nil: no refresh token
	Scopes        []string
	AuthTime      time.Time
	AMR           []string
	ACR           string
	// ExpiresAt is the access token's expiry; RefreshExpiresAt the
	// refresh token's.
	ExpiresAt        time.Time
	RefreshExpiresAt time.Time
	CreatedAt        time.Time
}

// OIDCLogin records that a client got tokens for a session, so that the
// client is told (back-channel logout) when the session ends.
type OIDCLogin struct {
	AccountID string
	ClientID  string
	SessionID string
	UserID    string
	CreatedAt time.Time
}

// OIDCKey is a signing key of an account's issuer.
type OIDCKey struct {
	AccountID string
	ID        string
	Alg       string // ES256 or RS256
	// Private is the PKCS #8 DER private key; sealed at rest.
	Private   []byte
	CreatedAt time.Time
	// RetiredAt is when a newer key replaced it (zero for the signing key);
	// it is published, for verifiers, until RetiredAt plus the longest
	// token lifetime.
	RetiredAt time.Time
}

// OIDCStore keeps the provider's records. Every method is scoped to one
// account but FindOIDCClient's cross-account lookup by client id.
type OIDCStore interface {
	// CreateOIDCClient stores a client; it fills in the times (the caller
	// sets the id). EConflict if the id is taken.
	CreateOIDCClient(ctx context.Context, c *OIDCClient) error
	// FindOIDCClient returns a client of the account. ENotFound.
	FindOIDCClient(ctx context.Context, accountID, id string) (*OIDCClient, error)
	// FindOIDCClients lists the account's clients, oldest first.
	FindOIDCClients(ctx context.Context, accountID string) ([]*OIDCClient, error)
	// UpdateOIDCClient replaces a client's fields (SecretHash included)
	// and returns it. ENotFound.
	UpdateOIDCClient(ctx context.Context, c *OIDCClient) (*OIDCClient, error)
	// DeleteOIDCClient removes a client with its tokens, logins and auth
	// requests. ENotFound.
	DeleteOIDCClient(ctx context.Context, accountID, id string) error

	// CreateOIDCAuthRequest stores a new request; the caller sets the id.
	CreateOIDCAuthRequest(ctx context.Context, r *OIDCAuthRequest) error
	// FindOIDCAuthRequest returns a request that has not expired at now.
	// ENotFound.
	FindOIDCAuthRequest(ctx context.Context, accountID, id string, now time.Time) (*OIDCAuthRequest, error)
	// CompleteOIDCAuthRequest records who signed in for a live request that
	// is not done yet (r's UserID, SessionID, AuthTime, AMR, ACR, DoneAt).
	// ENotFound otherwise, also when the session is not the user's.
	CompleteOIDCAuthRequest(ctx context.Context, r *OIDCAuthRequest, now time.Time) error
	// SetOIDCAuthCode stores the hash of the code for a done request that
	// has none yet. ENotFound.
	SetOIDCAuthCode(ctx context.Context, accountID, id string, codeHash []byte, now time.Time) error
	// ConsumeOIDCAuthCode marks the code used and returns its request. Of
	// racing callers one wins. A code that was already used, or is past
	// OIDCCodeTTL, gives ENotFound; a used one also returns its request so
	// the caller can revoke what it gave (a replayed code).
	ConsumeOIDCAuthCode(ctx context.Context, accountID string, codeHash []byte, now time.Time) (*OIDCAuthRequest, error)
	// DeleteExpiredOIDCAuthRequests removes requests past their expiry.
	DeleteExpiredOIDCAuthRequests(ctx context.Context, now time.Time) (int, error)

	// CreateOIDCToken stores a token issue, and the login of its client
	// for its session, in one transaction. ENotFound if the session is not
	// the user's or no longer exists: nothing outlives its session.
	CreateOIDCToken(ctx context.Context, t *OIDCToken) error
	// RotateOIDCToken replaces the token with the refresh hash old by t in
	// one transaction. ENotFound if there is no such token (used already:
	// of racing refreshes one wins) or its session is gone.
	RotateOIDCToken(ctx context.Context, accountID string, old []byte, t *OIDCToken) error
	// FindOIDCToken returns a token by id. ENotFound.
	FindOIDCToken(ctx context.Context, accountID, id string) (*OIDCToken, error)
	// FindOIDCTokenByRefresh returns a token by its refresh hash. ENotFound.
	FindOIDCTokenByRefresh(ctx context.Context, accountID string, hash []byte) (*OIDCToken, error)
	// ExpireOIDCAccessToken ends a token's access token, keeping its
	// refresh token. ENotFound.
	ExpireOIDCAccessToken(ctx context.Context, accountID, id string) error
	// DeleteOIDCToken ends a token issue, refresh token and all. ENotFound.
	DeleteOIDCToken(ctx context.Context, accountID, id string) error
	// DeleteOIDCTokensOf ends the tokens of a user's sessions with a
	// client (clientID empty: every client), or of one auth request when
	// authRequestID is set; it returns how many.
	DeleteOIDCTokensOf(ctx context.Context, accountID, userID, clientID, authRequestID string) (int, error)

	// EndedOIDCLogins lists up to n logins, in any account, whose session
	// no longer exists: the clients to tell of a logout.
	EndedOIDCLogins(ctx context.Context, n int) ([]*OIDCLogin, error)
	// MoveOIDCSession rebinds the logins and tokens of a session to the
	// session that replaces it (a session rotated after a step-up).
	MoveOIDCSession(ctx context.Context, accountID, from, to string) error
	// DeleteOIDCLogin forgets a login and the tokens of its session and
	// client. ENotFound.
	DeleteOIDCLogin(ctx context.Context, accountID, clientID, sessionID string) error

	// CreateOIDCKey stores a new signing key for the account, sealed, and
	// retires the one it replaces (at k.CreatedAt) in the same
	// transaction. The caller sets the id.
	CreateOIDCKey(ctx context.Context, k *OIDCKey) error
	// FindOIDCKeys lists the account's keys retired after since or not
	// retired, newest first, opened.
	FindOIDCKeys(ctx context.Context, accountID string, since time.Time) ([]*OIDCKey, error)
}
