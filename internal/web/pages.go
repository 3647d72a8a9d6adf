package web

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

var funcs = template.FuncMap{
	"methodName": func(m string) string {
		return map[string]string{"totp": "authenticator app", "sms": "text message (SMS)", "email": "email",
			"recovery_code": "recovery code", "webauthn": "passkey or security key"}[m]
	},
	"roleName": func(r deadbolt.Role) string {
		return map[deadbolt.Role]string{deadbolt.RoleOwner: "Owner", deadbolt.RoleAdmin: "Admin", deadbolt.RoleAgent: "Agent",
			deadbolt.RoleEndUser: "End user"}[r]
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2 Jan 2006 15:04") + " UTC"
	},
	"mask":    func(p string) string { return deadbolt.MaskAddress(deadbolt.ChannelSMS, p) },
	"join":    strings.Join,
	"methods": signin.MethodsText,
	"has":     func(list []deadbolt.FactorKind, k deadbolt.FactorKind) bool { return slices.Contains(list, k) },
	"has2":    func(list []string, s string) bool { return slices.Contains(list, s) },
}

// pages are parsed once: each page is the layout plus its own file.
var pages = func() map[string]*template.Template {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n))
	}
	return out
}()

// page is the data of a page: the layout's keys and the page's own.
type page map[string]any

// render writes a page with the security headers every page gets.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages may hold codes and secrets: nothing is cached or leaked by the
	// Referer, nothing runs but our own files, nobody frames us.
	h.Set("Cache-Control", "no-store")
	formAction := "'self'"
	if src := s.oidcFormAction(r); src != "" {
		formAction += " " + src
	}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := pages[name].ExecuteTemplate(w, "layout", data); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
	}
}

// Cookies. Over HTTPS they carry the __Host- prefix (Secure, Path=/, no
// Domain: no subdomain can set or read them); on plain-HTTP localhost, for
// development, the prefix and Secure cannot be used.
func (s *Server) cookieName(base string) string {
	if s.secure {
		return "__Host-deadbolt_" + base
	}
	return "deadbolt_" + base
}

func (s *Server) setCookie(w http.ResponseWriter, base, value string, maxAge time.Duration) {
	s.writeCookie(w, base, value, maxAge, http.SameSiteLaxMode)
}

// writeCookie is setCookie with another SameSite mode.
func (s *Server) writeCookie(w http.ResponseWriter, base, value string, maxAge time.Duration, sameSite http.SameSite) {
	c := &http.Cookie{Name: s.cookieName(base), Value: value, Path: "/", HttpOnly: true, Secure: s.secure, SameSite: sameSite}
	if maxAge < 0 {
		c.MaxAge = -1
	} else if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

func (s *Server) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(s.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

// pageClient is the client of a page request: its device token is the
// device cookie.
func (s *Server) pageClient(r *http.Request) signin.Client {
	c := client(r)
	c.DeviceToken, c.KeepsDevice = s.cookie(r, "device"), true
	return c
}

// notices are the messages a redirect can ask a page to show (?m=key): the
// URL carries a key, never text or anything secret.
var notices = map[string]string{
	"password":    "Your password is changed. Your other sessions have ended.",
	"factor":      "Your new method is ready.",
	"removed":     "The method is removed.",
	"default":     "That method is now asked first.",
	"device":      "The device is forgotten: it will be asked again.",
	"session":     "The session has ended.",
	"confirmed":   "Thank you. Now do it again: you have 15 minutes.",
	"policy":      "The policy is saved. It applies at each person's next sign-in.",
	"reset":       "Two-factor authentication is reset for this person, and they have been told.",
	"emailed":     "The report is on its way to your email. The link works for 24 hours.",
	"signedout":   "You have signed out.",
	"app":         "Sign in to continue to the application.",
	"appmfa":      "The application asks you to confirm it is you with your second factor.",
	"appenrol":    "The application needs two-factor authentication: set it up to continue.",
	"invited":     "Your password is set. Sign in with it now.",
	"expired":     "That sign-in expired. Start again.",
	"recovery":    "You signed in with a recovery code from your admin: set up two-factor authentication again now.",
	"sessionover": "Your session has ended. Sign in again.",
}

func (s *Server) base(r *http.Request, slug, accountName string) page {
	d := page{"Slug": slug, "AccountName": accountName}
	if n := notices[r.URL.Query().Get("m")]; n != "" {
		d["Notice"] = n
	}
	return d
}

func redirect(w http.ResponseWriter, r *http.Request, path, msg string) {
	if msg != "" {
		path += "?m=" + url.QueryEscape(msg)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

func slugPath(slug string, rest string) string { return "/accounts/" + slug + rest }

// signedIn returns the principal of the session cookie, for the account in
// the path; nil (and a redirect sent) when there is none.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request) *signin.Principal {
	slug := r.PathValue("account")
	tok := s.cookie(r, "session")
	if tok != "" {
		p, err := s.signin.Authenticate(r.Context(), tok)
		if err == nil && p.Session != nil && p.Account.Slug == slug {
			return p
		}
	}
	redirect(w, r, slugPath(slug, "/signin"), "sessionover")
	return nil
}

func (s *Server) withUser(d page, p *signin.Principal) page {
	d["SignedIn"], d["IsAdmin"], d["AccountName"], d["User"] = true, p.User.Role.Admin(), p.Account.Name, p.User
	return d
}

// errorText is what a page says of an error.
func errorText(err error) string {
	var e *deadbolt.Error
	if errors.As(err, &e) && e.Code != deadbolt.EInternal {
		msg := e.Message
		if n, ok := e.Details["attempts_left"].(int); ok && e.Code == deadbolt.EInvalidCode {
			msg += " " + strconv.Itoa(n) + " tr" + map[bool]string{true: "y", false: "ies"}[n == 1] + " left."
		}
		return msg
	}
	return "Something went wrong on our side. Please try again."
}

func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error, back string) {
	status := Status(deadbolt.ErrorCode(err))
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err)
	}
	d := page{"Slug": r.PathValue("account"), "AccountName": "Deadbolt", "Heading": errorText(err), "Back": back}
	s.render(w, r, status, "error", d)
}

