package signin

import (
	"context"
	"time"
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
func ipKey(ip string) string                     { return "pw-ip:" + ip }

// checkBackoff returns rate_limited while the wait after the counter's
// consecutive failures runs. It is checked before the answer is looked at,
// so the right answer does not get through a pause either.
// It returns the count, so that callers reset only a counter that exists.
func (s *Service) checkBackoff(ctx context.Context, accountID, key string, now time.Time, what string) (int, error) {
	c, err := s.store.PeekCounter(ctx, accountID, key, now)
	if err != nil {
		return 0, err
	}
	if w := s.limits.wait(c.Count); w > 0 {
		if until := c.LastAt.Add(w); now.Before(until) {
			return c.Count, rateLimited(until.Sub(now), what)
		}
	}
	return c.Count, nil
}

// resetIf removes a counter that had counted something.
func (s *Service) resetIf(ctx context.Context, accountID, key string, count int) error {
	if count == 0 {
		return nil
	}
	return s.store.ResetCounter(ctx, accountID, key)
}

// checkIP limits wrong passwords from one client IP to an account, so one
// client cannot spray passwords over many emails.
func (s *Service) checkIP(ctx context.Context, accountID, ip string, now time.Time) error {
	if ip == "" {
		return nil
	}
	c, err := s.store.PeekCounter(ctx, accountID, ipKey(ip), now)
	if err != nil {
		return err
	}
	if c.Count >= s.limits.IPFailures {
		return rateLimited(c.ResetAt.Sub(now), "Too many wrong passwords came from your network.")
	}
	return nil
}

// failPassword counts a wrong password under the key (the email's, or a
// known device's) and for the client IP.
func (s *Service) failPassword(ctx context.Context, accountID, key, ip string, now time.Time) error {
	if _, err := s.store.HitCounter(ctx, accountID, key, s.limits.FailureMemory, now); err != nil {
		return err
	}
	if ip != "" {
		if _, err := s.store.HitCounter(ctx, accountID, ipKey(ip), s.limits.IPWindow, now); err != nil {
			return err
		}
	}
	return nil
}
