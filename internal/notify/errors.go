package notify

import (
	"errors"

	"github.com/deadbolt/deadbolt"
)

// PermanentError marks an error that retrying cannot cure: a refused
// mailbox, an invalid phone number, a message for the wrong channel. The
// delivery worker fails such a message at once instead of trying again.
type PermanentError struct {
	Err error
}

// Error returns the message of the wrapped error.
func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "permanent delivery failure"
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent reports true: see [deadbolt.Sender].
func (e *PermanentError) Permanent() bool { return true }

// Permanent wraps err in a [PermanentError]. It returns nil for nil, and err
// itself when err is already permanent.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, has a method
// Permanent() bool that returns true.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// The senders of this package.
var (
	_ deadbolt.Sender = (*SMTP)(nil)
	_ deadbolt.Sender = (*Webhook)(nil)
	_ deadbolt.Sender = (*Twilio)(nil)
	_ deadbolt.Sender = (*Outbox)(nil)
)
