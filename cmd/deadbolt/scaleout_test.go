package main

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt/internal/totp"
)

// TestScaleOut runs three `deadbolt serve` processes on one PostgreSQL and
// checks that they behave as one service: a session made on one works on
// all, a TOTP code used on one is refused on the others, attempt and send
// limits are shared, and stopping one under load costs only its own
// in-flight requests.
func TestScaleOut(t *testing.T) {
	environ := postgresEnv(t)
	bin := filepath.Join(t.TempDir(), "deadbolt")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if code, _, errOut := cli(t, environ, goodPassword, "account", "create", "--slug", "scale", "--name", "Scale",
		"--owner-email", "owner@scale.example", "--password-stdin"); code != 0 {
		t.Fatalf("account create: %s", errOut)
	}
	const pw = "quiet river under a copper moon"
	if code, _, errOut := cli(t, environ, pw, "user", "create", "--account", "scale", "--email", "eve@scale.example",
		"--name", "Eve", "--role", "end_user", "--password-stdin"); code != 0 {
		t.Fatalf("user create: %s", errOut)
	}

	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = startProc(t, bin, environ)
	}
	a, b, c := procs[0], procs[1], procs[2]

	// A session made on one process works on all.
	r := a.post(t, "/api/v1/accounts/scale/signin", "", map[string]string{"email": "eve@scale.example", "password": pw})
	tok := r.str("session_token")
	if r.status != 200 || tok == "" {
		t.Fatalf("sign in on A = %d %v", r.status, r.body)
	}
	for _, p := range procs {
		if r := p.get(t, "/api/v1/me", tok); r.status != 200 {
			t.Errorf("session from A on %s = %d", p.url, r.status)
		}
	}

	// TOTP enrolled on B, confirmed on C.
	r = b.post(t, "/api/v1/me/factors", tok, map[string]string{"kind": "totp"})
	key, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(r.str("secret"))
	fid, _ := r.body["factor"].(map[string]any)["id"].(string)
	step := totp.Step(time.Now())
	if r := c.post(t, "/api/v1/me/factors/"+fid+"/confirm", tok, map[string]string{"code": totp.Code(key, step)}); r.status != 200 {
		t.Fatalf("confirm on C = %d %v", r.status, r.body)
	}
	// The next step's code (one step of drift is allowed) signs in on B...
	next := totp.Code(key, step+1)
	ch := a.post(t, "/api/v1/accounts/scale/signin", "", map[string]string{"email": "eve@scale.example", "password": pw}).str("challenge_token")
	if r := b.post(t, "/api/v1/signin/verify", "", map[string]any{"challenge_token": ch, "method": "totp", "code": next}); r.status != 200 {
		t.Fatalf("verify on B = %d %v", r.status, r.body)
	}
	// ...and is refused on A and C.
	for _, p := range []*proc{a, c} {
		ch := p.post(t, "/api/v1/accounts/scale/signin", "", map[string]string{"email": "eve@scale.example", "password": pw}).str("challenge_token")
		if r := p.post(t, "/api/v1/signin/verify", "", map[string]any{"challenge_token": ch, "method": "totp", "code": next}); r.status != 401 || r.code() != "invalid_code" {
			t.Errorf("the used code on %s = %d %v, want 401 invalid_code", p.url, r.status, r.body)
		}
	}
	// Wrong codes on all three count together: the 5th starts the back-off.
	// (Two failures so far, the replays above.)
	for i := range 3 {
		p := procs[i]
		ch := p.post(t, "/api/v1/accounts/scale/signin", "", map[string]string{"email": "eve@scale.example", "password": pw}).str("challenge_token")
		p.post(t, "/api/v1/signin/verify", "", map[string]any{"challenge_token": ch, "method": "totp", "code": "000000"})
	}
	for _, p := range procs {
		ch := p.post(t, "/api/v1/accounts/scale/signin", "", map[string]string{"email": "eve@scale.example", "password": pw}).str("challenge_token")
		if r := p.post(t, "/api/v1/signin/verify", "", map[string]any{"challenge_token": ch, "method": "totp", "code": totp.Code(key, totp.Step(time.Now()))}); r.status != 429 {
			t.Errorf("after 5 failures across processes, %s = %d %v, want 429", p.url, r.status, r.body)
		}
	}
	// Password failures and their pause are shared too.
	for i := range 5 {
		procs[i%3].post(t, "/api/v1/accounts/scale/signin", "", map[string]string{"email": "eve@scale.example", "password": "wrong wrong wrong"})
	}
	for _, p := range procs {
		if r := p.post(t, "/api/v1/accounts/scale/signin", "", map[string]string{"email": "eve@scale.example", "password": pw}); r.status != 429 {
			t.Errorf("password pause on %s = %d, want 429", p.url, r.status)
		}
	}
	// Send limits: an email code asked on A is in its cool-down on B and C.
	// The owner (no 2FA yet, unknown device) gets 2-step verification.
	ch = a.post(t, "/api/v1/accounts/scale/signin", "", map[string]string{"email": "owner@scale.example", "password": goodPassword}).str("challenge_token")
	if ch == "" {
		t.Fatal("owner sign-in did not start 2-step verification")
	}
	for _, p := range []*proc{b, c} {
		if r := p.post(t, "/api/v1/signin/send", "", map[string]string{"challenge_token": ch, "method": "email"}); r.status != 429 {
			t.Errorf("resend within the cool-down on %s = %d %v, want 429", p.url, r.status, r.body)
		}
	}
	// The code, from whichever process's worker delivered it, works on C.
	code := waitOutboxCode(t, procs, "owner@scale.example")
	if r := c.post(t, "/api/v1/signin/verify", "", map[string]any{"challenge_token": ch, "method": "email", "code": code}); r.status != 200 {
		t.Errorf("2-step code on C = %d %v", r.status, r.body)
	}

	// Stopping one process under load costs only its own requests.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var stopped atomic.Bool
	var mu sync.Mutex
	fails := map[string]int{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := procs[w%3]
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", p.url+"/api/v1/me", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := http.DefaultClient.Do(req)
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				switch {
				case err != nil && p == c && stopped.Load():
					// A new request to the stopping process: refused, never
					// half-answered (an HTTP error would fall below).
					fails["stopped process, connection refused"]++
				case err != nil:
					fails[p.url+": "+err.Error()]++
				case res.StatusCode != 200:
					fails[fmt.Sprintf("%s: %d", p.url, res.StatusCode)]++
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}
		}()
	}
	time.Sleep(time.Second) // load on all three, then stop one
	// From the signal on, C refuses new connections (its requests in flight
	// finish); A and B must not notice anything.
	stopped.Store(true)
	c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("C did not stop cleanly: %v\n%s", err, c.logs.String())
	}
	wg.Wait()
	for k, n := range fails {
		if k != "stopped process, connection refused" {
			t.Errorf("%d failures: %s", n, k)
		}
	}
}

