package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

// backoff is the sign-in rule: 5 free attempts, then 2, 4, 8, 16, 32 s
// after the latest, then 15 minutes from the 10th.
var backoff = deadbolt.AttemptRule{Window: 24 * time.Hour, Free: 5, Base: 2 * time.Second, PauseAt: 10, Pause: 15 * time.Minute}

// reserveOne reserves under one limit.
func reserveOne(s Store, accountID, key string, r deadbolt.AttemptRule, now time.Time) (deadbolt.Counter, bool, error) {
	cs, refused, err := s.ReserveAttempts(ctx, accountID, now, deadbolt.AttemptLimit{Key: key, Rule: r})
	if err != nil {
		return deadbolt.Counter{}, false, err
	}
	return cs[0], refused < 0, nil
}

func testReserveAttempt(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	const key = "pw:ann@acme.example"
	reserve := func(acc string, now time.Time) (deadbolt.Counter, bool) {
		t.Helper()
		c, ok, err := reserveOne(s, acc, key, backoff, now)
		if err != nil {
			t.Fatalf("ReserveAttempt = %v", err)
		}
		return c, ok
	}
	now := base
	for i := 1; i <= 5; i++ {
		if c, ok := reserve(a.ID, now); !ok || c.Count != i {
			t.Fatalf("free attempt %d = %+v, %v; want count %d, let through", i, c, ok, i)
		}
	}
	// The 6th waits 2 s after the 5th: refused before, counted after.
	c, ok := reserve(a.ID, now.Add(1999*time.Millisecond))
	if ok || c.Count != 5 {
		t.Fatalf("attempt 6 within the wait = %+v, %v; want refused with count 5", c, ok)
	}
	if got, want := backoff.NextAt(c, now.Add(time.Second)), now.Add(2*time.Second); !got.Equal(want) {
		t.Errorf("NextAt = %v, want %v", got, want)
	}
	now = now.Add(2 * time.Second)
	if c, ok := reserve(a.ID, now); !ok || c.Count != 6 {
		t.Fatalf("attempt 6 after the wait = %+v, %v; want count 6", c, ok)
	}
	// Waits double: 4 s after the 6th.
	if _, ok := reserve(a.ID, now.Add(3*time.Second)); ok {
		t.Errorf("attempt 7 after 3 s was let through; the wait is 4 s")
	}
	// Refused attempts changed nothing: the wait still runs from the 6th.
	now = now.Add(4 * time.Second)
	if c, ok := reserve(a.ID, now); !ok || c.Count != 7 {
		t.Fatalf("attempt 7 after 4 s = %+v, %v; want count 7", c, ok)
	}
	// Another account's counter of the same name is apart.
	if c, ok := reserve(b.ID, now); !ok || c.Count != 1 {
		t.Errorf("the same key in another account = %+v, %v; want count 1", c, ok)
	}
	// Giving an attempt back lowers the count, never below zero.
	if err := s.SettleAttempts(ctx, a.ID, nil, []string{key}); err != nil {
		t.Fatalf("SettleAttempts (release) = %v", err)
	}
	if c, _ := s.PeekCounter(ctx, a.ID, key, now); c.Count != 6 {
		t.Errorf("count after a release = %d, want 6", c.Count)
	}
	if err := s.SettleAttempts(ctx, a.ID, nil, []string{"never"}); err != nil {
		t.Errorf("releasing a missing counter = %v, want nil", err)
	}
	// From PauseAt on, each attempt waits the pause.
	for i := 7; i <= 10; i++ {
		now = now.Add(time.Hour)
		if c, ok := reserve(a.ID, now); !ok || c.Count != i {
			t.Fatalf("attempt %d an hour later = %+v, %v; want count %d", i, c, ok, i)
		}
	}
	if _, ok := reserve(a.ID, now.Add(14*time.Minute)); ok {
		t.Errorf("attempt within the 15-minute pause let through")
	}
	if c, ok := reserve(a.ID, now.Add(15*time.Minute)); !ok || c.Count != 11 {
		t.Errorf("attempt after the pause = %+v, %v; want count 11", c, ok)
	}
	// Past the window the count starts again.
	later := now.Add(48 * time.Hour)
	if c, ok := reserve(a.ID, later); !ok || c.Count != 1 || !c.ResetAt.Equal(later.Add(backoff.Window)) {
		t.Errorf("attempt after the window = %+v, %v; want count 1 in a new window", c, ok)
	}

	// A sliding window is remembered from the latest attempt.
	slide := deadbolt.AttemptRule{Window: time.Hour, Sliding: true, Free: 2, Base: time.Second, PauseAt: 2, Pause: time.Second}
	for i, at := range []time.Duration{0, 50 * time.Minute, 100 * time.Minute} {
		c, ok, err := reserveOne(s, a.ID, "slide", slide, base.Add(at))
		if err != nil || !ok || c.Count != i+1 || !c.ResetAt.Equal(base.Add(at+time.Hour)) {
			t.Errorf("sliding attempt %d = %+v, %v, %v; want count %d remembered an hour after it", i+1, c, ok, err, i+1)
		}
	}

	// A cap (no back-off, refused until the window ends), as per-IP limits use.
	capRule := deadbolt.AttemptRule{Window: time.Hour, Free: 3, PauseAt: 3, Pause: time.Hour}
	for i := 1; i <= 3; i++ {
		if _, ok, _ := reserveOne(s, a.ID, "ip", capRule, base.Add(time.Duration(i)*time.Minute)); !ok {
			t.Fatalf("capped attempt %d refused", i)
		}
	}
	c, ok, _ = reserveOne(s, a.ID, "ip", capRule, base.Add(59*time.Minute))
	if ok {
		t.Errorf("4th capped attempt let through")
	}
	if got, want := capRule.NextAt(c, base.Add(59*time.Minute)), base.Add(61*time.Minute); !got.Equal(want) {
		t.Errorf("capped NextAt = %v, want the end of the window %v", got, want)
	}
	if _, ok, _ := reserveOne(s, a.ID, "ip", capRule, base.Add(61*time.Minute)); !ok {
		t.Errorf("capped attempt after the window refused")
	}
}

