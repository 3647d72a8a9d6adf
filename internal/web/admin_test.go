package web_test

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
)

// acme is the base path of the test account's admin routes.
const acme = "/api/v1/accounts/acme"

// apiDefaultPolicy is the default policy exactly as API.md shows it.
const apiDefaultPolicy = `{"require_2fa_team_members": false, "require_2fa_end_users": false, "grace_period_days": 0,
	"allowed_methods": ["totp", "sms", "email"], "strong_methods_only": false,
	"remember_device_days": {"owner": 30, "admin": 30, "agent": 30, "end_user": 30},
	"session_idle_minutes": 60, "session_max_hours": 12, "sms_blocked_countries": [],
	"password_api_access": false, "new_device_notices": true, "require_2fa_sso_users": false, "require_sso_team_members": false,
	"webauthn_aaguid_allow": [], "webauthn_aaguid_deny": []}`

// betaPassword is the password of the owner of the second account.
const betaPassword = "the beta owner's long passphrase"

// ownerTOTP signs the owner in, sets up an authenticator app on that
// session and proves it again, so the session holds a fresh second factor
// (step-up).
func (e *env) ownerTOTP() (tok, secretB32 string) {
	e.t.Helper()
	tok = e.session(e.owner.Email, ownerPassword)
	return tok, e.enrolTOTPStepUp(tok)
}

// putPolicy replaces the account's policy through the API.
func (e *env) putPolicy(tok string, body any) response {
	e.t.Helper()
	return e.req("PUT", acme+"/policy", tok, body)
}

// basic sends a request with HTTP Basic credentials.
func (e *env) basic(method, path, user, pass string, body any) response {
	e.t.Helper()
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return e.req(method, path, "", body, "Authorization", "Basic "+cred)
}

// totpSignIn signs a user with an authenticator app in with the next
// step's code (the clock moves on a step first, so no code is replayed).
func (e *env) totpSignIn(email, pw, secretB32 string, remember bool, headers ...string) response {
	e.t.Helper()
	e.clock.Advance(30 * time.Second)
	ch := e.challenge(email, pw, headers...)
	r := e.verify(ch, "totp", oathtool(e.t, secretB32, e.clock.Now()), remember)
	if r.status != 200 || r.str("status") != "signed_in" {
		e.t.Fatalf("TOTP sign-in of %s = %d %s, want signed_in", email, r.status, r.raw)
	}
	return r
}

// waitMail waits (on arrivals, never by sleeping blindly) for an email to
// addr whose subject contains subject, and returns it.
func (e *env) waitMail(addr, subject string) received {
	e.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, m := range e.inbox.to(addr) {
			if strings.Contains(strings.ToLower(m.Subject), strings.ToLower(subject)) {
				return m
			}
		}
		e.worker.Kick()
		select {
		case <-e.inbox.arrived:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			e.t.Fatalf("no email to %s about %q within 10 s; got %+v", addr, subject, e.inbox.to(addr))
		}
	}
}

// createBeta makes a second account, "beta", with its owner (password
// betaPassword, no 2FA).
func (e *env) createBeta() (*deadbolt.Account, *deadbolt.User) {
	e.t.Helper()
	h, _ := e.hasher.Hash(betaPassword)
	policy := deadbolt.DefaultPolicy()
	policy.PasswordAPIAccess = true // the tests reach it by HTTP Basic
	acc := &deadbolt.Account{Slug: "beta", Name: "Beta Works", Policy: policy}
	owner := &deadbolt.User{Email: "owner@beta.example", Name: "Bea Beta", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword, PasswordHash: h}
	if err := e.db.CreateAccount(context.Background(), acc, owner); err != nil {
		e.t.Fatal(err)
	}
	return acc, owner
}

// storedAPIToken gives a user an API token straight in the store, for
// tests of another account that has no session of its own here.
func (e *env) storedAPIToken(u *deadbolt.User) (token, id string) {
	e.t.Helper()
	token = secret.NewToken(signin.PrefixAPIToken)
	t := &deadbolt.APIToken{AccountID: u.AccountID, UserID: u.ID, Description: "stored", TokenHash: e.keys.Hash(token)}
	if err := e.db.CreateAPIToken(context.Background(), t); err != nil {
		e.t.Fatal(err)
	}
	return token, t.ID
}

// newAPIToken makes an API token with the bearer's credentials.
func (e *env) newAPIToken(base, tok, description string, headers ...string) (token, id string) {
	e.t.Helper()
	r := e.req("POST", base+"/api-tokens", tok, map[string]string{"description": description}, headers...)
	if r.status != 201 || !strings.HasPrefix(r.str("token"), "dbt_") {
		e.t.Fatalf("POST api-tokens = %d %s, want 201 with a dbt_ token", r.status, r.raw)
	}
	return r.str("token"), r.str("id")
}

