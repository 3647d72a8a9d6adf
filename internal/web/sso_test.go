package web_test

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/oidc"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/sso"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

// SSO through an OpenID Connect identity provider that was not written
// here: zitadel/oidc's example server (its op package, storage and login
// page), started on loopback, with people of its own.

// idpUsers is the example server's user store: people by id and username.
type idpUsers map[string]*storage.User

func (u idpUsers) GetUserByID(id string) *storage.User { return u[id] }
func (u idpUsers) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u idpUsers) ExampleClientID() string { return "" }

type upstreamIdP struct {
	url string
}

const idpPassword = "verysecure"

// newUpstreamIdP starts the example server with people of these emails
// (their username is their email; their password idpPassword).
func newUpstreamIdP(t *testing.T, emails ...string) *upstreamIdP {
	t.Helper()
	users := idpUsers{}
	for i, e := range emails {
		users["u"+string(rune('a'+i))] = &storage.User{ID: "u" + string(rune('a'+i)), Username: e, Password: idpPassword,
			FirstName: "Person", LastName: string(rune('A' + i)), Email: e, EmailVerified: true, PreferredLanguage: language.English}
	}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	h = exampleop.SetupServer(srv.URL, storage.NewStorage(users), nil, false)
	return &upstreamIdP{url: srv.URL}
}

// register tells the IdP of Deadbolt's client for the provider p.
func (idp *upstreamIdP) register(clientID, secret, redirectURI string) {
	storage.RegisterClients(storage.WebClient(clientID, secret, redirectURI))
}

// ssoEnv is a Deadbolt on a clock near the real one (the IdP's tokens
// carry real times), with an OpenID Connect provider configured.
func ssoEnv(t *testing.T, db dbOpener) (*oidcEnv, *upstreamIdP, *deadbolt.SSOProvider) {
	keys, _ := secret.Generate()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	e := newEnvClock(t, db.OpenAt(t, keys, clk.Now), keys, "", clk)
	o := e.withOIDC()
	idp := newUpstreamIdP(t, "jit@acme.example", "sso@acme.example", "agent@acme.example", "owner@acme.example",
		"stranger@elsewhere.example", "mfa@acme.example")
	clientID := "deadbolt-" + strings.ToLower(randomString())
	p, err := o.sso.Create(context.Background(), e.acc, e.owner.ID, sso.Input{Kind: deadbolt.SSOOIDC, Name: "Acme Login",
		Domains: []string{"acme.example"}, JIT: true, DefaultRole: deadbolt.RoleAgent, Issuer: idp.url, ClientID: clientID,
		ClientSecret: "the client secret"})
	if err != nil {
		t.Fatalf("create the provider: %v", err)
	}
	idp.register(clientID, "the client secret", o.sso.CallbackURL(e.acc, p))
	return o, idp, p
}

// ssoSignIn goes from Deadbolt's "Sign in with" link through the IdP's
// login page as the person, and returns where the browser ended.
func (b *oBrowser) ssoSignIn(idp *upstreamIdP, start, username string) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.visit(start, nil)
	if !strings.HasPrefix(resp.Request.URL.String(), idp.url+"/login/username") {
		b.t.Fatalf("%s led to %s (%d), want the IdP's login page: %.300s", start, resp.Request.URL, resp.StatusCode, body)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	return b.visit(idp.url+"/login/username", url.Values{"username": {username}, "password": {idpPassword}, "id": {id}})
}

// dbOpener is one of storetest.Databases.
type dbOpener = struct {
	Name   string
	Open   func(testing.TB, store.Sealer) *store.DB
	OpenAt func(testing.TB, store.Sealer, func() time.Time) *store.DB
}

// eachDBNow runs fn on each database in turn, not in parallel: the example
// IdP keeps its clients in a package-level map, unguarded.
func eachDBNow(t *testing.T, fn func(t *testing.T, db dbOpener)) {
	for _, db := range storetest.Databases {
		t.Run(db.Name, func(t *testing.T) { fn(t, db) })
	}
}

