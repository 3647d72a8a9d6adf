// Package web serves Deadbolt over HTTP: the JSON API under /api/v1, the
// pages for people, and the operator's endpoints (/healthz, /readyz,
// /metrics). It never touches SQL: it reaches state through the services
// and interfaces it is given.
package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt/internal/clientip"
	"github.com/deadbolt/deadbolt/internal/oidc"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/sso"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pinger reports whether the database answers; /readyz uses it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options configure a Server.
type Options struct {
	DB     Pinger
	SignIn *signin.Service
	// Outbox, when set, is shown at /dev/outbox (development only).
	Outbox DevOutbox
	// Delivery, when set, adds the message queue to /readyz.
	Delivery DeliveryStatus
	// PublicURL is where people reach the service, for links in emails.
	PublicURL string
	// TrustedProxies are the proxies whose forwarding headers name the
	// client; nil trusts nobody (the connection's peer is the client).
	TrustedProxies *clientip.Trusted
	// Now is the clock for what the handlers show; default time.Now.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *prometheus.Registry // metrics are registered here and served at /metrics
	// OIDC, when set, serves each account's OpenID Connect provider.
	OIDC *oidc.Provider
	// SSO, when set, signs people in through their account's identity
	// providers.
	SSO *sso.Service
}

// Server is the HTTP handler of Deadbolt.
type Server struct {
	db        Pinger
	signin    *signin.Service
	oidc      *oidc.Provider
	sso       *sso.Service
	outbox    DevOutbox
	delivery  DeliveryStatus
	publicURL string
	secure    bool // served over HTTPS: __Host- cookies, Secure, HSTS
	trusted   *clientip.Trusted
	now       func() time.Time
	log       *slog.Logger
	mux       *http.ServeMux
	handler   http.Handler
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

// NewServer builds the handler and its routes.
func NewServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{db: opts.DB, signin: opts.SignIn, oidc: opts.OIDC, sso: opts.SSO, outbox: opts.Outbox, delivery: opts.Delivery, publicURL: opts.PublicURL, now: opts.Now,
		log: opts.Logger, mux: http.NewServeMux(), secure: strings.HasPrefix(opts.PublicURL, "https://"), trusted: opts.TrustedProxies}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deadbolt_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"route", "status"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "deadbolt_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
	opts.Registry.MustRegister(s.requests, s.duration)

	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	if s.signin != nil {
		s.routes()
	}
	if s.outbox != nil {
		s.mux.HandleFunc("GET /dev/outbox", s.handleOutbox)
	}
	if s.signin != nil {
		s.pageRoutes()
		if s.oidc != nil {
			s.oidcRoutes()
		}
	}
	s.handler = s.recoverer(s.instrument(s.transportSecurity(s.withClient(jsonErrors(s.mux)))))
	return s
}