// policyMap decodes a policy as JSON into a map, for comparison with
// an answer's body.
func policyMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// methodsAsSet sorts a policy's allowed_methods: a set, whose order the
// service may normalise.
func methodsAsSet(m map[string]any) map[string]any {
	if l, ok := m["allowed_methods"].([]any); ok {
		l = slices.Clone(l)
		slices.SortFunc(l, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		m["allowed_methods"] = l
	}
	return m
}

// userOf returns the "user" object of an admin answer.
func userOf(r response) map[string]any {
	u, _ := r.body["user"].(map[string]any)
	return u
}

// twoFactorOf returns the two_factor summary of a user object.
func twoFactorOf(u map[string]any) map[string]any {
	tf, _ := u["two_factor"].(map[string]any)
	return tf
}

// listOf returns the objects of the list under key.
func listOf(r response, key string) []map[string]any {
	var out []map[string]any
	for _, v := range r.body[key].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

// emailsOf returns the emails of a {"users": [...]} answer, in order.
func emailsOf(r response) []string {
	var out []string
	for _, u := range listOf(r, "users") {
		out = append(out, u["email"].(string))
	}
	return out
}

// parseTS parses an RFC 3339 time of an answer.
func parseTS(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time %v is not RFC 3339: %v", v, err)
	}
	return at
}

func TestAdminPolicy(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const agentPW, endPW = "agent of the policy test", "end user of the policy test"
		e.user("agent@acme.example", deadbolt.RoleAgent, agentPW)
		e.user("end@acme.example", deadbolt.RoleEndUser, endPW)
		tok := e.session(e.owner.Email, ownerPassword)

		defaults := policyMap(t, apiDefaultPolicy)
		r := e.req("GET", acme+"/policy", tok, nil)
		if r.status != 200 || !reflect.DeepEqual(r.body, defaults) {
			t.Errorf("GET policy = %d %s, want the defaults of API.md %s", r.status, r.raw, apiDefaultPolicy)
		}

		// A body with an unknown field or a wrong type is refused, naming
		// the field, and changes nothing.
		for _, c := range []struct{ name, body, field string }{
			{"unknown field", `{"require_2fa_team_members": true, "require_2fa_everyone": true}`, "require_2fa_everyone"},
			{"string for a number", `{"grace_period_days": "three"}`, "grace_period_days"},
			{"string for a bool", `{"require_2fa_end_users": "yes"}`, "require_2fa_end_users"},
			{"string for a list", `{"allowed_methods": "totp"}`, "allowed_methods"},
			{"grace too long", `{"grace_period_days": 91}`, "grace_period_days"},
			{"unknown method", `{"allowed_methods": ["carrier-pigeon"]}`, "allowed_methods"},
			{"unknown role", `{"remember_device_days": {"guest": 1}}`, "remember_device_days"},
			{"bad country", `{"sms_blocked_countries": ["IND"]}`, "sms_blocked_countries"},
		} {
			r := e.putPolicy(tok, c.body)
			if r.status != 400 || r.errCode() != "invalid_request" || r.errField("field") != c.field {
				t.Errorf("PUT policy with %s = %d %s, want 400 invalid_request naming %q", c.name, r.status, r.raw, c.field)
			}
		}
		if r := e.req("GET", acme+"/policy", tok, nil); !reflect.DeepEqual(r.body, defaults) {
			t.Errorf("policy after refused PUTs = %s, want the defaults", r.raw)
		}

		// Requiring 2FA for the team needs the caller to have it.
		r = e.putPolicy(tok, map[string]any{"require_2fa_team_members": true})
		want(t, "requiring 2FA for the team by an owner without 2FA", r, 409, "conflict")
		if msg, _ := r.errField("message").(string); !strings.Contains(msg, "two-factor") {
			t.Errorf("409 message = %q, want it to say the caller needs two-factor authentication first", msg)
		}

		// Some settings off their defaults, so that the next PUT shows that
		// what it leaves out goes back to the default.
		r = e.putPolicy(tok, map[string]any{"grace_period_days": 7, "session_idle_minutes": 30,
			"sms_blocked_countries": []string{"in"}, "remember_device_days": map[string]int{"agent": 0}})
		if r.status != 200 || r.body["grace_period_days"] != float64(7) || fmt.Sprint(r.body["sms_blocked_countries"]) != "[IN]" ||
			fmt.Sprint(r.body["remember_device_days"]) != "map[admin:30 agent:0 end_user:30 owner:30]" {
			t.Fatalf("PUT policy = %d %s, want 200 with grace 7, [IN] and agents' remember days 0, the other roles 30", r.status, r.raw)
		}

		e.enrolTOTPStepUp(tok)
		r = e.putPolicy(tok, map[string]any{"require_2fa_team_members": true})
		wantPolicy := policyMap(t, apiDefaultPolicy)
		wantPolicy["require_2fa_team_members"] = true
		since, _ := r.body["team_members_required_since"].(string)
		delete(r.body, "team_members_required_since")
		if r.status != 200 || !reflect.DeepEqual(methodsAsSet(r.body), methodsAsSet(wantPolicy)) {
			t.Errorf("PUT {require_2fa_team_members: true} = %d %s, want 200 and every other field at its default %v", r.status, r.raw, wantPolicy)
		}
		if at, err := time.Parse(time.RFC3339, since); err != nil || e.clock.Now().Sub(at) > time.Minute {
			t.Errorf("team_members_required_since = %q, want about now", since)
		}
		got := e.req("GET", acme+"/policy", tok, nil)
		delete(got.body, "team_members_required_since")
		if !reflect.DeepEqual(methodsAsSet(got.body), wantPolicy) {
			t.Errorf("GET policy after the PUT = %s, want %v", got.raw, wantPolicy)
		}

		// An agent without 2FA must set it up before any session exists.
		_, conf := e.enrolTOTP(e.enrolment("agent@acme.example", agentPW))
		agentTok := conf.str("session_token")
		if conf.str("status") != "signed_in" || !strings.HasPrefix(agentTok, "dbs_") {
			t.Fatalf("confirming the first factor of an enrolment = %s, want signed_in with a session", conf.raw)
		}
		if me := e.req("GET", "/api/v1/me", agentTok, nil); me.status != 200 || me.body["two_factor"].(map[string]any)["enabled"] != true {
			t.Errorf("GET /me of the enrolled agent = %d %s, want 2FA enabled", me.status, me.raw)
		}

		// End users are untouched by the team's requirement...
		if r := e.signIn("end@acme.example", endPW); r.status != 200 || r.str("status") != "signed_in" {
			t.Errorf("end user with team 2FA required = %d %s, want signed_in", r.status, r.raw)
		}
		// ...until it is required of them too.
		r = e.putPolicy(tok, map[string]any{"require_2fa_team_members": true, "require_2fa_end_users": true})
		if r.status != 200 || r.body["require_2fa_end_users"] != true || r.body["end_users_required_since"] == nil {
			t.Fatalf("PUT requiring 2FA of end users = %d %s", r.status, r.raw)
		}
		r = e.signIn("end@acme.example", endPW)
		if r.status != 200 || r.str("status") != "enrollment_required" {
			t.Errorf("end user with 2FA required of end users = %d %s, want enrollment_required", r.status, r.raw)
		} else if m := fmt.Sprint(r.body["methods"]); m != "[totp email]" {
			t.Errorf("end user's enrolment methods = %s, want [totp email] (never SMS for end users)", m)
		}

		// PUT is step-up: 16 minutes after the second factor, even on a
		// session kept alive, it asks for a fresh proof. Reading does not.
		e.clock.Advance(16 * time.Minute)
		if me := e.req("GET", "/api/v1/me", tok, nil); me.status != 200 {
			t.Fatalf("owner's session after 16 minutes = %d %s, want alive", me.status, me.raw)
		}
		want(t, "PUT policy 16 minutes after the second factor", e.putPolicy(tok, map[string]any{"require_2fa_team_members": true}), 403, "reauthentication_required")
		if r := e.req("GET", acme+"/policy", tok, nil); r.status != 200 || r.body["require_2fa_end_users"] != true {
			t.Errorf("GET policy on the same session = %d %s, want 200 and the policy unchanged", r.status, r.raw)
		}
		// The change is audited.
		a := e.req("GET", acme+"/audit?type=policy.changed", tok, nil)
		if a.status != 200 || len(listOf(a, "events")) != 3 {
			t.Errorf("policy.changed events = %d %s, want the 3 PUTs that changed the policy", a.status, a.raw)
		}
	})
}

// TestAdminPolicyNullBody: the body of a PUT must be a JSON object (API.md,
// conventions); "null" is none, and taking it for "{}" would reset the
// whole policy to its defaults, switching the 2FA requirement off.
func TestAdminPolicyNullBody(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		tok, _ := e.ownerTOTP()
		if r := e.putPolicy(tok, map[string]any{"require_2fa_team_members": true}); r.status != 200 {
			t.Fatalf("PUT policy = %d %s", r.status, r.raw)
		}
		want(t, "PUT policy with the body null", e.putPolicy(tok, "null"), 400, "invalid_request")
		if r := e.req("GET", acme+"/policy", tok, nil); r.body["require_2fa_team_members"] != true {
			t.Errorf("policy after PUT null = %s, want 2FA still required of the team", r.raw)
		}
	})
}

func TestAdminGracePeriod(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, agent = "grace period agent phrase", "grace@acme.example"
		e.user(agent, deadbolt.RoleAgent, pw)
		id := userID(e, agent)
		// A first sign-in through 2-step verification: the agent's device
		// is recognised from then on.
		e.sessionDevice(agent, pw)
		device := []string{"Deadbolt-Device", e.devices[agent]}

		tok, _ := e.ownerTOTP()
		// The requirement's date is the service's: a client's is ignored
		// (a date in the past would cut the grace period short).
		r := e.putPolicy(tok, map[string]any{"require_2fa_team_members": true, "grace_period_days": 3,
			"team_members_required_since": "2020-01-01T00:00:00Z"})
		if r.status != 200 || r.body["grace_period_days"] != float64(3) {
			t.Fatalf("PUT policy with a grace period = %d %s", r.status, r.raw)
		}
		since := parseTS(t, r.body["team_members_required_since"])
		if since.Sub(e.clock.Now()).Abs() > time.Minute {
			t.Errorf("team_members_required_since = %s, want now (%s), whatever the client sent", since, e.clock.Now())
		}
		due := since.Add(3 * 24 * time.Hour).UTC().Format(time.RFC3339)

		r = e.signIn(agent, pw, device...)
		if r.status != 200 || r.str("status") != "signed_in" || r.str("session_token") == "" {
			t.Fatalf("agent without 2FA in the grace period = %d %s, want signed_in", r.status, r.raw)
		}
		if r.str("two_factor_setup_due") != due || !strings.Contains(r.str("warning"), "two-factor") {
			t.Errorf("grace sign-in = %s, want two_factor_setup_due %s and a warning", r.raw, due)
		}
		u := e.req("GET", acme+"/users/"+id, tok, nil)
		if tf := twoFactorOf(userOf(u)); u.status != 200 || tf["required"] != true || tf["grace_deadline"] != due || tf["enabled"] != false {
			t.Errorf("admin's view of the agent = %d %s, want required, not enabled, grace_deadline %s", u.status, u.raw, due)
		}

		// Past the deadline, the agent must set 2FA up.
		e.clock.Advance(4 * 24 * time.Hour)
		r = e.signIn(agent, pw, device...)
		if r.status != 200 || r.str("status") != "enrollment_required" {
			t.Errorf("agent without 2FA after the grace period = %d %s, want enrollment_required", r.status, r.raw)
		}

		// A team member added later gets the grace period from their
		// creation, not from when the requirement was switched on.
		const late = "late@acme.example"
		e.user(late, deadbolt.RoleAgent, pw)
		created := e.clock.Now()
		r = e.signIn(late, pw)
		if r.status == 200 && r.str("status") == "device_verification_required" {
			v := e.verify(r.str("challenge_token"), "email", e.inbox.waitCode(t, late, 1), false)
			r = e.signIn(late, pw, "Deadbolt-Device", v.str("device_token"))
		}
		if r.status != 200 || r.str("status") != "signed_in" {
			t.Fatalf("agent added after the requirement = %d %s, want signed_in in their grace period", r.status, r.raw)
		}
		if got := parseTS(t, r.body["two_factor_setup_due"]); got.Sub(created.Add(3*24*time.Hour)).Abs() > time.Minute {
			t.Errorf("late agent's two_factor_setup_due = %s, want 3 days after their creation %s", got, created)
		}
	})
}

