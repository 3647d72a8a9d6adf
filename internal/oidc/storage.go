package oidc

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
)

// Token prefixes, so that a leaked refresh token or client secret is
// recognised by scanners.
const (
	PrefixRefresh = "dbr_"
	PrefixSecret  = "dbcs_"
)

// storage is the library's view of the store. Every method finds the
// account in the context (ServeHTTP put it there) and reaches nothing
// outside it.
type storage struct{ p *Provider }

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)
var _ op.CanTerminateSessionFromRequest = (*storage)(nil)

// errNoAccount is what a storage call without an account gets: a
// programming error, never a request's.
var errNoAccount = errors.New("oidc: no account in context")

// errInactive is an introspected token that is not active for the caller.
var errInactive = errors.New("oidc: token inactive")

func (s *storage) account(ctx context.Context) (*deadbolt.Account, error) {
	if a := accountOf(ctx); a != nil {
		return a, nil
	}
	return nil, errNoAccount
}

func newID() string { return strings.ToLower(rand.Text()) }

// --- Clients ---

func (s *storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.p.store.FindOIDCClient(ctx, acc.ID, clientID)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	} else if err != nil {
		return nil, err
	}
	return &client{c: c, loginURL: s.p.publicURL + "/accounts/" + acc.Slug + "/signin/oidc?id="}, nil
}

// AuthorizeClientIDSecret checks a confidential client's secret. Failures
// are counted per client: a guessing client is paused like a guessing
// person.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, clientID, clientSecret string) error {
	acc, err := s.account(ctx)
	if err != nil {
		return err
	}
	return s.p.authorizeClient(ctx, acc, clientID, clientSecret)
}

// --- Auth requests ---

// MFA is the acr of a sign-in with a second factor, PwdOnly that of one
// without. acr_values may also name the PAPE multi-factor policy.
const (
	ACRMFA     = "mfa"
	ACRPwdOnly = "pwd"
	papeMFA    = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
)

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrInvalidRequest().WithDescription("only the authorization code flow is supported")
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	c, err := s.p.store.FindOIDCClient(ctx, acc.ID, req.ClientID)
	if err != nil {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client")
	}
	if c.Public() && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with S256 is required for public clients")
	}
	if len(req.State) > 2048 || len(req.Nonce) > 2048 || len(req.LoginHint) > 320 || len(req.CodeChallenge) > 128 || len(req.ACRValues) > 10 {
		return nil, oidc.ErrInvalidRequest().WithDescription("a parameter is too long")
	}
	// Only the scopes the client is allowed: the library lets the
	// standard ones through whatever the registration says, and userinfo
	// and the token response follow the request's.
	var scopes []string
	for _, sc := range req.Scopes {
		if (sc == oidc.ScopeOpenID || slices.Contains(c.Scopes, sc)) && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	now := s.p.now()
	r := &deadbolt.OIDCAuthRequest{AccountID: acc.ID, ID: newID(), ClientID: c.ID, RedirectURI: req.RedirectURI,
		State: req.State, Nonce: req.Nonce, Scopes: scopes, ResponseType: string(req.ResponseType),
		ResponseMode: string(req.ResponseMode), CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt: req.Prompt, LoginHint: req.LoginHint, ACRValues: req.ACRValues, CreatedAt: now, ExpiresAt: now.Add(deadbolt.OIDCAuthRequestTTL)}
	if req.MaxAge != nil {
		m := int64(*req.MaxAge)
		r.MaxAge = &m
	}
	if err := s.p.store.CreateOIDCAuthRequest(ctx, r); err != nil {
		return nil, err
	}
	return &authRequest{r}, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.p.store.FindOIDCAuthRequest(ctx, acc.ID, id, s.p.now())
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired request")
	} else if err != nil {
		return nil, err
	}
	return &authRequest{r}, nil
}

