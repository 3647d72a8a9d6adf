package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/oidc"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

// api is the env's request helpers pointed at the provider's server.
func (o *oidcEnv) api() *env {
	e := *o.env
	e.url = o.url
	return &e
}

func TestOIDCClientAPI(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		a := o.api()
		tok, _ := e.ownerTOTP()
		base := "/api/v1/accounts/acme/oidc/clients"
		good := map[string]any{"name": "Grafana", "redirect_uris": []string{"https://grafana.example.com/login/generic_oauth"},
			"scopes": []string{"openid", "email", "profile", "offline_access"}, "backchannel_logout_uri": "https://grafana.example.com/logout"}

		bad := []struct {
			name  string
			body  any
			field string
		}{
			{"no name", map[string]any{"redirect_uris": []string{"https://a.example/cb"}}, "name"},
			{"no redirect URI", map[string]any{"name": "A"}, "redirect_uris"},
			{"http off loopback", map[string]any{"name": "A", "redirect_uris": []string{"http://a.example/cb"}}, "redirect_uris"},
			{"fragment", map[string]any{"name": "A", "redirect_uris": []string{"https://a.example/cb#x"}}, "redirect_uris"},
			{"relative", map[string]any{"name": "A", "redirect_uris": []string{"/cb"}}, "redirect_uris"},
			{"custom scheme", map[string]any{"name": "A", "redirect_uris": []string{"javascript:alert(1)"}}, "redirect_uris"},
			{"user info", map[string]any{"name": "A", "redirect_uris": []string{"https://u:p@a.example/cb"}}, "redirect_uris"},
			{"unknown scope", map[string]any{"name": "A", "redirect_uris": []string{"https://a.example/cb"}, "scopes": []string{"admin"}}, "scopes"},
			{"bad logout URI", map[string]any{"name": "A", "redirect_uris": []string{"https://a.example/cb"}, "post_logout_redirect_uris": []string{"ftp://x"}}, "post_logout_redirect_uris"},
			{"too many URIs", map[string]any{"name": "A", "redirect_uris": strings.Split(strings.Repeat("https://a.example/cb,", 21), ",")[:21]}, "redirect_uris"},
			{"wrong type", map[string]any{"name": "A", "redirect_uris": "https://a.example/cb"}, "redirect_uris"},
			{"unknown field", map[string]any{"name": "A", "redirect_uris": []string{"https://a.example/cb"}, "secret": "mine"}, "secret"},
		}
		for _, tc := range bad {
			r := a.req("POST", base, tok, tc.body)
			if r.status != 400 || r.errCode() != deadbolt.EInvalid || r.errField("field") != tc.field {
				t.Errorf("%s: POST = %d %s, want 400 invalid_request on %s", tc.name, r.status, r.raw, tc.field)
			}
		}
		if r := a.req("GET", base, tok, nil); r.status != 200 || len(r.body["clients"].([]any)) != 0 {
			t.Fatalf("after refused registrations GET = %d %s, want no clients", r.status, r.raw)
		}

		r := a.req("POST", base, tok, good)
		id, sec := r.str("client_id"), r.str("client_secret")
		if r.status != 201 || !strings.HasPrefix(id, "dbo_") || !strings.HasPrefix(sec, "dbcs_") || r.str("issuer") != o.issuer("acme") {
			t.Fatalf("POST = %d %s, want 201 with an id, a secret and the issuer", r.status, r.raw)
		}
		if g := a.req("GET", base+"/"+id, tok, nil); g.status != 200 || strings.Contains(g.raw, sec) || g.str("client_secret") != "" {
			t.Errorf("GET = %d %s, want the client without its secret", g.status, g.raw)
		}
		stored, err := e.db.FindOIDCClient(context.Background(), e.acc.ID, id)
		if err != nil || strings.Contains(string(stored.SecretHash), sec) {
			t.Errorf("stored client = %v, %v: the secret must be stored hashed", stored, err)
		}
		if n := e.auditCount(deadbolt.AuditOIDCClientCreated, map[string]string{"client_id": id}); n != 1 {
			t.Errorf("oidc.client_created events = %d, want 1", n)
		}

		upd := map[string]any{"name": "Grafana Ops", "redirect_uris": []string{"https://grafana.example.com/login/generic_oauth"}, "require_2fa": true,
			"scopes": []string{"openid", "offline_access"}}
		if u := a.req("PUT", base+"/"+id, tok, upd); u.status != 200 || u.str("name") != "Grafana Ops" || u.body["require_2fa"] != true {
			t.Errorf("PUT = %d %s, want the new name and require_2fa", u.status, u.raw)
		}
		upd["public"] = true
		if u := a.req("PUT", base+"/"+id, tok, upd); u.status != 400 || u.errField("field") != "public" {
			t.Errorf("PUT turning public = %d %s, want 400 on public", u.status, u.raw)
		}

		// A new secret: the old one stops working at the token endpoint.
		rs := a.req("POST", base+"/"+id+"/secret", tok, nil)
		if rs.status != 200 || rs.str("client_secret") == "" || rs.str("client_secret") == sec {
			t.Fatalf("rotate secret = %d %s", rs.status, rs.raw)
		}
		tokenAuth := func(secret string) string {
			req, _ := http.NewRequest("POST", o.issuer("acme")+"/oidc/token", strings.NewReader("grant_type=refresh_token&refresh_token=dbr_x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(id, secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&out)
			return out["error"]
		}
		if got := tokenAuth(sec); got != "invalid_client" {
			t.Errorf("the old secret = %q, want invalid_client", got)
		}
		if got := tokenAuth(rs.str("client_secret")); got != "invalid_grant" {
			t.Errorf("the new secret = %q, want past client authentication (invalid_grant for the made-up token)", got)
		}

		// Others: an agent, and the admin of another account.
		e.user("agent2@acme.example", deadbolt.RoleAgent, "an agent's long passphrase")
		agentTok := e.session("agent2@acme.example", "an agent's long passphrase")
		if r := a.req("GET", base, agentTok, nil); r.status != 403 {
			t.Errorf("agent GET = %d, want 403", r.status)
		}
		_, betaOwner := e.createBeta()
		betaTok, _ := e.storedAPIToken(betaOwner)
		if r := a.req("GET", base+"/"+id, betaTok, nil); r.status != 403 && r.status != 404 {
			t.Errorf("beta admin GET of acme's client = %d, want 403 or 404", r.status)
		}
		if r := a.req("GET", "/api/v1/accounts/beta/oidc/clients/"+id, betaTok, nil); r.status != 404 {
			t.Errorf("acme's client through beta = %d, want 404", r.status)
		}
		if r := a.req("DELETE", "/api/v1/accounts/beta/oidc/clients/"+id, betaTok, nil); r.status != 404 {
			t.Errorf("deleting acme's client through beta = %d, want 404", r.status)
		}

		if r := a.req("POST", "/api/v1/accounts/acme/oidc/keys/rotate", tok, map[string]string{"alg": "HS256"}); r.status != 400 {
			t.Errorf("rotate keys with HS256 = %d %s, want 400", r.status, r.raw)
		}
		if r := a.req("POST", "/api/v1/accounts/acme/oidc/keys/rotate", tok, map[string]string{"alg": "ES256"}); r.status != 200 || r.str("alg") != "ES256" {
			t.Errorf("rotate keys = %d %s", r.status, r.raw)
		}

		if r := a.req("DELETE", base+"/"+id, tok, nil); r.status != 204 {
			t.Fatalf("DELETE = %d %s", r.status, r.raw)
		}
		if r := a.req("GET", base+"/"+id, tok, nil); r.status != 404 {
			t.Errorf("GET after DELETE = %d, want 404", r.status)
		}
	})
}