// --- Sign-in ---

func (s *Server) pageSignIn(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("account")
	acc, err := s.signin.Account(r.Context(), slug)
	if err != nil {
		s.pageError(w, r, err, "/")
		return
	}
	d := s.base(r, slug, acc.Name)
	d["SSO"], d["SSODiscovery"] = s.ssoButtons(r, acc)
	if r.Method == http.MethodGet {
		// An application's login_hint, or a link's.
		if e := r.URL.Query().Get("email"); len(e) <= 320 {
			d["Email"] = e
		}
		s.passkeySignIn(r, acc, d)
		s.render(w, r, 200, "signin", d)
		return
	}
	email := r.PostFormValue("email")
	res, err := s.signin.SignIn(r.Context(), slug, email, r.PostFormValue("password"), s.pageClient(r))
	if err != nil {
		d["Error"], d["Email"] = errorText(err), email
		// People of a domain with an identity provider are told of it,
		// whoever they are: the same words for every failure.
		if s.sso != nil && deadbolt.IsCode(err, deadbolt.EInvalidCredentials) {
			if e, nerr := deadbolt.NormalizeEmail(email); nerr == nil {
				if p, _ := s.sso.ForEmail(r.Context(), acc, e); p != nil {
					d["Error"] = errorText(err) + " People at " + e[strings.LastIndexByte(e, '@')+1:] + " sign in with " + p.Name + "."
					d["SSOFor"] = map[string]string{"ID": p.ID, "Name": p.Name, "Email": e}
				}
			}
		}
		s.passkeySignIn(r, acc, d)
		s.render(w, r, Status(deadbolt.ErrorCode(err)), "signin", d)
		return
	}
	s.afterStep(w, r, slug, res)
}

// passkeySignIn offers passwordless sign-in on the sign-in page when the
// account allows passkeys: a ceremony's options and token, made as the
// page renders (each showing of the page has its own, used once).
func (s *Server) passkeySignIn(r *http.Request, acc *deadbolt.Account, d page) {
	if slices.Contains(acc.Policy.AllowedMethods, deadbolt.FactorWebAuthn) && s.signin.PasskeysAvailable() {
		if pc, err := s.signin.BeginPasskeySignIn(r.Context(), acc.Slug); err == nil {
			d["Passkey"] = map[string]any{"Token": pc.Token, "Options": template.JS(pc.Options)}
		} else {
			s.log.WarnContext(r.Context(), "passkey sign-in options", "err", err)
		}
	}
}

// pagePasskeySignIn answers a passwordless sign-in from the sign-in page.
func (s *Server) pagePasskeySignIn(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("account")
	acc, err := s.signin.Account(r.Context(), slug)
	if err != nil {
		s.pageError(w, r, err, "/")
		return
	}
	res, err := s.signin.Verify(r.Context(), r.PostFormValue("token"), string(deadbolt.FactorWebAuthn), r.PostFormValue("code"), false, s.pageClient(r))
	if err != nil {
		d := s.base(r, slug, acc.Name)
		d["SSO"], d["SSODiscovery"] = s.ssoButtons(r, acc)
		s.passkeySignIn(r, acc, d)
		d["Error"] = errorText(err)
		s.render(w, r, Status(deadbolt.ErrorCode(err)), "signin", d)
		return
	}
	s.afterStep(w, r, slug, res)
}

// afterStep moves the browser on after a sign-in step.
func (s *Server) afterStep(w http.ResponseWriter, r *http.Request, slug string, res *signin.Result) {
	switch res.Status {
	case signin.StatusSignedIn:
		s.startSession(w, res)
		s.setCookie(w, "challenge", "", -1)
		switch {
		case res.AdminRecovery:
			redirect(w, r, slugPath(slug, "/security"), "recovery")
		case !res.TwoFactorDue.IsZero():
			redirect(w, r, slugPath(slug, "/security/setup"), "")
		default:
			redirect(w, r, slugPath(slug, "/security"), "")
		}
	case signin.StatusEnrollment:
		s.setCookie(w, "challenge", res.ChallengeToken, deadbolt.ChallengeTTL)
		if res.DeviceToken != "" {
			// 2-step verification came first: the device is recognised.
			s.setCookie(w, "device", res.DeviceToken, 400*24*time.Hour)
		}
		redirect(w, r, slugPath(slug, "/security/setup"), "")
	default:
		// The challenge token lives in a cookie, never in the URL.
		s.setCookie(w, "challenge", res.ChallengeToken, deadbolt.ChallengeTTL)
		if res.SentTo != "" {
			s.setCookie(w, "sent", url.QueryEscape(res.SentTo), deadbolt.ChallengeTTL)
		}
		redirect(w, r, slugPath(slug, "/signin/verify"), "")
	}
}

