package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

const goodPassword = "plum orchard under winter light"

// cli runs the command line with the environment and returns the exit
// status and what it printed.
func cli(t *testing.T, environ map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(k string) string { return environ[k] })
	return code, out.String(), errb.String()
}

// sqliteEnv is the environment of a fresh SQLite deployment in a temporary
// directory.
func sqliteEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	return map[string]string{"DEADBOLT_DB": filepath.Join(dir, "deadbolt.db"), "DEADBOLT_PASSWORD_HASH": "argon2id:m=64,t=1,p=1"}
}

// postgresEnv is the environment of a fresh PostgreSQL deployment, in a
// schema of its own, with a key file.
func postgresEnv(t *testing.T) map[string]string {
	url := storetest.PostgresURL(t)
	schema := "cli_" + strings.ToLower(secret.NewToken(""))
	db, err := store.Open(context.Background(), url, store.Options{Sealer: mustKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.SQL().Exec("DROP SCHEMA " + schema + " CASCADE"); db.Close() })
	keyFile := filepath.Join(t.TempDir(), "deadbolt.key")
	if _, err := secret.CreateFile(keyFile); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"DEADBOLT_DB": storetest.WithSearchPath(url, schema), "DEADBOLT_KEY_FILE": keyFile,
		"DEADBOLT_PASSWORD_HASH": "argon2id:m=64,t=1,p=1"}
}

