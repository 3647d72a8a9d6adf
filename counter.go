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
