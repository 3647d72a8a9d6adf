// Package store keeps Deadbolt's state in SQLite (the embedded default) or
// PostgreSQL, behind the storage interfaces of package deadbolt.
//
// One implementation serves both databases: the SQL is written once with ?
// placeholders, and the dialect rebinds it and recognises its errors. Every
// method is one transaction (or one statement), scoped to an account.
// Security invariants that must hold across processes are written as
// conditional statements, never as a read followed by a write in Go.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations
var migrations embed.FS

// Sealer encrypts and decrypts secrets at rest. aad binds a ciphertext to
// its place (table, column, account, owner), so that a sealed value copied
// to another row does not open.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Options configure a DB.
type Options struct {
	// Sealer encrypts TOTP secrets and phone numbers. Required.
	Sealer Sealer
	// Now is the clock for the times the store sets itself; default time.Now.
	Now func() time.Time
	// Logger receives migration progress; default slog.Default().
	Logger *slog.Logger
	// Committers is how many group committers run on SQLite (see
	// batch.go): 0 for one, −1 for none (each write commits alone).
	// PostgreSQL never batches: its concurrent commits already share WAL
	// flushes, BenchmarkCompleteChallenge measured batching slower there
	// (the savepoints cost round trips; the server's CPU is the limit),
	// and two batches that lock the same hot rows (an office's per-IP
	// counter) in different orders deadlock, which PostgreSQL breaks only
	// after deadlock_timeout.
	Committers int
}

// DB is the store. It is safe for concurrent use.
type DB struct {
	db      *sql.DB // reads
	wdb     *sql.DB // writes: on SQLite one connection, on PostgreSQL db
	dialect *dialect
	sealer  Sealer
	now     func() time.Time
	log     *slog.Logger
	stmts   sync.Map // query text -> *sql.Stmt, on the pool that runs it
	// txStmts are statements prepared on the write pool for use inside
	// transactions; toPrepare are those still to prepare.
	txStmts, toPrepare sync.Map
	commits            *committer // nil: no group commit
}

