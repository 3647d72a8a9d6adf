package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/clientip"
	"github.com/deadbolt/deadbolt/internal/notify"
	"github.com/deadbolt/deadbolt/internal/web"
)

const firefoxLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

// newSignIns counts the new-device notices that reached addr.
func (e *env) newSignIns(addr string) []received {
	e.t.Helper()
	e.settle()
	var out []received
	for _, m := range e.inbox.to(addr) {
		if strings.HasPrefix(m.Subject, "New sign-in from") {
			out = append(out, m)
		}
	}
	return out
}

// A sign-in from a device Deadbolt did not recognise is emailed to the
// user: not the very first one, not from a recognised device, not when the
// account turns notices off.
func TestNewDeviceNotice(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw, nell = "end users sign in too, often", "nell@acme.example"
		e.user(nell, deadbolt.RoleEndUser, pw)
		first := e.signIn(nell, pw, "User-Agent", firefoxLinux)
		device := first.str("device_token")
		if first.str("status") != "signed_in" || !strings.HasPrefix(device, "dbd_") {
			t.Fatalf("first sign-in = %s, want signed_in with a device token (the device is recognised from now on)", first.raw)
		}
		if n := len(e.newSignIns(nell)); n != 0 {
			t.Errorf("notices after the very first sign-in = %d, want none", n)
		}
		if r := e.signIn(nell, pw, "Deadbolt-Device", device); r.str("status") != "signed_in" || r.str("device_token") != "" {
			t.Errorf("sign-in from the recognised device = %s, want signed_in and no new device token", r.raw)
		}
		if n := len(e.newSignIns(nell)); n != 0 {
			t.Errorf("notices after a sign-in from a recognised device = %d, want none", n)
		}
		e.signIn(nell, pw, "User-Agent", firefoxLinux)
		notices := e.newSignIns(nell)
		if len(notices) != 1 {
			t.Fatalf("notices after a sign-in from a new device = %d, want 1", len(notices))
		}
		n := notices[0]
		if n.Subject != "New sign-in from Firefox on Linux (Acme Support)" || !strings.Contains(n.Text, "127.0.0.1") ||
			!strings.Contains(n.Text, "UTC") || !strings.Contains(n.Text, "/accounts/acme/security") {
			t.Errorf("notice = %q / %q, want the device, the IP, the time and a link to end the session", n.Subject, n.Text)
		}
		if c := e.auditCount(deadbolt.AuditMessageQueued, map[string]string{"notice": "new_device_signin"}); c != 1 {
			t.Errorf("new_device_signin notices audited = %d, want 1", c)
		}

		// Second factors: a new device at every step that has one.
		const tpw, tom = "tom has an authenticator app", "tom@acme.example"
		secret, _ := e.withTOTP(tom, tpw) // first sign-in (2-step verification) and set-up
		base := len(e.newSignIns(tom))
		e.totpSignIn(tom, tpw, secret, false, "Deadbolt-Device", e.devices[tom]) // recognised by its 2-step verification
		if got := len(e.newSignIns(tom)); got != base {
			t.Errorf("notices after a TOTP sign-in from the recognised device = %d, want %d", got, base)
		}
		e.totpSignIn(tom, tpw, secret, false) // a device never seen
		if got := len(e.newSignIns(tom)); got != base+1 {
			t.Errorf("notices after a TOTP sign-in from a new device = %d, want %d", got, base+1)
		}

		// The account turns them off.
		e.setPolicy(func(p *deadbolt.Policy) { p.NewDeviceNotices = false })
		e.signIn(nell, pw)
		e.totpSignIn(tom, tpw, secret, false)
		if a, b := len(e.newSignIns(nell)), len(e.newSignIns(tom)); a != 1 || b != base+1 {
			t.Errorf("notices with the policy off = %d and %d, want none more (1 and %d)", a, b, base+1)
		}
	})
}

