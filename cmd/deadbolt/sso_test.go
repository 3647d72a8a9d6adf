package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"

	"github.com/deadbolt/deadbolt/internal/store"
)

// The sso provider commands, against identity providers that were not
// written here: zitadel/oidc's example OpenID Connect server and
// crewjam/saml's samlidp, both on loopback.

// idpUsers is the example OP's user store.
type idpUsers map[string]*storage.User

func (u idpUsers) GetUserByID(id string) *storage.User { return u[id] }
func (u idpUsers) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u idpUsers) ExampleClientID() string { return "" }

// newOIDCIdP starts the example OP and returns its issuer.
func newOIDCIdP(t *testing.T) string {
	t.Helper()
	users := idpUsers{"ua": {ID: "ua", Username: "ann@acme.example", Password: "verysecure", FirstName: "Ann", LastName: "A",
		Email: "ann@acme.example", EmailVerified: true, PreferredLanguage: language.English}}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	h = exampleop.SetupServer(srv.URL, storage.NewStorage(users), nil, false)
	return srv.URL
}

// newSAMLIdP starts a SAML IdP and returns its URL (its metadata is at
// /metadata).
func newSAMLIdP(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{},
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	h = idp
	return srv.URL
}

// ssoCount is how many identity providers there are, of any account.
func ssoCount(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRow("SELECT COUNT(*) FROM sso_providers").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// providerFields are the provider API's fields (internal/web's
// ssoProviderJSON), by kind; create adds a note.
var providerFields = map[string][]string{
	"oidc": {"client_id", "client_secret_set", "created_at", "default_role", "domains", "id", "issuer", "jit", "kind", "name",
		"redirect_uri", "sign_in_url", "trust_mfa", "updated_at"},
	"saml": {"acs_url", "created_at", "default_role", "domains", "id", "jit", "kind", "metadata_url", "name", "sign_in_url",
		"sp_entity_id", "sp_metadata_url", "trust_mfa", "updated_at"},
}

func fieldsOf(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestSSOCommandsSQLite(t *testing.T)   { testSSOCommands(t, sqliteEnv(t)) }
func TestSSOCommandsPostgres(t *testing.T) { testSSOCommands(t, postgresEnv(t)) }

func testSSOCommands(t *testing.T, environ map[string]string) {
	ctx := context.Background()
	const public = "https://desk.example.com"
	const secret = "the client secret from the IdP's console"
	environ["DEADBOLT_PUBLIC_URL"] = public
	if code, _, errOut := cli(t, environ, goodPassword, "account", "create", "--slug", "acme", "--name", "Acme",
		"--owner-email", "owner@acme.example", "--password-stdin"); code != 0 {
		t.Fatalf("account create: %s", errOut)
	}
	issuer := newOIDCIdP(t)
	samlURL := newSAMLIdP(t)
	notOP := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notOP.Close)

	dir := t.TempDir()
	resp, err := http.Get(samlURL + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	metadata, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metadataFile, junkFile := filepath.Join(dir, "idp.xml"), filepath.Join(dir, "junk.xml")
	if err := os.WriteFile(metadataFile, metadata, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(junkFile, []byte("<html>not metadata</html>"), 0o600); err != nil {
		t.Fatal(err)
	}

	// An OpenID Connect provider: the secret from stdin, stored, never printed.
	code, out, errOut := cli(t, environ, secret+"\n", "sso", "provider", "create", "--account", "acme", "--kind", "oidc",
		"--name", "Acme Login", "--domain", "acme.example", "--domain", "@Corp.Example", "--jit", "--default-role", "agent",
		"--trust-mfa", "--issuer", issuer, "--client-id", "deadbolt-cli", "--client-secret-stdin")
	var created map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("sso provider create = %d %q %q, want one JSON line", code, out, errOut)
	}
	id, _ := created["id"].(string)
	base := public + "/accounts/acme/sso/" + id
	for _, c := range []struct {
		field string
		got   any
		want  any
	}{
		{"kind", created["kind"], "oidc"},
		{"name", created["name"], "Acme Login"},
		{"domains", fmt.Sprint(created["domains"]), "[acme.example corp.example]"},
		{"jit", created["jit"], true},
		{"default_role", created["default_role"], "agent"},
		{"trust_mfa", created["trust_mfa"], true},
		{"issuer", created["issuer"], issuer},
		{"client_id", created["client_id"], "deadbolt-cli"},
		{"client_secret_set", created["client_secret_set"], true},
		{"redirect_uri", created["redirect_uri"], base + "/callback"},
		{"sign_in_url", created["sign_in_url"], base},
		{"id has the prefix idp_", strings.HasPrefix(id, "idp_"), true},
		{"note mentions redirect_uri", strings.Contains(fmt.Sprint(created["note"]), "redirect_uri"), true},
	} {
		if c.got != c.want {
			t.Errorf("create printed %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	delete(created, "note")
	if got, want := fieldsOf(created), providerFields["oidc"]; !slices.Equal(got, want) {
		t.Errorf("create printed the fields %v, want the API's %v", got, want)
	}
	if strings.Contains(out+errOut, secret) {
		t.Errorf("create printed the client secret: %q %q", out, errOut)
	}
	db := openStore(t, environ)
	acc, err := db.FindAccountBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := db.FindSSOProvider(ctx, acc.ID, id); err != nil || p.ClientSecret != secret {
		t.Errorf("stored provider: %v, the secret read from stdin kept = %v; want it kept, without its line ending", err, err == nil && p.ClientSecret == secret)
	}
	var raw []byte
	if err := db.SQL().QueryRow("SELECT client_secret FROM sso_providers WHERE id = '" + id + "'").Scan(&raw); err != nil ||
		strings.Contains(string(raw), secret) {
		t.Errorf("the secret at rest = %q, %v; want it sealed", raw, err)
	}

	// SAML providers, from the metadata URL and from a file.
	var samlIDs []string
	for _, args := range [][]string{{"--name", "Corp SAML", "--metadata-url", samlURL + "/metadata", "--domain", "saml.example"},
		{"--name", "File SAML", "--metadata-file", metadataFile}} {
		args = append([]string{"sso", "provider", "create", "--account", "acme", "--kind", "saml"}, args...)
		code, out, errOut := cli(t, environ, "", args...)
		var p map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
			t.Fatalf("%v = %d %q %q", args, code, out, errOut)
		}
		pid, _ := p["id"].(string)
		samlIDs = append(samlIDs, pid)
		pbase := public + "/accounts/acme/sso/" + pid
		if p["sp_entity_id"] != pbase+"/metadata" || p["sp_metadata_url"] != pbase+"/metadata" || p["acs_url"] != pbase+"/acs" ||
			p["default_role"] != "end_user" || p["jit"] != false {
			t.Errorf("%v printed %s: want the SP's entity id, metadata and ACS URLs under %s, and the defaults", args, out, pbase)
		}
		delete(p, "note")
		if got, want := fieldsOf(p), providerFields["saml"]; !slices.Equal(got, want) {
			t.Errorf("%v printed the fields %v, want the API's %v", args, got, want)
		}
	}

	// Bad input: a clear message, a non-zero exit, and nothing changed.
	before, beforeSSO := snapshot(t, db, acc.ID), ssoCount(t, db)
	create := []string{"sso", "provider", "create", "--account", "acme"}
	oidcArgs := func(extra ...string) []string {
		return append(append(slices.Clone(create), "--kind", "oidc", "--name", "Other", "--issuer", issuer, "--client-id", "c"), extra...)
	}
	bad := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"unknown kind", "", append(slices.Clone(create), "--kind", "ldap", "--name", "X"), 1, "kind must be oidc or saml"},
		{"no kind", "", append(slices.Clone(create), "--name", "X", "--issuer", issuer, "--client-id", "c"), 2, "--kind is required"},
		{"no account", "", []string{"sso", "provider", "create", "--kind", "oidc", "--name", "X", "--issuer", issuer, "--client-id", "c"}, 2, "--account is required"},
		{"unknown account", "", []string{"sso", "provider", "create", "--account", "nobody", "--kind", "oidc", "--name", "X", "--issuer", issuer, "--client-id", "c"}, 1, "Account not found"},
		{"secret as a flag", "", oidcArgs("--client-secret", "hunter2-in-history"), 2, "--client-secret-stdin"},
		{"secret as a flag with =", "", oidcArgs("--client-secret=hunter2-in-history"), 2, "--client-secret-stdin"},
		{"empty secret on stdin", "\n", oidcArgs("--client-secret-stdin"), 1, "client secret on standard input is empty"},
		{"no name", "", append(slices.Clone(create), "--kind", "oidc", "--issuer", issuer, "--client-id", "c"), 1, "name"},
		{"bad domain", "", oidcArgs("--domain", "not a domain"), 1, "is not a domain name"},
		{"a domain of another provider", "", oidcArgs("--domain", "ACME.example"), 1, "another identity provider's"},
		{"owner as the default role", "", oidcArgs("--default-role", "owner"), 1, "default_role must be admin, agent or end_user"},
		{"no client id", "", append(slices.Clone(create), "--kind", "oidc", "--name", "X", "--issuer", issuer), 1, "client id"},
		{"no issuer", "", append(slices.Clone(create), "--kind", "oidc", "--name", "X", "--client-id", "c"), 1, "issuer is required"},
		{"an issuer that is not an OP", secret, append(slices.Clone(create), "--kind", "oidc", "--name", "X", "--issuer", notOP.URL,
			"--client-id", "c", "--client-secret-stdin"), 1, "could not read an OpenID Connect discovery document"},
		{"a plain-HTTP issuer elsewhere", "", append(slices.Clone(create), "--kind", "oidc", "--name", "X", "--issuer", "http://idp.example",
			"--client-id", "c"), 1, "only https"},
		{"metadata for oidc", "", oidcArgs("--metadata-url", samlURL+"/metadata"), 2, "--metadata-url is not for --kind oidc"},
		{"an issuer for saml", "", append(slices.Clone(create), "--kind", "saml", "--name", "X", "--metadata-file", metadataFile,
			"--issuer", issuer), 2, "--issuer is not for --kind saml"},
		{"a secret for saml", secret, append(slices.Clone(create), "--kind", "saml", "--name", "X", "--metadata-file", metadataFile,
			"--client-secret-stdin"), 2, "--client-secret-stdin is not for --kind saml"},
		{"saml without metadata", "", append(slices.Clone(create), "--kind", "saml", "--name", "X"), 2, "--metadata-url or --metadata-file"},
		{"saml with both metadata", "", append(slices.Clone(create), "--kind", "saml", "--name", "X", "--metadata-file", metadataFile,
			"--metadata-url", samlURL+"/metadata"), 2, "--metadata-url or --metadata-file"},
		{"no metadata file", "", append(slices.Clone(create), "--kind", "saml", "--name", "X", "--metadata-file", filepath.Join(dir, "none.xml")), 1, "--metadata-file"},
		{"not metadata", "", append(slices.Clone(create), "--kind", "saml", "--name", "X", "--metadata-file", junkFile), 1, "not SAML IdP metadata"},
		{"metadata URL not found", "", append(slices.Clone(create), "--kind", "saml", "--name", "X", "--metadata-url", notOP.URL+"/metadata"), 1, "answered 404"},
		{"stray argument", "", oidcArgs("extra"), 2, `unexpected argument "extra"`},
		{"unknown flag", "", []string{"sso", "provider", "list", "--account", "acme", "--kind", "oidc"}, 2, "flag provided but not defined: -kind"},
		{"no subcommand", "", []string{"sso", "provider"}, 2, "create, list or delete"},
		{"unknown subcommand", "", []string{"sso", "provider", "frob"}, 2, `unknown command "frob"`},
		{"sso alone", "", []string{"sso"}, 2, "unknown command"},
		{"list without account", "", []string{"sso", "provider", "list"}, 2, "--account is required"},
		{"delete without id", "", []string{"sso", "provider", "delete", "--account", "acme"}, 2, "--id is required"},
		{"delete of an unknown id", "", []string{"sso", "provider", "delete", "--account", "acme", "--id", "idp_nope"}, 1, "Identity provider not found"},
		{"delete of another account's", "", []string{"sso", "provider", "delete", "--account", "nobody", "--id", id}, 1, "Account not found"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, environ, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit status = %d, want %d; stderr %q", code, tt.code, errOut)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "deadbolt: ") && !strings.Contains(errOut, "flag provided") {
				t.Errorf("stderr = %q, want a message containing %q", errOut, tt.want)
			}
			if strings.Contains(errOut, "hunter2") || strings.Contains(errOut, secret) {
				t.Errorf("stderr shows the secret: %q", errOut)
			}
		})
	}
	if after, afterSSO := snapshot(t, db, acc.ID), ssoCount(t, db); after != before || afterSSO != beforeSSO {
		t.Errorf("bad input changed the database:\nbefore %s providers=%d\nafter  %s providers=%d", before, beforeSSO, after, afterSSO)
	}

	// list shows the three, without secrets; delete removes one.
	code, out, errOut = cli(t, environ, "", "sso", "provider", "list", "--account", "acme")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, id) || !strings.Contains(out, samlIDs[0]) || !strings.Contains(out, samlIDs[1]) {
		t.Fatalf("sso provider list = %d %q %q, want the three providers, a line each", code, out, errOut)
	}
	if strings.Contains(out, secret) || strings.Contains(out, `"client_secret"`) || strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("list printed a secret: %s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var p map[string]any
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("list line %q: %v", line, err)
		}
		if got, want := fieldsOf(p), providerFields[fmt.Sprint(p["kind"])]; !slices.Equal(got, want) {
			t.Errorf("list printed the fields %v for a %v provider, want the API's %v", got, p["kind"], want)
		}
	}
	code, out, errOut = cli(t, environ, "", "sso", "provider", "delete", "--account", "acme", "--id", id)
	if code != 0 || strings.TrimSpace(out) != `{"deleted":true,"id":"`+id+`"}` {
		t.Errorf("sso provider delete = %d %q %q", code, out, errOut)
	}
	if code, out, _ := cli(t, environ, "", "sso", "provider", "list", "--account", "acme"); code != 0 || strings.Count(out, "\n") != 2 || strings.Contains(out, id) {
		t.Errorf("list after delete = %d %q, want the two SAML providers", code, out)
	}
	if code, _, errOut := cli(t, environ, "", "sso", "provider", "delete", "--account", "acme", "--id", id); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("deleting again = %d %q, want 1 and not found", code, errOut)
	}
	// The freed domain can be another provider's now.
	if code, _, errOut := cli(t, environ, "", oidcArgs("--domain", "acme.example")...); code != 0 {
		t.Errorf("create with the deleted provider's domain = %d %q", code, errOut)
	}

	for typ, want := range map[string]int{"sso.provider_created": 4, "sso.provider_deleted": 1} {
		if code, out, errOut := cli(t, environ, "", "audit", "--account", "acme", "--type", typ); code != 0 || strings.Count(out, "\n") != want {
			t.Errorf("audit --type %s = %d %q %q, want %d events", typ, code, out, errOut, want)
		}
	}
}
