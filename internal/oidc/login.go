package oidc

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
)

// Pending is an application's sign-in request waiting for the browser to
// sign in: what the sign-in pages need to decide the next step.
type Pending struct {
	Account *deadbolt.Account
	Request *deadbolt.OIDCAuthRequest
	Client  *deadbolt.OIDCClient
}

// Pending returns the live auth request of the account. ENotFound when it
// is unknown, expired or answered already.
func (p *Provider) Pending(ctx context.Context, acc *deadbolt.Account, id string) (*Pending, error) {
	if len(id) > 64 {
		return nil, deadbolt.Errorf(deadbolt.ENotFound, "This sign-in has expired. Go back to the application and start again.")
	}
	r, err := p.store.FindOIDCAuthRequest(ctx, acc.ID, id, p.now())
	if deadbolt.IsCode(err, deadbolt.ENotFound) || (err == nil && !r.DoneAt.IsZero()) {
		return nil, deadbolt.Errorf(deadbolt.ENotFound, "This sign-in has expired. Go back to the application and start again.")
	} else if err != nil {
		return nil, err
	}
	c, err := p.store.FindOIDCClient(ctx, acc.ID, r.ClientID)
	if err != nil {
		return nil, err
	}
	return &Pending{Account: acc, Request: r, Client: c}, nil
}

