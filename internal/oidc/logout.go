package oidc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/deadbolt/deadbolt"
)

// maxLogoutFailures is how many times a back-channel logout is tried (one
// try a sweep) before it is given up on and audited as failed.
const maxLogoutFailures = 5

// sid is the session's id as applications see it (the sid claim): a keyed
// hash, so that the store's session ids stay inside Deadbolt.
func (p *Provider) sid(sessionID string) string {
	return hex.EncodeToString(p.keys.Hash("oidc sid " + sessionID)[:16])
}

// SweepLogouts tells the clients of every ended session, which have a
// back-channel logout URI, that it ended (OpenID Connect Back-Channel
// Logout 1.0), and forgets the session's logins and tokens. A client that
// does not answer 2xx is tried again at the next sweeps.
func (p *Provider) SweepLogouts(ctx context.Context) {
	logins, err := p.store.EndedOIDCLogins(ctx, 200)
	if err != nil {
		p.log.WarnContext(ctx, "oidc: ended logins", "err", err)
		return
	}
	for _, l := range logins {
		p.logout(ctx, l)
	}
}

func (p *Provider) logout(ctx context.Context, l *deadbolt.OIDCLogin) {
	key := l.AccountID + "/" + l.ClientID + "/" + l.SessionID
	c, err := p.store.FindOIDCClient(ctx, l.AccountID, l.ClientID)
	if err == nil && c.BackchannelLogoutURI != "" {
		if err := p.sendLogout(ctx, c, l); err != nil {
			p.failMu.Lock()
			p.failures[key]++
			n := p.failures[key]
			p.failMu.Unlock()
			p.log.WarnContext(ctx, "oidc: back-channel logout not delivered", "client_id", c.ID, "try", n, "err", err)
			if n < maxLogoutFailures {
				return
			}
			p.audit(ctx, deadbolt.AuditEvent{AccountID: l.AccountID, Type: deadbolt.AuditOIDCLogoutFailed, SubjectID: l.UserID,
				Details: map[string]string{"client_id": c.ID, "error": truncate(err.Error(), 200)}})
		} else {
			p.audit(ctx, deadbolt.AuditEvent{AccountID: l.AccountID, Type: deadbolt.AuditOIDCLogoutSent, SubjectID: l.UserID,
				Details: map[string]string{"client_id": c.ID, "sid": p.sid(l.SessionID)}})
		}
	} else if err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		p.log.WarnContext(ctx, "oidc: logout client", "err", err)
		return
	}
	p.failMu.Lock()
	delete(p.failures, key)
	p.failMu.Unlock()
	if err := p.store.DeleteOIDCLogin(ctx, l.AccountID, l.ClientID, l.SessionID); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		p.log.WarnContext(ctx, "oidc: login not forgotten", "err", err)
	}
}

// logoutClaims are a logout token's claims (Back-Channel Logout §2.4).
type logoutClaims struct {
	Issuer   string              `json:"iss"`
	Audience []string            `json:"aud"`
	IssuedAt int64               `json:"iat"`
	Expiry   int64               `json:"exp"`
	JWTID    string              `json:"jti"`
	Subject  string              `json:"sub"`
	SID      string              `json:"sid"`
	Events   map[string]struct{} `json:"events"`
}

// sendLogout posts a signed logout token to the client.
func (p *Provider) sendLogout(ctx context.Context, c *deadbolt.OIDCClient, l *deadbolt.OIDCLogin) error {
	acc, err := p.store.FindAccountByID(ctx, l.AccountID)
	if err != nil {
		return err
	}
	k, err := p.signingKey(ctx, acc)
	if err != nil {
		return err
	}
	now := p.now()
	claims := logoutClaims{Issuer: p.Issuer(acc.Slug), Audience: []string{c.ID}, IssuedAt: now.Unix(),
		Expiry: now.Add(2 * time.Minute).Unix(), JWTID: newID(), Subject: l.UserID, SID: p.sid(l.SessionID),
		Events: map[string]struct{}{"http://schemas.openid.net/event/backchannel-logout": {}}}
	payload, err := json.Marshal(claims)
	if err != nil {
		return err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader(jose.HeaderKey("kid"), k.id))
	if err != nil {
		return err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return err
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return &statusError{resp.StatusCode}
	}
	return nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "the client answered " + http.StatusText(e.code) }

// oauthError writes an OAuth error body (RFC 6749 §5.2).
func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// validEndSession answers a logout request the library could not parse
// (it would answer 500) with a 400 instead; it reports whether the request
// may go on.
func validEndSession(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request could not be parsed.")
		return false
	}
	for k, v := range r.Form {
		if len(v) > 1 {
			oauthError(w, http.StatusBadRequest, "invalid_request", "A parameter was given twice: "+truncate(k, 40)+".")
			return false
		}
	}
	if loc := r.Form.Get("ui_locales"); loc != "" {
		var l oidc.Locales
		if err := l.UnmarshalText([]byte(loc)); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "ui_locales is not a list of language tags.")
			return false
		}
	}
	return true
}
