package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/deadbolt/deadbolt/internal/clientip"
)

// Config is everything the operator can set. It is read in this order, each
// source overriding the one before: defaults, the optional --config file
// (lines of DEADBOLT_NAME=value), DEADBOLT_* environment variables, flags.
// Nothing outside package main reads configuration.
type Config struct {
	Addr         string
	DB           string
	KeyFile      string
	PublicURL    string
	SMTPURL      string
	SMTPFrom     string
	SMSWebhook   string
	TwilioSID    string
	TwilioToken  string
	TwilioFrom   string
	TwilioBase   string
	PasswordHash string
	LogFormat    string
	LogLevel     string
	// TrustedProxies are the CIDRs whose X-Forwarded-For and Forwarded
	// headers name the client; empty: nobody's.
	TrustedProxies string
}

// setting is one configuration value: its flag, environment variable,
// default and help, in one place so the three cannot drift apart.
type setting struct {
	flag, env, def, help string
	dst                  func(*Config) *string
	secret               bool // never printed
}

var settings = []setting{
	{"addr", "DEADBOLT_ADDR", "127.0.0.1:8080", "address to listen on", func(c *Config) *string { return &c.Addr }, false},
	{"db", "DEADBOLT_DB", "deadbolt.db", "SQLite file, or a postgres:// URL for PostgreSQL", func(c *Config) *string { return &c.DB }, false},
	{"key-file", "DEADBOLT_KEY_FILE", "", "key file for secrets at rest (default: deadbolt.key beside the SQLite file, created on first run; required with PostgreSQL)", func(c *Config) *string { return &c.KeyFile }, false},
	{"public-url", "DEADBOLT_PUBLIC_URL", "", "the URL people reach the service at (default http:// + addr)", func(c *Config) *string { return &c.PublicURL }, false},
	{"smtp-url", "DEADBOLT_SMTP_URL", "", "smtp://user:pass@host:port (STARTTLS when offered) or smtps:// (implicit TLS); unset: development outbox", func(c *Config) *string { return &c.SMTPURL }, true},
	{"smtp-from", "DEADBOLT_SMTP_FROM", "deadbolt@localhost", "sender address of emails", func(c *Config) *string { return &c.SMTPFrom }, false},
	{"sms-webhook-url", "DEADBOLT_SMS_WEBHOOK_URL", "", "URL to POST {\"to\",\"body\"} JSON to for each SMS; unset: development outbox", func(c *Config) *string { return &c.SMSWebhook }, true},
	{"twilio-account-sid", "DEADBOLT_TWILIO_ACCOUNT_SID", "", "Twilio-compatible SMS: account SID", func(c *Config) *string { return &c.TwilioSID }, false},
	{"twilio-auth-token", "DEADBOLT_TWILIO_AUTH_TOKEN", "", "Twilio-compatible SMS: auth token", func(c *Config) *string { return &c.TwilioToken }, true},
	{"twilio-from", "DEADBOLT_TWILIO_FROM", "", "Twilio-compatible SMS: sender number", func(c *Config) *string { return &c.TwilioFrom }, false},
	{"twilio-base-url", "DEADBOLT_TWILIO_BASE_URL", "https://api.twilio.com", "Twilio-compatible SMS: API base URL", func(c *Config) *string { return &c.TwilioBase }, false},
	{"password-hash", "DEADBOLT_PASSWORD_HASH", "argon2id:m=19456,t=2,p=1", "password hashing parameters for new hashes", func(c *Config) *string { return &c.PasswordHash }, false},
	{"log-format", "DEADBOLT_LOG_FORMAT", "text", "log format: text or json", func(c *Config) *string { return &c.LogFormat }, false},
	{"log-level", "DEADBOLT_LOG_LEVEL", "info", "log level: debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }, false},
	{"trusted-proxies", "DEADBOLT_TRUSTED_PROXIES", "", "comma-separated CIDRs of the proxies in front of the service; only from them is the client address taken from X-Forwarded-For or Forwarded (default: none)", func(c *Config) *string { return &c.TrustedProxies }, false},
}

// bindConfig registers the settings (and --config) on fs. Call load after
// fs.Parse to fill the config in.
func bindConfig(fs *flag.FlagSet, getenv func(string) string) (load func() (*Config, error)) {
	var c Config
	var file string
	fs.StringVar(&file, "config", getenv("DEADBOLT_CONFIG"), "optional file of DEADBOLT_NAME=value lines (env: DEADBOLT_CONFIG)")
	for _, s := range settings {
		fs.StringVar(s.dst(&c), s.flag, s.def, s.help+" (env: "+s.env+")")
	}
	return func() (*Config, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		fileVals := map[string]string{}
		if file != "" {
			var err error
			if fileVals, err = readConfigFile(file); err != nil {
				return nil, err
			}
		}
		for _, s := range settings {
			if set[s.flag] {
				continue
			}
			if v := getenv(s.env); v != "" {
				*s.dst(&c) = v
			} else if v, ok := fileVals[s.env]; ok {
				*s.dst(&c) = v
			}
		}
		return &c, c.validate()
	}
}

// readConfigFile reads DEADBOLT_NAME=value lines; # starts a comment line.
func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !known[k] {
			return nil, fmt.Errorf("config file %s:%d: want DEADBOLT_NAME=value with a known name", path, n)
		}
		vals[k] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return vals, sc.Err()
}

func (c *Config) validate() error {
	if c.DB == "" {
		return errors.New("--db must not be empty")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errors.New("--public-url must be an http:// or https:// URL, such as https://desk.example.com")
	}
	if _, err := clientip.Parse(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if c.SMTPURL != "" {
		u, err := url.Parse(c.SMTPURL)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			// The URL may hold a password: never echo it.
			return errors.New("--smtp-url must look like smtp://user:pass@host:port or smtps://user:pass@host:port")
		}
	}
	if c.SMSWebhook != "" {
		u, err := url.Parse(c.SMSWebhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("--sms-webhook-url must be an http:// or https:// URL")
		}
	}
	twilio := []string{c.TwilioSID, c.TwilioToken, c.TwilioFrom}
	if n := len(slices.DeleteFunc(slices.Clone(twilio), func(s string) bool { return s == "" })); n != 0 && n != len(twilio) {
		return errors.New("twilio SMS needs all of --twilio-account-sid, --twilio-auth-token and --twilio-from")
	}
	if c.TwilioSID != "" && c.SMSWebhook != "" {
		return errors.New("choose one SMS provider: --sms-webhook-url or the --twilio-* settings")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level must be debug, info, warn or error, not %q", c.LogLevel)
	}
	return nil
}

// defaultKeyFile is where the key file lives when --key-file is not given:
// beside the SQLite database.
func (c *Config) defaultKeyFile() string {
	path := strings.TrimPrefix(c.DB, "file:")
	path, _, _ = strings.Cut(path, "?")
	return filepath.Join(filepath.Dir(path), "deadbolt.key")
}

// checkPublicURL refuses a plain-HTTP public URL anywhere but on this
// machine: the cookies would then go without Secure and the __Host- prefix
// over a network. Behind a TLS-terminating proxy the public URL is https.
func (c *Config) checkPublicURL() error {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return err
	}
	if u.Scheme == "https" || loopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("--public-url %s is plain HTTP on a host other than this machine, so session cookies would cross the network without Secure: use an https:// public URL (a TLS-terminating proxy in front of Deadbolt is the normal deployment)", c.PublicURL)
}

// loopbackHost reports whether a URL's host is this machine: localhost,
// 127.0.0.0/8 or ::1.
func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}
