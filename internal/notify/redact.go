package notify

import (
	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/redact"
)

// redactEcho removes from text, which comes from a provider (an HTTP
// response body, an SMTP reply), what it may echo of m: its recipient, its
// text and its codes (see redact.Message). Other standalone runs of 4 to 10
// digits go too (a code, or part of a number in a form the rules do not
// list); longer ones, traces and the like, stay, as do the rest of the
// provider's words, for debugging. m may be nil.
func redactEcho(text string, m *deadbolt.Message) string {
	return redact.Message(text, m, 4, 10)
}

// redactedError shows a cleaned message and wraps the original error, so
// that errors.Is and errors.As (context errors, go-mail's SendError) still
// work. Only Error() reaches logs and the store.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// withMessage returns err with the message msg, keeping its chain and its
// permanence.
func withMessage(err error, msg string) error {
	if err == nil || msg == err.Error() {
		return err
	}
	r := &redactedError{msg: msg, err: err}
	if IsPermanent(err) {
		return &PermanentError{Err: r}
	}
	return r
}
