package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/deadbolt/deadbolt"
)

// Webhook sends SMS by POSTing them as JSON to a URL of the operator's
// choosing, which forwards them to a provider. It is safe for concurrent
// use.
type Webhook struct {
	url     string
	shown   string // without user information and query
	urlErr  error
	client  *http.Client
	service string
}

// webhookBody is the public contract of the webhook: exactly these fields.
type webhookBody struct {
	To   string `json:"to"`
	Body string `json:"body"`
}

// NewWebhook returns a sender that POSTs to rawURL. A nil client means one
// with a 10-second timeout that does not follow redirects. An unusable URL
// is reported by every Send, as a temporary error: the messages wait for
// the operator to fix the configuration.
func NewWebhook(rawURL string, client *http.Client) *Webhook {
	w := &Webhook{url: rawURL, client: client, service: "sms webhook"}
	if w.client == nil {
		w.client = defaultHTTPClient()
	}
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		w.shown = "(unparsable URL)"
		w.urlErr = fmt.Errorf("notify: sms webhook: invalid URL %q", redactURL(rawURL))
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		w.shown = displayURL(u)
		w.urlErr = fmt.Errorf("notify: sms webhook: invalid URL %q: want http(s)://host/path", w.shown)
	default:
		w.shown = displayURL(u)
	}
	return w
}

// String describes the sender without credentials.
func (w *Webhook) String() string { return w.shown }

// Send POSTs {"to": m.To, "body": m.Text} with an Idempotency-Key header
// holding m.ID. A 2xx answer is success; see the package documentation for
// the classification of failures.
func (w *Webhook) Send(ctx context.Context, m *deadbolt.Message) error {
	if err := checkSMS(w.service, m); err != nil {
		return err
	}
	if w.urlErr != nil {
		return w.urlErr
	}
	body, err := json.Marshal(webhookBody{To: m.To, Body: m.Text})
	if err != nil {
		return Permanent(fmt.Errorf("notify: sms webhook: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: sms webhook: POST %s: %w", w.shown, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if m.ID != "" {
		req.Header.Set("Idempotency-Key", m.ID)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return transportError(ctx, w.service, w.shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		_ = readErrorBody(resp.Body) // drain for reuse
		return nil
	}
	return statusError(w.service, resp.StatusCode, quoteBody(readErrorBody(resp.Body), m))
}
