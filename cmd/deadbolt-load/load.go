package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/totp"
)

// Modes.
const (
	modeSignIn = "signin" // password, then TOTP code
	modeVerify = "verify" // the TOTP code of a challenge made ahead
)

// errorPause is how long a client waits after a failed request before its
// next one, so that a server that is down or refusing is not hammered.
const errorPause = 100 * time.Millisecond

// pool hands out users whose TOTP code may be sent in the current step. A
// factor accepts each step once, and never an older step after a newer one,
// so a user is handed to one client at a time and at most once per step.
type pool struct {
	mu    sync.Mutex
	users []*loadUser
	step  int64 // the step free was filled for
	free  []int
	now   func() time.Time
	// onCode, if set, is told of every code about to be sent (tests).
	onCode func(user int, step int64)

	stalls       int           // times the free users ran out
	stalled      time.Duration // time spent with none free
	stalledSince time.Time
}

func newPool(users []*loadUser, now func() time.Time) *pool {
	return &pool{users: users, step: -1 << 62, now: now}
}

// refill makes every idle user that has not sent a code for step s free.
// Called with mu held.
func (p *pool) refill(s int64, now time.Time) {
	p.step = s
	p.free = p.free[:0]
	for i, u := range p.users {
		if !u.busy && u.lastStep < s {
			p.free = append(p.free, i)
		}
	}
	if len(p.free) > 0 && !p.stalledSince.IsZero() {
		p.stalled += now.Sub(p.stalledSince)
		p.stalledSince = time.Time{}
	}
}

// acquire returns a user free in the current step, waiting for the next
// step if there is none; it fails only when ctx ends.
func (p *pool) acquire(ctx context.Context) (int, error) {
	for {
		p.mu.Lock()
		now := p.now()
		s := totp.Step(now)
		if s > p.step {
			p.refill(s, now)
		}
		if n := len(p.free); n > 0 {
			i := p.free[n-1]
			p.free = p.free[:n-1]
			p.users[i].busy = true
			p.mu.Unlock()
			return i, nil
		}
		if p.stalledSince.IsZero() {
			p.stalledSince = now
			p.stalls++
		}
		wait := time.Unix((s+1)*int64(totp.Period/time.Second), 0).Sub(now)
		p.mu.Unlock()
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return -1, ctx.Err()
		case <-t.C:
		}
	}
}

// use records that the user's code for the current step is about to be
// sent and returns it with its step. ok is false if the user already sent
// one for this step (only if the clock went back): nothing may be sent.
func (p *pool) use(i int) (code string, step int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[i]
	step = totp.Step(p.now())
	if step <= u.lastStep {
		return "", step, false
	}
	u.lastStep = step
	if p.onCode != nil {
		p.onCode(i, step)
	}
	return totp.Code(u.Secret, step), step, true
}

// release gives the user back.
func (p *pool) release(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[i]
	u.busy = false
	if u.lastStep < p.step {
		p.free = append(p.free, i)
	}
}

// stallStats returns how often and how long the pool ran out, up to now.
func (p *pool) stallStats(now time.Time) (int, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.stalled
	if !p.stalledSince.IsZero() {
		d += now.Sub(p.stalledSince)
	}
	return p.stalls, d
}

// waiting reports whether clients are waiting for a free user.
func (p *pool) waiting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.stalledSince.IsZero()
}

// resetStats forgets the stalls so far (those of the preflight).
func (p *pool) resetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalls, p.stalled, p.stalledSince = 0, 0, time.Time{}
}

// loadConfig describes a load run.
type loadConfig struct {
	Mode     string
	URLs     []string
	Clients  int
	Duration time.Duration
	Warmup   time.Duration // unmeasured load before the run
	Timeout  time.Duration // per request
	Slug     string
	Password string
	Progress io.Writer // per-second progress; nil for none
}

// loadResult is what a load run measured.
type loadResult struct {
	Elapsed   time.Duration
	Completed int64
	Latencies []time.Duration // of the completed operations, sorted
	Errors    map[string]int64
	Stalls    int
	Stalled   time.Duration
	Inline    int64 // verify mode: challenges made during the load
}

// ErrorsTotal is the number of failed operations.
func (r *loadResult) ErrorsTotal() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// PerSecond is completed operations per second of the run.
func (r *loadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Completed) / r.Elapsed.Seconds()
}

// Percentile returns the q-quantile (0..1) of the latencies, nearest rank.
func (r *loadResult) Percentile(q float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	k := int(q*float64(n)+0.999999999) - 1
	return r.Latencies[min(max(k, 0), n-1)]
}

// newHTTPClient returns the one client of a run: enough idle connections
// per host for every client to keep its own.
func newHTTPClient(clients, hosts int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = clients
	tr.MaxIdleConns = clients * max(hosts, 1)
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: timeout}
}

