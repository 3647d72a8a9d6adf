package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

func mustKeyring(tb testing.TB) *secret.Keyring {
	tb.Helper()
	k, err := secret.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func openSQLite(tb testing.TB, keys *secret.Keyring) *store.DB { return storetest.OpenSQLite(tb, keys) }
func openPostgres(tb testing.TB, keys *secret.Keyring) *store.DB {
	return storetest.OpenPostgres(tb, keys)
}

func TestContractSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openSQLite(t, mustKeyring(t)) })
}

func TestContractPostgres(t *testing.T) {
	storetest.PostgresURL(t)
	storetest.Run(t, func(t *testing.T) storetest.Store { return openPostgres(t, mustKeyring(t)) })
}

// The contract holds with group commit (SQLite's default) and without.
func TestContractSQLiteAlone(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return storetest.OpenSQLiteWith(t, store.Options{Sealer: mustKeyring(t), Committers: -1})
	})
}

// TestGroupCommitBatches: writers that arrive together share commits, and
// a lone writer commits at once (SQLite; PostgreSQL does not batch).
func TestGroupCommitBatches(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func() *store.DB
	}{
		{"sqlite", func() *store.DB { return storetest.OpenSQLiteWith(t, store.Options{Sealer: mustKeyring(t)}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open()
			ctx := context.Background()
			acc := &deadbolt.Account{Slug: "gc", Name: "GC", Policy: deadbolt.DefaultPolicy()}
			if err := db.CreateAccount(ctx, acc, &deadbolt.User{Email: "o@gc.example", Name: "O", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}); err != nil {
				t.Fatal(err)
			}
			rule := deadbolt.AttemptRule{Window: time.Hour, Free: 1000, PauseAt: 1000, Pause: time.Hour}
			b0, u0 := db.GroupCommitStats()
			if _, _, err := db.ReserveAttempts(ctx, acc.ID, time.Now(), deadbolt.AttemptLimit{Key: "lone", Rule: rule}); err != nil {
				t.Fatal(err)
			}
			if b, u := db.GroupCommitStats(); b-b0 != 1 || u-u0 != 1 {
				t.Errorf("a lone writer: %d batches of %d units, want 1 of 1", b-b0, u-u0)
			}
			const n = 400
			done := make(chan error, n)
			for i := range n {
				go func() {
					_, _, err := db.ReserveAttempts(ctx, acc.ID, time.Now(), deadbolt.AttemptLimit{Key: fmt.Sprint("k", i%7), Rule: rule})
					done <- err
				}()
			}
			for range n {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			b, u := db.GroupCommitStats()
			if u-u0 != n+1 || b-b0 >= n {
				t.Errorf("%d concurrent writers: %d units in %d batches, want fewer batches than writers", n, u-u0-1, b-b0-1)
			}
			total := 0
			for k := range 7 {
				c, _ := db.PeekCounter(ctx, acc.ID, fmt.Sprint("k", k), time.Now())
				total += c.Count
			}
			if total != n {
				t.Errorf("counted %d, want %d", total, n)
			}
		})
	}
}

// TestNoPlaintextSecrets writes secrets through the store and then reads
// every column of every table raw: none may hold a secret in the clear.
func TestNoPlaintextSecrets(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB, *secret.Keyring) *store.DB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(tc.name, func(t *testing.T) {
			keys := mustKeyring(t)
			db := tc.open(t, keys)
			ctx := context.Background()
			const (
				totpSecret   = "TOTP-SECRET-0123456789"
				phone        = "+12025550143"
				factorPhone  = "+12025550199"
				recovery     = "rc7h2k9m4q"
				sessionToken = "dbs_SESSIONTOKEN0123456789AB"
				challenge    = "dbc_CHALLENGETOKEN0123456789"
				deviceToken  = "dbd_DEVICETOKEN0123456789ABC"
				passcode     = "493817"
				messageTo    = "+447911123456"
				clientSecret = "dbcs_CLIENTSECRET0123456789AB"
				refreshToken = "dbr_REFRESHTOKEN0123456789ABC"
				signingKey   = "OIDC-PRIVATE-KEY-0123456789"
				ssoSecret    = "SSO-CLIENT-SECRET-0123456789"
				spKey        = "SAML-SP-PRIVATE-KEY-0123456789"
				pkceVerifier = "PKCE-VERIFIER-0123456789ABCDEF"
			)
			a := &deadbolt.Account{Slug: "acme", Name: "Acme", Policy: deadbolt.DefaultPolicy()}
			owner := &deadbolt.User{Email: "o@acme.example", Name: "O", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword, Phone: phone}
			if err := db.CreateAccount(ctx, a, owner); err != nil {
				t.Fatal(err)
			}
			for _, f := range []*deadbolt.Factor{
				{AccountID: a.ID, UserID: owner.ID, Kind: deadbolt.FactorTOTP, Secret: []byte(totpSecret)},
				{AccountID: a.ID, UserID: owner.ID, Kind: deadbolt.FactorSMS, Phone: factorPhone},
			} {
				if err := db.CreateFactor(ctx, f); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.ReplaceRecoveryCodes(ctx, a.ID, owner.ID, [][]byte{keys.Hash(recovery)}, time.Now()); err != nil {
				t.Fatal(err)
			}
			sess := &deadbolt.Session{AccountID: a.ID, UserID: owner.ID, TokenHash: keys.Hash(sessionToken),
				IdleTimeout: time.Hour, ExpiresAt: time.Now().Add(time.Hour)}
			if err := db.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
			client := &deadbolt.OIDCClient{AccountID: a.ID, ID: "dbo_app", Name: "App", SecretHash: keys.Hash(clientSecret),
				RedirectURIs: []string{"https://app.example/cb"}}
			if err := db.CreateOIDCClient(ctx, client); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateOIDCToken(ctx, &deadbolt.OIDCToken{AccountID: a.ID, ID: "tok", ClientID: client.ID, UserID: owner.ID,
				SessionID: sess.ID, RefreshHash: keys.Hash(refreshToken), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateOIDCKey(ctx, &deadbolt.OIDCKey{AccountID: a.ID, ID: "key", Alg: "ES256", Private: []byte(signingKey)}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []*deadbolt.SSOProvider{
				{AccountID: a.ID, ID: "oidc", Kind: deadbolt.SSOOIDC, Name: "Okta", DefaultRole: deadbolt.RoleAgent,
					Issuer: "https://acme.okta.example", ClientID: "okta-client", ClientSecret: ssoSecret},
				{AccountID: a.ID, ID: "saml", Kind: deadbolt.SSOSAML, Name: "Entra", DefaultRole: deadbolt.RoleAgent,
					MetadataXML: "<EntityDescriptor/>", SPKeyPEM: spKey, SPCertPEM: "CERT"},
			} {
				if err := db.CreateSSOProvider(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.CreateSSOState(ctx, &deadbolt.SSOState{AccountID: a.ID, ID: "state", ProviderID: "oidc", Verifier: pkceVerifier,
				BrowserHash: keys.Hash("browser"), ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if p, err := db.FindSSOProvider(ctx, a.ID, "saml"); err != nil || p.SPKeyPEM != spKey {
				t.Fatalf("SP key did not round-trip: %+v, %v", p, err)
			}
			if err := db.CreateChallenge(ctx, &deadbolt.Challenge{AccountID: a.ID, UserID: owner.ID, TokenHash: keys.Hash(challenge),
				Purpose: deadbolt.ChallengeSecondFactor, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateDevice(ctx, &deadbolt.Device{AccountID: a.ID, UserID: owner.ID, TokenHash: keys.Hash(deviceToken)}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreatePasscode(ctx, &deadbolt.Passcode{AccountID: a.ID, UserID: owner.ID, Channel: deadbolt.ChannelSMS,
				CodeHash: keys.Hash(passcode), ExpiresAt: time.Now().Add(time.Minute)},
				&deadbolt.Message{Channel: deadbolt.ChannelSMS, To: messageTo, Text: "Your code is " + passcode}); err != nil {
				t.Fatal(err)
			}
			// The store gives them back...
			fs, _ := db.FindFactors(ctx, a.ID, owner.ID)
			if len(fs) != 2 || string(fs[0].Secret) != totpSecret || fs[1].Phone != factorPhone {
				t.Fatalf("factors did not round-trip: %+v", fs)
			}
			// ...but no raw byte of the database shows them.
			secrets := []string{totpSecret, phone, factorPhone, recovery, sessionToken, challenge, deviceToken,
				strings.TrimPrefix(phone, "+"), strings.TrimPrefix(sessionToken, "dbs_"),
				strings.TrimPrefix(challenge, "dbc_"), strings.TrimPrefix(deviceToken, "dbd_"), passcode, messageTo,
				strings.TrimPrefix(messageTo, "+"), clientSecret, refreshToken, signingKey, strings.TrimPrefix(clientSecret, "dbcs_"),
				strings.TrimPrefix(refreshToken, "dbr_"), ssoSecret, spKey, pkceVerifier}
			if keys, err := db.FindOIDCKeys(ctx, a.ID, time.Time{}); err != nil || len(keys) != 1 || string(keys[0].Private) != signingKey {
				t.Fatalf("signing key did not round-trip: %+v, %v", keys, err)
			}
			for _, table := range []string{"accounts", "users", "factors", "recovery_codes", "sessions", "counters", "audit_events",
				"challenges", "devices", "passcodes", "messages", "oidc_clients", "oidc_tokens", "oidc_logins", "oidc_keys", "sso_providers", "sso_states"} {
				dump := dumpTable(t, db.SQL(), table)
				for _, s := range secrets {
					if bytes.Contains(dump, []byte(s)) {
						t.Errorf("table %s holds %q in plaintext", table, s)
					}
				}
			}
			if tc.name == "sqlite" {
				raw := rawSQLiteFiles(t, db)
				for _, s := range secrets {
					if bytes.Contains(raw, []byte(s)) {
						t.Errorf("the SQLite files hold %q in plaintext", s)
					}
				}
			}
			// A sealed value moved to another row does not open there.
			if _, err := db.SQL().ExecContext(ctx, rebind(db, `UPDATE users SET phone = (SELECT phone FROM factors WHERE kind = 'sms') WHERE id = ?`), owner.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.FindUserByID(ctx, a.ID, owner.ID); err == nil {
				t.Errorf("a phone number sealed for a factor opened as the user's")
			}
			// Nor does a signing key moved to another key's row.
			if err := db.CreateOIDCKey(ctx, &deadbolt.OIDCKey{AccountID: a.ID, ID: "key2", Alg: "ES256", Private: []byte("other")}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL().ExecContext(ctx, rebind(db, `UPDATE oidc_keys SET private_key = (SELECT private_key FROM oidc_keys WHERE id = 'key') WHERE id = ?`), "key2"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.FindOIDCKeys(ctx, a.ID, time.Time{}); err == nil {
				t.Errorf("a signing key sealed for another key's row opened")
			}
		})
	}
}

func rebind(db *store.DB, q string) string {
	if db.Dialect() != "postgres" {
		return q
	}
	return strings.Replace(q, "?", "$1", 1)
}

// dumpTable returns every value of every row of the table as bytes.
func dumpTable(t *testing.T, db *sql.DB, table string) []byte {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out bytes.Buffer
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				out.Write(v)
			default:
				fmt.Fprint(&out, v)
			}
			out.WriteByte(0)
		}
	}
	return out.Bytes()
}

// rawSQLiteFiles checkpoints the WAL and returns the bytes of the database
// files as they are on disk.
func rawSQLiteFiles(t *testing.T, db *store.DB) []byte {
	t.Helper()
	var file string
	if err := db.SQL().QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, f := range []string{file, file + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}
