// Package sso signs people in through their account's own identity
// providers: OpenID Connect (Google Workspace, Microsoft Entra ID, Okta...,
// with coreos/go-oidc) and SAML 2.0. It speaks the protocols and checks
// the answers; who the person is at Deadbolt, and what they still owe, is
// signin.Service.SSOSignIn's to decide.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
)

// Store is what the service keeps: providers, states, assertions, and the
// audit log.
type Store interface {
	deadbolt.SSOStore
	RecordEvent(ctx context.Context, e *deadbolt.AuditEvent) error
}

// Options configure the service.
type Options struct {
	Store Store
	Keys  *secret.Keyring
	// PublicURL is Deadbolt's URL as browsers and identity providers reach
	// it; the redirect URI and SAML endpoints are under it.
	PublicURL string
	// HTTPClient talks to identity providers (discovery, keys, tokens,
	// metadata); a client with a 10-second timeout when nil.
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
}

// Service is the SSO side of Deadbolt.
type Service struct {
	store  Store
	keys   *secret.Keyring
	public string
	http   *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu    sync.Mutex
	cache map[string]*cached // by account and provider id
}

// New returns the service.
func New(opts Options) *Service {
	s := &Service{store: opts.Store, keys: opts.Keys, public: strings.TrimSuffix(opts.PublicURL, "/"), http: opts.HTTPClient,
		now: opts.Now, log: opts.Logger, cache: map[string]*cached{}}
	if s.http == nil {
		s.http = &http.Client{Timeout: 10 * time.Second, CheckRedirect: checkRedirect}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s
}

// checkRedirect holds redirects to what an admin could not have entered:
// the URLs Deadbolt fetches (discovery, keys, metadata) stay https, or
// http on loopback, however the server answers.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("sso: too many redirects")
	}
	u := req.URL
	h := u.Hostname()
	if u.Scheme == "https" || (u.Scheme == "http" && (h == "localhost" || h == "127.0.0.1" || h == "::1")) {
		return nil
	}
	return fmt.Errorf("sso: redirect to %s://%s refused: https only", u.Scheme, u.Host)
}

// cached is what was learned of a provider (its discovery document and
// keys, or its SAML metadata), for as long as the provider is unchanged.
type cached struct {
	updated time.Time
	fetched time.Time
	oidc    *oidcProvider
	saml    *samlProvider
}

// cacheFor is how long a provider's discovery or metadata is trusted
// before it is fetched again (keys rotate; go-oidc fetches unknown key
// ids itself meanwhile).
const cacheFor = time.Hour

func (s *Service) cached(p *deadbolt.SSOProvider) *cached {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cache[p.AccountID+"/"+p.ID]
	if c == nil || !c.updated.Equal(p.UpdatedAt) || s.now().Sub(c.fetched) > cacheFor {
		return nil
	}
	return c
}

func (s *Service) remember(p *deadbolt.SSOProvider, c *cached) {
	c.updated, c.fetched = p.UpdatedAt, s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache[p.AccountID+"/"+p.ID] = c
}

func (s *Service) forget(p *deadbolt.SSOProvider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, p.AccountID+"/"+p.ID)
}

// Paths under the account, for the routes and the providers' settings.
func (s *Service) accountURL(acc *deadbolt.Account) string { return s.public + "/accounts/" + acc.Slug }

// CallbackURL is the redirect URI to register at an OpenID Connect provider.
func (s *Service) CallbackURL(acc *deadbolt.Account, p *deadbolt.SSOProvider) string {
	return s.accountURL(acc) + "/sso/" + p.ID + "/callback"
}

// ACSURL is the SAML assertion consumer service of a provider.
func (s *Service) ACSURL(acc *deadbolt.Account, p *deadbolt.SSOProvider) string {
	return s.accountURL(acc) + "/sso/" + p.ID + "/acs"
}

// MetadataURL is where the SAML SP metadata of a provider is published;
// it is also the SP's entity id.
func (s *Service) MetadataURL(acc *deadbolt.Account, p *deadbolt.SSOProvider) string {
	return s.accountURL(acc) + "/sso/" + p.ID + "/metadata"
}

