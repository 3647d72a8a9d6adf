package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
)

// withUmask sets the process umask for the test (one that, left alone,
// makes SQLite create its files 0644) and restores it afterwards. The umask
// is process-wide: tests using it must not run in parallel.
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	return fi.Mode().Perm()
}

// TestSQLiteFileModes opens a SQLite store through several DSN forms,
// migrates it and writes to it, and then, with the store still open (the
// last connection's close removes -wal and -shm), looks at the database
// file and its -wal and -shm files. A new database is 0600 under umask
// 022; an existing one keeps its mode, and its -wal and -shm take that
// mode too (not the umask's 0644), which is the claim that SQLite's unix
// VFS gives them the database file's permission bits.
func TestSQLiteFileModes(t *testing.T) {
	withUmask(t, 0o022)
	for _, tt := range []struct {
		name     string
		file     string                   // the database file, in the test's directory
		dsn      func(path string) string // the DSN naming it
		existing os.FileMode              // if not 0, the file exists beforehand with this mode
		want     os.FileMode
	}{
		{name: "new, plain path", file: "deadbolt.db", dsn: func(p string) string { return p }, want: 0o600},
		{name: "new, file: URI with a query", file: "deadbolt.db", dsn: func(p string) string { return "file:" + p + "?_pragma=foreign_keys(1)" }, want: 0o600},
		{name: "new, file:// URI", file: "deadbolt.db", dsn: func(p string) string { return "file://" + p }, want: 0o600},
		{name: "new, file://localhost URI", file: "deadbolt.db", dsn: func(p string) string { return "file://localhost" + p }, want: 0o600},
		{name: "new, escaped name", file: "dead bolt.db", dsn: func(p string) string { return "file:" + strings.ReplaceAll(p, " ", "%20") }, want: 0o600},
		{name: "new, fragment", file: "deadbolt.db", dsn: func(p string) string { return "file:" + p + "#x" }, want: 0o600},
		{name: "existing 0640 kept", file: "deadbolt.db", dsn: func(p string) string { return p }, existing: 0o640, want: 0o640},
		{name: "existing 0644 kept", file: "deadbolt.db", dsn: func(p string) string { return p }, existing: 0o644, want: 0o644},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			if tt.existing != 0 {
				if err := os.WriteFile(path, nil, tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.existing); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			keys, err := secret.Generate()
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			db, err := store.Open(ctx, tt.dsn(path), store.Options{Sealer: keys})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			a := &deadbolt.Account{Slug: "acme", Name: "Acme", Policy: deadbolt.DefaultPolicy()}
			owner := &deadbolt.User{Email: "o@acme.example", Name: "O", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
			if err := db.CreateAccount(ctx, a, owner); err != nil {
				t.Fatal(err)
			}
			files := []string{path, path + "-wal", path + "-shm"}
			for _, f := range files {
				if got := modeOf(t, f); got != tt.want {
					t.Errorf("%s mode = %04o, want %04o", filepath.Base(f), got, tt.want)
				}
			}
			// No stray file: the one made 0600 is the one SQLite opened.
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if !slices.Contains(files, filepath.Join(dir, e.Name())) {
					t.Errorf("unexpected file %q", e.Name())
				}
			}
			if w := store.FileModeWarning(tt.dsn(path)); (w != "") != (tt.want&0o077 != 0) {
				t.Errorf("FileModeWarning = %q with the files at %04o", w, tt.want)
			}
		})
	}
}

// TestSQLiteJournalFollowsDB checks the same claim for the rollback
// journal, which the store (always in WAL mode) does not use: with
// journal_mode=PERSIST the -journal file stays after the commit, at the
// database file's mode.
func TestSQLiteJournalFollowsDB(t *testing.T) {
	withUmask(t, 0o022)
	for _, mode := range []os.FileMode{0o600, 0o640} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "deadbolt.db")
			if err := os.WriteFile(path, nil, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(PERSIST)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if got := modeOf(t, path+"-journal"); got != mode {
				t.Errorf("-journal mode = %04o, want %04o (the database's)", got, mode)
			}
		})
	}
}

func TestFileModeWarning(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := file("open.db", 0o644)
	group := file("group.db", 0o640)
	othersWrite := file("otherswrite.db", 0o602)
	private := file("private.db", 0o600)
	spaced := file("spaced name.db", 0o644)
	walOpen := file("walopen.db", 0o600)
	file("walopen.db-wal", 0o644)
	file("private.db-wal", 0o600)
	file("private.db-shm", 0o600)
	for _, tt := range []struct {
		dsn  string
		want []string // all in the warning; nil for no warning
	}{
		{open, []string{open, "0644", "chmod 600 " + open}},
		{"file:" + open + "?_pragma=foreign_keys(1)", []string{open, "0644"}},
		{"file://localhost" + open, []string{open, "0644"}},
		{"file:" + strings.ReplaceAll(spaced, " ", "%20"), []string{spaced, "0644"}},
		{group, []string{group, "0640"}},
		{othersWrite, []string{othersWrite, "0602"}},
		{walOpen, []string{walOpen + "-wal", "0644", "chmod 600 " + walOpen + "-wal"}},
		{private, nil},
		{"file:" + private + "?mode=rw", nil},
		{filepath.Join(dir, "missing.db"), nil},
		{":memory:", nil},
		{"file::memory:?cache=shared", nil},
		{"file:" + open + "?mode=memory", nil},
		{"postgres://postgres@127.0.0.1/test", nil},
		{"postgresql://postgres@127.0.0.1/test?sslmode=disable", nil},
	} {
		got := store.FileModeWarning(tt.dsn)
		if (got == "") != (tt.want == nil) {
			t.Errorf("FileModeWarning(%q) = %q, want a warning: %v", tt.dsn, got, tt.want != nil)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("FileModeWarning(%q) = %q, want one containing %q", tt.dsn, got, w)
			}
		}
		if strings.Contains(got, "\n") {
			t.Errorf("FileModeWarning(%q) = %q, want one line", tt.dsn, got)
		}
	}
}
