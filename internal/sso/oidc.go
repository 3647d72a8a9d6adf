package sso

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/deadbolt/deadbolt"
)

// OpenID Connect identity providers, through coreos/go-oidc: discovery,
// the code flow with PKCE (S256), state and nonce, and the ID token
// verified against the provider's keys, issuer and audience.

type oidcProvider struct {
	provider *gooidc.Provider
}

// discover fetches the provider's discovery document (cached).
func (s *Service) discover(ctx context.Context, p *deadbolt.SSOProvider) (*oidcProvider, error) {
	if c := s.cached(p); c != nil && c.oidc != nil {
		return c.oidc, nil
	}
	gp, err := gooidc.NewProvider(gooidc.ClientContext(ctx, s.http), p.Issuer)
	if err != nil {
		s.log.WarnContext(ctx, "sso: discovery failed", "provider", p.ID, "issuer", p.Issuer, "err", err)
		return nil, deadbolt.Invalid("issuer", "Deadbolt could not read an OpenID Connect discovery document for the issuer %s "+
			"(at %s/.well-known/openid-configuration, naming the same issuer).", p.Issuer, strings.TrimSuffix(p.Issuer, "/"))
	}
	op := &oidcProvider{provider: gp}
	if p.CreatedAt.IsZero() {
		// Being created: nothing to cache under yet.
		return op, nil
	}
	s.remember(p, &cached{oidc: op})
	return op, nil
}

func (s *Service) oauth2Config(acc *deadbolt.Account, p *deadbolt.SSOProvider, op *oidcProvider) *oauth2.Config {
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, Endpoint: op.provider.Endpoint(),
		RedirectURL: s.CallbackURL(acc, p), Scopes: []string{gooidc.ScopeOpenID, "email", "profile"}}
}

func (s *Service) beginOIDC(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider, st *deadbolt.SSOState, loginHint string) (string, error) {
	op, err := s.discover(ctx, p)
	if err != nil {
		return "", deadbolt.Errorf(deadbolt.ESSORefused, "%s cannot be reached just now. Try again in a moment, or ask your admin.", p.Name)
	}
	st.Nonce, st.Verifier = rand.Text(), oauth2.GenerateVerifier()
	if err := s.store.CreateSSOState(ctx, st); err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(st.Verifier), gooidc.Nonce(st.Nonce)}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", loginHint))
	}
	return s.oauth2Config(acc, p, op).AuthCodeURL(st.ID, opts...), nil
}

// Answer is what came back to the redirect URI.
type Answer struct {
	State, Code, Error, ErrorDescription string
	// Browser is the secret the browser kept since Begin.
	Browser string
}