// View is a provider as admins see it (the API, the CLI): never its
// secrets, and the values to enter at the identity provider's side.
func (s *Service) View(acc *deadbolt.Account, p *deadbolt.SSOProvider) map[string]any {
	domains := p.Domains
	if domains == nil {
		domains = []string{}
	}
	out := map[string]any{"id": p.ID, "kind": p.Kind, "name": p.Name, "domains": domains, "jit": p.JIT, "default_role": p.DefaultRole,
		"trust_mfa": p.TrustMFA, "sign_in_url": s.accountURL(acc) + "/sso/" + p.ID,
		"created_at": p.CreatedAt.UTC().Format(time.RFC3339), "updated_at": p.UpdatedAt.UTC().Format(time.RFC3339)}
	switch p.Kind {
	case deadbolt.SSOOIDC:
		out["issuer"], out["client_id"], out["client_secret_set"] = p.Issuer, p.ClientID, p.ClientSecret != ""
		out["redirect_uri"] = s.CallbackURL(acc, p)
	case deadbolt.SSOSAML:
		out["metadata_url"] = p.MetadataURL
		out["sp_entity_id"], out["sp_metadata_url"] = s.MetadataURL(acc, p), s.MetadataURL(acc, p)
		out["acs_url"] = s.ACSURL(acc, p)
	}
	return out
}

// --- Administration ---

// Input is what an admin gives to add or change a provider. An empty
// ClientSecret on an update keeps the stored one.
type Input struct {
	Kind         deadbolt.SSOKind
	Name         string
	Domains      []string
	JIT          bool
	DefaultRole  deadbolt.Role
	TrustMFA     bool
	Issuer       string
	ClientID     string
	ClientSecret string
	MetadataURL  string
	MetadataXML  string
}

// Providers lists the account's providers.
func (s *Service) Providers(ctx context.Context, acc *deadbolt.Account) ([]*deadbolt.SSOProvider, error) {
	return s.store.FindSSOProviders(ctx, acc.ID)
}

// Provider returns one of the account's providers.
func (s *Service) Provider(ctx context.Context, acc *deadbolt.Account, id string) (*deadbolt.SSOProvider, error) {
	if len(id) > 64 {
		return nil, deadbolt.Errorf(deadbolt.ENotFound, "Identity provider not found.")
	}
	return s.store.FindSSOProvider(ctx, acc.ID, id)
}

// ForEmail returns the provider whose domains include the email's, or nil.
func (s *Service) ForEmail(ctx context.Context, acc *deadbolt.Account, email string) (*deadbolt.SSOProvider, error) {
	provs, err := s.store.FindSSOProviders(ctx, acc.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range provs {
		if p.HasDomain(email) {
			return p, nil
		}
	}
	return nil, nil
}

// Create adds a provider. Its settings are checked by fetching what they
// name (the discovery document, or the SAML metadata): an admin learns of
// a wrong issuer now, not at the first sign-in.
func (s *Service) Create(ctx context.Context, acc *deadbolt.Account, actorID string, in Input) (*deadbolt.SSOProvider, error) {
	p := &deadbolt.SSOProvider{AccountID: acc.ID, ID: "idp_" + strings.ToLower(rand.Text()), Kind: in.Kind}
	if err := s.apply(ctx, acc, p, in); err != nil {
		return nil, err
	}
	now := s.now()
	p.CreatedAt, p.UpdatedAt = now, now
	if p.Kind == deadbolt.SSOSAML {
		if err := newSPKey(p, now); err != nil {
			return nil, err
		}
	}
	if err := s.store.CreateSSOProvider(ctx, p); err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSSOProviderCreated, ActorID: actorID,
		Details: map[string]string{"provider_id": p.ID, "kind": string(p.Kind), "name": p.Name, "domains": strings.Join(p.Domains, " "),
			"jit": boolText(p.JIT), "trust_mfa": boolText(p.TrustMFA)}})
	return p, nil
}

// Update changes a provider's settings (not its kind).
func (s *Service) Update(ctx context.Context, acc *deadbolt.Account, actorID, id string, in Input) (*deadbolt.SSOProvider, error) {
	old, err := s.Provider(ctx, acc, id)
	if err != nil {
		return nil, err
	}
	if in.Kind != "" && in.Kind != old.Kind {
		return nil, deadbolt.Invalid("kind", "A provider's kind cannot change: add a new provider instead.")
	}
	p := *old
	if in.ClientSecret == "" {
		in.ClientSecret = old.ClientSecret
	}
	if err := s.apply(ctx, acc, &p, in); err != nil {
		return nil, err
	}
	if err := s.store.UpdateSSOProvider(ctx, &p); err != nil {
		return nil, err
	}
	s.forget(&p)
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSSOProviderUpdated, ActorID: actorID,
		Details: map[string]string{"provider_id": p.ID, "name": p.Name, "domains": strings.Join(p.Domains, " "),
			"jit": boolText(p.JIT), "trust_mfa": boolText(p.TrustMFA), "secret_changed": boolText(p.ClientSecret != old.ClientSecret)}})
	return &p, nil
}

