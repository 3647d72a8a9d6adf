package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/totp"
)

// setupWorkers bounds the goroutines that write users and challenges. On
// SQLite the store has one write connection, so more would only queue; on
// PostgreSQL they hide the round trips (provision uses 16 there).
const setupWorkers = 8

// emailDomain is the domain of the load users' addresses (.example is
// reserved: nothing is ever sent there).
const emailDomain = "loadtest.example"

// openKeys loads the key file the way "deadbolt" does: --key-file if given,
// else deadbolt.key beside the SQLite file, created on first use; with
// PostgreSQL the key file must be given.
func openKeys(dsn, keyFile string, log *slog.Logger) (*secret.Keyring, error) {
	path := keyFile
	if path == "" {
		if store.IsPostgres(dsn) {
			return nil, errors.New("--key-file (DEADBOLT_KEY_FILE) is required with PostgreSQL: use the key file of the servers")
		}
		p := strings.TrimPrefix(dsn, "file:")
		p, _, _ = strings.Cut(p, "?")
		path = filepath.Join(filepath.Dir(p), "deadbolt.key")
		keys, created, err := secret.LoadOrCreateFile(path)
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		if created {
			log.Warn("created a new key file for secrets at rest: back it up and keep it secret", "path", path)
		}
		return keys, nil
	}
	keys, err := secret.LoadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return keys, nil
}

// openStore opens and migrates the database.
func openStore(ctx context.Context, dsn string, keys *secret.Keyring, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, dsn, store.Options{Sealer: keys, Logger: log})
	if err != nil {
		return nil, redactDSN(err, dsn)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, redactDSN(err, dsn)
	}
	return db, nil
}

