package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/web"
)

// Passkeys and security keys driven by descope/virtualwebauthn: a software
// authenticator that makes the attestation and assertion responses a
// browser would, against Deadbolt's API.

// withPasskeys is the env served at a host name (localhost): browsers and
// go-webauthn refuse an IP address as the relying party's id.
func (e *env) withPasskeys() (*env, virtualwebauthn.RelyingParty) {
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
	public := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	svc := signin.New(signin.Options{Store: e.db, Keys: e.keys, Hasher: e.hasher, Now: e.clock.Now, Logger: quiet, Notify: e.worker.Kick,
		PublicURL: public})
	handler = web.NewServer(web.Options{DB: e.db, SignIn: svc, Now: e.clock.Now, Logger: quiet, PublicURL: public})
	p := *e
	p.url, p.svc = srv.URL, svc
	e.setPolicy(func(pol *deadbolt.Policy) { pol.AllowedMethods = append(pol.AllowedMethods, deadbolt.FactorWebAuthn) })
	return &p, virtualwebauthn.RelyingParty{Name: "Deadbolt", ID: "localhost", Origin: public}
}

// registerPasskey adds a passkey of the authenticator to the session's
// user and returns the confirmation.
func (e *env) registerPasskey(tok string, rp virtualwebauthn.RelyingParty, auth *virtualwebauthn.Authenticator,
	cred virtualwebauthn.Credential) response {
	e.t.Helper()
	r := e.req("POST", "/api/v1/me/factors", tok, map[string]any{"kind": "webauthn", "name": "My YubiKey"})
	if r.status != 201 {
		e.t.Fatalf("enrol a passkey = %d %s", r.status, r.raw)
	}
	opts, _ := json.Marshal(r.body["options"])
	parsed, err := virtualwebauthn.ParseAttestationOptions(string(opts))
	if err != nil {
		e.t.Fatalf("the creation options do not parse: %v (%s)", err, opts)
	}
	if parsed.RelyingPartyID != "localhost" || !strings.Contains(string(opts), `"residentKey":"required"`) {
		e.t.Errorf("creation options %s: want rp id localhost and a discoverable credential", opts)
	}
	att := virtualwebauthn.CreateAttestationResponse(rp, *auth, cred, *parsed)
	id := r.body["factor"].(map[string]any)["id"].(string)
	conf := e.req("POST", "/api/v1/me/factors/"+id+"/confirm", tok, map[string]any{"credential": json.RawMessage(att)})
	if conf.status == 200 {
		auth.AddCredential(cred)
	}
	return conf
}

// assertion answers a challenge's passkey options with the credential.
func assertion(t *testing.T, options any, rp virtualwebauthn.RelyingParty, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential) json.RawMessage {
	t.Helper()
	b, _ := json.Marshal(options)
	parsed, err := virtualwebauthn.ParseAssertionOptions(string(b))
	if err != nil {
		t.Fatalf("the request options do not parse: %v (%s)", err, b)
	}
	return json.RawMessage(virtualwebauthn.CreateAssertionResponse(rp, auth, cred, *parsed))
}