// apiAnswer is the part of an API answer the harness reads.
type apiAnswer struct {
	Status         string `json:"status"`
	ChallengeToken string `json:"challenge_token"`
	Error          struct {
		Code string `json:"code"`
	} `json:"error"`
}

// errAborted marks a request cut by the end of the run: not an error of
// the service, and not counted.
var errAborted = errors.New("aborted by the end of the run")

// opError is a failed operation with the code it is counted under.
type opError struct {
	code  string
	pause bool // the client should wait before its next request
}

func (e *opError) Error() string { return e.code }

// driver runs the requests of one run.
type driver struct {
	cfg    loadConfig
	client *http.Client
	pool   *pool
	stash  *challengeStash // verify mode
	next   atomic.Uint64   // round-robin over the URLs
	// lastUser is the user of the latest operation (for the preflight).
	lastUser atomic.Int64
}

func (d *driver) url(path string) string {
	i := d.next.Add(1) - 1
	return d.cfg.URLs[i%uint64(len(d.cfg.URLs))] + path
}

// post sends a JSON request and decodes the answer; it returns an *opError
// for anything but a 200 with the wanted status.
func (d *driver) post(ctx context.Context, path string, body any, want string, headers ...string) (*apiAnswer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url(path), bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "deadbolt-load")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errAborted
		}
		return nil, &opError{code: "transport", pause: true}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, errAborted
		}
		return nil, &opError{code: "transport", pause: true}
	}
	var a apiAnswer
	jsonErr := json.Unmarshal(raw, &a)
	if resp.StatusCode != http.StatusOK {
		code := a.Error.Code
		if jsonErr != nil || code == "" {
			code = "http_" + strconv.Itoa(resp.StatusCode)
		}
		return nil, &opError{code: code, pause: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests}
	}
	if jsonErr != nil {
		return nil, &opError{code: "bad_json"}
	}
	if a.Status != want {
		return nil, &opError{code: "unexpected_" + a.Status}
	}
	return &a, nil
}

