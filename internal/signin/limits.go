package signin

import (
	"context"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/clientip"
)

// Counter keys. Password failures are counted by email, not by user, so an
// unknown email is limited exactly like a known one: the limits themselves
// must not tell which emails have accounts.
func passwordKey(email string) string          { return "pw:" + email }
func secondFactorKey(userID string) string     { return "2fa:" + userID }
func devicePasswordKey(deviceID string) string { return "pw-dev:" + deviceID }

// sessionPasswordKey counts wrong passwords typed on a signed-in session
// (password change, step-up) apart from the email's: the session holder is
// throttled, and nobody else can pause them by failing with their email.
func sessionPasswordKey(sessionID string) string { return "pw-sess:" + sessionID }

// ipKey counts by client address; an IPv6 client by its /64, which one
// host usually has to itself, so hopping through its addresses gains
// nothing.
func ipKey(ip string) string { return "pw-ip:" + clientip.LimitKey(ip) }

// consecutive is the rule of consecutive failures (of a password, or of
// second-factor codes): free tries, then a doubling wait, then a pause. A
// wait always ends by itself: there is no lock only an admin can lift.
// Failures are remembered FailureMemory after the latest, not the first:
// a steady guesser never gets a fresh set of free tries.
func (l Limits) consecutive() deadbolt.AttemptRule {
	return deadbolt.AttemptRule{Window: l.FailureMemory, Sliding: true, Free: l.BackoffFrom, Base: 2 * time.Second, PauseAt: l.PauseAt, Pause: l.Pause}
}

// perIP is the cap on wrong passwords from one client address to an
// account per IPWindow, so one client cannot spray passwords over many
// emails.
func (l Limits) perIP() deadbolt.AttemptRule {
	return deadbolt.AttemptRule{Window: l.IPWindow, Free: l.IPFailures, PauseAt: l.IPFailures, Pause: l.IPWindow}
}

// wait is how long after n consecutive failures the next try waits.
func (l Limits) wait(n int) time.Duration { return l.consecutive().Wait(n) }

// limit is one counter an attempt is reserved under.
type limit struct {
	key  string
	rule deadbolt.AttemptRule
	// consecutive counters end with a success (reset); others (per-IP
	// caps) only get the success's attempt back.
	consecutive bool
	what        string // the refusal's words
	count       int    // once reserved: the count with this try
}

func (s *Service) backoffLimit(key, what string) limit {
	return limit{key: key, rule: s.limits.consecutive(), consecutive: true, what: what}
}

// ipLimit is the per-IP cap; none without an address (the command line).
func (s *Service) ipLimit(ip string) limit {
	if ip == "" {
		return limit{}
	}
	return limit{key: ipKey(ip), rule: s.limits.perIP(), what: "Too many wrong passwords came from your network."}
}

// attempt is a try reserved, before any work, under every limit that
// applies: racing tries cannot get past a limit, because each is counted
// before it is checked. Once the outcome is known it either stays counted
// (a failure), is given back (it proved nothing), or succeeded.
type attempt struct {
	s         *Service
	accountID string
	limits    []limit
}

// reserve reserves a try under each limit, all in one transaction. If
// one refuses, none is counted and the answer is rate_limited, with the
// wait of the limit that refused.
func (s *Service) reserve(ctx context.Context, accountID string, now time.Time, limits ...limit) (*attempt, error) {
	a := &attempt{s: s, accountID: accountID}
	var specs []deadbolt.AttemptLimit
	for _, l := range limits {
		if l.key != "" {
			a.limits = append(a.limits, l)
			specs = append(specs, deadbolt.AttemptLimit{Key: l.key, Rule: l.rule})
		}
	}
	if len(specs) == 0 {
		return a, nil
	}
	counters, refused, err := s.store.ReserveAttempts(ctx, accountID, now, specs...)
	if err != nil {
		return nil, err
	}
	if refused >= 0 {
		return nil, a.limits[refused].refusal(counters[refused], now)
	}
	for i := range a.limits {
		a.limits[i].count = counters[i].Count
	}
	return a, nil
}

// refusal is the answer when the limit refused a try: rate_limited, with
// the wait until the counter lets one through.
func (l limit) refusal(c deadbolt.Counter, now time.Time) error {
	next := l.rule.NextAt(c, now)
	if next.IsZero() {
		next = now.Add(time.Second) // let go meanwhile: ask again
	}
	return rateLimited(next.Sub(now), l.what)
}

// left is how many more tries the first consecutive limit lets through
// before it makes the caller wait, counting this one as spent.
func (a *attempt) left() int {
	for _, l := range a.limits {
		if l.consecutive {
			return max(0, l.rule.Free-l.count)
		}
	}
	return 0
}

// succeeded ends the consecutive failures and gives the per-IP attempt
// back, in one transaction. A counter left behind only makes the next try
// stricter, so an error is logged rather than failing what already
// succeeded.
func (a *attempt) succeeded(ctx context.Context) {
	var reset, release []string
	for _, l := range a.limits {
		if l.consecutive {
			reset = append(reset, l.key)
		} else {
			release = append(release, l.key)
		}
	}
	a.settle(ctx, reset, release, "attempt counter not cleared")
}

// giveBack returns every reserved attempt: the try proved nothing (the
// caller went away, a right code came too late).
func (a *attempt) giveBack(ctx context.Context) {
	var release []string
	for _, l := range a.limits {
		release = append(release, l.key)
	}
	a.settle(ctx, nil, release, "attempt not given back")
	a.limits = nil
}

func (a *attempt) settle(ctx context.Context, reset, release []string, what string) {
	// A caller that went away still settles its attempts.
	ctx = context.WithoutCancel(ctx)
	if err := a.s.store.SettleAttempts(ctx, a.accountID, reset, release); err != nil {
		a.s.log.WarnContext(ctx, what, "err", err)
	}
}

// consecutiveKeys are the counters a success removes, for callers that
// remove them in their own transaction (a sign-in's completion).
func (a *attempt) consecutiveKeys() []string {
	var keys []string
	for _, l := range a.limits {
		if l.consecutive {
			keys = append(keys, l.key)
		}
	}
	return keys
}