func (s *Server) startSession(w http.ResponseWriter, res *signin.Result) {
	s.setCookie(w, "session", res.SessionToken, res.Session.ExpiresAt.Sub(res.Session.CreatedAt))
	if res.DeviceToken != "" {
		s.setCookie(w, "device", res.DeviceToken, 400*24*time.Hour)
	}
}

func (s *Server) pageVerify(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("account")
	tok := s.cookie(r, "challenge")
	cv, err := s.signin.Challenge(r.Context(), tok)
	if err != nil || cv.Account.Slug != slug {
		redirect(w, r, slugPath(slug, "/signin"), "expired")
		return
	}
	method := r.URL.Query().Get("method")
	if r.Method == http.MethodPost {
		method = r.PostFormValue("method")
	}
	if !slices.Contains(cv.Methods, method) {
		method = cv.DefaultMethod
	}
	d := s.base(r, slug, cv.Account.Name)
	sentTo, _ := url.QueryUnescape(s.cookie(r, "sent"))
	d["Purpose"], d["Method"], d["RememberDays"], d["SentTo"] = string(cv.Purpose), method, cv.RememberDays, sentTo
	var others []string
	for _, m := range cv.Methods {
		if m != method {
			others = append(others, m)
		}
	}
	d["Others"] = others
	passkeyOptions := func() {
		if method != string(deadbolt.FactorWebAuthn) {
			return
		}
		if snt, err := s.signin.SendChallengeCode(r.Context(), tok, method); err == nil {
			d["WebAuthnOptions"] = template.JS(snt.WebAuthnOptions)
		} else {
			d["Error"] = errorText(err)
		}
	}
	if r.Method == http.MethodGet {
		passkeyOptions()
		s.render(w, r, 200, "verify", d)
		return
	}
	res, err := s.signin.Verify(r.Context(), tok, method, r.PostFormValue("code"), r.PostFormValue("remember") == "1", s.pageClient(r))
	if err != nil {
		switch deadbolt.ErrorCode(err) {
		case deadbolt.EChallengeExpired:
			redirect(w, r, slugPath(slug, "/signin"), "expired")
			return
		case deadbolt.ECodeExpired:
			d["Warning"] = errorText(err)
		default:
			d["Error"] = errorText(err)
		}
		passkeyOptions() // the last ceremony was spent: new options to try again
		s.render(w, r, Status(deadbolt.ErrorCode(err)), "verify", d)
		return
	}
	s.setCookie(w, "sent", "", -1)
	s.afterStep(w, r, slug, res)
}

func (s *Server) pageSend(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("account")
	method := r.PostFormValue("method")
	snt, err := s.signin.SendChallengeCode(r.Context(), s.cookie(r, "challenge"), method)
	if err != nil {
		if deadbolt.IsCode(err, deadbolt.EChallengeExpired) {
			redirect(w, r, slugPath(slug, "/signin"), "expired")
			return
		}
		s.pageError(w, r, err, slugPath(slug, "/signin/verify"))
		return
	}
	s.setCookie(w, "sent", url.QueryEscape(snt.To), deadbolt.ChallengeTTL)
	http.Redirect(w, r, slugPath(slug, "/signin/verify?method="+url.QueryEscape(method)), http.StatusSeeOther)
}

func (s *Server) pageInvitation(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("account")
	acc, err := s.signin.Account(r.Context(), slug)
	if err != nil {
		s.pageError(w, r, err, "/")
		return
	}
	d := s.base(r, slug, acc.Name)
	if r.Method == http.MethodGet {
		s.render(w, r, 200, "invitation", d)
		return
	}
	email := r.PostFormValue("email")
	if err := s.signin.AcceptInvitation(r.Context(), slug, email, r.PostFormValue("code"), r.PostFormValue("password"), client(r)); err != nil {
		d["Error"], d["Email"] = errorText(err), email
		s.render(w, r, Status(deadbolt.ErrorCode(err)), "invitation", d)
		return
	}
	redirect(w, r, slugPath(slug, "/signin"), "invited")
}

func (s *Server) pageSignOut(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("account")
	if tok := s.cookie(r, "session"); tok != "" {
		if p, err := s.signin.Authenticate(r.Context(), tok); err == nil && p.Session != nil {
			s.signin.SignOut(r.Context(), p)
		}
	}
	s.setCookie(w, "session", "", -1)
	redirect(w, r, slugPath(slug, "/signin"), "signedout")
}

// --- Set-up ---

// enroller is the principal that may set up a factor: a session, or the
// challenge of a sign-in waiting for enrolment.
func (s *Server) enroller(w http.ResponseWriter, r *http.Request) *signin.Principal {
	slug := r.PathValue("account")
	for _, name := range []string{"session", "challenge"} {
		if tok := s.cookie(r, name); tok != "" {
			if p, err := s.signin.Authenticate(r.Context(), tok); err == nil && p.Account.Slug == slug {
				return p
			}
		}
	}
	redirect(w, r, slugPath(slug, "/signin"), "sessionover")
	return nil
}

