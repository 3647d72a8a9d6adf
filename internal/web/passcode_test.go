package web_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

// enrolPasscode sets up SMS (with phone) or email codes for the session's
// user, confirming with the code that arrives.
func (e *env) enrolPasscode(tok, kind, phone, dest string) response {
	e.t.Helper()
	e.settle()
	before := len(e.inbox.to(dest))
	body := map[string]string{"kind": kind}
	if phone != "" {
		body["phone"] = phone
	}
	r := e.req("POST", "/api/v1/me/factors", tok, body)
	if r.status != 201 {
		e.t.Fatalf("enrol %s = %d %s", kind, r.status, r.raw)
	}
	id := r.body["factor"].(map[string]any)["id"].(string)
	code := e.inbox.waitCode(e.t, dest, before+1)
	conf := e.req("POST", "/api/v1/me/factors/"+id+"/confirm", tok, map[string]string{"code": code})
	if conf.status != 200 {
		e.t.Fatalf("confirm %s = %d %s", kind, conf.status, conf.raw)
	}
	return r
}

func TestSMSFactor(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, phone = "text me my codes please", "+12025550143"
		e.user("sms@acme.example", deadbolt.RoleAgent, pw)
		tok := e.session("sms@acme.example", pw)
		r := e.enrolPasscode(tok, "sms", "+1 202-555-0143", phone)
		if !strings.Contains(r.str("advice"), "authenticator app is safer") || r.str("sent_to") != deadbolt.MaskAddress(deadbolt.ChannelSMS, phone) {
			t.Errorf("SMS enrolment = %s, want the advice that an app is safer and a masked number", r.raw)
		}
		msg := e.inbox.to(phone)[0]
		if !strings.Contains(msg.Text, "Acme Support") || !strings.Contains(msg.Text, "a minute") || msg.ID == "" {
			t.Errorf("SMS = %+v, want the account, the lifetime and an idempotency key", msg)
		}
		e.req("POST", "/api/v1/signout", tok, nil)

		// Sign in: the SMS default's code goes at once.
		e.settle()
		before := len(e.inbox.to(phone))
		r = e.signIn("sms@acme.example", pw, "Deadbolt-Device", e.devices["sms@acme.example"])
		if r.str("status") != "second_factor_required" || r.str("default_method") != "sms" || r.str("sent_to") == "" {
			t.Fatalf("sign in = %s, want an SMS sent for the second factor", r.raw)
		}
		code := e.inbox.waitCode(t, phone, before+1)
		want(t, "a wrong code", e.verify(r.str("challenge_token"), "sms", "000000", false), 401, "invalid_code")
		if v := e.verify(r.str("challenge_token"), "sms", code, false); v.str("status") != "signed_in" {
			t.Fatalf("verify = %s", v.raw)
		}
		ch := e.challenge("sms@acme.example", pw)
		want(t, "the used code on a new challenge", e.verify(ch, "sms", code, false), 401, "invalid_code")
	})
}

func TestEmailFactorAndExpiredCode(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, addr = "email me my codes please", "mia@acme.example"
		e.user(addr, deadbolt.RoleAgent, pw)
		tok := e.session(addr, pw)
		e.enrolPasscode(tok, "email", "", addr)
		var confirm *received
		for _, m := range e.inbox.to(addr) {
			if strings.HasPrefix(m.Subject, "Confirm your new verification method") {
				confirm = &m
			}
		}
		if confirm == nil {
			t.Fatalf("no confirmation email among %d", len(e.inbox.to(addr)))
		}
		if !strings.Contains(confirm.Subject, "Acme Support") || !strings.Contains(confirm.Text, "expires in a minute") ||
			!strings.Contains(confirm.Text, "did not ask") || !strings.Contains(confirm.HTML, "<p") {
			t.Errorf("confirmation email = %+v, want what it is for, how long it lasts, what if you did not ask, and HTML", confirm)
		}
		e.settle()
		n := len(e.inbox.to(addr))
		r := e.signIn(addr, pw, "Deadbolt-Device", e.devices[addr])
		ch := r.str("challenge_token")
		code := e.inbox.waitCode(t, addr, n+1)

		// Too late: code_expired, and a new code is on its way.
		e.clock.Advance(61 * time.Second)
		v := e.verify(ch, "email", code, false)
		want(t, "an expired code", v, 401, "code_expired")
		if v.errField("new_code_sent") != true {
			t.Errorf("code_expired without new_code_sent: %s", v.raw)
		}
		fresh := e.inbox.waitCode(t, addr, n+2)
		if fresh == code {
			t.Fatalf("the new code is the old one")
		}
		if v := e.verify(ch, "email", fresh, false); v.str("status") != "signed_in" {
			t.Fatalf("verify with the new code = %s", v.raw)
		}
	})
}

