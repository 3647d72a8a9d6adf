package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func mustPasscode(t *testing.T, s Store, u *deadbolt.User, challengeID, factorID string, ch deadbolt.Channel, hash string, at time.Time) (*deadbolt.Passcode, *deadbolt.Message) {
	t.Helper()
	p := &deadbolt.Passcode{AccountID: u.AccountID, UserID: u.ID, ChallengeID: challengeID, FactorID: factorID, Channel: ch,
		CodeHash: []byte(hash), CreatedAt: at, ExpiresAt: at.Add(deadbolt.PasscodeTTL)}
	m := &deadbolt.Message{Channel: ch, To: "+12025550143", Subject: "Your code", Text: "Your code is 123456.", HTML: "<p>123456</p>",
		ExpiresAt: p.ExpiresAt}
	if err := s.CreatePasscode(ctx, p, m); err != nil {
		t.Fatalf("CreatePasscode = %v", err)
	}
	return p, m
}

func testPasscodes(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	c := mustChallenge(t, s, u, "ch")
	p1, m1 := mustPasscode(t, s, u, c.ID, "", deadbolt.ChannelSMS, "hash-1", base)
	if p1.ID == "" || m1.ID == "" || m1.PasscodeID != p1.ID || m1.Status != deadbolt.MessageQueued {
		t.Fatalf("CreatePasscode: passcode %+v message %+v", p1, m1)
	}
	got, err := s.LatestPasscode(ctx, u.AccountID, c.ID, "", deadbolt.ChannelSMS)
	if err != nil || got.ID != p1.ID || string(got.CodeHash) != "hash-1" || !got.ExpiresAt.Equal(base.Add(deadbolt.PasscodeTTL)) {
		t.Fatalf("LatestPasscode = %+v, %v", got, err)
	}
	_, err = s.LatestPasscode(ctx, u.AccountID, c.ID, "", deadbolt.ChannelEmail)
	wantCode(t, "LatestPasscode(other channel)", err, deadbolt.ENotFound)
	b, _ := mustAccount(t, s, "beta")
	_, err = s.LatestPasscode(ctx, b.ID, c.ID, "", deadbolt.ChannelSMS)
	wantCode(t, "LatestPasscode through another account", err, deadbolt.ENotFound)
	wantCode(t, "UsePasscode through another account", s.UsePasscode(ctx, b.ID, p1.ID, base), deadbolt.ENotFound)

	// A new code kills the previous one.
	p2, _ := mustPasscode(t, s, u, c.ID, "", deadbolt.ChannelSMS, "hash-2", base.Add(30*time.Second))
	wantCode(t, "UsePasscode(previous code)", s.UsePasscode(ctx, u.AccountID, p1.ID, base.Add(31*time.Second)), deadbolt.ENotFound)
	if got, _ := s.LatestPasscode(ctx, u.AccountID, c.ID, "", deadbolt.ChannelSMS); got.ID != p2.ID {
		t.Errorf("LatestPasscode after a new code = %s, want %s", got.ID, p2.ID)
	}
	// Expired codes cannot be used.
	wantCode(t, "UsePasscode(expired)", s.UsePasscode(ctx, u.AccountID, p2.ID, p2.ExpiresAt), deadbolt.ENotFound)
	// Racing uses: exactly one.
	p3, _ := mustPasscode(t, s, u, "", "factor-x", deadbolt.ChannelEmail, "hash-3", base)
	ok, codes := race(20, func(int) error { return s.UsePasscode(ctx, u.AccountID, p3.ID, base.Add(time.Second)) })
	if ok != 1 || codes[deadbolt.ENotFound] != 19 {
		t.Errorf("20 racing UsePasscode: %d succeeded, %v", ok, codes)
	}
	if got, _ := s.LatestPasscode(ctx, u.AccountID, "", "factor-x", deadbolt.ChannelEmail); got.UsedAt.IsZero() {
		t.Errorf("used passcode has no UsedAt")
	}
}

