package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

// Benchmarks of the store's security-critical hot paths: the single
// statements that decide whether a recovery code or a TOTP code is accepted,
// the rate-limit counters and the session lookup behind every request. Each
// runs on SQLite and, when DEADBOLT_TEST_POSTGRES is set, on PostgreSQL, with
// b.RunParallel so that the database sees concurrent callers (use -cpu to
// vary how many). Every round of a benchmark (each b.N) gets a fresh,
// migrated database: the helpers drop it when the round ends, and all setup
// happens before b.ResetTimer.
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/store/

// benchUsers is how many users the fixtures spread their rows over.
const benchUsers = 64

// benchSetupWorkers bounds the concurrency of setup; it stays below the
// store's connection pool sizes.
const benchSetupWorkers = 8

// benchEachDB runs fn as the sub-benchmarks "sqlite" and "postgres", each
// round on a new database. The postgres one is skipped unless
// DEADBOLT_TEST_POSTGRES is set. Benchmarks run after the tests, so
// silencing the default logger meanwhile hides nothing of theirs.
func benchEachDB(b *testing.B, fn func(b *testing.B, db *store.DB, keys *secret.Keyring)) {
	// Keep the migration log of every round out of the benchmark output,
	// so that it stays readable by benchstat.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })
	for _, tc := range []struct {
		name string
		open func(testing.TB, *secret.Keyring) *store.DB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		b.Run(tc.name, func(b *testing.B) {
			keys := mustKeyring(b)
			fn(b, tc.open(b, keys), keys)
		})
	}
}

// benchFixture is an account with benchUsers users besides the owner.
type benchFixture struct {
	account *deadbolt.Account
	users   []*deadbolt.User
}

