package web_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

// The attacks of the security review, each performed against the running
// service on SQLite and PostgreSQL, and shown to fail.

// parallel sends n requests at once and returns their answers.
func parallel(n int, fn func(i int) response) []response {
	out := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// tally counts answers by status and error code ("200", "401 invalid_code").
func tally(rs []response) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		k := fmt.Sprint(r.status)
		if c := r.errCode(); c != "" {
			k += " " + c
		}
		m[k]++
	}
	return m
}

// auditCount counts the account's events of a type whose details match.
func (e *env) auditCount(typ string, details map[string]string) int {
	e.t.Helper()
	evs, err := e.db.FindEvents(context.Background(), e.acc.ID, deadbolt.AuditFilter{Type: typ, Limit: deadbolt.MaxAuditLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
next:
	for _, ev := range evs {
		for k, v := range details {
			if ev.Details[k] != v {
				continue next
			}
		}
		n++
	}
	return n
}

// Defect 1: a session that proved no second factor (a password on a
// remembered device, or one whose proofs are stale) adds its own
// authenticator and then uses it as step-up proof.
func TestAttackStepUpByEnrolment(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "victim of a stolen laptop"
		const vic = "vic@acme.example"
		secret, _ := e.withTOTP(vic, pw)
		// A remembered device: the next password sign-in proves no factor.
		device := e.totpSignIn(vic, pw, secret, true).str("device_token")
		if device == "" {
			t.Fatal("no device token after a remembered sign-in")
		}
		// A legitimate pending factor, left half set up.
		fresh := e.totpSignIn(vic, pw, secret, false).str("session_token")
		pending := e.req("POST", "/api/v1/me/factors", fresh, map[string]string{"kind": "email"})
		if pending.status != 201 {
			t.Fatalf("enrolling on a fresh second-factor session = %d %s, want 201", pending.status, pending.raw)
		}
		pendingID := pending.body["factor"].(map[string]any)["id"].(string)

		stolen := e.signIn(vic, pw, "Deadbolt-Device", device)
		if stolen.str("status") != "signed_in" {
			t.Fatalf("password on the remembered device = %s, want signed_in", stolen.raw)
		}
		tok := stolen.str("session_token")
		for _, kind := range []map[string]string{{"kind": "totp"}, {"kind": "email"}, {"kind": "sms", "phone": "+12025550143"}} {
			want(t, "the stolen session adds a "+kind["kind"]+" factor", e.req("POST", "/api/v1/me/factors", tok, kind), 403, "reauthentication_required")
		}
		want(t, "the stolen session confirms a pending factor", e.req("POST", "/api/v1/me/factors/"+pendingID+"/confirm", tok,
			map[string]string{"code": "123456"}), 403, "reauthentication_required")
		want(t, "the stolen session regenerates recovery codes", e.req("POST", "/api/v1/me/recovery-codes", tok, nil), 403, "reauthentication_required")
		factors := listOf(e.req("GET", "/api/v1/me/factors", tok, nil), "factors")
		var totpID string
		for _, f := range factors {
			if f["kind"] == "totp" {
				totpID = f["id"].(string)
			}
		}
		want(t, "the stolen session removes the app", e.req("DELETE", "/api/v1/me/factors/"+totpID, tok, nil), 403, "reauthentication_required")

		// A user without a factor: a password proven more than 15 minutes
		// ago is no proof for adding one.
		e.user("nofactor@acme.example", deadbolt.RoleAgent, pw+" too")
		old := e.session("nofactor@acme.example", pw+" too")
		e.clock.Advance(16 * time.Minute)
		want(t, "a stale session adds a factor", e.req("POST", "/api/v1/me/factors", old, map[string]string{"kind": "totp"}), 403, "reauthentication_required")

		// The owner, whose proof is fresh, sets up an app; the factor just
		// confirmed is no step-up proof for what follows.
		owner := e.session(e.owner.Email, ownerPassword)
		ownerSecret, _ := e.enrolTOTP(owner)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/v1/me/recovery-codes", nil},
			{"POST", acme + "/api-tokens", map[string]string{"description": "persistence"}},
			{"PUT", acme + "/policy", map[string]any{}},
			{"DELETE", acme + "/users/" + userID(e, vic) + "/factors", nil},
			{"POST", acme + "/users/" + userID(e, vic) + "/recovery-code", nil},
			{"POST", "/api/v1/me/factors", map[string]string{"kind": "email"}},
		} {
			want(t, "right after enrolling: "+c.method+" "+c.path, e.req(c.method, c.path, owner, c.body), 403, "reauthentication_required")
		}
		// A code of the app, proven again, is.
		e.stepUpTOTP(owner, ownerSecret)
		if r := e.req("POST", "/api/v1/me/recovery-codes", owner, nil); r.status != 200 {
			t.Errorf("recovery codes after a real step-up = %d %s, want 200", r.status, r.raw)
		}
	})
}

