package web_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/delivery"
	"github.com/deadbolt/deadbolt/internal/notify"
	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
	"github.com/deadbolt/deadbolt/internal/web"
)

// clock is the injected time of a test: it moves when told to, and by a
// microsecond at every reading, so that events have distinct, ordered
// times as they do in life.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a running service over a real store: an httptest server around
// the real handler, a real database, a fixed clock.
type env struct {
	t      *testing.T
	inbox  *inbox
	worker *delivery.Worker
	url    string
	db     *store.DB
	keys   *secret.Keyring
	hasher *password.Hasher
	clock  *clock
	// devices holds each user's device token from 2-step verification.
	devices map[string]string
	acc     *deadbolt.Account
	owner   *deadbolt.User
	svc     *signin.Service
}

// serve runs another server over the env's service and database, with
// options of its own (such as trusted proxies), and returns its URL.
func (e *env) serve(opts web.Options) string {
	e.t.Helper()
	opts.DB, opts.SignIn, opts.Now = e.db, e.svc, e.clock.Now
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := httptest.NewServer(web.NewServer(opts))
	e.t.Cleanup(srv.Close)
	return srv.URL
}

const ownerPassword = "a very long owner passphrase"

// eachDB runs the test on SQLite and on PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, db := range storetest.Databases {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			keys, err := secret.Generate()
			if err != nil {
				t.Fatal(err)
			}
			clk := newClock()
			fn(t, newEnvClock(t, db.OpenAt(t, keys, clk.Now), keys, "", clk))
		})
	}
}

// newClock is a test clock at a fixed instant in the middle of a TOTP step.
func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)} }

// newEnvSMTP is newEnv with email going to the SMTP server at smtpAddr
// (which the test runs itself, or not) instead of one of its own.
func newEnvSMTP(t *testing.T, db *store.DB, keys *secret.Keyring, smtpAddr string) *env {
	t.Helper()
	return newEnvClock(t, db, keys, smtpAddr, newClock())
}

// newEnvClock is newEnvSMTP on a given clock (the store's, too, ideally).
func newEnvClock(t *testing.T, db *store.DB, keys *secret.Keyring, smtpAddr string, clk *clock) *env {
	t.Helper()
	// Small Argon2id parameters: the tests are about the flow, not the hash.
	hasher := password.NewHasher(password.Params{Memory: 64, Time: 1, Threads: 1})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := newInbox()
	if smtpAddr == "" {
		smtpAddr = smtpServer(t, in)
	}
	mailer, err := notify.NewSMTP("smtp://"+smtpAddr, "deadbolt@acme.example", notify.SMTPOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// One message at a time: they arrive in the order they were queued, so
	// "the n-th message" means the same thing in every run.
	worker := delivery.New(delivery.Options{Store: db, Now: clk.Now, Logger: quiet, Poll: 20 * time.Millisecond, Concurrency: 1,
		Senders: map[deadbolt.Channel]deadbolt.Sender{
			deadbolt.ChannelEmail: mailer,
			deadbolt.ChannelSMS:   notify.NewWebhook(smsProvider(t, in), nil),
		}})
	runWorker(t, worker.Run)
	svc := signin.New(signin.Options{Store: db, Keys: keys, Hasher: hasher, Now: clk.Now, Logger: quiet, Notify: worker.Kick})
	handler := web.NewServer(web.Options{DB: db, SignIn: svc, Now: clk.Now, Logger: quiet, PublicURL: "http://127.0.0.1"})
	var fivexx atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		handler.ServeHTTP(rec, r)
		if rec.status >= 500 {
			fivexx.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		// Any 5xx in a test's run is a bug, whatever the test checked.
		if n := fivexx.Load(); n > 0 {
			t.Errorf("the service answered %d requests with a 5xx", n)
		}
	})
	e := &env{t: t, url: srv.URL, db: db, keys: keys, hasher: hasher, clock: clk, inbox: in, worker: worker, devices: map[string]string{}, svc: svc}
	if acc, err := db.FindAccountBySlug(context.Background(), "acme"); err == nil {
		// A second service over the same database (a restart).
		e.acc = acc
		e.owner, _ = db.FindUserByEmail(context.Background(), acc.ID, "owner@acme.example")
		return e
	}
	h, _ := hasher.Hash(ownerPassword)
	e.acc = &deadbolt.Account{Slug: "acme", Name: "Acme Support", Policy: deadbolt.DefaultPolicy()}
	e.owner = &deadbolt.User{Email: "owner@acme.example", Name: "Olive Owner", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword, PasswordHash: h}
	if err := db.CreateAccount(context.Background(), e.acc, e.owner); err != nil {
		t.Fatal(err)
	}
	return e
}

