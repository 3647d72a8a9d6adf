package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/deadbolt/deadbolt"
)

// userAgent is the User-Agent of every HTTP request.
const userAgent = "deadbolt"

// maxErrorBody is how much of an error response goes into the error.
const maxErrorBody = 1 << 10

// defaultHTTPClient is the client of a sender given none: the default
// timeout, and no redirects (a redirected POST becomes a GET, which is
// never what a messaging API wants; the 3xx is reported instead).
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: defaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// checkSMS validates an SMS before sending: right channel, E.164 number.
func checkSMS(service string, m *deadbolt.Message) error {
	if m == nil {
		return Permanent(fmt.Errorf("notify: %s: nil message", service))
	}
	if m.Channel != deadbolt.ChannelSMS {
		return Permanent(fmt.Errorf("notify: %s: cannot send a message of channel %q", service, m.Channel))
	}
	if !isE164(m.To) {
		return Permanent(fmt.Errorf("notify: %s: recipient %q is not an E.164 number (+ and up to 15 digits)", service, m.To))
	}
	return nil
}

// isE164 reports whether s is "+" and 2 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// permanentStatus reports whether a non-2xx status means retrying cannot
// help: 4xx except 408 (Request Timeout) and 429 (Too Many Requests).
// 3xx (a misconfigured URL, fixable) and 5xx are worth retrying.
func permanentStatus(code int) bool {
	return code >= 400 && code <= 499 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// statusError builds the error for a refused request; detail describes the
// response body.
func statusError(service string, code int, detail string) error {
	err := fmt.Errorf("notify: %s: HTTP %d %s", service, code, http.StatusText(code))
	if detail != "" {
		err = fmt.Errorf("%w: %s", err, detail)
	}
	if permanentStatus(code) {
		return Permanent(err)
	}
	return err
}

// readErrorBody reads at most maxErrorBody bytes of body, then drains a
// little more so the connection can be reused.
func readErrorBody(body io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	return b
}

// quoteBody renders a response body for an error message: trimmed, valid
// UTF-8, cleaned of what it echoes of m (see redactEcho), quoted so that
// control characters cannot forge log lines.
func quoteBody(b []byte, m *deadbolt.Message) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	truncated := len(b) >= maxErrorBody
	if truncated {
		// The cut may fall inside the number or the code, leaving a piece
		// too short for redactEcho to recognise: drop a trailing partial
		// run.
		s = strings.TrimRight(s, "0123456789+")
	}
	s = redactEcho(s, m)
	if s == "" {
		return ""
	}
	if truncated {
		return fmt.Sprintf("%q (truncated)", s)
	}
	return fmt.Sprintf("%q", s)
}

// transportError wraps the error of http.Client.Do (temporary) without the
// *url.Error around it, which would repeat the full URL, query included.
func transportError(ctx context.Context, service, endpoint string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("notify: %s: POST %s: %w (%w)", service, endpoint, cerr, err)
	}
	return fmt.Errorf("notify: %s: POST %s: %w", service, endpoint, err)
}

// displayURL is u without user information, query and fragment: safe for
// errors and logs even when the URL carries a token.
func displayURL(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}