func TestSSOOpenIDConnect(t *testing.T) {
	eachDBNow(t, func(t *testing.T, db dbOpener) {
		o, idp, p := ssoEnv(t, db)
		e := o.api()
		ctx := context.Background()
		start := o.url + "/accounts/acme/sso/" + p.ID
		signedIn := func(t *testing.T, resp *http.Response, body string) {
			t.Helper()
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/accounts/acme/security" {
				t.Fatalf("after SSO the browser is at %d %s, want the security page signed in: %.300s", resp.StatusCode, resp.Request.URL, body)
			}
		}
		refused := func(t *testing.T, resp *http.Response, body, want string) {
			t.Helper()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, want) {
				t.Fatalf("SSO = %d at %s: %.400s, want 403 saying %q", resp.StatusCode, resp.Request.URL, body, want)
			}
		}

		t.Run("the sign-in page offers the provider", func(t *testing.T) {
			_, body := o.browser().visit(o.url+"/accounts/acme/signin", nil)
			if !strings.Contains(body, `href="/accounts/acme/sso/`+p.ID+`"`) || !strings.Contains(body, "Sign in with Acme Login") {
				t.Errorf("sign-in page has no Sign in with Acme Login: %.600s", body)
			}
		})

		t.Run("JIT creates the user", func(t *testing.T) {
			resp, body := o.browser().ssoSignIn(idp, start, "jit@acme.example")
			signedIn(t, resp, body)
			u, err := e.db.FindUserByEmail(ctx, e.acc.ID, "jit@acme.example")
			if err != nil || u.AuthSource != deadbolt.AuthSSO || u.Role != deadbolt.RoleAgent || u.Name != "Person A" {
				t.Fatalf("JIT user = %+v, %v; want an SSO agent named by the IdP", u, err)
			}
			if n := e.auditCount(deadbolt.AuditUserCreated, map[string]string{"via": "sso_jit"}); n != 1 {
				t.Errorf("user.created via sso_jit events = %d, want 1", n)
			}
		})

		t.Run("an existing SSO user", func(t *testing.T) {
			e.ssoUser("sso@acme.example", deadbolt.RoleAdmin)
			b := o.browser()
			resp, body := b.ssoSignIn(idp, start, "sso@acme.example")
			signedIn(t, resp, body)
			if _, body := b.visit(o.url+"/accounts/acme/admin", nil); !strings.Contains(body, "Admin") {
				t.Errorf("the SSO admin's session does not reach the admin center: %.300s", body)
			}
		})

		t.Run("a password user is refused", func(t *testing.T) {
			e.user("agent@acme.example", deadbolt.RoleAgent, "the agent's own passphrase")
			resp, body := o.browser().ssoSignIn(idp, start, "agent@acme.example")
			refused(t, resp, body, "signs in with a password here")
		})

		t.Run("another domain is refused", func(t *testing.T) {
			resp, body := o.browser().ssoSignIn(idp, start, "stranger@elsewhere.example")
			refused(t, resp, body, "it is for acme.example")
		})

		t.Run("an answer used twice, or in another browser", func(t *testing.T) {
			b := o.browser()
			b.http.CheckRedirect = func(req *http.Request, via []*http.Request) error {
				if strings.Contains(req.URL.Path, "/sso/"+p.ID+"/callback") {
					return http.ErrUseLastResponse
				}
				return nil
			}
			resp, _ := b.ssoSignIn(idp, start, "jit@acme.example")
			callback, err := resp.Location()
			if err != nil {
				t.Fatalf("no redirect to Deadbolt's callback: %d", resp.StatusCode)
			}
			// Another browser, with the code and state but not the cookie.
			resp, body := o.browser().visit(callback.String(), nil)
			refused(t, resp, body, "started in another browser")
			// The state was spent by that try: the right browser is refused too.
			resp, body = b.visit(callback.String(), nil)
			refused(t, resp, body, "expired or was finished")
			if n := e.auditCount(deadbolt.AuditSignInFailed, map[string]string{"cause": "other_browser"}); n != 1 {
				t.Errorf("signin.failed other_browser events = %d, want 1", n)
			}
		})

		t.Run("home-realm discovery", func(t *testing.T) {
			b := o.browser()
			resp, body := b.visit(o.url+"/accounts/acme/sso", url.Values{"email": {"jit@acme.example"}})
			// A page that moves on by itself (meta refresh) to the provider.
			next := between(body, `id="continue" href="`, `"`)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh"`) || next == "" {
				t.Fatalf("discovery of jit@acme.example = %d: %.300s, want the page that goes on to the provider", resp.StatusCode, body)
			}
			resp, body = b.visit(o.url+html.UnescapeString(next), nil)
			if !strings.HasPrefix(resp.Request.URL.String(), idp.url+"/login/username") {
				t.Fatalf("discovery of jit@acme.example led to %s: %.200s", resp.Request.URL, body)
			}
			resp, body = b.visit(o.url+"/accounts/acme/sso", url.Values{"email": {"someone@nowhere.example"}})
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "No identity provider") {
				t.Errorf("discovery of an unmapped domain = %d: %.300s", resp.StatusCode, body)
			}
			// A wrong password at a mapped domain names the provider, for
			// every email of the domain alike.
			for _, email := range []string{"sso@acme.example", "nobody@acme.example"} {
				_, body := o.browser().visit(o.url+"/accounts/acme/signin", url.Values{"email": {email}, "password": {"whatever it is"}})
				if !strings.Contains(body, "People at acme.example sign in with Acme Login.") {
					t.Errorf("password sign-in of %s does not name the provider: %.400s", email, body)
				}
			}
		})

		t.Run("JIT off refuses an unknown user", func(t *testing.T) {
			if _, err := o.sso.Update(ctx, e.acc, e.owner.ID, p.ID, sso.Input{Name: p.Name, Domains: p.Domains, JIT: false,
				DefaultRole: deadbolt.RoleAgent, Issuer: p.Issuer, ClientID: p.ClientID}); err != nil {
				t.Fatal(err)
			}
			resp, body := o.browser().ssoSignIn(idp, start, "mfa@acme.example")
			refused(t, resp, body, "No one at")
			if _, err := e.db.FindUserByEmail(ctx, e.acc.ID, "mfa@acme.example"); !deadbolt.IsCode(err, deadbolt.ENotFound) {
				t.Errorf("a user was made with JIT off: %v", err)
			}
		})

		t.Run("require_2fa_sso_users asks for TOTP after SSO", func(t *testing.T) {
			e.setPolicy(func(p *deadbolt.Policy) { p.Require2FASSOUsers = true })
			secretB32 := e.withTOTPFor("sso@acme.example")
			b := o.browser()
			resp, body := b.ssoSignIn(idp, start, "sso@acme.example")
			if resp.Request.URL.Path != "/accounts/acme/signin/verify" {
				t.Fatalf("SSO with require_2fa_sso_users led to %s, want the code: %.300s", resp.Request.URL, body)
			}
			o.clock.Advance(30 * time.Second)
			resp, body = b.visit(o.url+"/accounts/acme/signin/verify", url.Values{"method": {"totp"}, "code": {oathtool(t, secretB32, o.clock.Now())}})
			signedIn(t, resp, body)
			// The JIT user has no factor: set-up first, then in.
			b = o.browser()
			resp, body = b.ssoSignIn(idp, start, "jit@acme.example")
			if resp.Request.URL.Path != "/accounts/acme/security/setup" {
				t.Fatalf("an SSO user without a factor under require_2fa_sso_users is at %s: %.200s", resp.Request.URL, body)
			}
			resp, body = b.visit(o.url+"/accounts/acme/security/setup", url.Values{"kind": {"totp"}})
			jitSecret := strings.ReplaceAll(between(body, `id="secret">`, "<"), " ", "")
			factor := between(body, `name="factor" value="`, `"`)
			if resp.StatusCode != 200 || jitSecret == "" || factor == "" {
				t.Fatalf("an SSO user's set-up = %d: %.300s", resp.StatusCode, body)
			}
			o.clock.Advance(30 * time.Second)
			_, body = b.visit(o.url+"/accounts/acme/security/setup/confirm", url.Values{"factor": {factor}, "code": {oathtool(t, jitSecret, o.clock.Now())}})
			if !strings.Contains(body, "Save your recovery codes") {
				t.Fatalf("no recovery codes after an SSO user's set-up: %.300s", body)
			}
			if resp, _ = b.visit(o.url+"/accounts/acme/security", nil); resp.Request.URL.Path != "/accounts/acme/security" {
				t.Errorf("after set-up the SSO user is at %s, want signed in", resp.Request.URL)
			}
			if n := e.auditCount(deadbolt.AuditSignInSucceeded, map[string]string{"provider_id": p.ID, "enrolled": "true"}); n != 1 {
				t.Errorf("signin.succeeded after SSO and set-up naming the provider = %d, want 1", n)
			}
			e.setPolicy(func(p *deadbolt.Policy) { p.Require2FASSOUsers = false })
		})

		t.Run("applications see amr fed", func(t *testing.T) {
			c, sec := o.client(e.acc, oidc.ClientInput{})
			rp := o.rpClient("acme", c, sec)
			b := o.browser()
			u, verifier, state, nonce := rp.authorize()
			b.visit(u, nil)
			q := b.atApp(b.ssoSignIn(idp, start, "jit@acme.example"))
			_, _, cl := rp.exchange(t, q, verifier, state, nonce)
			if !slices.Contains(cl.AMR, "fed") || slices.Contains(cl.AMR, "pwd") || cl.ACR != "pwd" || cl.Email != "jit@acme.example" {
				t.Errorf("an application's ID token after SSO: amr %v acr %q email %q, want fed without pwd", cl.AMR, cl.ACR, cl.Email)
			}
		})

		t.Run("require_sso_team_members", func(t *testing.T) {
			e.setPolicy(func(p *deadbolt.Policy) { p.RequireSSOTeamMembers = true })
			resp, body := o.browser().visit(o.url+"/accounts/acme/signin", url.Values{"email": {"agent@acme.example"}, "password": {"the agent's own passphrase"}})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "use Sign in with Acme Login") {
				t.Errorf("a password agent under require_sso_team_members = %d: %.300s, want the SSO refusal", resp.StatusCode, body)
			}
			// Password access to the API is no way around it.
			e.setPolicy(func(p *deadbolt.Policy) { p.PasswordAPIAccess = true })
			e.user("admin2@acme.example", deadbolt.RoleAdmin, "the second admin's passphrase")
			if r := e.basic("GET", "/api/v1/accounts/acme/users", "admin2@acme.example", "the second admin's passphrase", nil); r.status != 403 || r.errCode() != "sso_required" {
				t.Errorf("an admin's password over HTTP Basic under require_sso_team_members = %d %s, want sso_required", r.status, r.raw)
			}
			// The owner keeps the password: break-glass.
			if resp, _ := o.browser().visit(o.url+"/accounts/acme/signin", url.Values{"email": {e.owner.Email}, "password": {ownerPassword}}); resp.StatusCode != http.StatusOK {
				t.Errorf("the owner's password sign-in under require_sso_team_members = %d, want it to work", resp.StatusCode)
			}
			// The agent signs in with SSO and is moved to it.
			resp, body = o.browser().ssoSignIn(idp, start, "agent@acme.example")
			signedIn(t, resp, body)
			u, _ := e.db.FindUserByEmail(ctx, e.acc.ID, "agent@acme.example")
			if u.AuthSource != deadbolt.AuthSSO || u.PasswordHash != "" {
				t.Errorf("the agent after SSO: auth_source %s, password kept %v; want sso without a password", u.AuthSource, u.PasswordHash != "")
			}
			e.setPolicy(func(p *deadbolt.Policy) { p.RequireSSOTeamMembers = false })
		})
	})
}

