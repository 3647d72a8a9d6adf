package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/deadbolt/deadbolt/internal/oidc"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

// browserApp is a small web application that signs people in with
// Deadbolt, written as one would with go-oidc and x/oauth2: the state in a
// cookie of its own, the PKCE verifier and nonce kept on its side, the code
// exchanged and the ID token verified at the callback.
type browserApp struct {
	t   *testing.T
	url string

	mu       sync.Mutex
	cfg      *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	pending  map[string]appSignIn // by state
}

type appSignIn struct{ pkce, nonce string }

const appStateCookie = "app_state"

// newBrowserApp starts the application. It is served as localhost, another
// site than Deadbolt's 127.0.0.1, as an application is in life; it is
// configured (configure) once its client is registered for its URL.
func newBrowserApp(t *testing.T) *browserApp {
	app := &browserApp{t: t, pending: map[string]appSignIn{}}
	srv := httptest.NewServer(http.HandlerFunc(app.serve))
	t.Cleanup(srv.Close)
	app.url = strings.Replace(srv.URL, "//127.0.0.1:", "//localhost:", 1)
	return app
}

func (a *browserApp) configure(cfg *oauth2.Config, v *gooidc.IDTokenVerifier) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.verifier = cfg, v
}

func (a *browserApp) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	cfg, verifier := a.cfg, a.verifier
	a.mu.Unlock()
	switch r.URL.Path {
	case "/":
		appPage(w, http.StatusOK, `<h1>The Wiki</h1><p><a href="/login">Sign in with Deadbolt</a></p>`)
	case "/login":
		state, nonce, pkce := randomString(), randomString(), oauth2.GenerateVerifier()
		a.mu.Lock()
		a.pending[state] = appSignIn{pkce: pkce, nonce: nonce}
		a.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: appStateCookie, Value: state, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
			MaxAge: 600})
		http.Redirect(w, r, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(pkce), gooidc.Nonce(nonce)), http.StatusFound)
	case "/callback":
		who, amr, acr, err := a.callback(r, cfg, verifier)
		if err != nil {
			a.t.Errorf("the application's callback (%s): %v", r.URL, err)
			appPage(w, http.StatusBadRequest, `<h1 id="app-error">`+html.EscapeString(err.Error())+`</h1>`)
			return
		}
		appPage(w, http.StatusOK, fmt.Sprintf(`<h1 id="who">Signed in as %s</h1><p id="amr">%s</p><p id="acr">%s</p>`,
			html.EscapeString(who), html.EscapeString(strings.Join(amr, " ")), html.EscapeString(acr)))
	default:
		http.NotFound(w, r)
	}
}

// callback checks the state against the browser's cookie, exchanges the
// code with the PKCE verifier and verifies the ID token and its nonce.
func (a *browserApp) callback(r *http.Request, cfg *oauth2.Config, verifier *gooidc.IDTokenVerifier) (email string, amr []string, acr string, err error) {
	q := r.URL.Query()
	c, cerr := r.Cookie(appStateCookie)
	if cerr != nil || c.Value == "" || c.Value != q.Get("state") {
		return "", nil, "", fmt.Errorf("state %q does not match the browser's cookie (%v)", q.Get("state"), cerr)
	}
	a.mu.Lock()
	p, ok := a.pending[c.Value]
	delete(a.pending, c.Value)
	a.mu.Unlock()
	if !ok {
		return "", nil, "", fmt.Errorf("unknown state %q", c.Value)
	}
	if e := q.Get("error"); e != "" {
		return "", nil, "", fmt.Errorf("the provider answered %s: %s", e, q.Get("error_description"))
	}
	tok, err := cfg.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.pkce))
	if err != nil {
		return "", nil, "", fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(r.Context(), raw)
	if err != nil {
		return "", nil, "", fmt.Errorf("ID token: %w", err)
	}
	if idt.Nonce != p.nonce {
		return "", nil, "", fmt.Errorf("nonce %q, want %q", idt.Nonce, p.nonce)
	}
	var cl struct {
		Email string   `json:"email"`
		AMR   []string `json:"amr"`
		ACR   string   `json:"acr"`
	}
	if err := idt.Claims(&cl); err != nil {
		return "", nil, "", err
	}
	return cl.Email, cl.AMR, cl.ACR, nil
}

