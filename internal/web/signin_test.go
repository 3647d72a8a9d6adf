package web_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func TestSignInWithTOTP(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "correct pony staple battery"
		e.user("ann@acme.example", deadbolt.RoleAgent, pw)
		tok := e.session("ann@acme.example", pw)

		secretB32, conf := e.enrolTOTP(tok)
		codes, _ := conf.body["recovery_codes"].([]any)
		if len(codes) != 10 {
			t.Fatalf("first factor gave %d recovery codes, want 10", len(codes))
		}
		if f := conf.body["factor"].(map[string]any); f["status"] != "active" || f["default"] != true {
			t.Errorf("confirmed factor = %v, want active and default", f)
		}
		me := e.req("GET", "/api/v1/me", tok, nil)
		tf := me.body["two_factor"].(map[string]any)
		if tf["enabled"] != true || tf["recovery_codes_left"] != float64(10) || tf["default_method"] != "totp" {
			t.Errorf("GET /me two_factor = %v", tf)
		}

		// The code that confirmed the factor cannot also sign in.
		confirmCode := oathtool(t, secretB32, e.clock.Now())
		ch := e.challenge("ann@acme.example", pw)
		r := e.signIn("ann@acme.example", pw)
		if got := r.body["methods"]; fmt.Sprint(got) != "[totp recovery_code]" || r.str("default_method") != "totp" {
			t.Errorf("methods = %v default %q, want [totp recovery_code] and totp", got, r.str("default_method"))
		}
		want(t, "verify with the confirmation code", e.verify(ch, "totp", confirmCode, false), 401, "invalid_code")

		// The next step's code works, once.
		e.clock.Advance(30 * time.Second)
		code := oathtool(t, secretB32, e.clock.Now())
		r = e.verify(ch, "totp", code, false)
		if r.status != 200 || r.str("status") != "signed_in" || r.str("session_token") == "" {
			t.Fatalf("verify = %d %s, want signed_in", r.status, r.raw)
		}
		if _, ok := r.body["device_token"]; ok {
			t.Errorf("device_token without remember_device")
		}
		want(t, "the same challenge again", e.verify(ch, "totp", code, false), 410, "challenge_expired")
		ch2 := e.challenge("ann@acme.example", pw)
		r = e.verify(ch2, "totp", code, false)
		want(t, "the same code on a new challenge", r, 401, "invalid_code")
		if r.errField("attempts_left") != float64(4) {
			t.Errorf("attempts_left = %v, want 4", r.errField("attempts_left"))
		}
		// An older code after a newer one is refused too.
		e.clock.Advance(30 * time.Second)
		want(t, "the previous step's code", e.verify(ch2, "totp", code, false), 401, "invalid_code")

		// 20 sign-ins race with the next code: exactly one gets in.
		e.clock.Advance(30 * time.Second)
		next := oathtool(t, secretB32, e.clock.Now())
		var challenges []string
		for range 20 {
			challenges = append(challenges, e.challenge("ann@acme.example", pw))
		}
		// The earlier failures would start the back-off: this is about the race.
		e.db.ResetCounter(t.Context(), e.acc.ID, "2fa:"+userID(e, "ann@acme.example"))
		statuses := race(20, func(i int) response { return e.verify(challenges[i], "totp", next, false) })
		// The losers' failures count, so later ones may meet the back-off.
		if statuses[200] != 1 || statuses[401]+statuses[429] != 19 {
			t.Errorf("20 racing verifications of one code: statuses %v, want one 200 and nineteen 401 or 429", statuses)
		}
	})
}