func (s *Server) setupPage(r *http.Request, p *signin.Principal) page {
	d := s.base(r, p.Account.Slug, p.Account.Name)
	if p.Session != nil {
		s.withUser(d, p)
	}
	return d
}

func (s *Server) pageSetup(w http.ResponseWriter, r *http.Request) {
	p := s.enroller(w, r)
	if p == nil {
		return
	}
	d := s.setupPage(r, p)
	d["Forced"] = p.Challenge != nil
	var kinds []string
	for _, k := range deadbolt.FactorKinds {
		if p.Account.Policy.Allows(k, p.User.Role) && (k != deadbolt.FactorWebAuthn || s.signin.PasskeysAvailable()) {
			kinds = append(kinds, string(k))
		}
	}
	d["Kinds"] = kinds
	// Adding a factor needs a recent proof, like removing one: ask for it
	// before the form, not after.
	if err := s.signin.RequireEnrolProof(r.Context(), p); deadbolt.IsCode(err, deadbolt.EReauthenticationNeeded) {
		http.Redirect(w, r, slugPath(p.Account.Slug, "/security/confirm?next=setup"), http.StatusSeeOther)
		return
	} else if err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/security"))
		return
	}
	if r.Method == http.MethodGet {
		if due := p.Account.Policy.GraceDeadline(p.User.Role, p.User.CreatedAt); !due.IsZero() && p.Challenge == nil {
			d["Warning"] = "Your account requires two-factor authentication: set it up before " + due.UTC().Format("2 January 2006") + "."
		}
		s.render(w, r, 200, "setup", d)
		return
	}
	kind := deadbolt.FactorKind(r.PostFormValue("kind"))
	var e *signin.Enrollment
	var err error
	switch kind {
	case deadbolt.FactorTOTP:
		e, err = s.signin.EnrollTOTP(r.Context(), p)
	case deadbolt.FactorWebAuthn:
		e, err = s.signin.EnrollWebAuthn(r.Context(), p, r.PostFormValue("name"))
	default:
		e, err = s.signin.EnrollPasscode(r.Context(), p, kind, r.PostFormValue("phone"))
	}
	if err != nil {
		d["Error"] = errorText(err)
		s.render(w, r, Status(deadbolt.ErrorCode(err)), "setup", d)
		return
	}
	s.renderConfirm(w, r, d, e, "", 200)
}

func (s *Server) renderConfirm(w http.ResponseWriter, r *http.Request, d page, e *signin.Enrollment, errText string, status int) {
	d["Kind"], d["FactorID"], d["QR"], d["Secret"] = string(e.Factor.Kind), e.Factor.ID, e.QRValue, groupSecret(e.Secret)
	d["SentTo"], d["Advice"] = e.SentTo, e.Advice
	if e.WebAuthnOptions != nil {
		// JSON from json.Marshal, which escapes <, > and &: safe raw in
		// the page's JSON script block.
		d["WebAuthnOptions"] = template.JS(e.WebAuthnOptions)
	}
	if errText != "" {
		d["Error"] = errText
	}
	s.render(w, r, status, "setup_confirm", d)
}