// Defect 1, second half: every change to how an account is protected is
// emailed to its user, over SMTP, and audited.
func TestSecurityNotices(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "notice me when things change"
		const ann = "ann@acme.example"
		e.user(ann, deadbolt.RoleAdmin, pw)
		tok := e.session(ann, pw)
		secret := e.enrolTOTPStepUp(tok)
		added := e.waitMail(ann, "sign-in method was added")
		if !strings.Contains(added.Text, "authenticator app") || !strings.Contains(added.Text, "127.0.0.1") ||
			!strings.Contains(added.Text, "/accounts/acme/security") {
			t.Errorf("factor-added notice = %q, want the method, the IP and a link to the security settings", added.Text)
		}
		e.enrolPasscode(tok, "email", "", ann)
		if r := e.req("POST", "/api/v1/me/recovery-codes", tok, nil); r.status != 200 {
			t.Fatalf("regenerate = %d %s", r.status, r.raw)
		}
		e.waitMail(ann, "new recovery codes")
		e.newAPIToken(acme, tok, "ci")
		e.waitMail(ann, "API token was created")
		var emailID string
		for _, f := range listOf(e.req("GET", "/api/v1/me/factors", tok, nil), "factors") {
			if f["kind"] == "email" {
				emailID = f["id"].(string)
			}
		}
		if r := e.req("DELETE", "/api/v1/me/factors/"+emailID, tok, nil); r.status != 204 {
			t.Fatalf("remove the email factor = %d %s", r.status, r.raw)
		}
		e.waitMail(ann, "sign-in method was removed")
		_ = secret
		if r := e.req("POST", "/api/v1/me/password", tok, map[string]string{"current_password": pw, "new_password": pw + " and more"}); r.status != 204 {
			t.Fatalf("change password = %d %s", r.status, r.raw)
		}
		changed := e.waitMail(ann, "password was changed")
		if !strings.Contains(changed.Text, "API tokens were revoked") {
			t.Errorf("password notice = %q, want it to say the tokens were revoked", changed.Text)
		}
		for _, kind := range []string{"factor_added", "factor_removed", "recovery_codes_regenerated", "api_token_created", "password_changed"} {
			if n := e.auditCount(deadbolt.AuditMessageQueued, map[string]string{"purpose": "notice", "notice": kind}); n == 0 {
				t.Errorf("no message.queued event for the %s notice", kind)
			}
		}
	})
}

// Defect 2: parallel guesses all read the counter before the first
// failure was counted. Now each is counted before it is checked: with a
// clock that does not move, exactly the free tries get through.
func TestAttackParallelGuesses(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		// 50 parallel wrong codes on one challenge of a TOTP user.
		const tpw = "totp user with a long password"
		secret, _ := e.withTOTP("tim@acme.example", tpw)
		ch := e.challenge("tim@acme.example", tpw)
		right := oathtool(t, secret, e.clock.Now())
		wrongCode := func(i int) string {
			for c := i; ; c++ {
				if s := fmt.Sprintf("%06d", c); s != right && s != oathtool(t, secret, e.clock.Now().Add(-30*time.Second)) &&
					s != oathtool(t, secret, e.clock.Now().Add(30*time.Second)) {
					return s
				}
			}
		}
		codes := make([]string, 50)
		for i := range codes {
			codes[i] = wrongCode(100000 + i*7)
		}
		got := tally(parallel(50, func(i int) response { return e.verify(ch, "totp", codes[i], false) }))
		if got["401 invalid_code"] != 5 || got["401 invalid_code"]+got["429 rate_limited"]+got["410 challenge_expired"] != 50 {
			t.Errorf("50 parallel wrong codes on one challenge = %v, want exactly 5 checked, the rest refused", got)
		}
		want(t, "the right code on the challenge the guesses killed", e.verify(ch, "totp", right, false), 410, "challenge_expired")
		if n := e.auditCount(deadbolt.AuditSignInFailed, map[string]string{"step": "second_factor", "cause": "wrong_code"}); n != 5 {
			t.Errorf("wrong_code events = %d, want 5", n)
		}

		const pw = "the right password for once"
		e.user("eve@acme.example", deadbolt.RoleEndUser, pw)
		rs := parallel(100, func(int) response { return e.signIn("eve@acme.example", "a wrong password guess") })
		got = tally(rs)
		if got["401 invalid_credentials"] != 5 || got["429 rate_limited"] != 95 {
			t.Errorf("100 parallel wrong passwords for one email = %v, want exactly 5 checked and 95 rate_limited", got)
		}
		for _, r := range rs {
			if r.status == 429 && r.header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After: %s", r.raw)
			}
		}
		if n := e.auditCount(deadbolt.AuditSignInFailed, map[string]string{"email": "eve@acme.example", "cause": "wrong_password"}); n != 5 {
			t.Errorf("wrong_password events = %d, want 5: the refused tries must not be checked", n)
		}

		// Spraying one wrong password over many emails from one address.
		got = tally(parallel(130, func(i int) response {
			return e.signIn(fmt.Sprintf("spray%03d@acme.example", i), "a wrong password guess")
		}))
		// The 5 tries above count against this address too.
		if got["401 invalid_credentials"] != 95 || got["429 rate_limited"] != 35 {
			t.Errorf("130 parallel wrong passwords from one IP = %v, want 95 checked (100 an hour) and 35 rate_limited", got)
		}

	})
}