func userID(e *env, email string) string {
	u, err := e.db.FindUserByEmail(e.t.Context(), e.acc.ID, email)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

// race sends n requests at once and counts the statuses.
func race(n int, fn func(i int) response) map[int]int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	counts := map[int]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := fn(i)
			mu.Lock()
			counts[r.status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

func TestRecoveryCodes(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "recovery tests passphrase"
		_, codes := e.withTOTP("rex@acme.example", pw)
		uid := userID(e, "rex@acme.example")

		ch := e.challenge("rex@acme.example", pw)
		// People type codes with spaces, in capitals, without the hyphen.
		typed := "  " + codes[0][:5] + " " + codes[0][6:] + " "
		r := e.verify(ch, "recovery_code", typed, false)
		if r.status != 200 || r.body["recovery_codes_left"] != float64(9) {
			t.Fatalf("recovery code sign-in = %d %s, want signed_in with 9 left", r.status, r.raw)
		}
		ch = e.challenge("rex@acme.example", pw)
		want(t, "the same recovery code again", e.verify(ch, "recovery_code", codes[0], false), 401, "invalid_code")
		want(t, "a malformed recovery code", e.verify(ch, "recovery_code", "not a code!", false), 400, "invalid_request")

		// 20 racing sign-ins with one code: exactly one succeeds.
		var challenges []string
		for range 20 {
			challenges = append(challenges, e.challenge("rex@acme.example", pw))
		}
		e.db.ResetCounter(t.Context(), e.acc.ID, "2fa:"+uid)
		statuses := race(20, func(i int) response { return e.verify(challenges[i], "recovery_code", codes[1], false) })
		if statuses[200] != 1 || statuses[401]+statuses[429] != 19 {
			t.Errorf("20 racing uses of one recovery code: %v, want one 200 and nineteen 401 or 429", statuses)
		}
		e.db.ResetCounter(t.Context(), e.acc.ID, "2fa:"+uid)

		// Each remaining code works once; few left warns.
		for i := 2; i < 10; i++ {
			ch := e.challenge("rex@acme.example", pw)
			r := e.verify(ch, "recovery_code", codes[i], false)
			if r.status != 200 || r.body["recovery_codes_left"] != float64(9-i) {
				t.Fatalf("code %d = %d %s, want %d left", i, r.status, r.raw, 9-i)
			}
			if (9-i <= 3) != (r.str("warning") != "") {
				t.Errorf("code %d: warning %q with %d left", i, r.str("warning"), 9-i)
			}
		}
		// All ten are used: none works again.
		ch = e.challenge("rex@acme.example", pw)
		want(t, "a used code after all are used", e.verify(ch, "recovery_code", codes[5], false), 401, "invalid_code")
	})
}

func TestRememberedDevice(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "remember me on this laptop"
		secretB32, _ := e.withTOTP("dev@acme.example", pw)
		ch := e.challenge("dev@acme.example", pw)
		r := e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), true)
		device := r.str("device_token")
		if r.status != 200 || len(device) < 20 || device[:4] != "dbd_" {
			t.Fatalf("verify with remember_device = %d %s, want a dbd_ device token", r.status, r.raw)
		}
		tok := r.str("session_token")

		// The device skips the second factor for the next sign-ins.
		r = e.signIn("dev@acme.example", pw, "Deadbolt-Device", device)
		if r.str("status") != "signed_in" {
			t.Fatalf("sign in from the remembered device = %s, want signed_in", r.raw)
		}
		remembered := r.str("session_token")
		// Another user's device token is no use to this one.
		e.user("eve@acme.example", deadbolt.RoleAgent, pw+" eve")
		if r := e.signIn("eve@acme.example", pw+" eve", "Deadbolt-Device", device); r.str("status") != "device_verification_required" {
			t.Errorf("eve without 2FA, with dev's device token = %s, want 2-step verification", r.raw)
		}
		// Two devices: the one 2-step verification recognised when dev had
		// no 2FA yet, and the one now remembered.
		list := e.req("GET", "/api/v1/me/devices", tok, nil)
		var devices []any
		for _, d := range list.body["devices"].([]any) {
			if d.(map[string]any)["remembered"] == true {
				devices = append(devices, d)
			}
		}
		if len(devices) != 1 {
			t.Fatalf("devices = %s, want one remembered device", list.raw)
		}
		// A remembered device is no proof for step-up.
		want(t, "regenerate codes on a remembered-device session", e.req("POST", "/api/v1/me/recovery-codes", remembered, nil), 403, "reauthentication_required")

		// After 30 days, it asks again.
		e.clock.Advance(31 * 24 * time.Hour)
		e.challenge("dev@acme.example", pw, "Deadbolt-Device", device)
		e.clock.Advance(-31 * 24 * time.Hour)

		// Revoked, it asks again.
		id := devices[0].(map[string]any)["id"].(string)
		other := e.session("eve@acme.example", pw+" eve")
		want(t, "revoke another user's device", e.req("DELETE", "/api/v1/me/devices/"+id, other, nil), 404, "not_found")
		if r := e.req("DELETE", "/api/v1/me/devices/"+id, tok, nil); r.status != 204 {
			t.Fatalf("revoke device = %d %s", r.status, r.raw)
		}
		e.challenge("dev@acme.example", pw, "Deadbolt-Device", device)

		// A policy of 0 days asks at every sign-in and gives no device token.
		e.setPolicy(func(p *deadbolt.Policy) { p.RememberDeviceDays[deadbolt.RoleAgent] = 0 })
		e.clock.Advance(30 * time.Second)
		ch = e.challenge("dev@acme.example", pw)
		r = e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), true)
		if r.status != 200 || r.str("device_token") != "" {
			t.Errorf("remember with a 0-day policy = %s, want no device token", r.raw)
		}
	})
}