// groupSecret writes a base32 key in groups of four, for reading and typing.
func groupSecret(k string) string {
	var b strings.Builder
	for i, c := range k {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *Server) pageSetupConfirm(w http.ResponseWriter, r *http.Request) {
	p := s.enroller(w, r)
	if p == nil {
		return
	}
	slug := p.Account.Slug
	id := r.PostFormValue("factor")
	conf, err := s.signin.ConfirmFactor(r.Context(), p, id, r.PostFormValue("code"), s.pageClient(r))
	if err != nil {
		if deadbolt.IsCode(err, deadbolt.EReauthenticationNeeded) {
			http.Redirect(w, r, slugPath(slug, "/security/confirm?next=setup"), http.StatusSeeOther)
			return
		}
		if deadbolt.IsCode(err, deadbolt.EChallengeExpired) {
			s.setCookie(w, "challenge", "", -1)
			redirect(w, r, slugPath(slug, "/signin"), "expired")
			return
		}
		if f, ferr := s.signin.OwnFactor(r.Context(), p, id); ferr == nil && f.Kind == deadbolt.FactorWebAuthn {
			// A passkey's ceremony is spent: set-up starts again.
			d := s.setupPage(r, p)
			d["Error"] = errorText(err)
			d["Kinds"] = []string{string(deadbolt.FactorWebAuthn)}
			s.render(w, r, Status(deadbolt.ErrorCode(err)), "setup", d)
			return
		}
		e, perr := s.signin.PendingFactor(r.Context(), p, id)
		if perr != nil {
			s.pageError(w, r, err, slugPath(slug, "/security/setup"))
			return
		}
		s.renderConfirm(w, r, s.setupPage(r, p), e, errorText(err), Status(deadbolt.ErrorCode(err)))
		return
	}
	next := slugPath(slug, "/security?m=factor")
	if conf.Result != nil {
		s.startSession(w, conf.Result)
		s.setCookie(w, "challenge", "", -1)
	} else if tok, err := s.signin.RotateSession(r.Context(), p); err == nil {
		// More privilege on this session now: a new id for it.
		s.setCookie(w, "session", tok, p.Session.ExpiresAt.Sub(s.now()))
	}
	if conf.RecoveryCodes != nil {
		d := s.setupPage(r, p)
		if conf.Result != nil {
			p.Session = conf.Result.Session
			s.withUser(d, p)
		}
		s.renderRecoveryCodes(w, r, d, p, conf.RecoveryCodes, next)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) pageSetupSend(w http.ResponseWriter, r *http.Request) {
	p := s.enroller(w, r)
	if p == nil {
		return
	}
	id := r.PostFormValue("factor")
	e, err := s.signin.PendingFactor(r.Context(), p, id)
	if err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/security/setup"))
		return
	}
	snt, err := s.signin.ResendFactorCode(r.Context(), p, id)
	errText := ""
	if err != nil {
		errText = errorText(err)
	} else {
		e.SentTo = snt.To
	}
	s.renderConfirm(w, r, s.setupPage(r, p), e, errText, 200)
}

// --- Security settings ---

func (s *Server) pageSecurity(w http.ResponseWriter, r *http.Request) {
	p := s.signedIn(w, r)
	if p == nil {
		return
	}
	// Signed in, stepped up or enrolled for an application: back to it.
	if s.continueOIDC(w, r, p.Account.Slug) {
		return
	}
	ctx := r.Context()
	d := s.withUser(s.base(r, p.Account.Slug, p.Account.Name), p)
	factors, err := s.signin.Factors(ctx, p)
	if err != nil {
		s.pageError(w, r, err, "/")
		return
	}
	tf, err := s.signin.Summary(ctx, p)
	if err != nil {
		s.pageError(w, r, err, "/")
		return
	}
	devices, _ := s.signin.Devices(ctx, p)
	sessions, _ := s.signin.Sessions(ctx, p)
	d["Factors"], d["Enabled"], d["Required"], d["CodesLeft"] = factors, tf.Enabled, tf.Required, tf.RecoveryCodesLeft
	d["Devices"], d["Sessions"], d["CurrentSession"] = devices, sessions, p.Session.ID
	d["MinPassword"] = 15
	if tf.Enabled || tf.Required {
		d["MinPassword"] = 8
	}
	if tf.Enabled && tf.RecoveryCodesLeft <= 3 && d["Notice"] == nil {
		d["Warning"] = "You have few recovery codes left: make a new set."
	}
	s.render(w, r, 200, "security", d)
}

// securityAction runs an action of the security page and goes back to it;
// an action that needs a fresh proof goes by the confirmation page.
func (s *Server) securityAction(fn func(r *http.Request, p *signin.Principal) (msg string, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := s.signedIn(w, r)
		if p == nil {
			return
		}
		slug := p.Account.Slug
		msg, err := fn(r, p)
		switch {
		case deadbolt.IsCode(err, deadbolt.EReauthenticationNeeded):
			http.Redirect(w, r, slugPath(slug, "/security/confirm"), http.StatusSeeOther)
		case err != nil:
			s.pageError(w, r, err, slugPath(slug, "/security"))
		default:
			redirect(w, r, slugPath(slug, "/security"), msg)
		}
	}
}

func (s *Server) pageRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	p := s.signedIn(w, r)
	if p == nil {
		return
	}
	codes, err := s.signin.RegenerateRecoveryCodes(r.Context(), p)
	if deadbolt.IsCode(err, deadbolt.EReauthenticationNeeded) {
		http.Redirect(w, r, slugPath(p.Account.Slug, "/security/confirm"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/security"))
		return
	}
	s.renderRecoveryCodes(w, r, s.withUser(s.base(r, p.Account.Slug, p.Account.Name), p), p, codes, slugPath(p.Account.Slug, "/security"))
}

// renderRecoveryCodes shows a new set of recovery codes, once, with a text
// file to download.
func (s *Server) renderRecoveryCodes(w http.ResponseWriter, r *http.Request, d page, p *signin.Principal, codes []string, next string) {
	d["Codes"], d["Next"] = codes, next
	d["Download"] = url.PathEscape("Recovery codes for " + p.User.Email + " at " + p.Account.Name + "\nEach works once.\n\n" +
		strings.Join(codes, "\n") + "\n")
	s.render(w, r, 200, "recovery_codes", d)
}

func (s *Server) pageConfirm(w http.ResponseWriter, r *http.Request) {
	p := s.signedIn(w, r)
	if p == nil {
		return
	}
	slug := p.Account.Slug
	d := s.withUser(s.base(r, slug, p.Account.Name), p)
	tf, err := s.signin.Summary(r.Context(), p)
	if err != nil {
		s.pageError(w, r, err, slugPath(slug, "/security"))
		return
	}
	var methods, send []string
	passkey := false
	for _, m := range tf.Methods {
		if m == string(deadbolt.FactorWebAuthn) {
			passkey = true // its own form: the browser asks the authenticator
			continue
		}
		methods = append(methods, m)
		if m == "sms" || m == "email" {
			send = append(send, m)
		}
	}
	passkeyOptions := func() {
		if !passkey {
			return
		}
		if snt, err := s.signin.SendStepUpCode(r.Context(), p, string(deadbolt.FactorWebAuthn)); err == nil {
			d["WebAuthnOptions"] = template.JS(snt.WebAuthnOptions)
		}
	}
	d["Methods"], d["SendMethods"], d["Next"] = methods, send, "security"
	if len(methods) == 0 && !passkey && p.Session != nil && p.Session.SSOProviderID != "" && s.sso != nil {
		// Signed in by an identity provider and without a factor here:
		// the proof is a fresh sign-in there (a new session).
		if prov, err := s.sso.Provider(r.Context(), p.Account, p.Session.SSOProviderID); err == nil {
			d["SSOAgain"] = map[string]string{"ID": prov.ID, "Name": prov.Name}
		}
	}
	for _, n := range []string{"setup", "admin"} {
		if r.URL.Query().Get("next") == n || r.PostFormValue("next") == n {
			d["Next"] = n
		}
	}
	if r.Method == http.MethodGet {
		passkeyOptions()
		s.render(w, r, 200, "confirm", d)
		return
	}
	err = s.signin.StepUp(r.Context(), p, r.PostFormValue("method"), r.PostFormValue("code"), r.PostFormValue("password"), s.pageClient(r))
	if err != nil {
		d["Error"] = errorText(err)
		passkeyOptions()
		s.render(w, r, Status(deadbolt.ErrorCode(err)), "confirm", d)
		return
	}
	if tok, err := s.signin.RotateSession(r.Context(), p); err == nil {
		s.setCookie(w, "session", tok, p.Session.ExpiresAt.Sub(s.now()))
	}
	next := "/security"
	switch r.PostFormValue("next") {
	case "admin":
		next = "/admin"
	case "setup":
		next = "/security/setup"
	}
	redirect(w, r, slugPath(slug, next), "confirmed")
}

func (s *Server) pageConfirmSend(w http.ResponseWriter, r *http.Request) {
	p := s.signedIn(w, r)
	if p == nil {
		return
	}
	slug := p.Account.Slug
	if _, err := s.signin.SendStepUpCode(r.Context(), p, r.PostFormValue("method")); err != nil {
		s.pageError(w, r, err, slugPath(slug, "/security/confirm"))
		return
	}
	http.Redirect(w, r, slugPath(slug, "/security/confirm"), http.StatusSeeOther)
}

// The security page's simple actions.

func (s *Server) actDefault(r *http.Request, p *signin.Principal) (string, error) {
	_, err := s.signin.SetDefaultFactor(r.Context(), p, r.PathValue("id"))
	return "default", err
}

func (s *Server) actRemove(r *http.Request, p *signin.Principal) (string, error) {
	return "removed", s.signin.RemoveFactor(r.Context(), p, r.PathValue("id"))
}

func (s *Server) actRevokeDevice(r *http.Request, p *signin.Principal) (string, error) {
	return "device", s.signin.RevokeDevice(r.Context(), p, r.PathValue("id"))
}

func (s *Server) actRevokeSession(r *http.Request, p *signin.Principal) (string, error) {
	return "session", s.signin.RevokeSession(r.Context(), p, r.PathValue("id"))
}

func (s *Server) actPassword(r *http.Request, p *signin.Principal) (string, error) {
	return "password", s.signin.ChangePassword(r.Context(), p, r.PostFormValue("current_password"), r.PostFormValue("new_password"), client(r))
}

// --- Admin center ---

// adminPage returns the signed-in admin of the account in the path, or nil
// with the answer sent.
func (s *Server) adminPage(w http.ResponseWriter, r *http.Request) *signin.Principal {
	p := s.signedIn(w, r)
	if p == nil {
		return nil
	}
	if err := signin.RequireAdmin(p, r.PathValue("account")); err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/security"))
		return nil
	}
	return p
}

func (s *Server) pageAdmin(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	d := s.withUser(s.base(r, p.Account.Slug, p.Account.Name), p)
	d["Policy"], d["Roles"], d["OIDC"], d["SSOOn"] = p.Account.Policy, deadbolt.Roles, s.oidc != nil, s.sso != nil
	d["AllMethods"] = deadbolt.FactorKinds
	if r.Method == http.MethodGet {
		s.render(w, r, 200, "admin", d)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, deadbolt.Invalid("", "The form could not be read."), slugPath(p.Account.Slug, "/admin"))
		return
	}
	next := deadbolt.DefaultPolicy()
	f := r.PostForm
	next.Require2FATeamMembers = f.Get("require_2fa_team_members") == "1"
	next.Require2FAEndUsers = f.Get("require_2fa_end_users") == "1"
	next.StrongMethodsOnly = f.Get("strong_methods_only") == "1"
	// Every field of the policy is on the form: one left out would be
	// reset to its default by each save.
	next.PasswordAPIAccess = f.Get("password_api_access") == "1"
	next.NewDeviceNotices = f.Get("new_device_notices") == "1"
	next.Require2FASSOUsers = f.Get("require_2fa_sso_users") == "1"
	next.RequireSSOTeamMembers = f.Get("require_sso_team_members") == "1"
	next.WebAuthnAAGUIDAllow, next.WebAuthnAAGUIDDeny = lines(f.Get("webauthn_aaguid_allow")), lines(f.Get("webauthn_aaguid_deny"))
	next.AllowedMethods = nil
	for _, m := range f["allowed_methods"] {
		next.AllowedMethods = append(next.AllowedMethods, deadbolt.FactorKind(m))
	}
	var bad error
	num := func(name string, dst *int) {
		if v := f.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil && bad == nil {
				bad = deadbolt.Invalid(name, "%s must be a whole number.", name)
			}
			*dst = n
		}
	}
	num("grace_period_days", &next.GracePeriodDays)
	num("session_idle_minutes", &next.SessionIdleMinutes)
	num("session_max_hours", &next.SessionMaxHours)
	for _, role := range deadbolt.Roles {
		days := next.RememberDeviceDays[role]
		num("remember_"+string(role), &days)
		next.RememberDeviceDays[role] = days
	}
	next.SMSBlockedCountries = append([]string{}, strings.FieldsFunc(f.Get("sms_blocked_countries"), func(r rune) bool { return r == ',' || r == ' ' })...)
	if bad == nil {
		_, bad = s.signin.SetPolicy(r.Context(), p, next)
	}
	if deadbolt.IsCode(bad, deadbolt.EReauthenticationNeeded) {
		http.Redirect(w, r, slugPath(p.Account.Slug, "/security/confirm"), http.StatusSeeOther)
		return
	}
	if bad != nil {
		d["Error"], d["Policy"] = errorText(bad), next
		s.render(w, r, Status(deadbolt.ErrorCode(bad)), "admin", d)
		return
	}
	redirect(w, r, slugPath(p.Account.Slug, "/admin"), "policy")
}