// Forwarding headers name the client only when a trusted proxy sent them.
func TestTrustedProxies(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "the right password, unused here"
		e.user("eve@acme.example", deadbolt.RoleEndUser, pw)
		// Straight to the service: a spoofed header changes nothing. 100
		// wrong passwords, each claiming another address, all count for the
		// connection's address, which is then refused.
		for i := range 100 {
			r := e.signIn(fmt.Sprintf("spoof%03d@acme.example", i), "a wrong password guess",
				"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i), "Forwarded", fmt.Sprintf("for=198.51.100.%d", i))
			want(t, fmt.Sprintf("spoofed wrong password %d", i), r, 401, "invalid_credentials")
		}
		want(t, "another spoofed address after 100", e.signIn("spoof-last@acme.example", "a wrong password guess",
			"X-Forwarded-For", "192.0.2.200"), 429, "rate_limited")
		evs, _ := e.db.FindEvents(t.Context(), e.acc.ID, deadbolt.AuditFilter{Type: deadbolt.AuditSignInFailed, Limit: 5})
		for _, ev := range evs {
			if ev.IP != "127.0.0.1" {
				t.Fatalf("audit IP with a spoofed header = %q, want the connection's 127.0.0.1", ev.IP)
			}
		}

		// Behind a trusted proxy (loopback here, and a 10/8 hop before it),
		// two clients are limited apart, and the audit log names each.
		trusted, err := clientip.Parse("127.0.0.0/8, ::1, 10.0.0.0/8")
		if err != nil {
			t.Fatal(err)
		}
		direct := e.url
		e.url = e.serve(web.Options{TrustedProxies: trusted})
		defer func() { e.url = direct }()
		for i := range 100 {
			want(t, "a wrong password from client A", e.signIn(fmt.Sprintf("a%03d@acme.example", i), "a wrong password guess",
				"X-Forwarded-For", "198.51.100.7, 10.1.2.3"), 401, "invalid_credentials")
		}
		want(t, "client A after 100", e.signIn("a-last@acme.example", "a wrong password guess", "X-Forwarded-For", "198.51.100.7"), 429, "rate_limited")
		want(t, "client B, limited apart", e.signIn("b@acme.example", "a wrong password guess", "Forwarded", `for="198.51.100.8:4711"`), 401, "invalid_credentials")
		r := e.signIn("eve@acme.example", pw, "X-Forwarded-For", "198.51.100.9", "User-Agent", firefoxLinux)
		if r.str("status") != "signed_in" {
			t.Fatalf("eve through the proxy = %s", r.raw)
		}
		evs, _ = e.db.FindEvents(t.Context(), e.acc.ID, deadbolt.AuditFilter{Type: deadbolt.AuditSignInFailed, Limit: 1})
		if len(evs) != 1 || evs[0].IP != "198.51.100.8" {
			t.Errorf("audit IP through the proxy = %+v, want client B's 198.51.100.8", evs)
		}
		sessions := listOf(e.req("GET", "/api/v1/me/sessions", r.str("session_token"), nil), "sessions")
		if len(sessions) != 1 || sessions[0]["ip"] != "198.51.100.9" {
			t.Errorf("eve's sessions = %v, want one from 198.51.100.9", sessions)
		}
		// An IPv6 client is counted by its /64: hopping addresses in it gains
		// nothing; the next /64 is another client.
		for i := range 100 {
			want(t, "a wrong password from an IPv6 client", e.signIn(fmt.Sprintf("v6-%03d@acme.example", i), "a wrong password guess",
				"X-Forwarded-For", fmt.Sprintf("2001:db8:1:2::%x", i+1)), 401, "invalid_credentials")
		}
		want(t, "another address of the same /64", e.signIn("v6-last@acme.example", "a wrong password guess",
			"X-Forwarded-For", "2001:db8:1:2:ffff:ffff:ffff:ffff"), 429, "rate_limited")
		want(t, "the next /64", e.signIn("v6-next@acme.example", "a wrong password guess",
			"X-Forwarded-For", "2001:db8:1:3::1"), 401, "invalid_credentials")
	})
}

// Every event a request causes records its client, admin actions too.
func TestAuditRecordsClient(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		tok, _ := e.ownerTOTP()
		const ua = "acme-provisioning/2.1 (+ops@acme.example)"
		for _, c := range []struct {
			method, path string
			body         any
			event        string
		}{
			{"POST", acme + "/users", map[string]string{"email": "new@acme.example", "name": "New", "role": "agent"}, deadbolt.AuditUserCreated},
			{"PUT", acme + "/policy", map[string]any{"session_idle_minutes": 30}, deadbolt.AuditPolicyChanged},
			{"POST", acme + "/api-tokens", map[string]string{"description": "ci"}, deadbolt.AuditAPITokenCreated},
			{"POST", acme + "/reports/two-factor/email", nil, deadbolt.AuditReportEmailed},
		} {
			if r := e.req(c.method, c.path, tok, c.body, "User-Agent", ua); r.status >= 300 {
				t.Fatalf("%s %s = %d %s", c.method, c.path, r.status, r.raw)
			}
			evs := listOf(e.req("GET", acme+"/audit?limit=20&type="+c.event, tok, nil), "events")
			if len(evs) == 0 || evs[0]["ip"] != "127.0.0.1" || evs[0]["user_agent"] != ua {
				t.Errorf("%s after %s %s = %v, want ip 127.0.0.1 and the user agent", c.event, c.method, c.path, evs)
			}
		}
	})
}

// Small hardening: HSTS over HTTPS only, no directory listing under
// /static/, and the development outbox only for this machine by name.
func TestHardeningHeadersAndPaths(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		if r := e.reqHeaders("GET", "/healthz", "", ""); r.header.Get("Strict-Transport-Security") != "" {
			t.Errorf("HSTS over plain HTTP = %q, want none", r.header.Get("Strict-Transport-Security"))
		}
		for _, p := range []string{"/static/", "/static", "/static/.", "/static//"} {
			r := e.reqHeaders("GET", p, "", "")
			if r.status != http.StatusNotFound && r.status != http.StatusMovedPermanently {
				t.Errorf("GET %s = %d %q, want 404 (no listing)", p, r.status, r.raw)
			}
			if strings.Contains(r.raw, "<a href") {
				t.Errorf("GET %s lists the directory: %q", p, r.raw)
			}
		}
		outbox := e.serve(web.Options{Outbox: fakeOutbox{}})
		for _, c := range []struct {
			name    string
			headers []string
			want    int
		}{
			{"by 127.0.0.1", nil, 200},
			{"by localhost", []string{"Host", "localhost:8080"}, 200},
			{"by a rebound name", []string{"Host", "evil.example:8080"}, 403},
			{"forwarded by a proxy", []string{"X-Forwarded-For", "203.0.113.9"}, 403},
		} {
			req, _ := http.NewRequest("GET", outbox+"/dev/outbox", nil)
			for i := 0; i+1 < len(c.headers); i += 2 {
				if c.headers[i] == "Host" {
					req.Host = c.headers[i+1]
				} else {
					req.Header.Set(c.headers[i], c.headers[i+1])
				}
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.want {
				t.Errorf("outbox %s = %d, want %d", c.name, res.StatusCode, c.want)
			}
		}
	})
}

// fakeOutbox is an empty development outbox: the test is about who may
// see the page, not what it holds.
type fakeOutbox struct{}

func (fakeOutbox) Messages() []notify.OutboxEntry { return nil }
