package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/deadbolt/deadbolt/internal/oidc"
	"github.com/deadbolt/deadbolt/internal/signin"
)

// listFlag is a flag that may be given many times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// provider is the OpenID Connect provider over the app's database, for the
// commands (it serves nothing).
func (a *app) provider() (*oidc.Provider, error) {
	svc := a.service()
	return oidc.New(oidc.Options{Store: a.db, Keys: a.keys, PublicURL: a.cfg.PublicURL, Logger: a.log, SignOut: svc.SignOut})
}

func cmdOIDCRotateKeys(ctx context.Context, e *env, args []string) error {
	fs, load := newFlags(e, "oidc rotate-keys")
	slug := fs.String("account", "", "the account's slug (required)")
	alg := fs.String("alg", oidc.AlgRS256, "the new key's algorithm: RS256 or ES256")
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if *slug == "" {
		return usageError{errors.New("oidc rotate-keys: --account is required")}
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	acc, err := a.db.FindAccountBySlug(ctx, *slug)
	if err != nil {
		return err
	}
	p, err := a.provider()
	if err != nil {
		return err
	}
	k, err := p.RotateKeys(signin.WithClient(ctx, signin.Client{}), acc, *alg)
	if err != nil {
		return err
	}
	return printJSON(e, map[string]any{"account": acc.Slug, "key_id": k.ID, "alg": k.Alg, "created_at": k.CreatedAt,
		"note": "new tokens are signed with this key; the previous key stays published until the tokens it signed have expired"})
}

func cmdOIDCClient(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("oidc client: create, list or delete")}
	}
	sub, args := args[0], args[1:]
	fs, load := newFlags(e, "oidc client "+sub)
	slug := fs.String("account", "", "the account's slug (required)")
	var in oidc.ClientInput
	var redirects, logouts listFlag
	var scopes, id string
	switch sub {
	case "create":
		fs.StringVar(&in.Name, "name", "", "the application's name (required)")
		fs.Var(&redirects, "redirect-uri", "a redirect URI, matched exactly (required; repeat for more)")
		fs.Var(&logouts, "post-logout-uri", "a post-logout redirect URI (repeat for more)")
		fs.StringVar(&in.BackchannelLogoutURI, "backchannel-logout-uri", "", "where logout tokens are posted when a session ends")
		fs.StringVar(&scopes, "scopes", "openid profile email", "the scopes the client may ask for, space-separated (offline_access for refresh tokens)")
		fs.BoolVar(&in.Public, "public", false, "a public client (single-page or native app): no secret, PKCE required")
		fs.BoolVar(&in.Require2FA, "require-2fa", false, "every sign-in to it needs a second factor")
	case "list":
	case "delete":
		fs.StringVar(&id, "id", "", "the client id (required)")
	default:
		return usageError{fmt.Errorf("oidc client: unknown command %q: create, list or delete", sub)}
	}
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if *slug == "" {
		return usageError{fmt.Errorf("oidc client %s: --account is required", sub)}
	}
	if sub == "delete" && id == "" {
		return usageError{errors.New("oidc client delete: --id is required")}
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	acc, err := a.db.FindAccountBySlug(ctx, *slug)
	if err != nil {
		return err
	}
	p, err := a.provider()
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		in.RedirectURIs, in.PostLogoutRedirectURIs, in.Scopes = redirects, logouts, strings.Fields(scopes)
		c, secret, err := p.RegisterClient(ctx, acc, "", in)
		if err != nil {
			return err
		}
		out := map[string]any{"client_id": c.ID, "name": c.Name, "public": c.Public(), "redirect_uris": c.RedirectURIs,
			"scopes": c.Scopes, "issuer": p.Issuer(acc.Slug)}
		if secret != "" {
			out["client_secret"] = secret
			out["note"] = "the secret is shown only now: store it in the application's configuration"
		}
		return printJSON(e, out)
	case "list":
		list, err := p.Clients(ctx, acc)
		if err != nil {
			return err
		}
		for _, c := range list {
			if err := printJSON(e, map[string]any{"client_id": c.ID, "name": c.Name, "public": c.Public(),
				"redirect_uris": c.RedirectURIs, "scopes": c.Scopes, "require_2fa": c.Require2FA}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := p.DeleteClient(ctx, acc, "", id); err != nil {
		return err
	}
	return printJSON(e, map[string]any{"client_id": id, "deleted": true})
}
