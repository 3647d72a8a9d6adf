// Package oidc makes each account an OpenID Connect provider: the
// applications its admins register delegate their sign-in to Deadbolt's
// pages and get back signed ID tokens that say who signed in and how (amr,
// acr). The protocol is github.com/zitadel/oidc's op package; this package
// is its storage, its signing keys, the decisions the sign-in pages need
// (prompt, max_age, acr_values), the client registry and the back-channel
// logout the library does not send.
//
// The issuer of an account is {public_url}/accounts/{slug}. One library
// provider serves every account: the account is taken from the path and
// carried in the request's context, and every storage method is scoped to
// it, so a client, a code or a token of one account is unknown to another.
package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Keys hashes secrets, codes and refresh tokens for storage (an HMAC under
// the key file's key), as it does the rest of Deadbolt's tokens.
type Keys interface {
	Hash(token string) []byte
}

// Options configure a Provider.
type Options struct {
	Store deadbolt.Store
	Keys  Keys
	// PublicURL is where people and applications reach Deadbolt (no
	// trailing slash); issuers are under it.
	PublicURL string
	// SignOut ends a browser's Deadbolt session (RP-initiated logout).
	SignOut func(ctx context.Context, p *signin.Principal) error
	// HTTPClient sends back-channel logout tokens; default: one with a
	// 5-second timeout that follows no redirects.
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
	// Sweep is how often ended sessions are looked for when nothing kicks
	// the sweeper; default a minute.
	Sweep time.Duration
}

// Provider is the OpenID Connect provider of every account.
type Provider struct {
	store     deadbolt.Store
	keys      Keys
	publicURL string
	signOut   func(ctx context.Context, p *signin.Principal) error
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger
	sweep     time.Duration
	kick      chan struct{}
	op        *op.Provider
	handler   http.Handler
	// keyMu serialises the creation of an account's first key in this
	// process (other processes are kept out by the store's unique index).
	keyMu sync.Mutex
	// failures counts failed back-channel deliveries per login, so that a
	// client that never answers is given up on.
	failMu   sync.Mutex
	failures map[string]int
}

// New returns a Provider.
func New(opts Options) (*Provider, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Sweep <= 0 {
		opts.Sweep = time.Minute
	}
	p := &Provider{store: opts.Store, keys: opts.Keys, publicURL: strings.TrimRight(opts.PublicURL, "/"), signOut: opts.SignOut,
		client: opts.HTTPClient, now: opts.Now, log: opts.Logger, sweep: opts.Sweep, kick: make(chan struct{}, 1),
		failures: map[string]int{}}
	// The access tokens are opaque: the library encrypts the token's id
	// under this key. It comes from the key file, so every process of the
	// deployment reads the tokens of the others.
	var cryptoKey [32]byte
	copy(cryptoKey[:], sha256Sum(opts.Keys.Hash("deadbolt oidc access token key")))
	config := &op.Config{
		CryptoKey:                         cryptoKey,
		CryptoKeyId:                       "k1",
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		GrantTypeRefreshToken:             true,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
		SupportedScopes:                   deadbolt.OIDCScopes,
		SupportedClaims: []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp",
			"email", "email_verified", "name", "role", "sid"},
	}
	issuer := func(bool) (op.IssuerFromRequest, error) {
		return func(r *http.Request) string {
			acc := accountOf(r.Context())
			if acc == nil {
				return p.publicURL
			}
			return p.Issuer(acc.Slug)
		}, nil
	}
	opts2 := []op.Option{op.WithLogger(opts.Logger),
		op.WithCustomEndpoints(op.NewEndpoint("oidc/authorize"), op.NewEndpoint("oidc/token"), op.NewEndpoint("oidc/userinfo"),
			op.NewEndpoint("oidc/revoke"), op.NewEndpoint("oidc/end_session"), op.NewEndpoint("oidc/keys")),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint("oidc/introspect")),
		op.WithCustomDeviceAuthorizationEndpoint(op.NewEndpoint("oidc/device_authorization")),
	}
	if strings.HasPrefix(p.publicURL, "http://") {
		// Development and tests on loopback; the service refuses a
		// non-loopback http public URL on its own (checkPublicURL).
		opts2 = append(opts2, op.WithAllowInsecure())
	}
	var err error
	p.op, err = op.NewProvider(config, &storage{p: p}, issuer, opts2...)
	if err != nil {
		return nil, err
	}
	p.handler = p.op
	return p, nil
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// Issuer is the issuer URL of the account with the slug.
func (p *Provider) Issuer(slug string) string { return p.publicURL + "/accounts/" + slug }

