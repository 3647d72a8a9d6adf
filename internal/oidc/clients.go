package oidc

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
)

// ClientInput is what an admin gives to register or change a client.
type ClientInput struct {
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	Scopes                 []string
	Require2FA             bool
	// Public makes a client without a secret (PKCE only). Fixed at
	// registration.
	Public bool
}

// RegisterClient registers a client for the account. A confidential
// client's secret is returned once; only its hash is kept.
func (p *Provider) RegisterClient(ctx context.Context, acc *deadbolt.Account, actorID string, in ClientInput) (*deadbolt.OIDCClient, string, error) {
	c := &deadbolt.OIDCClient{AccountID: acc.ID, ID: "dbo_" + newID(), Name: in.Name, RedirectURIs: in.RedirectURIs,
		PostLogoutRedirectURIs: in.PostLogoutRedirectURIs, BackchannelLogoutURI: in.BackchannelLogoutURI, Scopes: in.Scopes,
		Require2FA: in.Require2FA}
	if err := c.Validate(); err != nil {
		return nil, "", err
	}
	var sec string
	if !in.Public {
		sec = secret.NewToken(PrefixSecret)
		c.SecretHash = p.keys.Hash(sec)
	}
	now := p.now()
	c.CreatedAt, c.UpdatedAt = now, now
	if err := p.store.CreateOIDCClient(ctx, c); err != nil {
		return nil, "", err
	}
	p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCClientCreated, ActorID: actorID,
		Details: map[string]string{"client_id": c.ID, "name": c.Name, "public": boolText(in.Public)}})
	return c, sec, nil
}

// UpdateClient replaces a client's settings (not its id, kind or secret).
func (p *Provider) UpdateClient(ctx context.Context, acc *deadbolt.Account, actorID, id string, in ClientInput) (*deadbolt.OIDCClient, error) {
	old, err := p.store.FindOIDCClient(ctx, acc.ID, id)
	if err != nil {
		return nil, err
	}
	c := *old
	c.Name, c.RedirectURIs, c.PostLogoutRedirectURIs = in.Name, in.RedirectURIs, in.PostLogoutRedirectURIs
	c.BackchannelLogoutURI, c.Scopes, c.Require2FA = in.BackchannelLogoutURI, in.Scopes, in.Require2FA
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.UpdatedAt = p.now()
	out, err := p.store.UpdateOIDCClient(ctx, &c)
	if err != nil {
		return nil, err
	}
	p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCClientUpdated, ActorID: actorID,
		Details: map[string]string{"client_id": c.ID}})
	return out, nil
}

// RotateSecret gives a confidential client a new secret; the old one stops
// working at once.
func (p *Provider) RotateSecret(ctx context.Context, acc *deadbolt.Account, actorID, id string) (*deadbolt.OIDCClient, string, error) {
	c, err := p.store.FindOIDCClient(ctx, acc.ID, id)
	if err != nil {
		return nil, "", err
	}
	if c.Public() {
		return nil, "", deadbolt.Errorf(deadbolt.EConflict, "A public client has no secret.")
	}
	sec := secret.NewToken(PrefixSecret)
	c.SecretHash, c.UpdatedAt = p.keys.Hash(sec), p.now()
	if c, err = p.store.UpdateOIDCClient(ctx, c); err != nil {
		return nil, "", err
	}
	p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCSecretRotated, ActorID: actorID,
		Details: map[string]string{"client_id": c.ID}})
	return c, sec, nil
}

// Clients lists the account's clients.
func (p *Provider) Clients(ctx context.Context, acc *deadbolt.Account) ([]*deadbolt.OIDCClient, error) {
	return p.store.FindOIDCClients(ctx, acc.ID)
}

// Client returns one of the account's clients.
func (p *Provider) Client(ctx context.Context, acc *deadbolt.Account, id string) (*deadbolt.OIDCClient, error) {
	return p.store.FindOIDCClient(ctx, acc.ID, id)
}

// DeleteClient removes a client and everything it was given.
func (p *Provider) DeleteClient(ctx context.Context, acc *deadbolt.Account, actorID, id string) error {
	if err := p.store.DeleteOIDCClient(ctx, acc.ID, id); err != nil {
		return err
	}
	p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCClientDeleted, ActorID: actorID,
		Details: map[string]string{"client_id": id}})
	return nil
}

// clientSecretRule limits wrong secrets per client: 10 go ahead, then
// each waits twice as long as the one before, up to a 15-minute pause.
// The attempt is reserved before the check, so parallel guesses get no
// more tries than serial ones.
var clientSecretRule = deadbolt.AttemptRule{Window: 24 * time.Hour, Sliding: true, Free: 10, Base: time.Second, PauseAt: 20, Pause: 15 * time.Minute}

// authorizeClient checks a confidential client's secret under the limit.
func (p *Provider) authorizeClient(ctx context.Context, acc *deadbolt.Account, clientID, clientSecret string) error {
	invalid := oidc.ErrInvalidClient().WithDescription("client authentication failed")
	if len(clientID) > 64 || len(clientSecret) > 128 {
		return invalid
	}
	now := p.now()
	key := "oidc_client_secret:" + clientID
	counters, refused, err := p.store.ReserveAttempts(ctx, acc.ID, now, deadbolt.AttemptLimit{Key: key, Rule: clientSecretRule})
	if err != nil {
		return err
	}
	if refused >= 0 {
		wait := clientSecretRule.NextAt(counters[0], now).Sub(now)
		p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCTokenRefused,
			Details: map[string]string{"client_id": truncate(clientID, 64), "cause": "rate_limited"}})
		return oidc.ErrInvalidClient().WithDescription("too many failed attempts: try again in %d seconds", int(wait.Seconds())+1)
	}
	c, err := p.store.FindOIDCClient(ctx, acc.ID, clientID)
	ok := err == nil && !c.Public() && strings.HasPrefix(clientSecret, PrefixSecret) && secret.Equal(c.SecretHash, p.keys.Hash(clientSecret))
	if err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		return err
	}
	if !ok {
		p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCTokenRefused,
			Details: map[string]string{"client_id": truncate(clientID, 64), "cause": "client_secret"}})
		return invalid
	}
	// A success ends the run of failures.
	if err := p.store.SettleAttempts(ctx, acc.ID, []string{key}, nil); err != nil {
		p.log.WarnContext(ctx, "oidc: attempts not settled", "err", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

// audit records an event; a failure is logged, not returned: what it
// records has happened.
func (p *Provider) audit(ctx context.Context, e deadbolt.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	c := signin.ClientOf(ctx)
	if e.IP == "" {
		e.IP = c.IP
	}
	if e.UserAgent == "" {
		e.UserAgent = truncate(c.UserAgent, 256)
	}
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	if err := p.store.RecordEvent(ctx, &e); err != nil {
		p.log.ErrorContext(ctx, "oidc: audit event not recorded", "type", e.Type, "err", err)
	}
}
