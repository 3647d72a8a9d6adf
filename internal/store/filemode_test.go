package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
)

// TestSQLiteFilesPrivate: a new database and its WAL files are 0600 even
// under a umask that would make them world-readable.
func TestSQLiteFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	keys, err := secret.Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "deadbolt.db")
	db, err := store.Open(context.Background(), path, store.Options{Sealer: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background()); err != nil { // writes, so the -wal and -shm files exist
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %04o, want 0600", filepath.Base(f), got)
		}
	}
	if w := store.FileModeWarning(path); w != "" {
		t.Errorf("FileModeWarning of a private database = %q, want none", w)
	}
}

func TestFileModeWarning(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.db")
	os.WriteFile(open, nil, 0o600)
	os.Chmod(open, 0o644)
	private := filepath.Join(dir, "private.db")
	os.WriteFile(private, nil, 0o600)
	for _, tt := range []struct {
		dsn  string
		want string // in the warning; "" for none
	}{
		{open, "chmod 600 " + open},
		{"file:" + open + "?_pragma=foreign_keys(1)", "0644"},
		{private, ""},
		{filepath.Join(dir, "missing.db"), ""},
		{":memory:", ""},
		{"file::memory:?cache=shared", ""},
		{"file:x.db?mode=memory", ""},
		{"postgres://postgres@127.0.0.1/test", ""},
	} {
		got := store.FileModeWarning(tt.dsn)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("FileModeWarning(%q) = %q, want one containing %q", tt.dsn, got, tt.want)
		}
	}
}
