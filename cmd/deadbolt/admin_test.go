package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func TestAdminCommandsSQLite(t *testing.T)   { testAdminCommands(t, sqliteEnv(t)) }
func TestAdminCommandsPostgres(t *testing.T) { testAdminCommands(t, postgresEnv(t)) }

func testAdminCommands(t *testing.T, environ map[string]string) {
	ctx := context.Background()
	if code, _, errOut := cli(t, environ, goodPassword, "account", "create", "--slug", "acme", "--name", "Acme",
		"--owner-email", "owner@acme.example", "--password-stdin"); code != 0 {
		t.Fatalf("account create: %s", errOut)
	}
	for _, u := range []struct{ email, role string }{{"ann@acme.example", "agent"}, {"=evil@acme.example", "agent"}, {"end@acme.example", "end_user"}} {
		if code, _, errOut := cli(t, environ, "", "user", "create", "--account", "acme", "--email", u.email, "--name", "N, \"Q\"", "--role", u.role); code != 0 {
			t.Fatalf("user create %s: %s", u.email, errOut)
		}
	}
	db := openStore(t, environ)
	acc, _ := db.FindAccountBySlug(ctx, "acme")
	ann, _ := db.FindUserByEmail(ctx, acc.ID, "ann@acme.example")
	f := &deadbolt.Factor{AccountID: acc.ID, UserID: ann.ID, Kind: deadbolt.FactorTOTP, Secret: []byte("12345678901234567890")}
	if err := db.CreateFactor(ctx, f); err != nil {
		t.Fatal(err)
	}
	db.ActivateFactor(ctx, acc.ID, f.ID, time.Now())
	db.CreateSession(ctx, &deadbolt.Session{AccountID: acc.ID, UserID: ann.ID, TokenHash: []byte("s"), IdleTimeout: time.Hour, ExpiresAt: time.Now().Add(time.Hour)})

	// The report: a header row and one row per team member, quoted right.
	code, out, errOut := cli(t, environ, "", "report", "two-factor", "--account", "acme")
	if code != 0 {
		t.Fatalf("report = %d %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v\n%s", err, out)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != "name,email,role,auth_source,two_factor,required,grace_deadline,methods,default_method,last_second_factor_at,recovery_codes_left,remembered_devices,last_admin_action_at" {
		t.Fatalf("report rows = %q, want a header and owner, ann, =evil", rows)
	}
	byEmail := map[string][]string{}
	for _, r := range rows[1:] {
		byEmail[r[1]] = r
	}
	if r := byEmail["ann@acme.example"]; r == nil || r[0] != `N, "Q"` || r[4] != "enabled" || r[7] != "totp (strong)" {
		t.Errorf("ann's row = %q", r)
	}
	if byEmail["'=evil@acme.example"] == nil {
		t.Errorf("a cell starting with = was not defused: %q", rows)
	}
	if code, out, _ := cli(t, environ, "", "report", "two-factor", "--account", "acme", "--format", "json", "--all"); code != 0 || strings.Count(out, "\n") != 4 {
		t.Errorf("report --format json --all = %d, %d lines; want 4 users", code, strings.Count(out, "\n"))
	}

	// Reset ann's 2FA: factors and sessions go, she is emailed.
	if code, _, errOut := cli(t, environ, "", "user", "reset-2fa", "--account", "acme", "--email", "ANN@acme.example"); code != 0 {
		t.Fatalf("reset-2fa = %d %s", code, errOut)
	}
	if fs, _ := db.FindFactors(ctx, acc.ID, ann.ID); len(fs) != 0 {
		t.Errorf("factors after reset-2fa = %d", len(fs))
	}
	if ss, _ := db.FindSessions(ctx, acc.ID, ann.ID); len(ss) != 0 {
		t.Errorf("sessions after reset-2fa = %d", len(ss))
	}
	if st, _ := db.MessageStats(ctx, time.Time{}); st.Queued != 1 {
		t.Errorf("queued notices after reset-2fa = %d, want 1 (for the running service to deliver)", st.Queued)
	}
	for _, args := range [][]string{
		{"user", "reset-2fa", "--account", "acme", "--email", "nobody@acme.example"},
		{"user", "reset-2fa", "--account", "nope", "--email", "ann@acme.example"},
		{"user", "reset-2fa", "--account", "acme"},
		{"report", "two-factor", "--account", "acme", "--format", "xml"},
		{"report", "two-factor"},
		{"audit", "--account", "acme", "--since", "yesterday"},
		{"audit", "--account", "acme", "--limit", "0"},
	} {
		if code, _, errOut := cli(t, environ, "", args...); code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
			t.Errorf("%q = %d %q, want a short error and a non-zero status", args, code, errOut)
		}
	}

	// The audit log has it all, newest first.
	code, out, errOut = cli(t, environ, "", "audit", "--account", "acme", "--user", "ann@acme.example")
	if code != 0 {
		t.Fatalf("audit = %d %s", code, errOut)
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct{ Type string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		types = append(types, ev.Type)
	}
	// Newest first: the notice of the reset, the reset, ..., her creation.
	if len(types) < 3 || types[0] != deadbolt.AuditMessageQueued || types[1] != deadbolt.AuditTwoFactorReset || types[len(types)-1] != deadbolt.AuditUserCreated {
		t.Errorf("ann's audit events = %v, want the reset's notice, the reset, and her creation last", types)
	}
	if code, out, _ := cli(t, environ, "", "audit", "--account", "acme", "--type", "report.exported", "--limit", "1"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("audit --type report.exported --limit 1 = %d %q", code, out)
	}
}