func TestChallengeDiesAfterFiveWrongCodes(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "five wrong codes and out"
		secretB32, _ := e.withTOTP("five@acme.example", pw)
		ch := e.challenge("five@acme.example", pw)
		for i := 1; i <= 5; i++ {
			r := e.verify(ch, "totp", "000000", false)
			want(t, "wrong code "+strconv.Itoa(i), r, 401, "invalid_code")
			if r.errField("attempts_left") != float64(5-i) {
				t.Errorf("wrong code %d: attempts_left = %v, want %d", i, r.errField("attempts_left"), 5-i)
			}
		}
		// Dead: even the right code is refused, and 410 comes before back-off.
		want(t, "right code on a dead challenge", e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), false), 410, "challenge_expired")
		// Unknown and expired challenges look the same.
		want(t, "unknown challenge", e.verify("dbc_NOSUCHTOKEN", "totp", "123456", false), 410, "challenge_expired")
		e.clock.Advance(time.Minute) // let the back-off from the five failures run out
		e.db.ResetCounter(t.Context(), e.acc.ID, "2fa:"+userID(e, "five@acme.example"))
		ch = e.challenge("five@acme.example", pw)
		e.clock.Advance(deadbolt.ChallengeTTL)
		want(t, "expired challenge", e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), false), 410, "challenge_expired")
	})
}

func TestSecondFactorBackoff(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "back off and try later"
		secretB32, _ := e.withTOTP("slow@acme.example", pw)
		// Four wrong codes cost nothing but the attempts; the fifth starts
		// the back-off, across challenges.
		for i := range 5 {
			ch := e.challenge("slow@acme.example", pw)
			want(t, "wrong code "+strconv.Itoa(i+1), e.verify(ch, "totp", "999999", false), 401, "invalid_code")
		}
		ch := e.challenge("slow@acme.example", pw)
		right := oathtool(t, secretB32, e.clock.Now())
		r := e.verify(ch, "totp", right, false)
		want(t, "right code during the back-off", r, 429, "rate_limited")
		if r.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q, want 2 (seconds)", r.header.Get("Retry-After"))
		}
		e.clock.Advance(2 * time.Second)
		// Now down to 10 failures: the back-off doubles, then a 15-minute pause.
		waits := []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 15 * time.Minute}
		for i, w := range waits {
			ch := e.challenge("slow@acme.example", pw)
			want(t, fmt.Sprintf("wrong code %d", 6+i), e.verify(ch, "totp", "999999", false), 401, "invalid_code")
			r := e.verify(ch, "totp", "999999", false)
			want(t, fmt.Sprintf("retry after failure %d", 6+i), r, 429, "rate_limited")
			if got := r.header.Get("Retry-After"); got != strconv.Itoa(int(w.Seconds())) {
				t.Errorf("after %d failures Retry-After = %s, want %d", 6+i, got, int(w.Seconds()))
			}
			e.clock.Advance(w)
		}
		// The pause ended by itself: the right code works, and resets.
		e.clock.Advance(30 * time.Second)
		ch = e.challenge("slow@acme.example", pw)
		if r := e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), false); r.status != 200 {
			t.Fatalf("after the pause = %d %s", r.status, r.raw)
		}
		// Another user was never slowed down.
		e.user("fast@acme.example", deadbolt.RoleAgent, pw+" fast")
		e.session("fast@acme.example", pw+" fast")
	})
}

