package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/totp"
	"github.com/deadbolt/deadbolt/internal/web"
)

// Small Argon2id parameters: the tests are about the harness, not the hash.
const testHash = "argon2id:m=64,t=1,p=1"

// service is the real handler over a SQLite store in a temporary directory,
// behind an httptest server, as "deadbolt serve" wires it.
type service struct {
	url    string
	dbPath string
	db     *store.DB
	keys   *secret.Keyring
	fivexx atomic.Int64
}

func newService(t *testing.T) *service {
	t.Helper()
	dir := t.TempDir()
	s := &service{dbPath: filepath.Join(dir, "deadbolt.db")}
	var err error
	if s.keys, err = secret.CreateFile(filepath.Join(dir, "deadbolt.key")); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if s.db, err = openStore(t.Context(), s.dbPath, s.keys, quiet); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.db.Close() })
	params, err := password.ParseParams(testHash)
	if err != nil {
		t.Fatal(err)
	}
	svc := signin.New(signin.Options{Store: s.db, Keys: s.keys, Hasher: password.NewHasher(params), Logger: quiet})
	handler := web.NewServer(web.Options{DB: s.db, SignIn: svc, Logger: quiet})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		handler.ServeHTTP(rec, r)
		if rec.status >= 500 {
			s.fivexx.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// stepTracker fails the test if a user's code is sent twice for one step,
// or for an older step after a newer one.
type stepTracker struct {
	t    *testing.T
	mu   sync.Mutex
	last map[int]int64
	sent int
}

func (k *stepTracker) onCode(user int, step int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if prev, ok := k.last[user]; ok && step <= prev {
		k.t.Errorf("user %d: a code for step %d after one for step %d", user, step, prev)
	}
	k.last[user] = step
	k.sent++
}

func TestLoad(t *testing.T) {
	t.Parallel()
	s := newService(t)
	params, _ := password.ParseParams(testHash)
	for _, mode := range []string{modeSignIn, modeVerify} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			// Users of their own per mode: a user who signed in during
			// this step cannot verify again in it.
			prov, err := provision(ctx, s.db, s.keys, provisionConfig{Account: "load", Prefix: mode, Users: 50, Params: params}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if prov.Created != 50 || len(prov.Users) != 50 {
				t.Fatalf("created %d users, have %d; want 50", prov.Created, len(prov.Users))
			}
			cfg := loadConfig{Mode: mode, URLs: []string{s.url}, Clients: 4, Duration: time.Second, Timeout: 5 * time.Second,
				Slug: prov.Account.Slug, Password: prov.Password}
			d := &driver{cfg: cfg, client: newHTTPClient(4, 1, cfg.Timeout), pool: newPool(prov.Users, time.Now)}
			track := &stepTracker{t: t, last: map[int]int64{}}
			d.pool.onCode = track.onCode
			if mode == modeVerify {
				if d.stash, err = prepareChallenges(ctx, s.db, s.keys, prov, cfg.Duration, nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := d.preflight(ctx); err != nil {
				t.Fatal(err)
			}
			res := d.run(ctx)
			if res.Completed == 0 {
				t.Error("nothing completed")
			}
			if n := res.ErrorsTotal(); n != 0 {
				t.Errorf("%d errors: %v", n, res.Errors)
			}
			if res.Inline != 0 {
				t.Errorf("%d challenges made during the load; want all made ahead", res.Inline)
			}
			if track.sent < int(res.Completed) {
				t.Errorf("%d codes sent for %d completed", track.sent, res.Completed)
			}
			if len(res.Latencies) != int(res.Completed) || res.Percentile(.5) <= 0 || res.Percentile(.99) > res.Latencies[len(res.Latencies)-1] {
				t.Errorf("latencies: %d for %d completed, p50 %v", len(res.Latencies), res.Completed, res.Percentile(.5))
			}
			t.Logf("%s: %d completed in %v (%.0f/s), p50 %v, p99 %v, ran out of users %d times", mode, res.Completed,
				res.Elapsed.Round(time.Millisecond), res.PerSecond(), res.Percentile(.5), res.Percentile(.99), res.Stalls)
		})
	}
	if n := s.fivexx.Load(); n > 0 {
		t.Errorf("the service answered %d requests with a 5xx", n)
	}
}

// TestRun runs the command as a person would, against the test service,
// and reads its report and JSON; a second run reuses the users.
func TestRun(t *testing.T) {
	t.Parallel()
	s := newService(t)
	jsonPath := filepath.Join(t.TempDir(), "result.json")
	args := []string{"--db", s.dbPath, "-url", s.url + "/", "--password-hash", testHash, "-n", "40", "-c", "4", "-d", "500ms",
		"--ceiling-duration", "200ms", "--user-prefix", "run", "-json", jsonPath, "-q"}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), args, &stdout, &stderr, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	for _, want := range []string{"mode                signin", "errors              none", "ratio to the Argon2id ceiling: "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, &stdout)
		}
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Completed == 0 || rep.ErrorsTotal != 0 || rep.UsersCreated != 40 || rep.Ceiling == nil || rep.Ceiling.HashesPerSecond <= 0 || rep.RatioPercent == nil {
		t.Errorf("JSON report: %s", b)
	}

	// Again, in verify mode with more users: the first 40 are reused,
	// including those whose step was used a moment ago.
	args = []string{"--db", s.dbPath, "-url", s.url + "," + s.url, "--password-hash", testHash, "-n", "60", "-c", "4", "-d", "500ms",
		"--ceiling-duration", "0", "--user-prefix", "run", "--mode", "verify", "-q"}
	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), args, &stdout, &stderr, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	for _, want := range []string{"mode                verify", "users               60 (20 created by this run)", "errors              none"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, &stdout)
		}
	}

	// Hashes of other parameters than the server's: the server rehashes
	// them at sign-in, and the harness stops after its first sign-in.
	args = []string{"--db", s.dbPath, "-url", s.url, "--password-hash", "argon2id:m=128,t=1,p=1", "-n", "2", "-d", "500ms",
		"--user-prefix", "other", "-q"}
	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), args, &stdout, &stderr, func(string) string { return "" }); code != 1 || !strings.Contains(stderr.String(), "--password-hash "+testHash) {
		t.Errorf("with other hash parameters: exit %d, stderr:\n%s", code, &stderr)
	}
	if n := s.fivexx.Load(); n > 0 {
		t.Errorf("the service answered %d requests with a 5xx", n)
	}
}