func TestOIDCRequire2FA(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		e.user("customer@acme.example", deadbolt.RoleEndUser, "a customer's long passphrase")
		c, sec := o.client(e.acc, oidc.ClientInput{Require2FA: true})
		rp := o.rpClient("acme", c, sec)
		b := o.browser()
		u, _, _, _ := rp.authorize()
		b.visit(u, nil)
		resp, body := b.signIn("acme", "customer@acme.example", "a customer's long passphrase", "", false)
		if !strings.HasSuffix(resp.Request.URL.Path, "/security/setup") {
			t.Fatalf("a user without a second factor at a client that requires one is at %s, want set-up: %.200s", resp.Request.URL, body)
		}
		// prompt=none cannot ask for set-up: interaction_required.
		u, _, _, _ = rp.authorize(oauth2.SetAuthURLParam("prompt", "none"))
		if q := b.atApp(b.visit(u, nil)); q.Get("error") != "interaction_required" {
			t.Errorf("prompt=none needing set-up = %v, want interaction_required", q)
		}
	})
}

// TestOIDCLogoutWhenSessionsEnd: every way a session ends tells the
// applications signed in through it.
func TestOIDCLogoutWhenSessionsEnd(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		a := o.api()
		pw := "correct horse battery staple"
		secretB32, _ := e.withTOTP("agent@acme.example", pw)
		agent, _ := e.db.FindUserByEmail(context.Background(), e.acc.ID, "agent@acme.example")
		c, sec := o.client(e.acc, oidc.ClientInput{BackchannelLogoutURI: o.rp.url + "/backchannel"})
		rp := o.rpClient("acme", c, sec)
		owner, _ := e.ownerTOTP()
		lv := rp.provider.Verifier(&gooidc.Config{ClientID: c.ID, Now: o.clock.Now})

		signInApp := func() (sid, sessionID string) {
			t.Helper()
			b := o.browser()
			u, verifier, state, nonce := rp.authorize()
			b.visit(u, nil)
			q := b.atApp(b.signIn("acme", "agent@acme.example", pw, secretB32, false))
			_, _, cl := rp.exchange(t, q, verifier, state, nonce)
			sessions, err := e.db.FindSessions(context.Background(), e.acc.ID, agent.ID)
			if err != nil || len(sessions) == 0 {
				t.Fatalf("sessions = %v, %v", sessions, err)
			}
			return cl.SID, sessions[0].ID // newest first
		}
		waitLogout := func(what, sid string) {
			t.Helper()
			deadline := time.After(10 * time.Second)
			for {
				for _, raw := range o.rp.logoutTokens() {
					lt, err := lv.Verify(context.Background(), raw)
					if err != nil && strings.Contains(err.Error(), "expired") {
						continue // an earlier case's, verified then
					}
					if err != nil {
						t.Fatalf("%s: logout token does not verify: %v", what, err)
					}
					var claims struct {
						SID string `json:"sid"`
					}
					_ = lt.Claims(&claims)
					if claims.SID == sid {
						return
					}
				}
				select {
				case <-o.rp.got:
				case <-deadline:
					t.Fatalf("%s: no logout token for sid %s within 10 s", what, sid)
				}
			}
		}

		t.Run("session revoked", func(t *testing.T) {
			sid, id := signInApp()
			r := a.totpSignIn("agent@acme.example", pw, secretB32, false)
			if r := a.req("DELETE", "/api/v1/me/sessions/"+id, r.str("session_token"), nil); r.status != 204 {
				t.Fatalf("revoke = %d %s", r.status, r.raw)
			}
			waitLogout("revoked session", sid)
		})
		t.Run("password change", func(t *testing.T) {
			sid, _ := signInApp()
			tok := a.totpSignIn("agent@acme.example", pw, secretB32, false).str("session_token")
			e.stepUpTOTP(tok, secretB32)
			if r := a.req("POST", "/api/v1/me/password", tok, map[string]string{"current_password": pw, "new_password": pw + " again"}); r.status != 204 && r.status != 200 {
				t.Fatalf("password change = %d %s", r.status, r.raw)
			}
			waitLogout("password change", sid)
			pw += " again"
		})
		t.Run("admin 2FA reset", func(t *testing.T) {
			sid, _ := signInApp()
			if r := a.req("DELETE", "/api/v1/accounts/acme/users/"+agent.ID+"/factors", owner, nil); r.status != 204 {
				t.Fatalf("reset = %d %s", r.status, r.raw)
			}
			waitLogout("admin reset", sid)
		})
	})
}

