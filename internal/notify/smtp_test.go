package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtpd "github.com/emersion/go-smtp"

	"github.com/deadbolt/deadbolt"
)

// received is one message as the test server saw it.
type received struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string // authenticated user, if any
}

// serverConfig sets up a test SMTP server.
type serverConfig struct {
	startTLS    bool     // offer STARTTLS
	implicitTLS bool     // TLS from the first byte
	user, pass  string   // require AUTH with these
	mechs       []string // AUTH mechanisms offered (default PLAIN)
	rcptErr     *smtpd.SMTPError
	mailErr     *smtpd.SMTPError
	dataErr     *smtpd.SMTPError
	// insecureAuth offers AUTH without TLS.
	insecureAuth bool
	// listen is the address to listen on (default 127.0.0.1:0).
	listen string
}

// testServer is a real SMTP server on loopback.
type testServer struct {
	addr   string
	port   string
	roots  *x509.CertPool
	mu     sync.Mutex
	got    []received
	config serverConfig
}

func (ts *testServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.got...)
}

// NewSession implements smtpd.Backend.
func (ts *testServer) NewSession(c *smtpd.Conn) (smtpd.Session, error) {
	_, isTLS := c.TLSConnectionState()
	s := &session{ts: ts, tls: isTLS}
	if ts.config.user != "" {
		return &authSession{session: s}, nil
	}
	return s, nil
}

