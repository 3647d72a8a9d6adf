package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/deadbolt/deadbolt"
)

// DefaultTwilioBaseURL is Twilio's API.
const DefaultTwilioBaseURL = "https://api.twilio.com"

// Twilio sends SMS through the Messages resource of the Twilio REST API, or
// of a service compatible with it. It is safe for concurrent use.
type Twilio struct {
	endpoint string // {base}/2010-04-01/Accounts/{sid}/Messages.json
	shown    string
	sid      string
	token    string
	from     string
	client   *http.Client
}

// NewTwilio returns a Twilio sender. baseURL defaults to
// [DefaultTwilioBaseURL]; from is the sending number (E.164) or, when it
// starts with "MG", a Messaging Service SID. A nil client means one with a
// 10-second timeout that does not follow redirects. Errors never contain
// the auth token.
func NewTwilio(baseURL, accountSID, authToken, from string, client *http.Client) (*Twilio, error) {
	if baseURL == "" {
		baseURL = DefaultTwilioBaseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("notify: twilio: invalid base URL %q: want http(s)://host[/path]", redactURL(baseURL))
	}
	switch {
	case accountSID == "":
		return nil, errors.New("notify: twilio: no account SID")
	case authToken == "":
		return nil, errors.New("notify: twilio: no auth token")
	case from == "":
		return nil, errors.New("notify: twilio: no from number")
	}
	if client == nil {
		client = defaultHTTPClient()
	}
	endpoint := strings.TrimRight(displayURL(u), "/") + "/2010-04-01/Accounts/" + url.PathEscape(accountSID) + "/Messages.json"
	return &Twilio{
		endpoint: endpoint,
		shown:    endpoint,
		sid:      accountSID,
		token:    authToken,
		from:     from,
		client:   client,
	}, nil
}

// String describes the sender without credentials.
func (t *Twilio) String() string { return t.shown }

// twilioError is the body of a Twilio error response.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
}

// Send POSTs the form To, From (or MessagingServiceSid), Body with HTTP
// Basic authentication. 200 and 201 are success; see the package
// documentation for the classification of failures.
func (t *Twilio) Send(ctx context.Context, m *deadbolt.Message) error {
	if err := checkSMS("twilio", m); err != nil {
		return err
	}
	form := url.Values{"To": {m.To}, "Body": {m.Text}}
	if strings.HasPrefix(t.from, "MG") {
		form.Set("MessagingServiceSid", t.from)
	} else {
		form.Set("From", t.from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return t.redactToken(fmt.Errorf("notify: twilio: POST %s: %w", t.shown, err))
	}
	req.SetBasicAuth(t.sid, t.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if m.ID != "" {
		// Twilio ignores it; compatible services may drop duplicates.
		req.Header.Set("Idempotency-Key", m.ID)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return t.redactToken(transportError(ctx, "twilio", t.shown, err))
	}
	defer resp.Body.Close()
	body := readErrorBody(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// Twilio answers 201 Created; any 2xx of a compatible service
		// counts as accepted, as for the webhook.
		return nil
	}
	detail := quoteBody(body, m)
	var te twilioError
	if json.Unmarshal(body, &te) == nil && (te.Message != "" || te.Code != 0) {
		// Twilio's own messages quote the number ("The 'To' number +1… is
		// not a valid phone number"), hence redactEcho. The error code is
		// ours to format, not provider text, so it is kept for the operator.
		detail = fmt.Sprintf("%q (Twilio error %d)", redactEcho(te.Message, m), te.Code)
		if te.MoreInfo != "" {
			detail += " " + redactEcho(te.MoreInfo, m)
		}
	}
	return t.redactToken(statusError("twilio", resp.StatusCode, detail))
}

// redactToken replaces the auth token, should it ever appear in err,
// keeping err's permanence and its chain for errors.Is and errors.As.
func (t *Twilio) redactToken(err error) error {
	if err == nil || !strings.Contains(err.Error(), t.token) {
		return err
	}
	return withMessage(err, strings.ReplaceAll(err.Error(), t.token, "[REDACTED]"))
}
