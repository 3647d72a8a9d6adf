package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestOIDCCommandsSQLite(t *testing.T)   { testOIDCCommands(t, sqliteEnv(t)) }
func TestOIDCCommandsPostgres(t *testing.T) { testOIDCCommands(t, postgresEnv(t)) }

func testOIDCCommands(t *testing.T, environ map[string]string) {
	ctx := context.Background()
	if code, _, errOut := cli(t, environ, goodPassword, "account", "create", "--slug", "acme", "--name", "Acme",
		"--owner-email", "owner@acme.example", "--password-stdin"); code != 0 {
		t.Fatalf("account create: %s", errOut)
	}
	code, out, errOut := cli(t, environ, "", "oidc", "client", "create", "--account", "acme", "--name", "Grafana",
		"--redirect-uri", "https://grafana.example.com/login/generic_oauth", "--scopes", "openid email profile offline_access")
	var created map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil {
		t.Fatalf("client create = %d %s %s", code, out, errOut)
	}
	id, _ := created["client_id"].(string)
	if sec, _ := created["client_secret"].(string); !strings.HasPrefix(id, "dbo_") || !strings.HasPrefix(sec, "dbcs_") ||
		!strings.HasSuffix(created["issuer"].(string), "/accounts/acme") {
		t.Errorf("client create printed %s", out)
	}
	if code, out, _ := cli(t, environ, "", "oidc", "client", "create", "--account", "acme", "--name", "SPA", "--public",
		"--redirect-uri", "http://localhost:5173/cb"); code != 0 || strings.Contains(out, "client_secret") {
		t.Errorf("public client create = %d %s, want no secret", code, out)
	}
	for _, bad := range [][]string{
		{"oidc", "client", "create", "--account", "acme", "--name", "X", "--redirect-uri", "http://evil.example/cb"},
		{"oidc", "client", "create", "--account", "acme", "--name", "X"},
		{"oidc", "client", "create", "--account", "nobody", "--name", "X", "--redirect-uri", "https://a.example/cb"},
		{"oidc", "rotate-keys", "--account", "acme", "--alg", "none"},
	} {
		if code, _, errOut := cli(t, environ, "", bad...); code != 1 || errOut == "" {
			t.Errorf("%v = %d %q, want 1 and a message", bad, code, errOut)
		}
	}
	for _, bad := range [][]string{{"oidc", "client"}, {"oidc", "client", "frob"}, {"oidc", "rotate-keys"}, {"oidc", "client", "delete", "--account", "acme"}} {
		if code, _, _ := cli(t, environ, "", bad...); code != 2 {
			t.Errorf("%v = %d, want 2 (usage)", bad, code)
		}
	}
	if code, out, _ := cli(t, environ, "", "oidc", "client", "list", "--account", "acme"); code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, id) {
		t.Errorf("client list = %d %s, want two lines", code, out)
	}
	code, out, errOut = cli(t, environ, "", "oidc", "rotate-keys", "--account", "acme", "--alg", "ES256")
	if code != 0 || !strings.Contains(out, `"alg":"ES256"`) {
		t.Fatalf("rotate-keys = %d %s %s", code, out, errOut)
	}
	if code, _, _ := cli(t, environ, "", "oidc", "rotate-keys", "--account", "acme"); code != 0 {
		t.Errorf("a second rotation = %d", code)
	}
	db := openStore(t, environ)
	acc, _ := db.FindAccountBySlug(ctx, "acme")
	keys, err := db.FindOIDCKeys(ctx, acc.ID, acc.CreatedAt.AddDate(-1, 0, 0))
	if err != nil || len(keys) != 2 || keys[0].Alg != "RS256" || !keys[0].RetiredAt.IsZero() || keys[1].RetiredAt.IsZero() {
		t.Errorf("keys after two rotations = %d %v: want the RS256 one current and the ES256 one retired", len(keys), err)
	}
	if code, _, _ := cli(t, environ, "", "oidc", "client", "delete", "--account", "acme", "--id", id); code != 0 {
		t.Errorf("client delete = %d", code)
	}
	if code, _, _ := cli(t, environ, "", "oidc", "client", "delete", "--account", "acme", "--id", id); code != 1 {
		t.Errorf("deleting again = %d, want 1", code)
	}
}
