package main

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt/internal/totp"
)

// TestParallelGuessesAcrossProcesses sends bursts of wrong passwords and
// wrong second-factor codes, all released at once and spread over three
// `deadbolt serve` processes on one PostgreSQL, and checks that no limit
// lets more tries be checked than it allows: every try must be reserved in
// the database before its (real, default-parameter) Argon2id hash or its
// code is checked.
func TestParallelGuessesAcrossProcesses(t *testing.T) {
	begin := time.Now()
	environ := postgresEnv(t)
	// The default Argon2id parameters, for the stored hashes and the dummy
	// hash of unknown emails alike: each check costs a real hash (~30 ms), a
	// wide window for racing tries if they were counted only after it.
	delete(environ, "DEADBOLT_PASSWORD_HASH")
	bin := filepath.Join(t.TempDir(), "deadbolt")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = startProc(t, bin, environ)
	}
	const pw = "quiet river under a copper moon"
	newAccount := func(t *testing.T, slug string) {
		t.Helper()
		if code, _, errOut := cli(t, environ, goodPassword, "account", "create", "--slug", slug, "--name", slug,
			"--owner-email", "owner@"+slug+".example", "--password-stdin"); code != 0 {
			t.Fatalf("account create %s: %s", slug, errOut)
		}
	}
	newEndUser := func(t *testing.T, slug, email string) {
		t.Helper()
		if code, _, errOut := cli(t, environ, pw, "user", "create", "--account", slug, "--email", email,
			"--name", "Guessed", "--role", "end_user", "--password-stdin"); code != 0 {
			t.Fatalf("user create %s: %s", email, errOut)
		}
	}

	t.Run("wrong passwords for one email", func(t *testing.T) {
		const slug, email, n = "par-one", "eve@par-one.example", 100
		newAccount(t, slug)
		newEndUser(t, slug, email)
		replies := guessBurst(t, n, func(i int) (*proc, string, any) {
			return procs[i%3], "/api/v1/accounts/" + slug + "/signin",
				map[string]string{"email": email, "password": fmt.Sprintf("wrong guess number %03d", i)}
		})
		checked := checkGuesses(t, replies, "401 invalid_credentials", 5, "429 rate_limited")
		causes := auditFailedCauses(t, environ, slug)
		if got := causes["wrong_password"]; got != checked {
			t.Errorf("signin.failed events with cause wrong_password = %d, want %d (one per 401; the refused tries were never checked)", got, checked)
		}
		if got, want := causes["rate_limited"], n-checked; got != want {
			t.Errorf("signin.failed events with cause rate_limited = %d, want %d (one per 429)", got, want)
		}
		t.Logf("%d parallel wrong passwords for one email: %s; audit causes %v", n, guessSummary(replies), causes)
	})

	t.Run("wrong passwords for many emails from one address", func(t *testing.T) {
		const slug, n = "par-spray", 150
		newAccount(t, slug)
		replies := guessBurst(t, n, func(i int) (*proc, string, any) {
			return procs[i%3], "/api/v1/accounts/" + slug + "/signin",
				map[string]string{"email": fmt.Sprintf("nobody%03d@%s.example", i, slug), "password": "wrong wrong wrong wrong"}
		})
		checked := checkGuesses(t, replies, "401 invalid_credentials", 100, "429 rate_limited")
		causes := auditFailedCauses(t, environ, slug)
		if got := causes["unknown_email"]; got != checked {
			t.Errorf("signin.failed events with cause unknown_email = %d, want %d (one per 401)", got, checked)
		}
		t.Logf("%d parallel wrong passwords for %d emails from 127.0.0.1: %s; audit causes %v", n, n, guessSummary(replies), causes)
	})

	t.Run("wrong codes on one challenge", func(t *testing.T) {
		const slug, email, n = "par-code", "eve@par-code.example", 50
		newAccount(t, slug)
		newEndUser(t, slug, email)
		key := enrolTOTPByAPI(t, procs, slug, email, pw)
		ch := totpChallenge(t, procs[0], slug, email, pw)
		wrong := wrongTOTPCodes(key, n)
		replies := guessBurst(t, n, func(i int) (*proc, string, any) {
			return procs[i%3], "/api/v1/signin/verify", map[string]any{"challenge_token": ch, "method": "totp", "code": wrong[i]}
		})
		checkGuesses(t, replies, "401 invalid_code", 5, "410 challenge_expired", "429 rate_limited")
		// The right code (of the next step: the current one may be the
		// confirmation's, refused as a replay) cannot revive the challenge.
		right := totp.Code(key, totp.Step(time.Now())+1)
		r := procs[1].post(t, "/api/v1/signin/verify", "", map[string]any{"challenge_token": ch, "method": "totp", "code": right})
		if r.status != 410 && r.status != 429 || r.str("session_token") != "" {
			t.Errorf("the right code after the burst = %d %v, want 410 challenge_expired or 429 rate_limited", r.status, r.body)
		}
		t.Logf("%d parallel wrong codes on one challenge: %s; then the right code: %d %s", n, guessSummary(replies), r.status, r.code())
	})

	t.Run("wrong codes across challenges", func(t *testing.T) {
		const slug, email, challenges, each = "par-codes", "eve@par-codes.example", 10, 5
		newAccount(t, slug)
		newEndUser(t, slug, email)
		key := enrolTOTPByAPI(t, procs, slug, email, pw)
		chs := make([]string, challenges)
		for i := range chs {
			chs[i] = totpChallenge(t, procs[i%3], slug, email, pw)
		}
		wrong := wrongTOTPCodes(key, challenges*each)
		replies := guessBurst(t, challenges*each, func(i int) (*proc, string, any) {
			return procs[i%3], "/api/v1/signin/verify", map[string]any{"challenge_token": chs[i%challenges], "method": "totp", "code": wrong[i]}
		})
		checkGuesses(t, replies, "401 invalid_code", 5, "429 rate_limited", "410 challenge_expired")
		t.Logf("%d parallel wrong codes, %d on each of %d challenges: %s", challenges*each, each, challenges, guessSummary(replies))
	})

	if d := time.Since(begin); d > 50*time.Second {
		t.Errorf("the test took %v, want well under 60 s", d.Round(time.Millisecond))
	}
}