func testMessages(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	_, m1 := mustPasscode(t, s, u, "", "f1", deadbolt.ChannelSMS, "h1", base)
	_, m2 := mustPasscode(t, s, u, "", "f2", deadbolt.ChannelEmail, "h2", base.Add(time.Second))

	// Two workers racing for the queue get each message once.
	var mu sync.Mutex
	claimed := map[string]int{}
	race(2, func(int) error {
		ms, err := s.ClaimMessages(ctx, base.Add(2*time.Second), time.Minute, 10)
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			claimed[m.ID]++
		}
		return err
	})
	if claimed[m1.ID] != 1 || claimed[m2.ID] != 1 || len(claimed) != 2 {
		t.Fatalf("claims by two racing workers = %v, want each message once", claimed)
	}
	// Leased: nobody else gets them until the lease ends.
	if ms, _ := s.ClaimMessages(ctx, base.Add(30*time.Second), time.Minute, 10); len(ms) != 0 {
		t.Errorf("claimed %d leased messages", len(ms))
	}
	ms, err := s.ClaimMessages(ctx, base.Add(63*time.Second), time.Minute, 10)
	if err != nil || len(ms) != 0 {
		// Both passcodes expired 60 s after creation: their messages expire
		// rather than being sent late.
		t.Errorf("after the lease and the expiry: claimed %d, %v; want none (expired)", len(ms), err)
	}

	_, m3 := mustPasscode(t, s, u, "", "f3", deadbolt.ChannelSMS, "h3", base.Add(10*time.Minute))
	now := base.Add(10 * time.Minute)
	ms, err = s.ClaimMessages(ctx, now, time.Minute, 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("ClaimMessages = %d, %v; want 1", len(ms), err)
	}
	got := ms[0]
	if got.ID != m3.ID || got.To != "+12025550143" || got.Text != "Your code is 123456." || got.Subject != "Your code" ||
		got.HTML != "<p>123456</p>" || got.Attempts != 1 || got.LeaseToken == "" {
		t.Errorf("claimed message = %+v", got)
	}
	// A failed attempt: due again later, not before.
	if err := s.RetryMessage(ctx, got, "connection refused", now.Add(5*time.Second), false); err != nil {
		t.Fatalf("RetryMessage = %v", err)
	}
	if ms, _ := s.ClaimMessages(ctx, now.Add(4*time.Second), time.Minute, 10); len(ms) != 0 {
		t.Errorf("message claimed before its retry time")
	}
	ms, _ = s.ClaimMessages(ctx, now.Add(5*time.Second), time.Minute, 10)
	if len(ms) != 1 || ms[0].Attempts != 2 || ms[0].LastError != "connection refused" {
		t.Fatalf("retry claim = %+v", ms)
	}
	stale := *ms[0]
	stale.LeaseToken = "someone-else"
	wantCode(t, "MarkMessageSent with a lost lease", s.MarkMessageSent(ctx, &stale, now), deadbolt.ENotFound)
	if err := s.MarkMessageSent(ctx, ms[0], now.Add(6*time.Second)); err != nil {
		t.Fatalf("MarkMessageSent = %v", err)
	}
	wantCode(t, "MarkMessageSent twice", s.MarkMessageSent(ctx, ms[0], now), deadbolt.ENotFound)
	if ms, _ := s.ClaimMessages(ctx, now.Add(time.Hour), time.Minute, 10); len(ms) != 0 {
		t.Errorf("a sent message was claimed again")
	}

	_, m4 := mustPasscode(t, s, u, "", "f4", deadbolt.ChannelEmail, "h4", now)
	ms, _ = s.ClaimMessages(ctx, now, time.Minute, 10)
	if len(ms) != 1 || ms[0].ID != m4.ID {
		t.Fatalf("claim m4 = %v", ms)
	}
	if err := s.RetryMessage(ctx, ms[0], "550 no such user", now, true); err != nil {
		t.Fatalf("RetryMessage(final) = %v", err)
	}
	st, err := s.MessageStats(ctx, now.Add(-time.Minute))
	if err != nil || st.Queued != 0 || st.Failed != 1 {
		t.Errorf("MessageStats = %+v, %v; want nothing queued, one failed", st, err)
	}
	mustPasscode(t, s, u, "", "f5", deadbolt.ChannelSMS, "h5", now.Add(time.Minute))
	if st, _ := s.MessageStats(ctx, now); st.Queued != 1 || !st.OldestQueued.Equal(now.Add(time.Minute)) {
		t.Errorf("MessageStats with one queued = %+v", st)
	}
}
