package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

// TestSSOBrowser signs people in in a real headless Chromium through an
// identity provider that was not written here (zitadel/oidc's example
// server and its login page): by the "Sign in with" button, and by typing
// a work email (home-realm discovery).
func TestSSOBrowser(t *testing.T) {
	o, idp, _ := ssoEnv(t, storetest.Databases[0])
	ctx := browser(t)
	location := func() *url.URL {
		t.Helper()
		var loc string
		run(t, ctx, "location", chromedp.Location(&loc))
		u, _ := url.Parse(loc)
		return u
	}
	atIdP := func(what string) {
		t.Helper()
		if u := location(); "http://"+u.Host != idp.url || u.Path != "/login/username" {
			t.Fatalf("%s led to %s, want the identity provider's login page at %s", what, u, idp.url)
		}
	}
	logIn := func(username string) {
		t.Helper()
		run(t, ctx, "log in at the IdP",
			chromedp.SetValue("#username", username, chromedp.ByQuery),
			chromedp.SetValue("#password", idpPassword, chromedp.ByQuery),
			chromedp.Click("button[type=submit]", chromedp.ByQuery),
			chromedp.WaitVisible("main h1", chromedp.ByQuery))
		if u := location(); u.Host != strings.TrimPrefix(o.url, "http://") || u.Path != "/accounts/acme/security" {
			t.Fatalf("after the IdP the browser is at %s, want Deadbolt's security page", u)
		}
		if txt := text(t, ctx, "header"); !strings.Contains(txt, "Sign out") {
			t.Errorf("the page after SSO is not signed in: %q", txt)
		}
	}

	run(t, ctx, "sign-in page", chromedp.Navigate(o.url+"/accounts/acme/signin"),
		chromedp.WaitVisible(`//a[contains(., "Sign in with Acme Login")]`, chromedp.BySearch))
	shot(t, ctx, "sso-signin")
	run(t, ctx, "click Sign in with Acme Login", chromedp.Click(`//a[contains(., "Sign in with Acme Login")]`, chromedp.BySearch),
		chromedp.WaitVisible("#username", chromedp.ByQuery))
	atIdP("the button")
	logIn("jit@acme.example")
	shot(t, ctx, "sso-signed-in")

	run(t, ctx, "sign out", chromedp.Click(`header form button`, chromedp.ByQuery), chromedp.WaitVisible("#email", chromedp.ByQuery))
	run(t, ctx, "home-realm discovery",
		chromedp.SetValue("#sso-email", "jit@acme.example", chromedp.ByQuery),
		chromedp.Click(`//button[contains(., "Continue with SSO")]`, chromedp.BySearch),
		chromedp.WaitVisible("#username", chromedp.ByQuery))
	atIdP("a work email")
	logIn("jit@acme.example")
}