func appPage(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>The Wiki</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:40rem}</style></head><body>%s</body></html>`, body)
}

// TestOIDCBrowserSignIn signs a person in to an application in a real
// headless Chromium, through Deadbolt's own pages: the application's
// link, the sign-in form, the authenticator code, and back at the
// application with an ID token that says two factors were used.
func TestOIDCBrowserSignIn(t *testing.T) {
	keys, _ := secret.Generate()
	clk := newClock()
	e := newEnvClock(t, storetest.OpenSQLiteAt(t, keys, clk.Now), keys, "", clk)
	o := e.withOIDC()
	const email, pw = "agent@acme.example", "correct horse battery staple"
	secretB32, _ := e.withTOTP(email, pw)
	ctx := browser(t)

	app := newBrowserApp(t)
	c, sec := o.client(e.acc, oidc.ClientInput{RedirectURIs: []string{app.url + "/callback"}})
	p, err := gooidc.NewProvider(context.Background(), o.issuer("acme"))
	if err != nil {
		t.Fatalf("discovery of %s: %v", o.issuer("acme"), err)
	}
	app.configure(&oauth2.Config{ClientID: c.ID, ClientSecret: sec, Endpoint: p.Endpoint(), RedirectURL: app.url + "/callback",
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email"}}, p.Verifier(&gooidc.Config{ClientID: c.ID}))

	location := func() *url.URL {
		t.Helper()
		var loc string
		run(t, ctx, "location", chromedp.Location(&loc))
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("location %q: %v", loc, err)
		}
		return u
	}

	run(t, ctx, "application", chromedp.Navigate(app.url+"/"),
		chromedp.WaitVisible(`//a[contains(., "Sign in with Deadbolt")]`, chromedp.BySearch))
	run(t, ctx, "sign in with Deadbolt", chromedp.Click(`//a[contains(., "Sign in with Deadbolt")]`, chromedp.BySearch),
		chromedp.WaitVisible("#email", chromedp.ByQuery))
	if u := location(); u.Scheme+"://"+u.Host != o.url || u.Path != "/accounts/acme/signin" {
		t.Fatalf("the application's link led to %s, want Deadbolt's sign-in page at %s/accounts/acme/signin", u, o.url)
	}
	if txt := text(t, ctx, "main"); !strings.Contains(txt, "continue to the application") {
		t.Errorf("the sign-in page does not say it is for the application: %q", txt)
	}
	shot(t, ctx, "oidc-signin")

	run(t, ctx, "password",
		chromedp.SetValue("#email", email, chromedp.ByQuery),
		chromedp.SetValue("#password", pw, chromedp.ByQuery),
		chromedp.Click("form:has(#password) button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#code", chromedp.ByQuery))
	if h := text(t, ctx, "main h1"); h != "Enter the code from your authenticator app" {
		t.Fatalf("after the password: %q, want the authenticator code", h)
	}
	shot(t, ctx, "oidc-totp")

	code := oathtool(t, secretB32, e.clock.Now())
	run(t, ctx, "authenticator code",
		chromedp.SetValue("#code", code, chromedp.ByQuery),
		chromedp.Click("form:has(#code) button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#who, #app-error", chromedp.ByQuery))
	e.clock.Advance(30 * time.Second)
	if u := location(); !strings.HasPrefix(u.String(), app.url+"/callback?") {
		t.Errorf("after the code the browser is at %s, want the application's callback", u)
	}
	if who := text(t, ctx, "h1"); who != "Signed in as "+email {
		t.Fatalf("the application says %q, want %q", who, "Signed in as "+email)
	}
	amr := strings.Fields(text(t, ctx, "#amr"))
	if !hasAll(amr, "otp", "mfa") {
		t.Errorf("amr = %v, want otp and mfa", amr)
	}
	if acr := text(t, ctx, "#acr"); acr != "mfa" {
		t.Errorf("acr = %q, want mfa", acr)
	}
	shot(t, ctx, "oidc-signed-in")
}