func TestPasswordFailures(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "the right password here"
		e.user("pat@acme.example", deadbolt.RoleAgent, pw)
		wrong := e.signIn("pat@acme.example", "the wrong password here")
		unknown := e.signIn("nobody@acme.example", "the wrong password here")
		want(t, "wrong password", wrong, 401, "invalid_credentials")
		want(t, "unknown email", unknown, 401, "invalid_credentials")
		if wrong.raw != unknown.raw {
			t.Errorf("wrong password and unknown email differ:\n%s\n%s", wrong.raw, unknown.raw)
		}
		want(t, "unknown account", e.req("POST", "/api/v1/accounts/nope/signin", "", map[string]string{"email": "a@b.example", "password": "x"}), 404, "account_not_found")
		// Unknown emails are limited exactly like known ones.
		for _, email := range []string{"pat@acme.example", "nobody@acme.example"} {
			for range 4 {
				e.signIn(email, "still the wrong password")
			}
			r := e.signIn(email, pw)
			want(t, "sign in after 5 failures: "+email, r, 429, "rate_limited")
			if r.header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		}
		// Someone who knows only the email cannot lock its owner out of the
		// device they verified before: failures there count apart.
		e.clock.Advance(3 * time.Second)
		e.user("own@acme.example", deadbolt.RoleAgent, pw+" own")
		_, device := e.sessionDevice("own@acme.example", pw+" own")
		for range 10 {
			e.signIn("own@acme.example", "an attacker's guess at it")
		}
		want(t, "the attacked email from elsewhere", e.signIn("own@acme.example", pw+" own"), 429, "rate_limited")
		if r := e.signIn("own@acme.example", pw+" own", "Deadbolt-Device", device); r.str("status") != "signed_in" {
			t.Errorf("the owner on their verified device = %s, want signed_in", r.raw)
		}
		// The device is throttled on its own if it guesses too.
		for range 5 {
			e.signIn("own@acme.example", "a wrong guess from the device", "Deadbolt-Device", device)
		}
		want(t, "the device after 5 wrong passwords", e.signIn("own@acme.example", pw+" own", "Deadbolt-Device", device), 429, "rate_limited")

		if r := e.signIn("PAT@acme.example", pw); r.str("status") != "device_verification_required" {
			t.Errorf("after the wait, with the email in capitals = %s, want the password accepted", r.raw)
		}
	})
}