func mustKeys(t *testing.T) *secret.Keyring {
	k, err := secret.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openStore opens the deployment's database as the commands do.
func openStore(t *testing.T, environ map[string]string) *store.DB {
	t.Helper()
	keyFile := environ["DEADBOLT_KEY_FILE"]
	if keyFile == "" {
		keyFile = filepath.Join(filepath.Dir(environ["DEADBOLT_DB"]), "deadbolt.key")
	}
	keys, err := secret.LoadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), environ["DEADBOLT_DB"], store.Options{Sealer: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestCreateCommandsSQLite(t *testing.T)   { testCreateCommands(t, sqliteEnv(t)) }
func TestCreateCommandsPostgres(t *testing.T) { testCreateCommands(t, postgresEnv(t)) }

func testCreateCommands(t *testing.T, environ map[string]string) {
	code, _, _ := cli(t, environ, goodPassword+"\n", "account create", "--slug", "acme", "--name", "Acme Help",
		"--owner-email", "Owner@Acme.example", "--password-stdin")
	// "account create" as one argument is not the command: it must be two.
	if code != 2 {
		t.Errorf("run(\"account create\" as one word) = %d, want 2 (usage)", code)
	}
	code, out, errOut := cli(t, environ, goodPassword+"\r\n", "account", "create", "--slug", "acme", "--name", "Acme Help",
		"--owner-email", "Owner@Acme.example", "--password-stdin")
	if code != 0 {
		t.Fatalf("account create = %d, stderr %q", code, errOut)
	}
	var acc struct {
		ID, Slug, Name string
		Owner          struct{ ID, Email, Role, AccountID string }
	}
	if err := json.Unmarshal([]byte(out), &acc); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("account create printed %q, want one JSON line (%v)", out, err)
	}
	if acc.ID == "" || acc.Slug != "acme" || acc.Owner.Email != "owner@acme.example" || acc.Owner.Role != "owner" {
		t.Errorf("account create printed %+v", acc)
	}
	if strings.Contains(out, "argon2") || strings.Contains(out, goodPassword) {
		t.Errorf("account create printed the password or its hash: %q", out)
	}

	code, out, errOut = cli(t, environ, goodPassword+"x\n", "user", "create", "--account", "acme", "--email", "agent@acme.example",
		"--name", "Agent Ann", "--role", "agent", "--password-stdin")
	if code != 0 {
		t.Fatalf("user create = %d, stderr %q", code, errOut)
	}
	var u struct{ ID, Email, Role, AuthSource string }
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.ID == "" || u.Role != "agent" {
		t.Errorf("user create printed %q", out)
	}
	code, out, errOut = cli(t, environ, "", "user", "create", "--account", "acme", "--email", "sso@acme.example",
		"--name", "Sam SSO", "--role", "admin", "--sso")
	if code != 0 || !strings.Contains(out, `"auth_source":"sso"`) {
		t.Fatalf("user create --sso = %d, %q, stderr %q", code, out, errOut)
	}

	// The owner's password works with the stored hash.
	db := openStore(t, environ)
	ctx := context.Background()
	a, err := db.FindAccountBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := db.FindUserByEmail(ctx, a.ID, "owner@acme.example")
	if err != nil || owner.PasswordHash == "" || !strings.HasPrefix(owner.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("owner = %+v, %v; want a password hash with the configured parameters", owner, err)
	}
	events, _ := db.FindEvents(ctx, a.ID, deadbolt.AuditFilter{Type: deadbolt.AuditUserCreated})
	if len(events) != 3 {
		t.Errorf("user.created events = %d, want 3", len(events))
	}

	// Bad input: a one-line error, a non-zero status, and nothing changed.
	before := snapshot(t, db, a.ID)
	bad := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"existing slug", goodPassword, []string{"account", "create", "--slug", "acme", "--name", "Other", "--owner-email", "x@other.example", "--password-stdin"}, "already exists"},
		{"malformed slug", goodPassword, []string{"account", "create", "--slug", "Not A Slug", "--name", "Other", "--owner-email", "x@other.example", "--password-stdin"}, "slug"},
		{"malformed owner email", goodPassword, []string{"account", "create", "--slug", "other", "--name", "Other", "--owner-email", "not-an-email", "--password-stdin"}, "email"},
		{"empty owner password", "\n", []string{"account", "create", "--slug", "other", "--name", "Other", "--owner-email", "x@other.example", "--password-stdin"}, "password"},
		{"short owner password", "short\n", []string{"account", "create", "--slug", "other", "--name", "Other", "--owner-email", "x@other.example", "--password-stdin"}, "at least 15"},
		{"no password-stdin", "", []string{"account", "create", "--slug", "other", "--name", "Other", "--owner-email", "x@other.example"}, "--password-stdin"},
		{"missing name", goodPassword, []string{"account", "create", "--slug", "other", "--owner-email", "x@other.example", "--password-stdin"}, "name"},
		{"malformed email", "", []string{"user", "create", "--account", "acme", "--email", "bad@", "--name", "B", "--role", "agent"}, "email"},
		{"unknown role", "", []string{"user", "create", "--account", "acme", "--email", "b@acme.example", "--name", "B", "--role", "king"}, "role"},
		{"empty password", "\n", []string{"user", "create", "--account", "acme", "--email", "b@acme.example", "--name", "B", "--role", "agent", "--password-stdin"}, "empty"},
		{"empty stdin", "", []string{"user", "create", "--account", "acme", "--email", "b@acme.example", "--name", "B", "--role", "agent", "--password-stdin"}, "empty"},
		{"common password", "passwordpassword\n", []string{"user", "create", "--account", "acme", "--email", "b@acme.example", "--name", "B", "--role", "agent", "--password-stdin"}, "common"},
		{"existing email", "", []string{"user", "create", "--account", "acme", "--email", "AGENT@acme.example", "--name", "B", "--role", "agent"}, "already exists"},
		{"unknown account", "", []string{"user", "create", "--account", "nope", "--email", "b@acme.example", "--name", "B", "--role", "agent"}, "not found"},
		{"sso with password", goodPassword, []string{"user", "create", "--account", "acme", "--email", "b@acme.example", "--name", "B", "--role", "agent", "--sso", "--password-stdin"}, "SSO"},
		{"unknown flag", "", []string{"user", "create", "--account", "acme", "--bogus"}, "bogus"},
		{"stray argument", "", []string{"user", "create", "--account", "acme", "extra"}, "extra"},
		{"bad password-hash", goodPassword, []string{"account", "create", "--slug", "other", "--name", "Other", "--owner-email", "x@other.example", "--password-stdin", "--password-hash", "md5"}, "password-hash"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, environ, tt.stdin, tt.args...)
			if code == 0 {
				t.Errorf("exit status 0, want non-zero; stdout %q", out)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tt.want) || !strings.HasPrefix(last, "deadbolt: ") && !strings.Contains(errOut, "flag provided") {
				t.Errorf("stderr = %q, want a line containing %q", errOut, tt.want)
			}
			if strings.Contains(errOut, goodPassword) {
				t.Errorf("stderr shows the password: %q", errOut)
			}
		})
	}
	if after := snapshot(t, db, a.ID); after != before {
		t.Errorf("bad input changed the database:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := db.FindAccountBySlug(ctx, "other"); !deadbolt.IsCode(err, deadbolt.EAccountNotFound) {
		t.Errorf("account 'other' exists after failed creates: %v", err)
	}
}

