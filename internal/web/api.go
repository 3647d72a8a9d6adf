package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
)

// maxBody is the largest request body the API reads.
const maxBody = 64 << 10

// apiHandler is an API endpoint: it returns an error instead of writing
// one, so every failure goes through writeError.
type apiHandler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) api(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authed is an endpoint that needs a principal.
type authedHandler func(w http.ResponseWriter, r *http.Request, p *signin.Principal) error

// session wraps an endpoint that needs a session; enrolment lets a
// challenge of a sign-in that waits for enrolment through as well.
func (s *Server) authed(enrolment bool, h authedHandler) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		token, ok := bearer(r)
		if !ok {
			return deadbolt.Errorf(deadbolt.EUnauthorized, "Send your session token as Authorization: Bearer <token>.")
		}
		p, err := s.signin.Authenticate(r.Context(), token)
		if err != nil {
			return err
		}
		if p.Session == nil && !enrolment {
			return deadbolt.Errorf(deadbolt.EUnauthorized, "Finish setting up two-factor authentication first.")
		}
		return h(w, r, p)
	})
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// client describes the caller for the sign-in machine: the address and
// user agent that withClient found (forwarding headers count only from a
// trusted proxy), and the remembered device the API caller names.
func client(r *http.Request) signin.Client {
	c := signin.ClientOf(r.Context())
	c.DeviceToken = r.Header.Get("Deadbolt-Device")
	return c
}

// decode reads a JSON request body into dst: the right content type, at
// most 64 KiB, one JSON object with known fields of the right types. Any
// failure is a 4xx error that names what was wrong.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return deadbolt.Errorf(deadbolt.EUnsupportedMediaType, "Send the body as JSON with Content-Type: application/json.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return decodeError(err)
	}
	// One JSON object: null, arrays and strings are no request, even where
	// decoding them would quietly leave the defaults (a PUT of null must
	// not reset a policy).
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) == 0 {
			return deadbolt.Invalid("", "The body is empty: send a JSON object.")
		}
		return deadbolt.Invalid("", "The body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return deadbolt.Invalid("", "The body must hold one JSON object and nothing after it.")
	}
	return nil
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return deadbolt.Errorf(deadbolt.ETooLarge, "The body is larger than 64 KiB.")
	case errors.As(err, &te):
		if te.Field == "" {
			return deadbolt.Invalid("", "The body must be a JSON object.")
		}
		return deadbolt.Invalid(te.Field, "%s must be %s.", te.Field, jsonKind(te.Type.Kind().String()))
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return deadbolt.Invalid("", "The body is not valid JSON.")
	case errors.Is(err, io.EOF):
		return deadbolt.Invalid("", "The body is empty: send a JSON object.")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return deadbolt.Invalid(f, "Unknown field %q.", f)
	}
	return deadbolt.Invalid("", "The body is not a valid request.")
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

// ts formats a time for the API: RFC 3339 in UTC, or null when unset.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// jsonErrors makes the router's own 404 and 405 answers under /api/ JSON
// like every other API error. Handlers' answers pass through untouched.
func jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&routerErrorWriter{ResponseWriter: w, r: r}, r)
	})
}

type routerErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (w *routerErrorWriter) WriteHeader(code int) {
	// The router matched no pattern: its plain-text answer is replaced.
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.swallow = true
		h := w.Header()
		h.Del("X-Content-Type-Options")
		body := map[string]any{"code": deadbolt.ENotFound, "message": "There is no such API endpoint."}
		if code == http.StatusMethodNotAllowed {
			body = map[string]any{"code": "method_not_allowed",
				"message": "This endpoint does not accept " + w.r.Method + "; it accepts " + h.Get("Allow") + "."}
		}
		writeJSON(w.ResponseWriter, code, map[string]any{"error": body})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *routerErrorWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *routerErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