func (s *Server) pagePeople(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	d := s.withUser(s.base(r, p.Account.Slug, p.Account.Name), p)
	d["Wide"], d["Roles"], d["States"] = true, deadbolt.Roles, []string{"enabled", "disabled", "sso"}
	q := r.URL.Query()
	f := signin.UserFilter{TwoFactor: q.Get("two_factor")}
	if role := deadbolt.Role(q.Get("role")); role.Valid() {
		f.Roles = []deadbolt.Role{role}
	}
	if f.TwoFactor != "" && !slices.Contains([]string{"enabled", "disabled", "sso"}, f.TwoFactor) {
		f.TwoFactor = ""
	}
	d["Role"], d["TwoFactor"] = q.Get("role"), f.TwoFactor
	// A page shows at most 500 people; the report has everyone.
	var users []*signin.UserView
	errEnough := errors.New("enough")
	err := s.signin.Users(r.Context(), p.Account, f, func(v *signin.UserView) error {
		if len(users) == 500 {
			d["Warning"] = "Only the first 500 people are shown: filter, or download the report for everyone."
			return errEnough
		}
		users = append(users, v)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/admin"))
		return
	}
	d["Users"] = users
	s.render(w, r, 200, "people", d)
}

func (s *Server) personPage(w http.ResponseWriter, r *http.Request, p *signin.Principal, code string, expires time.Time) {
	v, err := s.signin.User(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/admin/people"))
		return
	}
	d := s.withUser(s.base(r, p.Account.Slug, p.Account.Name), p)
	d["Person"], d["Code"], d["CodeExpires"] = v, code, expires
	s.render(w, r, 200, "person", d)
}

func (s *Server) pagePerson(w http.ResponseWriter, r *http.Request) {
	if p := s.adminPage(w, r); p != nil {
		s.personPage(w, r, p, "", time.Time{})
	}
}

func (s *Server) pageAdminRecoveryCode(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	code, expires, err := s.signin.AdminRecoveryCode(r.Context(), p, r.PathValue("id"))
	if deadbolt.IsCode(err, deadbolt.EReauthenticationNeeded) {
		http.Redirect(w, r, slugPath(p.Account.Slug, "/security/confirm"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/admin/people"))
		return
	}
	s.personPage(w, r, p, code, expires)
}

func (s *Server) pageReset(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	err := s.signin.ResetTwoFactor(r.Context(), p, r.PathValue("id"))
	if deadbolt.IsCode(err, deadbolt.EReauthenticationNeeded) {
		http.Redirect(w, r, slugPath(p.Account.Slug, "/security/confirm"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/admin/people"))
		return
	}
	redirect(w, r, slugPath(p.Account.Slug, "/admin/people/"+r.PathValue("id")), "reset")
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	typ := r.URL.Query().Get("type")
	events, err := s.signin.Events(r.Context(), p.Account, deadbolt.AuditFilter{Type: typ, Limit: 200})
	if err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/admin"))
		return
	}
	names := map[string]string{"": "—"}
	s.signin.Users(r.Context(), p.Account, signin.UserFilter{}, func(v *signin.UserView) error {
		names[v.User.ID] = v.User.Name + " <" + v.User.Email + ">"
		return nil
	})
	for _, e := range events {
		for _, id := range []string{e.ActorID, e.SubjectID} {
			if _, ok := names[id]; !ok {
				names[id] = id // a user since removed
			}
		}
	}
	d := s.withUser(s.base(r, p.Account.Slug, p.Account.Name), p)
	d["Wide"], d["Events"], d["Names"], d["Type"] = true, events, names, typ
	s.render(w, r, 200, "audit", d)
}

func (s *Server) pageReportCSV(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	if id := r.PathValue("report_id"); id != "" {
		if _, err := s.signin.OpenReport(r.Context(), p, id); err != nil {
			s.pageError(w, r, err, slugPath(p.Account.Slug, "/admin"))
			return
		}
	}
	if err := s.writeReportCSV(w, r, p, r.URL.Query().Get("users") == "all"); err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/admin"))
	}
}

func (s *Server) pageEmailReport(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	if _, err := s.signin.EmailReport(r.Context(), p, s.publicURL); err != nil {
		s.pageError(w, r, err, slugPath(p.Account.Slug, "/admin"))
		return
	}
	redirect(w, r, slugPath(p.Account.Slug, "/admin"), "emailed")
}

// pageRoutes registers the pages. Every state-changing page request goes
// through CrossOriginProtection: a form posted from another site is
// refused (SameSite=Lax cookies are the second line).
func (s *Server) pageRoutes() {
	pm := http.NewServeMux()
	a := "/accounts/{account}"
	pm.HandleFunc("GET "+a+"/signin", s.pageSignIn)
	pm.HandleFunc("POST "+a+"/signin", s.pageSignIn)
	pm.HandleFunc("POST "+a+"/signin/passkey", s.pagePasskeySignIn)
	pm.HandleFunc("GET "+a+"/signin/verify", s.pageVerify)
	pm.HandleFunc("POST "+a+"/signin/verify", s.pageVerify)
	pm.HandleFunc("POST "+a+"/signin/send", s.pageSend)
	if s.oidc != nil {
		pm.HandleFunc("GET "+a+"/signin/oidc", s.pageOIDC)
		pm.HandleFunc("GET "+a+"/admin/applications", s.pageApplications)
		pm.HandleFunc("POST "+a+"/admin/applications", s.pageApplications)
		pm.HandleFunc("POST "+a+"/admin/applications/{id}/delete", s.adminRemove("/admin/applications", s.oidc.DeleteClient))
	}
	if s.sso != nil {
		s.ssoRoutes(pm)
	}
	pm.HandleFunc("POST "+a+"/signout", s.pageSignOut)
	pm.HandleFunc("GET "+a+"/invitation", s.pageInvitation)
	pm.HandleFunc("POST "+a+"/invitation", s.pageInvitation)
	pm.HandleFunc("GET "+a+"/security", s.pageSecurity)
	pm.HandleFunc("GET "+a+"/security/setup", s.pageSetup)
	pm.HandleFunc("POST "+a+"/security/setup", s.pageSetup)
	pm.HandleFunc("POST "+a+"/security/setup/confirm", s.pageSetupConfirm)
	pm.HandleFunc("POST "+a+"/security/setup/send", s.pageSetupSend)
	pm.HandleFunc("POST "+a+"/security/factors/{id}/default", s.securityAction(s.actDefault))
	pm.HandleFunc("POST "+a+"/security/factors/{id}/remove", s.securityAction(s.actRemove))
	pm.HandleFunc("POST "+a+"/security/devices/{id}/revoke", s.securityAction(s.actRevokeDevice))
	pm.HandleFunc("POST "+a+"/security/sessions/{id}/revoke", s.securityAction(s.actRevokeSession))
	pm.HandleFunc("POST "+a+"/security/password", s.securityAction(s.actPassword))
	pm.HandleFunc("POST "+a+"/security/recovery-codes", s.pageRecoveryCodes)
	pm.HandleFunc("GET "+a+"/security/confirm", s.pageConfirm)
	pm.HandleFunc("POST "+a+"/security/confirm", s.pageConfirm)
	pm.HandleFunc("POST "+a+"/security/confirm/send", s.pageConfirmSend)
	pm.HandleFunc("GET "+a+"/admin", s.pageAdmin)
	pm.HandleFunc("POST "+a+"/admin/policy", s.pageAdmin)
	pm.HandleFunc("GET "+a+"/admin/people", s.pagePeople)
	pm.HandleFunc("GET "+a+"/admin/people/{id}", s.pagePerson)
	pm.HandleFunc("POST "+a+"/admin/people/{id}/recovery-code", s.pageAdminRecoveryCode)
	pm.HandleFunc("POST "+a+"/admin/people/{id}/reset", s.pageReset)
	pm.HandleFunc("GET "+a+"/admin/audit", s.pageAudit)
	pm.HandleFunc("GET "+a+"/admin/report.csv", s.pageReportCSV)
	pm.HandleFunc("POST "+a+"/admin/report/email", s.pageEmailReport)
	pm.HandleFunc("GET "+a+"/reports/two-factor/{report_id}", s.pageReportCSV)
	static, _ := fs.Sub(staticFiles, "static")
	pm.Handle("GET /static/", http.StripPrefix("/static/", noListing(static)))
	csrf := http.NewCrossOriginProtection()
	h := csrf.Handler(pm)
	s.mux.Handle("/accounts/", h)
	s.mux.Handle("GET /static/", pm)
}

// noListing serves files but never a directory's listing: /static/ holds
// only what the pages link to, and a listing tells a visitor nothing they
// need.
func noListing(dir fs.FS) http.Handler {
	files := http.FileServerFS(dir)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if f, err := fs.Stat(dir, strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")); err == nil && f.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}