// apply validates the input onto p and checks it against the provider.
func (s *Service) apply(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider, in Input) error {
	p.Name, p.Domains, p.JIT, p.DefaultRole, p.TrustMFA = in.Name, in.Domains, in.JIT, in.DefaultRole, in.TrustMFA
	p.Issuer, p.ClientID, p.ClientSecret = in.Issuer, in.ClientID, in.ClientSecret
	p.MetadataURL, p.MetadataXML = in.MetadataURL, in.MetadataXML
	if err := p.Validate(); err != nil {
		return err
	}
	switch p.Kind {
	case deadbolt.SSOOIDC:
		if _, err := s.discover(ctx, p); err != nil {
			return err
		}
	case deadbolt.SSOSAML:
		xml, err := s.fetchMetadata(ctx, p)
		if err != nil {
			return err
		}
		p.MetadataXML = xml
	}
	return nil
}

// Delete removes a provider. Sessions it made go on until they end.
func (s *Service) Delete(ctx context.Context, acc *deadbolt.Account, actorID, id string) error {
	p, err := s.Provider(ctx, acc, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSSOProvider(ctx, acc.ID, p.ID); err != nil {
		return err
	}
	s.forget(p)
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSSOProviderDeleted, ActorID: actorID,
		Details: map[string]string{"provider_id": p.ID, "name": p.Name}})
	return nil
}

// --- Sign-in ---

// Begin starts a sign-in at the provider: it returns where to send the
// browser, and a secret for the browser to keep (a cookie) and bring back
// with the answer, which binds the answer to this browser.
func (s *Service) Begin(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider, loginHint string) (to, browser string, err error) {
	if len(loginHint) > 320 {
		loginHint = ""
	}
	browser = rand.Text() + rand.Text()
	now := s.now()
	st := &deadbolt.SSOState{AccountID: acc.ID, ID: rand.Text() + rand.Text(), ProviderID: p.ID, BrowserHash: s.keys.Hash(browser),
		CreatedAt: now, ExpiresAt: now.Add(deadbolt.SSOStateTTL)}
	switch p.Kind {
	case deadbolt.SSOOIDC:
		to, err = s.beginOIDC(ctx, acc, p, st, loginHint)
	case deadbolt.SSOSAML:
		to, err = s.beginSAML(ctx, acc, p, st, loginHint)
	}
	if err != nil {
		return "", "", err
	}
	return to, browser, nil
}

// state consumes the sign-in the answer names and checks that it came back
// to the browser that left, for the provider it left for.
func (s *Service) state(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider, id, browser string) (*deadbolt.SSOState, error) {
	if id == "" || len(id) > 128 {
		return nil, s.refuse(ctx, acc, p, "no_state", "This answer from %s belongs to no sign-in here. Start again.", p.Name)
	}
	st, err := s.store.ConsumeSSOState(ctx, acc.ID, id, s.now())
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, s.refuse(ctx, acc, p, "unknown_state", "This sign-in with %s has expired or was finished already. Start again.", p.Name)
	} else if err != nil {
		return nil, err
	}
	if st.ProviderID != p.ID {
		return nil, s.refuse(ctx, acc, p, "wrong_provider", "This answer is not %s's. Start again.", p.Name)
	}
	if browser == "" || subtle.ConstantTimeCompare(st.BrowserHash, s.keys.Hash(browser)) != 1 {
		return nil, s.refuse(ctx, acc, p, "other_browser",
			"This sign-in with %s was started in another browser (or its cookie was lost). Start again here.", p.Name)
	}
	return st, nil
}

// refuse audits a refused answer of a provider and returns the error the
// person sees. The cause is for the audit log; the message says what to
// do without the protocol's details.
func (s *Service) refuse(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider, cause, format string, args ...any) error {
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed,
		Details: map[string]string{"step": "sso", "provider_id": p.ID, "cause": cause}})
	return deadbolt.Errorf(deadbolt.ESSORefused, format, args...)
}

func (s *Service) audit(ctx context.Context, e deadbolt.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	c := signin.ClientOf(ctx)
	if e.IP == "" {
		e.IP = c.IP
	}
	if e.UserAgent == "" && len(c.UserAgent) <= 256 {
		e.UserAgent = c.UserAgent
	}
	if err := s.store.RecordEvent(ctx, &e); err != nil {
		s.log.ErrorContext(ctx, "sso: audit event not recorded", "type", e.Type, "err", err)
	}
}

// Housekeep removes dead states and assertion records.
func (s *Service) Housekeep(ctx context.Context) {
	if _, err := s.store.DeleteExpiredSSO(ctx, s.now()); err != nil {
		s.log.WarnContext(ctx, "sso: housekeeping", "err", err)
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
