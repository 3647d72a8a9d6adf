package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// inbox is what the test's providers received: emails through a real SMTP
// server on loopback, SMS through an httptest server playing the webhook
// provider.
type inbox struct {
	mu       sync.Mutex
	messages []received
	arrived  chan struct{}
	// smsDown makes the SMS provider answer 503.
	smsDown bool
}

type received struct {
	Channel string // "email" or "sms"
	To      string
	Subject string
	Text    string
	HTML    string
	ID      string // Message-ID or Idempotency-Key
}

func newInbox() *inbox { return &inbox{arrived: make(chan struct{}, 1000)} }

func (in *inbox) add(r received) {
	in.mu.Lock()
	in.messages = append(in.messages, r)
	in.mu.Unlock()
	in.arrived <- struct{}{}
}

// all returns what arrived so far.
func (in *inbox) all() []received {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]received(nil), in.messages...)
}

// to returns the messages to an address or number.
func (in *inbox) to(addr string) []received {
	var out []received
	for _, m := range in.all() {
		if m.To == addr {
			out = append(out, m)
		}
	}
	return out
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

// waitCode waits (on the arrival of messages, never by sleeping) until the
// n-th message to addr has arrived, and returns the code in it.
func (in *inbox) waitCode(t *testing.T, addr string, n int) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if ms := in.to(addr); len(ms) >= n {
			code := codeRE.FindString(ms[n-1].Text)
			if code == "" {
				t.Fatalf("message to %s holds no code: %q", addr, ms[n-1].Text)
			}
			return code
		}
		select {
		case <-in.arrived:
		case <-deadline:
			t.Fatalf("no message %d to %s within 10 s; got %+v", n, addr, in.all())
		}
	}
}

// smtpServer runs a real SMTP server on loopback that files what it gets
// into the inbox. It returns its address.
func smtpServer(t *testing.T, in *inbox) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startSMTP(t, ln, in)
	return ln.Addr().String()
}

// startSMTP serves SMTP on the listener until the test ends.
func startSMTP(t *testing.T, ln net.Listener, in *inbox) {
	s := smtp.NewServer(backend{in})
	s.Domain = "localhost"
	s.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up are expected here
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
}

type backend struct{ in *inbox }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{in: b.in}, nil }

type session struct {
	in *inbox
	to []string
}

func (s *session) Reset()        { s.to = nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(string, *smtp.MailOptions) error {
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	rec := received{Channel: "email", Subject: subject, ID: msg.Header.Get("Message-Id")}
	text, html := bodies(msg.Header.Get("Content-Type"), msg.Body)
	rec.Text, rec.HTML = text, html
	for _, to := range s.to {
		rec.To = to
		s.in.add(rec)
	}
	return nil
}

// bodies returns the text and HTML parts of a message body.
func bodies(contentType string, body io.Reader) (text, html string) {
	mt, params, _ := mime.ParseMediaType(contentType)
	if !strings.HasPrefix(mt, "multipart/") {
		b, _ := io.ReadAll(body)
		return decodeQP(string(b)), ""
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return text, html
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		b, _ := io.ReadAll(p) // multipart.Reader decodes quoted-printable
		switch {
		case strings.HasPrefix(pt, "multipart/"):
			t2, h2 := bodies(p.Header.Get("Content-Type"), strings.NewReader(string(b)))
			text, html = text+t2, html+h2
		case pt == "text/plain":
			text += string(b)
		case pt == "text/html":
			html += string(b)
		}
	}
}

func decodeQP(s string) string { return strings.ReplaceAll(s, "=\r\n", "") }

// smsProvider plays the SMS webhook provider.
func smsProvider(t *testing.T, in *inbox) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		down := in.smsDown
		in.mu.Unlock()
		if down {
			http.Error(w, "provider down", http.StatusServiceUnavailable)
			return
		}
		var body struct{ To, Body string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		in.add(received{Channel: "sms", To: body.To, Text: body.Body, ID: r.Header.Get("Idempotency-Key")})
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// runWorker runs fn in the background until the test ends.
func runWorker(t *testing.T, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
