package web_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/oidc"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/sso"
	"github.com/deadbolt/deadbolt/internal/web"
)

// The OpenID Connect provider is driven here by clients that were not
// written with it: coreos/go-oidc and golang.org/x/oauth2, as a relying
// party would use them. The browser part (the sign-in pages) is an HTTP
// client with a cookie jar that stops at the application's redirect URI.

// oidcEnv is a Deadbolt that serves the provider at its own URL (the
// issuer must be the URL clients reach), over the env's database.
type oidcEnv struct {
	*env
	url  string
	prov *oidc.Provider
	svc  *signin.Service
	rp   *relyingParty
	sso  *sso.Service
}

// relyingParty is the application's side: its redirect URI, its
// post-logout URI and its back-channel logout endpoint.
type relyingParty struct {
	url     string
	mu      sync.Mutex
	logouts []string
	got     chan struct{}
}

func (rp *relyingParty) logoutTokens() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return slices.Clone(rp.logouts)
}

func (e *env) withOIDC() *oidcEnv {
	t := e.t
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		handler.ServeHTTP(rec, r)
		if rec.status >= 500 {
			t.Errorf("%s %s answered %d", r.Method, r.URL.Path, rec.status)
		}
	}))
	t.Cleanup(srv.Close)
	var svc *signin.Service
	prov, err := oidc.New(oidc.Options{Store: e.db, Keys: e.keys, PublicURL: srv.URL, Now: e.clock.Now, Logger: quiet,
		SignOut: func(ctx context.Context, p *signin.Principal) error { return svc.SignOut(ctx, p) }, Sweep: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc = signin.New(signin.Options{Store: e.db, Keys: e.keys, Hasher: e.hasher, Now: e.clock.Now, Logger: quiet,
		Notify: e.worker.Kick, SessionsEnded: prov.Kick})
	ssoSvc := sso.New(sso.Options{Store: e.db, Keys: e.keys, PublicURL: srv.URL, Now: e.clock.Now, Logger: quiet})
	handler = web.NewServer(web.Options{DB: e.db, SignIn: svc, Now: e.clock.Now, Logger: quiet, PublicURL: srv.URL, OIDC: prov, SSO: ssoSvc})
	runWorker(t, prov.Run)

	rp := &relyingParty{got: make(chan struct{}, 16)}
	rps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/backchannel" && r.Method == http.MethodPost {
			rp.mu.Lock()
			rp.logouts = append(rp.logouts, r.PostFormValue("logout_token"))
			rp.mu.Unlock()
			rp.got <- struct{}{}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rps.Close)
	rp.url = rps.URL
	return &oidcEnv{env: e, url: srv.URL, prov: prov, svc: svc, rp: rp, sso: ssoSvc}
}

func (o *oidcEnv) issuer(slug string) string { return o.url + "/accounts/" + slug }

// client registers a client of the account for the relying party.
func (o *oidcEnv) client(acc *deadbolt.Account, in oidc.ClientInput) (*deadbolt.OIDCClient, string) {
	o.t.Helper()
	if in.Name == "" {
		in.Name = "Wiki"
	}
	if in.RedirectURIs == nil {
		in.RedirectURIs = []string{o.rp.url + "/callback"}
	}
	if in.Scopes == nil {
		in.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	c, sec, err := o.prov.RegisterClient(context.Background(), acc, "", in)
	if err != nil {
		o.t.Fatalf("register client: %v", err)
	}
	return c, sec
}

// rpClient is what an application configures: go-oidc's provider (from
// discovery) and an oauth2 config.
type rpClient struct {
	provider *gooidc.Provider
	cfg      *oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

func (o *oidcEnv) rpClient(slug string, c *deadbolt.OIDCClient, sec string, scopes ...string) *rpClient {
	o.t.Helper()
	p, err := gooidc.NewProvider(context.Background(), o.issuer(slug))
	if err != nil {
		o.t.Fatalf("discovery of %s: %v", o.issuer(slug), err)
	}
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}
	}
	cfg := &oauth2.Config{ClientID: c.ID, ClientSecret: sec, Endpoint: p.Endpoint(), RedirectURL: o.rp.url + "/callback", Scopes: scopes}
	return &rpClient{provider: p, cfg: cfg, verifier: p.Verifier(&gooidc.Config{ClientID: c.ID})}
}

