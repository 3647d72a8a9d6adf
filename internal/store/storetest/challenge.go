package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/google/go-cmp/cmp"
)

func mustChallenge(t *testing.T, s Store, u *deadbolt.User, hash string) *deadbolt.Challenge {
	t.Helper()
	c := &deadbolt.Challenge{AccountID: u.AccountID, UserID: u.ID, TokenHash: []byte(hash), Purpose: deadbolt.ChallengeSecondFactor,
		IP: "192.0.2.9", CreatedAt: base, ExpiresAt: base.Add(deadbolt.ChallengeTTL)}
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatalf("CreateChallenge = %v", err)
	}
	return c
}

func testChallenges(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	c := mustChallenge(t, s, u, "challenge-1")
	got, err := s.FindChallengeByTokenHash(ctx, []byte("challenge-1"))
	if err != nil {
		t.Fatalf("FindChallengeByTokenHash = %v", err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("challenge round trip (-created +found):\n%s", diff)
	}
	_, err = s.FindChallengeByTokenHash(ctx, []byte("nope"))
	wantCode(t, "FindChallengeByTokenHash(unknown)", err, deadbolt.ENotFound)
	wantCode(t, "CreateChallenge(same token hash)", s.CreateChallenge(ctx, &deadbolt.Challenge{AccountID: u.AccountID, UserID: u.ID,
		TokenHash: []byte("challenge-1"), Purpose: deadbolt.ChallengeEnrollment, ExpiresAt: base.Add(time.Minute)}), deadbolt.EConflict)

	for want := 1; want <= 5; want++ {
		n, err := s.FailChallenge(ctx, u.AccountID, c.ID, deadbolt.ChallengeMaxAttempts)
		if err != nil || n != want {
			t.Fatalf("FailChallenge #%d = %d, %v", want, n, err)
		}
	}
	_, err = s.FailChallenge(ctx, u.AccountID, c.ID, deadbolt.ChallengeMaxAttempts)
	wantCode(t, "FailChallenge past the limit", err, deadbolt.ENotFound)
	wantCode(t, "ConsumeChallenge of a dead challenge", s.ConsumeChallenge(ctx, u.AccountID, c.ID, deadbolt.ChallengeMaxAttempts, base), deadbolt.ENotFound)

	c2 := mustChallenge(t, s, u, "challenge-2")
	wantCode(t, "ConsumeChallenge after expiry", s.ConsumeChallenge(ctx, u.AccountID, c2.ID, 5, c2.ExpiresAt), deadbolt.ENotFound)
	if err := s.ConsumeChallenge(ctx, u.AccountID, c2.ID, 5, base.Add(time.Minute)); err != nil {
		t.Fatalf("ConsumeChallenge = %v", err)
	}
	wantCode(t, "ConsumeChallenge again", s.ConsumeChallenge(ctx, u.AccountID, c2.ID, 5, base.Add(time.Minute)), deadbolt.ENotFound)
	_, err = s.FailChallenge(ctx, u.AccountID, c2.ID, 5)
	wantCode(t, "FailChallenge of a used challenge", err, deadbolt.ENotFound)
	if got, _ := s.FindChallengeByTokenHash(ctx, []byte("challenge-2")); got.UsedAt.IsZero() {
		t.Errorf("used challenge has no UsedAt")
	}

	// Through another account, nothing.
	b, _ := mustAccount(t, s, "beta")
	c3 := mustChallenge(t, s, u, "challenge-3")
	_, err = s.FailChallenge(ctx, b.ID, c3.ID, 5)
	wantCode(t, "FailChallenge through another account", err, deadbolt.ENotFound)
	wantCode(t, "ConsumeChallenge through another account", s.ConsumeChallenge(ctx, b.ID, c3.ID, 5, base), deadbolt.ENotFound)

	n, err := s.DeleteExpiredChallenges(ctx, base.Add(deadbolt.ChallengeTTL+time.Second))
	if err != nil || n != 3 {
		t.Errorf("DeleteExpiredChallenges = %d, %v; want 3", n, err)
	}
}

func testCompleteChallenge(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	c := mustChallenge(t, s, u, "to-complete")
	mk := func(hash string) *deadbolt.Session {
		return &deadbolt.Session{AccountID: u.AccountID, UserID: u.ID, TokenHash: []byte(hash), IdleTimeout: time.Hour,
			ExpiresAt: base.Add(time.Hour), SecondFactorAt: base, CreatedAt: base}
	}
	sess := mk("complete-session")
	ev := &deadbolt.AuditEvent{AccountID: u.AccountID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID,
		Details: map[string]string{"method": "totp"}}
	dev := &deadbolt.Device{AccountID: u.AccountID, UserID: u.ID, TokenHash: []byte("complete-device"), RememberedAt: base, RememberUntil: base.Add(time.Hour)}
	if err := s.CompleteChallenge(ctx, &deadbolt.Completion{AccountID: u.AccountID, ChallengeID: c.ID, MaxAttempts: 5, Now: base,
		Device: dev, Session: sess, Events: []*deadbolt.AuditEvent{ev}}); err != nil {
		t.Fatalf("CompleteChallenge = %v", err)
	}
	if d, err := s.FindDeviceByTokenHash(ctx, u.AccountID, []byte("complete-device")); err != nil || d.ID != dev.ID || sess.DeviceID != dev.ID {
		t.Errorf("device after CompleteChallenge = %v, %v; session device %q", d, err, sess.DeviceID)
	}
	if sess.ID == "" || ev.ID == "" {
		t.Errorf("ids not filled in: session %q event %q", sess.ID, ev.ID)
	}
	if got, err := s.FindSessionByTokenHash(ctx, []byte("complete-session")); err != nil || got.ID != sess.ID {
		t.Errorf("session after CompleteChallenge = %v, %v", got, err)
	}
	// Used: a second completion stores nothing at all.
	wantCode(t, "CompleteChallenge again", s.CompleteChallenge(ctx, &deadbolt.Completion{AccountID: u.AccountID, ChallengeID: c.ID,
		MaxAttempts: 5, Now: base, Session: mk("second-session"), Events: []*deadbolt.AuditEvent{{AccountID: u.AccountID, Type: "x"}}}), deadbolt.ENotFound)
	if _, err := s.FindSessionByTokenHash(ctx, []byte("second-session")); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("a failed completion left a session: %v", err)
	}
	if evs, _ := s.FindEvents(ctx, u.AccountID, deadbolt.AuditFilter{Type: "x"}); len(evs) != 0 {
		t.Errorf("a failed completion left an event")
	}
	c2 := mustChallenge(t, s, u, "racing")
	ok, codes := race(20, func(i int) error {
		return s.CompleteChallenge(ctx, &deadbolt.Completion{AccountID: u.AccountID, ChallengeID: c2.ID, MaxAttempts: 5, Now: base,
			Session: mk(fmt.Sprint("race-", i))})
	})
	if ok != 1 || codes[deadbolt.ENotFound] != 19 {
		t.Errorf("20 racing CompleteChallenge: %d succeeded, %v", ok, codes)
	}
	// With a TOTP step: racing completions of different challenges with
	// one step succeed once; the replay stores nothing.
	f := mustFactor(t, s, u, deadbolt.FactorTOTP, true)
	var chs []*deadbolt.Challenge
	for i := range 20 {
		chs = append(chs, mustChallenge(t, s, u, fmt.Sprint("step-", i)))
	}
	ok, codes = race(20, func(i int) error {
		return s.CompleteChallenge(ctx, &deadbolt.Completion{AccountID: u.AccountID, ChallengeID: chs[i].ID, MaxAttempts: 5, Now: base,
			TOTPFactorID: f.ID, TOTPStep: 9000, Session: mk(fmt.Sprint("step-session-", i))})
	})
	if ok != 1 || codes[deadbolt.EConflict] != 19 {
		t.Errorf("20 racing completions with one TOTP step: %d succeeded, %v; want 1 and 19 conflicts", ok, codes)
	}
	if list, _ := s.FindSessions(ctx, u.AccountID, u.ID); len(list) != 3 {
		t.Errorf("sessions after the races = %d, want 3 (one per successful completion)", len(list))
	}
	used := 0
	for _, ch := range chs {
		if got, _ := s.FindChallengeByTokenHash(ctx, ch.TokenHash); !got.UsedAt.IsZero() {
			used++
		}
	}
	if used != 1 {
		t.Errorf("challenges consumed by the step race = %d, want 1 (a replay rolls back)", used)
	}
}

