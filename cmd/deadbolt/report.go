package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
)

// service builds the sign-in service over the app's store for commands
// that act like an admin. Messages it queues are delivered by a running
// `deadbolt serve` (or the next one to start).
func (a *app) service() *signin.Service {
	return signin.New(signin.Options{Store: a.db, Keys: a.keys, Hasher: a.hasher, Logger: a.log})
}

// findUser finds the account and the user named on the command line.
func findUser(ctx context.Context, a *app, slug, email string) (*deadbolt.Account, *deadbolt.User, error) {
	acc, err := a.db.FindAccountBySlug(ctx, slug)
	if err != nil {
		return nil, nil, err
	}
	e, err := deadbolt.NormalizeEmail(email)
	if err != nil {
		return nil, nil, err
	}
	u, err := a.db.FindUserByEmail(ctx, acc.ID, e)
	if err != nil {
		return nil, nil, err
	}
	return acc, u, nil
}

func cmdResetTwoFactor(ctx context.Context, e *env, args []string) error {
	fs, load := newFlags(e, "user reset-2fa")
	slug := fs.String("account", "", "the account's slug (required)")
	email := fs.String("email", "", "the user's email (required)")
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if *slug == "" || *email == "" {
		return usageError{errors.New("user reset-2fa: --account and --email are required")}
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	acc, u, err := findUser(ctx, a, *slug, *email)
	if err != nil {
		return err
	}
	if err := a.service().ResetTwoFactorCLI(ctx, acc, u); err != nil {
		return err
	}
	return printJSON(e, map[string]any{"id": u.ID, "email": u.Email, "two_factor": "reset",
		"note": "factors, recovery codes, sessions and remembered devices removed; the user was emailed"})
}

func cmdReport(ctx context.Context, e *env, args []string) error {
	fs, load := newFlags(e, "report two-factor")
	slug := fs.String("account", "", "the account's slug (required)")
	format := fs.String("format", "csv", "csv or json (one JSON object a line)")
	all := fs.Bool("all", false, "all users, not only admins and agents")
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if *slug == "" {
		return usageError{errors.New("report two-factor: --account is required")}
	}
	if *format != "csv" && *format != "json" {
		return usageError{fmt.Errorf("report two-factor: --format must be csv or json, not %q", *format)}
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
	p := &signin.Principal{Account: acc, Via: "cli"}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		return a.service().TwoFactorReport(ctx, p, *all, "json", func(v *signin.UserView) error { return enc.Encode(v) })
	}
	w := csv.NewWriter(e.stdout)
	if err := w.Write(signin.ReportColumns); err != nil {
		return err
	}
	if err := a.service().TwoFactorReport(ctx, p, *all, "csv", func(v *signin.UserView) error { return w.Write(v.ReportRow()) }); err != nil {
		return err
	}
	w.Flush()
	return w.Error()
}

func cmdAudit(ctx context.Context, e *env, args []string) error {
	fs, load := newFlags(e, "audit")
	slug := fs.String("account", "", "the account's slug (required)")
	typ := fs.String("type", "", "only events of this type, such as signin.failed")
	user := fs.String("user", "", "only events whose actor or subject is this user (email or id)")
	since := fs.String("since", "", "only events at or after this RFC 3339 time")
	limit := fs.Int("limit", deadbolt.DefaultAuditLimit, fmt.Sprintf("at most this many events (1 to %d)", deadbolt.MaxAuditLimit))
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if *slug == "" {
		return usageError{errors.New("audit: --account is required")}
	}
	f := deadbolt.AuditFilter{Type: *typ, Limit: *limit}
	if *limit < 1 || *limit > deadbolt.MaxAuditLimit {
		return usageError{fmt.Errorf("audit: --limit must be from 1 to %d", deadbolt.MaxAuditLimit)}
	}
	if *since != "" {
		if f.Since, err = time.Parse(time.RFC3339, *since); err != nil {
			return usageError{fmt.Errorf("audit: --since must be an RFC 3339 time, such as 2026-01-02T15:04:05Z")}
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
	f.UserID = *user
	if *user != "" {
		if em, err := deadbolt.NormalizeEmail(*user); err == nil {
			if u, err := a.db.FindUserByEmail(ctx, acc.ID, em); err == nil {
				f.UserID = u.ID
			}
		}
	}
	events, err := a.db.FindEvents(ctx, acc.ID, f)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	for _, ev := range events {
		if err := enc.Encode(map[string]any{"id": ev.ID, "time": ev.Time.UTC().Format(time.RFC3339Nano), "type": ev.Type,
			"actor_id": ev.ActorID, "subject_id": ev.SubjectID, "ip": ev.IP, "user_agent": ev.UserAgent, "details": ev.Details}); err != nil {
			return err
		}
	}
	return nil
}