// guessReply is one answer of a burst, as the test sees it.
type guessReply struct {
	status     int
	code       string // the error code, if any
	retryAfter string
	err        error
}

func (r guessReply) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", r.status, r.code))
}

// guessBurst prepares n requests (request i goes to the process, path and JSON
// body req(i) returns), each on a connection of its own, releases them all
// at once and returns their answers in order.
func guessBurst(t *testing.T, n int, req func(i int) (*proc, string, any)) []guessReply {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}}
	defer client.CloseIdleConnections()
	replies := make([]guessReply, n)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		p, path, body := req(i)
		b, _ := json.Marshal(body)
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			hr, err := http.NewRequest("POST", p.url+path, bytes.NewReader(b))
			if err != nil {
				ready.Done()
				replies[i].err = err
				return
			}
			hr.Header.Set("Content-Type", "application/json")
			ready.Done()
			<-start
			res, err := client.Do(hr)
			if err != nil {
				replies[i].err = err
				return
			}
			defer res.Body.Close()
			var out struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			json.NewDecoder(res.Body).Decode(&out)
			replies[i] = guessReply{status: res.StatusCode, code: out.Error.Code, retryAfter: res.Header.Get("Retry-After")}
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return replies
}

// checkGuesses checks that between 1 and most answers are checked (the
// answer checked, such as "401 invalid_credentials"), every other one is
// one of the refusals, and a 429 says when to come back. It returns how
// many were checked.
func checkGuesses(t *testing.T, replies []guessReply, checked string, most int, refusals ...string) int {
	t.Helper()
	n := 0
	for i, r := range replies {
		s := r.String()
		switch {
		case s == checked:
			n++
		case !slices.Contains(refusals, s):
			t.Errorf("request %d = %s, want %s or %s", i, s, checked, strings.Join(refusals, " or "))
		case r.status == 429:
			if secs, err := strconv.Atoi(r.retryAfter); err != nil || secs < 1 {
				t.Errorf("request %d = 429 with Retry-After %q, want a whole number of seconds ≥ 1", i, r.retryAfter)
			}
		}
	}
	if n > most {
		t.Errorf("%d of %d parallel tries answered %s, want at most %d: the limit was bypassed (%s)", n, len(replies), checked, most, guessSummary(replies))
	}
	if n == 0 {
		t.Errorf("no try of %d answered %s, want 1 to %d (%s)", len(replies), checked, most, guessSummary(replies))
	}
	return n
}

