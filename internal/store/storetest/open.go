package storetest

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
)

// quiet is the logger of test stores: migrations of every test would
// otherwise drown the output.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// OpenSQLite opens a migrated SQLite store in a temporary directory.
func OpenSQLite(tb testing.TB, sealer store.Sealer) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "deadbolt.db"), store.Options{Sealer: sealer, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return db
}

// OpenPostgres opens a migrated PostgreSQL store in a schema of its own,
// dropped when the test ends, so tests run in parallel without meeting. It
// skips (or fails, see PostgresURL) without DEADBOLT_TEST_POSTGRES.
func OpenPostgres(tb testing.TB, sealer store.Sealer) *store.DB {
	tb.Helper()
	url := PostgresURL(tb)
	ctx := context.Background()
	admin, err := sql.Open("pgx", url)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	schema := "t_" + strings.ToLower(secret.NewToken(""))
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		a, err := sql.Open("pgx", url)
		if err != nil {
			return
		}
		defer a.Close()
		a.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	db, err := store.Open(ctx, WithSearchPath(url, schema), store.Options{Sealer: sealer, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// WithSearchPath adds a search_path to a PostgreSQL URL.
func WithSearchPath(url, schema string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}

// Databases are the openers of both databases, by name, for tests that run
// once on each.
var Databases = []struct {
	Name string
	Open func(testing.TB, store.Sealer) *store.DB
}{{"sqlite", OpenSQLite}, {"postgres", OpenPostgres}}
