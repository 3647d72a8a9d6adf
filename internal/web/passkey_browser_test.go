package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

// TestPasskeyBrowser uses Chromium's own virtual authenticator (the
// DevTools WebAuthn domain) through Deadbolt's pages: a passkey registered
// from the security settings, a passwordless sign-in from the sign-in
// page, and the passkey as the second step after a password.
func TestPasskeyBrowser(t *testing.T) {
	keys, _ := secret.Generate()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	base := newEnvClock(t, storetest.OpenSQLiteAt(t, keys, clk.Now), keys, "", clk)
	e, rp := base.withPasskeys()
	const email, pw = "customer@acme.example", "a customer's long passphrase"
	e.user(email, deadbolt.RoleEndUser, pw)
	ctx := browser(t)
	run(t, ctx, "virtual authenticator", webauthn.Enable(), chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := webauthn.AddVirtualAuthenticator(&webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
			Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
			HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}).Do(ctx)
		return err
	}))
	site := rp.Origin + "/accounts/acme"
	at := func(what, path string) {
		t.Helper()
		var loc string
		run(t, ctx, "location", chromedp.Location(&loc))
		if !strings.HasPrefix(loc, site+path) {
			t.Fatalf("%s: the browser is at %s, want %s", what, loc, site+path)
		}
	}
	passwordSignIn := func() {
		t.Helper()
		run(t, ctx, "password sign-in", chromedp.Navigate(site+"/signin"), chromedp.WaitVisible("#email", chromedp.ByQuery),
			chromedp.SetValue("#email", email, chromedp.ByQuery), chromedp.SetValue("#password", pw, chromedp.ByQuery),
			chromedp.Click("form:has(#password) button[type=submit]", chromedp.ByQuery), chromedp.WaitNotPresent("#password", chromedp.ByQuery),
			chromedp.WaitVisible("main h1", chromedp.ByQuery))
	}
	signOut := func() {
		t.Helper()
		run(t, ctx, "sign out", chromedp.Click("header form button", chromedp.ByQuery), chromedp.WaitVisible("#email", chromedp.ByQuery))
	}

	// Register: set-up page, name it, create it.
	passwordSignIn()
	at("password", "/security")
	run(t, ctx, "security settings: add a method", chromedp.Click(`//a[contains(., "Add a method")]`, chromedp.BySearch),
		chromedp.WaitVisible("#passkey-name", chromedp.ByQuery))
	shot(t, ctx, "passkey-setup")
	run(t, ctx, "add a passkey", chromedp.SetValue("#passkey-name", "This laptop", chromedp.ByQuery),
		chromedp.Click(`//button[contains(., "Add a passkey")]`, chromedp.BySearch), chromedp.WaitVisible("#create-passkey", chromedp.ByQuery))
	run(t, ctx, "create the passkey", chromedp.Click("#create-passkey", chromedp.ByQuery),
		chromedp.WaitVisible(`//h1[contains(., "recovery codes")]`, chromedp.BySearch))
	shot(t, ctx, "passkey-registered")
	u, _ := e.db.FindUserByEmail(context.Background(), e.acc.ID, email)
	factors, _ := e.db.FindFactors(context.Background(), e.acc.ID, u.ID)
	if len(factors) != 1 || factors[0].Kind != deadbolt.FactorWebAuthn || factors[0].Status != deadbolt.FactorActive || factors[0].Name != "This laptop" {
		t.Fatalf("after registration the factors are %+v, want one active passkey named This laptop", factors)
	}
	run(t, ctx, "security page", chromedp.Navigate(site+"/security"), chromedp.WaitVisible("main h1", chromedp.ByQuery))
	if txt := text(t, ctx, "main"); !strings.Contains(txt, "passkey") {
		t.Errorf("the security page does not list the passkey: %q", txt)
	}

	// A browser without autofill for passkeys (conditional mediation):
	// Chromium's virtual authenticator would answer an autofill request at
	// once, before any click. Passwordless by the button first.
	var noAutofill page.ScriptIdentifier
	run(t, ctx, "no autofill", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		noAutofill, err = page.AddScriptToEvaluateOnNewDocument(
			`PublicKeyCredential.isConditionalMediationAvailable = function () { return Promise.resolve(false); };`).Do(ctx)
		return err
	}))
	signOut()
	shot(t, ctx, "passkey-signin")
	run(t, ctx, "sign in with a passkey", chromedp.Click("#passkey-signin", chromedp.ByQuery), chromedp.WaitVisible("header form button", chromedp.ByQuery))
	at("passwordless", "/security")
	if n := e.auditCount(deadbolt.AuditSignInSucceeded, map[string]string{"method": "passkey"}); n != 1 {
		t.Errorf("signin.succeeded method passkey = %d, want 1", n)
	}

	// The passkey as the second step after the password.
	signOut()
	passwordSignIn()
	at("password with a passkey", "/signin/verify")
	shot(t, ctx, "passkey-second-factor")
	run(t, ctx, "use the passkey", chromedp.Click("#use-passkey", chromedp.ByQuery), chromedp.WaitVisible("header form button", chromedp.ByQuery))
	at("second factor", "/security")
	if n := e.auditCount(deadbolt.AuditSignInSucceeded, map[string]string{"method": "webauthn"}); n != 1 {
		t.Errorf("signin.succeeded method webauthn = %d, want 1", n)
	}
	// Step-up with it, on the confirmation page.
	run(t, ctx, "step-up", chromedp.Navigate(site+"/security/confirm"), chromedp.WaitVisible("#confirm-passkey", chromedp.ByQuery),
		chromedp.Click("#confirm-passkey", chromedp.ByQuery), chromedp.WaitNotPresent("#confirm-passkey", chromedp.ByQuery),
		chromedp.WaitVisible("main h1", chromedp.ByQuery))
	at("step-up", "/security?m=confirmed")

	// With autofill: the sign-in page asks at once (conditional
	// mediation), and the virtual authenticator answers.
	run(t, ctx, "autofill back", chromedp.ActionFunc(func(ctx context.Context) error {
		return page.RemoveScriptToEvaluateOnNewDocument(noAutofill).Do(ctx)
	}))
	run(t, ctx, "sign out", chromedp.Click("header form button", chromedp.ByQuery), chromedp.Sleep(2*time.Second),
		chromedp.WaitVisible("main h1", chromedp.ByQuery))
	at("autofill", "/security")
	if n := e.auditCount(deadbolt.AuditSignInSucceeded, map[string]string{"method": "passkey"}); n != 2 {
		t.Errorf("signin.succeeded method passkey after autofill = %d, want 2", n)
	}
}