func TestSendCooldownAndCaps(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, phone = "cool down on the codes", "+12025550199"
		e.user("cool@acme.example", deadbolt.RoleAgent, pw)
		tok := e.session("cool@acme.example", pw)
		e.enrolPasscode(tok, "sms", phone, phone)
		e.settle()
		n := len(e.inbox.to(phone))
		r := e.signIn("cool@acme.example", pw, "Deadbolt-Device", e.devices["cool@acme.example"])
		ch := r.str("challenge_token")
		first := e.inbox.waitCode(t, phone, n+1)

		send := func() response {
			return e.req("POST", "/api/v1/signin/send", "", map[string]string{"challenge_token": ch, "method": "sms"})
		}
		r = send()
		want(t, "resend within the cool-down", r, 429, "rate_limited")
		if got, _ := strconv.Atoi(r.header.Get("Retry-After")); got < 1 || got > 30 {
			t.Errorf("Retry-After = %q, want 1..30 s", r.header.Get("Retry-After"))
		}
		e.clock.Advance(30 * time.Second)
		r = send()
		if r.status != 202 || r.str("sent_to") == "" || r.str("expires_at") == "" {
			t.Fatalf("resend after the cool-down = %d %s", r.status, r.raw)
		}
		second := e.inbox.waitCode(t, phone, n+2)
		// The new code killed the first.
		if first != second {
			want(t, "the first code after a new one", e.verify(ch, "sms", first, false), 401, "invalid_code")
		}
		want(t, "send by email without an email factor", e.req("POST", "/api/v1/signin/send", "", map[string]string{"challenge_token": ch, "method": "email"}), 400, "invalid_request")
		want(t, "send on an unknown challenge", e.req("POST", "/api/v1/signin/send", "", map[string]string{"challenge_token": "dbc_x", "method": "sms"}), 410, "challenge_expired")

		// The hourly cap per user: 10 SMS (the enrolment, the sign-in and
		// the resend were three).
		sent := 3
		var last response
		for range 10 {
			e.clock.Advance(31 * time.Second)
			last = send()
			if last.status != 202 {
				break
			}
			sent++
		}
		want(t, "SMS past the hourly cap", last, 429, "rate_limited")
		if sent != 10 {
			t.Errorf("sent %d SMS before the cap, want 10", sent)
		}
		if ra, _ := strconv.Atoi(last.header.Get("Retry-After")); ra < 60 {
			t.Errorf("Retry-After at the cap = %q, want the rest of the hour", last.header.Get("Retry-After"))
		}
	})
}