type accountKey struct{}

func withAccount(ctx context.Context, a *deadbolt.Account) context.Context {
	return context.WithValue(ctx, accountKey{}, a)
}

func accountOf(ctx context.Context) *deadbolt.Account {
	a, _ := ctx.Value(accountKey{}).(*deadbolt.Account)
	return a
}

type browserKey struct{}

// WithBrowserSession returns a context that carries the principal of the
// browser's Deadbolt session (nil for none), for RP-initiated logout.
func WithBrowserSession(ctx context.Context, p *signin.Principal) context.Context {
	return context.WithValue(ctx, browserKey{}, p)
}

func browserOf(ctx context.Context) *signin.Principal {
	p, _ := ctx.Value(browserKey{}).(*signin.Principal)
	return p
}

// ServeHTTP serves /accounts/{slug}/.well-known/openid-configuration and
// /accounts/{slug}/oidc/...: the account is found, put in the context and
// its prefix taken off for the library's router.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/accounts/")
	slug, sub, _ := strings.Cut(rest, "/")
	if !ok || deadbolt.ValidateSlug(slug) != nil {
		oauthError(w, http.StatusNotFound, "invalid_request", "No such issuer.")
		return
	}
	acc, err := p.store.FindAccountBySlug(r.Context(), slug)
	if deadbolt.IsCode(err, deadbolt.EAccountNotFound) {
		oauthError(w, http.StatusNotFound, "invalid_request", "No such issuer.")
		return
	} else if err != nil {
		p.log.ErrorContext(r.Context(), "oidc: account lookup", "err", err)
		w.Header().Set("Retry-After", "5")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Try again in a few seconds.")
		return
	}
	sub = "/" + sub
	switch {
	case sub == "/oidc/authorize/callback":
		// The pages finish a sign-in themselves (Finish), in the browser
		// that signed in: a callback anyone holding the request id could
		// call would hand them the code.
		oauthError(w, http.StatusNotFound, "invalid_request", "Not found.")
		return
	case sub == "/oidc/device_authorization", sub == "/healthz", sub == "/ready":
		oauthError(w, http.StatusNotFound, "invalid_request", "Not found.")
		return
	case sub == "/oidc/end_session":
		if !validEndSession(w, r) {
			return
		}
	}
	r2 := r.Clone(withAccount(r.Context(), acc))
	r2.URL.Path = sub
	r2.URL.RawPath = ""
	r2.RequestURI = ""
	if sub == "/.well-known/openid-configuration" && r.Method == http.MethodGet {
		p.discovery(w, r2)
		return
	}
	p.handler.ServeHTTP(w, r2)
}

// discovery serves the library's discovery document, corrected where it
// says more than is offered: only the code flow, no device flow, and the
// acr values Deadbolt sets.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	p.handler.ServeHTTP(rec, r)
	var doc map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		w.Header().Set("Retry-After", "5")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Try again in a few seconds.")
		return
	}
	doc["response_types_supported"] = []string{"code"}
	doc["response_modes_supported"] = []string{"query", "form_post"}
	doc["grant_types_supported"] = []string{"authorization_code", "refresh_token"}
	doc["acr_values_supported"] = []string{ACRPwdOnly, ACRMFA}
	doc["code_challenge_methods_supported"] = []string{"S256"}
	doc["prompt_values_supported"] = []string{"none", "login"}
	delete(doc, "device_authorization_endpoint")
	delete(doc, "request_object_signing_alg_values_supported")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_ = json.NewEncoder(w).Encode(doc)
}

// Kick asks the sweeper to look for ended sessions now (signin calls it
// when sessions end). It never blocks.
func (p *Provider) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run sends back-channel logouts until ctx ends: at each kick and every
// Sweep.
func (p *Provider) Run(ctx context.Context) {
	t := time.NewTicker(p.sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
			if _, err := p.store.DeleteExpiredOIDCAuthRequests(ctx, p.now()); err != nil {
				p.log.WarnContext(ctx, "oidc: housekeeping", "err", err)
			}
		}
		p.SweepLogouts(ctx)
	}
}
