package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func testSMS() *deadbolt.Message {
	return &deadbolt.Message{
		ID:      "msg42",
		Channel: deadbolt.ChannelSMS,
		To:      "+4915112345678",
		Text:    "Your Deadbolt code is 123456. Grüße",
	}
}

// recorded is one request as the test server saw it.
type recorded struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// recorder serves status (and body) and keeps the requests.
type recorder struct {
	mu     sync.Mutex
	reqs   []recorded
	status int
	body   string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recorded{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: b})
	status, body := rec.status, rec.body
	rec.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (rec *recorder) requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// closedURL is an http URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	_ = l.Close()
	return u
}

// statusCases is the classification table shared by both SMS senders.
var statusCases = []struct {
	status   int // 0: connection refused
	wantErr  bool
	wantPerm bool
}{
	{status: 200},
	{status: 201},
	{status: 202},
	{status: 204},
	{status: 301, wantErr: true},
	{status: 400, wantErr: true, wantPerm: true},
	{status: 401, wantErr: true, wantPerm: true},
	{status: 404, wantErr: true, wantPerm: true},
	{status: 408, wantErr: true},
	{status: 422, wantErr: true, wantPerm: true},
	{status: 429, wantErr: true},
	{status: 500, wantErr: true},
	{status: 502, wantErr: true},
	{status: 503, wantErr: true},
	{status: 0, wantErr: true},
}

func TestWebhookRequest(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	w := NewWebhook(srv.URL+"/hooks/sms?token=abc", nil)
	m := testSMS()
	if err := w.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/hooks/sms" {
		t.Errorf("request = %s %s, want POST /hooks/sms", r.method, r.path)
	}
	for h, want := range map[string]string{
		"Content-Type":    "application/json",
		"User-Agent":      "deadbolt",
		"Idempotency-Key": "msg42",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	// Exactly the two fields of the contract.
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	want := map[string]any{"to": m.To, "body": m.Text}
	if len(body) != len(want) || body["to"] != want["to"] || body["body"] != want["body"] {
		t.Errorf("body = %v, want %v", body, want)
	}
}

func TestWebhookStatus(t *testing.T) {
	for _, tt := range statusCases {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			rec := &recorder{status: tt.status, body: `{"error":"nope"}` + strings.Repeat("x", 4000)}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			target := srv.URL + "/sms?secret=s3cr3t"
			if tt.status == 0 {
				target = closedURL(t) + "/sms?secret=s3cr3t"
			}
			err := NewWebhook(target, &http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirect}).Send(context.Background(), testSMS())
			checkSendError(t, err, tt.wantErr, tt.wantPerm, tt.status)
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q shows the URL's query", err)
			}
			if err != nil && tt.status >= 300 && !strings.Contains(err.Error(), `{\"error\":\"nope\"}`) {
				t.Errorf("error %q does not quote the response body", err)
			}
			if err != nil && len(err.Error()) > maxErrorBody+300 {
				t.Errorf("error is %d bytes long, want at most ~1 KiB of body", len(err.Error()))
			}
		})
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// checkSendError checks the outcome and classification of a Send.
func checkSendError(t *testing.T, err error, wantErr, wantPerm bool, status int) {
	t.Helper()
	if wantErr != (err != nil) {
		t.Fatalf("status %d: Send = %v, want error: %v", status, err, wantErr)
	}
	if err == nil {
		return
	}
	t.Logf("status %d: %v", status, err)
	if got := IsPermanent(err); got != wantPerm {
		t.Errorf("status %d: IsPermanent(%v) = %v, want %v", status, err, got, wantPerm)
	}
	if status != 0 && !strings.Contains(err.Error(), http.StatusText(status)) {
		t.Errorf("status %d: error %q does not name the status", status, err)
	}
}

func TestWebhookRefuses(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	w := NewWebhook(srv.URL, nil)
	email := testSMS()
	email.Channel = deadbolt.ChannelEmail
	for name, m := range map[string]*deadbolt.Message{
		"nil":         nil,
		"email":       email,
		"no plus":     {Channel: deadbolt.ChannelSMS, To: "4915112345678"},
		"letters":     {Channel: deadbolt.ChannelSMS, To: "+49151abc"},
		"too long":    {Channel: deadbolt.ChannelSMS, To: "+1234567890123456"},
		"leading 0":   {Channel: deadbolt.ChannelSMS, To: "+0151"},
		"empty":       {Channel: deadbolt.ChannelSMS},
		"with spaces": {Channel: deadbolt.ChannelSMS, To: "+49 151 12345678"},
	} {
		if err := w.Send(context.Background(), m); !IsPermanent(err) {
			t.Errorf("%s: Send = %v, want a permanent error", name, err)
		}
	}
	if n := len(rec.requests()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}

	// A bad URL is a configuration problem: temporary, and reported.
	for _, u := range []string{"", "ftp://x/y", "http://u:p4ss@[::1", "/relative"} {
		err := NewWebhook(u, nil).Send(context.Background(), testSMS())
		if err == nil || IsPermanent(err) {
			t.Errorf("URL %q: Send = %v, want a temporary error", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "p4ss") {
			t.Errorf("URL %q: error %q shows the password", u, err)
		}
	}
}

func TestWebhookContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := NewWebhook(srv.URL, nil).Send(ctx, testSMS())
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Errorf("Send = %v, want a temporary context.DeadlineExceeded", err)
	}
}

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "tok_5ecr3t_f00b4r"
)