// Defect 4: API tokens are the one credential that survived a password
// change, a 2FA reset and the end of every session.
func TestAttackTokensOutliveCredentials(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		owner, _ := e.ownerTOTP()
		const pw = "an admin who gets phished"
		e.user("adm@acme.example", deadbolt.RoleAdmin, pw)
		adm := e.session("adm@acme.example", pw)
		e.enrolTOTPStepUp(adm)
		tokA, idA := e.newAPIToken(acme, adm, "made by whoever was in")
		if r := e.req("GET", acme+"/users", tokA, nil); r.status != 200 {
			t.Fatalf("the token = %d %s", r.status, r.raw)
		}
		// The owner resets the admin's 2FA: the token dies with it.
		if r := e.req("DELETE", acme+"/users/"+userID(e, "adm@acme.example")+"/factors", owner, nil); r.status != 204 {
			t.Fatalf("reset = %d %s", r.status, r.raw)
		}
		want(t, "a token after its maker's 2FA reset", e.req("GET", acme+"/users", tokA, nil), 401, "unauthorized")
		if n := e.auditCount(deadbolt.AuditAPITokenRevoked, map[string]string{"token_id": idA, "reason": "two_factor_reset"}); n != 1 {
			t.Errorf("api_token.revoked events for the reset = %d, want 1", n)
		}

		// A password change ends the owner's tokens too.
		tokO, idO := e.newAPIToken(acme, owner, "owner's")
		if r := e.req("POST", "/api/v1/me/password", owner, map[string]string{"current_password": ownerPassword, "new_password": "fresh orchard ladder nineteen"}); r.status != 204 {
			t.Fatalf("password change = %d %s", r.status, r.raw)
		}
		want(t, "a token after its owner's password change", e.req("GET", acme+"/users", tokO, nil), 401, "unauthorized")
		if n := e.auditCount(deadbolt.AuditAPITokenRevoked, map[string]string{"token_id": idO, "reason": "password_changed"}); n != 1 {
			t.Errorf("api_token.revoked events for the password change = %d, want 1", n)
		}

		// Tokens can expire.
		r := e.req("POST", acme+"/api-tokens", owner, map[string]any{"description": "a day", "expires_in_days": 1})
		if r.status != 201 || r.str("expires_at") == "" {
			t.Fatalf("token with an expiry = %d %s, want 201 with expires_at", r.status, r.raw)
		}
		day := r.str("token")
		if r := e.req("GET", acme+"/users", day, nil); r.status != 200 {
			t.Errorf("the day's token at once = %d, want 200", r.status)
		}
		for _, days := range []int{-1, 100000} {
			r := e.req("POST", acme+"/api-tokens", owner, map[string]any{"description": "bad", "expires_in_days": days})
			if r.status != 400 || r.errField("field") != "expires_in_days" {
				t.Errorf("expires_in_days %d = %d %s, want 400 naming expires_in_days", days, r.status, r.raw)
			}
		}
		e.clock.Advance(25 * time.Hour)
		want(t, "the day's token after a day", e.req("GET", acme+"/users", day, nil), 401, "unauthorized")
	})
}