// FormActionSource is the CSP source expression of where the answer goes
// (the redirect URI's origin, or its scheme for an app's own scheme), for
// the pages of this sign-in: browsers hold the redirects that follow a
// form post to the page's form-action, so a sign-in form whose answer
// redirects to the application is blocked without it. Empty when the URI
// has anything a CSP header could not carry.
func (pd *Pending) FormActionSource() string {
	u, err := url.Parse(pd.Request.RedirectURI)
	if err != nil || u.Scheme == "" || !cspSafe(u.Scheme, "+.-") {
		return ""
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return u.Scheme + ":"
	}
	if u.Host == "" || !cspSafe(u.Host, ".-:[]") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func cspSafe(s, extra string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

// Step is what the browser must do next for a pending sign-in.
type Step int

// Steps.
const (
	// StepSignIn: sign in (again): there is no session, or it is older
	// than prompt=login or max_age allow.
	StepSignIn Step = iota
	// StepSecondFactor: prove a second factor on the session (step-up):
	// the application asked for one (acr_values, or its own setting) and
	// the session has none, as after a remembered device.
	StepSecondFactor
	// StepEnrol: set up a second factor first: one is demanded and the
	// user has none.
	StepEnrol
	// StepDone: the session answers the request.
	StepDone
)

// WantsMFA reports whether the request demands a second factor.
func (pd *Pending) WantsMFA() bool {
	if pd.Client.Require2FA {
		return true
	}
	return slices.Contains(pd.Request.ACRValues, ACRMFA) || slices.Contains(pd.Request.ACRValues, papeMFA)
}

// PromptNone reports whether the application asked for no interaction.
func (pd *Pending) PromptNone() bool { return slices.Contains(pd.Request.Prompt, oidc.PromptNone) }

// authTime is when the session's user last authenticated.
func authTime(s *deadbolt.Session) time.Time {
	t := s.PasswordAt
	if s.FederatedAt.After(t) {
		t = s.FederatedAt
	}
	if s.SecondFactorAt.After(t) {
		t = s.SecondFactorAt
	}
	if t.IsZero() {
		t = s.CreatedAt
	}
	return t
}

// Next decides the next step for the browser whose session is pr (nil for
// none); hasFactor says whether its user has an active second factor.
func (pd *Pending) Next(pr *signin.Principal, hasFactor bool, now time.Time) Step {
	if pr == nil || pr.Session == nil || pr.Account.ID != pd.Account.ID {
		return StepSignIn
	}
	at := authTime(pr.Session)
	// A sign-in made for this request satisfies prompt=login and any
	// max_age (even 0, which the time the redirects take would exceed).
	fresh := !at.Before(pd.Request.CreatedAt)
	if !fresh && slices.Contains(pd.Request.Prompt, oidc.PromptLogin) {
		return StepSignIn
	}
	if m := pd.Request.MaxAge; m != nil && !fresh && now.Sub(at) > time.Duration(*m)*time.Second {
		return StepSignIn
	}
	if pd.WantsMFA() && pr.Session.SecondFactorAt.IsZero() && !pr.Session.UpstreamMFA {
		if hasFactor {
			return StepSecondFactor
		}
		return StepEnrol
	}
	return StepDone
}

// amrOf says how the session was authenticated, in RFC 8176 values, and
// the acr that follows: "mfa" with a second factor, else "pwd". A session
// of an SSO sign-in says "fed", and "mfa" too when the identity provider
// is trusted for MFA and said it did it.
func amrOf(s *deadbolt.Session) (amr []string, acr string) {
	if !s.PasswordAt.IsZero() {
		amr = append(amr, "pwd")
	}
	if s.SSOProviderID != "" {
		amr = append(amr, "fed")
	}
	if s.SecondFactorAt.IsZero() {
		if s.UpstreamMFA {
			return append(amr, "mfa"), ACRMFA
		}
		return amr, ACRPwdOnly
	}
	switch s.SecondFactorMethod {
	case signin.MethodPasskey:
		// A passkey that verified its user, without a password: both
		// factors in one.
		return append(amr, "hwk", "mfa"), ACRMFA
	case string(deadbolt.FactorSMS):
		amr = append(amr, "sms")
	case "webauthn":
		amr = append(amr, "hwk")
	default:
		// An authenticator app's code, an emailed code and a recovery
		// code are all one-time passwords.
		amr = append(amr, "otp")
	}
	if !s.PasswordAt.IsZero() || s.SSOProviderID != "" {
		amr = append(amr, "mfa")
	}
	return amr, ACRMFA
}

// Finish answers the pending request with the session: the request is
// marked done and the browser is sent to the application with a code.
// It is the pages' to call, in the browser that signed in, once Next
// says StepDone.
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, pd *Pending, pr *signin.Principal) error {
	req := *pd.Request
	req.UserID, req.SessionID = pr.User.ID, pr.Session.ID
	req.AuthTime = authTime(pr.Session)
	req.AMR, req.ACR = amrOf(pr.Session)
	now := p.now()
	req.DoneAt = now
	if err := p.store.CompleteOIDCAuthRequest(r.Context(), &req, now); err != nil {
		if deadbolt.IsCode(err, deadbolt.ENotFound) {
			return deadbolt.Errorf(deadbolt.ENotFound, "This sign-in has expired. Go back to the application and start again.")
		}
		return err
	}
	ctx := op.ContextWithIssuer(withAccount(r.Context(), pd.Account), p.Issuer(pd.Account.Slug))
	op.AuthResponse(&authRequest{&req}, p.op, w, r.WithContext(ctx))
	return nil
}

// Errors a pending request can be answered with, for prompt=none.
const (
	ErrLoginRequired       = "login_required"
	ErrInteractionRequired = "interaction_required"
	ErrAccessDenied        = "access_denied"
)

// Fail answers the pending request with an error, at the application's
// registered redirect URI (the request's was checked against it).
func (p *Provider) Fail(w http.ResponseWriter, r *http.Request, pd *Pending, code string) {
	var e *oidc.Error
	switch code {
	case ErrLoginRequired:
		e = oidc.ErrLoginRequired()
	case ErrInteractionRequired:
		e = oidc.ErrInteractionRequired()
	default:
		e = oidc.ErrAccessDenied()
	}
	ctx := op.ContextWithIssuer(withAccount(r.Context(), pd.Account), p.Issuer(pd.Account.Slug))
	op.AuthRequestError(w, r.WithContext(ctx), &authRequest{pd.Request}, e, p.op)
}