// AuthRequestByCode consumes the code: of racing exchanges, one gets the
// request. A code used before is a replay: the tokens it gave are revoked
// (RFC 6749 §4.1.2).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	if len(code) > 512 {
		return nil, oidc.ErrInvalidGrant()
	}
	r, err := s.p.store.ConsumeOIDCAuthCode(ctx, acc.ID, s.p.keys.Hash(code), s.p.now())
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		if r != nil {
			n, derr := s.p.store.DeleteOIDCTokensOf(ctx, acc.ID, r.UserID, "", r.ID)
			if derr != nil {
				s.p.log.ErrorContext(ctx, "oidc: tokens of a replayed code not revoked", "err", derr)
			}
			s.p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCCodeReplayed, SubjectID: r.UserID,
				Details: map[string]string{"client_id": r.ClientID, "tokens_revoked": itoa(n)}})
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is invalid, expired or used")
	} else if err != nil {
		return nil, err
	}
	return &authRequest{r}, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	acc, err := s.account(ctx)
	if err != nil {
		return err
	}
	err = s.p.store.SetOIDCAuthCode(ctx, acc.ID, id, s.p.keys.Hash(code), s.p.now())
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return oidc.ErrInvalidRequest().WithDescription("this sign-in has already been answered")
	}
	return err
}

// DeleteAuthRequest is called after the code's exchange. The request stays
// (marked used) until it expires, so that a replay of its code is known
// as one and revokes what the code gave.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// --- Tokens ---

func (s *storage) issue(ctx context.Context, acc *deadbolt.Account, req op.TokenRequest, refresh bool) (*deadbolt.OIDCToken, string, error) {
	now := s.p.now()
	t := &deadbolt.OIDCToken{AccountID: acc.ID, ID: newID(), UserID: req.GetSubject(), Scopes: req.GetScopes(),
		CreatedAt: now, ExpiresAt: now.Add(deadbolt.OIDCAccessTokenTTL)}
	switch r := req.(type) {
	case *authRequest:
		t.ClientID, t.SessionID, t.AuthRequestID = r.r.ClientID, r.r.SessionID, r.r.ID
		t.AuthTime, t.AMR, t.ACR = r.r.AuthTime, r.r.AMR, r.r.ACR
	case *refreshRequest:
		t.ClientID, t.SessionID, t.AuthRequestID = r.t.ClientID, r.t.SessionID, r.t.AuthRequestID
		t.AuthTime, t.AMR, t.ACR = r.t.AuthTime, r.t.AMR, r.t.ACR
	default:
		return nil, "", oidc.ErrUnsupportedGrantType()
	}
	var token string
	if refresh {
		sess, err := s.p.store.FindSession(ctx, acc.ID, t.SessionID)
		if err != nil || !sess.Active(now) {
			return nil, "", oidc.ErrInvalidGrant().WithDescription("the session has ended")
		}
		token = secret.NewToken(PrefixRefresh)
		t.RefreshHash = s.p.keys.Hash(token)
		// A refresh token lives as long as its session can.
		t.RefreshExpiresAt = sess.ExpiresAt
	}
	return t, token, nil
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	t, _, err := s.issue(ctx, acc, req, false)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := s.create(ctx, acc, t); err != nil {
		return "", time.Time{}, err
	}
	return t.ID, libraryExpiry(s.p.now(), t.ExpiresAt), nil
}

// libraryExpiry is the expiry to hand the library, which computes
// expires_in against the system clock, not the provider's.
func libraryExpiry(now, exp time.Time) time.Time { return time.Now().Add(exp.Sub(now)) }

func (s *storage) create(ctx context.Context, acc *deadbolt.Account, t *deadbolt.OIDCToken) error {
	err := s.p.store.CreateOIDCToken(ctx, t)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return oidc.ErrInvalidGrant().WithDescription("the session has ended")
	} else if err != nil {
		return err
	}
	s.p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCTokenIssued, SubjectID: t.UserID,
		Details: map[string]string{"client_id": t.ClientID, "token_id": t.ID, "refresh": boolText(t.RefreshHash != nil),
			"scopes": strings.Join(t.Scopes, " ")}})
	return nil
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return "", "", time.Time{}, err
	}
	t, token, err := s.issue(ctx, acc, req, true)
	if err != nil {
		return "", "", time.Time{}, err
	}
	if current == "" {
		if err := s.create(ctx, acc, t); err != nil {
			return "", "", time.Time{}, err
		}
		return t.ID, token, libraryExpiry(s.p.now(), t.ExpiresAt), nil
	}
	// Rotation: the refresh token used dies in the transaction that makes
	// its successor; of racing refreshes with one token, one wins.
	err = s.p.store.RotateOIDCToken(ctx, acc.ID, s.p.keys.Hash(current), t)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid or was used")
	} else if err != nil {
		return "", "", time.Time{}, err
	}
	s.p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCRefreshUsed, SubjectID: t.UserID,
		Details: map[string]string{"client_id": t.ClientID, "token_id": t.ID}})
	return t.ID, token, libraryExpiry(s.p.now(), t.ExpiresAt), nil
}