func TestSessionsEnd(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "sessions come and go daily"
		e.user("sam@acme.example", deadbolt.RoleAgent, pw)
		a := e.session("sam@acme.example", pw)
		b := e.session("sam@acme.example", pw)
		list := e.req("GET", "/api/v1/me/sessions", a, nil)
		if n := len(list.body["sessions"].([]any)); n != 2 {
			t.Fatalf("sessions = %d, want 2", n)
		}
		// Sign-out ends one session, not the other.
		if r := e.req("POST", "/api/v1/signout", a, nil); r.status != 204 {
			t.Fatalf("sign out = %d", r.status)
		}
		want(t, "GET /me after sign-out", e.req("GET", "/api/v1/me", a, nil), 401, "unauthorized")
		if r := e.req("GET", "/api/v1/me", b, nil); r.status != 200 {
			t.Fatalf("other session after sign-out = %d", r.status)
		}
		// Idle timeout: 60 minutes by default; activity keeps it alive.
		e.clock.Advance(59 * time.Minute)
		if r := e.req("GET", "/api/v1/me", b, nil); r.status != 200 {
			t.Fatalf("after 59 idle minutes = %d", r.status)
		}
		e.clock.Advance(59 * time.Minute)
		if r := e.req("GET", "/api/v1/me", b, nil); r.status != 200 {
			t.Fatalf("59 minutes after the last request = %d", r.status)
		}
		e.clock.Advance(61 * time.Minute)
		want(t, "after 61 idle minutes", e.req("GET", "/api/v1/me", b, nil), 401, "unauthorized")

		// Absolute lifetime: 12 hours, however active.
		c := e.session("sam@acme.example", pw)
		for range 12 {
			e.clock.Advance(55 * time.Minute)
			e.req("GET", "/api/v1/me", c, nil)
		}
		want(t, "after 11 active hours", e.req("GET", "/api/v1/me", c, nil), 200, "")
		e.clock.Advance(61 * time.Minute)
		want(t, "after 12 active hours", e.req("GET", "/api/v1/me", c, nil), 401, "unauthorized")

		// A password change ends the other sessions; the current goes on.
		d := e.session("sam@acme.example", pw)
		f := e.session("sam@acme.example", pw)
		want(t, "wrong current password", e.req("POST", "/api/v1/me/password", d, map[string]string{"current_password": "nope nope nope", "new_password": "a brand new long passphrase"}), 401, "invalid_credentials")
		want(t, "too short new password", e.req("POST", "/api/v1/me/password", d, map[string]string{"current_password": pw, "new_password": "short"}), 400, "invalid_request")
		if r := e.req("POST", "/api/v1/me/password", d, map[string]string{"current_password": pw, "new_password": "a brand new long passphrase"}); r.status != 204 {
			t.Fatalf("change password = %d %s", r.status, r.raw)
		}
		want(t, "other session after password change", e.req("GET", "/api/v1/me", f, nil), 401, "unauthorized")
		want(t, "this session after password change", e.req("GET", "/api/v1/me", d, nil), 200, "")
		want(t, "old password", e.signIn("sam@acme.example", pw), 401, "invalid_credentials")
		e.session("sam@acme.example", "a brand new long passphrase")
	})
}

func TestPasswordChangeForgetsDevices(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "devices forgotten on change"
		secretB32, _ := e.withTOTP("fay@acme.example", pw)
		ch := e.challenge("fay@acme.example", pw)
		r := e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), true)
		device, tok := r.str("device_token"), r.str("session_token")
		if r := e.req("POST", "/api/v1/me/password", tok, map[string]string{"current_password": pw, "new_password": pw + " v2"}); r.status != 204 {
			t.Fatalf("change password = %d %s", r.status, r.raw)
		}
		e.challenge("fay@acme.example", pw+" v2", "Deadbolt-Device", device)
	})
}

