package web_test

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestInvitation(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		owner := e.session("owner@acme.example", ownerPassword)
		r := e.req("POST", "/api/v1/accounts/acme/users", owner, map[string]any{"email": "new@acme.example", "name": "Nia New", "role": "agent", "invite": true})
		if r.status != 201 || r.str("invitation_sent_to") == "" {
			t.Fatalf("create with invite = %d %s", r.status, r.raw)
		}
		want(t, "invite with a password", e.req("POST", "/api/v1/accounts/acme/users", owner,
			map[string]any{"email": "x@acme.example", "name": "X", "role": "agent", "invite": true, "password": "some long password here"}), 400, "invalid_request")
		e.settle()
		mails := e.inbox.to("new@acme.example")
		if len(mails) != 1 {
			t.Fatalf("invitation emails = %d", len(mails))
		}
		code := regexp.MustCompile(`[a-z2-9]{5}-[a-z2-9]{5}`).FindString(mails[0].Text)
		if code == "" || !strings.Contains(mails[0].Text, "/accounts/acme/invitation") || !strings.Contains(mails[0].Text, "7 days") {
			t.Fatalf("invitation email = %q", mails[0].Text)
		}
		accept := func(email, c, pw string) response {
			return e.req("POST", "/api/v1/accounts/acme/invitation", "", map[string]string{"email": email, "code": c, "password": pw})
		}
		const pw = "my very own long passphrase"
		want(t, "a wrong code", accept("new@acme.example", "abcde-fghjk", pw), 401, "invalid_code")
		want(t, "another user's email", accept("owner@acme.example", code, pw), 401, "invalid_code")
		want(t, "a short password", accept("new@acme.example", code, "short"), 400, "invalid_request")
		if r := accept("NEW@acme.example", code, pw); r.status != 204 {
			t.Fatalf("accept = %d %s", r.status, r.raw)
		}
		want(t, "the code again", accept("new@acme.example", code, pw+" again"), 401, "invalid_code")
		e.session("new@acme.example", pw)

		// An invitation expires after 7 days.
		r = e.req("POST", "/api/v1/accounts/acme/users", owner, map[string]any{"email": "late@acme.example", "name": "Lee Late", "role": "agent", "invite": true})
		if r.status != 201 {
			t.Fatalf("second invitation = %d %s", r.status, r.raw)
		}
		e.settle()
		lateCode := regexp.MustCompile(`[a-z2-9]{5}-[a-z2-9]{5}`).FindString(e.inbox.to("late@acme.example")[0].Text)
		e.clock.Advance(7*24*time.Hour + time.Minute)
		want(t, "an expired invitation", accept("late@acme.example", lateCode, pw), 401, "invalid_code")
	})
}
