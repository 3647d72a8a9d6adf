// Command deadbolt-load measures Deadbolt under load. It provisions an
// account with N agents who each have an authenticator app (TOTP), straight
// in the database as the deadbolt CLI does, then drives complete sign-ins
// (password, then TOTP code) or second-factor verifications alone with C
// concurrent clients for D seconds against one or more running servers,
// round-robin, and reports operations per second, latency percentiles and
// errors by code. In the same run it measures the bare Argon2id rate of
// this machine with the same parameters and concurrency, in-process, and
// prints the sign-in rate as a share of it.
//
// A TOTP factor accepts each 30-second step once, so every user completes
// at most one verification per step: a rate R needs about R × 30 users.
// The harness never sends a code twice; when every user has used the
// current step it waits for the next one and says so.
//
// See docs/performance.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/totp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// The first ctrl-C ends the run: requests under way finish and
		// the report is printed. A second one quits at once.
		<-ctx.Done()
		stop()
		fmt.Fprintln(os.Stderr, "deadbolt-load: interrupted: finishing the requests under way (ctrl-C again to quit at once)")
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// urlList is a repeatable, comma-separated flag.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an http(s) base URL", s)
		}
		*l = append(*l, s)
	}
	return nil
}

// options are the command line.
type options struct {
	Mode            string
	URLs            urlList
	Clients         int
	Duration        time.Duration
	Warmup          time.Duration
	Users           int
	DB              string
	KeyFile         string
	PasswordHash    string
	Account         string
	Fresh           bool
	Prefix          string
	Timeout         time.Duration
	CeilingDuration time.Duration
	CeilingFirst    bool
	JSON            string
	Quiet           bool
}

const defaultURL = "http://127.0.0.1:8080"

