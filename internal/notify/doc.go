// Package notify delivers Deadbolt's messages (passcodes and notices) by
// email and SMS. Each sender implements [deadbolt.Sender]; the delivery
// worker picks one per channel and retries whatever it returns, except an
// error with a method Permanent() bool that returns true (see
// [PermanentError] and [IsPermanent]): retrying that cannot help.
//
// # Email: [SMTP]
//
// [NewSMTP] takes the --smtp-url of the command line:
//
//	smtp://user:pass@host:port   STARTTLS when the server offers it, plain otherwise (port 587 by default)
//	smtps://user:pass@host:port  implicit TLS from the first byte (port 465 by default)
//
// User and password are percent-decoded and optional; with a user the
// client authenticates with AUTH PLAIN, or LOGIN when the server offers no
// PLAIN. Credentials are never sent over an unencrypted connection, except
// to localhost: a plain smtp:// server that offers no STARTTLS fails the
// authentication rather than leak the password (a temporary error, so
// nothing is lost while the operator fixes the URL). Each message carries a
// Message-ID made of the message's own ID and the domain of the From
// address, the same on every attempt, so a receiver can drop the duplicate
// of a retry whose acknowledgement was lost. A 5xx reply to MAIL FROM, RCPT
// TO or DATA (a refused mailbox, say) is permanent; everything else (4xx
// replies, refused connections, timeouts, TLS and authentication problems)
// is temporary.
//
// # SMS: [Webhook] and [Twilio]
//
// [Webhook] POSTs {"to": "+E164", "body": "..."} as JSON to the
// --sms-webhook-url, with an Idempotency-Key header holding the message ID
// so the receiver can drop a retried duplicate. [Twilio] sends through the
// Messages resource of the Twilio REST API, or of any service that mimics
// it (the base URL is configurable, for tests). For both, a 2xx answer is
// success; a 4xx answer other than 408 and 429 is permanent; 408, 429, 5xx
// and network errors are temporary. Errors carry the status and at most
// 1 KiB of the response body, never credentials. Provider answers (HTTP
// bodies, SMTP replies) often echo the request, so the recipient, the
// message text and runs of 4 to 10 digits (the passcode) are replaced in
// them by [recipient], [text] and [digits].
//
// # The development outbox: [Outbox]
//
// When no email or SMS transport is configured, messages go to the
// development outbox. It delivers nothing: it keeps the last messages in
// memory ([Outbox.Messages]) and logs each one at WARN level, body
// included, under the marker "DEVELOPMENT OUTBOX: not delivered, not for
// production". Logging the body, passcodes and all, is the point: in
// development the log is the only place an operator can read a code. It
// must therefore never be what a production deployment uses.
package notify