func TestPasskeySecondFactor(t *testing.T) {
	eachDB(t, func(t *testing.T, base *env) {
		e, rp := base.withPasskeys()
		const email, pw = "agent@acme.example", "an agent's long passphrase"
		e.user(email, deadbolt.RoleAgent, pw)
		tok := e.session(email, pw)
		auth := virtualwebauthn.NewAuthenticator()
		cred := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)

		conf := e.registerPasskey(tok, rp, &auth, cred)
		if conf.status != 200 || conf.body["recovery_codes"] == nil {
			t.Fatalf("confirm the passkey = %d %s, want it active with recovery codes", conf.status, conf.raw)
		}
		f := conf.body["factor"].(map[string]any)
		if f["status"] != "active" || f["kind"] != "webauthn" || f["name"] != "My YubiKey" || f["strength"] != "strong" {
			t.Errorf("the passkey factor = %v", f)
		}
		// Adding another needs a fresh second factor: step-up with the passkey.
		if r := e.req("POST", "/api/v1/me/factors", tok, map[string]any{"kind": "webauthn"}); r.status != 403 || r.errCode() != "reauthentication_required" {
			t.Errorf("a second passkey without step-up = %d %s", r.status, r.raw)
		}
		su := e.req("POST", "/api/v1/me/step-up/send", tok, map[string]any{"method": "webauthn"})
		if su.status != 200 || su.body["options"] == nil {
			t.Fatalf("step-up options = %d %s", su.status, su.raw)
		}
		if r := e.req("POST", "/api/v1/me/step-up", tok, map[string]any{"method": "webauthn",
			"credential": assertion(t, su.body["options"], rp, auth, cred)}); r.status != 200 {
			t.Fatalf("step-up with the passkey = %d %s", r.status, r.raw)
		}
		// A pending passkey sends no code.
		if p := e.req("POST", "/api/v1/me/factors", tok, map[string]any{"kind": "webauthn"}); p.status == 201 {
			id := p.body["factor"].(map[string]any)["id"].(string)
			if s := e.req("POST", "/api/v1/me/factors/"+id+"/send", tok, nil); s.status != 400 {
				t.Errorf("send for a pending passkey = %d %s, want 400", s.status, s.raw)
			}
		}
		// The same passkey again: excluded by the options, refused if sent.
		if r := e.registerPasskey(tok, rp, &auth, cred); r.status != 409 {
			t.Errorf("registering the same credential again = %d %s, want 409", r.status, r.raw)
		}

		signIn := func(t *testing.T) response {
			t.Helper()
			r := e.signIn(email, pw, "Deadbolt-Device", e.devices[email])
			if r.status != 200 || r.str("status") != "second_factor_required" {
				t.Fatalf("sign-in = %d %s, want second_factor_required", r.status, r.raw)
			}
			methods, _ := r.body["methods"].([]any)
			if !slices.Contains(methods, any("webauthn")) || r.body["webauthn"] == nil {
				t.Fatalf("sign-in answer %s: want webauthn among the methods, with its options", r.raw)
			}
			return r
		}
		verify := func(ch string, credential json.RawMessage) response {
			return e.req("POST", "/api/v1/signin/verify", "", map[string]any{"challenge_token": ch, "method": "webauthn", "credential": credential})
		}

		var used json.RawMessage
		t.Run("sign in with it", func(t *testing.T) {
			r := signIn(t)
			used = assertion(t, r.body["webauthn"], rp, auth, cred)
			if v := verify(r.str("challenge_token"), used); v.status != 200 || v.str("status") != "signed_in" {
				t.Fatalf("verify with the passkey = %d %s", v.status, v.raw)
			}
			if n := e.auditCount(deadbolt.AuditSignInSucceeded, map[string]string{"method": "webauthn"}); n != 1 {
				t.Errorf("signin.succeeded method webauthn = %d, want 1", n)
			}
		})

		t.Run("a replayed assertion", func(t *testing.T) {
			r := signIn(t)
			if v := verify(r.str("challenge_token"), used); v.status != 401 {
				t.Errorf("the last sign-in's assertion at a new challenge = %d %s, want refused", v.status, v.raw)
			}
		})

		t.Run("a wrong origin and a wrong RP id", func(t *testing.T) {
			for _, bad := range []virtualwebauthn.RelyingParty{
				{Name: "Evil", ID: "localhost", Origin: "http://evil.example"},
				{Name: "Evil", ID: "evil.example", Origin: rp.Origin},
			} {
				r := signIn(t)
				if v := verify(r.str("challenge_token"), assertion(t, r.body["webauthn"], bad, auth, cred)); v.status != 401 {
					t.Errorf("an assertion for %+v = %d %s, want refused", bad, v.status, v.raw)
				}
			}
		})

		t.Run("another account's credential", func(t *testing.T) {
			e.createBeta()
			bTok := e.sessionAt("beta", "owner@beta.example", betaPassword)
			bAuth := virtualwebauthn.NewAuthenticator()
			bCred := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)
			// beta allows passkeys too.
			bAcc, _ := e.db.FindAccountBySlug(context.Background(), "beta")
			pol := bAcc.Policy
			pol.AllowedMethods = append(pol.AllowedMethods, deadbolt.FactorWebAuthn)
			if err := e.db.UpdatePolicy(context.Background(), bAcc.ID, pol); err != nil {
				t.Fatal(err)
			}
			if r := e.registerPasskey(bTok, rp, &bAuth, bCred); r.status != 200 {
				t.Fatalf("beta's passkey = %d %s", r.status, r.raw)
			}
			// acme's agent answers with beta's credential.
			r := signIn(t)
			if v := verify(r.str("challenge_token"), assertion(t, r.body["webauthn"], rp, bAuth, bCred)); v.status != 401 {
				t.Errorf("another account's credential = %d %s, want refused", v.status, v.raw)
			}
		})

		t.Run("a cloned authenticator", func(t *testing.T) {
			auth.Credentials[0].Counter = 10
			r := signIn(t)
			if v := verify(r.str("challenge_token"), assertion(t, r.body["webauthn"], rp, auth, auth.Credentials[0])); v.status != 200 {
				t.Fatalf("counter 10 = %d %s", v.status, v.raw)
			}
			clone := auth
			clone.Credentials = []virtualwebauthn.Credential{auth.Credentials[0]}
			clone.Credentials[0].Counter = 7
			r = signIn(t)
			if v := verify(r.str("challenge_token"), assertion(t, r.body["webauthn"], rp, clone, clone.Credentials[0])); v.status != 401 {
				t.Errorf("a signature counter gone back = %d %s, want refused", v.status, v.raw)
			}
			if n := e.auditCount(deadbolt.AuditWebAuthnCloned, nil); n != 1 {
				t.Errorf("webauthn.clone_suspected events = %d, want 1", n)
			}
		})

		t.Run("an authenticator model the policy refuses", func(t *testing.T) {
			model := deadbolt.AAGUIDString(auth.Aaguid[:])
			e.setPolicy(func(p *deadbolt.Policy) { p.WebAuthnAAGUIDDeny = []string{model} })
			auth.Credentials[0].Counter = 15
			r := signIn(t)
			if v := verify(r.str("challenge_token"), assertion(t, r.body["webauthn"], rp, auth, auth.Credentials[0])); v.status != 401 {
				t.Errorf("a denied authenticator's passkey = %d %s, want refused", v.status, v.raw)
			}
			// Only another model allowed: refused too; then any again.
			e.setPolicy(func(p *deadbolt.Policy) {
				p.WebAuthnAAGUIDDeny, p.WebAuthnAAGUIDAllow = nil, []string{"cb69481e-8ff7-4039-93ec-0a2729a154a8"}
			})
			auth.Credentials[0].Counter = 16
			r = signIn(t)
			if v := verify(r.str("challenge_token"), assertion(t, r.body["webauthn"], rp, auth, auth.Credentials[0])); v.status != 401 {
				t.Errorf("a passkey of a model not on the allow-list = %d %s, want refused", v.status, v.raw)
			}
			e.setPolicy(func(p *deadbolt.Policy) { p.WebAuthnAAGUIDAllow = nil })
		})

		t.Run("a server where passkeys cannot work", func(t *testing.T) {
			// The env's first server has no host name: the password still
			// works, and the other methods are offered.
			r := base.signIn(email, pw, "Deadbolt-Device", e.devices[email])
			methods, _ := r.body["methods"].([]any)
			if r.status != 200 || r.str("status") != "second_factor_required" || slices.Contains(methods, any("webauthn")) || len(methods) == 0 {
				t.Errorf("sign-in where passkeys cannot work = %d %s, want the other methods", r.status, r.raw)
			}
		})

		t.Run("new options for a challenge", func(t *testing.T) {
			r := signIn(t)
			s := e.req("POST", "/api/v1/signin/send", "", map[string]any{"challenge_token": r.str("challenge_token"), "method": "webauthn"})
			if s.status != 200 || s.body["options"] == nil {
				t.Fatalf("send webauthn = %d %s, want new options", s.status, s.raw)
			}
			auth.Credentials[0].Counter = 20
			if v := verify(r.str("challenge_token"), assertion(t, s.body["options"], rp, auth, auth.Credentials[0])); v.status != 200 {
				t.Errorf("verify with the new options = %d %s", v.status, v.raw)
			}
		})
	})
}