func newBenchFixture(b *testing.B, db *store.DB) *benchFixture {
	b.Helper()
	ctx := context.Background()
	a := &deadbolt.Account{Slug: "bench", Name: "Bench", Policy: deadbolt.DefaultPolicy()}
	owner := &deadbolt.User{Email: "owner@bench.example", Name: "Owner", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
	if err := db.CreateAccount(ctx, a, owner); err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{account: a, users: make([]*deadbolt.User, benchUsers)}
	benchSetup(b, benchUsers, func(i int) error {
		u := &deadbolt.User{AccountID: a.ID, Email: fmt.Sprintf("user%d@bench.example", i), Name: fmt.Sprintf("User %d", i),
			Role: deadbolt.RoleEndUser, AuthSource: deadbolt.AuthPassword}
		if err := db.CreateUser(ctx, u); err != nil {
			return err
		}
		f.users[i] = u
		return nil
	})
	return f
}

// benchSetup runs fn(0) ... fn(n-1) on a few goroutines and fails the
// benchmark (from its own goroutine) on the first error.
func benchSetup(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		mu    sync.Mutex
		first error
	)
	for range min(n, benchSetupWorkers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("setup item %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}

// benchFail records the first failure of a parallel body. Bodies run on
// goroutines of their own, where b.Fatal must not be called: they report with
// b.Error and stop, the others stop at their next iteration, and
// benchDone fails the benchmark on its own goroutine.
type benchFail struct {
	b       *testing.B
	stopped atomic.Bool
	errors  atomic.Int64
}

func (f *benchFail) fail(format string, args ...any) {
	f.errors.Add(1)
	if f.stopped.CompareAndSwap(false, true) {
		f.b.Errorf(format, args...)
	}
}

func (f *benchFail) stop() bool { return f.stopped.Load() }

// benchDone fails the benchmark if a body failed, and otherwise reports the
// throughput.
func benchDone(b *testing.B, f *benchFail) {
	b.Helper()
	if f.stop() {
		b.Fatalf("%d operation(s) failed; see above", f.errors.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkConsumeRecoveryCode consumes a distinct valid recovery code in
// every iteration; each must succeed.
func BenchmarkConsumeRecoveryCode(b *testing.B) {
	benchEachDB(b, func(b *testing.B, db *store.DB, keys *secret.Keyring) {
		ctx := context.Background()
		fx := newBenchFixture(b, db)
		// Code i belongs to user i % benchUsers; each user gets its whole
		// set in one ReplaceRecoveryCodes.
		hashes := make([][]byte, b.N)
		for i := range hashes {
			hashes[i] = keys.Hash(fmt.Sprintf("rc-%d-%s", i, fx.users[i%benchUsers].ID))
		}
		benchSetup(b, benchUsers, func(u int) error {
			var set [][]byte
			for i := u; i < b.N; i += benchUsers {
				set = append(set, hashes[i])
			}
			return db.ReplaceRecoveryCodes(ctx, fx.account.ID, fx.users[u].ID, set, time.Now())
		})
		fail := &benchFail{b: b}
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() && !fail.stop() {
				i := int(next.Add(1) - 1)
				u := fx.users[i%benchUsers]
				c, err := db.ConsumeRecoveryCode(ctx, fx.account.ID, u.ID, hashes[i], time.Now())
				if err != nil {
					fail.fail("ConsumeRecoveryCode of valid code %d of user %d: %v", i, i%benchUsers, err)
					return
				}
				if c.UserID != u.ID || c.ID == "" {
					fail.fail("ConsumeRecoveryCode of code %d returned %+v", i, c)
					return
				}
			}
		})
		b.StopTimer()
		benchDone(b, fail)
	})
}

// BenchmarkConsumeRecoveryCodeMiss tries wrong codes against users who have
// a set of ten, the path of someone guessing; each must be ENotFound.
func BenchmarkConsumeRecoveryCodeMiss(b *testing.B) {
	benchEachDB(b, func(b *testing.B, db *store.DB, keys *secret.Keyring) {
		ctx := context.Background()
		fx := newBenchFixture(b, db)
		benchSetup(b, benchUsers, func(u int) error {
			set := make([][]byte, 10)
			for j := range set {
				set[j] = keys.Hash(fmt.Sprintf("rc-%d-%s", j, fx.users[u].ID))
			}
			return db.ReplaceRecoveryCodes(ctx, fx.account.ID, fx.users[u].ID, set, time.Now())
		})
		wrong := make([][]byte, 1024)
		for i := range wrong {
			wrong[i] = keys.Hash(fmt.Sprintf("guess-%d", i))
		}
		fail := &benchFail{b: b}
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() && !fail.stop() {
				i := int(next.Add(1) - 1)
				u := fx.users[i%benchUsers]
				_, err := db.ConsumeRecoveryCode(ctx, fx.account.ID, u.ID, wrong[i%len(wrong)], time.Now())
				if code := deadbolt.ErrorCode(err); code != deadbolt.ENotFound {
					fail.fail("ConsumeRecoveryCode of a wrong code: want %s, got %v", deadbolt.ENotFound, err)
					return
				}
			}
		})
		b.StopTimer()
		benchDone(b, fail)
	})
}

// totpFixture creates active TOTP factors, at least benchUsers and a
// multiple of the number of RunParallel goroutines (GOMAXPROCS, as the
// benchmarks do not change the parallelism), one per user.
func totpFixture(b *testing.B, db *store.DB) (*benchFixture, []*deadbolt.Factor, int) {
	b.Helper()
	ctx := context.Background()
	fx := newBenchFixture(b, db)
	workers := runtime.GOMAXPROCS(0)
	n := (max(benchUsers, workers) + workers - 1) / workers * workers
	factors := make([]*deadbolt.Factor, n)
	benchSetup(b, n, func(i int) error {
		u := fx.users[i%benchUsers]
		f := &deadbolt.Factor{AccountID: fx.account.ID, UserID: u.ID, Kind: deadbolt.FactorTOTP,
			Secret: []byte(fmt.Sprintf("%020d", i))}
		if err := db.CreateFactor(ctx, f); err != nil {
			return err
		}
		if _, err := db.ActivateFactor(ctx, fx.account.ID, f.ID, time.Now()); err != nil {
			return err
		}
		factors[i] = f
		return nil
	})
	return fx, factors, workers
}

// BenchmarkUseTOTPStep accepts a new, later time step in every iteration;
// each must succeed. Every goroutine owns its own factors (those whose index
// is its number modulo the number of goroutines), so its steps on a factor
// only increase and no other goroutine races it.
func BenchmarkUseTOTPStep(b *testing.B) {
	benchEachDB(b, func(b *testing.B, db *store.DB, keys *secret.Keyring) {
		ctx := context.Background()
		fx, factors, workers := totpFixture(b, db)
		step0 := time.Now().Unix() / 30
		fail := &benchFail{b: b}
		var goroutines atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			g := int(goroutines.Add(1) - 1)
			if g >= workers {
				fail.fail("RunParallel started more than %d goroutines", workers)
				return
			}
			var own []*deadbolt.Factor
			for i := g; i < len(factors); i += workers {
				own = append(own, factors[i])
			}
			steps := make([]int64, len(own))
			for j := 0; pb.Next() && !fail.stop(); j = (j + 1) % len(own) {
				step := step0 + steps[j]
				steps[j]++
				if err := db.UseTOTPStep(ctx, fx.account.ID, own[j].ID, step, time.Now()); err != nil {
					fail.fail("UseTOTPStep(factor %s, step %d): %v", own[j].ID, step, err)
					return
				}
			}
		})
		b.StopTimer()
		benchDone(b, fail)
	})
}