func testChallengeRace(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	c := mustChallenge(t, s, u, "wrong-codes")
	ok, codes := race(20, func(int) error {
		_, err := s.FailChallenge(ctx, u.AccountID, c.ID, deadbolt.ChallengeMaxAttempts)
		return err
	})
	if ok != deadbolt.ChallengeMaxAttempts || codes[deadbolt.ENotFound] != 20-deadbolt.ChallengeMaxAttempts {
		t.Errorf("20 racing wrong codes: %d counted, errors %v; want exactly %d counted", ok, codes, deadbolt.ChallengeMaxAttempts)
	}
	c2 := mustChallenge(t, s, u, "right-codes")
	ok, codes = race(20, func(int) error { return s.ConsumeChallenge(ctx, u.AccountID, c2.ID, 5, base) })
	if ok != 1 || codes[deadbolt.ENotFound] != 19 {
		t.Errorf("20 racing ConsumeChallenge: %d succeeded, errors %v; want exactly 1", ok, codes)
	}
}

func testDevices(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	d := &deadbolt.Device{AccountID: a.ID, UserID: u.ID, TokenHash: []byte("device-1"), Name: "Firefox on Linux", IP: "192.0.2.3",
		RememberedAt: base, RememberUntil: base.Add(30 * 24 * time.Hour), CreatedAt: base}
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatalf("CreateDevice = %v", err)
	}
	got, err := s.FindDeviceByTokenHash(ctx, a.ID, []byte("device-1"))
	if err != nil {
		t.Fatalf("FindDeviceByTokenHash = %v", err)
	}
	if diff := cmp.Diff(d, got); diff != "" {
		t.Errorf("device round trip (-created +found):\n%s", diff)
	}
	if !got.Remembered(base.Add(time.Hour), 30*24*time.Hour) || got.Remembered(base.Add(time.Hour), 0) ||
		got.Remembered(base.Add(8*24*time.Hour), 7*24*time.Hour) || got.Remembered(base.Add(31*24*time.Hour), 90*24*time.Hour) {
		t.Errorf("Remembered: wrong answer against the policy's duration or the deadline")
	}
	b, _ := mustAccount(t, s, "beta")
	_, err = s.FindDeviceByTokenHash(ctx, b.ID, []byte("device-1"))
	wantCode(t, "FindDeviceByTokenHash through another account", err, deadbolt.ENotFound)
	wantCode(t, "DeleteDevice through another account", s.DeleteDevice(ctx, b.ID, u.ID, d.ID), deadbolt.ENotFound)
	if list, _ := s.FindDevices(ctx, b.ID, u.ID); len(list) != 0 {
		t.Errorf("FindDevices through another account = %d", len(list))
	}

	got.TokenHash, got.RememberedAt, got.RememberUntil, got.LastSeenAt = []byte("device-1b"), time.Time{}, time.Time{}, base.Add(time.Hour)
	if err := s.UpdateDevice(ctx, got); err != nil {
		t.Fatalf("UpdateDevice = %v", err)
	}
	if _, err := s.FindDeviceByTokenHash(ctx, a.ID, []byte("device-1")); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("old device token still finds the device: %v", err)
	}
	again, err := s.FindDeviceByTokenHash(ctx, a.ID, []byte("device-1b"))
	if err != nil || !again.RememberUntil.IsZero() || !again.LastSeenAt.Equal(base.Add(time.Hour)) {
		t.Errorf("after UpdateDevice: %+v, %v", again, err)
	}
	evil := *again
	evil.AccountID = b.ID
	wantCode(t, "UpdateDevice through another account", s.UpdateDevice(ctx, &evil), deadbolt.ENotFound)

	d2 := &deadbolt.Device{AccountID: a.ID, UserID: u.ID, TokenHash: []byte("device-2"), CreatedAt: base.Add(2 * time.Hour)}
	if err := s.CreateDevice(ctx, d2); err != nil {
		t.Fatal(err)
	}
	list, _ := s.FindDevices(ctx, a.ID, u.ID)
	if len(list) != 2 || list[0].ID != d2.ID {
		t.Errorf("FindDevices = %d devices, want 2, most recently seen first", len(list))
	}
	if err := s.DeleteDevice(ctx, a.ID, u.ID, d2.ID); err != nil {
		t.Fatalf("DeleteDevice = %v", err)
	}
	wantCode(t, "DeleteDevice again", s.DeleteDevice(ctx, a.ID, u.ID, d2.ID), deadbolt.ENotFound)
	if n, err := s.DeleteDevices(ctx, a.ID, u.ID); err != nil || n != 1 {
		t.Errorf("DeleteDevices = %d, %v; want 1", n, err)
	}
}