type proc struct {
	url  string
	cmd  *exec.Cmd
	logs *syncBuffer
}

func startProc(t *testing.T, bin string, environ map[string]string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = os.Environ()
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "DEADBOLT_ADDR="+addr)
	p := &proc{url: "http://" + addr, cmd: cmd, logs: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(p.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready; logs:\n%s", p.url, p.logs.String())
	return nil
}

type answer struct {
	status int
	body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }
func (a answer) code() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (p *proc) do(t *testing.T, method, path, token string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, p.url, path, err)
	}
	defer res.Body.Close()
	a := answer{status: res.StatusCode}
	json.NewDecoder(res.Body).Decode(&a.body)
	return a
}

func (p *proc) post(t *testing.T, path, token string, body any) answer {
	return p.do(t, "POST", path, token, body)
}
func (p *proc) get(t *testing.T, path, token string) answer { return p.do(t, "GET", path, token, nil) }

// waitOutboxCode finds the newest code emailed to addr in the development
// outboxes of the processes (the worker of any of them may have sent it).
func waitOutboxCode(t *testing.T, procs []*proc, addr string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	codeRE := regexp.MustCompile(`\b(\d{6})\b`)
	for time.Now().Before(deadline) {
		for _, p := range procs {
			if p.cmd.ProcessState != nil {
				continue
			}
			res, err := http.Get(p.url + "/dev/outbox")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			page := string(b)
			if i := strings.Index(page, "<td>"+addr+"</td>"); i >= 0 {
				if m := codeRE.FindStringSubmatch(page[i:]); m != nil {
					return m[1]
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no code for %s in any outbox", addr)
	return ""
}