// user creates a user of the account with the password.
func (e *env) user(email string, role deadbolt.Role, pw string) *deadbolt.User {
	e.t.Helper()
	u := &deadbolt.User{AccountID: e.acc.ID, Email: email, Name: "User " + email, Role: role, AuthSource: deadbolt.AuthPassword}
	if pw != "" {
		u.PasswordHash, _ = e.hasher.Hash(pw)
	}
	if err := e.db.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// setPolicy changes the account's policy.
func (e *env) setPolicy(edit func(p *deadbolt.Policy)) {
	e.t.Helper()
	p := e.acc.Policy
	p.RememberDeviceDays = map[deadbolt.Role]int{}
	for k, v := range e.acc.Policy.RememberDeviceDays {
		p.RememberDeviceDays[k] = v
	}
	edit(&p)
	if err := p.Validate(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.UpdatePolicy(context.Background(), e.acc.ID, p); err != nil {
		e.t.Fatal(err)
	}
	e.acc.Policy = p
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

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func (r response) errCode() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func (r response) errField(key string) any {
	if e, ok := r.body["error"].(map[string]any); ok {
		return e[key]
	}
	return nil
}

// req sends a request; body is marshalled as JSON unless it is a string.
func (e *env) req(method, path, token string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.do(req)
}

// reqHeaders sends a raw body (maybe empty) with exactly the headers given.
func (e *env) reqHeaders(method, path, token, body string, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %q", req.Method, req.URL.Path, raw)
		}
	}
	return out
}

// want fails the test unless the response has the status (and error code).
func want(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.errCode() != code {
		t.Fatalf("%s = %d %s, want %d %q", what, r.status, r.raw, status, code)
	}
}

func (e *env) signIn(email, pw string, headers ...string) response {
	e.t.Helper()
	return e.req("POST", "/api/v1/accounts/acme/signin", "", map[string]string{"email": email, "password": pw}, headers...)
}

func (e *env) verify(challenge, method, code string, remember bool) response {
	e.t.Helper()
	return e.req("POST", "/api/v1/signin/verify", "", map[string]any{"challenge_token": challenge, "method": method,
		"code": code, "remember_device": remember})
}

// session signs a user without 2FA in and returns the session token. A
// team member's first sign-in goes through 2-step verification with the
// emailed code; the device token then spares them the next ones.
func (e *env) session(email, pw string) string {
	e.t.Helper()
	tok, _ := e.sessionDevice(email, pw)
	return tok
}

// sessionDevice is session that also returns the device token, if any.
func (e *env) sessionDevice(email, pw string) (session, device string) {
	e.t.Helper()
	var headers []string
	if d := e.devices[email]; d != "" {
		headers = []string{"Deadbolt-Device", d}
	}
	e.settle()
	before := len(e.inbox.to(email))
	r := e.signIn(email, pw, headers...)
	if r.status == 200 && r.str("status") == "device_verification_required" {
		code := e.inbox.waitCode(e.t, email, before+1)
		r = e.verify(r.str("challenge_token"), "email", code, false)
		if d := r.str("device_token"); d != "" {
			e.devices[email] = d
		}
	}
	if r.status != 200 || r.str("status") != "signed_in" {
		e.t.Fatalf("sign in %s = %d %s, want signed_in", email, r.status, r.raw)
	}
	return r.str("session_token"), e.devices[email]
}

// enrolment signs in a user whom the policy makes set up 2FA and returns
// the enrolment challenge. From a device the user has not verified, 2-step
// verification comes first (the emailed code); its device token is kept.
func (e *env) enrolment(email, pw string) string {
	e.t.Helper()
	var headers []string
	if d := e.devices[email]; d != "" {
		headers = []string{"Deadbolt-Device", d}
	}
	e.settle()
	before := len(e.inbox.to(email))
	r := e.signIn(email, pw, headers...)
	if r.status == 200 && r.str("status") == "device_verification_required" {
		r = e.verify(r.str("challenge_token"), "email", e.inbox.waitCode(e.t, email, before+1), false)
		if d := r.str("device_token"); d != "" {
			e.devices[email] = d
		}
	}
	if r.status != 200 || r.str("status") != "enrollment_required" || !strings.HasPrefix(r.str("challenge_token"), "dbc_") {
		e.t.Fatalf("sign in %s = %d %s, want enrollment_required", email, r.status, r.raw)
	}
	return r.str("challenge_token")
}

// settle waits until every queued message has been delivered, so that
// counting what arrived says what was sent.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		st, err := e.db.MessageStats(context.Background(), time.Time{})
		if err != nil {
			e.t.Fatal(err)
		}
		if st.Queued == 0 {
			return
		}
		e.worker.Kick()
		select {
		case <-e.inbox.arrived:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			e.t.Fatalf("messages still queued after 10 s: %+v", st)
		}
	}
}

