package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deadbolt/deadbolt"
)

// TestMalformedRequests sends hundreds of bad requests to every endpoint:
// each must get a 4xx JSON error, never a 5xx, and change nothing.
func TestMalformedRequests(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const pw = "malformed inputs all day"
		secretB32, _ := e.withTOTP("mal@acme.example", pw)
		ch := e.challenge("mal@acme.example", pw)
		tok := e.verify(ch, "totp", oathtool(t, secretB32, e.clock.Now()), false).str("session_token")
		pending := e.req("POST", "/api/v1/me/factors", tok, map[string]string{"kind": "totp"}).body["factor"].(map[string]any)["id"].(string)
		ch = e.challenge("mal@acme.example", pw)

		bodies := []string{
			``, ` `, `null`, `[]`, `"string"`, `42`, `{`, `{"email":}`, `{"email": "a@b.c"} trailing`, `{} {}`,
			`{"email": 1, "password": 2}`, `{"email": ["a"]}`, `{"email": {"x": 1}}`, `{"unknown": true}`,
			`{"email": "a@b.c", "password": "pw", "extra": 1}`, `{"code": 123456}`, `{"code": true}`, `{"code": null, "x": 1}`,
			`{"challenge_token": 5}`, `{"remember_device": "yes"}`, `{"method": ["totp"]}`, `{"kind": 1}`, `{"kind": "sms"}`,
			`{"kind": "carrier-pigeon"}`, `{"kind": ""}`, `{"phone": "+1"}`, `{"current_password": 1}`,
			`{"new_password": ""}`, `{"password": ""}`, `{"method": "totp", "code": ""}`, `{"method": "", "code": "123456"}`,
			"{\"email\": \"\xff\xfe\"}", `{"email": "` + strings.Repeat("a", 70000) + `"}`, strings.Repeat(`[`, 10000),
			`{"code": "١٢٣٤٥٦"}`, `{"code": "１２３４５６"}`, `{"code": "12345"}`, `{"code": "1234567"}`, `{"code": " "}`,
			`{"code": "12345a"}`, `{"code": "-12345"}`, `{"code": "` + strings.Repeat("9", 5000) + `"}`,
			`{"email": "a@b.c", "password": "` + strings.Repeat("x", 5000) + `"}`, `{"email": "not an email", "password": "x"}`,
			`{"email": "a@b.c", "password": ""}`, `{"email": "a@b.c\u0000", "password": "x"}`,
		}
		for _, method := range []string{"totp", "recovery_code", "sms", "", "TOTP", "webauthn"} {
			for _, code := range []string{"", "١٢٣٤٥٦", "１２３４５６", "12 34 56", "0", "99999999", "abcde-fghjk", "\u202e123456"} {
				bodies = append(bodies, fmt.Sprintf(`{"challenge_token": %q, "method": %q, "code": %q}`, ch, method, code))
			}
		}
		paths := []struct{ method, path, token string }{
			{"POST", "/api/v1/accounts/acme/signin", ""},
			{"POST", "/api/v1/accounts/" + strings.Repeat("x", 300) + "/signin", ""},
			{"POST", "/api/v1/signin/verify", ""},
			{"POST", "/api/v1/me/factors", tok},
			{"POST", "/api/v1/me/factors/" + pending + "/confirm", tok},
			{"POST", "/api/v1/me/factors/nope/confirm", tok},
			{"POST", "/api/v1/me/password", tok},
			{"POST", "/api/v1/me/step-up", tok},
		}
		contentTypes := []string{"application/json", "text/plain", "", "application/json; charset=utf-8", "application/x-www-form-urlencoded"}
		sent := 0
		for _, p := range paths {
			for _, body := range bodies {
				for _, ct := range contentTypes[:2+sent%3] {
					r := e.reqRaw(p.method, p.path, p.token, body, ct)
					sent++
					if r.status >= 500 || r.status < 400 && r.status != 200 && r.status != 201 {
						t.Fatalf("%s %s %q (%s) = %d %s", p.method, p.path, trim(body), ct, r.status, r.raw)
					}
					if r.status >= 400 && r.errCode() == "" {
						t.Fatalf("%s %s %q = %d without a JSON error: %q", p.method, p.path, trim(body), r.status, r.raw)
					}
				}
			}
		}
		// Headers and tokens of every odd shape.
		for _, auth := range []string{"", "Bearer", "Bearer ", "Basic xyz", "Bearer dbs_", "Bearer dbc_", "Bearer " + strings.Repeat("x", 9000),
			"Bearer dbs_" + strings.Repeat("A", 26), "bearer " + tok + "x", "Bearer \u00ff"} {
			for _, path := range []string{"/api/v1/me", "/api/v1/me/factors", "/api/v1/me/sessions", "/api/v1/me/devices"} {
				r := e.reqRaw("GET", path, "", "", "", "Authorization", auth)
				sent++
				want(t, "GET "+path+" with "+trim(auth), r, 401, "unauthorized")
			}
		}
		for _, tt := range []struct{ method, path string }{
			{"GET", "/api/v1/accounts/acme/signin"}, {"PUT", "/api/v1/signin/verify"}, {"DELETE", "/api/v1/me"},
			{"GET", "/api/v1/nope"}, {"GET", "/api/v2/me"}, {"POST", "/api/v1/me/factors/x/y/z"}, {"PATCH", "/api/v1/me/password"},
		} {
			r := e.reqRaw(tt.method, tt.path, tok, "", "")
			sent++
			if r.status != 404 && r.status != 405 || r.errCode() == "" {
				t.Errorf("%s %s = %d %s, want a JSON 404 or 405", tt.method, tt.path, r.status, r.raw)
			}
		}
		for _, dev := range []string{"dbd_", "dbd_" + strings.Repeat("z", 500), "garbage", "dbd_\u00e9\u00e9"} {
			r := e.signIn("mal@acme.example", pw, "Deadbolt-Device", dev)
			sent++
			if r.status != 200 || r.str("status") != "second_factor_required" {
				t.Errorf("sign in with device header %q = %d %s", trim(dev), r.status, r.raw)
			}
		}
		t.Logf("%d malformed requests, no 5xx", sent)
		if sent < 300 {
			t.Errorf("only %d requests sent, want hundreds", sent)
		}
		// Nothing changed: still one active factor, the session still works.
		e.clock.Advance(deadbolt.ChallengeTTL)
		factors := e.req("GET", "/api/v1/me/factors", tok, nil).body["factors"].([]any)
		active := 0
		for _, f := range factors {
			if f.(map[string]any)["status"] == "active" {
				active++
			}
		}
		if active != 1 {
			t.Errorf("active factors after the barrage = %d, want 1", active)
		}
	})
}

func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// reqRaw sends a body as it is, with the content type given.
func (e *env) reqRaw(method, path, token, body, contentType string, headers ...string) response {
	e.t.Helper()
	h := append([]string{}, headers...)
	if contentType != "" {
		h = append(h, "Content-Type", contentType)
	}
	return e.reqHeaders(method, path, token, body, h...)
}