// Defect 5: another tenant enrolled the victim's number over and over and
// used up the number's hourly limit, so the victim got no sign-in codes.
func TestAttackSMSLimitAcrossTenants(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, phone = "my phone is my second factor", "+12025550143"
		e.user("vic@acme.example", deadbolt.RoleAgent, pw)
		vic := e.session("vic@acme.example", pw)
		e.enrolPasscode(vic, "sms", phone, phone)
		e.req("POST", "/api/v1/signout", vic, nil)

		// The attacker, owner of another account, enrols the number again and
		// again: each try texts it a code.
		e.createBeta()
		e.settle()
		before := len(e.inbox.to("owner@beta.example"))
		r := e.req("POST", "/api/v1/accounts/beta/signin", "", map[string]string{"email": "owner@beta.example", "password": betaPassword})
		r = e.verify(r.str("challenge_token"), "email", e.inbox.waitCode(t, "owner@beta.example", before+1), false)
		attacker := r.str("session_token")
		sent := 0
		for range 15 {
			if r := e.req("POST", "/api/v1/me/factors", attacker, map[string]string{"kind": "sms", "phone": phone}); r.status == 201 {
				sent++
			} else if r.status != 429 {
				t.Fatalf("attacker's enrolment = %d %s", r.status, r.raw)
			}
		}
		if sent > 10 {
			t.Errorf("the attacker texted the number %d times in an hour, want at most 10", sent)
		}
		// The victim still gets their sign-in code.
		e.settle()
		n := len(e.inbox.to(phone))
		r = e.signIn("vic@acme.example", pw, "Deadbolt-Device", e.devices["vic@acme.example"])
		if r.str("status") != "second_factor_required" || r.str("sent_to") == "" {
			t.Fatalf("the victim's sign-in after the attack = %s, want an SMS sent", r.raw)
		}
		if v := e.verify(r.str("challenge_token"), "sms", e.inbox.waitCode(t, phone, n+1), false); v.str("status") != "signed_in" {
			t.Errorf("the victim's code = %s, want signed_in", v.raw)
		}
	})
}

// Defect 7: NUL and control characters in free text were a 500 on
// PostgreSQL and stored as given on SQLite.
func TestAttackControlCharacters(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		owner, _ := e.ownerTOTP()
		e.user("target@acme.example", deadbolt.RoleAgent, "a name to keep as it is")
		id := userID(e, "target@acme.example")
		for _, c := range []struct {
			name, method, path string
			body               any
			field              string
		}{
			{"NUL in a new user's name", "POST", acme + "/users", map[string]string{"email": "n@acme.example", "name": "Eve\x00", "role": "agent"}, "name"},
			{"CRLF in a new user's name", "POST", acme + "/users", map[string]string{"email": "n@acme.example", "name": "Eve\r\nBcc: all@x.example", "role": "agent"}, "name"},
			{"a tab in a new user's name", "POST", acme + "/users", map[string]string{"email": "n@acme.example", "name": "Eve\tX", "role": "agent"}, "name"},
			{"a bidi override in a new user's name", "POST", acme + "/users", map[string]string{"email": "n@acme.example", "name": "Eve\u202eniamda", "role": "agent"}, "name"},
			{"NUL in an email", "POST", acme + "/users", map[string]string{"email": "n\x00@acme.example", "name": "Eve", "role": "agent"}, "email"},
			{"NUL in a renamed user", "PATCH", acme + "/users/" + id, map[string]string{"name": "Mallory\x00"}, "name"},
			{"LF in a renamed user", "PATCH", acme + "/users/" + id, map[string]string{"name": "Mallory\nAdmin"}, "name"},
			{"NUL in a token's description", "POST", acme + "/api-tokens", map[string]string{"description": "ci\x00"}, "description"},
			{"CR in a token's description", "POST", acme + "/api-tokens", map[string]string{"description": "ci\rnightly"}, "description"},
		} {
			r := e.req(c.method, c.path, owner, c.body)
			if r.status != 400 || r.errCode() != "invalid_request" || r.errField("field") != c.field {
				t.Errorf("%s = %d %s, want 400 invalid_request naming %q", c.name, r.status, r.raw, c.field)
			}
		}
		if u := userOf(e.req("GET", acme+"/users/"+id, owner, nil)); u["name"] == nil || strings.ContainsAny(u["name"].(string), "\x00\r\n") {
			t.Errorf("the user after the refused renames = %v", u)
		}
		if list := listOf(e.req("GET", acme+"/api-tokens", owner, nil), "api_tokens"); len(list) != 0 {
			t.Errorf("tokens after the refused descriptions = %v, want none", list)
		}
	})
}