// liveToken returns the token whose access token or refresh token is
// usable at now: its session must still exist, be active and be the
// token's user's.
func (s *storage) liveToken(ctx context.Context, acc *deadbolt.Account, t *deadbolt.OIDCToken, refresh bool) bool {
	now := s.p.now()
	if refresh {
		if t.RefreshHash == nil || !now.Before(t.RefreshExpiresAt) {
			return false
		}
	} else if !now.Before(t.ExpiresAt) {
		return false
	}
	sess, err := s.p.store.FindSession(ctx, acc.ID, t.SessionID)
	return err == nil && sess.UserID == t.UserID && sess.Active(now)
}

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	invalid := oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid or was used")
	if !strings.HasPrefix(token, PrefixRefresh) || len(token) > 128 {
		return nil, invalid
	}
	t, err := s.p.store.FindOIDCTokenByRefresh(ctx, acc.ID, s.p.keys.Hash(token))
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, invalid
	} else if err != nil {
		return nil, err
	}
	if !s.liveToken(ctx, acc, t, true) {
		return nil, invalid
	}
	// An application refreshing its tokens is its user at work: the
	// Deadbolt session they hang on is not idle.
	if err := s.p.store.TouchSession(ctx, acc.ID, t.SessionID, s.p.now()); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, err
	}
	return &refreshRequest{t: t, scopes: t.Scopes}, nil
}

// TerminateSession is the library's fallback; TerminateSessionFromRequest
// is what it calls.
func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	acc, err := s.account(ctx)
	if err != nil {
		return err
	}
	_, err = s.p.store.DeleteOIDCTokensOf(ctx, acc.ID, userID, clientID, "")
	return err
}

// TerminateSessionFromRequest is RP-initiated logout: the browser's
// Deadbolt session ends (so every application signed in through it is
// told, by back-channel), the client's tokens for the user end, and the
// browser goes to the registered post-logout URI or to the sign-in page.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return "", err
	}
	if b := browserOf(ctx); b != nil && b.Session != nil && b.Account.ID == acc.ID && (req.UserID == "" || req.UserID == b.User.ID) {
		if err := s.p.signOut(ctx, b); err != nil {
			return "", err
		}
	}
	if req.UserID != "" {
		if _, err := s.p.store.DeleteOIDCTokensOf(ctx, acc.ID, req.UserID, req.ClientID, ""); err != nil {
			return "", err
		}
	}
	// The library's redirect is a registered post-logout URI (absolute),
	// or, without one, just the state it appended to nothing: then
	// Deadbolt's own signed-out page.
	if u, err := url.Parse(req.RedirectURI); err == nil && u.IsAbs() {
		return req.RedirectURI, nil
	}
	return s.p.Issuer(acc.Slug) + "/signin?m=signedout", nil
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return "", "", err
	}
	if !strings.HasPrefix(token, PrefixRefresh) || len(token) > 128 {
		return "", "", op.ErrInvalidRefreshToken
	}
	t, err := s.p.store.FindOIDCTokenByRefresh(ctx, acc.ID, s.p.keys.Hash(token))
	if err != nil || t.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.UserID, "refresh:" + t.ID, nil
}

// RevokeToken revokes a refresh token (given as "refresh:" and its row's
// id by GetRefreshTokenInfo: the whole issue ends) or an access token (by
// its id: the refresh token stays). Another client's token, or an unknown
// one, is answered as revoked (RFC 7009 §2.2) and left alone.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	acc, err := s.account(ctx)
	if err != nil {
		return oidc.ErrServerError()
	}
	id, refresh := strings.CutPrefix(tokenOrID, "refresh:")
	if len(id) > 64 {
		return nil
	}
	t, err := s.p.store.FindOIDCToken(ctx, acc.ID, id)
	if err != nil || t.ClientID != clientID || t.UserID != userID {
		return nil
	}
	if refresh {
		err = s.p.store.DeleteOIDCToken(ctx, acc.ID, id)
	} else {
		err = s.p.store.ExpireOIDCAccessToken(ctx, acc.ID, id)
	}
	if err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		return oidc.ErrServerError()
	}
	s.p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCTokenRevoked, SubjectID: t.UserID,
		Details: map[string]string{"client_id": clientID, "token_id": id, "refresh": boolText(refresh)}})
	return nil
}