// TestAdminGracePeriodNewDevice: a team member in the grace period has no
// second factor, so a sign-in from a device Deadbolt does not recognise
// still needs 2-step verification (internal/signin/twostep.go,
// needsDeviceVerification). Requiring 2FA must not make the sign-in weaker
// than not requiring it.
func TestAdminGracePeriodNewDevice(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, agent = "grace period new device", "newdev@acme.example"
		e.user(agent, deadbolt.RoleAgent, pw)
		// Without the requirement: 2-step verification from a new device.
		if r := e.signIn(agent, pw); r.str("status") != "device_verification_required" {
			t.Fatalf("agent without 2FA from a new device = %s, want device_verification_required", r.raw)
		}
		tok, _ := e.ownerTOTP()
		if r := e.putPolicy(tok, map[string]any{"require_2fa_team_members": true, "grace_period_days": 3}); r.status != 200 {
			t.Fatalf("PUT policy = %d %s", r.status, r.raw)
		}
		// With the requirement and a grace period: the same.
		if r := e.signIn(agent, pw); r.status != 200 || r.str("status") != "device_verification_required" {
			t.Errorf("agent in the grace period from a new device = %d %s, want device_verification_required (a password alone from an unknown device)", r.status, r.raw)
		}
	})
}

func TestAdminRememberDeviceDaysZero(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, agent = "never remember this agent", "forget@acme.example"
		secretB32, _ := e.withTOTP(agent, pw)
		// Under the default policy, the device is remembered.
		r := e.totpSignIn(agent, pw, secretB32, true)
		device := r.str("device_token")
		if !strings.HasPrefix(device, "dbd_") {
			t.Fatalf("verify with remember_device under the default policy = %s, want a device token", r.raw)
		}
		if r := e.signIn(agent, pw, "Deadbolt-Device", device); r.str("status") != "signed_in" {
			t.Fatalf("sign-in from the remembered device = %s, want signed_in", r.raw)
		}
		// An admin with TOTP, to see other roles keep their 30 days.
		const adminPW, admin = "an admin who is remembered", "kept@acme.example"
		e.user(admin, deadbolt.RoleAdmin, adminPW)
		adminSecret, _ := e.enrolTOTP(e.session(admin, adminPW))

		tok := e.session(e.owner.Email, ownerPassword)
		r = e.putPolicy(tok, map[string]any{"remember_device_days": map[string]int{"agent": 0}})
		if r.status != 200 || fmt.Sprint(r.body["remember_device_days"]) != "map[admin:30 agent:0 end_user:30 owner:30]" {
			t.Fatalf("PUT remember_device_days {agent: 0} = %d %s, want agents 0 and the other roles 30", r.status, r.raw)
		}

		// The device remembered before asks again at once...
		r = e.totpSignIn(agent, pw, secretB32, true, "Deadbolt-Device", device)
		if d, ok := r.body["device_token"]; ok {
			t.Errorf("agent verified with remember_device under 0 days: device_token %v, want none", d)
		}
		// ...and keeps asking.
		e.challenge(agent, pw, "Deadbolt-Device", device)
		e.challenge(agent, pw)

		r = e.totpSignIn(admin, adminPW, adminSecret, true)
		if !strings.HasPrefix(r.str("device_token"), "dbd_") {
			t.Errorf("admin verified with remember_device = %s, want a device token (admins keep 30 days)", r.raw)
		}
	})
}

func TestAdminRecoveryCode(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, agent = "locked out agent phrase", "locked@acme.example"
		secretB32, _ := e.withTOTP(agent, pw)
		id := userID(e, agent)
		old := e.totpSignIn(agent, pw, secretB32, false).str("session_token")

		tok, ownerSecret := e.ownerTOTP()
		e.settle()
		r := e.req("POST", acme+"/users/"+id+"/recovery-code", tok, nil)
		code := r.str("recovery_code")
		if r.status != 201 || code == "" {
			t.Fatalf("POST recovery-code = %d %s, want 201 with a code", r.status, r.raw)
		}
		if exp := parseTS(t, r.body["expires_at"]); exp.Sub(e.clock.Now().Add(24*time.Hour)).Abs() > time.Minute {
			t.Errorf("expires_at = %s, want 24 hours from now (%s)", exp, e.clock.Now())
		}
		notice := e.waitMail(agent, "recovery code")
		if strings.Contains(notice.Text, code) || !strings.Contains(notice.Text, "Olive Owner") {
			t.Errorf("notice to the agent = %q, want who made the code, and never the code itself", notice.Text)
		}

		// The agent signs in with it: in, told so, 2FA reset, others out.
		ch := e.challenge(agent, pw)
		r = e.verify(ch, "recovery_code", code, true)
		if r.status != 200 || r.str("status") != "signed_in" || r.body["admin_recovery"] != true {
			t.Fatalf("sign-in with the admin's code = %d %s, want signed_in with admin_recovery true", r.status, r.raw)
		}
		if d, ok := r.body["device_token"]; ok {
			t.Errorf("admin recovery sign-in gave device_token %v, want none (devices are forgotten)", d)
		}
		fresh := r.str("session_token")
		want(t, "the agent's session from before the admin recovery", e.req("GET", "/api/v1/me", old, nil), 401, "unauthorized")
		me := e.req("GET", "/api/v1/me", fresh, nil)
		if me.status != 200 || me.body["two_factor"].(map[string]any)["enabled"] != false {
			t.Errorf("GET /me after admin recovery = %d %s, want 2FA reset (enabled false)", me.status, me.raw)
		}
		u := e.req("GET", acme+"/users/"+id, tok, nil)
		if tf := twoFactorOf(userOf(u)); tf["enabled"] != false || tf["recovery_codes_left"] != float64(0) || tf["remembered_devices"] != float64(0) {
			t.Errorf("admin's view after admin recovery = %s, want no factor, no codes, no remembered device", u.raw)
		}

		// They set 2FA up again; the admin's code is spent.
		secret2, _ := e.enrolTOTP(fresh)
		e.clock.Advance(30 * time.Second)
		ch = e.challenge(agent, pw)
		want(t, "the admin's code a second time", e.verify(ch, "recovery_code", code, false), 401, "invalid_code")

		// A second code, used after 25 hours, has expired.
		r = e.req("POST", acme+"/users/"+id+"/recovery-code", tok, nil)
		second := r.str("recovery_code")
		if r.status != 201 || second == "" || second == code {
			t.Fatalf("second POST recovery-code = %d %s, want a new code", r.status, r.raw)
		}
		e.clock.Advance(25 * time.Hour)
		ch = e.challenge(agent, pw)
		want(t, "an admin's code 25 hours later", e.verify(ch, "recovery_code", second, false), 401, "invalid_code")
		// The failed attempts reset nothing: the new app still works.
		e.totpSignIn(agent, pw, secret2, false)

		// What cannot have a code: an SSO user, a user of another
		// account, a user that does not exist.
		sso := &deadbolt.User{AccountID: e.acc.ID, Email: "sso@acme.example", Name: "Sam SSO", Role: deadbolt.RoleAgent, AuthSource: deadbolt.AuthSSO}
		if err := e.db.CreateUser(t.Context(), sso); err != nil {
			t.Fatal(err)
		}
		_, betaOwner := e.createBeta()
		// The earlier session ended after 12 hours.
		tok = e.totpSignIn(e.owner.Email, ownerPassword, ownerSecret, false).str("session_token")
		want(t, "a recovery code for an SSO user", e.req("POST", acme+"/users/"+sso.ID+"/recovery-code", tok, nil), 409, "conflict")
		want(t, "a recovery code for another account's user", e.req("POST", acme+"/users/"+betaOwner.ID+"/recovery-code", tok, nil), 404, "not_found")
		want(t, "a recovery code for nobody", e.req("POST", acme+"/users/nobody/recovery-code", tok, nil), 404, "not_found")

		a := e.req("GET", acme+"/audit?type=recovery_code.admin_generated&user_id="+id, tok, nil)
		if a.status != 200 || len(listOf(a, "events")) != 2 {
			t.Errorf("recovery_code.admin_generated events for the agent = %s, want 2", a.raw)
		}
	})
}