// TestOIDCCodeRace: of parallel exchanges of one code, one gets tokens.
func TestOIDCCodeRace(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		secretB32, _ := e.withTOTP("agent@acme.example", "correct horse battery staple")
		c, sec := o.client(e.acc, oidc.ClientInput{})
		rp := o.rpClient("acme", c, sec)
		b := o.browser()
		u, verifier, _, _ := rp.authorize()
		b.visit(u, nil)
		q := b.atApp(b.signIn("acme", "agent@acme.example", "correct horse battery staple", secretB32, false))
		var wins atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := rp.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d of 20 parallel exchanges of one code got tokens, want 1", n)
		}
	})
}

// TestOIDCMalformed: odd requests to every endpoint get a 4xx (or the
// protocol's error redirect), never a 5xx; the server fails the test on
// any 5xx it answers.
func TestOIDCMalformed(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		c, sec := o.client(e.acc, oidc.ClientInput{})
		cb := url.QueryEscape(o.rp.url + "/callback")
		long := strings.Repeat("A", 10000)
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		cases := []struct {
			method, path, ctype, body string
			basic                     bool
		}{
			{"GET", "/accounts/acme/oidc/authorize", "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=" + c.ID, "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=nope&redirect_uri=" + cb + "&response_type=code&scope=openid", "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=" + c.ID + "&redirect_uri=" + cb + "&response_type=token&scope=openid", "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=" + c.ID + "&redirect_uri=" + cb + "&response_type=code&scope=openid&code_challenge=abc&code_challenge_method=plain", "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=" + c.ID + "&redirect_uri=" + cb + "&response_type=code&scope=openid&state=" + long, "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=" + c.ID + "&redirect_uri=" + cb + "&response_type=code&scope=openid&prompt=none+login", "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=" + c.ID + "&redirect_uri=" + cb + "&response_type=code&scope=openid&max_age=-1", "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=" + c.ID + "&redirect_uri=" + cb + "&response_type=code&scope=openid&id_token_hint=x.y.z", "", "", false},
			{"GET", "/accounts/acme/oidc/authorize?client_id=" + c.ID + "&redirect_uri=" + cb + "&response_type=code&scope=openid&request=eyJ.x.y", "", "", false},
			{"GET", "/accounts/acme/oidc/authorize/callback?id=anything", "", "", false},
			{"GET", "/accounts/acme/signin/oidc?id=" + long, "", "", false},
			{"GET", "/accounts/acme/signin/oidc?id=", "", "", false},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "", true},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=" + long, true},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=%ff%fe", true},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=" + long, true},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&scope=openid", true},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x", true},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=x.y.z", true},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x", true},
			{"POST", "/accounts/acme/oidc/token", "application/json", `{"grant_type":"authorization_code"}`, true},
			{"POST", "/accounts/acme/oidc/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=x", false},
			{"PUT", "/accounts/acme/oidc/token", "", "", false},
			{"GET", "/accounts/acme/oidc/userinfo", "", "", false},
			{"POST", "/accounts/acme/oidc/introspect", "application/x-www-form-urlencoded", "token=x", false},
			{"POST", "/accounts/acme/oidc/introspect", "application/x-www-form-urlencoded", "token=" + long, true},
			{"POST", "/accounts/acme/oidc/revoke", "application/x-www-form-urlencoded", "token=" + long, true},
			{"POST", "/accounts/acme/oidc/revoke", "application/x-www-form-urlencoded", "", true},
			{"GET", "/accounts/acme/oidc/end_session", "", "", false},
			{"GET", "/accounts/acme/oidc/end_session?id_token_hint=x.y.z", "", "", false},
			{"GET", "/accounts/acme/oidc/end_session?ui_locales=%ff%fe", "", "", false},
			{"GET", "/accounts/acme/oidc/end_session?client_id=a&client_id=b", "", "", false},
			{"GET", "/accounts/acme/oidc/end_session?post_logout_redirect_uri=https://evil.example/", "", "", false},
			{"GET", "/accounts/acme/oidc/device_authorization", "", "", false},
			{"GET", "/accounts/acme/oidc/nothing", "", "", false},
			{"GET", "/accounts/nobody/.well-known/openid-configuration", "", "", false},
			{"GET", "/accounts/Bad_Slug/oidc/keys", "", "", false},
			{"DELETE", "/accounts/acme/oidc/keys", "", "", false},
		}
		for _, tc := range cases {
			req, err := http.NewRequest(tc.method, o.url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.basic {
				req.SetBasicAuth(c.ID, sec)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Errorf("%s %.120s = %d, want no 5xx", tc.method, tc.path, resp.StatusCode)
			}
			if loc := resp.Header.Get("Location"); loc != "" && !strings.HasPrefix(loc, o.rp.url) && !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, o.url) {
				t.Errorf("%s %.120s redirected to %s: only to the registered URI or to Deadbolt", tc.method, tc.path, loc)
			}
		}
	})
}

