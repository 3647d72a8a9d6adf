package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

// testCompletionReplayRace: 1,000 sign-ins racing to complete, each on its
// own challenge with the same TOTP step, commit together in batches where
// the store batches them: exactly one succeeds, every other rolls back its
// own work (no session, no event) and is told the code was used.
func testCompletionReplayRace(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	f := mustFactor(t, s, u, deadbolt.FactorTOTP, true)
	const n = 1000
	challenges := make([]*deadbolt.Challenge, n)
	for i := range challenges {
		challenges[i] = mustChallenge(t, s, u, fmt.Sprint("replay-", i))
	}
	ok, codes := race(n, func(i int) error {
		return s.CompleteChallenge(ctx, &deadbolt.Completion{AccountID: u.AccountID, ChallengeID: challenges[i].ID, MaxAttempts: 5,
			Now: base, TOTPFactorID: f.ID, TOTPStep: 4242,
			Session: &deadbolt.Session{AccountID: u.AccountID, UserID: u.ID, TokenHash: []byte(fmt.Sprint("replay-session-", i)),
				IdleTimeout: time.Hour, ExpiresAt: base.Add(time.Hour), CreatedAt: base},
			Events: []*deadbolt.AuditEvent{{AccountID: u.AccountID, Type: "replay.race", SubjectID: u.ID}}})
	})
	if ok != 1 || codes[deadbolt.EConflict] != n-1 {
		t.Errorf("%d racing completions with one TOTP step: %d succeeded, errors %v; want exactly 1 and %d conflicts", n, ok, codes, n-1)
	}
	if evs, _ := s.FindEvents(ctx, u.AccountID, deadbolt.AuditFilter{Type: "replay.race", Limit: deadbolt.MaxAuditLimit}); len(evs) != 1 {
		t.Errorf("events after the race = %d, want the winner's only", len(evs))
	}
	if ss, _ := s.FindSessions(ctx, u.AccountID, u.ID); len(ss) != 1 {
		t.Errorf("sessions after the race = %d, want the winner's only", len(ss))
	}
	// The losers' challenges are untouched: each can still complete with a
	// later step.
	if err := s.CompleteChallenge(ctx, &deadbolt.Completion{AccountID: u.AccountID, ChallengeID: challenges[0].ID, MaxAttempts: 5,
		Now: base, TOTPFactorID: f.ID, TOTPStep: 4243,
		Session: &deadbolt.Session{AccountID: u.AccountID, UserID: u.ID, TokenHash: []byte("after"), IdleTimeout: time.Hour,
			ExpiresAt: base.Add(time.Hour), CreatedAt: base}}); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("a later step after the race = %v", err)
	}
}

// testReservationsRace: parallel reservations of many users' codes through
// the batcher keep every limit exact.
func testReservationsRace(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	const users, each = 20, 30
	errRefusedRace := fmt.Errorf("refused")
	ok, codes := race(users*each, func(i int) error {
		_, refused, err := s.ReserveAttempts(ctx, a.ID, base, deadbolt.AttemptLimit{Key: fmt.Sprint("u", i%users), Rule: backoff})
		if err == nil && refused >= 0 {
			return errRefusedRace
		}
		return err
	})
	if ok != users*backoff.Free || codes[deadbolt.EInternal] != users*each-users*backoff.Free {
		t.Errorf("%d racing reservations over %d keys: %d through, %v; want %d", users*each, users, ok, codes, users*backoff.Free)
	}
	for u := range users {
		if c, _ := s.PeekCounter(ctx, a.ID, fmt.Sprint("u", u), base); c.Count != backoff.Free {
			t.Errorf("key u%d = %d, want %d", u, c.Count, backoff.Free)
		}
	}
}
