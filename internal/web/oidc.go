package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/oidc"
	"github.com/deadbolt/deadbolt/internal/signin"
)

// The OpenID Connect provider's part of the web: its protocol endpoints
// (the library's, under /accounts/{slug}/oidc/ and the discovery document)
// and the page that takes an application's sign-in through Deadbolt's own
// sign-in pages.

// oidcRoutes mounts the provider. Its endpoints are called cross-origin by
// applications (token, userinfo, revocation...), so they are outside the
// pages' cross-origin protection; the one that acts on the browser's
// session (end_session) only ends it.
func (s *Server) oidcRoutes() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if strings.HasSuffix(r.URL.Path, "/oidc/end_session") {
			var p *signin.Principal
			if tok := s.cookie(r, "session"); tok != "" {
				if pr, err := s.signin.Authenticate(ctx, tok); err == nil && pr.Session != nil {
					p = pr
				}
			}
			ctx = oidc.WithBrowserSession(ctx, p)
		}
		s.oidc.ServeHTTP(w, r.WithContext(ctx))
	})
	s.mux.Handle("/accounts/{account}/oidc/", h)
	s.mux.Handle("GET /accounts/{account}/.well-known/openid-configuration", h)
	s.mux.Handle("OPTIONS /accounts/{account}/.well-known/openid-configuration", h)

	a := "/api/v1/accounts/{account}/oidc"
	s.mux.Handle("GET "+a+"/clients", s.admin(s.handleOIDCClients))
	s.mux.Handle("POST "+a+"/clients", s.admin(s.handleCreateOIDCClient))
	s.mux.Handle("GET "+a+"/clients/{id}", s.admin(s.handleOIDCClient))
	s.mux.Handle("PUT "+a+"/clients/{id}", s.admin(s.handleUpdateOIDCClient))
	s.mux.Handle("DELETE "+a+"/clients/{id}", s.admin(s.handleDeleteOIDCClient))
	s.mux.Handle("POST "+a+"/clients/{id}/secret", s.admin(s.handleRotateOIDCSecret))
	s.mux.Handle("POST "+a+"/keys/rotate", s.admin(s.handleRotateOIDCKeys))
}

// pendingTTL is how long the browser remembers the application sign-in it
// is in the middle of.
const pendingTTL = deadbolt.OIDCAuthRequestTTL

// continueOIDC sends the browser back to the application sign-in it was in
// the middle of, if any; it reports whether it did.
func (s *Server) continueOIDC(w http.ResponseWriter, r *http.Request, slug string) bool {
	if s.oidc == nil {
		return false
	}
	id := s.cookie(r, "oidc")
	if id == "" {
		return false
	}
	http.Redirect(w, r, slugPath(slug, "/signin/oidc?id="+url.QueryEscape(id)), http.StatusSeeOther)
	return true
}

// oidcFormAction is the extra form-action source of a page shown in the
// middle of an application's sign-in: the forms' answers end in a
// redirect to the application, which browsers check against form-action.
func (s *Server) oidcFormAction(r *http.Request) string {
	if s.oidc == nil {
		return ""
	}
	id, slug := s.cookie(r, "oidc"), r.PathValue("account")
	if id == "" || slug == "" {
		return ""
	}
	acc, err := s.signin.Account(r.Context(), slug)
	if err != nil {
		return ""
	}
	pd, err := s.oidc.Pending(r.Context(), acc, id)
	if err != nil {
		return ""
	}
	return pd.FormActionSource()
}