func TestSMSRules(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "rules about text messages"
		e.user("end@acme.example", deadbolt.RoleEndUser, pw)
		e.user("ag@acme.example", deadbolt.RoleAgent, pw)
		end := e.session("end@acme.example", pw)
		want(t, "an end user asking for SMS", e.req("POST", "/api/v1/me/factors", end, map[string]string{"kind": "sms", "phone": "+12025550143"}), 403, "method_not_allowed")
		ag := e.session("ag@acme.example", pw)
		for _, p := range []string{"", "12025550143", "+1202", "+999123456789", "not a number"} {
			want(t, "phone "+p, e.req("POST", "/api/v1/me/factors", ag, map[string]string{"kind": "sms", "phone": p}), 400, "invalid_phone")
		}
		e.setPolicy(func(p *deadbolt.Policy) { p.SMSBlockedCountries = []string{"IN"} })
		want(t, "a blocked country", e.req("POST", "/api/v1/me/factors", ag, map[string]string{"kind": "sms", "phone": "+919876543210"}), 403, "phone_country_blocked")
		e.setPolicy(func(p *deadbolt.Policy) {
			p.AllowedMethods = []deadbolt.FactorKind{deadbolt.FactorTOTP, deadbolt.FactorEmail}
		})
		want(t, "SMS when the policy allows none", e.req("POST", "/api/v1/me/factors", ag, map[string]string{"kind": "sms", "phone": "+12025550143"}), 403, "method_not_allowed")
		if n := len(e.inbox.to("+919876543210")); n != 0 {
			t.Errorf("%d messages went to a blocked country", n)
		}
	})
}