// testReserveAttemptRace: however many reservations race, exactly as many
// as the rule allows get through.
func testReserveAttemptRace(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	errRefused := errors.New("refused")
	for _, tt := range []struct {
		name string
		rule deadbolt.AttemptRule
		want int
	}{
		{"backoff", backoff, 5},
		{"cap", deadbolt.AttemptRule{Window: time.Hour, Free: 100, PauseAt: 100, Pause: time.Hour}, 100},
	} {
		const n = 150
		ok, codes := race(n, func(int) error {
			_, ok, err := reserveOne(s, a.ID, "race:"+tt.name, tt.rule, base)
			if err == nil && !ok {
				return errRefused
			}
			return err
		})
		if ok != tt.want || codes[deadbolt.EInternal] != n-tt.want {
			t.Errorf("%s: %d racing reservations: %d let through, errors %v; want exactly %d", tt.name, n, ok, codes, tt.want)
		}
		if c, _ := s.PeekCounter(ctx, a.ID, "race:"+tt.name, base); c.Count != tt.want {
			t.Errorf("%s: count after the race = %d, want %d", tt.name, c.Count, tt.want)
		}
	}
}

func testReturnChallengeAttempt(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	c := mustChallenge(t, s, u, "challenge-r")
	if err := s.ReturnChallengeAttempt(ctx, u.AccountID, c.ID); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("ReturnChallengeAttempt with no attempt = %v, want not found", err)
	}
	if _, err := s.FailChallenge(ctx, u.AccountID, c.ID, deadbolt.ChallengeMaxAttempts); err != nil {
		t.Fatalf("FailChallenge = %v", err)
	}
	if err := s.ReturnChallengeAttempt(ctx, b.ID, c.ID); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("ReturnChallengeAttempt through another account = %v, want not found", err)
	}
	if err := s.ReturnChallengeAttempt(ctx, u.AccountID, c.ID); err != nil {
		t.Fatalf("ReturnChallengeAttempt = %v", err)
	}
	if got, _ := s.FindChallengeByTokenHash(ctx, c.TokenHash); got.Attempts != 0 {
		t.Errorf("attempts after the return = %d, want 0", got.Attempts)
	}
}