func TestAdminResetFactors(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, agent = "reset my factors phrase", "reset@acme.example"
		secretB32, _ := e.withTOTP(agent, pw)
		id := userID(e, agent)
		r := e.totpSignIn(agent, pw, secretB32, true)
		live, device := r.str("session_token"), r.str("device_token")

		tok, _ := e.ownerTOTP()
		u := e.req("GET", acme+"/users/"+id, tok, nil)
		if tf := twoFactorOf(userOf(u)); tf["enabled"] != true || tf["remembered_devices"] != float64(1) || tf["recovery_codes_left"] != float64(10) {
			t.Fatalf("agent before the reset = %s, want 2FA on, one remembered device, 10 codes", u.raw)
		}
		e.settle()
		r = e.req("DELETE", acme+"/users/"+id+"/factors", tok, nil)
		if r.status != 204 {
			t.Fatalf("DELETE factors = %d %s, want 204", r.status, r.raw)
		}
		want(t, "the agent's live session after the reset", e.req("GET", "/api/v1/me", live, nil), 401, "unauthorized")
		u = e.req("GET", acme+"/users/"+id, tok, nil)
		tf := twoFactorOf(userOf(u))
		if u.status != 200 || tf["enabled"] != false || tf["state"] != "disabled" || fmt.Sprint(tf["methods"]) != "[]" ||
			tf["recovery_codes_left"] != float64(0) || tf["remembered_devices"] != float64(0) || tf["last_admin_action_at"] == nil {
			t.Errorf("agent after the reset = %d %s, want no factor, no code, no remembered device, and the admin's action dated", u.status, u.raw)
		}
		notice := e.waitMail(agent, "reset")
		if !strings.Contains(notice.Text, "Olive Owner") {
			t.Errorf("reset notice = %q, want who reset it", notice.Text)
		}

		// The remembered device is forgotten: without 2FA, it is a new
		// device for 2-step verification.
		if r := e.signIn(agent, pw, "Deadbolt-Device", device); r.str("status") != "device_verification_required" {
			t.Errorf("sign-in with the device remembered before the reset = %s, want device_verification_required", r.raw)
		}
		// With 2FA required, they set it up at the next sign-in.
		if r := e.putPolicy(tok, map[string]any{"require_2fa_team_members": true}); r.status != 200 {
			t.Fatalf("PUT policy = %d %s", r.status, r.raw)
		}
		// The reset forgot the device: 2-step verification before enrolment,
		// so whoever holds only the password cannot bind their authenticator.
		if r := e.signIn(agent, pw, "Deadbolt-Device", device); r.str("status") != "device_verification_required" {
			t.Errorf("sign-in after the reset with 2FA required = %s, want device_verification_required before enrolment", r.raw)
		}

		a := e.req("GET", acme+"/audit?type=two_factor.reset", tok, nil)
		ev := listOf(a, "events")
		if len(ev) != 1 || ev[0]["subject_id"] != id || ev[0]["actor_id"] != e.owner.ID {
			t.Errorf("two_factor.reset events = %s, want one, by the owner, of the agent", a.raw)
		}
	})
}

func TestAdminStepUp(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, agent = "the step-up target agent", "target@acme.example"
		e.user(agent, deadbolt.RoleAgent, pw)
		id := userID(e, agent)
		tok, secretB32 := e.ownerTOTP()
		apiTok, _ := e.newAPIToken(acme, tok, "step-up")

		e.clock.Advance(16 * time.Minute)
		if me := e.req("GET", "/api/v1/me", tok, nil); me.status != 200 {
			t.Fatalf("owner's session after 16 minutes = %d %s", me.status, me.raw)
		}
		actions := []struct {
			name, method, path string
			body               any
			status             int
		}{
			{"admin recovery code", "POST", acme + "/users/" + id + "/recovery-code", nil, 201},
			{"2FA reset", "DELETE", acme + "/users/" + id + "/factors", nil, 204},
			{"policy", "PUT", acme + "/policy", map[string]any{}, 200},
		}
		for _, a := range actions {
			want(t, a.name+" on a session 16 minutes after its second factor", e.req(a.method, a.path, tok, a.body), 403, "reauthentication_required")
			// An API token is itself the fresh credential.
			if r := e.req(a.method, a.path, apiTok, a.body); r.status != a.status {
				t.Errorf("%s with an API token = %d %s, want %d", a.name, r.status, r.raw, a.status)
			}
		}
		// A fresh second factor on the session lets it through again.
		e.clock.Advance(30 * time.Second)
		r := e.req("POST", "/api/v1/me/step-up", tok, map[string]string{"method": "totp", "code": oathtool(t, secretB32, e.clock.Now())})
		if r.status != 200 {
			t.Fatalf("step-up = %d %s", r.status, r.raw)
		}
		for _, a := range actions {
			if r := e.req(a.method, a.path, tok, a.body); r.status != a.status {
				t.Errorf("%s after a step-up = %d %s, want %d", a.name, r.status, r.raw, a.status)
			}
		}
	})
}

