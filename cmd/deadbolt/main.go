// Command deadbolt runs Deadbolt, the sign-in and two-factor-authentication
// service, and administers it. It is the only package that reads
// configuration and wires the others together.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// env is what a command runs with: its streams and environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

const usage = `Deadbolt: sign-in and two-factor authentication for a help desk.

Usage:
  deadbolt serve                     run the service
  deadbolt migrate                   apply database migrations and exit
  deadbolt account create --slug S --name N --owner-email E [--owner-name N] --password-stdin
  deadbolt user create --account S --email E --name N --role owner|admin|agent|end_user [--sso] [--password-stdin]
  deadbolt user reset-2fa --account S --email E
  deadbolt report two-factor --account S [--format csv|json] [--all]
  deadbolt oidc client create --account S --name N --redirect-uri U [--redirect-uri U...] [--public] [--scopes "openid email"]
  deadbolt oidc client list|delete --account S [--id ID]
  deadbolt oidc rotate-keys --account S [--alg RS256|ES256]
  deadbolt sso provider create --account S --kind oidc|saml --name N [--domain D...] [--jit] [--default-role admin|agent|end_user]
      [--trust-mfa] [--issuer U --client-id ID [--client-secret-stdin]] [--metadata-url U | --metadata-file F]
  deadbolt sso provider list|delete --account S [--id ID]
  deadbolt audit --account S [--type T] [--user EMAIL|ID] [--since TIME] [--limit N]
  deadbolt version

Every command takes the configuration flags; see "deadbolt serve -h".
`

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd := strings.Join(args[:min(2, len(args))], " "); {
	case args[0] == "serve":
		err = cmdServe(ctx, e, args[1:])
	case args[0] == "migrate":
		err = cmdMigrate(ctx, e, args[1:])
	case args[0] == "version":
		fmt.Fprintln(stdout, "deadbolt", buildVersion())
	case cmd == "account create":
		err = cmdAccountCreate(ctx, e, args[2:])
	case cmd == "user create":
		err = cmdUserCreate(ctx, e, args[2:])
	case cmd == "user reset-2fa":
		err = cmdResetTwoFactor(ctx, e, args[2:])
	case cmd == "report two-factor":
		err = cmdReport(ctx, e, args[2:])
	case cmd == "oidc rotate-keys":
		err = cmdOIDCRotateKeys(ctx, e, args[2:])
	case cmd == "oidc client":
		err = cmdOIDCClient(ctx, e, args[2:])
	case cmd == "sso provider":
		err = cmdSSOProvider(ctx, e, args[2:])
	case args[0] == "audit":
		err = cmdAudit(ctx, e, args[1:])
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "deadbolt: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "deadbolt: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "deadbolt: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// usageError is a mistake in the command line itself (exit status 2).
type usageError struct{ error }

// oneLine returns the error as one line for the terminal: the public
// message of an application error, the whole text otherwise.
func oneLine(err error) string {
	return strings.Join(strings.Fields(errorText(err)), " ")
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(e *env, name string) (*flag.FlagSet, func() (*Config, error)) {
	fs := flag.NewFlagSet("deadbolt "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs, bindConfig(fs, e.getenv)
}

// parse parses the flags and loads the configuration; positional
// arguments are refused.
func parse(fs *flag.FlagSet, load func() (*Config, error), args []string) (*Config, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := load()
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// newLogger builds the process logger. Logs go to stderr so that stdout
// carries only command output (one JSON line for create commands).
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// app is what every command that touches the database needs.
type app struct {
	cfg    *Config
	log    *slog.Logger
	keys   *secret.Keyring
	db     *store.DB
	hasher *password.Hasher
}

// openApp loads the keys, opens and migrates the database.
func openApp(ctx context.Context, cfg *Config, log *slog.Logger) (*app, error) {
	params, err := password.ParseParams(cfg.PasswordHash)
	if err != nil {
		return nil, usageError{fmt.Errorf("--password-hash: %w", err)}
	}
	keys, err := loadKeys(cfg, log)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DB, store.Options{Sealer: keys, Logger: log})
	if err != nil {
		return nil, redactDSN(err, cfg.DB)
	}
	if w := store.FileModeWarning(cfg.DB); w != "" {
		log.Warn(w)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, redactDSN(err, cfg.DB)
	}
	return &app{cfg: cfg, log: log, keys: keys, db: db, hasher: password.NewHasher(params)}, nil
}

func (a *app) Close() error { return a.db.Close() }

// loadKeys reads the key file. With SQLite and no --key-file, the key file
// beside the database is created on first run; PostgreSQL serves many
// processes that must share one key, so there it must be given.
func loadKeys(cfg *Config, log *slog.Logger) (*secret.Keyring, error) {
	path := cfg.KeyFile
	if path == "" {
		if store.IsPostgres(cfg.DB) {
			return nil, usageError{errors.New("--key-file (DEADBOLT_KEY_FILE) is required with PostgreSQL: every process must use the same key file")}
		}
		path = cfg.defaultKeyFile()
		keys, created, err := secret.LoadOrCreateFile(path)
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		if created {
			log.Warn("created a new key file for secrets at rest: back it up and keep it secret; without it stored secrets cannot be read", "path", path)
		}
		return keys, nil
	}
	keys, err := secret.LoadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return keys, nil
}

// redactDSN removes the database URL's password from an error message.
func redactDSN(err error, dsn string) error {
	if !store.IsPostgres(dsn) {
		return err
	}
	msg := err.Error()
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				pw := dsn[i+3+colon+1 : at]
				if pw != "" {
					msg = strings.ReplaceAll(msg, pw, "xxxxx")
				}
			}
		}
	}
	return errors.New(msg)
}

// readPassword reads one line from stdin and drops its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	return line, nil
}

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs, load := newFlags(e, "migrate")
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	log.Info("database is up to date", "dialect", a.db.Dialect())
	return nil
}