// FinishOIDC checks an OpenID Connect provider's answer and returns the
// person it vouches for.
func (s *Service) FinishOIDC(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider, a Answer) (deadbolt.Identity, error) {
	var none deadbolt.Identity
	if p.Kind != deadbolt.SSOOIDC {
		return none, deadbolt.Errorf(deadbolt.ENotFound, "Identity provider not found.")
	}
	st, err := s.state(ctx, acc, p, a.State, a.Browser)
	if err != nil {
		return none, err
	}
	if a.Error != "" {
		s.log.InfoContext(ctx, "sso: provider answered an error", "provider", p.ID, "error", truncate(a.Error, 64),
			"description", truncate(a.ErrorDescription, 200))
		if a.Error == "access_denied" {
			return none, s.refuse(ctx, acc, p, "access_denied", "%s did not sign you in (access denied).", p.Name)
		}
		return none, s.refuse(ctx, acc, p, "idp_error", "%s answered with an error (%s).", p.Name, oauthCode(a.Error))
	}
	if a.Code == "" || len(a.Code) > 4096 {
		return none, s.refuse(ctx, acc, p, "no_code", "%s sent no sign-in code. Start again.", p.Name)
	}
	op, err := s.discover(ctx, p)
	if err != nil {
		return none, s.refuse(ctx, acc, p, "discovery_failed", "%s cannot be reached just now. Try again in a moment.", p.Name)
	}
	hc := gooidc.ClientContext(ctx, s.http)
	tok, err := s.oauth2Config(acc, p, op).Exchange(hc, a.Code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.log.WarnContext(ctx, "sso: code exchange failed", "provider", p.ID, "err", err)
		return none, s.refuse(ctx, acc, p, "exchange_failed", "%s did not accept Deadbolt's sign-in code. Start again, or ask your admin to check the client id and secret.", p.Name)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return none, s.refuse(ctx, acc, p, "no_id_token", "%s sent no ID token.", p.Name)
	}
	idt, err := op.provider.VerifierContext(hc, &gooidc.Config{ClientID: p.ClientID, Now: s.now}).Verify(hc, raw)
	if err != nil {
		s.log.WarnContext(ctx, "sso: ID token refused", "provider", p.ID, "err", err)
		cause := "bad_id_token"
		var expired *gooidc.TokenExpiredError
		if errors.As(err, &expired) {
			cause = "expired_id_token"
		}
		return none, s.refuse(ctx, acc, p, cause, "%s's answer did not verify. Start again.", p.Name)
	}
	if idt.Nonce == "" || idt.Nonce != st.Nonce {
		return none, s.refuse(ctx, acc, p, "wrong_nonce", "%s's answer was not for this sign-in. Start again.", p.Name)
	}
	var cl idClaims
	if err := idt.Claims(&cl); err != nil {
		return none, s.refuse(ctx, acc, p, "bad_claims", "%s's answer could not be read.", p.Name)
	}
	if cl.Email == "" {
		// Some providers put the email only at userinfo: ask there, for
		// the same subject.
		info, err := op.provider.UserInfo(hc, oauth2.StaticTokenSource(tok))
		var ucl idClaims
		if err != nil || info.Subject != idt.Subject || info.Claims(&ucl) != nil {
			s.log.WarnContext(ctx, "sso: userinfo", "provider", p.ID, "err", err)
			return none, s.refuse(ctx, acc, p, "userinfo_failed", "%s did not say your email address. Ask your admin.", p.Name)
		}
		cl.Email, cl.EmailVerified = ucl.Email, ucl.EmailVerified
		if cl.Name == "" {
			cl.Name = ucl.Name
		}
	}
	// An email is the person's only if the provider verified it, or, from
	// a provider that does not say (Entra ID), if it is of a domain the
	// admin named the provider for: that provider owns the domain.
	verified := cl.EmailVerified != nil && *cl.EmailVerified
	if cl.EmailVerified == nil && p.HasDomain(strings.ToLower(cl.Email)) {
		verified = true
	}
	if cl.Email == "" || !verified {
		return none, s.refuse(ctx, acc, p, "email_not_verified", "%s did not vouch for your email address, which is how %s knows you. Ask your admin.",
			p.Name, acc.Name)
	}
	return deadbolt.Identity{Subject: idt.Subject, Email: cl.Email, Name: cl.Name, MFA: upstreamMFA(cl.AMR, cl.ACR)}, nil
}

// idClaims are the claims read from an ID token or userinfo.
type idClaims struct {
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Name          string   `json:"name"`
	AMR           []string `json:"amr"`
	ACR           string   `json:"acr"`
}

// upstreamMFA reads a provider's amr and acr: RFC 8176's "mfa" (Okta,
// Entra ID), or an acr naming multi-factor (the PAPE policy, "mfa").
func upstreamMFA(amr []string, acr string) bool {
	if slices.Contains(amr, "mfa") {
		return true
	}
	switch acr {
	case "mfa", "http://schemas.openid.net/pape/policies/2007/06/multi-factor", "phr", "phrh":
		return true
	}
	return false
}

// oauthCode is an OAuth error code as sent, if it looks like one.
func oauthCode(s string) string {
	if len(s) > 64 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return "an unknown error"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
