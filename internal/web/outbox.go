package web

import (
	"context"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt/internal/delivery"
	"github.com/deadbolt/deadbolt/internal/notify"
)

// DevOutbox is the development outbox: messages kept instead of sent.
type DevOutbox interface {
	Messages() []notify.OutboxEntry
}

// DeliveryStatus reports the outbox queue for /readyz.
type DeliveryStatus interface {
	Status(ctx context.Context) (delivery.Status, error)
}

var outboxPage = template.Must(template.New("outbox").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development outbox: not for production</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem auto; max-width: 60rem; padding: 0 1rem; color: #1a1a1a }
.warn { background: #fff3cd; border: 2px solid #b8860b; padding: .75rem 1rem; border-radius: .5rem }
table { border-collapse: collapse; width: 100% } td, th { border-bottom: 1px solid #ddd; padding: .5rem; text-align: left; vertical-align: top }
pre { white-space: pre-wrap; margin: 0; font-family: ui-monospace, monospace }
</style></head><body>
<h1>Development outbox</h1>
<p class="warn"><strong>Not for production.</strong> No email server or SMS provider is configured, so Deadbolt keeps
messages here (and in its log) instead of sending them. Nothing on this page was delivered. Configure
<code>--smtp-url</code> and <code>--sms-webhook-url</code> or the <code>--twilio-*</code> settings to send for real.
This page answers only requests from this machine.</p>
{{if .}}<table><thead><tr><th>When</th><th>Channel</th><th>To</th><th>Message</th></tr></thead><tbody>
{{range .}}<tr><td>{{.At.UTC.Format "2006-01-02 15:04:05"}} UTC</td><td>{{.Message.Channel}}</td><td>{{.Message.To}}</td>
<td>{{with .Message.Subject}}<strong>{{.}}</strong><br>{{end}}<pre>{{.Message.Text}}</pre></td></tr>
{{end}}</tbody></table>{{else}}<p>No messages yet.</p>{{end}}
</body></html>
`))

// handleOutbox shows the development outbox, to loopback callers only:
// it holds live codes.
//
// Three checks: the connection comes from this machine; it was not
// forwarded by a proxy (which would make every client look local); and the
// Host header names this machine, so a web page that rebinds its own DNS
// name to 127.0.0.1 cannot read the outbox from the victim's browser.
func (s *Server) handleOutbox(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	forwarded := r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != ""
	if ip == nil || !ip.IsLoopback() || forwarded || !loopbackName(r.Host) {
		http.Error(w, "The development outbox is shown only to this machine.", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if err := outboxPage.Execute(w, s.outbox.Messages()); err != nil {
		s.log.ErrorContext(r.Context(), "outbox page", "err", err)
	}
}

// deliveryJSON is the delivery part of /readyz.
func (s *Server) deliveryJSON(ctx context.Context) map[string]any {
	if s.delivery == nil {
		return nil
	}
	st, err := s.delivery.Status(ctx)
	if err != nil {
		return map[string]any{"status": "unknown"}
	}
	out := map[string]any{"status": "ok", "queued": st.Queued, "failed_last_hour": st.FailedLastHr,
		"oldest_queued_seconds": int(st.OldestQueued / time.Second)}
	if !st.Healthy {
		out["status"] = "failing"
	}
	if st.LastError != "" {
		out["last_error_at"] = ts(st.LastErrorAt)
	}
	return out
}

// loopbackName reports whether a Host header (with or without a port)
// names this machine: localhost, 127.0.0.0/8 or [::1].
func loopbackName(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