func TestOIDCApplicationsPage(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		b := o.browser()
		e.settle()
		before := len(e.inbox.to(e.owner.Email))
		resp, _ := b.visit(o.url+"/accounts/acme/signin", url.Values{"email": {e.owner.Email}, "password": {ownerPassword}})
		if strings.HasSuffix(resp.Request.URL.Path, "/signin/verify") {
			code := e.inbox.waitCode(t, e.owner.Email, before+1)
			resp, _ = b.visit(o.url+"/accounts/acme/signin/verify", url.Values{"method": {"email"}, "code": {code}})
		}
		if !strings.HasSuffix(resp.Request.URL.Path, "/security") {
			t.Fatalf("owner signed in at %s", resp.Request.URL)
		}
		resp, body := b.visit(o.url+"/accounts/acme/admin/applications", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, o.issuer("acme")) || !strings.Contains(body, "No applications yet") {
			t.Fatalf("applications page = %d: %.300s", resp.StatusCode, body)
		}
		// A bad URI: the form comes back with the error and nothing is made.
		form := url.Values{"name": {"Wiki"}, "redirect_uris": {"http://wiki.example/cb"}, "scopes": {"email", "profile"}}
		resp, body = b.visit(o.url+"/accounts/acme/admin/applications", form)
		if resp.StatusCode != 400 || !strings.Contains(body, "only https is allowed") || !strings.Contains(body, "Wiki") {
			t.Errorf("bad registration = %d: %.300s", resp.StatusCode, body)
		}
		form.Set("redirect_uris", "https://wiki.example/cb\nhttps://wiki.example/cb2\n")
		resp, body = b.visit(o.url+"/accounts/acme/admin/applications", form)
		clients, err := e.db.FindOIDCClients(context.Background(), e.acc.ID)
		if resp.StatusCode != 200 || err != nil || len(clients) != 1 {
			t.Fatalf("registration = %d, clients %v %v: %.300s", resp.StatusCode, clients, err, body)
		}
		c := clients[0]
		if len(c.RedirectURIs) != 2 || c.Public() || !strings.Contains(body, c.ID) || !strings.Contains(body, "dbcs_") {
			t.Errorf("registered %+v; the page must show the id and the secret once: %.300s", c, body)
		}
		if _, body = b.visit(o.url+"/accounts/acme/admin/applications", nil); strings.Contains(body, "dbcs_") {
			t.Error("the secret is shown again")
		}
		resp, _ = b.visit(o.url+"/accounts/acme/admin/applications/"+c.ID+"/delete", url.Values{})
		if clients, _ := e.db.FindOIDCClients(context.Background(), e.acc.ID); resp.StatusCode != 200 || len(clients) != 0 {
			t.Errorf("remove = %d, %d clients left", resp.StatusCode, len(clients))
		}
	})
}

