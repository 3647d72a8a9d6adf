package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/clientip"
	"github.com/deadbolt/deadbolt/internal/delivery"
	"github.com/deadbolt/deadbolt/internal/notify"
	"github.com/deadbolt/deadbolt/internal/oidc"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/sso"
	"github.com/deadbolt/deadbolt/internal/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newSenders builds the email and SMS senders from the configuration;
// whatever is not configured goes to the development outbox, which is then
// returned too.
func newSenders(cfg *Config, log *slog.Logger) (map[deadbolt.Channel]deadbolt.Sender, *notify.Outbox, error) {
	senders := map[deadbolt.Channel]deadbolt.Sender{}
	var outbox *notify.Outbox
	dev := func() *notify.Outbox {
		if outbox == nil {
			outbox = notify.NewOutbox(log, notify.DefaultOutboxSize)
		}
		return outbox
	}
	if cfg.SMTPURL != "" {
		mailer, err := notify.NewSMTP(cfg.SMTPURL, cfg.SMTPFrom, notify.SMTPOptions{})
		if err != nil {
			return nil, nil, usageError{err}
		}
		senders[deadbolt.ChannelEmail] = mailer
		log.Info("email goes through SMTP", "server", mailer.String(), "from", cfg.SMTPFrom)
	} else {
		senders[deadbolt.ChannelEmail] = dev()
	}
	switch {
	case cfg.SMSWebhook != "":
		hook := notify.NewWebhook(cfg.SMSWebhook, nil)
		senders[deadbolt.ChannelSMS] = hook
		log.Info("SMS goes to the webhook", "url", hook.String())
	case cfg.TwilioSID != "":
		tw, err := notify.NewTwilio(cfg.TwilioBase, cfg.TwilioSID, cfg.TwilioToken, cfg.TwilioFrom, nil)
		if err != nil {
			return nil, nil, usageError{err}
		}
		senders[deadbolt.ChannelSMS] = tw
		log.Info("SMS goes through a Twilio-compatible API", "api", tw.String())
	default:
		senders[deadbolt.ChannelSMS] = dev()
	}
	if outbox != nil {
		log.Warn("DEVELOPMENT OUTBOX: some messages are not delivered but logged and shown at /dev/outbox (to this machine only); not for production",
			"email", cfg.SMTPURL == "", "sms", cfg.SMSWebhook == "" && cfg.TwilioSID == "")
	}
	return senders, outbox, nil
}

// housekeepEvery is how often expired challenges and sessions are removed.
const housekeepEvery = 10 * time.Minute

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 15 * time.Second

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs, load := newFlags(e, "serve")
	cfg, err := parse(fs, load, args)
	if err != nil {
		return err
	}
	if err := cfg.checkPublicURL(); err != nil {
		return usageError{err}
	}
	trusted, err := clientip.Parse(cfg.TrustedProxies)
	if err != nil {
		return usageError{err}
	}
	log := newLogger(cfg, e.stderr)
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(a.db.SQL(), "deadbolt"),
	)
	senders, outbox, err := newSenders(cfg, log)
	if err != nil {
		return err
	}
	worker := delivery.New(delivery.Options{Store: a.db, Senders: senders, Logger: log, Registry: reg})
	// The provider tells applications when sessions end; the sign-in
	// service ends them: each is handed the other.
	var svc *signin.Service
	prov, err := oidc.New(oidc.Options{Store: a.db, Keys: a.keys, PublicURL: cfg.PublicURL, Logger: log,
		SignOut: func(ctx context.Context, p *signin.Principal) error { return svc.SignOut(ctx, p) }})
	if err != nil {
		return err
	}
	svc = signin.New(signin.Options{Store: a.db, Keys: a.keys, Hasher: a.hasher, Logger: log, Notify: worker.Kick, PublicURL: cfg.PublicURL,
		SessionsEnded: prov.Kick})
	wopts := web.Options{DB: a.db, SignIn: svc, Delivery: worker, PublicURL: cfg.PublicURL, Logger: log, Registry: reg,
		TrustedProxies: trusted, OIDC: prov,
		SSO: sso.New(sso.Options{Store: a.db, Keys: a.keys, PublicURL: cfg.PublicURL, Logger: log})}
	if outbox != nil {
		wopts.Outbox = outbox
	}
	srv := web.NewServer(wopts)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	log.Info("deadbolt is serving", "addr", ln.Addr().String(), "public_url", cfg.PublicURL,
		"database", a.db.Dialect(), "trusted_proxies", trusted.String(), "version", buildVersion())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		worker.Run(ctx)
	}()
	go prov.Run(ctx)
	go func() {
		t := time.NewTicker(housekeepEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				svc.Housekeep(ctx)
				wopts.SSO.Housekeep(ctx)
			}
		}
	}()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// A message in the middle of a send finishes it or stays queued for
	// the next process: the outbox is in the database.
	<-workerDone
	log.Info("stopped")
	return nil
}