func TestAdminRolesAndTenancy(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const agentPW, adminPW = "an agent with no admin rights", "an admin who is not the owner"
		agent := e.user("agent@acme.example", deadbolt.RoleAgent, agentPW)
		admin := e.user("admin@acme.example", deadbolt.RoleAdmin, adminPW)

		// An agent is no admin, by session or by password.
		agentTok := e.session(agent.Email, agentPW)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", acme + "/users", nil},
			{"GET", acme + "/users/" + agent.ID, nil},
			{"POST", acme + "/users", map[string]string{"email": "x@acme.example", "name": "X", "role": "agent"}},
			{"GET", acme + "/policy", nil},
			{"PUT", acme + "/policy", map[string]any{}},
			{"GET", acme + "/reports/two-factor", nil},
			{"POST", acme + "/reports/two-factor/email", nil},
			{"GET", acme + "/audit", nil},
			{"GET", acme + "/api-tokens", nil},
			{"POST", acme + "/api-tokens", map[string]string{"description": "mine"}},
			{"DELETE", acme + "/users/" + e.owner.ID + "/factors", nil},
		} {
			want(t, "an agent's session on "+c.method+" "+c.path, e.req(c.method, c.path, agentTok, c.body), 403, "forbidden")
		}
		want(t, "an agent by HTTP Basic password, password access off", e.basic("GET", acme+"/users", agent.Email, agentPW, nil), 401, "password_api_auth_disabled")
		e.setPolicy(func(p *deadbolt.Policy) { p.PasswordAPIAccess = true })
		want(t, "an agent by HTTP Basic password", e.basic("GET", acme+"/users", agent.Email, agentPW, nil), 403, "forbidden")
		want(t, "no credentials", e.req("GET", acme+"/users", "", nil), 401, "unauthorized")

		// Another account's routes, or a slug that does not exist, answer
		// 404 as if it did not exist.
		_, betaOwner := e.createBeta()
		tok := e.session(e.owner.Email, ownerPassword)
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/accounts/beta/users"},
			{"GET", "/api/v1/accounts/beta/users/" + betaOwner.ID},
			{"DELETE", "/api/v1/accounts/beta/users/" + betaOwner.ID},
			{"GET", "/api/v1/accounts/beta/policy"},
			{"GET", "/api/v1/accounts/beta/reports/two-factor"},
			{"GET", "/api/v1/accounts/beta/audit"},
			{"GET", "/api/v1/accounts/beta/api-tokens"},
			{"GET", "/api/v1/accounts/nope/users"},
			{"GET", "/api/v1/accounts/nope/policy"},
		} {
			want(t, "acme's owner on "+c.method+" "+c.path, e.req(c.method, c.path, tok, nil), 404, "account_not_found")
		}
		// Another account's user through one's own account: not found.
		want(t, "GET another account's user", e.req("GET", acme+"/users/"+betaOwner.ID, tok, nil), 404, "not_found")
		if r := e.req("GET", acme+"/users", tok, nil); slices.Contains(emailsOf(r), betaOwner.Email) {
			t.Errorf("acme's users = %v, include beta's owner", emailsOf(r))
		}
		want(t, "PATCH another account's user", e.req("PATCH", acme+"/users/"+betaOwner.ID, tok, map[string]string{"name": "Mallory"}), 404, "not_found")
		want(t, "DELETE another account's user", e.req("DELETE", acme+"/users/"+betaOwner.ID, tok, nil), 404, "not_found")
		if r := e.basic("GET", "/api/v1/accounts/beta/users/"+betaOwner.ID, betaOwner.Email, betaPassword, nil); r.status != 200 || userOf(r)["name"] != "Bea Beta" {
			t.Errorf("beta's owner after acme's attempts = %d %s, want unchanged", r.status, r.raw)
		}

		// An admin cannot touch the owner, nor make owners.
		adminTok := e.session(admin.Email, adminPW)
		want(t, "an admin demoting the owner", e.req("PATCH", acme+"/users/"+e.owner.ID, adminTok, map[string]string{"role": "agent"}), 403, "forbidden")
		want(t, "an admin renaming the owner", e.req("PATCH", acme+"/users/"+e.owner.ID, adminTok, map[string]string{"name": "Mallory"}), 403, "forbidden")
		want(t, "an admin deleting the owner", e.req("DELETE", acme+"/users/"+e.owner.ID, adminTok, nil), 403, "forbidden")
		want(t, "an admin resetting the owner's 2FA", e.req("DELETE", acme+"/users/"+e.owner.ID+"/factors", adminTok, nil), 403, "forbidden")
		want(t, "an admin making a recovery code for the owner", e.req("POST", acme+"/users/"+e.owner.ID+"/recovery-code", adminTok, nil), 403, "forbidden")
		want(t, "an admin creating an owner", e.req("POST", acme+"/users", adminTok,
			map[string]string{"email": "boss@acme.example", "name": "New Boss", "role": "owner"}), 403, "forbidden")
		want(t, "an admin promoting an agent to owner", e.req("PATCH", acme+"/users/"+agent.ID, adminTok, map[string]string{"role": "owner"}), 403, "forbidden")
		want(t, "an admin deleting themselves", e.req("DELETE", acme+"/users/"+admin.ID, adminTok, nil), 409, "conflict")
		want(t, "the owner deleting themselves", e.req("DELETE", acme+"/users/"+e.owner.ID, tok, nil), 409, "conflict")
		want(t, "the only owner demoting themselves", e.req("PATCH", acme+"/users/"+e.owner.ID, tok, map[string]string{"role": "admin"}), 409, "conflict")
		if r := e.req("GET", acme+"/users/"+e.owner.ID, tok, nil); userOf(r)["role"] != "owner" || userOf(r)["name"] != "Olive Owner" {
			t.Errorf("owner after the refused changes = %s, want unchanged", r.raw)
		}

		// Creating users: duplicates and bad fields.
		for _, c := range []struct {
			name   string
			body   any
			status int
			code   string
			field  string
		}{
			{"a duplicate email", map[string]string{"email": "agent@acme.example", "name": "Twin", "role": "agent"}, 409, "conflict", ""},
			{"a duplicate email in capitals", map[string]string{"email": "AGENT@Acme.Example", "name": "Twin", "role": "agent"}, 409, "conflict", ""},
			{"a bad email", map[string]string{"email": "not an email", "name": "X", "role": "agent"}, 400, "invalid_request", "email"},
			{"no email", map[string]string{"name": "X", "role": "agent"}, 400, "invalid_request", "email"},
			{"a bad role", map[string]string{"email": "x@acme.example", "name": "X", "role": "superuser"}, 400, "invalid_request", "role"},
			{"no role", map[string]string{"email": "x@acme.example", "name": "X"}, 400, "invalid_request", "role"},
			{"no name", map[string]string{"email": "x@acme.example", "role": "agent"}, 400, "invalid_request", "name"},
			{"a bad auth source", map[string]string{"email": "x@acme.example", "name": "X", "role": "agent", "auth_source": "ldap"}, 400, "invalid_request", "auth_source"},
			{"a short password", map[string]string{"email": "x@acme.example", "name": "X", "role": "agent", "password": "short"}, 400, "invalid_request", "password"},
			{"an SSO user with a password", map[string]string{"email": "x@acme.example", "name": "X", "role": "agent", "auth_source": "sso",
				"password": "plum orchard ladder seventeen"}, 400, "invalid_request", "password"},
			{"an unknown field", map[string]string{"email": "x@acme.example", "name": "X", "role": "agent", "team": "blue"}, 400, "invalid_request", "team"},
			{"a number for a name", map[string]any{"email": "x@acme.example", "name": 7, "role": "agent"}, 400, "invalid_request", "name"},
		} {
			r := e.req("POST", acme+"/users", tok, c.body)
			if r.status != c.status || r.errCode() != c.code || (c.field != "" && r.errField("field") != c.field) {
				t.Errorf("POST users with %s = %d %s, want %d %s naming %q", c.name, r.status, r.raw, c.status, c.code, c.field)
			}
		}
		if r := e.req("GET", acme+"/users", tok, nil); len(listOf(r, "users")) != 3 {
			t.Errorf("users after the refused creations = %v, want the owner, the admin and the agent", emailsOf(r))
		}

		// An enrolment challenge is no admin session.
		e.setPolicy(func(p *deadbolt.Policy) { p.Require2FATeamMembers = true })
		want(t, "an enrolment challenge on an admin route", e.req("GET", acme+"/users", e.enrolment(admin.Email, adminPW), nil), 401, "unauthorized")
	})
}

func TestAdminUsers(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "plum orchard ladder seventeen"
		tok := e.session(e.owner.Email, ownerPassword)
		r := e.req("POST", acme+"/users", tok, map[string]string{"email": "Nina@Acme.Example", "name": "Nina Novak", "role": "agent", "password": pw})
		u := userOf(r)
		if r.status != 201 || u == nil {
			t.Fatalf("POST users = %d %s, want 201 with the user", r.status, r.raw)
		}
		id, _ := u["id"].(string)
		tf := twoFactorOf(u)
		if id == "" || u["email"] != "nina@acme.example" || u["name"] != "Nina Novak" || u["role"] != "agent" || u["auth_source"] != "password" ||
			tf == nil || tf["enabled"] != false || tf["state"] != "disabled" || tf["required"] != false {
			t.Errorf("created user = %s, want nina@acme.example, an agent with a password and a two_factor summary (disabled)", r.raw)
		}
		// The password works.
		ninaTok := e.session("nina@acme.example", pw)

		for _, c := range []struct {
			query string
			in    bool
		}{
			{"role=agent&two_factor=disabled", true},
			{"role=agent", true},
			{"role=admin,agent", true},
			{"", true},
			{"role=admin", false},
			{"two_factor=enabled", false},
			{"role=agent&two_factor=sso", false},
		} {
			r := e.req("GET", acme+"/users?"+c.query, tok, nil)
			if r.status != 200 || slices.Contains(emailsOf(r), "nina@acme.example") != c.in {
				t.Errorf("GET users?%s = %d %v, want nina listed: %v", c.query, r.status, r.raw, c.in)
			}
		}
		want(t, "GET users with a bad role", e.req("GET", acme+"/users?role=boss", tok, nil), 400, "invalid_request")
		want(t, "GET users with a bad two_factor", e.req("GET", acme+"/users?two_factor=maybe", tok, nil), 400, "invalid_request")

		r = e.req("PATCH", acme+"/users/"+id, tok, map[string]string{"name": "Nina N. Novak", "role": "admin"})
		if u := userOf(r); r.status != 200 || u["name"] != "Nina N. Novak" || u["role"] != "admin" || u["email"] != "nina@acme.example" {
			t.Errorf("PATCH name and role = %d %s, want Nina N. Novak, admin", r.status, r.raw)
		}
		r = e.req("GET", acme+"/users/"+id, tok, nil)
		if u := userOf(r); r.status != 200 || u["name"] != "Nina N. Novak" || u["role"] != "admin" {
			t.Errorf("GET user after PATCH = %d %s", r.status, r.raw)
		}
		r = e.req("PATCH", acme+"/users/"+id, tok, map[string]string{"phone": "+12025550143"})
		if p, _ := userOf(r)["phone"].(string); r.status != 200 || p == "" || strings.Contains(p, "5550143") {
			t.Errorf("PATCH phone = %d %s, want the phone, masked", r.status, r.raw)
		}
		want(t, "PATCH a bad phone", e.req("PATCH", acme+"/users/"+id, tok, map[string]string{"phone": "12345"}), 400, "invalid_phone")
		want(t, "PATCH a bad role", e.req("PATCH", acme+"/users/"+id, tok, map[string]string{"role": "boss"}), 400, "invalid_request")
		want(t, "PATCH nobody", e.req("PATCH", acme+"/users/nobody", tok, map[string]string{"name": "X"}), 404, "not_found")
		r = e.req("PATCH", acme+"/users/"+id, tok, map[string]string{"name": "  "})
		if r.status != 400 || r.errCode() != "invalid_request" || r.errField("field") != "name" {
			t.Errorf("PATCH a blank name = %d %s, want 400 invalid_request naming name", r.status, r.raw)
		}

		// Nina, made admin, administers; demoted, her session loses it at once.
		if r := e.req("GET", acme+"/users", ninaTok, nil); r.status != 200 {
			t.Errorf("GET users by the promoted admin = %d %s, want 200", r.status, r.raw)
		}
		if r := e.req("PATCH", acme+"/users/"+id, tok, map[string]string{"role": "agent"}); r.status != 200 || userOf(r)["role"] != "agent" {
			t.Fatalf("PATCH role agent = %d %s", r.status, r.raw)
		}
		want(t, "GET users by the demoted admin's session", e.req("GET", acme+"/users", ninaTok, nil), 403, "forbidden")

		r = e.req("DELETE", acme+"/users/"+id, tok, nil)
		if r.status != 204 {
			t.Fatalf("DELETE user = %d %s, want 204", r.status, r.raw)
		}
		want(t, "GET the deleted user", e.req("GET", acme+"/users/"+id, tok, nil), 404, "not_found")
		want(t, "DELETE the deleted user", e.req("DELETE", acme+"/users/"+id, tok, nil), 404, "not_found")
		want(t, "the deleted user's session", e.req("GET", "/api/v1/me", ninaTok, nil), 401, "unauthorized")
		want(t, "the deleted user signs in", e.signIn("nina@acme.example", pw), 401, "invalid_credentials")

		a := e.req("GET", acme+"/audit?user_id="+id, tok, nil)
		var types []string
		for _, ev := range listOf(a, "events") {
			if ev["actor_id"] == e.owner.ID {
				types = append(types, ev["type"].(string))
			}
		}
		for _, typ := range []string{"user.created", "user.updated", "user.deleted"} {
			if !slices.Contains(types, typ) {
				t.Errorf("owner's events on the user = %v, want %s among them", types, typ)
			}
		}
	})
}