// TestOIDCSignInPaths: an application's sign-in goes through every path of
// the pages and comes back to it.
func TestOIDCSignInPaths(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		c, sec := o.client(e.acc, oidc.ClientInput{})
		rp := o.rpClient("acme", c, sec)
		const pw = "a long passphrase of theirs"

		t.Run("2-step verification of a new device", func(t *testing.T) {
			e.user("new@acme.example", deadbolt.RoleAgent, pw)
			b := o.browser()
			u, verifier, state, nonce := rp.authorize(oauth2.SetAuthURLParam("login_hint", "new@acme.example"))
			resp, body := b.visit(u, nil)
			if !strings.Contains(body, `value="new@acme.example"`) {
				t.Errorf("login_hint not in the sign-in form at %s", resp.Request.URL)
			}
			e.settle()
			before := len(e.inbox.to("new@acme.example"))
			resp, body = b.visit(o.url+"/accounts/acme/signin", url.Values{"email": {"new@acme.example"}, "password": {pw}})
			if !strings.Contains(body, "Verify this device") {
				t.Fatalf("at %s, want 2-step verification: %.200s", resp.Request.URL, body)
			}
			code := e.inbox.waitCode(t, "new@acme.example", before+1)
			q := b.atApp(b.visit(o.url+"/accounts/acme/signin/verify", url.Values{"method": {"email"}, "code": {code}}))
			_, _, cl := rp.exchange(t, q, verifier, state, nonce)
			if cl.ACR != "pwd" || strings.Join(cl.AMR, " ") != "pwd" {
				t.Errorf("2-step verification: acr %q amr %v, want pwd (a device check is no second factor)", cl.ACR, cl.AMR)
			}
		})

		t.Run("forced enrolment", func(t *testing.T) {
			e.setPolicy(func(p *deadbolt.Policy) { p.Require2FAEndUsers = true })
			e.user("customer@acme.example", deadbolt.RoleEndUser, pw)
			b := o.browser()
			u, verifier, state, nonce := rp.authorize()
			b.visit(u, nil)
			resp, body := b.visit(o.url+"/accounts/acme/signin", url.Values{"email": {"customer@acme.example"}, "password": {pw}})
			if !strings.HasSuffix(resp.Request.URL.Path, "/security/setup") {
				t.Fatalf("at %s, want set-up: %.200s", resp.Request.URL, body)
			}
			_, body = b.visit(o.url+"/accounts/acme/security/setup", url.Values{"kind": {"totp"}})
			secretB32 := between(body, `id="secret">`, "<")
			factor := between(body, `name="factor" value="`, `"`)
			if secretB32 == "" || factor == "" {
				t.Fatalf("no secret or factor on the set-up page: %.300s", body)
			}
			o.clock.Advance(30 * time.Second)
			code := oathtool(t, strings.ReplaceAll(secretB32, " ", ""), o.clock.Now())
			_, body = b.visit(o.url+"/accounts/acme/security/setup/confirm", url.Values{"factor": {factor}, "code": {code}})
			next := between(body, `<a class="button" href="`, `"`)
			if !strings.Contains(body, "Save your recovery codes") || next == "" {
				t.Fatalf("no recovery codes after set-up: %.300s", body)
			}
			q := b.atApp(b.visit(o.url+strings.ReplaceAll(next, "&amp;", "&"), nil))
			_, _, cl := rp.exchange(t, q, verifier, state, nonce)
			if cl.ACR != "mfa" || !hasAll(cl.AMR, "pwd", "otp", "mfa") {
				t.Errorf("after enrolment: acr %q amr %v, want mfa", cl.ACR, cl.AMR)
			}

			t.Run("prompt=login", func(t *testing.T) {
				u, _, _, _ := rp.authorize(oauth2.SetAuthURLParam("prompt", "login"))
				if resp, _ := b.visit(u, nil); !strings.HasSuffix(resp.Request.URL.Path, "/signin") {
					t.Errorf("prompt=login with a session is at %s, want the sign-in page", resp.Request.URL)
				}
			})
			t.Run("max_age", func(t *testing.T) {
				u, _, _, _ := rp.authorize(oauth2.SetAuthURLParam("max_age", "3600"))
				if resp, _ := b.visit(u, nil); resp.Header.Get("Location") == "" || !strings.HasPrefix(resp.Header.Get("Location"), o.rp.url) {
					t.Errorf("max_age=3600 just after sign-in is at %s, want the application", resp.Request.URL)
				}
				o.clock.Advance(2 * time.Minute)
				u, _, _, _ = rp.authorize(oauth2.SetAuthURLParam("max_age", "60"))
				if resp, _ := b.visit(u, nil); !strings.HasSuffix(resp.Request.URL.Path, "/signin") {
					t.Errorf("max_age=60 two minutes after sign-in is at %s, want the sign-in page", resp.Request.URL)
				}
			})
		})
	})
}