// BenchmarkUseTOTPStepReplay replays a time step every factor has already
// accepted; each call must be EConflict.
func BenchmarkUseTOTPStepReplay(b *testing.B) {
	benchEachDB(b, func(b *testing.B, db *store.DB, keys *secret.Keyring) {
		ctx := context.Background()
		fx, factors, _ := totpFixture(b, db)
		step := time.Now().Unix() / 30
		for _, f := range factors {
			if err := db.UseTOTPStep(ctx, fx.account.ID, f.ID, step, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		fail := &benchFail{b: b}
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() && !fail.stop() {
				f := factors[int(next.Add(1)-1)%len(factors)]
				err := db.UseTOTPStep(ctx, fx.account.ID, f.ID, step, time.Now())
				if code := deadbolt.ErrorCode(err); code != deadbolt.EConflict {
					fail.fail("UseTOTPStep replay of step %d on factor %s: want %s, got %v", step, f.ID, deadbolt.EConflict, err)
					return
				}
			}
		})
		b.StopTimer()
		benchDone(b, fail)
	})
}

// BenchmarkHitCounter hits counters spread over 1000 names. Afterwards it
// checks that no hit was lost: the counts add up to b.N.
func BenchmarkHitCounter(b *testing.B) {
	benchEachDB(b, func(b *testing.B, db *store.DB, keys *secret.Keyring) {
		ctx := context.Background()
		fx := newBenchFixture(b, db)
		names := make([]string, 1000)
		for i := range names {
			names[i] = fmt.Sprintf("signin:user%d@bench.example", i)
		}
		const window = time.Hour
		fail := &benchFail{b: b}
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() && !fail.stop() {
				name := names[int(next.Add(1)-1)%len(names)]
				c, err := db.HitCounter(ctx, fx.account.ID, name, window, time.Now())
				if err != nil {
					fail.fail("HitCounter(%s): %v", name, err)
					return
				}
				if c.Count < 1 {
					fail.fail("HitCounter(%s) returned count %d", name, c.Count)
					return
				}
			}
		})
		b.StopTimer()
		benchDone(b, fail)
		total := 0
		for _, name := range names {
			c, err := db.PeekCounter(ctx, fx.account.ID, name, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			total += c.Count
		}
		if total != b.N {
			b.Errorf("counters hold %d hits, want %d: hits were lost or doubled", total, b.N)
		}
	})
}

// BenchmarkFindSessionByTokenHash looks up 1000 sessions by token hash.
func BenchmarkFindSessionByTokenHash(b *testing.B) {
	benchEachDB(b, func(b *testing.B, db *store.DB, keys *secret.Keyring) {
		ctx := context.Background()
		fx := newBenchFixture(b, db)
		const n = 1000
		hashes := make([][]byte, n)
		ids := make([]string, n)
		now := time.Now()
		benchSetup(b, n, func(i int) error {
			hashes[i] = keys.Hash(secret.NewToken("dbs_"))
			s := &deadbolt.Session{AccountID: fx.account.ID, UserID: fx.users[i%benchUsers].ID, TokenHash: hashes[i],
				IdleTimeout: time.Hour, ExpiresAt: now.Add(24 * time.Hour), IP: "192.0.2.1", UserAgent: "bench"}
			if err := db.CreateSession(ctx, s); err != nil {
				return err
			}
			ids[i] = s.ID
			return nil
		})
		fail := &benchFail{b: b}
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() && !fail.stop() {
				i := int(next.Add(1)-1) % n
				s, err := db.FindSessionByTokenHash(ctx, hashes[i])
				if err != nil {
					fail.fail("FindSessionByTokenHash of session %d: %v", i, err)
					return
				}
				if s.ID != ids[i] {
					fail.fail("FindSessionByTokenHash of session %d returned session %s, want %s", i, s.ID, ids[i])
					return
				}
			}
		})
		b.StopTimer()
		benchDone(b, fail)
	})
}