func TestAdminReport(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, phone = "report population phrase", "+12025550143"
		tok, _ := e.ownerTOTP()
		apiTok, _ := e.newAPIToken(acme, tok, "reports")

		// An agent with TOTP and SMS, one with nothing, one through SSO, an
		// end user, and admins whose names are hard on a CSV.
		e.user("both@acme.example", deadbolt.RoleAgent, pw)
		bothTok := e.session("both@acme.example", pw)
		e.enrolTOTPStepUp(bothTok)
		e.enrolPasscode(bothTok, "sms", phone, phone)
		e.user("none@acme.example", deadbolt.RoleAgent, pw)
		sso := &deadbolt.User{AccountID: e.acc.ID, Email: "sso@acme.example", Name: "Sam SSO", Role: deadbolt.RoleAgent, AuthSource: deadbolt.AuthSSO}
		if err := e.db.CreateUser(t.Context(), sso); err != nil {
			t.Fatal(err)
		}
		e.user("end@acme.example", deadbolt.RoleEndUser, pw)
		const commaName, formulaName = `Smith, Jo "JJ"`, `=HYPERLINK("http://evil.example","click")`
		for _, u := range []map[string]string{
			{"email": "comma@acme.example", "name": commaName, "role": "admin"},
			{"email": "formula@acme.example", "name": formulaName, "role": "admin"},
			{"email": "-dash@acme.example", "name": "Dash Admin", "role": "admin"},
		} {
			if r := e.req("POST", acme+"/users", tok, u); r.status != 201 {
				t.Fatalf("POST users %v = %d %s", u, r.status, r.raw)
			}
		}

		// CSV.
		readCSV := func(what string, r response) map[string]map[string]string {
			t.Helper()
			if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
				t.Fatalf("%s = %d %s %q, want 200 text/csv", what, r.status, r.header.Get("Content-Type"), r.raw)
			}
			records, err := csv.NewReader(strings.NewReader(r.raw)).ReadAll()
			if err != nil {
				t.Fatalf("%s is not CSV: %v\n%s", what, err, r.raw)
			}
			const header = "name,email,role,auth_source,two_factor,required,grace_deadline,methods,default_method,last_second_factor_at,recovery_codes_left,remembered_devices,last_admin_action_at"
			if got := strings.Join(records[0], ","); got != header {
				t.Fatalf("%s header = %q, want %q", what, got, header)
			}
			rows := map[string]map[string]string{}
			for _, rec := range records[1:] {
				row := map[string]string{}
				for i, col := range records[0] {
					row[col] = rec[i]
				}
				rows[row["email"]] = row
			}
			if len(rows) != len(records)-1 {
				t.Errorf("%s has %d rows for %d emails", what, len(records)-1, len(rows))
			}
			return rows
		}
		rows := readCSV("CSV report", e.reqHeaders("GET", acme+"/reports/two-factor", tok, "", "Accept", "text/csv"))
		var emails []string
		for email := range rows {
			emails = append(emails, email)
		}
		slices.Sort(emails)
		wantTeam := []string{"'-dash@acme.example", "both@acme.example", "comma@acme.example", "formula@acme.example", "none@acme.example", "owner@acme.example", "sso@acme.example"}
		if !slices.Equal(emails, wantTeam) {
			t.Errorf("CSV report rows = %v, want the owner, admins and agents %v (no end user)", emails, wantTeam)
		}
		for _, c := range []struct {
			email string
			want  map[string]string
		}{
			{"owner@acme.example", map[string]string{"name": "Olive Owner", "role": "owner", "auth_source": "password", "two_factor": "enabled",
				"required": "false", "methods": "totp (strong)", "default_method": "totp", "recovery_codes_left": "10", "grace_deadline": ""}},
			{"both@acme.example", map[string]string{"role": "agent", "two_factor": "enabled", "default_method": "totp", "recovery_codes_left": "10"}},
			{"none@acme.example", map[string]string{"two_factor": "disabled", "methods": "", "default_method": "", "recovery_codes_left": "0",
				"last_second_factor_at": "", "remembered_devices": "0"}},
			{"sso@acme.example", map[string]string{"name": "Sam SSO", "auth_source": "sso", "two_factor": "sso", "required": "false"}},
			{"comma@acme.example", map[string]string{"name": commaName, "role": "admin", "two_factor": "disabled"}},
			{"formula@acme.example", map[string]string{"name": "'" + formulaName}},
			{"'-dash@acme.example", map[string]string{"name": "Dash Admin"}},
		} {
			row := rows[c.email]
			for col, v := range c.want {
				if row[col] != v {
					t.Errorf("CSV %s %s = %q, want %q", c.email, col, row[col], v)
				}
			}
		}
		if m := rows["both@acme.example"]["methods"]; !strings.Contains(m, "totp (strong)") || !strings.Contains(m, "sms (restricted)") {
			t.Errorf("CSV methods of the agent with TOTP and SMS = %q, want totp (strong) and sms (restricted)", m)
		}
		if at := rows["owner@acme.example"]["last_second_factor_at"]; at == "" {
			t.Errorf("owner's last_second_factor_at is empty, want the time of their TOTP use")
		}

		// Everyone, end users too.
		all := readCSV("CSV report of all users", e.reqHeaders("GET", acme+"/reports/two-factor?users=all", tok, "", "Accept", "text/csv"))
		if row, ok := all["end@acme.example"]; len(all) != 8 || !ok || row["role"] != "end_user" || row["two_factor"] != "disabled" {
			t.Errorf("CSV report of all users: %d rows, end user %v; want 8 rows with the end user", len(all), row)
		}
		want(t, "the report with users=bogus", e.req("GET", acme+"/reports/two-factor?users=bogus", tok, nil), 400, "invalid_request")

		// JSON without Accept.
		r := e.req("GET", acme+"/reports/two-factor", tok, nil)
		for _, h := range []response{r, e.reqHeaders("GET", acme+"/reports/two-factor", tok, "", "Accept", "text/csv")} {
			if cc := h.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("report Cache-Control = %q, want no-store", cc)
			}
		}
		if r.status != 200 || len(listOf(r, "users")) != 7 {
			t.Fatalf("JSON report = %d %s, want {\"users\": [7 team members]}", r.status, r.raw)
		}
		for _, u := range listOf(r, "users") {
			if u["email"] == "comma@acme.example" && u["name"] != commaName {
				t.Errorf("JSON report name = %q, want %q as is", u["name"], commaName)
			}
			if u["email"] == "formula@acme.example" && u["name"] != formulaName {
				t.Errorf("JSON report name = %q, want %q as is (no CSV escaping in JSON)", u["name"], formulaName)
			}
			if twoFactorOf(u) == nil {
				t.Errorf("JSON report user %v without two_factor", u["email"])
			}
		}

		// Emailed: a link, then the report behind it for the account's admins.
		e.settle()
		r = e.req("POST", acme+"/reports/two-factor/email", tok, nil)
		reportID := r.str("report_id")
		if r.status != 202 || reportID == "" {
			t.Fatalf("POST reports/two-factor/email = %d %s, want 202 with a report_id", r.status, r.raw)
		}
		mail := e.waitMail(e.owner.Email, "report")
		if !strings.Contains(mail.Text, "/accounts/acme/reports/two-factor/"+reportID) {
			t.Errorf("report email = %q, want a link to /accounts/acme/reports/two-factor/%s", mail.Text, reportID)
		}
		r = e.req("GET", acme+"/reports/two-factor/"+reportID, tok, nil)
		if r.status != 200 || len(listOf(r, "users")) != 7 {
			t.Errorf("GET the emailed report = %d %s, want the 7 team members", r.status, r.raw)
		}
		readCSV("the emailed report as CSV", e.reqHeaders("GET", acme+"/reports/two-factor/"+reportID, tok, "", "Accept", "text/csv"))
		want(t, "a report id that does not exist", e.req("GET", acme+"/reports/two-factor/nope", tok, nil), 404, "not_found")
		// Any admin of the account may open it; an agent may not.
		otherAdmin := e.user("other-admin@acme.example", deadbolt.RoleAdmin, pw)
		if r := e.req("GET", acme+"/reports/two-factor/"+reportID, e.session("other-admin@acme.example", pw), nil); r.status != 200 {
			t.Errorf("another admin of the account opens the report = %d %s, want 200", r.status, r.raw)
		}
		want(t, "an agent opens the report", e.req("GET", acme+"/reports/two-factor/"+reportID, e.session("none@acme.example", pw), nil), 403, "forbidden")

		_, betaOwner := e.createBeta()
		betaTok, _ := e.storedAPIToken(betaOwner)
		want(t, "another account's admin opens the report through their account",
			e.req("GET", "/api/v1/accounts/beta/reports/two-factor/"+reportID, betaTok, nil), 404, "not_found")
		want(t, "another account's admin opens the report through acme",
			e.req("GET", acme+"/reports/two-factor/"+reportID, betaTok, nil), 404, "account_not_found")

		// After 24 hours the link is dead (the owner's session too, so the
		// API token asks).
		e.clock.Advance(24*time.Hour + time.Minute)
		want(t, "the emailed report after 24 hours", e.req("GET", acme+"/reports/two-factor/"+reportID, apiTok, nil), 404, "not_found")

		r = e.req("GET", acme+"/audit?type=report.exported", apiTok, nil)
		ev := listOf(r, "events")
		if r.status != 200 || len(ev) < 5 {
			t.Fatalf("report.exported events = %d %s, want one per export", r.status, r.raw)
		}
		formats := map[string]bool{}
		for _, x := range ev {
			d := x["details"].(map[string]any)
			formats[fmt.Sprint(d["format"])] = true
			if x["actor_id"] != e.owner.ID && x["actor_id"] != otherAdmin.ID {
				t.Errorf("report.exported event %v, want the admin who exported it as actor", x)
			}
		}
		if !formats["csv"] || !formats["json"] {
			t.Errorf("report.exported formats = %v, want csv and json", formats)
		}
		if r := e.req("GET", acme+"/audit?type=report.emailed", apiTok, nil); len(listOf(r, "events")) != 1 {
			t.Errorf("report.emailed events = %s, want 1", r.raw)
		}
	})
}