// browser is a person's browser: cookies, redirects followed, except to
// the application, where it stops so the test reads what it was sent.
type oBrowser struct {
	t    *testing.T
	o    *oidcEnv
	http *http.Client
}

func (o *oidcEnv) browser() *oBrowser {
	jar, _ := cookiejar.New(nil)
	rpHost := strings.TrimPrefix(o.rp.url, "http://")
	return &oBrowser{t: o.t, o: o, http: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == rpHost || len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// visit GETs or POSTs (form not nil) and returns the last response and its
// body.
func (b *oBrowser) visit(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var resp *http.Response
	var err error
	if form == nil {
		resp, err = b.http.Get(u)
	} else {
		resp, err = b.http.PostForm(u, form)
	}
	if err != nil {
		b.t.Fatalf("%s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// atApp returns the query the application was sent, failing unless the
// browser ended at the application's redirect URI.
func (b *oBrowser) atApp(resp *http.Response, body string) url.Values {
	b.t.Helper()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), b.o.rp.url) {
		b.t.Fatalf("browser at %s (%d), not sent to the application: %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	return loc.Query()
}

// signIn goes through the pages from the sign-in form: password, then an
// authenticator code if one is asked (remember: tick the box).
func (b *oBrowser) signIn(slug, email, pw, secretB32 string, remember bool) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.visit(b.o.url+"/accounts/"+slug+"/signin", url.Values{"email": {email}, "password": {pw}})
	if strings.HasSuffix(resp.Request.URL.Path, "/signin/verify") {
		if secretB32 == "" {
			b.t.Fatalf("a second factor was asked of %s: %.300s", email, body)
		}
		// A step of its own: the code of the step before may be used.
		b.o.clock.Advance(30 * time.Second)
		form := url.Values{"method": {"totp"}, "code": {oathtool(b.t, secretB32, b.o.clock.Now())}}
		if remember {
			form.Set("remember", "1")
		}
		resp, body = b.visit(b.o.url+"/accounts/"+slug+"/signin/verify", form)
	}
	return resp, body
}

func randomString() string { return rand.Text() }

// authorize starts an application sign-in; it returns the URL and the PKCE
// verifier, state and nonce it used.
func (c *rpClient) authorize(extra ...oauth2.AuthCodeOption) (u, verifier, state, nonce string) {
	verifier, state, nonce = oauth2.GenerateVerifier(), randomString(), randomString()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)}, extra...)
	return c.cfg.AuthCodeURL(state, opts...), verifier, state, nonce
}

// idClaims are the ID token's claims the tests read.
type idClaims struct {
	Sub           string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Role          string   `json:"role"`
	AuthTime      int64    `json:"auth_time"`
	AMR           []string `json:"amr"`
	ACR           string   `json:"acr"`
	Nonce         string   `json:"nonce"`
	SID           string   `json:"sid"`
}

// exchange trades the code and verifies the ID token against the JWKS.
func (c *rpClient) exchange(t *testing.T, q url.Values, verifier, state, nonce string) (*oauth2.Token, *gooidc.IDToken, idClaims) {
	t.Helper()
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q (%v)", q.Get("state"), state, q)
	}
	if q.Get("error") != "" {
		t.Fatalf("the application was sent error %q: %s", q.Get("error"), q.Get("error_description"))
	}
	tok, err := c.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	var cl idClaims
	if err := idt.Claims(&cl); err != nil {
		t.Fatal(err)
	}
	if cl.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", cl.Nonce, nonce)
	}
	return tok, idt, cl
}

func hasAll(list []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(list, w) {
			return false
		}
	}
	return true
}