// TestPool checks that a user is handed out once per TOTP step, and that
// clients wait for the next step when every user has used this one.
func TestPool(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	users := []*loadUser{{Secret: totp.NewSecret(), lastStep: -1}, {Secret: totp.NewSecret(), lastStep: -1},
		{Secret: totp.NewSecret(), lastStep: totp.Step(now)}} // the last one used this step in an earlier run
	p := newPool(users, clock)
	got := map[int]bool{}
	for range 2 {
		i, err := p.acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got[i] || i == 2 {
			t.Fatalf("user %d handed out again or too early", i)
		}
		got[i] = true
		if _, _, ok := p.use(i); !ok {
			t.Fatalf("user %d: use refused", i)
		}
		if _, _, ok := p.use(i); ok {
			t.Fatalf("user %d: a second code in one step", i)
		}
		p.release(i)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if i, err := p.acquire(ctx); err == nil {
		t.Fatalf("user %d handed out twice in one step", i)
	}
	if stalls, _ := p.stallStats(clock()); stalls != 1 {
		t.Errorf("stalls = %d, want 1", stalls)
	}
	mu.Lock()
	now = now.Add(totp.Period)
	mu.Unlock()
	for range 3 {
		if _, err := p.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPercentile(t *testing.T) {
	r := &loadResult{}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{.5: 50 * time.Millisecond, .9: 90 * time.Millisecond, .99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := r.Percentile(q); got != want {
			t.Errorf("p%v = %v, want %v", q*100, got, want)
		}
	}
}
