package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

// TestStatusCoversEveryCode keeps the one code-to-status map complete.
func TestStatusCoversEveryCode(t *testing.T) {
	codes := map[string]int{
		"invalid_request": 400, "unsupported_media_type": 415, "request_too_large": 413, "not_found": 404,
		"account_not_found": 404, "invalid_credentials": 401, "invalid_code": 401, "code_expired": 401,
		"challenge_expired": 410, "rate_limited": 429, "unauthorized": 401, "forbidden": 403,
		"reauthentication_required": 403, "method_not_allowed": 403, "invalid_phone": 400,
		"phone_country_blocked": 403, "password_api_auth_disabled": 401, "conflict": 409, "internal": 500,
		"sso_refused": 403, "sso_required": 403,
	}
	for code, want := range codes {
		if got := Status(code); got != want {
			t.Errorf("Status(%q) = %d, want %d", code, got, want)
		}
	}
	if len(statuses) != len(codes) {
		t.Errorf("statuses has %d codes, the API has %d: keep them in step", len(statuses), len(codes))
	}
}

func TestWriteError(t *testing.T) {
	s := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tests := []struct {
		name       string
		err        error
		status     int
		want       map[string]any
		retryAfter string
	}{
		{"internal hides its cause", errors.New("pq: password authentication failed for secret"), 500,
			map[string]any{"code": "internal", "message": "Internal error."}, ""},
		{"field named", deadbolt.Invalid("email", "A valid email address is required."), 400,
			map[string]any{"code": "invalid_request", "message": "A valid email address is required.", "field": "email"}, ""},
		{"details and retry", &deadbolt.Error{Code: deadbolt.ERateLimited, Message: "Slow down.", RetryAfter: 1500 * time.Millisecond,
			Details: map[string]any{"code": "overridden?", "scope": "user"}, Err: errors.New("counter 11")}, 429,
			map[string]any{"code": "rate_limited", "message": "Slow down.", "retry_after": float64(2), "scope": "user"}, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest("GET", "/api/v1/x", nil), tt.err)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			var body struct{ Error map[string]any }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if body.Error[k] != v {
					t.Errorf("error.%s = %v, want %v (body %s)", k, body.Error[k], v, w.Body)
				}
			}
			if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "counter 11") {
				t.Errorf("body leaks the cause: %s", w.Body)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

// TestPanicIsA500 checks that a panicking handler costs one request a
// JSON 500, not the process.
func TestPanicIsA500(t *testing.T) {
	s := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.mux.HandleFunc("GET /api/v1/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/boom", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"code":"internal"`) || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("panic gave %d %s, want a JSON 500 without the panic value", w.Code, w.Body)
	}
}

func TestReadyz(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{{"up", nil, 200}, {"down", errors.New("connection refused"), 503}} {
		s := NewServer(Options{DB: pingFunc(func() error { return tt.err }), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		if w.Code != tt.want {
			t.Errorf("%s: /readyz = %d, want %d", tt.name, w.Code, tt.want)
		}
	}
}

type pingFunc func() error

func (f pingFunc) Ping(context.Context) error { return f() }

// TestClientGone checks that a request whose client went away is no
// internal error: no 500, no error log.
func TestClientGone(t *testing.T) {
	var logs strings.Builder
	s := NewServer(Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/api/v1/signin/verify", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	s.writeError(w, r, fmt.Errorf("verify password: %w", ctx.Err()))
	if w.Code != 499 || strings.Contains(logs.String(), "internal error") {
		t.Errorf("client gone: status %d, logs %q; want 499 and no internal error", w.Code, logs.String())
	}
}
