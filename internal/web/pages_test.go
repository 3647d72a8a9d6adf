package web_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
	"github.com/deadbolt/deadbolt/internal/web"
)

// TestPageCookiesAndHeaders checks the session cookie over HTTPS (the
// __Host- prefix, Secure, HttpOnly, SameSite=Lax) and the security headers
// of the pages, without a browser.
func TestPageCookiesAndHeaders(t *testing.T) {
	keys, _ := secret.Generate()
	db := storetest.OpenSQLite(t, keys)
	hasher := password.NewHasher(password.Params{Memory: 64, Time: 1, Threads: 1})
	h, _ := hasher.Hash("an end user's long passphrase")
	acc := &deadbolt.Account{Slug: "acme", Name: "Acme", Policy: deadbolt.DefaultPolicy()}
	owner := &deadbolt.User{Email: "o@acme.example", Name: "O", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
	if err := db.CreateAccount(t.Context(), acc, owner); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(t.Context(), &deadbolt.User{AccountID: acc.ID, Email: "end@acme.example", Name: "E", Role: deadbolt.RoleEndUser,
		AuthSource: deadbolt.AuthPassword, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	svc := signin.New(signin.Options{Store: db, Keys: keys, Hasher: hasher})
	srv := httptest.NewTLSServer(web.NewServer(web.Options{DB: db, SignIn: svc, PublicURL: "https://login.acme.example"}))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	res, err := c.Get(srv.URL + "/accounts/acme/signin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for k, want := range map[string]string{
		"Content-Security-Policy": "frame-ancestors 'none'", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Strict-Transport-Security": "max-age=63072000",
	} {
		if got := res.Header.Get(k); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP = %q, want no inline scripts or styles", csp)
	}

	res, err = c.PostForm(srv.URL+"/accounts/acme/signin", url.Values{"email": {"end@acme.example"}, "password": {"an end user's long passphrase"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in POST = %d, want a redirect", res.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "__Host-deadbolt_session" {
			session = ck
		}
	}
	if session == nil {
		t.Fatalf("no __Host-deadbolt_session cookie in %v", res.Cookies())
	}
	if !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Domain != "" {
		t.Errorf("session cookie = %+v, want Secure, HttpOnly, SameSite=Lax, Path=/, no Domain", session)
	}
	if !strings.HasPrefix(session.Value, "dbs_") || session.MaxAge <= 0 || session.MaxAge > int((12*time.Hour).Seconds()) {
		t.Errorf("session cookie value/max-age = %q/%d", session.Value[:4], session.MaxAge)
	}
	if loc := res.Header.Get("Location"); strings.Contains(loc, "dbs_") || strings.Contains(loc, "dbc_") {
		t.Errorf("a token in the redirect URL: %s", loc)
	}
	// A cross-site post is refused (the browser sends Sec-Fetch-Site).
	req, _ := http.NewRequest("POST", srv.URL+"/accounts/acme/security/password", strings.NewReader("current_password=x&new_password=y"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST = %d, want 403", res.StatusCode)
	}
	// Signed in: the security page works; signed out, it sends you to sign in.
	res, _ = c.Get(srv.URL + "/accounts/acme/security")
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("security page with the session = %d", res.StatusCode)
	}
	c.Jar, _ = cookiejar.New(nil)
	res, _ = c.Get(srv.URL + "/accounts/acme/security")
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasSuffix(strings.Split(res.Header.Get("Location"), "?")[0], "/accounts/acme/signin") {
		t.Errorf("security page without a session = %d %s, want a redirect to sign in", res.StatusCode, res.Header.Get("Location"))
	}
	// Another account's pages with this account's session: sign in there.
	res, _ = c.Get(srv.URL + "/accounts/nope/signin")
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("sign-in page of an unknown account = %d, want 404", res.StatusCode)
	}
}