// once runs one operation with a user from the pool: a complete sign-in or
// one verification. It returns the time it took. No operation starts once
// run has ended; its requests run under ctx.
func (d *driver) once(run, ctx context.Context) (time.Duration, error) {
	user, err := d.pool.acquire(run)
	if err != nil {
		return 0, errAborted
	}
	defer d.pool.release(user)
	d.lastUser.Store(int64(user))
	u := d.pool.users[user]
	start := time.Now()
	var token string
	switch d.cfg.Mode {
	case modeSignIn:
		a, err := d.post(ctx, "/api/v1/accounts/"+d.cfg.Slug+"/signin",
			map[string]string{"email": u.Email, "password": d.cfg.Password}, "second_factor_required", "Deadbolt-Device", u.Device)
		if err != nil {
			return 0, err
		}
		token = a.ChallengeToken
	case modeVerify:
		if token, err = d.stash.take(ctx, user); err != nil {
			if ctx.Err() != nil {
				return 0, errAborted
			}
			return 0, &opError{code: "challenge_setup", pause: true}
		}
		start = time.Now()
	}
	code, _, ok := d.pool.use(user)
	if !ok {
		return 0, &opError{code: "clock_went_back"}
	}
	if _, err := d.post(ctx, "/api/v1/signin/verify",
		map[string]string{"challenge_token": token, "method": "totp", "code": code}, "signed_in"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// worker is one client's counts.
type worker struct {
	lat    []time.Duration
	errors map[string]int64
}

// run drives the load for cfg.Duration or until ctx ends, whichever is
// first, and returns what it measured. Operations under way at the end
// finish (within the request timeout) and count: cutting them off would
// only make the server log cancelled requests.
func (d *driver) run(ctx context.Context) *loadResult {
	return d.runFor(ctx, d.cfg.Duration, d.cfg.Progress)
}

// warmUp drives the load for cfg.Warmup without measuring it, so that the
// measured run finds the server's caches, connections and heap warm.
func (d *driver) warmUp(ctx context.Context) {
	if d.cfg.Warmup > 0 {
		d.runFor(ctx, d.cfg.Warmup, nil)
	}
}

func (d *driver) runFor(ctx context.Context, dur time.Duration, progress io.Writer) *loadResult {
	runCtx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	reqCtx := context.WithoutCancel(ctx)
	var completed, failed atomic.Int64
	d.pool.resetStats()
	var inline0 int64
	if d.stash != nil {
		inline0 = d.stash.inline.Load()
	}
	workers := make([]*worker, d.cfg.Clients)
	start := time.Now()
	stopProgress := startProgress(progress, start, &completed, &failed, d.pool)
	var wg sync.WaitGroup
	for w := range workers {
		wk := &worker{errors: map[string]int64{}}
		workers[w] = wk
		wg.Go(func() {
			for runCtx.Err() == nil {
				lat, err := d.once(runCtx, reqCtx)
				var oe *opError
				switch {
				case err == nil:
					wk.lat = append(wk.lat, lat)
					completed.Add(1)
				case errors.Is(err, errAborted):
				case errors.As(err, &oe):
					wk.errors[oe.code]++
					failed.Add(1)
					if oe.pause {
						sleep(runCtx, errorPause)
					}
				default:
					wk.errors["harness"]++
					failed.Add(1)
					sleep(runCtx, errorPause)
				}
			}
		})
	}
	wg.Wait()
	end := time.Now()
	stopProgress()
	r := &loadResult{Elapsed: end.Sub(start), Errors: map[string]int64{}}
	for _, wk := range workers {
		r.Latencies = append(r.Latencies, wk.lat...)
		for k, v := range wk.errors {
			r.Errors[k] += v
		}
	}
	slices.Sort(r.Latencies)
	r.Completed = int64(len(r.Latencies))
	r.Stalls, r.Stalled = d.pool.stallStats(end)
	if d.stash != nil {
		r.Inline = d.stash.inline.Load() - inline0
	}
	return r
}

// preflight runs one operation against each URL before the load, so that
// a wrong URL, account, key file or password stops the run at once
// instead of filling it (and the service's attempt counters) with errors.
func (d *driver) preflight(ctx context.Context) (users []int, err error) {
	tctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout+time.Minute)
	defer cancel()
	for _, url := range d.cfg.URLs {
		cfg := d.cfg
		cfg.URLs = []string{url}
		one := &driver{cfg: cfg, client: d.client, pool: d.pool, stash: d.stash}
		one.lastUser.Store(-1)
		_, err := one.once(tctx, tctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var oe *opError
		switch {
		case errors.As(err, &oe):
			return nil, fmt.Errorf("a first %s against %s failed: %s", opName(d.cfg.Mode), url, oe.code)
		case err != nil:
			return nil, fmt.Errorf("a first %s against %s failed: %w", opName(d.cfg.Mode), url, err)
		}
		users = append(users, int(one.lastUser.Load()))
	}
	return users, nil
}

func opName(mode string) string {
	if mode == modeVerify {
		return "verification"
	}
	return "sign-in"
}

// startProgress prints a line a second: elapsed, completed, rate, errors.
func startProgress(w io.Writer, start time.Time, completed, failed *atomic.Int64, p *pool) (stop func()) {
	var last int64
	return startTicker(w, func(time.Duration) string {
		now := time.Now()
		c, f := completed.Load(), failed.Load()
		el := now.Sub(start)
		line := fmt.Sprintf("%5.1fs  completed %d  %.1f/s (last second %d)  errors %d", el.Seconds(), c, float64(c)/el.Seconds(), c-last, f)
		last = c
		if p.waiting() {
			line += "  [every user has used this TOTP step: waiting for the next]"
		}
		return line
	})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ceilingResult is the bare Argon2id rate of this machine.
type ceilingResult struct {
	Hashes     int64
	Elapsed    time.Duration
	Goroutines int
	Parallel   int // hashes computed at once at most
}

func (c *ceilingResult) PerSecond() float64 {
	if c == nil || c.Elapsed <= 0 {
		return 0
	}
	return float64(c.Hashes) / c.Elapsed.Seconds()
}

// measureCeiling verifies a password against a hash of the parameters on
// goroutines goroutines for d, in-process, and counts the hashes. At most
// GOMAXPROCS hashes run at once: more only share the same cores and
// caches, and the ceiling is the best this machine does.
func measureCeiling(ctx context.Context, params password.Params, goroutines int, d time.Duration) (*ceilingResult, error) {
	h := password.NewHasher(params)
	const pw = "a password for measuring Argon2id"
	encoded, err := h.Hash(pw)
	if err != nil {
		return nil, err
	}
	par := min(goroutines, runtime.GOMAXPROCS(0))
	sem := make(chan struct{}, par)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var bad atomic.Bool
	start := time.Now()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for ctx.Err() == nil {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				ok, err := h.Verify(pw, encoded)
				<-sem
				if !ok || err != nil {
					bad.Store(true)
					return
				}
				if ctx.Err() == nil {
					n.Add(1)
				}
			}
		})
	}
	<-ctx.Done()
	elapsed := time.Since(start)
	wg.Wait()
	if bad.Load() {
		return nil, errors.New("argon2id ceiling: a hash did not verify")
	}
	return &ceilingResult{Hashes: n.Load(), Elapsed: elapsed, Goroutines: goroutines, Parallel: par}, nil
}

// sortedErrors lists error codes, most frequent first.
func sortedErrors(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
