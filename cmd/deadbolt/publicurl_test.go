package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestServePublicURL: a plain-HTTP public URL is refused off this machine,
// with one line that says what to do; on loopback it serves as before, and
// an https:// URL serves (behind the TLS-terminating proxy it implies).
func TestServePublicURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want string // in stderr; "" means it serves
	}{
		{"http://desk.example.com", "use an https:// public URL"},
		{"http://192.0.2.10:8080", "use an https:// public URL"},
		{"http://[2001:db8::1]", "use an https:// public URL"},
		{"ftp://desk.example.com", "must be an http:// or https:// URL"},
		{"https://", "must be an http:// or https:// URL"},
		{"http://localhost:9999", ""},
		{"http://127.0.0.2", ""},
		{"http://[::1]:9999", ""},
		{"https://desk.example.com", ""},
	} {
		t.Run(tt.url, func(t *testing.T) {
			environ := sqliteEnv(t)
			environ["DEADBOLT_PUBLIC_URL"] = tt.url
			if tt.want != "" {
				code, _, errOut := cli(t, environ, "", "serve")
				if code == 0 || !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
					t.Errorf("serve --public-url %s = %d %q, want a non-zero exit and one line saying %q", tt.url, code, errOut, tt.want)
				}
				return
			}
			environ["DEADBOLT_ADDR"] = freeAddr(t)
			done, logs := serveInBackground(t, environ)
			waitReady(t, "http://"+environ["DEADBOLT_ADDR"]+"/healthz", done, logs)
		})
	}
}

// TestServeTrustedProxies: a bad entry stops the service at start.
func TestServeTrustedProxies(t *testing.T) {
	environ := sqliteEnv(t)
	environ["DEADBOLT_TRUSTED_PROXIES"] = "10.0.0.0/8, 10.0.0.300"
	if code, _, errOut := cli(t, environ, "", "serve"); code == 0 || !strings.Contains(errOut, "10.0.0.300") {
		t.Errorf("serve with a bad trusted proxy = %d %q, want an error naming it", code, errOut)
	}
	environ["DEADBOLT_TRUSTED_PROXIES"] = "127.0.0.1/32"
	environ["DEADBOLT_ADDR"] = freeAddr(t)
	done, logs := serveInBackground(t, environ)
	waitReady(t, "http://"+environ["DEADBOLT_ADDR"]+"/healthz", done, logs)
	res, err := http.Get("http://" + environ["DEADBOLT_ADDR"] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if !strings.Contains(logs.String(), "trusted_proxies=127.0.0.1/32") {
		t.Errorf("start log = %q, want the trusted proxies named", logs.String())
	}
}

// serveInBackground runs `deadbolt serve` in this process until the test
// ends, and returns its exit channel and logs.
func serveInBackground(t *testing.T, environ map[string]string) (chan int, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, strings.NewReader(""), io.Discard, logs, func(k string) string { return environ[k] })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20 s")
		}
	})
	return done, logs
}

// TestDatabaseModeWarning: a database others can read is named at start.
func TestDatabaseModeWarning(t *testing.T) {
	environ := sqliteEnv(t)
	if code, _, errOut := cli(t, environ, "", "migrate"); code != 0 || strings.Contains(errOut, "chmod 600") {
		t.Fatalf("migrate of a new database = %d %q, want success and no warning", code, errOut)
	}
	if err := os.Chmod(environ["DEADBOLT_DB"], 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli(t, environ, "", "migrate"); code != 0 || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("migrate of a world-readable database = %d %q, want a warning saying chmod 600", code, errOut)
	}
}
