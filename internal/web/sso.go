package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/sso"
)

// SSO: "Sign in with {provider}" through an account's own identity
// providers, and their administration.

func (s *Server) ssoRoutes(pm *http.ServeMux) {
	a := "/accounts/{account}/sso"
	pm.HandleFunc("POST "+a, s.pageSSODiscover)
	pm.HandleFunc("GET "+a+"/{id}", s.pageSSOStart)
	pm.HandleFunc("GET "+a+"/{id}/callback", s.pageSSOCallback)
	pm.HandleFunc("GET /accounts/{account}/admin/sso", s.pageSSOAdmin)
	pm.HandleFunc("POST /accounts/{account}/admin/sso", s.pageSSOAdmin)
	pm.HandleFunc("POST /accounts/{account}/admin/sso/{id}/delete", s.adminRemove("/admin/sso", s.sso.Delete))
	// The IdP's browser POST to the assertion consumer service comes from
	// another origin by design: it is outside the pages' cross-origin
	// protection, and guarded instead by the signed response being in
	// response to a request of this browser's (RelayState and cookie).
	s.mux.HandleFunc("POST "+a+"/{id}/acs", s.pageSSOACS)
	s.mux.HandleFunc("GET "+a+"/{id}/metadata", s.handleSPMetadata)

	api := "/api/v1/accounts/{account}/sso/providers"
	s.mux.Handle("GET "+api, s.admin(s.handleSSOProviders))
	s.mux.Handle("POST "+api, s.admin(s.handleCreateSSOProvider))
	s.mux.Handle("GET "+api+"/{id}", s.admin(s.handleSSOProvider))
	s.mux.Handle("PUT "+api+"/{id}", s.admin(s.handleUpdateSSOProvider))
	s.mux.Handle("DELETE "+api+"/{id}", s.admin(s.handleDeleteSSOProvider))
}

// setSSOCookie keeps the browser's half of a sign-in at a provider. Over
// HTTPS it is SameSite=None, so that a SAML IdP's cross-site POST brings it
// back; on plain-HTTP localhost browsers refuse None without Secure, and
// Lax is the best there is.
func (s *Server) setSSOCookie(w http.ResponseWriter, value string, maxAge time.Duration) {
	mode := http.SameSiteLaxMode
	if s.secure {
		mode = http.SameSiteNoneMode
	}
	s.writeCookie(w, "sso", value, maxAge, mode)
}

// ssoButtons are the providers the sign-in page offers.
func (s *Server) ssoButtons(r *http.Request, acc *deadbolt.Account) (buttons []map[string]string, discovery bool) {
	if s.sso == nil {
		return nil, false
	}
	provs, err := s.sso.Providers(r.Context(), acc)
	if err != nil {
		s.log.WarnContext(r.Context(), "sso: providers for the sign-in page", "err", err)
		return nil, false
	}
	for _, p := range provs {
		buttons = append(buttons, map[string]string{"ID": p.ID, "Name": p.Name})
		discovery = discovery || len(p.Domains) > 0
	}
	return buttons, discovery
}

// pageSSODiscover is home-realm discovery: an email whose domain an
// identity provider is named for goes to it.
func (s *Server) pageSSODiscover(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("account")
	acc, err := s.signin.Account(r.Context(), slug)
	if err != nil {
		s.pageError(w, r, err, "/")
		return
	}
	email, err := deadbolt.NormalizeEmail(r.PostFormValue("email"))
	var p *deadbolt.SSOProvider
	if err == nil {
		p, err = s.sso.ForEmail(r.Context(), acc, email)
	}
	if err != nil || p == nil {
		d := s.base(r, slug, acc.Name)
		d["SSO"], d["SSODiscovery"] = s.ssoButtons(r, acc)
		d["Email"] = r.PostFormValue("email")
		s.passkeySignIn(r, acc, d)
		d["Error"] = "No identity provider of " + acc.Name + " is set up for this email's domain. Sign in with your password, or pick your provider."
		s.render(w, r, http.StatusBadRequest, "signin", d)
		return
	}
	// Not a redirect: browsers hold every redirect that follows a form
	// post to the page's form-action ('self'), and the provider is
	// elsewhere. The page moves on by itself (a meta refresh, or its
	// link), as a navigation of its own.
	d := s.base(r, slug, acc.Name)
	d["Refresh"] = slugPath(slug, "/sso/"+url.PathEscape(p.ID)+"?email="+url.QueryEscape(email))
	d["ProviderName"], d["Domain"] = p.Name, email[strings.LastIndexByte(email, '@')+1:]
	s.render(w, r, http.StatusOK, "continue", d)
}

