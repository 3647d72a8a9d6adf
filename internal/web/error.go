package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/deadbolt/deadbolt"
)

// statuses is the only map from error code to HTTP status.
var statuses = map[string]int{
	deadbolt.EInvalid:                 http.StatusBadRequest,
	deadbolt.EUnsupportedMediaType:    http.StatusUnsupportedMediaType,
	deadbolt.ETooLarge:                http.StatusRequestEntityTooLarge,
	deadbolt.ENotFound:                http.StatusNotFound,
	deadbolt.EAccountNotFound:         http.StatusNotFound,
	deadbolt.EInvalidCredentials:      http.StatusUnauthorized,
	deadbolt.EInvalidCode:             http.StatusUnauthorized,
	deadbolt.ECodeExpired:             http.StatusUnauthorized,
	deadbolt.EChallengeExpired:        http.StatusGone,
	deadbolt.ERateLimited:             http.StatusTooManyRequests,
	deadbolt.EUnauthorized:            http.StatusUnauthorized,
	deadbolt.EForbidden:               http.StatusForbidden,
	deadbolt.EReauthenticationNeeded:  http.StatusForbidden,
	deadbolt.EMethodNotAllowed:        http.StatusForbidden,
	deadbolt.EInvalidPhone:            http.StatusBadRequest,
	deadbolt.EPhoneCountryBlocked:     http.StatusForbidden,
	deadbolt.EPasswordAPIAuthDisabled: http.StatusUnauthorized,
	deadbolt.ESSORefused:              http.StatusForbidden,
	deadbolt.ESSORequired:             http.StatusForbidden,
	deadbolt.EConflict:                http.StatusConflict,
	deadbolt.EInternal:                http.StatusInternalServerError,
}

// Status returns the HTTP status of an error code; unknown codes are 500.
func Status(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeError writes err as the one JSON error shape. Internal errors are
// logged with their cause and shown only as "Internal error.".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		// The client went away: nobody reads the answer, and it is no
		// failure of ours (499, as nginx names it).
		s.log.DebugContext(r.Context(), "client gone", "method", r.Method, "path", r.URL.Path)
		w.WriteHeader(499)
		return
	}
	code := deadbolt.ErrorCode(err)
	body := map[string]any{"code": code, "message": deadbolt.ErrorMessage(err)}
	var e *deadbolt.Error
	if errors.As(err, &e) {
		if e.Field != "" {
			body["field"] = e.Field
		}
		for k, v := range e.Details {
			if _, taken := body[k]; !taken {
				body[k] = v
			}
		}
		if code == deadbolt.ERateLimited {
			secs := max(1, int((e.RetryAfter+999_999_999)/1_000_000_000))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			body["retry_after"] = secs
		}
	}
	if code == deadbolt.EInternal {
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		body["message"] = "Internal error."
	} else if e != nil && e.Err != nil {
		s.log.DebugContext(r.Context(), "request failed", "code", code, "cause", e.Err)
	}
	writeJSON(w, Status(code), map[string]any{"error": body})
}

// writeJSON writes v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}