// redactDSN removes a database URL's password from an error message.
func redactDSN(err error, dsn string) error {
	if !store.IsPostgres(dsn) {
		return err
	}
	u, perr := url.Parse(dsn)
	if perr != nil {
		return errors.New("database error (message withheld: the URL could not be parsed to redact it)")
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

// loadUser is one provisioned user as the harness drives it.
type loadUser struct {
	ID     string
	Email  string
	Secret []byte // the TOTP secret
	// The user's usual device, recognised (not remembered): the load is
	// people signing in on their own computers, as on a Monday morning when
	// remembered devices have expired, so no sign-in is from a new device.
	DeviceID, Device string
	// lastStep is the latest TOTP step this user's code was sent for (or
	// may have been, by an earlier run); guarded by the pool.
	lastStep int64
	busy     bool
}

// provisionConfig says what to provision.
type provisionConfig struct {
	Account string // slug; created if missing
	Fresh   bool   // use a new random slug instead
	Prefix  string // users are {prefix}-{i:06}@loadtest.example
	Users   int
	Params  password.Params
}

// provisioned is the outcome of provisioning.
type provisioned struct {
	Account  *deadbolt.Account
	Password string // every load user's password
	Users    []*loadUser
	Created  int // users created by this run
	Reused   int // users of earlier runs
	Rehashed int // reused users whose password hash was replaced
}

// loadPassword is the password of the account's load users. It is derived
// from the key file's HMAC key, so that a later run with the same key file
// signs the same users in without storing the password anywhere, and a copy
// of the database alone does not reveal it.
func loadPassword(keys *secret.Keyring, accountID string) string {
	return "load-" + base64.RawURLEncoding.EncodeToString(keys.Hash("deadbolt-load user password/" + accountID))[:32]
}

// loadDevice is the device token of a load user, derived like the
// password so that later runs sign in from the same device.
func loadDevice(keys *secret.Keyring, accountID, email string) string {
	return signin.PrefixDevice + base64.RawURLEncoding.EncodeToString(keys.Hash("deadbolt-load device/" + accountID + "/" + email))[:26]
}

// ensureDevice finds the user's load device, or makes it.
func ensureDevice(ctx context.Context, db *store.DB, keys *secret.Keyring, accountID string, lu *loadUser) error {
	lu.Device = loadDevice(keys, accountID, lu.Email)
	hash := keys.Hash(lu.Device)
	d, err := db.FindDeviceByTokenHash(ctx, accountID, hash)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		now := time.Now()
		d = &deadbolt.Device{AccountID: accountID, UserID: lu.ID, TokenHash: hash, Name: "deadbolt-load", IP: "127.0.0.1", CreatedAt: now, LastSeenAt: now}
		err = db.CreateDevice(ctx, d)
	}
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	lu.DeviceID = d.ID
	return nil
}

func userEmail(prefix string, i int) string {
	return fmt.Sprintf("%s-%06d@%s", prefix, i+1, emailDomain)
}

// provision makes sure the account exists and has cfg.Users agents with an
// active TOTP factor and the load password, creating what is missing. The
// password is hashed once; every user gets the same encoded hash (the server
// still runs Argon2id on every sign-in).
func provision(ctx context.Context, db *store.DB, keys *secret.Keyring, cfg provisionConfig, progress io.Writer) (*provisioned, error) {
	slug := cfg.Account
	if cfg.Fresh {
		slug = fmt.Sprintf("%s-%s", cfg.Account, strings.ToLower(rand.Text()[:8]))
	}
	if err := deadbolt.ValidateSlug(slug); err != nil {
		return nil, fmt.Errorf("--account %q: %s", slug, deadbolt.ErrorMessage(err))
	}
	acc, err := db.FindAccountBySlug(ctx, slug)
	if deadbolt.IsCode(err, deadbolt.EAccountNotFound) {
		acc = &deadbolt.Account{Slug: slug, Name: "Load test " + slug, Policy: deadbolt.DefaultPolicy()}
		// The owner has no password: nobody signs in as them.
		owner := &deadbolt.User{Email: fmt.Sprintf("%s-owner@%s", cfg.Prefix, emailDomain), Name: "Load test owner",
			Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
		if err := owner.Validate(); err != nil {
			return nil, fmt.Errorf("--user-prefix: %s", deadbolt.ErrorMessage(err))
		}
		if err = db.CreateAccount(ctx, acc, owner); deadbolt.IsCode(err, deadbolt.EConflict) {
			acc, err = db.FindAccountBySlug(ctx, slug) // another run made it meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("account %q: %w", slug, err)
	}
	p := &provisioned{Account: acc, Password: loadPassword(keys, acc.ID), Users: make([]*loadUser, cfg.Users)}
	hasher := password.NewHasher(cfg.Params)
	encoded, err := hasher.Hash(p.Password)
	if err != nil {
		return nil, err
	}

	existing, err := db.FindUsers(ctx, acc.ID, deadbolt.UserFilter{Role: deadbolt.RoleAgent})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	byEmail := make(map[string]*deadbolt.User, len(existing))
	for _, u := range existing {
		byEmail[u.Email] = u
	}
	// Reused users keep their hash if it is of this password and these
	// parameters. All users of one run share one encoded hash, so there are
	// only a few distinct ones to check.
	goodHash := map[string]bool{}
	var stale []int
	for i := range p.Users {
		email := userEmail(cfg.Prefix, i)
		u := byEmail[email]
		if u == nil {
			if err := (&deadbolt.User{Email: email, Name: "x", Role: deadbolt.RoleAgent}).Validate(); err != nil {
				return nil, fmt.Errorf("--user-prefix: %s", deadbolt.ErrorMessage(err))
			}
			p.Users[i] = &loadUser{Email: email, lastStep: -1}
			continue
		}
		ok, seen := goodHash[u.PasswordHash]
		if !seen {
			ok = u.PasswordHash != "" && !hasher.NeedsRehash(u.PasswordHash)
			if ok {
				ok, _ = hasher.Verify(p.Password, u.PasswordHash)
			}
			goodHash[u.PasswordHash] = ok
		}
		if !ok {
			stale = append(stale, i)
		}
		p.Users[i] = &loadUser{ID: u.ID, Email: email, lastStep: -1}
	}

	var done atomic.Int64
	stop := startTicker(progress, func(elapsed time.Duration) string {
		return fmt.Sprintf("setup: %d of %d users ready (%s)", done.Load(), len(p.Users), elapsed.Round(time.Second))
	})
	defer stop()
	var created, rehashed atomic.Int64
	staleSet := make(map[int]bool, len(stale))
	for _, i := range stale {
		staleSet[i] = true
	}
	workers := setupWorkers
	if db.Dialect() == "postgres" {
		// Commits wait for the WAL to reach the disk: more of them at once
		// share the waits. The store keeps 16 connections.
		workers = 16
	}
	err = parallel(ctx, len(p.Users), workers, func(ctx context.Context, i int) error {
		lu := p.Users[i]
		isNew := lu.ID == ""
		if isNew {
			u := &deadbolt.User{AccountID: acc.ID, Email: lu.Email, Name: fmt.Sprintf("Load %s %d", cfg.Prefix, i+1),
				Role: deadbolt.RoleAgent, AuthSource: deadbolt.AuthPassword, PasswordHash: encoded}
			if err := db.CreateUser(ctx, u); err != nil {
				return fmt.Errorf("create user %s: %w", lu.Email, err)
			}
			lu.ID = u.ID
			created.Add(1)
		} else if staleSet[i] {
			if _, err := db.UpdateUser(ctx, acc.ID, lu.ID, deadbolt.UserUpdate{PasswordHash: &encoded}); err != nil {
				return fmt.Errorf("update user %s: %w", lu.Email, err)
			}
			rehashed.Add(1)
		}
		if err := ensureTOTP(ctx, db, acc.ID, lu, isNew); err != nil {
			return fmt.Errorf("user %s: %w", lu.Email, err)
		}
		if err := ensureDevice(ctx, db, keys, acc.ID, lu); err != nil {
			return fmt.Errorf("user %s: %w", lu.Email, err)
		}
		done.Add(1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.Created, p.Rehashed = int(created.Load()), int(rehashed.Load())
	p.Reused = len(p.Users) - p.Created
	return p, nil
}

// ensureTOTP finds the user's active TOTP factor, or makes one (at once for
// a user just created). A factor used before may have accepted a step up to
// one past the step of its last use (the service accepts one step of clock
// skew): the user counts as having used that step.
func ensureTOTP(ctx context.Context, db *store.DB, accountID string, lu *loadUser, isNew bool) error {
	var fs []*deadbolt.Factor
	if !isNew {
		var err error
		if fs, err = db.FindFactors(ctx, accountID, lu.ID); err != nil {
			return err
		}
	}
	var pending *deadbolt.Factor
	for _, f := range fs {
		if f.Kind != deadbolt.FactorTOTP || len(f.Secret) == 0 {
			continue
		}
		if f.Status == deadbolt.FactorActive {
			lu.Secret = f.Secret
			if !f.LastUsedAt.IsZero() {
				lu.lastStep = totp.Step(f.LastUsedAt) + totp.Skew
			}
			return nil
		}
		if pending == nil {
			pending = f
		}
	}
	if pending == nil {
		pending = &deadbolt.Factor{AccountID: accountID, UserID: lu.ID, Kind: deadbolt.FactorTOTP, Secret: totp.NewSecret()}
		if err := db.CreateFactor(ctx, pending); err != nil {
			return err
		}
	}
	if _, err := db.ActivateFactor(ctx, accountID, pending.ID, time.Now()); err != nil {
		return err
	}
	lu.Secret = pending.Secret
	return nil
}

// challengeStash holds challenges made ahead of a verify run: each user's
// tokens, oldest first. Guarded by mu; a user's tokens are taken only by
// the worker that holds the user.
type challengeStash struct {
	mu     sync.Mutex
	tokens [][]string
	// make creates a challenge when a user has none left (the stash was
	// too small); inline counts those.
	make   func(ctx context.Context, user int) (string, error)
	inline atomic.Int64
}

// take returns a live challenge token of the user.
func (c *challengeStash) take(ctx context.Context, user int) (string, error) {
	c.mu.Lock()
	if ts := c.tokens[user]; len(ts) > 0 {
		t := ts[0]
		c.tokens[user] = ts[1:]
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()
	c.inline.Add(1)
	return c.make(ctx, user)
}

// newChallengeMaker returns a function that stores a second-factor
// challenge for a user, as the service would after a right password, and
// returns its token.
func newChallengeMaker(db *store.DB, keys *secret.Keyring, accountID string, users []*loadUser) func(ctx context.Context, user int) (string, error) {
	return func(ctx context.Context, user int) (string, error) {
		token := secret.NewToken(signin.PrefixChallenge)
		now := time.Now()
		ch := &deadbolt.Challenge{AccountID: accountID, UserID: users[user].ID, TokenHash: keys.Hash(token), DeviceID: users[user].DeviceID,
			Purpose: deadbolt.ChallengeSecondFactor, IP: "127.0.0.1", CreatedAt: now, ExpiresAt: now.Add(deadbolt.ChallengeTTL)}
		if err := db.CreateChallenge(ctx, ch); err != nil {
			return "", fmt.Errorf("create challenge: %w", err)
		}
		return token, nil
	}
}

// prepareMargin covers what comes between making the challenges and the
// end of the load besides its duration: the preflight, the last requests.
const prepareMargin = 5 * time.Second

// prepareChallenges makes, before the load, as many challenges per user as
// the run can use: a user verifies at most once per TOTP step, so one per
// step the run may overlap. Making them during the load would put a second
// writer on the database while it is measured (on SQLite, another process
// waiting for the one write lock), so it is all done ahead.
func prepareChallenges(ctx context.Context, db *store.DB, keys *secret.Keyring, p *provisioned, d time.Duration, progress io.Writer) (*challengeStash, error) {
	maker := newChallengeMaker(db, keys, p.Account.ID, p.Users)
	c := &challengeStash{tokens: make([][]string, len(p.Users)), make: maker}
	var made atomic.Int64
	stop := startTicker(progress, func(elapsed time.Duration) string {
		return fmt.Sprintf("setup: %d challenges made (%s)", made.Load(), elapsed.Round(time.Second))
	})
	defer stop()
	for round := 1; ; round++ {
		// The steps a run starting now overlaps; rounds add one per user
		// until they cover them (making them takes time, too).
		now := time.Now()
		if steps := totp.Step(now.Add(d+prepareMargin)) - totp.Step(now) + 1; int64(round) > steps {
			break
		}
		err := parallel(ctx, len(p.Users), setupWorkers, func(ctx context.Context, i int) error {
			t, err := maker(ctx, i)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.tokens[i] = append(c.tokens[i], t)
			c.mu.Unlock()
			made.Add(1)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// parallel calls fn for 0..n-1 on at most workers goroutines and returns
// the first error; after one, the rest are not started.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// startTicker prints line() to w every second until the returned function
// is called; with a nil w it does nothing.
func startTicker(w io.Writer, line func(elapsed time.Duration) string) (stop func()) {
	if w == nil {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(w, line(time.Since(start)))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