func TestTwilioRequest(t *testing.T) {
	tests := []struct {
		from      string
		fromField string
	}{
		{"+15005550006", "From"},
		{"MG0123456789abcdef0123456789abcdef", "MessagingServiceSid"},
	}
	for _, tt := range tests {
		t.Run(tt.fromField, func(t *testing.T) {
			rec := &recorder{status: http.StatusCreated, body: `{"sid":"SM123","status":"queued"}`}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			tw, err := NewTwilio(srv.URL+"/", testSID, testToken, tt.from, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := testSMS()
			if err := tw.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := rec.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if want := "/2010-04-01/Accounts/" + testSID + "/Messages.json"; r.method != http.MethodPost || r.path != want {
				t.Errorf("request = %s %s, want POST %s", r.method, r.path, want)
			}
			if got := r.header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := r.header.Get("User-Agent"); got != "deadbolt" {
				t.Errorf("User-Agent = %q, want deadbolt", got)
			}
			req := &http.Request{Header: r.header}
			if user, pass, ok := req.BasicAuth(); !ok || user != testSID || pass != testToken {
				t.Errorf("basic auth = %q, %q, %v; want the SID and token", user, pass, ok)
			}
			form, err := url.ParseQuery(string(r.body))
			if err != nil {
				t.Fatal(err)
			}
			want := url.Values{"To": {m.To}, "Body": {m.Text}, tt.fromField: {tt.from}}
			if len(form) != len(want) {
				t.Errorf("form = %v, want %v", form, want)
			}
			for k, v := range want {
				if form.Get(k) != v[0] {
					t.Errorf("form %s = %q, want %q", k, form.Get(k), v[0])
				}
			}
		})
	}
}

func TestTwilioStatus(t *testing.T) {
	for _, tt := range statusCases {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			// A server so broken that it echoes the token: still redacted.
			rec := &recorder{status: tt.status, body: `{"code":21211,"message":"Invalid 'To' Phone Number","more_info":"https://www.twilio.com/docs/errors/21211","status":400,"echo":"` + testToken + `"}`}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			base := srv.URL
			if tt.status == 0 {
				base = closedURL(t)
			}
			tw, err := NewTwilio(base, testSID, testToken, "+15005550006", &http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirect})
			if err != nil {
				t.Fatal(err)
			}
			err = tw.Send(context.Background(), testSMS())
			checkSendError(t, err, tt.wantErr, tt.wantPerm, tt.status)
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q contains the auth token", err)
			}
			if err != nil && tt.status >= 300 {
				for _, want := range []string{"Invalid 'To' Phone Number", "21211"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
			}
		})
	}
}

func TestTwilioNonJSONError(t *testing.T) {
	rec := &recorder{status: http.StatusBadGateway, body: "<html>bad gateway " + testToken + "</html>"}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	tw, err := NewTwilio(srv.URL, testSID, testToken, "+15005550006", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = tw.Send(context.Background(), testSMS())
	if err == nil || IsPermanent(err) {
		t.Fatalf("Send = %v, want a temporary error", err)
	}
	if !strings.Contains(err.Error(), "bad gateway") || strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q: want the body, without the token", err)
	}
}

func TestNewTwilio(t *testing.T) {
	tests := []struct {
		name                  string
		base, sid, token, frm string
		wantErr               bool
		wantEndpoint          string
	}{
		{name: "default base", sid: "AC1", token: "Tok3nXYZ", frm: "+1", wantEndpoint: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"},
		{name: "base with path", base: "http://127.0.0.1:9/twilio/", sid: "AC1", token: "Tok3nXYZ", frm: "+1", wantEndpoint: "http://127.0.0.1:9/twilio/2010-04-01/Accounts/AC1/Messages.json"},
		{name: "sid escaped", sid: "AC/../x", token: "Tok3nXYZ", frm: "+1", wantEndpoint: "https://api.twilio.com/2010-04-01/Accounts/AC%2F..%2Fx/Messages.json"},
		{name: "no sid", token: "Tok3nXYZ", frm: "+1", wantErr: true},
		{name: "no token", sid: "AC1", frm: "+1", wantErr: true},
		{name: "no from", sid: "AC1", token: "Tok3nXYZ", wantErr: true},
		{name: "bad scheme", base: "ftp://x", sid: "AC1", token: "Tok3nXYZ", frm: "+1", wantErr: true},
		{name: "no host", base: "https://", sid: "AC1", token: "Tok3nXYZ", frm: "+1", wantErr: true},
		{name: "unparsable", base: "http://[::1", sid: "AC1", token: "Tok3nXYZ", frm: "+1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tw, err := NewTwilio(tt.base, tt.sid, tt.token, tt.frm, nil)
			if tt.wantErr {
				if err == nil {
					t.Fatal("NewTwilio succeeded, want an error")
				}
				if tt.token != "" && strings.Contains(err.Error(), tt.token) {
					t.Errorf("error %q contains the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewTwilio: %v", err)
			}
			if tw.endpoint != tt.wantEndpoint {
				t.Errorf("endpoint = %q, want %q", tw.endpoint, tt.wantEndpoint)
			}
		})
	}
}