// TestSSOProviderSettings: what an admin gives is checked against the
// provider before it is kept.
func TestSSOProviderSettings(t *testing.T) {
	o, idp, _ := ssoEnv(t, storetest.Databases[0])
	ctx := context.Background()
	notAnIdP := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notAnIdP.Close)
	tests := []struct {
		name  string
		in    sso.Input
		field string
	}{
		{"no discovery document", sso.Input{Kind: deadbolt.SSOOIDC, Name: "X", Issuer: notAnIdP.URL, ClientID: "x"}, "issuer"},
		{"another issuer in the document", sso.Input{Kind: deadbolt.SSOOIDC, Name: "X", Issuer: idp.url + "/other", ClientID: "x"}, "issuer"},
		{"plain http elsewhere", sso.Input{Kind: deadbolt.SSOOIDC, Name: "X", Issuer: "http://idp.example", ClientID: "x"}, "issuer"},
		{"no client id", sso.Input{Kind: deadbolt.SSOOIDC, Name: "X", Issuer: idp.url}, "client_id"},
		{"a bad domain", sso.Input{Kind: deadbolt.SSOOIDC, Name: "X", Issuer: idp.url, ClientID: "x", Domains: []string{"not a domain"}}, "domains"},
		{"owner by JIT", sso.Input{Kind: deadbolt.SSOOIDC, Name: "X", Issuer: idp.url, ClientID: "x", DefaultRole: deadbolt.RoleOwner}, "default_role"},
		{"an unknown kind", sso.Input{Kind: "ldap", Name: "X"}, "kind"},
		{"SAML without metadata", sso.Input{Kind: deadbolt.SSOSAML, Name: "X"}, "metadata_url"},
		{"SAML metadata that is not", sso.Input{Kind: deadbolt.SSOSAML, Name: "X", MetadataXML: "<html/>"}, "metadata_xml"},
	}
	for _, tt := range tests {
		_, err := o.sso.Create(ctx, o.acc, o.owner.ID, tt.in)
		var de *deadbolt.Error
		if !deadbolt.IsCode(err, deadbolt.EInvalid) || !errors.As(err, &de) || de.Field != tt.field {
			t.Errorf("%s: Create = %v, want invalid %s", tt.name, err, tt.field)
		}
	}
	// A domain is one provider's.
	if _, err := o.sso.Create(ctx, o.acc, o.owner.ID, sso.Input{Kind: deadbolt.SSOOIDC, Name: "Again", Issuer: idp.url, ClientID: "y",
		Domains: []string{"ACME.example"}}); !deadbolt.IsCode(err, deadbolt.EConflict) {
		t.Errorf("a second provider for acme.example = %v, want conflict", err)
	}
}