// testRecognisedDeviceCap: a user keeps at most MaxRecognisedDevices
// devices that are only recognised; remembered ones and other users' stay.
func testRecognisedDeviceCap(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	other := mustUser(t, s, a.ID, "other@acme.example", deadbolt.RoleAgent)
	remembered := &deadbolt.Device{AccountID: a.ID, UserID: u.ID, TokenHash: []byte("remembered"), RememberedAt: base,
		RememberUntil: base.Add(30 * 24 * time.Hour), CreatedAt: base, LastSeenAt: base}
	otherDev := &deadbolt.Device{AccountID: a.ID, UserID: other.ID, TokenHash: []byte("other's"), CreatedAt: base, LastSeenAt: base}
	for _, d := range []*deadbolt.Device{remembered, otherDev} {
		if err := s.CreateDevice(ctx, d); err != nil {
			t.Fatalf("CreateDevice = %v", err)
		}
	}
	const n = deadbolt.MaxRecognisedDevices + 3
	for i := range n {
		at := base.Add(time.Duration(i+1) * time.Minute)
		d := &deadbolt.Device{AccountID: a.ID, UserID: u.ID, TokenHash: []byte(fmt.Sprintf("recognised-%d", i)), CreatedAt: at, LastSeenAt: at}
		if err := s.CreateDevice(ctx, d); err != nil {
			t.Fatalf("CreateDevice %d = %v", i, err)
		}
	}
	devs, err := s.FindDevices(ctx, a.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != deadbolt.MaxRecognisedDevices+1 {
		t.Errorf("devices after %d recognised ones = %d, want %d recognised and the remembered one", n, len(devs), deadbolt.MaxRecognisedDevices)
	}
	for i := range 3 {
		if _, err := s.FindDeviceByTokenHash(ctx, a.ID, []byte(fmt.Sprintf("recognised-%d", i))); !deadbolt.IsCode(err, deadbolt.ENotFound) {
			t.Errorf("the %d-th least recently seen device = %v, want forgotten", i, err)
		}
	}
	for _, h := range []string{"remembered", "other's", fmt.Sprintf("recognised-%d", n-1)} {
		if _, err := s.FindDeviceByTokenHash(ctx, a.ID, []byte(h)); err != nil {
			t.Errorf("device %q = %v, want kept", h, err)
		}
	}
}

// testReserveCodeAttempt: a challenge attempt and the user's attempt are
// taken together or not at all.
func testReserveCodeAttempt(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	c := mustChallenge(t, s, u, "challenge-code")
	errRefused := errors.New("refused")
	ok, codes := race(50, func(int) error {
		_, _, ok, err := s.ReserveCodeAttempt(ctx, u.AccountID, c.ID, deadbolt.ChallengeMaxAttempts, "2fa:"+u.ID, backoff, base)
		if err == nil && !ok {
			return errRefused
		}
		return err
	})
	if ok != deadbolt.ChallengeMaxAttempts || ok+codes[deadbolt.ENotFound]+codes[deadbolt.EInternal] != 50 {
		t.Errorf("50 racing code reservations = %d through, errors %v; want exactly %d", ok, codes, deadbolt.ChallengeMaxAttempts)
	}
	if got, _ := s.FindChallengeByTokenHash(ctx, c.TokenHash); got.Attempts != deadbolt.ChallengeMaxAttempts {
		t.Errorf("challenge attempts after the race = %d, want %d", got.Attempts, deadbolt.ChallengeMaxAttempts)
	}
	// The user's counter refuses (5 taken, the wait runs): a new
	// challenge's attempt is not taken either.
	c2 := mustChallenge(t, s, u, "challenge-code-2")
	if n, cnt, ok, err := s.ReserveCodeAttempt(ctx, u.AccountID, c2.ID, deadbolt.ChallengeMaxAttempts, "2fa:"+u.ID, backoff, base); err != nil || ok || cnt.Count != 5 || n != 0 {
		t.Errorf("reservation past the user's limit = %d, %+v, %v, %v; want refused at count 5", n, cnt, ok, err)
	}
	if got, _ := s.FindChallengeByTokenHash(ctx, c2.TokenHash); got.Attempts != 0 {
		t.Errorf("the new challenge's attempts after a refused reservation = %d, want 0", got.Attempts)
	}
	// After the wait, it goes through; a dead challenge is not found.
	if n, _, ok, err := s.ReserveCodeAttempt(ctx, u.AccountID, c2.ID, deadbolt.ChallengeMaxAttempts, "2fa:"+u.ID, backoff, base.Add(2*time.Second)); err != nil || !ok || n != 1 {
		t.Errorf("reservation after the wait = %d, %v, %v; want the first attempt", n, ok, err)
	}
	if _, _, _, err := s.ReserveCodeAttempt(ctx, u.AccountID, c.ID, deadbolt.ChallengeMaxAttempts, "2fa:"+u.ID, backoff, base.Add(time.Hour)); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("reservation on a dead challenge = %v, want not found", err)
	}
}

// testReserveAttempts: several limits are reserved together or not at
// all, and settled together.
func testReserveAttempts(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	capOne := deadbolt.AttemptRule{Window: time.Hour, Free: 1, PauseAt: 1, Pause: time.Hour}
	both := []deadbolt.AttemptLimit{{Key: "ip", Rule: backoff}, {Key: "email", Rule: capOne}}
	cs, refused, err := s.ReserveAttempts(ctx, a.ID, base, both...)
	if err != nil || refused != -1 || len(cs) != 2 || cs[0].Count != 1 || cs[1].Count != 1 {
		t.Fatalf("first reservation = %+v, %d, %v; want both counted once", cs, refused, err)
	}
	cs, refused, err = s.ReserveAttempts(ctx, a.ID, base, both...)
	if err != nil || refused != 1 || cs[1].Count != 1 {
		t.Fatalf("second reservation = %+v, %d, %v; want the second limit to refuse at count 1", cs, refused, err)
	}
	if c, _ := s.PeekCounter(ctx, a.ID, "ip", base); c.Count != 1 {
		t.Errorf("the first limit after the second refused = %d, want still 1 (rolled back)", c.Count)
	}
	if err := s.SettleAttempts(ctx, a.ID, []string{"email"}, []string{"ip"}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int{"ip": 0, "email": 0} {
		if c, _ := s.PeekCounter(ctx, a.ID, key, base); c.Count != want {
			t.Errorf("%s after settling = %d, want %d", key, c.Count, want)
		}
	}
}