func TestTwoStepVerification(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "two step on new devices"
		e.user("tom@acme.example", deadbolt.RoleAgent, pw)
		r := e.signIn("tom@acme.example", pw)
		if r.str("status") != "device_verification_required" || strings.Join(toStrings(r.body["methods"]), ",") != "email" {
			t.Fatalf("first sign-in = %s, want device_verification_required by email", r.raw)
		}
		ch := r.str("challenge_token")
		code := e.inbox.waitCode(t, "tom@acme.example", 1)
		mail := e.inbox.to("tom@acme.example")[0]
		if !strings.Contains(mail.Text, "5 minutes") || !strings.Contains(mail.Subject, "new device") {
			t.Errorf("2-step verification email = %+v", mail)
		}
		// A wrong code sends a new one.
		v := e.verify(ch, "email", "000000", false)
		want(t, "a wrong 2-step code", v, 401, "invalid_code")
		if v.errField("new_code_sent") != true {
			t.Errorf("wrong 2-step code: %s, want new_code_sent", v.raw)
		}
		e.inbox.waitCode(t, "tom@acme.example", 2)
		// The first code died with the new one: trying it is wrong too, and
		// sends yet another.
		want(t, "the first code after a new one", e.verify(ch, "email", code, false), 401, "invalid_code")
		newest := e.inbox.waitCode(t, "tom@acme.example", 3)
		v = e.verify(ch, "email", newest, false)
		device := v.str("device_token")
		if v.str("status") != "signed_in" || !strings.HasPrefix(device, "dbd_") {
			t.Fatalf("verify = %s, want signed_in with a device token", v.raw)
		}
		// The device is recognised now; another is not.
		if r := e.signIn("tom@acme.example", pw, "Deadbolt-Device", device); r.str("status") != "signed_in" {
			t.Errorf("sign in from the verified device = %s", r.raw)
		}
		if r := e.signIn("tom@acme.example", pw); r.str("status") != "device_verification_required" {
			t.Errorf("sign in from another device = %s", r.raw)
		}
		// An expired 2-step code: code_expired and a new one.
		e.settle()
		n := len(e.inbox.to("tom@acme.example"))
		r = e.signIn("tom@acme.example", pw)
		late := e.inbox.waitCode(t, "tom@acme.example", n+1)
		e.clock.Advance(5*time.Minute + time.Second)
		want(t, "an expired 2-step code", e.verify(r.str("challenge_token"), "email", late, false), 401, "code_expired")
		e.inbox.waitCode(t, "tom@acme.example", n+2)

		// Never for: end users, users with TOTP, SSO users.
		e.user("end@acme.example", deadbolt.RoleEndUser, pw)
		if r := e.signIn("end@acme.example", pw); r.str("status") != "signed_in" {
			t.Errorf("end user = %s, want signed_in without 2-step verification", r.raw)
		}
		secretB32, _ := e.withTOTP("tess@acme.example", pw+" tess")
		_ = secretB32
		if r := e.signIn("tess@acme.example", pw+" tess"); r.str("status") != "second_factor_required" {
			t.Errorf("user with TOTP = %s, want second_factor_required", r.raw)
		}
		sso := &deadbolt.User{AccountID: e.acc.ID, Email: "sso@acme.example", Name: "S", Role: deadbolt.RoleAgent, AuthSource: deadbolt.AuthSSO}
		if err := e.db.CreateUser(context.Background(), sso); err != nil {
			t.Fatal(err)
		}
		e.settle()
		want(t, "SSO user with a password", e.signIn("sso@acme.example", pw), 401, "invalid_credentials")
		if n := len(e.inbox.to("sso@acme.example")); n != 0 {
			t.Errorf("%d messages to the SSO user", n)
		}
	})
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestSMTPDown checks that a sign-in that needs an emailed code answers at
// once with the SMTP server down, that the message is delivered exactly
// once when it is back, and that a restart in between loses nothing.
func TestSMTPDown(t *testing.T) {
	for _, db := range storetest.Databases {
		t.Run(db.Name, func(t *testing.T) {
			keys, _ := secret.Generate()
			st := db.Open(t, keys)
			// An address where nothing listens yet.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			e := newEnvSMTP(t, st, keys, addr)
			const pw = "the mail server is down"
			e.user("down@acme.example", deadbolt.RoleAgent, pw)
			start := time.Now()
			r := e.signIn("down@acme.example", pw)
			if r.str("status") != "device_verification_required" || time.Since(start) > 2*time.Second {
				t.Fatalf("sign in with SMTP down = %s after %v, want device_verification_required at once", r.raw, time.Since(start))
			}
			ch := r.str("challenge_token")
			// The worker tries and fails (an audited attempt); the message
			// stays queued.
			deadline := time.Now().Add(10 * time.Second)
			for {
				events, _ := st.FindEvents(context.Background(), e.acc.ID, deadbolt.AuditFilter{Type: deadbolt.AuditMessageAttemptFailed})
				if len(events) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no failed delivery attempt within 10 s")
				}
				e.worker.Kick()
				time.Sleep(5 * time.Millisecond) // waiting for the worker, not for time to pass
			}
			if st, _ := st.MessageStats(context.Background(), time.Time{}); st.Queued != 1 {
				t.Fatalf("queued after a failed attempt = %d, want 1", st.Queued)
			}

			// A restart: a new service and worker over the same database.
			e2 := newEnvSMTP(t, st, keys, addr)
			// The mail server comes back, on the same address.
			in := newInbox()
			ln, err = net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			startSMTP(t, ln, in)
			e2.clock.Advance(10 * time.Second) // past the retry back-off
			e.clock.Advance(10 * time.Second)
			e2.worker.Kick()
			code := in.waitCode(t, "down@acme.example", 1)
			if v := e2.verify(ch, "email", code, false); v.str("status") != "signed_in" {
				t.Fatalf("verify with the late code = %s", v.raw)
			}
			// Exactly once, however many workers look.
			e.worker.Drain(context.Background())
			e2.worker.Drain(context.Background())
			e2.settle()
			if n := len(in.to("down@acme.example")); n != 1 {
				t.Errorf("the code was delivered %d times, want once", n)
			}
			sentEvents, _ := st.FindEvents(context.Background(), e.acc.ID, deadbolt.AuditFilter{Type: deadbolt.AuditMessageSent})
			if len(sentEvents) != 1 || strings.Contains(sentEvents[0].Details["to"], "down@") || sentEvents[0].Details["to"] == "" {
				t.Errorf("message.sent events = %+v, want one, with the address masked", sentEvents)
			}
		})
	}
}
