package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
)

// errorText is what the terminal shows of an error: an application error's
// public message (naming the field), anything else as it is.
func errorText(err error) string {
	var e *deadbolt.Error
	if errors.As(err, &e) && e.Code != deadbolt.EInternal {
		if e.Field != "" && !strings.Contains(strings.ToLower(e.Message), strings.ReplaceAll(e.Field, "_", " ")) {
			return e.Field + ": " + e.Message
		}
		return e.Message
	}
	var re *password.RuleError
	if errors.As(err, &re) {
		return "the " + re.Error() + "."
	}
	return err.Error()
}

// userJSON is how commands print a user: never with its password hash.
type userJSON struct {
	ID         string    `json:"id"`
	AccountID  string    `json:"account_id"`
	Email      string    `json:"email"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	AuthSource string    `json:"auth_source"`
	CreatedAt  time.Time `json:"created_at"`
}

func toUserJSON(u *deadbolt.User) userJSON {
	return userJSON{ID: u.ID, AccountID: u.AccountID, Email: u.Email, Name: u.Name, Role: string(u.Role),
		AuthSource: string(u.AuthSource), CreatedAt: u.CreatedAt}
}

// printJSON prints v as one line of JSON.
func printJSON(e *env, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

func cmdAccountCreate(ctx context.Context, e *env, args []string) error {
	fs, load := newFlags(e, "account create")
	slug := fs.String("slug", "", "the account's slug, used in URLs (required)")
	name := fs.String("name", "", "the account's name (required)")
	ownerEmail := fs.String("owner-email", "", "the owner's email (required)")
	ownerName := fs.String("owner-name", "", "the owner's name (default: the email's local part)")
	pwStdin := fs.Bool("password-stdin", false, "read the owner's password from the first line of standard input (required)")
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if !*pwStdin {
		return usageError{errors.New("account create: --password-stdin is required: the owner needs a password to sign in")}
	}
	// Check everything that needs no database before touching it.
	acc := &deadbolt.Account{Slug: *slug, Name: *name, Policy: deadbolt.DefaultPolicy()}
	if err := acc.Validate(); err != nil {
		return err
	}
	if *ownerName == "" {
		*ownerName, _, _ = strings.Cut(*ownerEmail, "@")
	}
	owner := &deadbolt.User{Email: *ownerEmail, Name: *ownerName, Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
	if err := owner.Validate(); err != nil {
		return err
	}
	pw, err := readPassword(e.stdin)
	if err != nil {
		return err
	}
	if err := password.CheckWithContext(pw, minPasswordLen(&acc.Policy, owner.Role), owner.Email, acc.Name, acc.Slug); err != nil {
		return err
	}

	log := newLogger(cfg, e.stderr)
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if owner.PasswordHash, err = a.hasher.Hash(pw); err != nil {
		return err
	}
	if err := a.db.CreateAccount(ctx, acc, owner); err != nil {
		return err
	}
	audit(ctx, a, &deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditAccountCreated, SubjectID: owner.ID,
		Details: map[string]string{"via": "cli", "slug": acc.Slug}})
	audit(ctx, a, &deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditUserCreated, SubjectID: owner.ID,
		Details: map[string]string{"via": "cli", "role": string(owner.Role)}})
	return printJSON(e, map[string]any{
		"id": acc.ID, "slug": acc.Slug, "name": acc.Name, "created_at": acc.CreatedAt, "owner": toUserJSON(owner),
	})
}

// minPasswordLen is the shortest password allowed for the role under the
// policy: 8 where a second factor is required, 15 otherwise.
func minPasswordLen(p *deadbolt.Policy, r deadbolt.Role) int {
	if p.Requires2FA(r) {
		return password.MinLengthWith2FA
	}
	return password.MinLength
}

func cmdUserCreate(ctx context.Context, e *env, args []string) error {
	fs, load := newFlags(e, "user create")
	slug := fs.String("account", "", "the account's slug (required)")
	email := fs.String("email", "", "the user's email (required)")
	name := fs.String("name", "", "the user's name (required)")
	role := fs.String("role", "", "owner, admin, agent or end_user (required)")
	sso := fs.Bool("sso", false, "the user signs in through SSO (no password, no 2FA here)")
	pwStdin := fs.Bool("password-stdin", false, "read the user's password from the first line of standard input")
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if *slug == "" {
		return usageError{errors.New("user create: --account is required")}
	}
	u := &deadbolt.User{Email: *email, Name: *name, Role: deadbolt.Role(*role), AuthSource: deadbolt.AuthPassword}
	if *sso {
		u.AuthSource = deadbolt.AuthSSO
		if *pwStdin {
			return usageError{errors.New("user create: an SSO user has no password: drop --password-stdin or --sso")}
		}
	}
	if err := u.Validate(); err != nil {
		return err
	}
	var pw string
	if *pwStdin {
		if pw, err = readPassword(e.stdin); err != nil {
			return err
		}
		// Checked against the length rule once the policy is known; an empty
		// one is wrong whatever the policy.
		if pw == "" {
			return errors.New("the password is empty")
		}
	}

	log := newLogger(cfg, e.stderr)
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	acc, err := a.db.FindAccountBySlug(ctx, *slug)
	if err != nil {
		return err
	}
	u.AccountID = acc.ID
	if *pwStdin {
		if err := password.CheckWithContext(pw, minPasswordLen(&acc.Policy, u.Role), u.Email, acc.Name, acc.Slug); err != nil {
			return err
		}
		if u.PasswordHash, err = a.hasher.Hash(pw); err != nil {
			return err
		}
	}
	if err := a.db.CreateUser(ctx, u); err != nil {
		return err
	}
	audit(ctx, a, &deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditUserCreated, SubjectID: u.ID,
		Details: map[string]string{"via": "cli", "role": string(u.Role), "auth_source": string(u.AuthSource)}})
	return printJSON(e, toUserJSON(u))
}

// audit records an event; a failure to audit is logged, not fatal, since
// the action itself has already happened.
func audit(ctx context.Context, a *app, ev *deadbolt.AuditEvent) {
	if err := a.db.RecordEvent(ctx, ev); err != nil {
		a.log.Error("audit event not recorded", "type", ev.Type, "err", err)
	}
}