func TestOIDCProvider(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		secretB32, _ := e.withTOTP("agent@acme.example", "correct horse battery staple")
		agent, err := e.db.FindUserByEmail(context.Background(), e.acc.ID, "agent@acme.example")
		if err != nil {
			t.Fatal(err)
		}
		c, sec := o.client(e.acc, oidc.ClientInput{BackchannelLogoutURI: o.rp.url + "/backchannel",
			PostLogoutRedirectURIs: []string{o.rp.url + "/signed-out"}})
		rp := o.rpClient("acme", c, sec)

		t.Run("discovery", func(t *testing.T) {
			var doc map[string]any
			resp, err := http.Get(o.issuer("acme") + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
				t.Fatal(err)
			}
			for key, want := range map[string]string{"issuer": o.issuer("acme"), "jwks_uri": o.issuer("acme") + "/oidc/keys",
				"end_session_endpoint": o.issuer("acme") + "/oidc/end_session", "token_endpoint": o.issuer("acme") + "/oidc/token"} {
				if doc[key] != want {
					t.Errorf("discovery %s = %v, want %s", key, doc[key], want)
				}
			}
			if doc["backchannel_logout_supported"] != true {
				t.Errorf("backchannel_logout_supported = %v, want true", doc["backchannel_logout_supported"])
			}
			if rt, _ := json.Marshal(doc["response_types_supported"]); string(rt) != `["code"]` {
				t.Errorf("response_types_supported = %s, want only code (no implicit flow)", rt)
			}
		})

		var first *oauth2.Token
		var firstID idClaims
		var firstRaw string
		var firstCode url.Values
		b := o.browser()
		t.Run("code and PKCE with TOTP", func(t *testing.T) {
			u, verifier, state, nonce := rp.authorize()
			resp, body := b.visit(u, nil)
			if !strings.HasSuffix(resp.Request.URL.Path, "/accounts/acme/signin") {
				t.Fatalf("authorize led to %s, want the sign-in page: %.200s", resp.Request.URL, body)
			}
			q := b.atApp(b.signIn("acme", "agent@acme.example", "correct horse battery staple", secretB32, true))
			first, _, firstID = rp.exchange(t, q, verifier, state, nonce)
			firstCode = q
			firstRaw, _ = first.Extra("id_token").(string)
			if firstID.Sub != agent.ID || firstID.Email != "agent@acme.example" || !firstID.EmailVerified || firstID.Role != "agent" || firstID.Name == "" {
				t.Errorf("ID token claims = %+v, want the agent's", firstID)
			}
			if !hasAll(firstID.AMR, "pwd", "otp", "mfa") || firstID.ACR != "mfa" {
				t.Errorf("amr %v acr %q, want pwd, otp, mfa and mfa", firstID.AMR, firstID.ACR)
			}
			if firstID.SID == "" || firstID.AuthTime == 0 {
				t.Errorf("sid %q auth_time %d, want both", firstID.SID, firstID.AuthTime)
			}
			if first.RefreshToken == "" {
				t.Error("no refresh token for offline_access")
			}
		})

		t.Run("userinfo", func(t *testing.T) {
			info, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(first))
			if err != nil {
				t.Fatal(err)
			}
			var cl idClaims
			_ = info.Claims(&cl)
			if info.Subject != agent.ID || info.Email != "agent@acme.example" || cl.Role != "agent" {
				t.Errorf("userinfo = %+v %+v, want the agent", info, cl)
			}
		})

		t.Run("refresh rotates", func(t *testing.T) {
			old := first.RefreshToken
			next, err := rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Hour)}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if next.RefreshToken == "" || next.RefreshToken == old || next.AccessToken == first.AccessToken {
				t.Fatalf("refresh gave refresh %q access %q: want new ones", next.RefreshToken, next.AccessToken)
			}
			if _, err := rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil ||
				!strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("the used refresh token again = %v, want invalid_grant", err)
			}
			first = next
		})

		t.Run("reused code refused", func(t *testing.T) {
			if _, err := rp.cfg.Exchange(context.Background(), firstCode.Get("code"), oauth2.VerifierOption("x")); err == nil ||
				!strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("second exchange of a code = %v, want invalid_grant", err)
			}
			// A replayed code revokes what it gave, rotated refresh tokens too.
			if _, err := rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: first.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
				t.Error("a token of a replayed code still refreshes")
			}
			if n := e.auditCount(deadbolt.AuditOIDCCodeReplayed, nil); n != 1 {
				t.Errorf("oidc.code_replayed events = %d, want 1", n)
			}
		})

		t.Run("wrong redirect URI refused without redirecting", func(t *testing.T) {
			bad := *rp.cfg
			bad.RedirectURL = "https://evil.example/callback"
			u, _, _, _ := (&rpClient{cfg: &bad}).authorize()
			resp, body := o.browser().visit(u, nil)
			if resp.StatusCode != http.StatusBadRequest || resp.Request.URL.Host == "evil.example" {
				t.Fatalf("authorize with a wrong redirect URI = %d at %s: %.200s, want 400 here", resp.StatusCode, resp.Request.URL, body)
			}
		})

		t.Run("prompt=none without a session", func(t *testing.T) {
			u, _, state, _ := rp.authorize(oauth2.SetAuthURLParam("prompt", "none"))
			q := o.browser().atApp(o.browser().visit(u, nil))
			if q.Get("error") != "login_required" || q.Get("state") != state {
				t.Fatalf("prompt=none answered %v, want error=login_required with the state", q)
			}
		})

		t.Run("prompt=none with a session", func(t *testing.T) {
			u, verifier, state, nonce := rp.authorize(oauth2.SetAuthURLParam("prompt", "none"))
			q := b.atApp(b.visit(u, nil))
			_, _, cl := rp.exchange(t, q, verifier, state, nonce)
			if cl.Sub != agent.ID {
				t.Errorf("sub = %q, want the agent", cl.Sub)
			}
		})

		t.Run("acr_values step-up on a remembered device", func(t *testing.T) {
			// Sign out of Deadbolt, then in again from the remembered
			// device: only the password is asked.
			b.visit(o.url+"/accounts/acme/signout", url.Values{})
			u, verifier, state, nonce := rp.authorize()
			b.visit(u, nil)
			q := b.atApp(b.signIn("acme", "agent@acme.example", "correct horse battery staple", "", false))
			_, _, cl := rp.exchange(t, q, verifier, state, nonce)
			if cl.ACR != "pwd" || slices.Contains(cl.AMR, "mfa") {
				t.Fatalf("remembered device: acr %q amr %v, want pwd only", cl.ACR, cl.AMR)
			}
			// The application asks for a second factor: step-up.
			u, verifier, state, nonce = rp.authorize(oauth2.SetAuthURLParam("acr_values", "mfa"))
			resp, body := b.visit(u, nil)
			if !strings.HasSuffix(resp.Request.URL.Path, "/security/confirm") {
				t.Fatalf("acr_values=mfa led to %s, want the step-up page: %.200s", resp.Request.URL, body)
			}
			o.clock.Advance(30 * time.Second)
			code := oathtool(t, secretB32, o.clock.Now())
			q = b.atApp(b.visit(o.url+"/accounts/acme/security/confirm", url.Values{"method": {"totp"}, "code": {code}, "next": {"security"}}))
			_, _, cl = rp.exchange(t, q, verifier, state, nonce)
			if cl.ACR != "mfa" || !hasAll(cl.AMR, "otp", "mfa") {
				t.Fatalf("after step-up: acr %q amr %v, want mfa", cl.ACR, cl.AMR)
			}
		})

		t.Run("back-channel logout on sign-out", func(t *testing.T) {
			u, verifier, state, nonce := rp.authorize()
			q := b.atApp(b.visit(u, nil))
			tok, _, cl := rp.exchange(t, q, verifier, state, nonce)
			before := len(o.rp.logoutTokens())
			b.visit(o.url+"/accounts/acme/signout", url.Values{})
			deadline := time.After(10 * time.Second)
			for len(o.rp.logoutTokens()) == before {
				select {
				case <-o.rp.got:
				case <-deadline:
					t.Fatal("no logout token within 10 s of the sign-out")
				}
			}
			lv := rp.provider.Verifier(&gooidc.Config{ClientID: c.ID, Now: o.clock.Now})
			found := false
			for _, raw := range o.rp.logoutTokens()[before:] {
				lt, err := lv.Verify(context.Background(), raw)
				if err != nil {
					t.Fatalf("logout token does not verify: %v", err)
				}
				var claims struct {
					SID    string                     `json:"sid"`
					Events map[string]json.RawMessage `json:"events"`
					Nonce  string                     `json:"nonce"`
				}
				_ = lt.Claims(&claims)
				if _, ok := claims.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok || claims.Nonce != "" || lt.Subject != agent.ID {
					t.Errorf("logout token claims = %+v sub %q, want the back-channel event, no nonce, the agent", claims, lt.Subject)
				}
				found = found || claims.SID == cl.SID
			}
			if !found {
				t.Errorf("no logout token named the session's sid %q", cl.SID)
			}
			// The session's tokens died with it.
			if _, err := rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
				t.Error("a refresh token outlived its session")
			}
			if _, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
				t.Error("an access token outlived its session")
			}
			if n := e.auditCount(deadbolt.AuditOIDCLogoutSent, nil); n == 0 {
				t.Error("no oidc.logout_sent audit event")
			}
		})

		t.Run("RP-initiated logout", func(t *testing.T) {
			u, verifier, state, nonce := rp.authorize()
			b.visit(u, nil)
			q := b.atApp(b.signIn("acme", "agent@acme.example", "correct horse battery staple", "", false))
			tok, _, _ := rp.exchange(t, q, verifier, state, nonce)
			raw, _ := tok.Extra("id_token").(string)
			end := o.issuer("acme") + "/oidc/end_session?" + url.Values{"id_token_hint": {raw},
				"post_logout_redirect_uri": {o.rp.url + "/signed-out"}, "state": {"bye"}}.Encode()
			resp, body := b.visit(end, nil)
			loc, err := resp.Location()
			if err != nil || !strings.HasPrefix(loc.String(), o.rp.url+"/signed-out") || loc.Query().Get("state") != "bye" {
				t.Fatalf("end_session = %d %v: %.200s, want the post-logout URI with the state", resp.StatusCode, loc, body)
			}
			resp, _ = b.visit(o.url+"/accounts/acme/security", nil)
			if !strings.HasSuffix(resp.Request.URL.Path, "/signin") {
				t.Errorf("after RP-initiated logout the security page is at %s, want the sign-in page", resp.Request.URL)
			}
			if _, err := rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
				t.Error("a refresh token outlived RP-initiated logout")
			}
			// A logout URI that was not registered is refused, not followed.
			end = o.issuer("acme") + "/oidc/end_session?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode()
			resp, _ = o.browser().visit(end, nil)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("end_session with an unregistered URI = %d, want 400", resp.StatusCode)
			}
		})

		t.Run("key rotation", func(t *testing.T) {
			if _, err := o.prov.RotateKeys(context.Background(), e.acc, oidc.AlgES256); err != nil {
				t.Fatal(err)
			}
			fresh := o.rpClient("acme", c, sec)
			if _, err := fresh.verifier.Verify(context.Background(), firstRaw); err != nil {
				t.Fatalf("an ID token of the old key after rotation: %v", err)
			}
			u, verifier, state, nonce := fresh.authorize()
			b.visit(u, nil)
			q := b.atApp(b.signIn("acme", "agent@acme.example", "correct horse battery staple", "", false))
			tok, _, _ := fresh.exchange(t, q, verifier, state, nonce)
			raw, _ := tok.Extra("id_token").(string)
			if header := jwtHeader(t, raw); header["alg"] != "ES256" {
				t.Errorf("new ID token alg = %v, want ES256", header["alg"])
			}
			// Once the old key's tokens have expired it is no longer published.
			o.clock.Advance(time.Hour)
			later := o.rpClient("acme", c, sec)
			if _, err := later.verifier.Verify(context.Background(), firstRaw); err == nil {
				t.Error("the retired key still verifies an hour later")
			}
			// Applications read the algorithms at discovery: the ones made
			// before ES256 was published expect RS256 only.
			rp = later
		})

		t.Run("cross-tenant", func(t *testing.T) {
			h, _ := e.hasher.Hash("beta owner passphrase long")
			beta := &deadbolt.Account{Slug: "beta", Name: "Beta", Policy: deadbolt.DefaultPolicy()}
			if err := e.db.CreateAccount(context.Background(), beta, &deadbolt.User{Email: "owner@beta.example", Name: "B",
				Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword, PasswordHash: h}); err != nil {
				t.Fatal(err)
			}
			// A live token set of acme's, to try at beta.
			ba := o.browser()
			u0, verifier, state, nonce := rp.authorize()
			ba.visit(u0, nil)
			q := ba.atApp(ba.signIn("acme", "agent@acme.example", "correct horse battery staple", secretB32, false))
			live, _, _ := rp.exchange(t, q, verifier, state, nonce)
			if _, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(live)); err != nil {
				t.Fatalf("acme's own userinfo: %v", err)
			}
			bc, bsec := o.client(beta, oidc.ClientInput{})
			brp := o.rpClient("beta", bc, bsec)
			// acme's client at beta's issuer: unknown, no redirect.
			cross := *rp.cfg
			cross.Endpoint = brp.cfg.Endpoint
			u, _, _, _ := (&rpClient{cfg: &cross}).authorize()
			if resp, _ := o.browser().visit(u, nil); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("acme's client at beta's authorize = %d, want 400", resp.StatusCode)
			}
			// acme's ID token is no beta token.
			if _, err := brp.verifier.Verify(context.Background(), firstRaw); err == nil {
				t.Error("beta's issuer verified acme's ID token")
			}
			// acme's access token at beta's userinfo.
			if _, err := brp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(live)); err == nil {
				t.Error("beta's userinfo answered acme's access token")
			}
			// acme's refresh token with beta's client.
			if _, err := brp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: live.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
				t.Error("beta's token endpoint refreshed acme's token")
			}
			// beta's client cannot sign an acme user in at beta.
			u, _, _, _ = brp.authorize()
			b2 := o.browser()
			b2.visit(u, nil)
			resp, body := b2.visit(o.url+"/accounts/beta/signin", url.Values{"email": {"agent@acme.example"}, "password": {"correct horse battery staple"}})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not right") {
				t.Errorf("an acme user at beta's sign-in = %d, want the generic refusal", resp.StatusCode)
			}
		})

		t.Run("public client needs PKCE", func(t *testing.T) {
			pc, _ := o.client(e.acc, oidc.ClientInput{Public: true, Name: "SPA"})
			prp := o.rpClient("acme", pc, "")
			// Without PKCE: an error at the redirect URI.
			q := o.browser().atApp(o.browser().visit(prp.cfg.AuthCodeURL("s1"), nil))
			if q.Get("error") != "invalid_request" {
				t.Errorf("public client without PKCE = %v, want invalid_request", q)
			}
			bp := o.browser()
			u, verifier, state, nonce := prp.authorize()
			bp.visit(u, nil)
			q = bp.atApp(bp.signIn("acme", "agent@acme.example", "correct horse battery staple", secretB32, false))
			if _, _, cl := prp.exchange(t, q, verifier, state, nonce); cl.Sub != agent.ID {
				t.Errorf("public client sub = %q", cl.Sub)
			}
		})

		t.Run("introspection and revocation", func(t *testing.T) {
			bi := o.browser()
			u, verifier, state, nonce := rp.authorize()
			bi.visit(u, nil)
			q := bi.atApp(bi.signIn("acme", "agent@acme.example", "correct horse battery staple", secretB32, false))
			tok, _, _ := rp.exchange(t, q, verifier, state, nonce)
			introspect := func(id, secret, token string) map[string]any {
				req, _ := http.NewRequest("POST", o.issuer("acme")+"/oidc/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, secret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var out map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&out)
				return out
			}
			if got := introspect(c.ID, sec, tok.AccessToken); got["active"] != true || got["sub"] != agent.ID {
				t.Errorf("introspection = %v, want active for the agent", got)
			}
			other, osec := o.client(e.acc, oidc.ClientInput{Name: "Other"})
			if got := introspect(other.ID, osec, tok.AccessToken); got["active"] == true {
				t.Errorf("another client's introspection = %v, want inactive", got)
			}
			revoke := url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}
			req, _ := http.NewRequest("POST", o.issuer("acme")+"/oidc/revoke", strings.NewReader(revoke.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(c.ID, sec)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("revoke = %v %v", resp, err)
			}
			resp.Body.Close()
			if _, err := rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
				t.Error("a revoked refresh token still refreshes")
			}
		})

		t.Run("wrong client secrets are limited", func(t *testing.T) {
			lc, lsec := o.client(e.acc, oidc.ClientInput{Name: "Guessed"})
			try := func(secret string) int {
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"dbr_x"}}
				req, _ := http.NewRequest("POST", o.issuer("acme")+"/oidc/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(lc.ID, secret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var out map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&out)
				if out["error"] == "invalid_client" {
					return 401
				}
				return resp.StatusCode
			}
			var wg sync.WaitGroup
			for range 30 {
				wg.Add(1)
				go func() { defer wg.Done(); try("dbcs_wrong") }()
			}
			wg.Wait()
			// Past the free attempts the right secret waits too.
			if got := try(lsec); got != 401 {
				t.Errorf("the right secret after 30 wrong ones = %d, want refused while the pause runs", got)
			}
			o.clock.Advance(time.Hour)
			if got := try(lsec); got == 401 {
				t.Errorf("the right secret after the pause = %d, want past client authentication", got)
			}
		})
	})
}

// jwtHeader decodes a JWT's header.
func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}