// Open connects to the database named by dsn: a postgres:// or
// postgresql:// URL selects PostgreSQL, anything else is a SQLite file path
// (or a file: URI). It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if opts.Sealer == nil {
		return nil, errors.New("store: a sealer is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &DB{sealer: opts.Sealer, now: opts.Now, log: opts.Logger}
	var err error
	if IsPostgres(dsn) {
		s.dialect = postgresDialect
		if s.db, err = sql.Open("pgx", dsn); err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
		s.db.SetMaxOpenConns(16)
		s.db.SetMaxIdleConns(16)
		s.db.SetConnMaxIdleTime(5 * time.Minute)
		s.wdb = s.db
	} else {
		// SQLite has one writer at a time. Writers that share the file
		// through many connections wait for each other in SQLite's busy
		// handler, which sleeps (up to 100 ms a time): under load that made
		// the slowest writes take half a second. One write connection makes
		// them queue in Go instead, in order and without sleeping, while
		// reads go on in parallel on the others (WAL lets readers and the
		// writer work at once). Other processes on the same file still meet
		// the busy timeout, as they must.
		s.dialect = sqliteDialect
		if err := createPrivate(dsn); err != nil {
			return nil, err
		}
		if s.db, err = sql.Open("sqlite", sqliteDSN(dsn)); err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
		s.db.SetMaxOpenConns(8)
		s.db.SetMaxIdleConns(8)
		if s.wdb, err = sql.Open("sqlite", sqliteDSN(dsn)); err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
		s.wdb.SetMaxOpenConns(1)
		s.wdb.SetMaxIdleConns(1)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if n := opts.Committers; s.dialect == sqliteDialect && n >= 0 {
		s.commits = newCommitter(s, max(n, 1))
	}
	return s, nil
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// sqlitePath returns the file a SQLite DSN names, or "" for an in-memory
// or temporary database and for a URI SQLite will refuse. Every DSN reaches
// SQLite as a file: URI (see sqliteDSN), so this reads it as SQLite's URI
// parser does: the text after '#' is ignored, the query starts at '?', an
// authority must be empty or "localhost", and %HH escapes are decoded (%00
// ends the path). A path read any other way would have createPrivate make
// a stray file while SQLite creates the real one world-readable.
func sqlitePath(dsn string) string {
	dsn, _, _ = strings.Cut(dsn, "#")
	path, query, _ := strings.Cut(dsn, "?")
	path = strings.TrimPrefix(path, "file:")
	if rest, ok := strings.CutPrefix(path, "//"); ok {
		authority, _, _ := strings.Cut(rest, "/")
		if authority != "" && authority != "localhost" {
			return "" // SQLite fails to open it
		}
		path = rest[len(authority):]
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]) {
			c = unhex(path[i+1])<<4 | unhex(path[i+2])
			i += 2
			if c == 0 {
				break
			}
		}
		b.WriteByte(c)
	}
	path = b.String()
	if q, _ := url.ParseQuery(query); path == "" || path == ":memory:" || q.Get("mode") == "memory" {
		return ""
	}
	return path
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// createPrivate creates a new SQLite database file readable by its owner
// only: it holds session hashes, sealed secrets and the audit log. SQLite
// gives its -wal and -shm files the database file's permission bits, so
// they follow. An existing file keeps the mode its operator chose (see
// FileModeWarning).
func createPrivate(dsn string) error {
	path := sqlitePath(dsn)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	return f.Close()
}

// FileModeWarning returns a one-line warning when the SQLite database of
// dsn is readable or writable by group or others, naming the file, its
// mode and the fix; "" when it is private, for PostgreSQL and in-memory
// databases, and when the file does not exist. A private database whose
// -wal, -shm or -journal file is not private is warned about too: SQLite
// gives those files the database's mode only when it creates them, so one
// left over from before a chmod keeps its old mode.
func FileModeWarning(dsn string) string {
	if IsPostgres(dsn) {
		return ""
	}
	path := sqlitePath(dsn)
	if path == "" {
		return ""
	}
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	var first string
	var mode fs.FileMode
	var loose []string
	for _, f := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if first == "" {
			first, mode = f, fi.Mode().Perm()
		}
		loose = append(loose, f)
	}
	if first == "" {
		return ""
	}
	return fmt.Sprintf("the database file %s has mode %04o: others on this machine can read sessions, sealed secrets and the audit log; run chmod 600 %s",
		first, mode, strings.Join(loose, " "))
}

// sqliteDSN turns a path or file: URI into a modernc DSN with the settings
// every connection needs. _txlock=immediate takes the write lock at BEGIN:
// without it, two read-then-write transactions deadlock and one fails with
// "database is locked" instead of waiting for the busy timeout.
func sqliteDSN(dsn string) string {
	path, query, _ := strings.Cut(dsn, "?")
	q, _ := url.ParseQuery(query)
	for _, p := range []string{"journal_mode(WAL)", "foreign_keys(1)", "busy_timeout(10000)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	if !strings.HasPrefix(path, "file:") {
		path = "file:" + path
	}
	return path + "?" + q.Encode()
}

// Migrate applies the embedded migrations of the dialect. It is safe to run
// again, and from several processes at once on PostgreSQL (an advisory lock
// serialises them).
func (s *DB) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/"+s.dialect.name)
	if err != nil {
		return err
	}
	var opts []goose.ProviderOption
	gd := goose.DialectSQLite3
	if s.dialect == postgresDialect {
		gd = goose.DialectPostgres
		// Retry every second for up to five minutes: a process that waits
		// for another one to finish migrating should not wait long after it.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, s.wdb, sub, opts...)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range res {
		s.log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Dialect returns "sqlite" or "postgres".
func (s *DB) Dialect() string { return s.dialect.name }

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return err
	}
	return s.wdb.PingContext(ctx)
}

// Close closes the database.
func (s *DB) Close() error {
	if s.commits != nil {
		s.commits.close()
		s.commits = nil
	}
	for _, m := range []*sync.Map{&s.stmts, &s.txStmts} {
		m.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	}
	err := s.db.Close()
	if s.wdb != s.db {
		err = errors.Join(err, s.wdb.Close())
	}
	return err
}

// SQL returns the underlying database, for tests that must look at the raw
// rows (such as proving that secrets are not stored in plaintext).
func (s *DB) SQL() *sql.DB { return s.db }