// pageOIDC is where an application's sign-in lands (the client's login
// URL): it decides, from the browser's session and the request (prompt,
// max_age, acr_values, the client's 2FA setting), whether to answer the
// application now or to go through sign-in, step-up or enrolment first,
// coming back here after.
func (s *Server) pageOIDC(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("account")
	acc, err := s.signin.Account(ctx, slug)
	if err != nil {
		s.pageError(w, r, err, "/")
		return
	}
	id := r.URL.Query().Get("id")
	pd, err := s.oidc.Pending(ctx, acc, id)
	if err != nil {
		s.setCookie(w, "oidc", "", -1)
		s.pageError(w, r, err, slugPath(slug, "/signin"))
		return
	}
	var p *signin.Principal
	if tok := s.cookie(r, "session"); tok != "" {
		if pr, err := s.signin.Authenticate(ctx, tok); err == nil && pr.Session != nil && pr.Account.ID == acc.ID {
			p = pr
		}
	}
	hasFactor := false
	if p != nil {
		tf, err := s.signin.Summary(ctx, p)
		if err != nil {
			s.pageError(w, r, err, slugPath(slug, "/signin"))
			return
		}
		hasFactor = tf.Enabled
	}
	step := pd.Next(p, hasFactor, s.now())
	if step != oidc.StepDone && pd.PromptNone() {
		s.setCookie(w, "oidc", "", -1)
		code := oidc.ErrInteractionRequired
		if step == oidc.StepSignIn {
			code = oidc.ErrLoginRequired
		}
		s.oidc.Fail(w, r, pd, code)
		return
	}
	switch step {
	case oidc.StepDone:
		s.setCookie(w, "oidc", "", -1)
		if err := s.oidc.Finish(w, r, pd, p); err != nil {
			s.pageError(w, r, err, slugPath(slug, "/signin"))
		}
		return
	case oidc.StepSignIn:
		s.setCookie(w, "oidc", pd.Request.ID, pendingTTL)
		next := slugPath(slug, "/signin?m=app")
		if h := pd.Request.LoginHint; h != "" {
			next += "&email=" + url.QueryEscape(h)
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	case oidc.StepSecondFactor:
		s.setCookie(w, "oidc", pd.Request.ID, pendingTTL)
		redirect(w, r, slugPath(slug, "/security/confirm"), "appmfa")
	case oidc.StepEnrol:
		s.setCookie(w, "oidc", pd.Request.ID, pendingTTL)
		redirect(w, r, slugPath(slug, "/security/setup"), "appenrol")
	}
}

// --- The client-management API ---

type oidcClientRequest struct {
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri"`
	Scopes                 []string `json:"scopes"`
	Require2FA             bool     `json:"require_2fa"`
	Public                 bool     `json:"public"`
}

func (q oidcClientRequest) input() oidc.ClientInput {
	return oidc.ClientInput{Name: q.Name, RedirectURIs: q.RedirectURIs, PostLogoutRedirectURIs: q.PostLogoutRedirectURIs,
		BackchannelLogoutURI: q.BackchannelLogoutURI, Scopes: q.Scopes, Require2FA: q.Require2FA, Public: q.Public}
}

func (s *Server) oidcClientJSON(acc *deadbolt.Account, c *deadbolt.OIDCClient) map[string]any {
	orEmpty := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	return map[string]any{"client_id": c.ID, "name": c.Name, "public": c.Public(), "redirect_uris": orEmpty(c.RedirectURIs),
		"post_logout_redirect_uris": orEmpty(c.PostLogoutRedirectURIs), "backchannel_logout_uri": c.BackchannelLogoutURI,
		"scopes": orEmpty(c.Scopes), "require_2fa": c.Require2FA, "issuer": s.oidc.Issuer(acc.Slug),
		"created_at": c.CreatedAt.UTC().Format(time.RFC3339), "updated_at": c.UpdatedAt.UTC().Format(time.RFC3339)}
}

// oidcAdmin is the check of every client-management call: the provider is
// on, and a session has a recent second factor (registering an
// application decides where users' codes go).
func (s *Server) oidcAdmin(r *http.Request, p *signin.Principal) error {
	if s.oidc == nil {
		return deadbolt.Errorf(deadbolt.ENotFound, "The OpenID Connect provider is not enabled.")
	}
	return s.signin.AdminStepUp(r.Context(), p)
}

func (s *Server) handleOIDCClients(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if s.oidc == nil {
		return deadbolt.Errorf(deadbolt.ENotFound, "The OpenID Connect provider is not enabled.")
	}
	list, err := s.oidc.Clients(r.Context(), p.Account)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, c := range list {
		out = append(out, s.oidcClientJSON(p.Account, c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"clients": out})
	return nil
}

func (s *Server) handleOIDCClient(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if s.oidc == nil {
		return deadbolt.Errorf(deadbolt.ENotFound, "The OpenID Connect provider is not enabled.")
	}
	c, err := s.oidc.Client(r.Context(), p.Account, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.oidcClientJSON(p.Account, c))
	return nil
}

func (s *Server) handleCreateOIDCClient(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.oidcAdmin(r, p); err != nil {
		return err
	}
	var req oidcClientRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c, secret, err := s.oidc.RegisterClient(r.Context(), p.Account, p.User.ID, req.input())
	if err != nil {
		return err
	}
	out := s.oidcClientJSON(p.Account, c)
	if secret != "" {
		out["client_secret"] = secret
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) handleUpdateOIDCClient(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.oidcAdmin(r, p); err != nil {
		return err
	}
	var req oidcClientRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	old, err := s.oidc.Client(r.Context(), p.Account, r.PathValue("id"))
	if err != nil {
		return err
	}
	if req.Public != old.Public() {
		return deadbolt.Invalid("public", "A client's kind (public or confidential) is fixed: register a new client instead.")
	}
	c, err := s.oidc.UpdateClient(r.Context(), p.Account, p.User.ID, old.ID, req.input())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.oidcClientJSON(p.Account, c))
	return nil
}

func (s *Server) handleDeleteOIDCClient(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.oidcAdmin(r, p); err != nil {
		return err
	}
	if err := s.oidc.DeleteClient(r.Context(), p.Account, p.User.ID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleRotateOIDCSecret(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.oidcAdmin(r, p); err != nil {
		return err
	}
	c, secret, err := s.oidc.RotateSecret(r.Context(), p.Account, p.User.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := s.oidcClientJSON(p.Account, c)
	out["client_secret"] = secret
	writeJSON(w, http.StatusOK, out)
	return nil
}

type rotateKeysRequest struct {
	Alg string `json:"alg"`
}

func (s *Server) handleRotateOIDCKeys(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.oidcAdmin(r, p); err != nil {
		return err
	}
	var req rotateKeysRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	k, err := s.oidc.RotateKeys(r.Context(), p.Account, req.Alg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"key_id": k.ID, "alg": k.Alg, "created_at": k.CreatedAt.UTC().Format(time.RFC3339)})
	return nil
}

// --- The admin center's applications page ---

// applicationForm is the registration form as typed, shown again on error.
type applicationForm struct {
	Name, Redirects, PostLogout, Backchannel string
	Scopes                                   []string
	Public, Require2FA                       bool
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (s *Server) pageApplications(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	ctx := r.Context()
	slug := p.Account.Slug
	d := s.withUser(s.base(r, slug, p.Account.Name), p)
	d["Issuer"], d["AllScopes"] = s.oidc.Issuer(slug), deadbolt.OIDCScopes
	form := applicationForm{Scopes: []string{"openid", "profile", "email"}}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			s.pageError(w, r, deadbolt.Invalid("", "The form could not be read."), slugPath(slug, "/admin/applications"))
			return
		}
		f := r.PostForm
		form = applicationForm{Name: f.Get("name"), Redirects: f.Get("redirect_uris"), PostLogout: f.Get("post_logout_redirect_uris"),
			Backchannel: strings.TrimSpace(f.Get("backchannel_logout_uri")), Scopes: append([]string{"openid"}, f["scopes"]...),
			Public: f.Get("public") == "1", Require2FA: f.Get("require_2fa") == "1"}
		confirming, err := s.adminPageStepUp(w, r, p)
		if confirming {
			return
		}
		var c *deadbolt.OIDCClient
		var secret string
		if err == nil {
			c, secret, err = s.oidc.RegisterClient(ctx, p.Account, p.User.ID, oidc.ClientInput{Name: form.Name,
				RedirectURIs: lines(form.Redirects), PostLogoutRedirectURIs: lines(form.PostLogout), BackchannelLogoutURI: form.Backchannel,
				Scopes: form.Scopes, Public: form.Public, Require2FA: form.Require2FA})
		}
		if err != nil {
			d["Error"], status = errorText(err), Status(deadbolt.ErrorCode(err))
		} else {
			// The secret is shown on this answer only: no redirect that
			// would need it in a URL or a cookie.
			d["Created"], d["Secret"], d["Notice"] = c, secret, "The application "+c.Name+" is registered."
			form = applicationForm{Scopes: []string{"openid", "profile", "email"}}
		}
	}
	clients, err := s.oidc.Clients(ctx, p.Account)
	if err != nil {
		s.pageError(w, r, err, slugPath(slug, "/admin"))
		return
	}
	d["Clients"], d["Form"] = clients, form
	s.render(w, r, status, "applications", d)
}

// adminPageStepUp checks the step-up of an admin-center action; without
// a fresh proof the browser goes to confirm it first (confirming is true:
// the answer is written).
func (s *Server) adminPageStepUp(w http.ResponseWriter, r *http.Request, p *signin.Principal) (confirming bool, err error) {
	err = s.signin.AdminStepUp(r.Context(), p)
	if deadbolt.IsCode(err, deadbolt.EReauthenticationNeeded) {
		redirect(w, r, slugPath(p.Account.Slug, "/security/confirm?next=admin"), "")
		return true, nil
	}
	return false, err
}

// adminRemove is the admin center's "Remove" of one of the account's
// things by the id in the path (an application, an identity provider),
// after step-up, back to the list.
func (s *Server) adminRemove(list string, remove func(ctx context.Context, acc *deadbolt.Account, actorID, id string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := s.adminPage(w, r)
		if p == nil {
			return
		}
		back := slugPath(p.Account.Slug, list)
		confirming, err := s.adminPageStepUp(w, r, p)
		if confirming {
			return
		}
		if err == nil {
			err = remove(r.Context(), p.Account, p.User.ID, r.PathValue("id"))
		}
		if err != nil {
			s.pageError(w, r, err, back)
			return
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
	}
}
