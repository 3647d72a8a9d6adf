package delivery

import (
	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/redact"
)

// scrub cleans a sender's error text before it is stored (last_error),
// audited, logged or shown on /readyz. The senders of package notify redact
// provider answers already; this is defence in depth, for any Sender, so it
// applies the same rules (see redact.Message) without relying on the sender
// having done so, and is deliberately blunter: every standalone run of 4 or
// more digits goes, with no upper bound. That also hides harmless numbers
// (ports, long provider ids); losing those is the price of not leaking a
// code through a sender that forgot to redact.
func scrub(s string, m *deadbolt.Message) string {
	return redact.Message(s, m, 4, 0)
}