// between returns the text after start up to end, or "".
func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return strings.TrimSpace(v)
}

// TestOIDCScopesAndRefresh: a client gets only the scopes it was
// registered for, at userinfo too; a refreshed ID token keeps its acr; and
// refreshing keeps the Deadbolt session from going idle.
func TestOIDCScopesAndRefresh(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		const email, pw = "agent@acme.example", "correct horse battery staple"
		secretB32, _ := e.withTOTP(email, pw)
		c, sec := o.client(e.acc, oidc.ClientInput{Scopes: []string{"openid", "offline_access"}})
		rp := o.rpClient("acme", c, sec) // asks for openid, profile, email, offline_access
		b := o.browser()
		u, verifier, state, nonce := rp.authorize()
		b.visit(u, nil)
		tok, _, cl := rp.exchange(t, b.atApp(b.signIn("acme", email, pw, secretB32, false)), verifier, state, nonce)
		if cl.Email != "" || cl.Name != "" || cl.Role != "" {
			t.Errorf("ID token of a client without email or profile = %+v, want no email, name or role", cl)
		}
		if sc, _ := tok.Extra("scope").(string); strings.Contains(sc, "email") || strings.Contains(sc, "profile") {
			t.Errorf("token response scope = %q, want only what the client may have", sc)
		}
		info, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		if info.Email != "" || info.Profile != "" {
			t.Errorf("userinfo of a client without email = %+v, want only sub", info)
		}

		// The session is idle after an hour; refreshing every 40 minutes
		// keeps it (and the tokens) alive, and says acr mfa every time.
		for i := range 3 {
			o.clock.Advance(40 * time.Minute)
			next, err := rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
			if err != nil {
				t.Fatalf("refresh %d, %d minutes in: %v", i+1, 40*(i+1), err)
			}
			raw, _ := next.Extra("id_token").(string)
			idt, err := rp.provider.Verifier(&gooidc.Config{ClientID: c.ID, SkipExpiryCheck: true}).Verify(context.Background(), raw)
			if err != nil {
				t.Fatalf("refreshed ID token: %v", err)
			}
			var rc idClaims
			_ = idt.Claims(&rc)
			if rc.ACR != "mfa" || !hasAll(rc.AMR, "otp", "mfa") {
				t.Errorf("refreshed ID token: acr %q amr %v, want mfa as at sign-in", rc.ACR, rc.AMR)
			}
			tok = next
		}
		// Left alone past the idle timeout, it ends.
		o.clock.Advance(61 * time.Minute)
		if _, err := rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
			t.Error("a refresh token outlived an idle session")
		}
	})
}

