package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	mailsmtp "github.com/wneessen/go-mail/smtp"

	"github.com/deadbolt/deadbolt"
)

// defaultTimeout bounds a connection attempt and each exchange with a
// server when the caller gives no timeout of its own.
const defaultTimeout = 10 * time.Second

// DefaultFrom is the sender address when none is configured.
const DefaultFrom = "deadbolt@localhost"

// SMTPOptions tune an [SMTP] sender. The zero value is ready to use.
type SMTPOptions struct {
	// TLSConfig is the TLS configuration for STARTTLS and smtps; it is
	// cloned, its ServerName defaults to the host of the URL and its
	// MinVersion to TLS 1.2. Tests set RootCAs to trust a self-signed
	// server. Nil: the system roots.
	TLSConfig *tls.Config
	// Timeout bounds the connection and each exchange with the server.
	// Zero: 10 seconds.
	Timeout time.Duration
	// HeloName is the name sent with EHLO. Empty: the host name of the
	// machine.
	HeloName string
}

// SMTP sends email through an SMTP submission server. It is safe for
// concurrent use: each Send opens its own connection.
type SMTP struct {
	host        string
	port        int
	implicitTLS bool
	user, pass  string
	auth        bool
	from        *netmail.Address
	domain      string // of the From address: the right side of Message-IDs
	tlsConfig   *tls.Config
	timeout     time.Duration
	helo        string
	shown       string // the URL without its password, for errors
}

// NewSMTP returns a sender for the server of rawURL, smtp:// (STARTTLS when
// offered, port 587 by default) or smtps:// (implicit TLS, port 465 by
// default), with optional user and password. from is the From address, a
// bare address or "Name <address>"; empty means [DefaultFrom]. Errors never
// contain the password.
func NewSMTP(rawURL, from string, opts SMTPOptions) (*SMTP, error) {
	shown := redactURL(rawURL)
	bad := func(reason string) error {
		return fmt.Errorf("notify: invalid SMTP URL %q: %s", shown, reason)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, bad(urlParseReason(rawURL))
	}
	s := &SMTP{shown: shown, timeout: opts.Timeout}
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.port, s.implicitTLS = 465, true
	default:
		return nil, bad("the scheme must be smtp or smtps")
	}
	if u.Opaque != "" {
		return nil, bad("want smtp://host:port")
	}
	if s.host = u.Hostname(); s.host == "" {
		return nil, bad("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad("invalid port")
		}
		s.port = n
	}
	if u.Path != "" && u.Path != "/" {
		return nil, bad("unexpected path")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, bad("unexpected query or fragment")
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		if s.user == "" {
			if s.pass != "" {
				return nil, bad("a password without a user")
			}
		} else {
			s.auth = true
		}
	}

	if from == "" {
		from = DefaultFrom
	}
	a, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("notify: invalid SMTP from address %q: %w", from, err)
	}
	s.from = a
	s.domain = a.Address[strings.LastIndexByte(a.Address, '@')+1:]
	if s.domain == "" || strings.ContainsAny(s.domain, "<>\"\\ ") {
		return nil, fmt.Errorf("notify: invalid SMTP from address %q: no usable domain", from)
	}

	if s.timeout <= 0 {
		s.timeout = defaultTimeout
	}
	if opts.TLSConfig != nil {
		s.tlsConfig = opts.TLSConfig.Clone()
	} else {
		s.tlsConfig = &tls.Config{}
	}
	if s.tlsConfig.ServerName == "" {
		s.tlsConfig.ServerName = s.host
	}
	if s.tlsConfig.MinVersion == 0 {
		s.tlsConfig.MinVersion = tls.VersionTLS12
	}
	s.helo = opts.HeloName
	if s.helo == "" {
		if s.helo, err = os.Hostname(); err != nil || s.helo == "" {
			s.helo = "localhost"
		}
	}
	return s, nil
}

// String describes the sender without its password.
func (s *SMTP) String() string { return s.shown }

// Send delivers m, an email, in one SMTP session. See the package
// documentation for which errors are permanent. Cancelling ctx aborts the
// session at once.
func (s *SMTP) Send(ctx context.Context, m *deadbolt.Message) error {
	if m == nil {
		return Permanent(errors.New("notify: smtp: nil message"))
	}
	if m.Channel != deadbolt.ChannelEmail {
		return Permanent(fmt.Errorf("notify: smtp: cannot send a message of channel %q", m.Channel))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("notify: smtp %s: %w", s.shown, err)
	}
	msg, err := s.build(m)
	if err != nil {
		return Permanent(err)
	}

	// The context go-mail hands to the dialer only covers the dial; the
	// session after it would run on its own deadlines. Closing the
	// connection when ctx ends makes cancellation reach every step.
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	dial := func(dctx context.Context, _, _ string) (net.Conn, error) {
		conn, err := s.dial(dctx)
		if err != nil {
			return nil, err
		}
		stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}

	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(s.timeout),
		gomail.WithHELO(s.helo),
		gomail.WithTLSConfig(s.tlsConfig),
		gomail.WithDialContextFunc(dial),
		gomail.WithoutNoop(),
	}
	if s.implicitTLS {
		// The dialer does the handshake; WithSSL keeps go-mail from
		// attempting STARTTLS on top of it.
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.auth {
		opts = append(opts, gomail.WithSMTPAuthCustom(&plainOrLogin{user: s.user, pass: s.pass, host: s.host}))
	}
	client, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return fmt.Errorf("notify: smtp %s: %w", s.shown, err)
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if err == nil || msg.IsDelivered() {
		// Delivered: the server accepted the DATA. A failure after that
		// (RSET, QUIT) must not cause a retry, which would send it twice.
		return nil
	}
	return s.classify(ctx, err, m)
}

