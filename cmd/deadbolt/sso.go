package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/sso"
)

// ssoService is the SSO service over the app's database, for the commands
// (it serves nothing).
func (a *app) ssoService() *sso.Service {
	return sso.New(sso.Options{Store: a.db, Keys: a.keys, PublicURL: a.cfg.PublicURL, Logger: a.log})
}

// secretInArgs reports whether the command line gives a client secret as
// a flag's value, which shell history and ps would keep.
func secretInArgs(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "client-secret" || name == "secret") {
			return true
		}
	}
	return false
}

// readMetadataFile reads SAML IdP metadata, one byte past the limit so
// that the provider's check refuses a file too big.
func readMetadataFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--metadata-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 256<<10+1))
	if err != nil {
		return "", fmt.Errorf("--metadata-file: %w", err)
	}
	return string(b), nil
}

func cmdSSOProvider(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("sso provider: create, list or delete")}
	}
	sub, args := args[0], args[1:]
	fs, load := newFlags(e, "sso provider "+sub)
	slug := fs.String("account", "", "the account's slug (required)")
	var in sso.Input
	var domains listFlag
	var kind, role, metadataFile, id string
	var secretStdin bool
	switch sub {
	case "create":
		fs.StringVar(&kind, "kind", "", "the protocol: oidc (OpenID Connect) or saml (SAML 2.0) (required)")
		fs.StringVar(&in.Name, "name", "", `the provider's name, shown as "Sign in with NAME" (required)`)
		fs.Var(&domains, "domain", "an email domain the provider is for: its people are sent to it, and only they are accepted from it (repeat for more)")
		fs.BoolVar(&in.JIT, "jit", false, "create a user at the first sign-in of an email the account does not know")
		fs.StringVar(&role, "default-role", string(deadbolt.RoleEndUser), "the role of users created at sign-in: admin, agent or end_user")
		fs.BoolVar(&in.TrustMFA, "trust-mfa", false, "accept the provider's word that a second factor was used")
		fs.StringVar(&in.Issuer, "issuer", "", "oidc: the provider's issuer URL (discovery is at ISSUER/.well-known/openid-configuration) (required)")
		fs.StringVar(&in.ClientID, "client-id", "", "oidc: the client id the provider gave Deadbolt (required)")
		fs.BoolVar(&secretStdin, "client-secret-stdin", false, "oidc: read the client secret from the first line of standard input (without it, the client has no secret: for a provider that takes PKCE alone)")
		fs.StringVar(&in.MetadataURL, "metadata-url", "", "saml: the URL of the identity provider's metadata")
		fs.StringVar(&metadataFile, "metadata-file", "", "saml: a file of the identity provider's metadata (XML)")
	case "list":
	case "delete":
		fs.StringVar(&id, "id", "", "the provider's id (required)")
	default:
		return usageError{fmt.Errorf("sso provider: unknown command %q: create, list or delete", sub)}
	}
	if sub == "create" && secretInArgs(args) {
		return usageError{errors.New("sso provider create: the client secret is not taken in the command line, where shell history and ps would keep it: give --client-secret-stdin and write it to standard input")}
	}
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if *slug == "" {
		return usageError{fmt.Errorf("sso provider %s: --account is required", sub)}
	}
	if sub == "delete" && id == "" {
		return usageError{errors.New("sso provider delete: --id is required")}
	}
	if sub == "create" {
		if err := ssoCreateInput(e, fs, &in, kind, role, domains, metadataFile, secretStdin); err != nil {
			return err
		}
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
	svc := a.ssoService()
	switch sub {
	case "create":
		p, err := svc.Create(ctx, acc, "", in)
		if err != nil {
			return err
		}
		out := svc.View(acc, p)
		if p.Kind == deadbolt.SSOOIDC {
			out["note"] = "register redirect_uri as the client's redirect URI at the identity provider"
		} else {
			out["note"] = "give the identity provider sp_metadata_url (or sp_entity_id and acs_url)"
		}
		return printJSON(e, out)
	case "list":
		list, err := svc.Providers(ctx, acc)
		if err != nil {
			return err
		}
		for _, p := range list {
			if err := printJSON(e, svc.View(acc, p)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := svc.Delete(ctx, acc, "", id); err != nil {
		return err
	}
	return printJSON(e, map[string]any{"id": id, "deleted": true})
}

// ssoCreateInput completes the input of sso provider create from its flags
// and standard input, and checks all that needs no database or network
// before either is touched.
func ssoCreateInput(e *env, fs *flag.FlagSet, in *sso.Input, kind, role string, domains listFlag, metadataFile string, secretStdin bool) error {
	if kind == "" {
		return usageError{errors.New("sso provider create: --kind is required: oidc or saml")}
	}
	in.Kind, in.DefaultRole, in.Domains = deadbolt.SSOKind(kind), deadbolt.Role(role), domains
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var others []string
	switch in.Kind {
	case deadbolt.SSOOIDC:
		others = []string{"metadata-url", "metadata-file"}
	case deadbolt.SSOSAML:
		others = []string{"issuer", "client-id", "client-secret-stdin"}
		if set["metadata-url"] == set["metadata-file"] {
			return usageError{errors.New("sso provider create: --kind saml takes the metadata from --metadata-url or --metadata-file (one of them)")}
		}
	}
	for _, name := range others {
		if set[name] {
			return usageError{fmt.Errorf("sso provider create: --%s is not for --kind %s", name, kind)}
		}
	}
	if metadataFile != "" {
		xml, err := readMetadataFile(metadataFile)
		if err != nil {
			return err
		}
		in.MetadataXML = xml
	}
	if secretStdin {
		secret, err := readPassword(e.stdin)
		if err != nil {
			return fmt.Errorf("client secret: %w", err)
		}
		if in.ClientSecret = strings.TrimSpace(secret); in.ClientSecret == "" {
			return errors.New("the client secret on standard input is empty")
		}
	}
	// The provider's own check, on a copy (the service checks again).
	check := &deadbolt.SSOProvider{Kind: in.Kind, Name: in.Name, Domains: in.Domains, JIT: in.JIT, DefaultRole: in.DefaultRole,
		TrustMFA: in.TrustMFA, Issuer: in.Issuer, ClientID: in.ClientID, ClientSecret: in.ClientSecret, MetadataURL: in.MetadataURL,
		MetadataXML: in.MetadataXML}
	return check.Validate()
}