// ssoUser makes a user who signs in with SSO.
func (e *env) ssoUser(email string, role deadbolt.Role) *deadbolt.User {
	e.t.Helper()
	u := &deadbolt.User{AccountID: e.acc.ID, Email: email, Name: "User " + email, Role: role, AuthSource: deadbolt.AuthSSO}
	if err := e.db.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// withTOTPFor gives an existing user an active authenticator app and
// returns its key as apps take it.
func (e *env) withTOTPFor(email string) string {
	e.t.Helper()
	u, err := e.db.FindUserByEmail(context.Background(), e.acc.ID, email)
	if err != nil {
		e.t.Fatal(err)
	}
	raw := []byte("an SSO user's TOTP secret, 20+")
	f := &deadbolt.Factor{AccountID: e.acc.ID, UserID: u.ID, Kind: deadbolt.FactorTOTP, Secret: raw}
	if err := e.db.CreateFactor(context.Background(), f); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.ActivateFactor(context.Background(), e.acc.ID, f.ID, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
}

// TestSSOTrustedMFA: an identity provider trusted for MFA that says it did
// it (here another Deadbolt account's OpenID Connect provider, whose ID
// tokens say amr mfa after a TOTP code) satisfies require_2fa_sso_users;
// one not trusted does not.
func TestSSOTrustedMFA(t *testing.T) {
	o, _, _ := ssoEnv(t, storetest.Databases[0])
	e := o.env
	ctx := context.Background()
	const email, pw = "agent@acme.example", "correct horse battery staple"
	secretB32, _ := e.withTOTP(email, pw)
	h, _ := e.hasher.Hash("beta owner passphrase long")
	beta := &deadbolt.Account{Slug: "beta", Name: "Beta", Policy: deadbolt.DefaultPolicy()}
	beta.Policy.Require2FASSOUsers = true
	if err := e.db.CreateAccount(ctx, beta, &deadbolt.User{Email: "owner@beta.example", Name: "B", Role: deadbolt.RoleOwner,
		AuthSource: deadbolt.AuthPassword, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	for _, trust := range []bool{true, false} {
		// beta's provider is acme's issuer; acme's client is beta's.
		p, err := o.sso.Create(ctx, beta, "", sso.Input{Kind: deadbolt.SSOOIDC, Name: "Acme", JIT: true, TrustMFA: trust,
			Issuer: o.issuer("acme"), ClientID: "pending"})
		if err != nil {
			t.Fatal(err)
		}
		c, sec := o.client(e.acc, oidc.ClientInput{RedirectURIs: []string{o.sso.CallbackURL(beta, p)}, Scopes: []string{"openid", "email", "profile"}})
		if _, err := o.sso.Update(ctx, beta, "", p.ID, sso.Input{Name: p.Name, JIT: true, TrustMFA: trust, Issuer: p.Issuer, ClientID: c.ID,
			ClientSecret: sec}); err != nil {
			t.Fatal(err)
		}
		b := o.browser()
		resp, body := b.visit(o.url+"/accounts/beta/sso/"+p.ID, nil)
		if resp.Request.URL.Path != "/accounts/acme/signin" {
			t.Fatalf("beta's SSO led to %s, want acme's sign-in: %.200s", resp.Request.URL, body)
		}
		resp, body = b.signIn("acme", email, pw, secretB32, false)
		want := "/accounts/beta/security"
		if !trust {
			want = "/accounts/beta/security/setup" // its MFA does not count: set up beta's own
		}
		if resp.Request.URL.Path != want {
			t.Errorf("trust_mfa %v: after acme's password and code the browser is at %s, want %s: %.300s", trust, resp.Request.URL, want, body)
		}
		if err := o.sso.Delete(ctx, beta, "", p.ID); err != nil {
			t.Fatal(err)
		}
		if u, err := e.db.FindUserByEmail(ctx, beta.ID, email); err == nil {
			if err := e.db.DeleteUser(ctx, beta.ID, u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSSOAdmin: the provider API and the admin center's page: secrets
// never come back, writes need a fresh second factor, other roles and
// other accounts are refused, bad settings change nothing.
func TestSSOAdmin(t *testing.T) {
	o, idp, p := ssoEnv(t, storetest.Databases[0])
	e := o.api()
	ctx := context.Background()
	api := "/api/v1/accounts/acme/sso/providers"
	tok, _ := e.ownerTOTP()

	r := e.req("GET", api, tok, nil)
	list, _ := r.body["providers"].([]any)
	if r.status != 200 || len(list) != 1 {
		t.Fatalf("GET providers = %d %s", r.status, r.raw)
	}
	got := list[0].(map[string]any)
	if got["redirect_uri"] != o.sso.CallbackURL(e.acc, p) || got["client_secret_set"] != true || strings.Contains(r.raw, "the client secret") {
		t.Errorf("provider JSON = %s, want the redirect URI, client_secret_set and never the secret", r.raw)
	}
	body := map[string]any{"kind": "oidc", "name": "Second", "domains": []string{"second.example"}, "issuer": idp.url, "client_id": "c2",
		"client_secret": "s2", "jit": true, "default_role": "agent"}
	if r := e.req("POST", api, tok, body); r.status != 201 || r.str("id") == "" || strings.Contains(r.raw, `"s2"`) {
		t.Errorf("POST provider = %d %s", r.status, r.raw)
	}
	bad := map[string]any{"kind": "oidc", "name": "Bad", "issuer": "https://", "client_id": "c"}
	if r := e.req("POST", api, tok, bad); r.status != 400 || r.errCode() != "invalid_request" {
		t.Errorf("POST a bad issuer = %d %s, want 400", r.status, r.raw)
	}
	if provs, _ := e.db.FindSSOProviders(ctx, e.acc.ID); len(provs) != 2 {
		t.Errorf("%d providers after one good and one bad POST, want 2", len(provs))
	}
	// Kind cannot change; an empty secret keeps the stored one.
	if r := e.req("PUT", api+"/"+p.ID, tok, map[string]any{"kind": "saml", "name": "X", "metadata_xml": "<x/>"}); r.status != 400 {
		t.Errorf("PUT another kind = %d %s, want 400", r.status, r.raw)
	}
	if r := e.req("PUT", api+"/"+p.ID, tok, map[string]any{"name": "Renamed", "domains": []string{"acme.example"}, "issuer": idp.url,
		"client_id": p.ClientID, "jit": true}); r.status != 200 || r.str("name") != "Renamed" {
		t.Errorf("PUT = %d %s", r.status, r.raw)
	}
	if kept, _ := e.db.FindSSOProvider(ctx, e.acc.ID, p.ID); kept.ClientSecret != "the client secret" {
		t.Errorf("after a PUT without a secret the stored one is %q", kept.ClientSecret)
	}

	// An agent, and the owner of another account, are refused.
	e.user("helper@acme.example", deadbolt.RoleAgent, "the helper's long passphrase")
	agentTok := e.session("helper@acme.example", "the helper's long passphrase")
	if r := e.req("GET", api, agentTok, nil); r.status != 403 {
		t.Errorf("an agent's GET = %d, want 403", r.status)
	}
	e.createBeta()
	// beta has no provider: requiring SSO would lock its team out.
	if r := e.basic("PUT", "/api/v1/accounts/beta/policy", "owner@beta.example", betaPassword,
		map[string]any{"require_sso_team_members": true}); r.status != 400 || !strings.Contains(r.raw, "identity provider first") {
		t.Errorf("require_sso_team_members without a provider = %d %s, want 400", r.status, r.raw)
	}
	for _, path := range []string{api, api + "/" + p.ID} {
		if r := e.basic("GET", path, "owner@beta.example", betaPassword, nil); r.status != 403 && r.status != 401 {
			t.Errorf("beta's owner GET %s = %d, want refused", path, r.status)
		}
	}
	if r := e.basic("DELETE", "/api/v1/accounts/beta/sso/providers/"+p.ID, "owner@beta.example", betaPassword, nil); r.status != 404 {
		t.Errorf("beta's owner DELETE of acme's provider through beta = %d %s, want 404", r.status, r.raw)
	}
	// Without a fresh second factor, writes wait for step-up.
	o.clock.Advance(20 * time.Minute)
	if r := e.req("DELETE", api+"/"+p.ID, tok, nil); r.status != 403 || r.errCode() != "reauthentication_required" {
		t.Errorf("DELETE with an old proof = %d %s, want reauthentication_required", r.status, r.raw)
	}

	// The page: a signed-in owner (password, 2-step verification by email).
	b := o.browser()
	owner := "owner2@acme.example"
	e.user(owner, deadbolt.RoleOwner, ownerPassword)
	e.settle()
	before := len(e.inbox.to(owner))
	resp, _ := b.visit(o.url+"/accounts/acme/signin", url.Values{"email": {owner}, "password": {ownerPassword}})
	if strings.HasSuffix(resp.Request.URL.Path, "/signin/verify") {
		code := e.inbox.waitCode(t, owner, before+1)
		resp, _ = b.visit(o.url+"/accounts/acme/signin/verify", url.Values{"method": {"email"}, "code": {code}})
	}
	if !strings.HasSuffix(resp.Request.URL.Path, "/security") {
		t.Fatalf("the owner signed in at %s", resp.Request.URL)
	}
	resp, page := b.visit(o.url+"/accounts/acme/admin/sso", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "Renamed") || !strings.Contains(page, o.sso.CallbackURL(e.acc, p)) {
		t.Fatalf("SSO page = %d: %.400s", resp.StatusCode, page)
	}
	resp, page = b.visit(o.url+"/accounts/acme/admin/sso", url.Values{"kind": {"oidc"}, "name": {"Third"}, "issuer": {"http://not-loopback.example"},
		"client_id": {"c3"}})
	if resp.StatusCode != 400 || !strings.Contains(page, "only https") {
		t.Errorf("a bad provider on the page = %d: %.300s", resp.StatusCode, page)
	}
	resp, page = b.visit(o.url+"/accounts/acme/admin/sso", url.Values{"kind": {"oidc"}, "name": {"Third"}, "issuer": {idp.url},
		"client_id": {"c3"}, "client_secret": {"s3"}, "domains": {"third.example\n"}, "default_role": {"end_user"}})
	if resp.StatusCode != 200 || !strings.Contains(page, "Third is added") {
		t.Errorf("adding on the page = %d: %.300s", resp.StatusCode, page)
	}
	resp, _ = b.visit(o.url+"/accounts/acme/admin/sso/"+p.ID+"/delete", url.Values{})
	if _, err := e.db.FindSSOProvider(ctx, e.acc.ID, p.ID); resp.StatusCode != 200 || !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("remove on the page = %d, provider %v", resp.StatusCode, err)
	}
	if n := e.auditCount(deadbolt.AuditSSOProviderDeleted, nil); n != 1 {
		t.Errorf("sso.provider_deleted events = %d, want 1", n)
	}
}

// TestSSOMalformed: odd answers at the SSO endpoints get a clear refusal,
// never a 5xx (the env's server fails the test on one).
func TestSSOMalformed(t *testing.T) {
	o, _, p := ssoEnv(t, storetest.Databases[0])
	base := o.url + "/accounts/acme/sso/"
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name, method, path string
		form               url.Values
		want               int
	}{
		{"unknown provider", "GET", base + "idp_nope", nil, 404},
		{"a provider id too long", "GET", base + long, nil, 404},
		{"unknown account", "GET", o.url + "/accounts/nope/sso/" + p.ID, nil, 404},
		{"callback without state", "GET", base + p.ID + "/callback?code=abc", nil, 403},
		{"callback with a long state", "GET", base + p.ID + "/callback?code=abc&state=" + long, nil, 403},
		{"callback with an error", "GET", base + p.ID + "/callback?error=access_denied&state=s", nil, 403},
		{"an OIDC provider's ACS", "POST", base + p.ID + "/acs", url.Values{"SAMLResponse": {"PHg+"}, "RelayState": {"x"}}, 404},
		{"an OIDC provider's SP metadata", "GET", base + p.ID + "/metadata", nil, 404},
		{"discovery without an email", "POST", o.url + "/accounts/acme/sso", url.Values{}, 400},
		{"discovery with a bad email", "POST", o.url + "/accounts/acme/sso", url.Values{"email": {"not an email"}}, 400},
	}
	for _, tt := range tests {
		var form url.Values
		if tt.method == "POST" {
			form = tt.form
		}
		resp, body := o.browser().visit(tt.path, form)
		if resp.StatusCode != tt.want {
			t.Errorf("%s = %d: %.200s, want %d", tt.name, resp.StatusCode, body, tt.want)
		}
	}
}

// TestSSOLimits: refused SSO sign-ins count against the client address
// like wrong passwords, so an open identity provider cannot be used to
// probe or fill the account from one network.
func TestSSOLimits(t *testing.T) {
	o, _, p := ssoEnv(t, storetest.Databases[0])
	ctx := context.Background()
	p.JIT = false
	from := signin.Client{IP: "203.0.113.9", UserAgent: "test"}
	var err error
	n := 0
	for ; n < 150; n++ {
		_, err = o.svc.SSOSignIn(ctx, o.acc, p, deadbolt.Identity{Email: fmt.Sprintf("nobody%d@acme.example", n)}, from)
		if !deadbolt.IsCode(err, deadbolt.ESSORefused) {
			break
		}
	}
	if !deadbolt.IsCode(err, deadbolt.ERateLimited) || n < 50 {
		t.Fatalf("after %d refused SSO sign-ins from one address: %v, want rate_limited past the free ones", n, err)
	}
	// Another address is not held back.
	if _, err := o.svc.SSOSignIn(ctx, o.acc, p, deadbolt.Identity{Email: "nobody@acme.example"}, signin.Client{IP: "198.51.100.7"}); !deadbolt.IsCode(err, deadbolt.ESSORefused) {
		t.Errorf("from another address = %v, want the ordinary refusal", err)
	}
}