// --- Keys ---

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.p.signingKey(ctx, acc)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (s *storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	keys, err := s.KeySet(ctx)
	if err != nil {
		return nil, err
	}
	var algs []jose.SignatureAlgorithm
	for _, k := range keys {
		if !slices.Contains(algs, k.Algorithm()) {
			algs = append(algs, k.Algorithm())
		}
	}
	return algs, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := s.p.publishedKeys(ctx, acc)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out, nil
}

// --- Userinfo and claims ---

// SetUserinfoFromScopes is empty: the claims are set from the request
// (SetUserinfoFromRequest), where the library offers it.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the user's claims in the ID token itself, so
// that applications need not call userinfo.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	acc, err := s.account(ctx)
	if err != nil {
		return err
	}
	if err := s.p.userClaims(ctx, acc, info, req.GetSubject(), scopes); err != nil {
		return err
	}
	// sid names the Deadbolt session, as the back-channel logout token
	// will (OpenID Connect Back-Channel Logout §2.1).
	switch r := req.(type) {
	case *authRequest:
		info.AppendClaims("sid", s.p.sid(r.r.SessionID))
	case *refreshRequest:
		info.AppendClaims("sid", s.p.sid(r.t.SessionID))
		// The library takes acr from authorization requests only: a
		// refreshed ID token says it as the first one did.
		if r.t.ACR != "" {
			info.AppendClaims("acr", r.t.ACR)
		}
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	acc, err := s.account(ctx)
	if err != nil {
		return err
	}
	t, err := s.p.store.FindOIDCToken(ctx, acc.ID, tokenID)
	if err != nil || t.UserID != subject || !s.liveToken(ctx, acc, t, false) {
		return oidc.ErrInvalidRequest().WithDescription("invalid_token")
	}
	return s.p.userClaims(ctx, acc, info, t.UserID, t.Scopes)
}

func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	acc, err := s.account(ctx)
	if err != nil {
		return err
	}
	t, err := s.p.store.FindOIDCToken(ctx, acc.ID, tokenID)
	// A token is described only to the client it was issued to; to any
	// other it is inactive, like an unknown one.
	// The library answers {"active": false} to an error.
	if err != nil || t.UserID != subject || t.ClientID != clientID || !s.liveToken(ctx, acc, t, false) {
		return errInactive
	}
	info := new(oidc.UserInfo)
	if err := s.p.userClaims(ctx, acc, info, t.UserID, t.Scopes); err != nil {
		return errInactive
	}
	resp.SetUserInfo(info)
	resp.Active = true
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.AuthTime = oidc.FromTime(t.AuthTime)
	resp.Subject = t.UserID
	resp.Audience = []string{t.ClientID}
	resp.AuthenticationMethodsReferences = t.AMR
	resp.Issuer = s.p.Issuer(acc.Slug)
	resp.JWTID = t.ID
	return nil
}

// GetPrivateClaimsFromScopes adds nothing to access tokens: they are
// opaque.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// JWT profile grants are not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (s *storage) Health(ctx context.Context) error { return s.p.store.Ping(ctx) }

// userClaims fills in the user's claims for the scopes: email and
// email_verified (email), name (profile), role (role or profile).
func (p *Provider) userClaims(ctx context.Context, acc *deadbolt.Account, info *oidc.UserInfo, userID string, scopes []string) error {
	u, err := p.store.FindUserByID(ctx, acc.ID, userID)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return oidc.ErrInvalidRequest().WithDescription("invalid_token")
	} else if err != nil {
		return err
	}
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeEmail:
			// Deadbolt's emails are verified: an account's admin made the
			// user, or the user accepted an emailed invitation.
			info.Email, info.EmailVerified = u.Email, true
		case oidc.ScopeProfile:
			info.Name = u.Name
			info.AppendClaims("role", string(u.Role))
		case "role":
			info.AppendClaims("role", string(u.Role))
		}
	}
	return nil
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