// BenchmarkCompleteChallenge completes sign-ins (challenge, TOTP step,
// session, audit event) from parallel callers, with group commit and
// without, to show what sharing commits is worth (on PostgreSQL, which
// never batches, both rows measure the same). It reports the mean batch.
func BenchmarkCompleteChallenge(b *testing.B) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })
	for _, db := range []struct {
		name string
		open func(testing.TB, store.Options) *store.DB
	}{{"sqlite", storetest.OpenSQLiteWith}, {"postgres", storetest.OpenPostgresWith}} {
		for _, gc := range []struct {
			name       string
			committers int
		}{{"group", 1}, {"alone", -1}} {
			b.Run(db.name+"/"+gc.name, func(b *testing.B) {
				keys := mustKeyring(b)
				s := db.open(b, store.Options{Sealer: keys, Committers: gc.committers})
				ctx := context.Background()
				fx := newBenchFixture(b, s)
				factors := make([]*deadbolt.Factor, len(fx.users))
				for i, u := range fx.users {
					f := &deadbolt.Factor{AccountID: fx.account.ID, UserID: u.ID, Kind: deadbolt.FactorTOTP, Secret: []byte("12345678901234567890")}
					if err := s.CreateFactor(ctx, f); err != nil {
						b.Fatal(err)
					}
					if _, err := s.ActivateFactor(ctx, fx.account.ID, f.ID, time.Now()); err != nil {
						b.Fatal(err)
					}
					factors[i] = f
				}
				// Enough challenges made ahead; steps only grow.
				n := b.N + 16
				challenges := make([]*deadbolt.Challenge, n)
				now := time.Now()
				for i := range challenges {
					u := fx.users[i%len(fx.users)]
					challenges[i] = &deadbolt.Challenge{AccountID: fx.account.ID, UserID: u.ID, TokenHash: []byte(fmt.Sprint("bench-ch-", i)),
						Purpose: deadbolt.ChallengeSecondFactor, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
					if err := s.CreateChallenge(ctx, challenges[i]); err != nil {
						b.Fatal(err)
					}
				}
				var next atomic.Int64
				b0, u0 := s.GroupCommitStats()
				b.SetParallelism(8) // 16 callers on 2 cores, as the load harness's clients
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := int(next.Add(1) - 1)
						ch := challenges[i]
						u := i % len(fx.users)
						err := s.CompleteChallenge(ctx, &deadbolt.Completion{AccountID: fx.account.ID, ChallengeID: ch.ID, MaxAttempts: 5, Now: now,
							TOTPFactorID: factors[u].ID, TOTPStep: int64(i + 1),
							Session: &deadbolt.Session{AccountID: fx.account.ID, UserID: ch.UserID, TokenHash: []byte(fmt.Sprint("bench-s-", i)),
								IdleTimeout: time.Hour, ExpiresAt: now.Add(time.Hour), CreatedAt: now},
							Events: []*deadbolt.AuditEvent{{AccountID: fx.account.ID, Type: deadbolt.AuditSignInSucceeded, SubjectID: ch.UserID}}})
						if err != nil && !deadbolt.IsCode(err, deadbolt.EConflict) {
							b.Errorf("CompleteChallenge = %v", err)
							return
						}
					}
				})
				b.StopTimer()
				if b1, u1 := s.GroupCommitStats(); b1 > b0 {
					b.ReportMetric(float64(u1-u0)/float64(b1-b0), "units/batch")
				}
			})
		}
	}
}