// routes registers the API.
func (s *Server) routes() {
	m := s.mux
	m.Handle("POST /api/v1/accounts/{account}/signin", s.api(s.handleSignIn))
	m.Handle("POST /api/v1/signin/verify", s.api(s.handleVerify))
	m.Handle("POST /api/v1/accounts/{account}/signin/passkey", s.api(s.handlePasskeySignIn))
	m.Handle("POST /api/v1/signin/send", s.api(s.handleSend))
	m.Handle("POST /api/v1/accounts/{account}/invitation", s.api(s.handleAcceptInvitation))
	m.Handle("POST /api/v1/signout", s.authed(false, s.handleSignOut))

	m.Handle("GET /api/v1/me", s.authed(false, s.handleMe))
	m.Handle("GET /api/v1/me/factors", s.authed(true, s.handleFactors))
	m.Handle("POST /api/v1/me/factors", s.authed(true, s.handleEnroll))
	m.Handle("POST /api/v1/me/factors/{id}/confirm", s.authed(true, s.handleConfirm))
	m.Handle("POST /api/v1/me/factors/{id}/send", s.authed(true, s.handleFactorSend))
	m.Handle("POST /api/v1/me/factors/{id}/default", s.authed(false, s.handleDefaultFactor))
	m.Handle("DELETE /api/v1/me/factors/{id}", s.authed(false, s.handleRemoveFactor))
	m.Handle("POST /api/v1/me/recovery-codes", s.authed(false, s.handleRecoveryCodes))
	m.Handle("GET /api/v1/me/devices", s.authed(false, s.handleDevices))
	m.Handle("DELETE /api/v1/me/devices/{id}", s.authed(false, s.handleRevokeDevice))
	m.Handle("GET /api/v1/me/sessions", s.authed(false, s.handleSessions))
	m.Handle("DELETE /api/v1/me/sessions/{id}", s.authed(false, s.handleRevokeSession))
	m.Handle("POST /api/v1/me/password", s.authed(false, s.handlePassword))
	m.Handle("POST /api/v1/me/step-up", s.authed(false, s.handleStepUp))
	m.Handle("POST /api/v1/me/step-up/send", s.authed(false, s.handleStepUpSend))

	a := "/api/v1/accounts/{account}"
	m.Handle("GET "+a+"/users", s.admin(s.handleUsers))
	m.Handle("POST "+a+"/users", s.admin(s.handleCreateUser))
	m.Handle("GET "+a+"/users/{id}", s.admin(s.handleUser))
	m.Handle("PATCH "+a+"/users/{id}", s.admin(s.handleUpdateUser))
	m.Handle("DELETE "+a+"/users/{id}", s.admin(s.handleDeleteUser))
	m.Handle("POST "+a+"/users/{id}/recovery-code", s.admin(s.handleAdminRecoveryCode))
	m.Handle("DELETE "+a+"/users/{id}/factors", s.admin(s.handleResetFactors))
	m.Handle("GET "+a+"/policy", s.admin(s.handlePolicy))
	m.Handle("PUT "+a+"/policy", s.admin(s.handlePutPolicy))
	m.Handle("GET "+a+"/reports/two-factor", s.admin(s.handleReport))
	m.Handle("POST "+a+"/reports/two-factor/email", s.admin(s.handleEmailReport))
	m.Handle("GET "+a+"/reports/two-factor/{report_id}", s.admin(s.handleSavedReport))
	m.Handle("GET "+a+"/audit", s.admin(s.handleAudit))
	m.Handle("POST "+a+"/api-tokens", s.admin(s.handleCreateAPIToken))
	m.Handle("GET "+a+"/api-tokens", s.admin(s.handleAPITokens))
	m.Handle("GET "+a+"/api-tokens/{id}", s.admin(s.handleAPIToken))
	m.Handle("DELETE "+a+"/api-tokens/{id}", s.admin(s.handleRevokeAPIToken))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers 200 only when the database answers within a second,
// so a load balancer stops sending traffic to a process that cannot serve.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready: database does not answer", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "unreachable"})
		return
	}
	// Delivery trouble is reported, not made a 503: this process can still
	// sign people in, and taking it out of service would not bring the
	// mail server back. Monitoring reads delivery.status.
	out := map[string]any{"status": "ok", "database": "ok"}
	if d := s.deliveryJSON(ctx); d != nil {
		out["delivery"] = d
	}
	writeJSON(w, http.StatusOK, out)
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts requests by route pattern (never by raw path, which
// would let callers create unbounded label values).
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		s.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// withClient puts the request's client (its address, through trusted
// proxies only, and its user agent) in the context, where the sign-in
// machine finds it for limits and for every audit event the request
// causes.
func (s *Server) withClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := signin.Client{IP: s.trusted.From(r), UserAgent: r.UserAgent()}
		next.ServeHTTP(w, r.WithContext(signin.WithClient(r.Context(), c)))
	})
}

// transportSecurity tells browsers, when the service is reached over
// HTTPS, to use nothing else for two years: a first request over plain
// HTTP is where a session cookie could be stripped of its protection.
func (s *Server) transportSecurity(next http.Handler) http.Handler {
	if !s.secure {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500: a panic is always a bug, but
// it must not take the process, and every other caller, down with it.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