// guessSummary counts the answers by kind: "5×401 invalid_credentials, …".
func guessSummary(replies []guessReply) string {
	counts := map[string]int{}
	for _, r := range replies {
		counts[r.String()]++
	}
	var parts []string
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%d×%s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// auditFailedCauses counts the account's signin.failed events by their cause, as
// the audit command prints them.
func auditFailedCauses(t *testing.T, environ map[string]string, slug string) map[string]int {
	t.Helper()
	code, out, errOut := cli(t, environ, "", "audit", "--account", slug, "--type", "signin.failed", "--limit", "1000")
	if code != 0 {
		t.Fatalf("audit = %d, %s", code, errOut)
	}
	causes := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev struct {
			Type    string            `json:"type"`
			Details map[string]string `json:"details"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type != "signin.failed" {
			t.Fatalf("audit printed %q (%v), want a signin.failed event", line, err)
		}
		causes[ev.Details["cause"]]++
	}
	return causes
}

// enrolTOTPByAPI signs the end user in (no 2-step verification for end users;
// the fresh sign-in is the recent proof enrolment needs), enrols TOTP and
// confirms it, and returns the key.
func enrolTOTPByAPI(t *testing.T, procs []*proc, slug, email, pw string) []byte {
	t.Helper()
	r := procs[0].post(t, "/api/v1/accounts/"+slug+"/signin", "", map[string]string{"email": email, "password": pw})
	tok := r.str("session_token")
	if r.status != 200 || tok == "" {
		t.Fatalf("sign in of %s = %d %v, want 200 and a session", email, r.status, r.body)
	}
	r = procs[1].post(t, "/api/v1/me/factors", tok, map[string]string{"kind": "totp"})
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(r.str("secret"))
	fid, _ := r.body["factor"].(map[string]any)["id"].(string)
	if r.status != 201 || err != nil || len(key) == 0 || fid == "" {
		t.Fatalf("enrol TOTP = %d %v (%v), want 201, a secret and a factor", r.status, r.body, err)
	}
	if r := procs[2].post(t, "/api/v1/me/factors/"+fid+"/confirm", tok, map[string]string{"code": totp.Code(key, totp.Step(time.Now()))}); r.status != 200 {
		t.Fatalf("confirm TOTP = %d %v, want 200", r.status, r.body)
	}
	return key
}

// totpChallenge signs in with the right password and returns the challenge
// of the second factor.
func totpChallenge(t *testing.T, p *proc, slug, email, pw string) string {
	t.Helper()
	r := p.post(t, "/api/v1/accounts/"+slug+"/signin", "", map[string]string{"email": email, "password": pw})
	if r.status != 200 || r.str("status") != "second_factor_required" || r.str("challenge_token") == "" {
		t.Fatalf("sign in with TOTP on %s = %d %v, want 200 second_factor_required and a challenge", p.url, r.status, r.body)
	}
	return r.str("challenge_token")
}

// wrongTOTPCodes returns n distinct six-digit codes none of which is the code
// of a step near now (t-1 to t+2, so that the step may turn meanwhile).
func wrongTOTPCodes(key []byte, n int) []string {
	step := totp.Step(time.Now())
	near := map[string]bool{}
	for d := int64(-1); d <= 2; d++ {
		near[totp.Code(key, step+d)] = true
	}
	var codes []string
	for i := 0; len(codes) < n; i++ {
		c := fmt.Sprintf("%06d", (123457+i*7919)%1000000)
		if !near[c] {
			codes = append(codes, c)
		}
	}
	return codes
}