// oathtool returns the TOTP code of the base32 secret at the time, as the
// independent client Debian ships computes it.
func oathtool(t *testing.T, secretB32 string, at time.Time) string {
	t.Helper()
	if _, err := exec.LookPath("oathtool"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("oathtool is not installed (apt-get install oathtool)")
		}
		t.Skip("oathtool is not installed")
	}
	out, err := exec.Command("oathtool", "--totp", "-b", "--now", at.UTC().Format("2006-01-02 15:04:05 UTC"), secretB32).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// enrolTOTP sets up an authenticator app for the bearer (session or
// enrolment challenge) and returns the secret and the confirmation answer.
func (e *env) enrolTOTP(token string) (secretB32 string, confirm response) {
	e.t.Helper()
	r := e.req("POST", "/api/v1/me/factors", token, map[string]string{"kind": "totp"})
	if r.status != 201 {
		e.t.Fatalf("enrol totp = %d %s", r.status, r.raw)
	}
	secretB32 = r.str("secret")
	factor := r.body["factor"].(map[string]any)
	code := oathtool(e.t, secretB32, e.clock.Now())
	confirm = e.req("POST", "/api/v1/me/factors/"+factor["id"].(string)+"/confirm", token, map[string]string{"code": code})
	if confirm.status != 200 {
		e.t.Fatalf("confirm totp = %d %s", confirm.status, confirm.raw)
	}
	return secretB32, confirm
}

// stepUpTOTP proves the authenticator app again on the session, with the
// next step's code (the clock moves on a step, so no code is replayed): a
// factor just set up is no step-up by itself.
func (e *env) stepUpTOTP(token, secretB32 string) {
	e.t.Helper()
	e.clock.Advance(30 * time.Second)
	r := e.req("POST", "/api/v1/me/step-up", token, map[string]string{"method": "totp", "code": oathtool(e.t, secretB32, e.clock.Now())})
	if r.status != 200 {
		e.t.Fatalf("step-up with totp = %d %s", r.status, r.raw)
	}
}

// enrolTOTPStepUp sets up an authenticator app and proves it again, for a
// session that goes on to step-up actions.
func (e *env) enrolTOTPStepUp(token string) string {
	e.t.Helper()
	secretB32, _ := e.enrolTOTP(token)
	e.stepUpTOTP(token, secretB32)
	return secretB32
}

// withTOTP makes a user with an authenticator app and returns the secret
// and the recovery codes. The clock moves on a step, so the confirmation
// code is not the current one.
func (e *env) withTOTP(email, pw string) (string, []string) {
	e.t.Helper()
	e.user(email, deadbolt.RoleAgent, pw)
	tok := e.session(email, pw)
	secretB32, conf := e.enrolTOTP(tok)
	var codes []string
	for _, c := range conf.body["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	if r := e.req("POST", "/api/v1/signout", tok, nil); r.status != 204 {
		e.t.Fatalf("sign out = %d %s", r.status, r.raw)
	}
	e.clock.Advance(30 * time.Second)
	return secretB32, codes
}

// challenge signs in with a password and expects a second-factor challenge.
func (e *env) challenge(email, pw string, headers ...string) string {
	e.t.Helper()
	r := e.signIn(email, pw, headers...)
	if r.status != 200 || r.str("status") != "second_factor_required" {
		e.t.Fatalf("sign in %s = %d %s, want second_factor_required", email, r.status, r.raw)
	}
	return r.str("challenge_token")
}

// base32NoPad decodes an authenticator key as apps take it.
func base32NoPad(s string) ([]byte, error) {
	return base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(s))
}