// dial connects to the server, with the TLS handshake for smtps.
func (s *SMTP) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s.host, strconv.Itoa(s.port)))
	if err != nil {
		return nil, err
	}
	// go-mail sets no deadline until it sends the message: without this a
	// server that never greets would hold the session forever.
	if err := conn.SetDeadline(time.Now().Add(s.timeout)); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if !s.implicitTLS {
		return conn, nil
	}
	tc := tls.Client(conn, s.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// build turns m into a MIME message.
func (s *SMTP) build(m *deadbolt.Message) (*gomail.Msg, error) {
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("notify: smtp: invalid recipient %q: %w", m.To, err)
	}
	msg := gomail.NewMsg(
		gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP),
		gomail.WithNoDefaultUserAgent(),
	)
	msg.FromMailAddress(s.from)
	msg.ToMailAddress(to)
	msg.Subject(oneLine(m.Subject))
	msg.SetDate()
	if m.ID != "" {
		msg.SetMessageIDWithValue(messageIDLeft(m.ID) + "@" + s.domain)
	} else {
		msg.SetMessageID()
	}
	// RFC 3834: keeps vacation responders from answering.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// classify wraps a go-mail error, permanent for a 5xx reply to MAIL FROM,
// RCPT TO or DATA. Its text is redacted (see redactEcho): server replies echo
// the recipient ("<alice@example.org>: Recipient address rejected"), and
// go-mail itself appends "affected recipient(s): …". Our prefix, with the
// server's host and port, is left out of redaction.
func (s *SMTP) classify(ctx context.Context, err error, m *deadbolt.Message) error {
	if cerr := ctx.Err(); cerr != nil {
		wrapped := fmt.Errorf("notify: smtp %s: %w (%w)", s.shown, cerr, err)
		return withMessage(wrapped, fmt.Sprintf("notify: smtp %s: %v (%s)", s.shown, cerr, redactEcho(err.Error(), m)))
	}
	wrapped := withMessage(fmt.Errorf("notify: smtp %s: %w", s.shown, err),
		fmt.Sprintf("notify: smtp %s: %s", s.shown, redactEcho(err.Error(), m)))
	var se *gomail.SendError
	if errors.As(err, &se) {
		switch se.Reason {
		case gomail.ErrSMTPMailFrom, gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
			// 530 (authentication required) is about the configuration, not
			// the message: once the operator adds credentials it goes through.
			if c := se.ErrorCode(); c >= 500 && c <= 599 && c != 530 {
				return Permanent(wrapped)
			}
		}
	}
	return wrapped
}

// plainOrLogin authenticates with AUTH PLAIN, or LOGIN when the server
// offers no PLAIN. Both refuse an unencrypted connection except to
// localhost (go-mail's checks).
type plainOrLogin struct {
	user, pass, host string
	inner            mailsmtp.Auth
}

func (a *plainOrLogin) Start(server *mailsmtp.ServerInfo) (string, []byte, error) {
	switch {
	case hasMech(server.Auth, "PLAIN"):
		a.inner = mailsmtp.PlainAuth("", a.user, a.pass, a.host, false)
	case hasMech(server.Auth, "LOGIN"):
		a.inner = mailsmtp.LoginAuth(a.user, a.pass, a.host, false)
	case len(server.Auth) == 0:
		return "", nil, errors.New("server offers no AUTH (after STARTTLS, if any)")
	default:
		return "", nil, fmt.Errorf("server offers neither AUTH PLAIN nor LOGIN (offers %s)", strings.Join(server.Auth, " "))
	}
	return a.inner.Start(server)
}

func (a *plainOrLogin) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.inner.Next(fromServer, more)
}

func hasMech(mechs []string, want string) bool {
	for _, m := range mechs {
		if strings.EqualFold(m, want) {
			return true
		}
	}
	return false
}

// messageIDLeft makes id fit the left side of a Message-ID (RFC 5322
// dot-atom-text), replacing what does not. Store IDs already fit.
func messageIDLeft(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9',
			r == '-', r == '_', r == '+', r == '=':
			return r
		}
		return '_'
	}, id)
}

// oneLine keeps a header value on one line.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// redactURL hides the password of a URL, also one that does not parse:
// everything between "://" and the last "@" is user information, and
// whatever follows its first ":" is replaced.
func redactURL(raw string) string {
	start := strings.Index(raw, "://")
	if start < 0 {
		start = 0
	} else {
		start += 3
	}
	at := strings.LastIndexByte(raw[start:], '@')
	if at < 0 {
		return raw
	}
	userinfo := raw[start : start+at]
	user, _, hasPass := strings.Cut(userinfo, ":")
	if !hasPass {
		return raw
	}
	return raw[:start] + user + ":xxxxx" + raw[start+at:]
}

// urlParseReason explains why raw does not parse without quoting any of its
// password: it parses the redacted form instead, whose error cannot contain
// it, and blames the user information when that form parses.
func urlParseReason(raw string) string {
	_, err := url.Parse(redactURL(raw))
	var ue *url.Error
	switch {
	case err == nil:
		return "malformed user or password (percent-encode reserved characters such as @ : / ? # %)"
	case errors.As(err, &ue):
		return ue.Err.Error()
	default:
		return err.Error()
	}
}
