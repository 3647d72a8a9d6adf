package deadbolt

import "time"

// Counter counts attempts or sends under a key (such as "signin-ip:1.2.3.4")
// within a window. It lives in the database so that limits hold across
// processes and restarts.
type Counter struct {
	Key   string
	Count int
	// ResetAt is when the window ends and the count starts again from zero.
	ResetAt time.Time
	// LastAt is the time of the latest hit.
	LastAt time.Time
}

// AttemptRule says when one more attempt counted under a key may go ahead.
// The store applies it in the same statement that counts the attempt, so
// racing attempts, in any number of processes, can never get more tries
// than the rule allows: an attempt is reserved before the work (a password
// hash, a code comparison) and given back only when it proved nothing.
type AttemptRule struct {
	// Window is how long a count is remembered: from its first attempt,
	// or with Sliding from its latest, so that steady failures never
	// start again from zero.
	Window  time.Duration
	Sliding bool
	// Free attempts go ahead at once.
	Free int
	// From Free attempts on, the next one waits Base after the latest,
	// doubling with each (Base, 2×Base, 4×Base …), until the count reaches
	// PauseAt; from then on each waits Pause.
	Base    time.Duration
	PauseAt int
	Pause   time.Duration
}

// Wait is how long after the latest of n attempts the next must wait.
func (r AttemptRule) Wait(n int) time.Duration {
	switch {
	case n < r.Free:
		return 0
	case n >= r.PauseAt:
		return r.Pause
	}
	return r.Base << (n - r.Free)
}

// NextAt is when the counter next lets an attempt through: zero when it
// does now (at now), else the end of the wait or of the window, whichever
// comes first.
func (r AttemptRule) NextAt(c Counter, now time.Time) time.Time {
	if c.Count == 0 || !now.Before(c.ResetAt) {
		return time.Time{}
	}
	w := r.Wait(c.Count)
	if w == 0 {
		return time.Time{}
	}
	until := c.LastAt.Add(w)
	if c.ResetAt.Before(until) {
		until = c.ResetAt
	}
	if !now.Before(until) {
		return time.Time{}
	}
	return until
}

// AttemptLimit is one counter an attempt is reserved under, and its rule.
type AttemptLimit struct {
	Key  string
	Rule AttemptRule
}
