package storetest

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
)

// quiet is the logger of test stores: migrations of every test would
// otherwise drown the output.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// OpenSQLite opens a migrated SQLite store in a temporary directory.
func OpenSQLite(tb testing.TB, sealer store.Sealer) *store.DB { return OpenSQLiteAt(tb, sealer, nil) }

// OpenSQLiteAt is OpenSQLite with the store's clock (nil: time.Now), so
// that the times the store sets agree with a test's injected time.
func OpenSQLiteAt(tb testing.TB, sealer store.Sealer, now func() time.Time) *store.DB {
	return OpenSQLiteWith(tb, store.Options{Sealer: sealer, Now: now})
}

// OpenSQLiteWith is OpenSQLite with the store's options (a quiet logger
// when none is given).
func OpenSQLiteWith(tb testing.TB, opts store.Options) *store.DB {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	db, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "deadbolt.db"), opts)
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
	return OpenPostgresAt(tb, sealer, nil)
}

// OpenPostgresAt is OpenPostgres with the store's clock (nil: time.Now).
func OpenPostgresAt(tb testing.TB, sealer store.Sealer, now func() time.Time) *store.DB {
	return OpenPostgresWith(tb, store.Options{Sealer: sealer, Now: now})
}

// OpenPostgresWith is OpenPostgres with the store's options (a quiet
// logger when none is given).
func OpenPostgresWith(tb testing.TB, opts store.Options) *store.DB {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
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
	db, err := store.Open(ctx, WithSearchPath(url, schema), opts)
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
	Name   string
	Open   func(testing.TB, store.Sealer) *store.DB
	OpenAt func(testing.TB, store.Sealer, func() time.Time) *store.DB
}{{"sqlite", OpenSQLite, OpenSQLiteAt}, {"postgres", OpenPostgres, OpenPostgresAt}}