func TestEnrollmentRequired(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "must set up two factor"
		e.user("new@acme.example", deadbolt.RoleAgent, pw)
		e.user("end@acme.example", deadbolt.RoleEndUser, pw+" end")
		e.setPolicy(func(p *deadbolt.Policy) { p.Require2FATeamMembers = true })

		// End users are not covered by the team-member requirement.
		e.session("end@acme.example", pw+" end")
		// From a new device the password alone does not reach enrolment:
		// 2-step verification comes first, then the device is recognised.
		before := len(e.inbox.to("new@acme.example"))
		r := e.signIn("new@acme.example", pw)
		if r.str("status") != "device_verification_required" {
			t.Fatalf("sign in from a new device = %s, want device_verification_required before enrolment", r.raw)
		}
		r = e.verify(r.str("challenge_token"), "email", e.inbox.waitCode(t, "new@acme.example", before+1), false)
		if r.str("status") != "enrollment_required" || fmt.Sprint(r.body["methods"]) != "[totp sms email]" || !strings.HasPrefix(r.str("device_token"), "dbd_") {
			t.Fatalf("2-step verification = %s, want enrollment_required with [totp sms email] and a device token", r.raw)
		}
		ch := r.str("challenge_token")
		// The recognised device goes straight to enrolment.
		if again := e.signIn("new@acme.example", pw, "Deadbolt-Device", r.str("device_token")); again.str("status") != "enrollment_required" {
			t.Fatalf("sign in from the verified device = %s, want enrollment_required", again.raw)
		}
		// The challenge is no session.
		want(t, "GET /me with an enrolment challenge", e.req("GET", "/api/v1/me", ch, nil), 401, "unauthorized")
		want(t, "verify an enrolment challenge", e.verify(ch, "totp", "123456", false), 400, "invalid_request")
		_, conf := e.enrolTOTP(ch)
		tok := conf.str("session_token")
		if tok == "" || len(conf.body["recovery_codes"].([]any)) != 10 {
			t.Fatalf("confirm under enrolment = %s, want a session and recovery codes", conf.raw)
		}
		if r := e.req("GET", "/api/v1/me", tok, nil); r.status != 200 || r.body["two_factor"].(map[string]any)["required"] != true {
			t.Errorf("GET /me after enrolment = %s", r.raw)
		}
		// The challenge is used up.
		want(t, "enrol again with the used challenge", e.req("POST", "/api/v1/me/factors", ch, map[string]string{"kind": "totp"}), 401, "unauthorized")
		// The last factor cannot go while 2FA is required.
		factors := e.req("GET", "/api/v1/me/factors", tok, nil).body["factors"].([]any)
		id := factors[0].(map[string]any)["id"].(string)
		want(t, "remove the only factor", e.req("DELETE", "/api/v1/me/factors/"+id, tok, nil), 409, "conflict")
		// Next time, the second factor is asked.
		e.challenge("new@acme.example", pw)
	})
}