type session struct {
	ts     *testServer
	tls    bool
	authed string
	from   string
	to     []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtpd.MailOptions) error {
	if s.ts.config.user != "" && s.authed == "" {
		return &smtpd.SMTPError{Code: 530, EnhancedCode: smtpd.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if e := s.ts.config.mailErr; e != nil {
		return e
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtpd.RcptOptions) error {
	if e := s.ts.config.rcptErr; e != nil {
		return e
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if e := s.ts.config.dataErr; e != nil {
		return e
	}
	s.ts.mu.Lock()
	s.ts.got = append(s.ts.got, received{from: s.from, to: s.to, data: b, tls: s.tls, user: s.authed})
	s.ts.mu.Unlock()
	return nil
}

type authSession struct{ *session }

func (s *authSession) AuthMechanisms() []string {
	if s.ts.config.mechs != nil {
		return s.ts.config.mechs
	}
	return []string{sasl.Plain}
}

func (s *authSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.ts.config.user || pass != s.ts.config.pass {
			return smtpd.ErrAuthFailed
		}
		s.authed = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtpd.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(resp) > 0 { // initial response: the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "notify test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func startServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	ts := &testServer{config: cfg}
	srv := smtpd.NewServer(ts)
	srv.Domain = "localhost"
	srv.ReadTimeout = 5 * time.Second
	srv.WriteTimeout = 5 * time.Second
	srv.AllowInsecureAuth = cfg.insecureAuth
	if cfg.listen == "" {
		cfg.listen = "127.0.0.1:0"
	}
	var l net.Listener
	l, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.startTLS || cfg.implicitTLS {
		cert, pool := selfSigned(t)
		ts.roots = pool
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.startTLS {
			srv.TLSConfig = tc
		}
		if cfg.implicitTLS {
			l = tls.NewListener(l, tc)
		}
	}
	ts.addr = l.Addr().String()
	_, ts.port, _ = net.SplitHostPort(ts.addr)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ts
}

func testEmail() *deadbolt.Message {
	return &deadbolt.Message{
		ID:      "msg0123abcd",
		Channel: deadbolt.ChannelEmail,
		To:      "alice@example.org",
		Subject: "Ihr Bestätigungscode: 123456 ✓",
		Text:    "Your code is 123456.\nGrüße, Deadbolt",
		HTML:    "<p>Your code is <b>123456</b>.</p><p>Grüße</p>",
	}
}

func newTestSMTP(t *testing.T, rawURL string, ts *testServer) *SMTP {
	t.Helper()
	opts := SMTPOptions{Timeout: 5 * time.Second, HeloName: "client.test"}
	if ts != nil && ts.roots != nil {
		opts.TLSConfig = &tls.Config{RootCAs: ts.roots}
	}
	s, err := NewSMTP(rawURL, "Deadbolt <noreply@auth.example.com>", opts)
	if err != nil {
		t.Fatalf("NewSMTP(%q): %v", rawURL, err)
	}
	return s
}

// parsed is a received message, decoded.
type parsed struct {
	header  netmail.Header
	subject string
	text    string
	html    string
}

func parseReceived(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	var p parsed
	p.header = msg.Header
	dec := new(mime.WordDecoder)
	if p.subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("decode Subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	readPart := func(ct string, r io.Reader) {
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s part: %v", ct, err)
		}
		pmt, pparams, _ := mime.ParseMediaType(ct)
		if cs := pparams["charset"]; !strings.EqualFold(cs, "utf-8") {
			t.Errorf("%s part charset = %q, want UTF-8", pmt, cs)
		}
		switch pmt {
		case "text/plain":
			p.text = string(body)
		case "text/html":
			p.html = string(body)
		default:
			t.Errorf("unexpected part %s", pmt)
		}
	}
	if !strings.HasPrefix(mt, "multipart/") {
		body := msg.Body
		if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		readPart(msg.Header.Get("Content-Type"), body)
		return p
	}
	if mt != "multipart/alternative" {
		t.Errorf("Content-Type = %s, want multipart/alternative", mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		readPart(part.Header.Get("Content-Type"), part)
	}
	return p
}

func TestSMTPDelivery(t *testing.T) {
	tests := []struct {
		name     string
		config   serverConfig
		url      func(ts *testServer) string
		wantTLS  bool
		wantUser string
	}{
		{
			name:   "plain",
			config: serverConfig{},
			url:    func(ts *testServer) string { return "smtp://127.0.0.1:" + ts.port },
		},
		{
			name:    "STARTTLS",
			config:  serverConfig{startTLS: true},
			url:     func(ts *testServer) string { return "smtp://127.0.0.1:" + ts.port },
			wantTLS: true,
		},
		{
			name:    "implicit TLS",
			config:  serverConfig{implicitTLS: true},
			url:     func(ts *testServer) string { return "smtps://localhost:" + ts.port },
			wantTLS: true,
		},
		{
			name:     "STARTTLS with AUTH PLAIN",
			config:   serverConfig{startTLS: true, user: "mailer", pass: "p@ss:w/rd ü"},
			url:      func(ts *testServer) string { return "smtp://mailer:p%40ss%3Aw%2Frd%20%C3%BC@127.0.0.1:" + ts.port },
			wantTLS:  true,
			wantUser: "mailer",
		},
		{
			name:     "smtps with AUTH LOGIN when PLAIN is not offered",
			config:   serverConfig{implicitTLS: true, user: "mailer", pass: "secret", mechs: []string{sasl.Login}},
			url:      func(ts *testServer) string { return "smtps://mailer:secret@127.0.0.1:" + ts.port },
			wantTLS:  true,
			wantUser: "mailer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.config)
			s := newTestSMTP(t, tt.url(ts), ts)
			m := testEmail()
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := ts.messages()
			if len(got) != 1 {
				t.Fatalf("server received %d messages, want 1", len(got))
			}
			r := got[0]
			if r.from != "noreply@auth.example.com" {
				t.Errorf("MAIL FROM = %q, want noreply@auth.example.com", r.from)
			}
			if len(r.to) != 1 || r.to[0] != m.To {
				t.Errorf("RCPT TO = %q, want [%s]", r.to, m.To)
			}
			if r.tls != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", r.tls, tt.wantTLS)
			}
			if r.user != tt.wantUser {
				t.Errorf("authenticated user = %q, want %q", r.user, tt.wantUser)
			}

			p := parseReceived(t, r.data)
			if got, want := p.header.Get("Message-Id"), "<msg0123abcd@auth.example.com>"; got != want {
				t.Errorf("Message-ID = %q, want %q", got, want)
			}
			if got, want := p.subject, m.Subject; got != want {
				t.Errorf("Subject = %q, want %q", got, want)
			}
			if from, err := p.header.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != "noreply@auth.example.com" || from[0].Name != "Deadbolt" {
				t.Errorf("From = %q (%v), want Deadbolt <noreply@auth.example.com>", p.header.Get("From"), err)
			}
			if to, err := p.header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != m.To {
				t.Errorf("To = %q (%v), want %s", p.header.Get("To"), err, m.To)
			}
			if d, err := p.header.Date(); err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Minute {
				t.Errorf("Date = %q (%v), want about now", p.header.Get("Date"), err)
			}
			if got := p.header.Get("Auto-Submitted"); got != "auto-generated" {
				t.Errorf("Auto-Submitted = %q, want auto-generated", got)
			}
			if got := normalizeNewlines(p.text); got != m.Text {
				t.Errorf("text part = %q, want %q", got, m.Text)
			}
			if got := normalizeNewlines(p.html); got != m.HTML {
				t.Errorf("html part = %q, want %q", got, m.HTML)
			}
			if bytes.Contains(r.data, []byte("go-mail")) {
				t.Errorf("message advertises go-mail:\n%s", r.data)
			}
		})
	}
}

func normalizeNewlines(s string) string {
	return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
}

func TestSMTPTextOnlyAndStableMessageID(t *testing.T) {
	ts := startServer(t, serverConfig{})
	s := newTestSMTP(t, "smtp://127.0.0.1:"+ts.port, ts)
	m := testEmail()
	m.HTML = ""
	for range 2 { // a retry
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	got := ts.messages()
	if len(got) != 2 {
		t.Fatalf("server received %d messages, want 2", len(got))
	}
	var ids []string
	for _, r := range got {
		p := parseReceived(t, r.data)
		ids = append(ids, p.header.Get("Message-Id"))
		if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type = %q, want text/plain", ct)
		}
		if got := normalizeNewlines(p.text); got != m.Text {
			t.Errorf("text = %q, want %q", got, m.Text)
		}
	}
	if ids[0] != ids[1] || ids[0] != "<msg0123abcd@auth.example.com>" {
		t.Errorf("Message-IDs = %q, want both <msg0123abcd@auth.example.com>", ids)
	}
}

func TestSMTPErrors(t *testing.T) {
	reply := func(code int, ec smtpd.EnhancedCode, msg string) *smtpd.SMTPError {
		return &smtpd.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
	}
	tests := []struct {
		name      string
		config    serverConfig
		user      string // user:pass@ part of the URL
		host      string // default 127.0.0.1
		tls       bool   // trust the server's certificate
		wantPerm  bool
		wantInErr string
	}{
		{
			name:      "550 on RCPT",
			config:    serverConfig{rcptErr: reply(550, smtpd.EnhancedCode{5, 1, 1}, "Mailbox unavailable")},
			wantPerm:  true,
			wantInErr: "550",
		},
		{
			name:      "553 on MAIL",
			config:    serverConfig{mailErr: reply(553, smtpd.EnhancedCode{5, 1, 8}, "Sender address rejected")},
			wantPerm:  true,
			wantInErr: "553",
		},
		{
			name:      "554 on DATA",
			config:    serverConfig{dataErr: reply(554, smtpd.EnhancedCode{5, 7, 1}, "Message rejected")},
			wantPerm:  true,
			wantInErr: "554",
		},
		{
			name:      "450 on RCPT",
			config:    serverConfig{rcptErr: reply(450, smtpd.EnhancedCode{4, 2, 1}, "Mailbox busy, try later")},
			wantInErr: "450",
		},
		{
			name:      "451 on DATA",
			config:    serverConfig{dataErr: reply(451, smtpd.EnhancedCode{4, 3, 0}, "Local error")},
			wantInErr: "451",
		},
		{
			name:      "530 authentication required is configuration, not permanent",
			config:    serverConfig{user: "mailer", pass: "secret", startTLS: true},
			tls:       true,
			wantInErr: "530",
		},
		{
			name:      "wrong password",
			config:    serverConfig{user: "mailer", pass: "secret", startTLS: true},
			user:      "mailer:WRONGPASS@",
			tls:       true,
			wantInErr: "535",
		},
		{
			name:      "untrusted certificate",
			config:    serverConfig{startTLS: true},
			wantInErr: "certificate",
		},
		{
			// go-mail counts only "localhost", 127.0.0.1 and ::1 as local, so
			// 127.0.0.2 stands for a remote host.
			name:      "no STARTTLS: no credentials in clear to a remote host",
			config:    serverConfig{user: "mailer", pass: "TOPSECRET", insecureAuth: true, listen: "127.0.0.2:0"},
			user:      "mailer:TOPSECRET@",
			host:      "127.0.0.2",
			wantInErr: "unencrypted",
		},
		{
			name:      "server offers no AUTH",
			config:    serverConfig{},
			user:      "mailer:TOPSECRET@",
			wantInErr: "no AUTH",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.config.listen != "" {
				if ln, err := net.Listen("tcp", tt.config.listen); err != nil {
					t.Skipf("cannot listen on %s: %v", tt.config.listen, err)
				} else {
					_ = ln.Close()
				}
			}
			ts := startServer(t, tt.config)
			opts := SMTPOptions{Timeout: 5 * time.Second}
			if tt.tls {
				opts.TLSConfig = &tls.Config{RootCAs: ts.roots}
			}
			host := tt.host
			if host == "" {
				host = "127.0.0.1"
			}
			s, err := NewSMTP("smtp://"+tt.user+host+":"+ts.port, "noreply@example.com", opts)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), testEmail())
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if got := IsPermanent(err); got != tt.wantPerm {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.wantPerm)
			}
			var pe *PermanentError
			if got := errors.As(err, &pe); got != tt.wantPerm {
				t.Errorf("errors.As(*PermanentError) = %v, want %v", got, tt.wantPerm)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantInErr)
			}
			for _, secret := range []string{"WRONGPASS", "TOPSECRET"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the password", err)
				}
			}
			if n := len(ts.messages()); n != 0 {
				t.Errorf("server received %d messages, want 0", n)
			}
		})
	}
}

func TestSMTPServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens here now
	s, err := NewSMTP("smtp://"+addr, "", SMTPOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Send(context.Background(), testEmail())
	if err == nil {
		t.Fatal("Send succeeded with no server")
	}
	if IsPermanent(err) {
		t.Errorf("error %v is permanent, want temporary", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %v", d)
	}
}

// TestSMTPStalledServer: a server that accepts and never greets is bounded
// by the timeout, and by ctx.
func TestSMTPStalledServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, say nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})

	t.Run("timeout", func(t *testing.T) {
		s, err := NewSMTP("smtp://"+l.Addr().String(), "", SMTPOptions{Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = s.Send(context.Background(), testEmail())
		if err == nil || IsPermanent(err) {
			t.Fatalf("Send = %v, want a temporary error", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Send took %v with a 300ms timeout", d)
		}
	})
	t.Run("context", func(t *testing.T) {
		s, err := NewSMTP("smtp://"+l.Addr().String(), "", SMTPOptions{Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = s.Send(ctx, testEmail())
		if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
			t.Fatalf("Send = %v, want a temporary context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Send took %v with a 200ms context", d)
		}
	})
}

func TestSMTPRefusesWrongMessages(t *testing.T) {
	s, err := NewSMTP("smtp://127.0.0.1:1", "", SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sms := testEmail()
	sms.Channel = deadbolt.ChannelSMS
	badTo := testEmail()
	badTo.To = "not an address"
	for name, m := range map[string]*deadbolt.Message{"nil": nil, "sms": sms, "bad recipient": badTo} {
		if err := s.Send(context.Background(), m); !IsPermanent(err) {
			t.Errorf("%s: Send = %v, want a permanent error", name, err)
		}
	}
}

func TestNewSMTP(t *testing.T) {
	tests := []struct {
		url      string
		wantErr  bool
		host     string
		port     int
		implicit bool
		user     string
		pass     string
	}{
		{url: "smtp://mail.example.com", host: "mail.example.com", port: 587},
		{url: "smtps://mail.example.com", host: "mail.example.com", port: 465, implicit: true},
		{url: "smtp://mail.example.com:2525", host: "mail.example.com", port: 2525},
		{url: "SMTPS://u:p@mail.example.com:4650/", host: "mail.example.com", port: 4650, implicit: true, user: "u", pass: "p"},
		{url: "smtp://u%40x:p%2Fq@[::1]:25", host: "::1", port: 25, user: "u@x", pass: "p/q"},
		{url: "smtp://user@mail.example.com", host: "mail.example.com", port: 587, user: "user"},
		{url: "", wantErr: true},
		{url: "mail.example.com:25", wantErr: true},
		{url: "http://mail.example.com", wantErr: true},
		{url: "smtp://", wantErr: true},
		{url: "smtp://mail.example.com:0", wantErr: true},
		{url: "smtp://mail.example.com:70000", wantErr: true},
		{url: "smtp://mail.example.com/path", wantErr: true},
		{url: "smtp://mail.example.com?tls=no", wantErr: true},
		{url: "smtp://:secret@mail.example.com", wantErr: true},
		{url: "smtp:mail.example.com", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := NewSMTP(tt.url, "", SMTPOptions{})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewSMTP(%q) succeeded, want an error", tt.url)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewSMTP(%q): %v", tt.url, err)
			}
			if s.host != tt.host || s.port != tt.port || s.implicitTLS != tt.implicit || s.user != tt.user || s.pass != tt.pass || s.auth != (tt.user != "") {
				t.Errorf("got host=%q port=%d implicit=%v user=%q pass=%q auth=%v, want %q %d %v %q %q",
					s.host, s.port, s.implicitTLS, s.user, s.pass, s.auth, tt.host, tt.port, tt.implicit, tt.user, tt.pass)
			}
			if s.tlsConfig.ServerName != tt.host {
				t.Errorf("TLS ServerName = %q, want %q", s.tlsConfig.ServerName, tt.host)
			}
			if s.from.Address != DefaultFrom || s.domain != "localhost" {
				t.Errorf("from = %q (domain %q), want %s", s.from.Address, s.domain, DefaultFrom)
			}
			if s.timeout != 10*time.Second {
				t.Errorf("timeout = %v, want 10s", s.timeout)
			}
		})
	}
}

// TestNewSMTPNeverShowsPassword: whatever is wrong with the URL, the
// error does not quote the password.
func TestNewSMTPNeverShowsPassword(t *testing.T) {
	const pw = "Sup3rS3cret"
	urls := []string{
		"smtp://user:" + pw + "@mail.example.com:bad",
		"smtp://user:" + pw + "@mail.example.com:99999",
		"smtp://user:" + pw + "@mail.example.com/x",
		"smtp://user:" + pw + "@mail.example.com?q=1",
		"ftp://user:" + pw + "@mail.example.com",
		"smtp://user:" + pw + "/x@mail.example.com",
		"smtp://user:" + pw + "%zz@mail.example.com",
		"smtp://user:" + pw + " @mail.example.com",
		"smtp://user:" + pw + "@mail example.com",
		"smtp://user:" + pw + "@",
		"user:" + pw + "@mail.example.com:25",
		"smtp://user:" + pw + "\x7f@mail.example.com",
		"smtp://user:1" + pw + "/x@mail.example.com",
		"smtp://user:12/" + pw + "@mail.example.com",
	}
	for _, u := range urls {
		_, err := NewSMTP(u, "", SMTPOptions{})
		if err == nil {
			t.Errorf("NewSMTP(%q) succeeded, want an error", u)
			continue
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "S3cret") {
			t.Errorf("NewSMTP(%q) error %q shows the password", u, err)
		}
	}
	// And a valid URL does not show it either.
	s, err := NewSMTP("smtp://user:"+pw+"@mail.example.com", "", SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if str := fmt.Sprint(s); strings.Contains(str, pw) {
		t.Errorf("String() = %q shows the password", str)
	}
}

func TestNewSMTPFrom(t *testing.T) {
	for _, from := range []string{"not an address", "a@", "<>"} {
		if _, err := NewSMTP("smtp://mail.example.com", from, SMTPOptions{}); err == nil {
			t.Errorf("NewSMTP with from %q succeeded, want an error", from)
		}
	}
}

func TestMessageIDLeft(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc123", "abc123"},
		{"01H-xyz_=+", "01H-xyz_=+"},
		{"a b<c>@d.e", "a_b_c__d_e"},
	}
	for _, tt := range tests {
		if got := messageIDLeft(tt.in); got != tt.want {
			t.Errorf("messageIDLeft(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