// sessionAt is session for another account's sign-in.
func (e *env) sessionAt(slug, email, pw string) string {
	e.t.Helper()
	e.settle()
	before := len(e.inbox.to(email))
	r := e.req("POST", "/api/v1/accounts/"+slug+"/signin", "", map[string]string{"email": email, "password": pw})
	if r.status == 200 && r.str("status") == "device_verification_required" {
		code := e.inbox.waitCode(e.t, email, before+1)
		r = e.verify(r.str("challenge_token"), "email", code, false)
	}
	if r.status != 200 || r.str("status") != "signed_in" {
		e.t.Fatalf("sign in %s at %s = %d %s", email, slug, r.status, r.raw)
	}
	return r.str("session_token")
}

func TestPasskeyPasswordless(t *testing.T) {
	eachDB(t, func(t *testing.T, base *env) {
		e, rp := base.withPasskeys()
		const email, pw = "agent@acme.example", "an agent's long passphrase"
		agent := e.user(email, deadbolt.RoleAgent, pw)
		tok := e.session(email, pw)
		auth := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserHandle: []byte(agent.ID)})
		cred := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)
		if conf := e.registerPasskey(tok, rp, &auth, cred); conf.status != 200 {
			t.Fatalf("register = %d %s", conf.status, conf.raw)
		}
		begin := func(t *testing.T) response {
			t.Helper()
			r := e.req("POST", "/api/v1/accounts/acme/signin/passkey", "", map[string]any{})
			if r.status != 200 || r.str("challenge_token") == "" || r.body["options"] == nil {
				t.Fatalf("begin passwordless = %d %s", r.status, r.raw)
			}
			if b, _ := json.Marshal(r.body["options"]); strings.Contains(string(b), "allowCredentials") {
				t.Errorf("passwordless options name credentials (%s): they must let the authenticator choose", b)
			}
			return r
		}
		verify := func(ch string, credential json.RawMessage) response {
			return e.req("POST", "/api/v1/signin/verify", "", map[string]any{"challenge_token": ch, "method": "webauthn", "credential": credential})
		}

		t.Run("with user verification: signed in", func(t *testing.T) {
			r := begin(t)
			a := assertion(t, r.body["options"], rp, auth, auth.Credentials[0])
			v := verify(r.str("challenge_token"), a)
			if v.status != 200 || v.str("status") != "signed_in" {
				t.Fatalf("passwordless = %d %s", v.status, v.raw)
			}
			me := e.req("GET", "/api/v1/me", v.str("session_token"), nil)
			if me.status != 200 || !strings.Contains(me.raw, email) {
				t.Errorf("the passwordless session's /me = %d %s", me.status, me.raw)
			}
			// The same answer again: its ceremony was used.
			if v := verify(r.str("challenge_token"), a); v.status != 410 && v.status != 401 {
				t.Errorf("a replayed passwordless answer = %d %s, want refused", v.status, v.raw)
			}
		})

		t.Run("without user verification: the password is still asked", func(t *testing.T) {
			noUV := auth
			noUV.Options.UserNotVerified = true
			noUV.Credentials[0].Counter = 5
			r := begin(t)
			v := verify(r.str("challenge_token"), assertion(t, r.body["options"], rp, noUV, noUV.Credentials[0]))
			if v.status != 401 || !strings.Contains(v.raw, "sign in with your password") {
				t.Errorf("passwordless without user verification = %d %s, want the password asked", v.status, v.raw)
			}
		})

		t.Run("no way around single sign-on", func(t *testing.T) {
			e.setPolicy(func(p *deadbolt.Policy) { p.RequireSSOTeamMembers = true })
			defer e.setPolicy(func(p *deadbolt.Policy) { p.RequireSSOTeamMembers = false })
			auth.Credentials[0].Counter = 30
			r := begin(t)
			if v := verify(r.str("challenge_token"), assertion(t, r.body["options"], rp, auth, auth.Credentials[0])); v.status != 403 || v.errCode() != "sso_required" {
				t.Errorf("an agent's passkey under require_sso_team_members = %d %s, want sso_required", v.status, v.raw)
			}
		})

		t.Run("an unknown credential", func(t *testing.T) {
			other := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserHandle: []byte(agent.ID)})
			oc := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)
			other.AddCredential(oc)
			r := begin(t)
			if v := verify(r.str("challenge_token"), assertion(t, r.body["options"], rp, other, oc)); v.status != 401 || v.errCode() != "invalid_credentials" {
				t.Errorf("an unknown credential = %d %s, want invalid_credentials", v.status, v.raw)
			}
		})
	})
}