// snapshot summarises what the commands can change.
func snapshot(t *testing.T, db *store.DB, accountID string) string {
	t.Helper()
	var accounts, users, events int
	db.SQL().QueryRow("SELECT COUNT(*) FROM accounts").Scan(&accounts)
	db.SQL().QueryRow("SELECT COUNT(*) FROM users").Scan(&users)
	db.SQL().QueryRow("SELECT COUNT(*) FROM audit_events").Scan(&events)
	return fmt.Sprintf("accounts=%d users=%d events=%d", accounts, users, events)
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := cli(t, nil, "", "version"); code != 0 || !strings.HasPrefix(out, "deadbolt ") {
		t.Errorf("version = %d, %q", code, out)
	}
	if code, _, errOut := cli(t, nil, ""); code != 2 || !strings.Contains(errOut, "Usage") {
		t.Errorf("no command = %d, %q; want 2 and the usage", code, errOut)
	}
	if code, _, errOut := cli(t, nil, "", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command = %d, %q", code, errOut)
	}
}

func TestPostgresNeedsKeyFile(t *testing.T) {
	environ := map[string]string{"DEADBOLT_DB": "postgres://postgres@127.0.0.1:1/none"}
	code, _, errOut := cli(t, environ, "", "migrate")
	if code == 0 || !strings.Contains(errOut, "--key-file") {
		t.Errorf("migrate on PostgreSQL without a key file = %d, %q; want an error naming --key-file", code, errOut)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "deadbolt.conf")
	os.WriteFile(file, []byte("# comment\nDEADBOLT_ADDR=127.0.0.1:7000\nDEADBOLT_SMTP_FROM=\"file@example.com\"\nDEADBOLT_LOG_LEVEL=warn\n"), 0o600)
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
		want    Config
	}{
		{"defaults", nil, nil, Config{Addr: "127.0.0.1:8080", SMTPFrom: "deadbolt@localhost", LogLevel: "info", PublicURL: "http://127.0.0.1:8080"}},
		{"file", nil, []string{"--config", file}, Config{Addr: "127.0.0.1:7000", SMTPFrom: "file@example.com", LogLevel: "warn", PublicURL: "http://127.0.0.1:7000"}},
		{"env over file", map[string]string{"DEADBOLT_ADDR": "127.0.0.1:7001", "DEADBOLT_CONFIG": file}, nil,
			Config{Addr: "127.0.0.1:7001", SMTPFrom: "file@example.com", LogLevel: "warn", PublicURL: "http://127.0.0.1:7001"}},
		{"flag over env", map[string]string{"DEADBOLT_ADDR": "127.0.0.1:7001"}, []string{"--addr", "127.0.0.1:7002", "--public-url", "https://login.example.com/"},
			Config{Addr: "127.0.0.1:7002", SMTPFrom: "deadbolt@localhost", LogLevel: "info", PublicURL: "https://login.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, load := newFlags(&env{stderr: io.Discard, getenv: func(k string) string { return tt.environ[k] }}, "test")
			cfg, err := parse(fs, load, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			got := Config{Addr: cfg.Addr, SMTPFrom: cfg.SMTPFrom, LogLevel: cfg.LogLevel, PublicURL: cfg.PublicURL}
			if got != tt.want {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, args := range [][]string{
		{"--smtp-url", "http://mail.example.com"},
		{"--smtp-url", "smtp://"},
		{"--sms-webhook-url", "ftp://sms.example.com"},
		{"--twilio-account-sid", "AC1"},
		{"--twilio-account-sid", "AC1", "--twilio-auth-token", "t", "--twilio-from", "+1202555", "--sms-webhook-url", "https://sms.example.com"},
		{"--log-format", "xml"},
		{"--log-level", "loud"},
	} {
		fs, load := newFlags(&env{stderr: io.Discard, getenv: func(string) string { return "" }}, "test")
		if _, err := parse(fs, load, args); err == nil {
			t.Errorf("parse(%q) = nil error, want one", args)
		}
	}
	fs, load := newFlags(&env{stderr: io.Discard, getenv: func(string) string { return "" }}, "test")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("DEADBOLT_NOPE=1\n"), 0o600)
	if _, err := parse(fs, load, []string{"--config", bad}); err == nil || !strings.Contains(err.Error(), "bad.conf:1") {
		t.Errorf("unknown setting in config file: err = %v, want one naming the line", err)
	}
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeSQLite(t *testing.T)   { testServe(t, sqliteEnv(t)) }
func TestServePostgres(t *testing.T) { testServe(t, postgresEnv(t)) }

// testServe starts the service, checks the operator's endpoints, creates an
// account and a user through the CLI while it serves from the same
// database, and stops it as SIGTERM would.
func testServe(t *testing.T, environ map[string]string) {
	environ["DEADBOLT_ADDR"] = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, strings.NewReader(""), io.Discard, &logs, func(k string) string { return environ[k] })
	}()
	base := "http://" + environ["DEADBOLT_ADDR"]
	waitReady(t, base+"/readyz", done, &logs)

	for _, tt := range []struct {
		path, want string
		status     int
	}{
		{"/healthz", `"status":"ok"`, 200},
		{"/readyz", `"database":"ok"`, 200},
		{"/metrics", "deadbolt_http_requests_total", 200},
		{"/api/v1/nowhere", `"code":"not_found"`, 404},
		{"/readyz", `"delivery":{`, 200},
		{"/dev/outbox", "Not for production", 200},
	} {
		res, err := http.Get(base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Errorf("GET %s = %d %q, want %d and %q", tt.path, res.StatusCode, body, tt.status, tt.want)
		}
	}
	if code, _, errOut := cli(t, environ, goodPassword, "account", "create", "--slug", "live", "--name", "Live",
		"--owner-email", "o@live.example", "--password-stdin"); code != 0 {
		t.Errorf("account create while serving = %d, %q", code, errOut)
	}
	if code, _, errOut := cli(t, environ, "", "user", "create", "--account", "live", "--email", "a@live.example",
		"--name", "A", "--role", "agent"); code != 0 {
		t.Errorf("user create while serving = %d, %q", code, errOut)
	}
	if res, err := http.Get(base + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Errorf("readyz after the CLI wrote = %v, %v", res, err)
	}
	// A sign-in through the running service: the agent's first sign-in
	// needs 2-step verification, whose email lands in the development
	// outbox (no SMTP is configured) and its page.
	res, err := http.Post(base+"/api/v1/accounts/live/signin", "application/json",
		strings.NewReader(`{"email": "o@live.example", "password": "`+goodPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "device_verification_required") {
		t.Fatalf("sign in = %d %s", res.StatusCode, body)
	}
	found := false
	for range 200 {
		page, err := http.Get(base + "/dev/outbox")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if strings.Contains(string(b), "o@live.example") {
			found = true
			break
		}
		time.Sleep(10 * time.Millisecond) // the worker runs beside the request
	}
	if !found {
		t.Errorf("the 2-step verification email did not reach the development outbox page")
	}
	if !strings.Contains(logs.String(), "DEVELOPMENT OUTBOX") {
		t.Errorf("the log does not mark the development outbox")
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after shutdown; logs:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20 s of the signal")
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("logs do not say the service stopped:\n%s", logs.String())
	}
}

func waitReady(t *testing.T, url string, done chan int, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d; logs:\n%s", code, logs.String())
		default:
		}
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 20 s; logs:\n%s", url, logs.String())
}