func TestAdminAudit(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		tok := e.session(e.owner.Email, ownerPassword)
		create := func(email string) string {
			r := e.req("POST", acme+"/users", tok, map[string]string{"email": email, "name": "Audited " + email, "role": "agent"})
			if r.status != 201 {
				t.Fatalf("POST users = %d %s", r.status, r.raw)
			}
			return userOf(r)["id"].(string)
		}
		first := create("first@acme.example")
		// An hour later (the session kept alive within its idle timeout).
		for range 2 {
			e.clock.Advance(30 * time.Minute)
			e.req("GET", "/api/v1/me", tok, nil)
		}
		since := e.clock.Now().UTC().Truncate(time.Second)
		e.clock.Advance(time.Second)
		second := create("second@acme.example")
		if r := e.req("PATCH", acme+"/users/"+second, tok, map[string]string{"name": "Renamed"}); r.status != 200 {
			t.Fatalf("PATCH = %d %s", r.status, r.raw)
		}
		// Let the delivery worker's own events land before reading.
		e.settle()

		events := func(query string) []map[string]any {
			t.Helper()
			r := e.req("GET", acme+"/audit"+query, tok, nil)
			if r.status != 200 {
				t.Fatalf("GET audit%s = %d %s", query, r.status, r.raw)
			}
			return listOf(r, "events")
		}
		all := events("")
		if len(all) < 4 {
			t.Fatalf("audit = %v, want at least the sign-in and the three user events", all)
		}
		for i := 1; i < len(all); i++ {
			prevID, _ := strconv.Atoi(all[i-1]["id"].(string))
			id, _ := strconv.Atoi(all[i]["id"].(string))
			if parseTS(t, all[i-1]["time"]).Before(parseTS(t, all[i]["time"])) || prevID <= id {
				t.Errorf("audit events %d and %d: %v then %v, want newest first", i-1, i, all[i-1], all[i])
			}
		}
		for _, ev := range all {
			for _, k := range []string{"id", "time", "type", "actor_id", "subject_id", "ip", "details"} {
				if _, ok := ev[k]; !ok {
					t.Errorf("audit event %v has no %q", ev, k)
				}
			}
		}

		created := events("?type=user.created")
		var subjects []string
		for _, ev := range created {
			if ev["type"] != "user.created" {
				t.Errorf("type=user.created gave %v", ev)
			}
			subjects = append(subjects, fmt.Sprint(ev["subject_id"]))
		}
		if !slices.Equal(subjects, []string{second, first}) {
			t.Errorf("user.created subjects = %v, want [%s %s] (newest first)", subjects, second, first)
		}

		var types []string
		for _, ev := range events("?user_id=" + second) {
			if ev["actor_id"] != second && ev["subject_id"] != second {
				t.Errorf("user_id=%s gave %v", second, ev)
			}
			types = append(types, ev["type"].(string))
		}
		if !slices.Equal(types, []string{"user.updated", "user.created"}) {
			t.Errorf("events of the second user = %v, want [user.updated user.created]", types)
		}

		q := url.Values{"since": {since.Format(time.RFC3339)}}
		for _, ev := range events("?" + q.Encode()) {
			if parseTS(t, ev["time"]).Before(since) {
				t.Errorf("since=%s gave %v", since.Format(time.RFC3339), ev)
			}
			if ev["subject_id"] == first {
				t.Errorf("since=%s gave the first user's creation, an hour before: %v", since.Format(time.RFC3339), ev)
			}
		}
		q.Set("type", "user.created")
		if got := events("?" + q.Encode()); len(got) != 1 || got[0]["subject_id"] != second {
			t.Errorf("since and type together = %v, want the second user's creation alone", got)
		}

		for _, n := range []int{1, 2} {
			got := events("?limit=" + strconv.Itoa(n))
			if len(got) != n || got[0]["id"] != all[0]["id"] {
				t.Errorf("limit=%d gave %d events starting %v, want %d starting with the newest", n, len(got), got, n)
			}
		}

		for _, c := range []struct{ query, field string }{
			{"since=yesterday", "since"},
			{"since=2026-03-02", "since"},
			{"limit=0", "limit"},
			{"limit=-1", "limit"},
			{"limit=abc", "limit"},
			{"limit=1001", "limit"},
		} {
			r := e.req("GET", acme+"/audit?"+c.query, tok, nil)
			if r.status != 400 || r.errCode() != "invalid_request" || r.errField("field") != c.field {
				t.Errorf("GET audit?%s = %d %s, want 400 invalid_request naming %s", c.query, r.status, r.raw, c.field)
			}
		}
	})
}