// TestOIDCLogoutWithoutURI: end_session with a state but no post-logout
// URI ends at Deadbolt's signed-out page, not at a relative URL.
func TestOIDCLogoutWithoutURI(t *testing.T) {
	keys, _ := secret.Generate()
	clk := newClock()
	e := newEnvClock(t, storetest.OpenSQLiteAt(t, keys, clk.Now), keys, "", clk)
	o := e.withOIDC()
	const email, pw = "customer@acme.example", "a customer's long passphrase"
	e.user(email, deadbolt.RoleEndUser, pw)
	c, sec := o.client(e.acc, oidc.ClientInput{})
	rp := o.rpClient("acme", c, sec)
	b := o.browser()
	u, verifier, state, nonce := rp.authorize()
	b.visit(u, nil)
	tok, _, _ := rp.exchange(t, b.atApp(b.signIn("acme", email, pw, "", false)), verifier, state, nonce)
	raw, _ := tok.Extra("id_token").(string)
	resp, body := b.visit(o.issuer("acme")+"/oidc/end_session?"+url.Values{"id_token_hint": {raw}, "state": {"abc"}}.Encode(), nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/accounts/acme/signin" {
		t.Fatalf("end_session without a post-logout URI ended at %d %s: %.200s, want the sign-in page", resp.StatusCode, resp.Request.URL, body)
	}
}