// exec, query and queryRow run a statement, rebound for the dialect, as a
// prepared statement kept for reuse: parsing SQL was a fifth of the CPU of
// a sign-in on SQLite. In a transaction, a statement already prepared on
// the transaction's pool is bound to it (tx.StmtContext uses the
// transaction's own connection); one not prepared yet runs as it is, and is
// prepared after the transaction, because preparing it now would need a
// second connection while the transaction holds SQLite's only writer.
func (s *DB) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	if tx, ok := q.(*sql.Tx); ok {
		if st := s.txStmt(ctx, tx, query); st != nil {
			return st.ExecContext(ctx, args...)
		}
		return tx.ExecContext(ctx, s.dialect.rebind(query), args...)
	}
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *DB) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	if tx, ok := q.(*sql.Tx); ok {
		if st := s.txStmt(ctx, tx, query); st != nil {
			return st.QueryContext(ctx, args...)
		}
		return tx.QueryContext(ctx, s.dialect.rebind(query), args...)
	}
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *DB) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	if tx, ok := q.(*sql.Tx); ok {
		if st := s.txStmt(ctx, tx, query); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
		return tx.QueryRowContext(ctx, s.dialect.rebind(query), args...)
	}
	st, err := s.stmt(ctx, query)
	if err != nil {
		// A *sql.Row carrying the failure, for the caller's Scan.
		return s.pool(query).QueryRowContext(ctx, s.dialect.rebind(query), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// txStmt returns the statement bound to the transaction if it is already
// prepared on the write pool; otherwise it notes the query, to be prepared
// once the transaction is over, and returns nil.
func (s *DB) txStmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	if st, ok := s.txStmts.Load(query); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	s.toPrepare.Store(query, struct{}{})
	return nil
}

// prepareNoted prepares, on the write pool, the statements transactions
// ran unprepared; it runs with no transaction open on this goroutine.
func (s *DB) prepareNoted(ctx context.Context) {
	s.toPrepare.Range(func(k, _ any) bool {
		q := k.(string)
		s.toPrepare.Delete(q)
		if _, ok := s.txStmts.Load(q); ok {
			return true
		}
		st, err := s.wdb.PrepareContext(ctx, s.dialect.rebind(q))
		if err != nil {
			return true // it keeps running unprepared
		}
		if _, loaded := s.txStmts.LoadOrStore(q, st); loaded {
			st.Close()
		}
		return true
	})
}

// pool is where a statement runs: writes (INSERT, UPDATE, DELETE, with or
// without RETURNING) on the write pool, reads on the read pool.
func (s *DB) pool(query string) *sql.DB {
	q := strings.TrimLeft(query, " \t\n")
	if len(q) >= 6 {
		switch strings.ToUpper(q[:6]) {
		case "INSERT", "UPDATE", "DELETE":
			return s.wdb
		}
	}
	return s.db
}

func (s *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.pool(query).PrepareContext(ctx, s.dialect.rebind(query))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction and commits it if fn succeeds.
func (s *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.dialect.formatError(fmt.Errorf("store: commit: %w", err))
	}
	s.prepareNoted(ctx)
	return nil
}

// newID returns a random id: 26 lower-case base32 characters (130 bits), so
// ids reveal nothing (no count, no order) and cannot be guessed.
func newID() string { return strings.ToLower(rand.Text()) }

// clock returns the current time as the store keeps it.
func (s *DB) clock() time.Time { return normTime(s.now()) }

// normTime returns t as it comes back from the database: UTC, to the
// microsecond. Times the store sets are returned in this form.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// micros turns a time into the stored form; the zero time is NULL.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeCol scans a stored time (microseconds or NULL) into a UTC time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("store: time column holds %T", v)
	}
	return nil
}

// at wraps a *time.Time for Scan.
func at(t *time.Time) timeCol { return timeCol{t} }

// notFound turns sql.ErrNoRows into the given not-found code.
func notFound(err error, code, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return deadbolt.Errorf(code, "%s not found.", what)
	}
	return err
}

// checkOne returns a not-found error unless the statement changed a row.
func checkOne(res sql.Result, code, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return deadbolt.Errorf(code, "%s not found.", what)
	}
	return nil
}
