package web_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
	"github.com/deadbolt/deadbolt/internal/totp"
)

// browser starts a headless Chromium for the test; screenshots go to
// $DEADBOLT_SCREENSHOTS (default: testdata/screenshots under the package).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed")
	}
	// Chromium's helpers may still write to their profile for a moment after
	// the browser is closed: the profile is removed with best effort, not
	// by t.TempDir (whose cleanup fails the test when it cannot).
	profile, err := os.MkdirTemp("", "deadbolt-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1100, 1400))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shot saves a screenshot of the page as a test artifact.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("DEADBOLT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("%-28s %v", what, time.Since(start).Round(time.Millisecond)) }()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var body string
		chromedp.Run(ctx, chromedp.Text("body", &body, chromedp.ByQuery))
		t.Fatalf("%s: %v\npage: %s", what, err, body)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	// A node read while the page is still being replaced (a redirect's
	// last hop) is gone by the time it is asked for: read it again.
	for range 3 {
		err := chromedp.Run(ctx, chromedp.WaitReady(sel, chromedp.ByQuery), chromedp.Text(sel, &s, chromedp.ByQuery))
		if err == nil || !strings.Contains(err.Error(), "No node with given id") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	run(t, ctx, "read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// TestBrowser drives the pages in a real headless Chromium: sign-in with
// 2-step verification, TOTP set-up from the page, the QR code, recovery
// codes, "don't ask again", an admin requiring 2FA and an agent's forced
// set-up, and a cross-site form post refused.
func TestBrowser(t *testing.T) {
	keys, _ := secret.Generate()
	clk := newClock()
	e := newEnvClock(t, storetest.OpenSQLiteAt(t, keys, clk.Now), keys, "", clk)
	ctx := browser(t)
	const pw = "a browser passphrase of my own"
	e.user("ada@acme.example", deadbolt.RoleAgent, pw)
	base := e.url + "/accounts/acme"

	signIn := func(email, password string) {
		t.Helper()
		run(t, ctx, "sign in "+email,
			chromedp.Navigate(base+"/signin"),
			chromedp.WaitVisible("#email", chromedp.ByQuery),
			chromedp.SetValue("#email", email, chromedp.ByQuery),
			chromedp.SetValue("#password", password, chromedp.ByQuery),
			chromedp.Submit("#password", chromedp.ByQuery),
			chromedp.WaitReady("main h1", chromedp.ByQuery))
	}
	enterCode := func(code string) {
		t.Helper()
		run(t, ctx, "enter code", chromedp.SetValue("#code", code, chromedp.ByQuery), chromedp.Submit("#code", chromedp.ByQuery),
			chromedp.WaitReady("main h1", chromedp.ByQuery))
	}

	// 1. Sign-in without 2FA: a new device gets the emailed code.
	run(t, ctx, "sign-in page", chromedp.Navigate(base+"/signin"), chromedp.WaitVisible("#email", chromedp.ByQuery))
	shot(t, ctx, "01-signin")
	signIn("ada@acme.example", pw)
	if h := text(t, ctx, "main h1"); h != "Verify this device" {
		t.Fatalf("after the password: %q, want the device verification page", h)
	}
	shot(t, ctx, "02-device-verification")
	enterCode(e.inbox.waitCode(t, "ada@acme.example", 1))
	if h := text(t, ctx, "main h1"); h != "Security settings" {
		t.Fatalf("after the code: %q, want security settings", h)
	}
	shot(t, ctx, "03-security-settings")

	// 2. Set up an authenticator app from the page: read the key, compute
	// the code; the QR image holds the otpauth URI.
	run(t, ctx, "choose TOTP", chromedp.Navigate(base+"/security/setup"), chromedp.WaitVisible("form button", chromedp.ByQuery))
	shot(t, ctx, "04-setup-choose")
	run(t, ctx, "start TOTP", chromedp.Click(`//button[contains(., "authenticator app")]`, chromedp.BySearch),
		chromedp.WaitVisible("#secret", chromedp.ByQuery))
	shot(t, ctx, "05-setup-totp")
	key := strings.ReplaceAll(text(t, ctx, "#secret"), " ", "")
	var src string
	run(t, ctx, "QR", chromedp.AttributeValue("img.qr", "src", &src, nil, chromedp.ByQuery))
	png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "data:image/png;base64,"))
	if err != nil {
		t.Fatalf("QR src is not a base64 PNG: %v", err)
	}
	if uri := zbar(t, png); !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "secret="+key) || !strings.Contains(uri, "ada@acme.example") {
		t.Errorf("the QR code holds %q, want the otpauth URI with the key %s", uri, key)
	}
	secretBytes := decodeKey(t, key)
	enterCode(totp.Code(secretBytes, totp.Step(e.clock.Now())))
	if h := text(t, ctx, "main h1"); h != "Save your recovery codes" {
		t.Fatalf("after confirming: %q, want the recovery codes page", h)
	}
	shot(t, ctx, "06-recovery-codes")
	codes := regexp.MustCompile(`[a-z2-9]{5}-[a-z2-9]{5}`).FindAllString(text(t, ctx, "ol.codes"), -1)
	if len(codes) != 10 {
		t.Fatalf("recovery codes on the page = %d, want 10", len(codes))
	}
	run(t, ctx, "sign out", chromedp.Click(`//button[contains(., "Sign out")]`, chromedp.BySearch), chromedp.WaitVisible("#email", chromedp.ByQuery))

	// 3. Sign in with TOTP and "don't ask again" (ticked by default).
	e.clock.Advance(30 * time.Second)
	signIn("ada@acme.example", pw)
	if h := text(t, ctx, "main h1"); h != "Enter the code from your authenticator app" {
		t.Fatalf("second sign-in: %q, want the TOTP prompt", h)
	}
	var checked bool
	run(t, ctx, "remember box", chromedp.JavascriptAttribute("#remember", "checked", &checked, chromedp.ByQuery))
	if !checked {
		t.Errorf("\"Don't ask again\" is not ticked by default")
	}
	shot(t, ctx, "07-totp-prompt")
	enterCode(totp.Code(secretBytes, totp.Step(e.clock.Now())))
	if h := text(t, ctx, "main h1"); h != "Security settings" {
		t.Fatalf("after TOTP: %q", h)
	}
	run(t, ctx, "sign out", chromedp.Click(`//button[contains(., "Sign out")]`, chromedp.BySearch), chromedp.WaitVisible("#email", chromedp.ByQuery))

	// 4. The same browser skips the second factor now.
	signIn("ada@acme.example", pw)
	if h := text(t, ctx, "main h1"); h != "Security settings" {
		t.Fatalf("sign-in from the remembered browser: %q, want no second factor", h)
	}
	run(t, ctx, "sign out", chromedp.Click(`//button[contains(., "Sign out")]`, chromedp.BySearch), chromedp.WaitVisible("#email", chromedp.ByQuery))

	// 5. A recovery code, in a fresh browser (not remembered).
	ctx2 := browser(t)
	ctxSaved := ctx
	ctx = ctx2
	signIn("ada@acme.example", pw)
	if h := text(t, ctx, "main h1"); h != "Verify this device" && h != "Enter the code from your authenticator app" {
		t.Fatalf("fresh browser: %q", h)
	}
	run(t, ctx, "use a recovery code", chromedp.Navigate(base+"/signin/verify?method=recovery_code"), chromedp.WaitVisible("#code", chromedp.ByQuery))
	shot(t, ctx, "08-recovery-prompt")
	enterCode(strings.ToUpper(codes[0]))
	if h := text(t, ctx, "main h1"); h != "Security settings" {
		t.Fatalf("after a recovery code: %q", h)
	}
	if txt := text(t, ctx, "main"); !strings.Contains(txt, "9 unused recovery codes") {
		t.Errorf("security page does not say 9 codes are left: %q", txt)
	}
	ctx = ctxSaved

	// 6. The owner requires 2FA; an agent is taken through forced set-up.
	ownerKey := setUpOwnerTOTP(t, e)
	_ = ownerKey
	e.user("bob@acme.example", deadbolt.RoleAgent, pw+" bob")
	signIn("owner@acme.example", ownerPassword)
	if h := text(t, ctx, "main h1"); h != "Verify this device" && h != "Enter the code from your authenticator app" {
		t.Fatalf("owner sign-in: %q", h)
	}
	e.clock.Advance(30 * time.Second)
	enterCode(totp.Code(ownerKey, totp.Step(e.clock.Now())))
	run(t, ctx, "admin center", chromedp.Navigate(base+"/admin"), chromedp.WaitVisible("#req_team", chromedp.ByQuery))
	shot(t, ctx, "09-admin-policy")
	run(t, ctx, "require 2FA", chromedp.SetAttributeValue("#req_team", "checked", "checked", chromedp.ByQuery),
		chromedp.Submit("#req_team", chromedp.ByQuery), chromedp.WaitReady("main h1", chromedp.ByQuery))
	if txt := text(t, ctx, "main"); !strings.Contains(txt, "The policy is saved") {
		t.Fatalf("saving the policy: %q", txt)
	}
	run(t, ctx, "people", chromedp.Navigate(base+"/admin/people"), chromedp.WaitVisible("table", chromedp.ByQuery))
	shot(t, ctx, "10-admin-people")
	run(t, ctx, "audit", chromedp.Navigate(base+"/admin/audit"), chromedp.WaitVisible("table", chromedp.ByQuery))
	shot(t, ctx, "11-admin-audit")
	run(t, ctx, "sign out", chromedp.Click(`//button[contains(., "Sign out")]`, chromedp.BySearch), chromedp.WaitVisible("#email", chromedp.ByQuery))

	e.settle()
	bobMails := len(e.inbox.to("bob@acme.example"))
	signIn("bob@acme.example", pw+" bob")
	// A new device: the emailed code first, so a password alone never
	// binds an authenticator to the account.
	if h := text(t, ctx, "main h1"); h != "Verify this device" {
		t.Fatalf("agent after 2FA is required, on a new device: %q, want device verification first", h)
	}
	enterCode(e.inbox.waitCode(t, "bob@acme.example", bobMails+1))
	if h := text(t, ctx, "main h1"); h != "Set up two-factor authentication" {
		t.Fatalf("agent after 2FA is required: %q, want forced set-up", h)
	}
	shot(t, ctx, "12-forced-setup")
	run(t, ctx, "start TOTP", chromedp.Click(`//button[contains(., "authenticator app")]`, chromedp.BySearch), chromedp.WaitVisible("#secret", chromedp.ByQuery))
	bobKey := decodeKey(t, strings.ReplaceAll(text(t, ctx, "#secret"), " ", ""))
	enterCode("000000")
	if txt := text(t, ctx, "main"); !strings.Contains(txt, "not right") {
		t.Errorf("a wrong code at set-up: %q", txt)
	}
	enterCode(totp.Code(bobKey, totp.Step(e.clock.Now())))
	if h := text(t, ctx, "main h1"); h != "Save your recovery codes" {
		t.Fatalf("forced set-up done: %q", h)
	}
	run(t, ctx, "continue", chromedp.Click(`//a[contains(., "I have stored")]`, chromedp.BySearch), chromedp.WaitReady("main h1", chromedp.ByQuery))
	if h := text(t, ctx, "main h1"); h != "Security settings" {
		t.Fatalf("after forced set-up: %q, want a session", h)
	}

	// 7. A form posted from another site is refused.
	evil := fmt.Sprintf(`<form id="f" method="post" action="%s/security/password"><input name="current_password" value="x"><input name="new_password" value="a hijacked password value"></form>`, base)
	var status string
	run(t, ctx, "cross-site post",
		chromedp.Navigate("data:text/html,"+evil),
		chromedp.Submit("#f", chromedp.ByQuery),
		chromedp.Sleep(500*time.Millisecond), // the refusal is a page with no element to wait for
		chromedp.Text("body", &status, chromedp.ByQuery))
	if !strings.Contains(strings.ToLower(status), "cross-origin") && !strings.Contains(strings.ToLower(status), "forbidden") {
		t.Errorf("a cross-site form post was answered with %q, want it refused", status)
	}
	e.signIn("bob@acme.example", pw+" bob") // still the old password
}

// setUpOwnerTOTP gives the owner an authenticator app through the API and
// returns its key.
func setUpOwnerTOTP(t *testing.T, e *env) []byte {
	t.Helper()
	tok := e.session("owner@acme.example", ownerPassword)
	b32, _ := e.enrolTOTP(tok)
	return decodeKey(t, b32)
}

func decodeKey(t *testing.T, b32 string) []byte {
	t.Helper()
	k, err := base32NoPad(b32)
	if err != nil {
		t.Fatalf("the key %q is not base32: %v", b32, err)
	}
	return k
}

// zbar decodes a QR code PNG with Debian's zbarimg.
func zbar(t *testing.T, png []byte) string {
	t.Helper()
	if _, err := exec.LookPath("zbarimg"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zbarimg is not installed (apt-get install zbar-tools)")
		}
		t.Skip("zbarimg is not installed")
	}
	f := filepath.Join(t.TempDir(), "qr.png")
	os.WriteFile(f, png, 0o644)
	out, err := exec.Command("zbarimg", "--raw", "-q", f).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	return strings.TrimSpace(string(out))
}