func TestAdminAPITokensAndBasic(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const adminPW = "an admin with an authenticator"
		admin := e.user("admin@acme.example", deadbolt.RoleAdmin, adminPW)
		tok := e.session(e.owner.Email, ownerPassword)

		r := e.req("POST", acme+"/api-tokens", tok, map[string]string{"description": "CI"})
		apiTok, tokID := r.str("token"), r.str("id")
		if r.status != 201 || !strings.HasPrefix(apiTok, "dbt_") || tokID == "" || r.str("description") != "CI" {
			t.Fatalf("POST api-tokens = %d %s, want 201 with id and a dbt_ token", r.status, r.raw)
		}
		r = e.req("GET", acme+"/api-tokens", tok, nil)
		list := listOf(r, "api_tokens")
		if r.status != 200 || len(list) != 1 || list[0]["id"] != tokID || list[0]["description"] != "CI" || list[0]["user_id"] != e.owner.ID {
			t.Errorf("GET api-tokens = %d %s, want the CI token of the owner", r.status, r.raw)
		}
		if _, shown := list[0]["token"]; shown || strings.Contains(r.raw, apiTok) {
			t.Errorf("GET api-tokens shows the token again: %s", r.raw)
		}
		if r := e.req("GET", acme+"/api-tokens/"+tokID, tok, nil); r.status != 200 || strings.Contains(r.raw, apiTok) {
			t.Errorf("GET api-tokens/{id} = %d %s, want 200 without the token", r.status, r.raw)
		}

		basicToken := func(email, token string) response {
			return e.basic("GET", acme+"/users", email+"/token", token, nil)
		}
		if r := e.req("GET", acme+"/users", apiTok, nil); r.status != 200 || len(listOf(r, "users")) != 2 {
			t.Errorf("Bearer API token on GET users = %d %s, want 200", r.status, r.raw)
		}
		if r := basicToken(e.owner.Email, apiTok); r.status != 200 {
			t.Errorf("Basic owner/token with the token = %d %s, want 200", r.status, r.raw)
		}
		want(t, "Basic with another admin's email and the owner's token", basicToken(admin.Email, apiTok), 401, "unauthorized")
		want(t, "Basic owner/token with a wrong token", basicToken(e.owner.Email, "dbt_wrong"), 401, "unauthorized")
		want(t, "Basic owner/token with no token", basicToken(e.owner.Email, ""), 401, "unauthorized")
		want(t, "Basic owner/token with a session token", basicToken(e.owner.Email, tok), 401, "unauthorized")
		if r := e.req("GET", acme+"/api-tokens/"+tokID, tok, nil); r.body["api_token"].(map[string]any)["last_used_at"] == nil {
			t.Errorf("token after use = %s, want last_used_at set", r.raw)
		}
		want(t, "an API token on /me", e.req("GET", "/api/v1/me", apiTok, nil), 401, "unauthorized")

		// The token acts as the owner.
		r = e.req("POST", acme+"/users", apiTok, map[string]string{"email": "bot-made@acme.example", "name": "Made By Bot", "role": "agent"})
		if r.status != 201 {
			t.Fatalf("POST users with the token = %d %s", r.status, r.raw)
		}
		ev := listOf(e.req("GET", acme+"/audit?type=user.created&limit=1", tok, nil), "events")
		if len(ev) != 1 || ev[0]["actor_id"] != e.owner.ID || ev[0]["details"].(map[string]any)["via"] != "api_token" {
			t.Errorf("user.created by the token = %v, want the owner as actor, via api_token", ev)
		}

		// Password access: off by default, refused before the password is
		// looked at; once the policy turns it on, allowed for a user without
		// 2FA in an account that does not require it; refused with 2FA.
		want(t, "Basic owner:password with password access off", e.basic("GET", acme+"/users", e.owner.Email, ownerPassword, nil), 401, "password_api_auth_disabled")
		want(t, "Basic owner:wrong password with password access off", e.basic("GET", acme+"/users", e.owner.Email, "not the password at all", nil), 401, "password_api_auth_disabled")
		e.setPolicy(func(p *deadbolt.Policy) { p.PasswordAPIAccess = true })
		if r := e.basic("GET", acme+"/users", e.owner.Email, ownerPassword, nil); r.status != 200 {
			t.Errorf("Basic owner:password, no 2FA anywhere = %d %s, want 200", r.status, r.raw)
		}
		want(t, "Basic owner with a wrong password", e.basic("GET", acme+"/users", e.owner.Email, "not the password at all", nil), 401, "unauthorized")
		adminTok := e.session(admin.Email, adminPW)
		e.enrolTOTPStepUp(adminTok)
		r = e.basic("GET", acme+"/users", admin.Email, adminPW, nil)
		want(t, "Basic admin:password for an admin with 2FA", r, 401, "password_api_auth_disabled")
		if msg, _ := r.errField("message").(string); !strings.Contains(msg, "API token") {
			t.Errorf("password_api_auth_disabled message = %q, want it to point to API tokens", msg)
		}

		// The account requires 2FA of the team: the owner, without 2FA, is
		// refused too; tokens keep working.
		if r := e.putPolicy(adminTok, map[string]any{"require_2fa_team_members": true}); r.status != 200 {
			t.Fatalf("PUT policy by the admin with 2FA = %d %s", r.status, r.raw)
		}
		want(t, "Basic owner:password with 2FA required", e.basic("GET", acme+"/users", e.owner.Email, ownerPassword, nil), 401, "password_api_auth_disabled")
		if r := e.req("GET", acme+"/users", apiTok, nil); r.status != 200 {
			t.Errorf("Bearer token with 2FA required = %d %s, want 200", r.status, r.raw)
		}
		if r := basicToken(e.owner.Email, apiTok); r.status != 200 {
			t.Errorf("Basic owner/token with 2FA required = %d %s, want 200", r.status, r.raw)
		}
		refused := map[string]int{}
		for _, ev := range listOf(e.req("GET", acme+"/audit?type=api_auth.refused", apiTok, nil), "events") {
			refused[ev["details"].(map[string]any)["cause"].(string)]++
		}
		if refused["two_factor"] != 1 || refused["password_api_access_off"] != 3 {
			t.Errorf("api_auth.refused causes = %v, want 1 two_factor and 3 password_api_access_off", refused)
		}

		// Revoked, the token is dead.
		if r := e.req("DELETE", acme+"/api-tokens/"+tokID, tok, nil); r.status != 204 {
			t.Fatalf("DELETE api-tokens/{id} = %d %s, want 204", r.status, r.raw)
		}
		want(t, "the revoked token", e.req("GET", acme+"/users", apiTok, nil), 401, "unauthorized")
		want(t, "the revoked token by Basic", basicToken(e.owner.Email, apiTok), 401, "unauthorized")
		want(t, "DELETE the revoked token again", e.req("DELETE", acme+"/api-tokens/"+tokID, tok, nil), 404, "not_found")
		if r := e.req("GET", acme+"/api-tokens", tok, nil); len(listOf(r, "api_tokens")) != 0 {
			t.Errorf("GET api-tokens after revocation = %s, want none", r.raw)
		}

		// A token of one account is no key to another.
		other, _ := e.newAPIToken(acme, tok, "acme only")
		_, betaOwner := e.createBeta()
		for _, path := range []string{"/users", "/users/" + betaOwner.ID, "/policy", "/audit", "/api-tokens"} {
			want(t, "acme's token on beta's "+path, e.req("GET", "/api/v1/accounts/beta"+path, other, nil), 404, "account_not_found")
		}
		want(t, "acme's token by Basic on beta", e.basic("GET", "/api/v1/accounts/beta/users", e.owner.Email+"/token", other, nil), 404, "account_not_found")
		// Nor can one account see or revoke another's tokens.
		// No API token is made over password access, even where it is on.
		want(t, "POST api-tokens over Basic password", e.basic("POST", "/api/v1/accounts/beta/api-tokens", betaOwner.Email, betaPassword,
			map[string]string{"description": "phished"}), 403, "forbidden")
		betaTok, betaTokID := e.storedAPIToken(betaOwner)
		want(t, "acme GETs beta's token", e.req("GET", acme+"/api-tokens/"+betaTokID, other, nil), 404, "not_found")
		want(t, "acme DELETEs beta's token", e.req("DELETE", acme+"/api-tokens/"+betaTokID, other, nil), 404, "not_found")
		if r := e.req("GET", "/api/v1/accounts/beta/users", betaTok, nil); r.status != 200 {
			t.Errorf("beta's token after acme's attempt = %d %s, want it still working", r.status, r.raw)
		}
		for _, ev := range listOf(e.req("GET", acme+"/audit?type=api_token.created", other, nil), "events") {
			if ev["details"].(map[string]any)["token_id"] == betaTokID {
				t.Errorf("acme's audit shows beta's event %v", ev)
			}
		}

		// A token is worth what its admin is: demoted, 403; removed, 401.
		adminAPITok, _ := e.newAPIToken(acme, adminTok, "admin's")
		if r := e.req("PATCH", acme+"/users/"+admin.ID, other, map[string]string{"role": "agent"}); r.status != 200 {
			t.Fatalf("PATCH admin to agent = %d %s", r.status, r.raw)
		}
		want(t, "the token of a demoted admin", e.req("GET", acme+"/users", adminAPITok, nil), 403, "forbidden")
		if r := e.req("DELETE", acme+"/users/"+admin.ID, other, nil); r.status != 204 {
			t.Fatalf("DELETE admin = %d %s", r.status, r.raw)
		}
		want(t, "the token of a removed admin", e.req("GET", acme+"/users", adminAPITok, nil), 401, "unauthorized")
	})
}
