package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/oidc"
)

// The provider driven by a relying party in another language and library:
// the npm openid-client (panva's, certified by the OpenID Foundation),
// run under node from testdata/openid-client. The Go test is the browser;
// the node process is the application's server.

const nodeRPDir = "testdata/openid-client"

// One npm ci for the package's tests.
var (
	nodeInstall    sync.Once
	nodeInstallErr error
)

// nodeRP is the running node process.
type nodeRP struct {
	t      *testing.T
	o      *oidcEnv
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *strings.Builder
}

// needNodeRP installs the relying party's packages (npm ci, from the
// lock file) if they are not there yet, and skips without node or npm —
// fatal under CI, which installs both.
func needNodeRP(t *testing.T) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node is not installed: the openid-client test needs Node.js 20 or later")
	}
	if _, err := os.Stat(filepath.Join(nodeRPDir, "node_modules", "openid-client", "package.json")); err == nil {
		return
	}
	if _, err := exec.LookPath("npm"); err != nil {
		missing("npm is not installed and %s/node_modules is missing", nodeRPDir)
	}
	nodeInstall.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = nodeRPDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			nodeInstallErr = fmt.Errorf("npm ci in %s: %v\n%s", nodeRPDir, err, out)
		}
	})
	if nodeInstallErr != nil {
		missing("%v", nodeInstallErr)
	}
}

func (o *oidcEnv) nodeRP() *nodeRP {
	t := o.t
	t.Helper()
	needNodeRP(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "rp.mjs")
	cmd.Dir = nodeRPDir
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &nodeRP{t: t, o: o, in: in, out: sc, stderr: stderr}
}

// nodeAnswer is one answer of rp.mjs: ok, or the error's OAuth code.
type nodeAnswer struct {
	OK       bool            `json:"ok"`
	Error    string          `json:"error"`
	Message  string          `json:"message"`
	URL      string          `json:"url"`
	State    string          `json:"state"`
	Metadata map[string]any  `json:"metadata"`
	Userinfo map[string]any  `json:"userinfo"`
	Payload  map[string]any  `json:"payload"`
	Header   map[string]any  `json:"header"`
	Access   string          `json:"access_token"`
	Refresh  string          `json:"refresh_token"`
	IDToken  string          `json:"id_token"`
	Claims   json.RawMessage `json:"claims"`
}

// call sends a command with Deadbolt's clock skew and reads the answer.
func (n *nodeRP) call(op string, args map[string]any) nodeAnswer {
	n.t.Helper()
	cmd := map[string]any{"op": op, "skew": math.Round(time.Until(n.o.clock.Now()).Seconds())}
	for k, v := range args {
		cmd[k] = v
	}
	line, _ := json.Marshal(cmd)
	if _, err := n.in.Write(append(line, '\n')); err != nil {
		n.t.Fatalf("write to node: %v (stderr: %s)", err, n.stderr)
	}
	if !n.out.Scan() {
		n.t.Fatalf("node exited during %s: %v (stderr: %s)", op, n.out.Err(), n.stderr)
	}
	var a nodeAnswer
	if err := json.Unmarshal(n.out.Bytes(), &a); err != nil {
		n.t.Fatalf("node answered %q: %v", n.out.Bytes(), err)
	}
	return a
}

// must is call, failing the test on an error answer.
func (n *nodeRP) must(op string, args map[string]any) nodeAnswer {
	n.t.Helper()
	a := n.call(op, args)
	if !a.OK {
		n.t.Fatalf("openid-client %s: %s: %s", op, a.Error, a.Message)
	}
	return a
}

// refused is call, failing the test unless the answer is the error code.
func (n *nodeRP) refused(op string, args map[string]any, code string) {
	n.t.Helper()
	if a := n.call(op, args); a.OK || a.Error != code {
		n.t.Fatalf("openid-client %s = ok %v error %q (%s), want %s", op, a.OK, a.Error, a.Message, code)
	}
}

// sentTo is the URL the browser was redirected to at the application.
func (b *oBrowser) sentTo(resp *http.Response, body string) string {
	b.t.Helper()
	b.atApp(resp, body)
	loc, _ := resp.Location()
	return loc.String()
}