func TestStepUp(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "prove it again please now"
		secretB32, codes := e.withTOTP("sue@acme.example", pw)
		ch := e.challenge("sue@acme.example", pw)
		tok := e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), false).str("session_token")

		// Fresh from the second factor: allowed.
		r := e.req("POST", "/api/v1/me/recovery-codes", tok, nil)
		if r.status != 200 || len(r.body["recovery_codes"].([]any)) != 10 {
			t.Fatalf("regenerate = %d %s", r.status, r.raw)
		}
		// The old set is dead.
		ch = e.challenge("sue@acme.example", pw)
		want(t, "old recovery code", e.verify(ch, "recovery_code", codes[3], false), 401, "invalid_code")

		e.clock.Advance(16 * time.Minute)
		e.req("GET", "/api/v1/me", tok, nil) // keep the session alive
		want(t, "regenerate after 16 minutes", e.req("POST", "/api/v1/me/recovery-codes", tok, nil), 403, "reauthentication_required")
		want(t, "step-up with a password when a factor exists", e.req("POST", "/api/v1/me/step-up", tok, map[string]string{"password": pw}), 400, "invalid_request")
		want(t, "step-up with a wrong code", e.req("POST", "/api/v1/me/step-up", tok, map[string]string{"method": "totp", "code": "000000"}), 401, "invalid_code")
		if r := e.req("POST", "/api/v1/me/step-up", tok, map[string]string{"method": "totp", "code": oathtool(t, secretB32, e.clock.Now())}); r.status != 200 {
			t.Fatalf("step-up = %d %s", r.status, r.raw)
		}
		// Add a second TOTP factor, then remove the first.
		_, _ = e.enrolTOTP(tok)
		factors := e.req("GET", "/api/v1/me/factors", tok, nil).body["factors"].([]any)
		if len(factors) != 2 {
			t.Fatalf("factors = %d, want 2", len(factors))
		}
		first := factors[0].(map[string]any)["id"].(string)
		second := factors[1].(map[string]any)["id"].(string)
		if r := e.req("POST", "/api/v1/me/factors/"+second+"/default", tok, nil); r.status != 200 || r.body["factor"].(map[string]any)["default"] != true {
			t.Fatalf("make default = %d %s", r.status, r.raw)
		}
		if r := e.req("DELETE", "/api/v1/me/factors/"+first, tok, nil); r.status != 204 {
			t.Fatalf("remove factor = %d %s", r.status, r.raw)
		}
		if n := len(e.req("GET", "/api/v1/me/factors", tok, nil).body["factors"].([]any)); n != 1 {
			t.Errorf("factors after removal = %d, want 1", n)
		}
		// The removed factor's codes no longer sign in.
		e.clock.Advance(30 * time.Second)
		ch = e.challenge("sue@acme.example", pw)
		want(t, "code of the removed factor", e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), false), 401, "invalid_code")

		// A user without 2FA steps up with the password.
		e.user("nofa@acme.example", deadbolt.RoleAgent, pw+" nofa")
		nt := e.session("nofa@acme.example", pw+" nofa")
		e.clock.Advance(16 * time.Minute)
		e.req("GET", "/api/v1/me", nt, nil)
		want(t, "wrong password step-up", e.req("POST", "/api/v1/me/step-up", nt, map[string]string{"password": "not it at all"}), 401, "invalid_credentials")
		if r := e.req("POST", "/api/v1/me/step-up", nt, map[string]string{"password": pw + " nofa"}); r.status != 200 {
			t.Errorf("password step-up = %d %s", r.status, r.raw)
		}
	})
}

func TestOtherAccountsAndUsersAreInvisible(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "isolation between users"
		e.user("a@acme.example", deadbolt.RoleAgent, pw)
		e.user("b@acme.example", deadbolt.RoleAgent, pw+" b")
		ta := e.session("a@acme.example", pw)
		tb := e.session("b@acme.example", pw+" b")
		r := e.req("POST", "/api/v1/me/factors", ta, map[string]string{"kind": "totp"})
		fid := r.body["factor"].(map[string]any)["id"].(string)
		for _, tt := range []struct{ method, path string }{
			{"POST", "/api/v1/me/factors/" + fid + "/confirm"},
			{"POST", "/api/v1/me/factors/" + fid + "/default"},
			{"DELETE", "/api/v1/me/factors/" + fid},
		} {
			var body any
			if tt.method == "POST" {
				body = map[string]string{"code": "123456"}
			}
			want(t, tt.method+" another user's factor", e.req(tt.method, tt.path, tb, body), 404, "not_found")
		}
		sessions := e.req("GET", "/api/v1/me/sessions", ta, nil).body["sessions"].([]any)
		sid := sessions[0].(map[string]any)["id"].(string)
		want(t, "end another user's session", e.req("DELETE", "/api/v1/me/sessions/"+sid, tb, nil), 404, "not_found")
		want(t, "GET /me of A still works", e.req("GET", "/api/v1/me", ta, nil), 200, "")
		if got := e.req("GET", "/api/v1/me/factors", tb, nil).body["factors"].([]any); len(got) != 0 {
			t.Errorf("B sees %d factors, want none", len(got))
		}
		events, _ := e.db.FindEvents(t.Context(), e.acc.ID, deadbolt.AuditFilter{})
		var types []string
		for _, ev := range events {
			types = append(types, ev.Type)
		}
		for _, wantType := range []string{"signin.succeeded", "factor.enrolled"} {
			if !slices.Contains(types, wantType) {
				t.Errorf("audit log lacks %s: %v", wantType, types)
			}
		}
	})
}