func parseOptions(args []string, stderr io.Writer, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("deadbolt-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envOr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.Mode, "mode", modeSignIn, "signin (password then TOTP code) or verify (TOTP codes of challenges made ahead)")
	fs.Var(&o.URLs, "url", "base URL of a server; repeat or separate with commas for several, used round-robin (default "+defaultURL+")")
	fs.IntVar(&o.Clients, "c", 16, "concurrent clients")
	fs.DurationVar(&o.Duration, "d", 20*time.Second, "duration of the load")
	fs.DurationVar(&o.Warmup, "warmup", 0, "unmeasured load before the measured -d, to warm the servers up")
	fs.IntVar(&o.Users, "n", 2000, "users; a rate R needs about R × 30 of them (each may verify once per 30-second TOTP step)")
	fs.StringVar(&o.DB, "db", envOr("DEADBOLT_DB", "deadbolt.db"), "the servers' database: SQLite file or postgres:// URL (DEADBOLT_DB)")
	fs.StringVar(&o.KeyFile, "key-file", getenv("DEADBOLT_KEY_FILE"), "the servers' key file (DEADBOLT_KEY_FILE; default deadbolt.key beside the SQLite file)")
	fs.StringVar(&o.PasswordHash, "password-hash", envOr("DEADBOLT_PASSWORD_HASH", password.DefaultParams().String()),
		"Argon2id parameters of the users' hash and of the ceiling: use the servers' (DEADBOLT_PASSWORD_HASH)")
	fs.StringVar(&o.Account, "account", "load", "slug of the load account, created if missing")
	fs.BoolVar(&o.Fresh, "fresh", false, "use a new account with a random slug instead of reusing --account")
	fs.StringVar(&o.Prefix, "user-prefix", "load", "users are PREFIX-000001@loadtest.example and so on; those of earlier runs are reused")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.DurationVar(&o.CeilingDuration, "ceiling-duration", 10*time.Second, "duration of the Argon2id ceiling measurement (0: skip it)")
	fs.BoolVar(&o.CeilingFirst, "ceiling-first", false, "measure the Argon2id ceiling before the load instead of after")
	fs.StringVar(&o.JSON, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&o.Quiet, "q", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: deadbolt-load [flags]\n\nProvisions load users in the database, drives sign-ins against running servers and reports the rate.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(o.URLs) == 0 {
		o.URLs = urlList{defaultURL}
	}
	switch {
	case o.Mode != modeSignIn && o.Mode != modeVerify:
		return nil, fmt.Errorf("--mode must be %s or %s", modeSignIn, modeVerify)
	case o.Clients < 1 || o.Clients > 10000:
		return nil, errors.New("-c must be between 1 and 10000")
	case o.Duration <= 0:
		return nil, errors.New("-d must be positive")
	case o.Warmup < 0:
		return nil, errors.New("--warmup must not be negative")
	case o.Users < 1:
		return nil, errors.New("-n must be at least 1")
	case o.Timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	case o.CeilingDuration < 0:
		return nil, errors.New("--ceiling-duration must not be negative")
	case o.Mode == modeVerify && o.Warmup+o.Duration > 8*time.Minute:
		// Challenges made ahead live 10 minutes.
		return nil, errors.New("--warmup plus -d must be at most 8m in verify mode: the challenges made ahead expire after 10 minutes")
	}
	return o, nil
}

// report is the result of a run, as printed and as written to -json.
type report struct {
	Mode            string           `json:"mode"`
	URLs            []string         `json:"urls"`
	Clients         int              `json:"clients"`
	DurationSeconds float64          `json:"duration_seconds"`
	PlannedSeconds  float64          `json:"planned_duration_seconds"`
	WarmupSeconds   float64          `json:"warmup_seconds"`
	Interrupted     bool             `json:"interrupted"`
	Database        string           `json:"database"`
	Account         string           `json:"account"`
	Users           int              `json:"users"`
	UsersCreated    int              `json:"users_created"`
	SetupSeconds    float64          `json:"setup_seconds"`
	Completed       int64            `json:"completed"`
	PerSecond       float64          `json:"per_second"`
	Latency         latencyJSON      `json:"latency_ms"`
	ErrorsTotal     int64            `json:"errors_total"`
	Errors          map[string]int64 `json:"errors"`
	UserStalls      int              `json:"user_stalls"`
	StalledSeconds  float64          `json:"stalled_seconds"`
	UsersNeeded     int              `json:"users_needed"`
	InlineChallenge int64            `json:"challenges_made_during_load,omitempty"`
	Ceiling         *ceilingJSON     `json:"argon2id_ceiling,omitempty"`
	RatioPercent    *float64         `json:"ratio_percent,omitempty"`
	RatioNote       string           `json:"ratio_note,omitempty"`
}

type latencyJSON struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type ceilingJSON struct {
	Params          string  `json:"params"`
	HashesPerSecond float64 `json:"hashes_per_second"`
	Hashes          int64   `json:"hashes"`
	Seconds         float64 `json:"seconds"`
	Goroutines      int     `json:"goroutines"`
	AtOnce          int     `json:"at_once"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }

// usersNeeded is how many users a rate needs: one verification per user
// per TOTP step, with some room.
func usersNeeded(rate float64) int {
	return int(math.Ceil(rate * totp.Period.Seconds() * 1.1))
}

// run is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parseOptions(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		fmt.Fprintf(stderr, "deadbolt-load: %v\n", err)
		return 2
	}
	params, err := password.ParseParams(o.PasswordHash)
	if err != nil {
		fmt.Fprintf(stderr, "deadbolt-load: --password-hash: %v\n", err)
		return 2
	}
	rep, err := execute(ctx, o, params, stderr)
	if rep != nil {
		printReport(stdout, rep)
		if o.JSON != "" {
			b, jerr := json.MarshalIndent(rep, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(o.JSON, append(b, '\n'), 0o644)
			}
			if jerr != nil {
				fmt.Fprintf(stderr, "deadbolt-load: -json: %v\n", jerr)
				return 1
			}
		}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if err != nil {
		fmt.Fprintf(stderr, "deadbolt-load: %v\n", err)
		return 1
	}
	return 0
}

// execute provisions, runs the load and the ceiling, and builds the
// report. After an interrupt it reports what it measured.
func execute(ctx context.Context, o *options, params password.Params, stderr io.Writer) (*report, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var progress io.Writer = stderr
	if o.Quiet {
		progress = nil
	}
	say := func(format string, args ...any) {
		if !o.Quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	setupStart := time.Now()
	keys, err := openKeys(o.DB, o.KeyFile, log)
	if err != nil {
		return nil, err
	}
	db, err := openStore(ctx, o.DB, keys, log)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	say("setup: %d users with TOTP in account %q (%s)", o.Users, o.Account, db.Dialect())
	prov, err := provision(ctx, db, keys, provisionConfig{Account: o.Account, Fresh: o.Fresh, Prefix: o.Prefix, Users: o.Users, Params: params}, progress)
	if err != nil {
		return nil, err
	}
	say("setup: account %q: %d users created, %d reused (%d given a new password hash) in %s",
		prov.Account.Slug, prov.Created, prov.Reused, prov.Rehashed, time.Since(setupStart).Round(time.Millisecond))

	rep := &report{Mode: o.Mode, URLs: o.URLs, Clients: o.Clients, PlannedSeconds: o.Duration.Seconds(), WarmupSeconds: o.Warmup.Seconds(), Database: db.Dialect(),
		Account: prov.Account.Slug, Users: o.Users, UsersCreated: prov.Created, Errors: map[string]int64{}}
	var ceiling *ceilingResult
	measure := func() error {
		if o.CeilingDuration == 0 || ctx.Err() != nil {
			return nil
		}
		say("ceiling: Argon2id %s in-process, %d goroutines, %s", params, o.Clients, o.CeilingDuration)
		ceiling, err = measureCeiling(ctx, params, o.Clients, o.CeilingDuration)
		return err
	}
	if o.CeilingFirst {
		if err := measure(); err != nil {
			return nil, err
		}
	}

	cfg := loadConfig{Mode: o.Mode, URLs: o.URLs, Clients: o.Clients, Duration: o.Duration, Warmup: o.Warmup, Timeout: o.Timeout,
		Slug: prov.Account.Slug, Password: prov.Password, Progress: progress}
	d := &driver{cfg: cfg, client: newHTTPClient(o.Clients, len(o.URLs), o.Timeout), pool: newPool(prov.Users, time.Now)}
	if o.Mode == modeVerify {
		if d.stash, err = prepareChallenges(ctx, db, keys, prov, o.Warmup+o.Duration, progress); err != nil {
			return nil, err
		}
	}
	rep.SetupSeconds = time.Since(setupStart).Seconds()
	used, err := d.preflight(ctx)
	if err != nil {
		return nil, err
	}
	if o.Mode == modeSignIn {
		if err := checkServerParams(ctx, db, prov, used, params); err != nil {
			return nil, err
		}
	}
	if o.Warmup > 0 {
		say("warm-up: %s, not measured", o.Warmup)
		d.warmUp(ctx)
	}
	say("load: %s, %d clients, %s, %d users, %s", o.Mode, o.Clients, o.Duration, o.Users, strings.Join(o.URLs, ", "))
	res := d.run(ctx)
	rep.Interrupted = ctx.Err() != nil
	fillLoad(rep, res)

	if !o.CeilingFirst {
		if err := measure(); err != nil {
			return rep, err
		}
	}
	fillCeiling(rep, ceiling, params, o.URLs)
	return rep, nil
}

// checkServerParams fails if the servers rehashed the password of a user
// the preflight signed in: they hash with other parameters than ours, so
// every sign-in would pay a second hash and a write, and the ceiling would
// be of other parameters.
func checkServerParams(ctx context.Context, db *store.DB, prov *provisioned, users []int, params password.Params) error {
	h := password.NewHasher(params)
	for _, i := range users {
		if i < 0 {
			continue
		}
		u, err := db.FindUserByID(ctx, prov.Account.ID, prov.Users[i].ID)
		if err != nil {
			return err
		}
		if h.NeedsRehash(u.PasswordHash) {
			theirs := "other parameters"
			if parts := strings.Split(u.PasswordHash, "$"); len(parts) == 6 {
				theirs = parts[1] + ":" + parts[3]
			}
			return fmt.Errorf("the servers hash passwords with %s, not --password-hash %s: they rehashed a load user's password at sign-in; run again with --password-hash %s", theirs, params, theirs)
		}
	}
	return nil
}

func fillLoad(rep *report, res *loadResult) {
	rep.DurationSeconds = res.Elapsed.Seconds()
	rep.Completed = res.Completed
	rep.PerSecond = res.PerSecond()
	rep.Errors = res.Errors
	rep.ErrorsTotal = res.ErrorsTotal()
	rep.UserStalls, rep.StalledSeconds = res.Stalls, res.Stalled.Seconds()
	rep.InlineChallenge = res.Inline
	var sum time.Duration
	for _, l := range res.Latencies {
		sum += l
	}
	if n := len(res.Latencies); n > 0 {
		rep.Latency = latencyJSON{P50: ms(res.Percentile(.50)), P90: ms(res.Percentile(.90)), P99: ms(res.Percentile(.99)),
			Max: ms(res.Latencies[n-1]), Mean: ms(sum / time.Duration(n))}
	}
	// The rate the users allowed is what was done while any was free.
	rate := rep.PerSecond
	if busy := res.Elapsed - res.Stalled; res.Stalls > 0 && busy > 0 {
		rate = float64(res.Completed) / busy.Seconds()
	}
	rep.UsersNeeded = usersNeeded(rate)
}

func fillCeiling(rep *report, c *ceilingResult, params password.Params, urls []string) {
	if c == nil {
		return
	}
	rep.Ceiling = &ceilingJSON{Params: params.String(), HashesPerSecond: math.Round(c.PerSecond()*10) / 10, Hashes: c.Hashes,
		Seconds: c.Elapsed.Seconds(), Goroutines: c.Goroutines, AtOnce: c.Parallel}
	if c.PerSecond() <= 0 {
		return
	}
	if rep.Mode == modeVerify {
		rep.RatioNote = "not meaningful in verify mode: a verification computes no password hash"
		return
	}
	r := math.Round(rep.PerSecond/c.PerSecond()*1000) / 10
	rep.RatioPercent = &r
	if !allLoopback(urls) {
		rep.RatioNote = "the ceiling was measured on this machine, not on the servers"
	}
}

// allLoopback reports whether every URL names this machine.
func allLoopback(urls []string) bool {
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return false
		}
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

func printReport(w io.Writer, r *report) {
	unit := "sign-ins (password + TOTP)"
	if r.Mode == modeVerify {
		unit = "second-factor verifications (TOTP)"
	}
	fmt.Fprintf(w, "mode                %s\n", r.Mode)
	fmt.Fprintf(w, "urls                %s\n", strings.Join(r.URLs, ", "))
	fmt.Fprintf(w, "database            %s, account %s\n", r.Database, r.Account)
	fmt.Fprintf(w, "clients             %d\n", r.Clients)
	interrupted := ""
	if r.Interrupted {
		interrupted = ", interrupted"
	}
	warm := ""
	if r.WarmupSeconds > 0 {
		warm = fmt.Sprintf(", after %gs of warm-up", r.WarmupSeconds)
	}
	fmt.Fprintf(w, "duration            %.1fs (planned %gs%s%s)\n", r.DurationSeconds, r.PlannedSeconds, warm, interrupted)
	fmt.Fprintf(w, "users               %d (%d created by this run)\n", r.Users, r.UsersCreated)
	fmt.Fprintf(w, "completed           %d %s\n", r.Completed, unit)
	fmt.Fprintf(w, "per second          %.1f\n", r.PerSecond)
	fmt.Fprintf(w, "latency ms          p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	if r.ErrorsTotal == 0 {
		fmt.Fprintf(w, "errors              none\n")
	} else {
		var parts []string
		for _, k := range sortedErrors(r.Errors) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		fmt.Fprintf(w, "errors              %d: %s\n", r.ErrorsTotal, strings.Join(parts, ", "))
	}
	if r.UserStalls > 0 {
		fmt.Fprintf(w, "users ran out       %d times, %.1fs in all: every user had used the TOTP step, clients waited for the next;\n", r.UserStalls, r.StalledSeconds)
		fmt.Fprintf(w, "                    the rate is capped by -n: this one needs about -n %d\n", r.UsersNeeded)
	} else {
		fmt.Fprintf(w, "users ran out       never (this rate needs about -n %d)\n", r.UsersNeeded)
	}
	if r.InlineChallenge > 0 {
		fmt.Fprintf(w, "challenges          %d made during the load (too few made ahead): they competed with the server for the database\n", r.InlineChallenge)
	}
	if r.Ceiling == nil {
		fmt.Fprintf(w, "argon2id ceiling    not measured\n")
		return
	}
	fmt.Fprintf(w, "argon2id ceiling    %.1f hashes/s (%s, %d goroutines, at most %d at once, %.1fs, in-process)\n",
		r.Ceiling.HashesPerSecond, r.Ceiling.Params, r.Ceiling.Goroutines, r.Ceiling.AtOnce, r.Ceiling.Seconds)
	switch {
	case r.RatioPercent != nil:
		note := ""
		if r.RatioNote != "" {
			note = " (" + r.RatioNote + ")"
		}
		fmt.Fprintf(w, "ratio to the Argon2id ceiling: %.1f%%%s\n", *r.RatioPercent, note)
	case r.RatioNote != "":
		fmt.Fprintf(w, "ratio to the Argon2id ceiling: %s\n", r.RatioNote)
	}
}