// pageSSOStart sends the browser to the provider.
func (s *Server) pageSSOStart(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("account")
	acc, p, ok := s.ssoProvider(w, r)
	if !ok {
		return
	}
	to, browser, err := s.sso.Begin(r.Context(), acc, p, r.URL.Query().Get("email"))
	if err != nil {
		s.pageError(w, r, err, slugPath(slug, "/signin"))
		return
	}
	s.setSSOCookie(w, browser, deadbolt.SSOStateTTL)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *Server) ssoProvider(w http.ResponseWriter, r *http.Request) (*deadbolt.Account, *deadbolt.SSOProvider, bool) {
	slug := r.PathValue("account")
	acc, err := s.signin.Account(r.Context(), slug)
	if err != nil {
		s.pageError(w, r, err, "/")
		return nil, nil, false
	}
	p, err := s.sso.Provider(r.Context(), acc, r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err, slugPath(slug, "/signin"))
		return nil, nil, false
	}
	return acc, p, true
}

// pageSSOCallback is the redirect URI of OpenID Connect providers.
func (s *Server) pageSSOCallback(w http.ResponseWriter, r *http.Request) {
	acc, p, ok := s.ssoProvider(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	id, err := s.sso.FinishOIDC(r.Context(), acc, p, sso.Answer{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"),
		ErrorDescription: q.Get("error_description"), Browser: s.cookie(r, "sso")})
	s.ssoSignedIn(w, r, acc, p, id, err)
}

// pageSSOACS is the assertion consumer service of SAML providers.
func (s *Server) pageSSOACS(w http.ResponseWriter, r *http.Request) {
	acc, p, ok := s.ssoProvider(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	id, err := s.sso.FinishSAML(r.Context(), acc, p, r, s.cookie(r, "sso"))
	s.ssoSignedIn(w, r, acc, p, id, err)
}

// ssoSignedIn goes on from a provider's answer as from a password: a
// session, or the second factor or set-up the policy still asks.
func (s *Server) ssoSignedIn(w http.ResponseWriter, r *http.Request, acc *deadbolt.Account, p *deadbolt.SSOProvider, id deadbolt.Identity, err error) {
	slug := acc.Slug
	s.setSSOCookie(w, "", -1)
	if err == nil {
		var res *signin.Result
		if res, err = s.signin.SSOSignIn(r.Context(), acc, p, id, s.pageClient(r)); err == nil {
			s.afterStep(w, r, slug, res)
			return
		}
	}
	s.pageError(w, r, err, slugPath(slug, "/signin"))
}

func (s *Server) handleSPMetadata(w http.ResponseWriter, r *http.Request) {
	acc, err := s.signin.Account(r.Context(), r.PathValue("account"))
	var p *deadbolt.SSOProvider
	if err == nil {
		p, err = s.sso.Provider(r.Context(), acc, r.PathValue("id"))
	}
	var b []byte
	if err == nil {
		b, err = s.sso.SPMetadata(r.Context(), acc, p)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(b)
}

// --- The provider API ---

type ssoProviderRequest struct {
	Kind         deadbolt.SSOKind `json:"kind"`
	Name         string           `json:"name"`
	Domains      []string         `json:"domains"`
	JIT          bool             `json:"jit"`
	DefaultRole  deadbolt.Role    `json:"default_role"`
	TrustMFA     bool             `json:"trust_mfa"`
	Issuer       string           `json:"issuer"`
	ClientID     string           `json:"client_id"`
	ClientSecret string           `json:"client_secret"`
	MetadataURL  string           `json:"metadata_url"`
	MetadataXML  string           `json:"metadata_xml"`
}

func (q ssoProviderRequest) input() sso.Input {
	return sso.Input{Kind: q.Kind, Name: q.Name, Domains: q.Domains, JIT: q.JIT, DefaultRole: q.DefaultRole, TrustMFA: q.TrustMFA,
		Issuer: q.Issuer, ClientID: q.ClientID, ClientSecret: q.ClientSecret, MetadataURL: q.MetadataURL, MetadataXML: q.MetadataXML}
}

func (s *Server) handleSSOProviders(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	list, err := s.sso.Providers(r.Context(), p.Account)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, prov := range list {
		out = append(out, s.sso.View(p.Account, prov))
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
	return nil
}

func (s *Server) handleSSOProvider(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	prov, err := s.sso.Provider(r.Context(), p.Account, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.sso.View(p.Account, prov))
	return nil
}

// Changing who may sign in is a step-up action, as with applications.
func (s *Server) handleCreateSSOProvider(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.AdminStepUp(r.Context(), p); err != nil {
		return err
	}
	var req ssoProviderRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	prov, err := s.sso.Create(r.Context(), p.Account, p.User.ID, req.input())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.sso.View(p.Account, prov))
	return nil
}

func (s *Server) handleUpdateSSOProvider(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.AdminStepUp(r.Context(), p); err != nil {
		return err
	}
	var req ssoProviderRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	prov, err := s.sso.Update(r.Context(), p.Account, p.User.ID, r.PathValue("id"), req.input())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.sso.View(p.Account, prov))
	return nil
}

func (s *Server) handleDeleteSSOProvider(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.AdminStepUp(r.Context(), p); err != nil {
		return err
	}
	if err := s.sso.Delete(r.Context(), p.Account, p.User.ID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- The admin center's page ---

type ssoForm struct {
	Kind, Name, Domains, Issuer, ClientID, MetadataURL, MetadataXML string
	JIT, TrustMFA                                                   bool
	DefaultRole                                                     deadbolt.Role
}

func (s *Server) pageSSOAdmin(w http.ResponseWriter, r *http.Request) {
	p := s.adminPage(w, r)
	if p == nil {
		return
	}
	ctx := r.Context()
	slug := p.Account.Slug
	d := s.withUser(s.base(r, slug, p.Account.Name), p)
	d["Base"], d["Roles"] = s.publicURL+slugPath(slug, ""), []deadbolt.Role{deadbolt.RoleEndUser, deadbolt.RoleAgent, deadbolt.RoleAdmin}
	form := ssoForm{Kind: string(deadbolt.SSOOIDC), DefaultRole: deadbolt.RoleEndUser}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			s.pageError(w, r, deadbolt.Invalid("", "The form could not be read."), slugPath(slug, "/admin/sso"))
			return
		}
		f := r.PostForm
		form = ssoForm{Kind: f.Get("kind"), Name: f.Get("name"), Domains: f.Get("domains"), Issuer: strings.TrimSpace(f.Get("issuer")),
			ClientID: strings.TrimSpace(f.Get("client_id")), MetadataURL: strings.TrimSpace(f.Get("metadata_url")),
			MetadataXML: f.Get("metadata_xml"), JIT: f.Get("jit") == "1", TrustMFA: f.Get("trust_mfa") == "1",
			DefaultRole: deadbolt.Role(f.Get("default_role"))}
		confirming, err := s.adminPageStepUp(w, r, p)
		if confirming {
			return
		}
		var prov *deadbolt.SSOProvider
		if err == nil {
			prov, err = s.sso.Create(ctx, p.Account, p.User.ID, sso.Input{Kind: deadbolt.SSOKind(form.Kind), Name: form.Name,
				Domains: lines(form.Domains), JIT: form.JIT, DefaultRole: form.DefaultRole, TrustMFA: form.TrustMFA, Issuer: form.Issuer,
				ClientID: form.ClientID, ClientSecret: strings.TrimSpace(f.Get("client_secret")), MetadataURL: form.MetadataURL,
				MetadataXML: form.MetadataXML})
		}
		if err != nil {
			d["Error"], status = errorText(err), Status(deadbolt.ErrorCode(err))
		} else {
			d["Notice"] = prov.Name + " is added. Enter the values below at the provider."
			form = ssoForm{Kind: string(deadbolt.SSOOIDC), DefaultRole: deadbolt.RoleEndUser}
		}
	}
	provs, err := s.sso.Providers(ctx, p.Account)
	if err != nil {
		s.pageError(w, r, err, slugPath(slug, "/admin"))
		return
	}
	d["Providers"], d["Form"] = provs, form
	s.render(w, r, status, "sso", d)
}
