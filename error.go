package deadbolt

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are part of the public API (see docs/api.md): never
// rename one. Each maps to one HTTP status in the web package.
const (
	EInvalid                 = "invalid_request"
	EUnsupportedMediaType    = "unsupported_media_type"
	ETooLarge                = "request_too_large"
	ENotFound                = "not_found"
	EAccountNotFound         = "account_not_found"
	EInvalidCredentials      = "invalid_credentials"
	EInvalidCode             = "invalid_code"
	ECodeExpired             = "code_expired"
	EChallengeExpired        = "challenge_expired"
	ERateLimited             = "rate_limited"
	EUnauthorized            = "unauthorized"
	EForbidden               = "forbidden"
	EReauthenticationNeeded  = "reauthentication_required"
	EMethodNotAllowed        = "method_not_allowed"
	EInvalidPhone            = "invalid_phone"
	EPhoneCountryBlocked     = "phone_country_blocked"
	EPasswordAPIAuthDisabled = "password_api_auth_disabled"
	EConflict                = "conflict"
	// ESSORefused: the identity provider vouched, but Deadbolt will not
	// sign the person in (unknown and no JIT, another domain, a password
	// user). ESSORequired: a password sign-in of someone who must use SSO.
	ESSORefused  = "sso_refused"
	ESSORequired = "sso_required"
	EInternal    = "internal"
)

// Error is the one error type of Deadbolt. Message is safe to show to the
// caller; Err is the internal cause, logged and audited but never shown.
type Error struct {
	Code    string
	Message string
	// Field names the offending input field of an EInvalid error, if any.
	Field string
	// RetryAfter tells an ERateLimited caller when to come back.
	RetryAfter time.Duration
	// Details are extra public fields of the error (e.g. attempts_left).
	Details map[string]any
	Err     error
}

// Error implements the error interface. It includes the cause, so it must
// only be written to logs, never to a response; use Message for that.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted public message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EInvalid error that names the offending field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an application error. Any other error is
// EInternal: unexpected failures never leak their text to callers.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the public message of an application error, or a
// generic one for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// IsCode reports whether err is an application error with the code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