func TestOIDCOpenIDClient(t *testing.T) {
	needNodeRP(t)
	eachDB(t, func(t *testing.T, e *env) {
		o := e.withOIDC()
		const email, pw = "agent@acme.example", "correct horse battery staple"
		secretB32, _ := e.withTOTP(email, pw)
		agent, err := e.db.FindUserByEmail(context.Background(), e.acc.ID, email)
		if err != nil {
			t.Fatal(err)
		}
		c, sec := o.client(e.acc, oidc.ClientInput{BackchannelLogoutURI: o.rp.url + "/backchannel",
			PostLogoutRedirectURIs: []string{o.rp.url + "/signed-out"}})
		n := o.nodeRP()

		md := n.must("discover", map[string]any{"issuer": o.issuer("acme"), "client_id": c.ID, "client_secret": sec,
			"redirect_uri": o.rp.url + "/callback", "post_logout_redirect_uri": o.rp.url + "/signed-out"}).Metadata
		if md["issuer"] != o.issuer("acme") || md["end_session_endpoint"] != o.issuer("acme")+"/oidc/end_session" {
			t.Fatalf("openid-client's discovery: issuer %v end_session_endpoint %v", md["issuer"], md["end_session_endpoint"])
		}

		claimsOf := func(a nodeAnswer) idClaims {
			t.Helper()
			var cl idClaims
			if err := json.Unmarshal(a.Claims, &cl); err != nil {
				t.Fatalf("ID token claims %s: %v", a.Claims, err)
			}
			return cl
		}

		// Code + PKCE with TOTP: openid-client checks the state, the nonce,
		// and (non-repudiation checks) the ID token's signature against
		// the JWKS.
		b := o.browser()
		auth := n.must("authorize", nil)
		if resp, body := b.visit(auth.URL, nil); !strings.HasSuffix(resp.Request.URL.Path, "/accounts/acme/signin") {
			t.Fatalf("openid-client's authorization URL led to %s: %.200s", resp.Request.URL, body)
		}
		firstCallback := b.sentTo(b.signIn("acme", email, pw, secretB32, true))
		first := n.must("callback", map[string]any{"url": firstCallback})
		cl := claimsOf(first)
		if cl.Sub != agent.ID || cl.Email != email || cl.Role != "agent" || !hasAll(cl.AMR, "pwd", "otp", "mfa") || cl.ACR != "mfa" {
			t.Errorf("ID token claims = %+v, want the agent with pwd, otp and mfa", cl)
		}
		if v := n.must("verify", map[string]any{"jwt": first.IDToken, "kind": "id"}); v.Payload["sub"] != agent.ID {
			t.Errorf("jose's verification of the ID token: sub %v", v.Payload["sub"])
		}

		info := n.must("userinfo", map[string]any{"access_token": first.Access, "sub": agent.ID}).Userinfo
		if info["email"] != email || info["role"] != "agent" {
			t.Errorf("userinfo = %v, want the agent's email and role", info)
		}

		next := n.must("refresh", map[string]any{"refresh_token": first.Refresh})
		if next.Refresh == "" || next.Refresh == first.Refresh || next.Access == first.Access {
			t.Errorf("refresh gave refresh %q access %q: want new ones", next.Refresh, next.Access)
		}
		n.refused("refresh", map[string]any{"refresh_token": first.Refresh}, "invalid_grant")

		n.refused("callback", map[string]any{"url": firstCallback}, "invalid_grant")
		if got := e.auditCount(deadbolt.AuditOIDCCodeReplayed, nil); got != 1 {
			t.Errorf("oidc.code_replayed events = %d, want 1", got)
		}

		// A redirect URI that is not registered: Deadbolt answers itself.
		bad := n.must("authorize", map[string]any{"params": map[string]string{"redirect_uri": "https://evil.example/callback"}})
		if resp, body := o.browser().visit(bad.URL, nil); resp.StatusCode != http.StatusBadRequest || resp.Request.URL.Host == "evil.example" {
			t.Errorf("a wrong redirect URI = %d at %s: %.200s, want 400 here", resp.StatusCode, resp.Request.URL, body)
		}

		none := n.must("authorize", map[string]any{"params": map[string]string{"prompt": "none"}})
		n.refused("callback", map[string]any{"url": o.browser().sentTo(o.browser().visit(none.URL, nil))}, "login_required")

		// Step-up: from the remembered device only the password is asked;
		// acr_values=mfa makes Deadbolt ask for the code.
		b.visit(o.url+"/accounts/acme/signout", url.Values{})
		auth = n.must("authorize", nil)
		b.visit(auth.URL, nil)
		if cl := claimsOf(n.must("callback", map[string]any{"url": b.sentTo(b.signIn("acme", email, pw, "", false))})); cl.ACR != "pwd" || slices.Contains(cl.AMR, "mfa") {
			t.Fatalf("remembered device: acr %q amr %v, want pwd only", cl.ACR, cl.AMR)
		}
		auth = n.must("authorize", map[string]any{"params": map[string]string{"acr_values": "mfa"}})
		if resp, body := b.visit(auth.URL, nil); !strings.HasSuffix(resp.Request.URL.Path, "/security/confirm") {
			t.Fatalf("acr_values=mfa led to %s, want the step-up page: %.200s", resp.Request.URL, body)
		}
		o.clock.Advance(30 * time.Second)
		code := oathtool(t, secretB32, o.clock.Now())
		stepped := n.must("callback", map[string]any{"url": b.sentTo(b.visit(o.url+"/accounts/acme/security/confirm",
			url.Values{"method": {"totp"}, "code": {code}, "next": {"security"}}))})
		if cl := claimsOf(stepped); cl.ACR != "mfa" || !hasAll(cl.AMR, "otp", "mfa") {
			t.Fatalf("after step-up: acr %q amr %v, want mfa", cl.ACR, cl.AMR)
		}

		// Back-channel logout: the token sent when the person signs out
		// verifies with jose and names the session.
		sid := claimsOf(stepped).SID
		before := len(o.rp.logoutTokens())
		b.visit(o.url+"/accounts/acme/signout", url.Values{})
		deadline := time.After(10 * time.Second)
		for len(o.rp.logoutTokens()) == before {
			select {
			case <-o.rp.got:
			case <-deadline:
				t.Fatal("no logout token within 10 s of the sign-out")
			}
		}
		named := false
		for _, raw := range o.rp.logoutTokens()[before:] {
			v := n.must("verify", map[string]any{"jwt": raw, "kind": "logout"})
			named = named || v.Payload["sid"] == sid
		}
		if !named {
			t.Errorf("no logout token named the session's sid %q", sid)
		}
		n.refused("refresh", map[string]any{"refresh_token": stepped.Refresh}, "invalid_grant")

		// RP-initiated logout with openid-client's end-session URL.
		auth = n.must("authorize", nil)
		b.visit(auth.URL, nil)
		last := n.must("callback", map[string]any{"url": b.sentTo(b.signIn("acme", email, pw, "", false))})
		end := n.must("end_session", map[string]any{"id_token_hint": last.IDToken, "state": "bye"})
		resp, body := b.visit(end.URL, nil)
		if loc, err := resp.Location(); err != nil || !strings.HasPrefix(loc.String(), o.rp.url+"/signed-out") || loc.Query().Get("state") != "bye" {
			t.Fatalf("end_session = %d %v: %.200s, want the post-logout URI with the state", resp.StatusCode, loc, body)
		}
		if resp, _ := b.visit(o.url+"/accounts/acme/security", nil); !strings.HasSuffix(resp.Request.URL.Path, "/signin") {
			t.Errorf("after RP-initiated logout the security page is at %s, want the sign-in page", resp.Request.URL)
		}
		n.refused("refresh", map[string]any{"refresh_token": last.Refresh}, "invalid_grant")

		// Key rotation: the ID token of the old key still verifies against
		// what is published; the new key signs the next one; an hour on,
		// the old key is gone.
		if _, err := o.prov.RotateKeys(context.Background(), e.acc, oidc.AlgES256); err != nil {
			t.Fatal(err)
		}
		n.must("discover", map[string]any{"issuer": o.issuer("acme"), "client_id": c.ID, "client_secret": sec,
			"redirect_uri": o.rp.url + "/callback", "post_logout_redirect_uri": o.rp.url + "/signed-out"})
		if v := n.must("verify", map[string]any{"jwt": last.IDToken, "kind": "id"}); v.Header["alg"] != "RS256" {
			t.Errorf("the old ID token's alg = %v, want RS256", v.Header["alg"])
		}
		auth = n.must("authorize", nil)
		b.visit(auth.URL, nil)
		rotated := n.must("callback", map[string]any{"url": b.sentTo(b.signIn("acme", email, pw, "", false))})
		if v := n.must("verify", map[string]any{"jwt": rotated.IDToken, "kind": "id"}); v.Header["alg"] != "ES256" {
			t.Errorf("the new ID token's alg = %v, want ES256", v.Header["alg"])
		}
		o.clock.Advance(time.Hour)
		n.refused("verify", map[string]any{"jwt": last.IDToken, "kind": "id"}, "ERR_JWKS_NO_MATCHING_KEY")
	})
}
