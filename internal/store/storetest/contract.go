package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/google/go-cmp/cmp"
)

func testAccounts(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	if a.ID == "" || owner.ID == "" || owner.AccountID != a.ID {
		t.Fatalf("CreateAccount: ids not set: account %q owner %q owner.AccountID %q", a.ID, owner.ID, owner.AccountID)
	}
	got, err := s.FindAccountBySlug(ctx, "acme")
	if err != nil {
		t.Fatalf("FindAccountBySlug = %v", err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("FindAccountBySlug mismatch (-created +found):\n%s", diff)
	}
	if got, err = s.FindAccountByID(ctx, a.ID); err != nil || got.Slug != "acme" {
		t.Errorf("FindAccountByID = %v, %v; want acme", got, err)
	}
	_, err = s.FindAccountBySlug(ctx, "nope")
	wantCode(t, "FindAccountBySlug(unknown)", err, deadbolt.EAccountNotFound)
	_, err = s.FindAccountByID(ctx, "nope")
	wantCode(t, "FindAccountByID(unknown)", err, deadbolt.EAccountNotFound)

	// A duplicate slug is a conflict and leaves nothing behind: not even the
	// second owner, whose email is new.
	dup := &deadbolt.Account{Slug: "acme", Name: "Other", Policy: deadbolt.DefaultPolicy()}
	dupOwner := &deadbolt.User{Email: "new@acme.example", Name: "N", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
	err = s.CreateAccount(ctx, dup, dupOwner)
	wantCode(t, "CreateAccount(duplicate slug)", err, deadbolt.EConflict)
	if dup.ID != "" || dupOwner.ID != "" || dupOwner.AccountID != "" {
		t.Errorf("failed CreateAccount changed its arguments: account id %q owner id %q", dup.ID, dupOwner.ID)
	}
	if users, _ := s.FindUsers(ctx, a.ID, deadbolt.UserFilter{}); len(users) != 1 {
		t.Errorf("after failed CreateAccount, acme has %d users, want 1", len(users))
	}

	// The first user must be an owner.
	err = s.CreateAccount(ctx, &deadbolt.Account{Slug: "x", Name: "X", Policy: deadbolt.DefaultPolicy()},
		&deadbolt.User{Email: "a@x.example", Name: "A", Role: deadbolt.RoleAgent, AuthSource: deadbolt.AuthPassword})
	wantCode(t, "CreateAccount(agent owner)", err, deadbolt.EInvalid)

	p := deadbolt.DefaultPolicy()
	p.Require2FATeamMembers = true
	p.RememberDeviceDays[deadbolt.RoleAdmin] = 0
	p.SMSBlockedCountries = []string{"IN"}
	if err := s.UpdatePolicy(ctx, a.ID, p); err != nil {
		t.Fatalf("UpdatePolicy = %v", err)
	}
	got, _ = s.FindAccountByID(ctx, a.ID)
	if diff := cmp.Diff(p, got.Policy); diff != "" {
		t.Errorf("policy round trip (-put +got):\n%s", diff)
	}
	wantCode(t, "UpdatePolicy(unknown)", s.UpdatePolicy(ctx, "nope", p), deadbolt.EAccountNotFound)
}

func testUsers(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	u := &deadbolt.User{AccountID: a.ID, Email: "agent@acme.example", Name: "Agent", Role: deadbolt.RoleAgent,
		AuthSource: deadbolt.AuthPassword, Phone: "+12025550143", PasswordHash: "$argon2id$x"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser = %v", err)
	}
	if u.PasswordChangedAt.IsZero() {
		t.Errorf("CreateUser with a password: PasswordChangedAt not set")
	}
	for name, find := range map[string]func() (*deadbolt.User, error){
		"FindUserByID":    func() (*deadbolt.User, error) { return s.FindUserByID(ctx, a.ID, u.ID) },
		"FindUserByEmail": func() (*deadbolt.User, error) { return s.FindUserByEmail(ctx, a.ID, u.Email) },
	} {
		got, err := find()
		if err != nil {
			t.Fatalf("%s = %v", name, err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("%s mismatch (-created +found):\n%s", name, diff)
		}
	}
	err := s.CreateUser(ctx, &deadbolt.User{AccountID: a.ID, Email: u.Email, Name: "Twin", Role: deadbolt.RoleAgent, AuthSource: deadbolt.AuthPassword})
	wantCode(t, "CreateUser(duplicate email)", err, deadbolt.EConflict)
	err = s.CreateUser(ctx, &deadbolt.User{AccountID: "nope", Email: "z@z.example", Name: "Z", Role: deadbolt.RoleAgent, AuthSource: deadbolt.AuthPassword})
	wantCode(t, "CreateUser(unknown account)", err, deadbolt.EAccountNotFound)

	mustUser(t, s, a.ID, "end@acme.example", deadbolt.RoleEndUser)
	agents, err := s.FindUsers(ctx, a.ID, deadbolt.UserFilter{Role: deadbolt.RoleAgent})
	if err != nil || len(agents) != 1 || agents[0].ID != u.ID {
		t.Errorf("FindUsers(agent) = %d users, %v; want just %s", len(agents), err, u.Email)
	}
	all, _ := s.FindUsers(ctx, a.ID, deadbolt.UserFilter{})
	var emails []string
	for _, x := range all {
		emails = append(emails, x.Email)
	}
	if want := []string{"agent@acme.example", "end@acme.example", "owner@acme.example"}; !slices.Equal(emails, want) {
		t.Errorf("FindUsers = %v, want %v (ordered by email)", emails, want)
	}

	name, role, phone, hash := "Agent Smith", deadbolt.RoleAdmin, "", "$argon2id$y"
	got, err := s.UpdateUser(ctx, a.ID, u.ID, deadbolt.UserUpdate{Name: &name, Role: &role, Phone: &phone, PasswordHash: &hash})
	if err != nil {
		t.Fatalf("UpdateUser = %v", err)
	}
	if got.Name != name || got.Role != role || got.Phone != "" || got.PasswordHash != hash {
		t.Errorf("UpdateUser = %+v, want name %q role %q no phone, new hash", got, name, role)
	}
	if found, _ := s.FindUserByID(ctx, a.ID, u.ID); found == nil || found.Name != name || found.Role != role || found.Phone != "" {
		t.Errorf("FindUserByID after update = %+v", found)
	}
	bad := deadbolt.Role("king")
	_, err = s.UpdateUser(ctx, a.ID, u.ID, deadbolt.UserUpdate{Role: &bad})
	wantCode(t, "UpdateUser(bad role)", err, deadbolt.EInvalid)
	_, err = s.UpdateUser(ctx, a.ID, "nope", deadbolt.UserUpdate{Name: &name})
	wantCode(t, "UpdateUser(unknown)", err, deadbolt.ENotFound)

	mustFactor(t, s, got, deadbolt.FactorTOTP, true)
	if err := s.DeleteUser(ctx, a.ID, u.ID); err != nil {
		t.Fatalf("DeleteUser = %v", err)
	}
	_, err = s.FindUserByID(ctx, a.ID, u.ID)
	wantCode(t, "FindUserByID(deleted)", err, deadbolt.ENotFound)
	if fs, _ := s.FindFactors(ctx, a.ID, u.ID); len(fs) != 0 {
		t.Errorf("factors of a deleted user: %d, want 0", len(fs))
	}
	wantCode(t, "DeleteUser(again)", s.DeleteUser(ctx, a.ID, u.ID), deadbolt.ENotFound)
	_, err = s.FindUserByEmail(ctx, a.ID, "ghost@acme.example")
	wantCode(t, "FindUserByEmail(unknown)", err, deadbolt.ENotFound)
}

// testTenantIsolation checks that nothing of account A can be read, changed
// or used through account B, with every id of A in hand.
func testTenantIsolation(t *testing.T, s Store) {
	a, ownerA := mustAccount(t, s, "alpha")
	b, _ := mustAccount(t, s, "beta")
	f := mustFactor(t, s, ownerA, deadbolt.FactorTOTP, true)
	pending := mustFactor(t, s, ownerA, deadbolt.FactorSMS, false)
	code := []byte("recovery-hash-000001")
	if err := s.ReplaceRecoveryCodes(ctx, a.ID, ownerA.ID, [][]byte{code}, base); err != nil {
		t.Fatal(err)
	}
	sess := &deadbolt.Session{AccountID: a.ID, UserID: ownerA.ID, TokenHash: []byte("session-hash-alpha"),
		IdleTimeout: time.Hour, ExpiresAt: base.Add(12 * time.Hour), CreatedAt: base}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordEvent(ctx, &deadbolt.AuditEvent{AccountID: a.ID, Type: "test", ActorID: ownerA.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HitCounter(ctx, a.ID, "k", time.Hour, base); err != nil {
		t.Fatal(err)
	}

	name := "Mallory"
	checks := []struct {
		what string
		err  func() error
		code string
	}{
		{"FindUserByID", func() error { _, err := s.FindUserByID(ctx, b.ID, ownerA.ID); return err }, deadbolt.ENotFound},
		{"FindUserByEmail", func() error { _, err := s.FindUserByEmail(ctx, b.ID, ownerA.Email); return err }, deadbolt.ENotFound},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, b.ID, ownerA.ID, deadbolt.UserUpdate{Name: &name})
			return err
		}, deadbolt.ENotFound},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, b.ID, ownerA.ID) }, deadbolt.ENotFound},
		{"CreateFactor", func() error {
			return s.CreateFactor(ctx, &deadbolt.Factor{AccountID: b.ID, UserID: ownerA.ID, Kind: deadbolt.FactorEmail})
		}, deadbolt.ENotFound},
		{"FindFactor", func() error { _, err := s.FindFactor(ctx, b.ID, f.ID); return err }, deadbolt.ENotFound},
		{"ActivateFactor", func() error { _, err := s.ActivateFactor(ctx, b.ID, pending.ID, base); return err }, deadbolt.ENotFound},
		{"SetDefaultFactor", func() error { return s.SetDefaultFactor(ctx, b.ID, ownerA.ID, f.ID) }, deadbolt.ENotFound},
		{"DeleteFactor", func() error { return s.DeleteFactor(ctx, b.ID, ownerA.ID, f.ID) }, deadbolt.ENotFound},
		{"UseTOTPStep", func() error { return s.UseTOTPStep(ctx, b.ID, f.ID, 1, base) }, deadbolt.ENotFound},
		{"ReplaceRecoveryCodes", func() error { return s.ReplaceRecoveryCodes(ctx, b.ID, ownerA.ID, nil, base) }, deadbolt.ENotFound},
		{"ConsumeRecoveryCode", func() error { _, err := s.ConsumeRecoveryCode(ctx, b.ID, ownerA.ID, code, base); return err }, deadbolt.ENotFound},
		{"CreateAdminRecoveryCode", func() error {
			return s.CreateAdminRecoveryCode(ctx, &deadbolt.RecoveryCode{AccountID: b.ID, UserID: ownerA.ID, Hash: []byte("x"),
				CreatedBy: ownerA.ID, ExpiresAt: base.Add(time.Hour)})
		}, deadbolt.ENotFound},
		{"CreateSession", func() error {
			return s.CreateSession(ctx, &deadbolt.Session{AccountID: b.ID, UserID: ownerA.ID, TokenHash: []byte("other"),
				IdleTimeout: time.Hour, ExpiresAt: base.Add(time.Hour)})
		}, deadbolt.ENotFound},
		{"TouchSession", func() error { return s.TouchSession(ctx, b.ID, sess.ID, base) }, deadbolt.ENotFound},
		{"DeleteSession", func() error { return s.DeleteSession(ctx, b.ID, ownerA.ID, sess.ID) }, deadbolt.ENotFound},
		{"UpdatePolicy(B) leaves A", func() error { return s.UpdatePolicy(ctx, b.ID, deadbolt.DefaultPolicy()) }, ""},
	}
	for _, c := range checks {
		wantCode(t, c.what+" through the other account", c.err(), c.code)
	}
	if fs, err := s.FindFactors(ctx, b.ID, ownerA.ID); err != nil || len(fs) != 0 {
		t.Errorf("FindFactors through B = %d factors, %v; want none", len(fs), err)
	}
	if n, err := s.CountRecoveryCodes(ctx, b.ID, ownerA.ID); err != nil || n != 0 {
		t.Errorf("CountRecoveryCodes through B = %d, %v; want 0", n, err)
	}
	if list, err := s.FindSessions(ctx, b.ID, ownerA.ID); err != nil || len(list) != 0 {
		t.Errorf("FindSessions through B = %d, %v; want none", len(list), err)
	}
	if n, err := s.DeleteSessions(ctx, b.ID, ownerA.ID, ""); err != nil || n != 0 {
		t.Errorf("DeleteSessions through B = %d, %v; want 0", n, err)
	}
	if ev, err := s.FindEvents(ctx, b.ID, deadbolt.AuditFilter{UserID: ownerA.ID}); err != nil || len(ev) != 0 {
		t.Errorf("FindEvents through B = %d, %v; want none", len(ev), err)
	}
	if users, _ := s.FindUsers(ctx, b.ID, deadbolt.UserFilter{}); len(users) != 1 || users[0].AccountID != b.ID {
		t.Errorf("FindUsers(B) = %d users, want only B's owner", len(users))
	}
	if c, _ := s.PeekCounter(ctx, b.ID, "k", base); c.Count != 0 {
		t.Errorf("PeekCounter through B = %d, want 0", c.Count)
	}
	// And A still has all of it, unchanged.
	if n, _ := s.CountRecoveryCodes(ctx, a.ID, ownerA.ID); n != 1 {
		t.Errorf("A's recovery codes after B's attempts = %d, want 1", n)
	}
	if got, err := s.FindFactor(ctx, a.ID, f.ID); err != nil || !got.Default || got.Status != deadbolt.FactorActive {
		t.Errorf("A's factor after B's attempts = %+v, %v", got, err)
	}
	if got, _ := s.FindFactor(ctx, a.ID, pending.ID); got.Status != deadbolt.FactorPending {
		t.Errorf("A's pending factor activated through B")
	}
	if u, _ := s.FindUserByID(ctx, a.ID, ownerA.ID); u == nil || u.Name == name {
		t.Errorf("A's owner renamed through B")
	}
	if _, err := s.FindSessionByTokenHash(ctx, sess.TokenHash); err != nil {
		t.Errorf("A's session lost through B: %v", err)
	}
	if err := s.UseTOTPStep(ctx, a.ID, f.ID, 1, base); err != nil {
		t.Errorf("A's TOTP step 1 after B tried it = %v, want accepted", err)
	}
}

func testFactors(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	totp := mustFactor(t, s, u, deadbolt.FactorTOTP, false)
	if totp.Status != deadbolt.FactorPending || totp.Default {
		t.Errorf("new factor status %q default %v, want pending, not default", totp.Status, totp.Default)
	}
	got, err := s.FindFactor(ctx, a.ID, totp.ID)
	if err != nil {
		t.Fatalf("FindFactor = %v", err)
	}
	if diff := cmp.Diff(totp, got); diff != "" {
		t.Errorf("FindFactor mismatch (-created +found):\n%s", diff)
	}
	first, err := s.ActivateFactor(ctx, a.ID, totp.ID, base)
	if err != nil || !first {
		t.Fatalf("ActivateFactor(first) = %v, %v; want true, nil", first, err)
	}
	_, err = s.ActivateFactor(ctx, a.ID, totp.ID, base)
	wantCode(t, "ActivateFactor(again)", err, deadbolt.ENotFound)

	sms := mustFactor(t, s, u, deadbolt.FactorSMS, false)
	first, err = s.ActivateFactor(ctx, a.ID, sms.ID, base.Add(time.Minute))
	if err != nil || first {
		t.Fatalf("ActivateFactor(second) = %v, %v; want false, nil", first, err)
	}
	email := mustFactor(t, s, u, deadbolt.FactorEmail, false)
	wantCode(t, "SetDefaultFactor(pending)", s.SetDefaultFactor(ctx, a.ID, u.ID, email.ID), deadbolt.ENotFound)

	defaults := func() []string {
		fs, err := s.FindFactors(ctx, a.ID, u.ID)
		if err != nil {
			t.Fatalf("FindFactors = %v", err)
		}
		var d []string
		for _, f := range fs {
			if f.Default {
				d = append(d, string(f.Kind))
			}
		}
		return d
	}
	if got := defaults(); !slices.Equal(got, []string{"totp"}) {
		t.Errorf("defaults = %v, want [totp]", got)
	}
	if err := s.SetDefaultFactor(ctx, a.ID, u.ID, sms.ID); err != nil {
		t.Fatalf("SetDefaultFactor = %v", err)
	}
	if got := defaults(); !slices.Equal(got, []string{"sms"}) {
		t.Errorf("defaults after SetDefaultFactor(sms) = %v, want [sms]", got)
	}
	f, _ := s.FindFactor(ctx, a.ID, sms.ID)
	if f.Phone != "+12025550143" || f.ActivatedAt.IsZero() {
		t.Errorf("sms factor phone %q activated %v", f.Phone, f.ActivatedAt)
	}
	// Removing the default promotes the oldest remaining active factor.
	if err := s.DeleteFactor(ctx, a.ID, u.ID, sms.ID); err != nil {
		t.Fatalf("DeleteFactor = %v", err)
	}
	if got := defaults(); !slices.Equal(got, []string{"totp"}) {
		t.Errorf("defaults after deleting sms = %v, want [totp]", got)
	}
	wantCode(t, "DeleteFactor(again)", s.DeleteFactor(ctx, a.ID, u.ID, sms.ID), deadbolt.ENotFound)
	other := mustUser(t, s, a.ID, "other@acme.example", deadbolt.RoleAgent)
	wantCode(t, "DeleteFactor(another user's)", s.DeleteFactor(ctx, a.ID, other.ID, totp.ID), deadbolt.ENotFound)
	wantCode(t, "SetDefaultFactor(another user's)", s.SetDefaultFactor(ctx, a.ID, other.ID, totp.ID), deadbolt.ENotFound)

	if err := s.ReplaceRecoveryCodes(ctx, a.ID, u.ID, [][]byte{[]byte("h1")}, base); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFactors(ctx, a.ID, u.ID); err != nil {
		t.Fatalf("DeleteFactors = %v", err)
	}
	if fs, _ := s.FindFactors(ctx, a.ID, u.ID); len(fs) != 0 {
		t.Errorf("factors after DeleteFactors = %d, want 0", len(fs))
	}
	if n, _ := s.CountRecoveryCodes(ctx, a.ID, u.ID); n != 0 {
		t.Errorf("recovery codes after DeleteFactors = %d, want 0", n)
	}
	_, err = s.FindFactor(ctx, a.ID, "nope")
	wantCode(t, "FindFactor(unknown)", err, deadbolt.ENotFound)
	err = s.CreateFactor(ctx, &deadbolt.Factor{AccountID: a.ID, UserID: "nope", Kind: deadbolt.FactorTOTP})
	wantCode(t, "CreateFactor(unknown user)", err, deadbolt.ENotFound)
}

func testTOTPStep(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	f := mustFactor(t, s, u, deadbolt.FactorTOTP, true)
	steps := []struct {
		step int64
		code string
	}{
		{100, ""},
		{100, deadbolt.EConflict}, // replay
		{99, deadbolt.EConflict},  // an older code after a newer one
		{101, ""},
		{103, ""},
		{102, deadbolt.EConflict},
	}
	for _, st := range steps {
		wantCode(t, fmt.Sprintf("UseTOTPStep(%d)", st.step), s.UseTOTPStep(ctx, u.AccountID, f.ID, st.step, base), st.code)
	}
	got, _ := s.FindFactor(ctx, u.AccountID, f.ID)
	if !got.LastUsedAt.Equal(base) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, base)
	}
	wantCode(t, "UseTOTPStep(unknown factor)", s.UseTOTPStep(ctx, u.AccountID, "nope", 1, base), deadbolt.ENotFound)
	if err := s.MarkFactorUsed(ctx, u.AccountID, f.ID, base.Add(time.Hour)); err != nil {
		t.Fatalf("MarkFactorUsed = %v", err)
	}
	if got, _ := s.FindFactor(ctx, u.AccountID, f.ID); !got.LastUsedAt.Equal(base.Add(time.Hour)) {
		t.Errorf("LastUsedAt after MarkFactorUsed = %v", got.LastUsedAt)
	}
	wantCode(t, "MarkFactorUsed(unknown)", s.MarkFactorUsed(ctx, u.AccountID, "nope", base), deadbolt.ENotFound)
	// Each factor has its own steps.
	g := mustFactor(t, s, u, deadbolt.FactorTOTP, true)
	wantCode(t, "UseTOTPStep(other factor, same step)", s.UseTOTPStep(ctx, u.AccountID, g.ID, 103, base), "")
}

func testTOTPStepRace(t *testing.T, s Store) {
	_, u := mustAccount(t, s, "acme")
	f := mustFactor(t, s, u, deadbolt.FactorTOTP, true)
	ok, codes := race(50, func(int) error { return s.UseTOTPStep(ctx, u.AccountID, f.ID, 5000, base) })
	if ok != 1 || codes[deadbolt.EConflict] != 49 {
		t.Errorf("50 racing UseTOTPStep: %d succeeded, errors %v; want exactly 1 success and 49 conflicts", ok, codes)
	}
}

func testRecoveryCodes(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	var set [][]byte
	for i := range deadbolt.RecoveryCodeCount {
		set = append(set, []byte(fmt.Sprintf("hash-%02d", i)))
	}
	if err := s.ReplaceRecoveryCodes(ctx, a.ID, u.ID, set, base); err != nil {
		t.Fatalf("ReplaceRecoveryCodes = %v", err)
	}
	if n, _ := s.CountRecoveryCodes(ctx, a.ID, u.ID); n != 10 {
		t.Errorf("CountRecoveryCodes = %d, want 10", n)
	}
	c, err := s.ConsumeRecoveryCode(ctx, a.ID, u.ID, set[3], base)
	if err != nil {
		t.Fatalf("ConsumeRecoveryCode = %v", err)
	}
	if c.Admin() || !bytes.Equal(c.Hash, set[3]) || !c.UsedAt.Equal(base) {
		t.Errorf("consumed code = %+v", c)
	}
	_, err = s.ConsumeRecoveryCode(ctx, a.ID, u.ID, set[3], base)
	wantCode(t, "ConsumeRecoveryCode(used)", err, deadbolt.ENotFound)
	if n, _ := s.CountRecoveryCodes(ctx, a.ID, u.ID); n != 9 {
		t.Errorf("CountRecoveryCodes after one use = %d, want 9", n)
	}
	other := mustUser(t, s, a.ID, "other@acme.example", deadbolt.RoleAgent)
	_, err = s.ConsumeRecoveryCode(ctx, a.ID, other.ID, set[4], base)
	wantCode(t, "ConsumeRecoveryCode(another user's)", err, deadbolt.ENotFound)

	// An admin code lives beside the set, expires, and survives a new set.
	admin := &deadbolt.RecoveryCode{AccountID: a.ID, UserID: u.ID, Hash: []byte("admin-hash"), CreatedBy: other.ID,
		ExpiresAt: base.Add(deadbolt.AdminRecoveryCodeTTL)}
	if err := s.CreateAdminRecoveryCode(ctx, admin); err != nil {
		t.Fatalf("CreateAdminRecoveryCode = %v", err)
	}
	wantCode(t, "CreateAdminRecoveryCode(no expiry)",
		s.CreateAdminRecoveryCode(ctx, &deadbolt.RecoveryCode{AccountID: a.ID, UserID: u.ID, Hash: []byte("y"), CreatedBy: other.ID}),
		deadbolt.EInvalid)
	if n, _ := s.CountRecoveryCodes(ctx, a.ID, u.ID); n != 9 {
		t.Errorf("CountRecoveryCodes with an admin code = %d, want 9 (admin codes are not part of the set)", n)
	}
	// A new set kills the old one.
	if err := s.ReplaceRecoveryCodes(ctx, a.ID, u.ID, [][]byte{[]byte("new-1"), []byte("new-2")}, base); err != nil {
		t.Fatal(err)
	}
	_, err = s.ConsumeRecoveryCode(ctx, a.ID, u.ID, set[5], base)
	wantCode(t, "ConsumeRecoveryCode(old set)", err, deadbolt.ENotFound)
	if n, _ := s.CountRecoveryCodes(ctx, a.ID, u.ID); n != 2 {
		t.Errorf("CountRecoveryCodes after replace = %d, want 2", n)
	}
	_, err = s.ConsumeRecoveryCode(ctx, a.ID, u.ID, admin.Hash, base.Add(deadbolt.AdminRecoveryCodeTTL))
	wantCode(t, "ConsumeRecoveryCode(expired admin code)", err, deadbolt.ENotFound)
	c, err = s.ConsumeRecoveryCode(ctx, a.ID, u.ID, admin.Hash, base.Add(time.Hour))
	if err != nil || !c.Admin() || c.CreatedBy != other.ID || !c.ExpiresAt.Equal(admin.ExpiresAt) {
		t.Errorf("ConsumeRecoveryCode(admin) = %+v, %v; want the admin code", c, err)
	}
}

func testRecoveryCodeRace(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	code := []byte("the-one-code")
	if err := s.ReplaceRecoveryCodes(ctx, a.ID, u.ID, [][]byte{code, []byte("another")}, base); err != nil {
		t.Fatal(err)
	}
	ok, codes := race(50, func(int) error {
		_, err := s.ConsumeRecoveryCode(ctx, a.ID, u.ID, code, base)
		return err
	})
	if ok != 1 || codes[deadbolt.ENotFound] != 49 {
		t.Errorf("50 racing ConsumeRecoveryCode: %d succeeded, errors %v; want exactly 1 success and 49 not found", ok, codes)
	}
	if n, _ := s.CountRecoveryCodes(ctx, a.ID, u.ID); n != 1 {
		t.Errorf("codes left after the race = %d, want 1", n)
	}
}

func testCounters(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	hit := func(now time.Time) deadbolt.Counter {
		t.Helper()
		c, err := s.HitCounter(ctx, a.ID, "signin-user:x", time.Minute, now)
		if err != nil {
			t.Fatalf("HitCounter = %v", err)
		}
		return c
	}
	for i := 1; i <= 3; i++ {
		now := base.Add(time.Duration(i) * time.Second)
		c := hit(now)
		if c.Count != i || !c.ResetAt.Equal(base.Add(time.Second+time.Minute)) || !c.LastAt.Equal(now) {
			t.Errorf("hit %d = %+v, want count %d, reset at %v, last at %v", i, c, i, base.Add(time.Second+time.Minute), now)
		}
	}
	if c, _ := s.PeekCounter(ctx, a.ID, "signin-user:x", base.Add(10*time.Second)); c.Count != 3 {
		t.Errorf("PeekCounter = %d, want 3", c.Count)
	}
	if c, _ := s.PeekCounter(ctx, a.ID, "signin-user:x", base.Add(2*time.Minute)); c.Count != 0 {
		t.Errorf("PeekCounter after the window = %d, want 0", c.Count)
	}
	// After the window the count starts again, with a new window.
	later := base.Add(2 * time.Minute)
	if c := hit(later); c.Count != 1 || !c.ResetAt.Equal(later.Add(time.Minute)) {
		t.Errorf("hit after the window = %+v, want count 1, new window", c)
	}
	if err := s.ResetCounter(ctx, a.ID, "signin-user:x"); err != nil {
		t.Fatalf("ResetCounter = %v", err)
	}
	if c, _ := s.PeekCounter(ctx, a.ID, "signin-user:x", later); c.Count != 0 {
		t.Errorf("PeekCounter after reset = %d, want 0", c.Count)
	}
	if c, _ := s.PeekCounter(ctx, a.ID, "never", later); c.Count != 0 || c.Key != "never" {
		t.Errorf("PeekCounter(missing) = %+v", c)
	}
	// Global counters (account "") are apart from the account's.
	if c, err := s.HitCounter(ctx, "", "signin-user:x", time.Minute, later); err != nil || c.Count != 1 {
		t.Errorf("HitCounter(global) = %+v, %v; want 1", c, err)
	}
}

func testCountersConcurrent(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	const n = 100
	var mu = make(chan int, n)
	ok, codes := race(n, func(int) error {
		c, err := s.HitCounter(ctx, a.ID, "ip:192.0.2.1", time.Hour, base)
		if err == nil {
			mu <- c.Count
		}
		return err
	})
	close(mu)
	if ok != n {
		t.Fatalf("%d concurrent hits: %d succeeded, errors %v", n, ok, codes)
	}
	var seen []int
	for c := range mu {
		seen = append(seen, c)
	}
	slices.Sort(seen)
	for i, c := range seen {
		if c != i+1 {
			t.Fatalf("counts returned to %d concurrent hits = %v, want each of 1..%d once", n, seen, n)
		}
	}
	if c, _ := s.PeekCounter(ctx, a.ID, "ip:192.0.2.1", base); c.Count != n {
		t.Errorf("count after %d concurrent hits = %d", n, c.Count)
	}
}

func testSessions(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	mk := func(hash string, created time.Time) *deadbolt.Session {
		ss := &deadbolt.Session{AccountID: a.ID, UserID: u.ID, TokenHash: []byte(hash), IdleTimeout: 30 * time.Minute,
			ExpiresAt: created.Add(12 * time.Hour), SecondFactorAt: created, DeviceID: "dev1", IP: "192.0.2.7",
			UserAgent: "Firefox", CreatedAt: created}
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatalf("CreateSession = %v", err)
		}
		return ss
	}
	s1 := mk("hash-1", base)
	s2 := mk("hash-2", base.Add(time.Minute))
	s3 := mk("hash-3", base.Add(2*time.Minute))
	got, err := s.FindSessionByTokenHash(ctx, []byte("hash-1"))
	if err != nil {
		t.Fatalf("FindSessionByTokenHash = %v", err)
	}
	if diff := cmp.Diff(s1, got); diff != "" {
		t.Errorf("FindSessionByTokenHash mismatch (-created +found):\n%s", diff)
	}
	if !got.Active(base.Add(29*time.Minute)) || got.Active(base.Add(31*time.Minute)) {
		t.Errorf("Active: idle timeout not applied")
	}
	_, err = s.FindSessionByTokenHash(ctx, []byte("nope"))
	wantCode(t, "FindSessionByTokenHash(unknown)", err, deadbolt.ENotFound)
	dup := &deadbolt.Session{AccountID: a.ID, UserID: u.ID, TokenHash: []byte("hash-1"), IdleTimeout: time.Minute, ExpiresAt: base}
	wantCode(t, "CreateSession(duplicate token hash)", s.CreateSession(ctx, dup), deadbolt.EConflict)

	if err := s.TouchSession(ctx, a.ID, s1.ID, base.Add(20*time.Minute)); err != nil {
		t.Fatalf("TouchSession = %v", err)
	}
	// Touching with an older time does not move it back (racing requests).
	if err := s.TouchSession(ctx, a.ID, s1.ID, base.Add(10*time.Minute)); err != nil {
		t.Fatalf("TouchSession = %v", err)
	}
	got, _ = s.FindSessionByTokenHash(ctx, []byte("hash-1"))
	if !got.LastSeenAt.Equal(base.Add(20 * time.Minute)) {
		t.Errorf("LastSeenAt = %v, want %v", got.LastSeenAt, base.Add(20*time.Minute))
	}
	if err := s.UpdateSessionAuth(ctx, a.ID, s1.ID, time.Time{}, "", base.Add(5*time.Minute)); err != nil {
		t.Fatalf("UpdateSessionAuth = %v", err)
	}
	if got, _ = s.FindSessionByTokenHash(ctx, []byte("hash-1")); !got.SecondFactorAt.Equal(base) || !got.PasswordAt.Equal(base.Add(5*time.Minute)) {
		t.Errorf("after UpdateSessionAuth(password only): second factor %v password %v", got.SecondFactorAt, got.PasswordAt)
	}
	if err := s.UpdateSessionAuth(ctx, a.ID, s1.ID, base.Add(6*time.Minute), "totp", time.Time{}); err != nil {
		t.Fatalf("UpdateSessionAuth = %v", err)
	}
	if got, _ = s.FindSessionByTokenHash(ctx, []byte("hash-1")); !got.SecondFactorAt.Equal(base.Add(6*time.Minute)) || !got.PasswordAt.Equal(base.Add(5*time.Minute)) {
		t.Errorf("after UpdateSessionAuth(second factor only): second factor %v password %v", got.SecondFactorAt, got.PasswordAt)
	}
	b, _ := mustAccount(t, s, "beta")
	wantCode(t, "UpdateSessionAuth through another account", s.UpdateSessionAuth(ctx, b.ID, s1.ID, base, "sms", base), deadbolt.ENotFound)
	list, _ := s.FindSessions(ctx, a.ID, u.ID)
	var ids []string
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	if want := []string{s3.ID, s2.ID, s1.ID}; !slices.Equal(ids, want) {
		t.Errorf("FindSessions = %v, want newest first %v", ids, want)
	}
	if err := s.DeleteSession(ctx, a.ID, u.ID, s2.ID); err != nil {
		t.Fatalf("DeleteSession = %v", err)
	}
	wantCode(t, "DeleteSession(again)", s.DeleteSession(ctx, a.ID, u.ID, s2.ID), deadbolt.ENotFound)
	// s1 was last seen at +20 min with a 30-minute idle timeout; s3 at +2.
	if n, err := s.DeleteExpiredSessions(ctx, base.Add(40*time.Minute)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions(+40 min) = %d, %v; want 1 (s3 idle)", n, err)
	}
	if _, err := s.FindSessionByTokenHash(ctx, []byte("hash-1")); err != nil {
		t.Errorf("s1 removed by DeleteExpiredSessions: %v", err)
	}
	s3 = mk("hash-3b", base.Add(2*time.Minute))
	n, err := s.DeleteSessions(ctx, a.ID, u.ID, s3.ID)
	if err != nil || n != 1 {
		t.Errorf("DeleteSessions(keep s3) = %d, %v; want 1", n, err)
	}
	if list, _ := s.FindSessions(ctx, a.ID, u.ID); len(list) != 1 || list[0].ID != s3.ID {
		t.Errorf("sessions left = %d, want only s3", len(list))
	}
}

func testAudit(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	other := mustUser(t, s, a.ID, "agent@acme.example", deadbolt.RoleAgent)
	events := []*deadbolt.AuditEvent{
		{AccountID: a.ID, Time: base, Type: "signin.succeeded", ActorID: u.ID, SubjectID: u.ID, IP: "192.0.2.1"},
		{AccountID: a.ID, Time: base.Add(time.Minute), Type: "user.created", ActorID: u.ID, SubjectID: other.ID,
			Details: map[string]string{"role": "agent"}},
		{AccountID: a.ID, Time: base.Add(2 * time.Minute), Type: "signin.failed", SubjectID: other.ID,
			Details: map[string]string{"cause": "wrong_password"}},
	}
	for _, e := range events {
		if err := s.RecordEvent(ctx, e); err != nil {
			t.Fatalf("RecordEvent = %v", err)
		}
	}
	typesOf := func(f deadbolt.AuditFilter) []string {
		t.Helper()
		got, err := s.FindEvents(ctx, a.ID, f)
		if err != nil {
			t.Fatalf("FindEvents(%+v) = %v", f, err)
		}
		var ts []string
		for _, e := range got {
			ts = append(ts, e.Type)
		}
		return ts
	}
	tests := []struct {
		f    deadbolt.AuditFilter
		want []string
	}{
		{deadbolt.AuditFilter{}, []string{"signin.failed", "user.created", "signin.succeeded"}},
		{deadbolt.AuditFilter{Type: "user.created"}, []string{"user.created"}},
		{deadbolt.AuditFilter{UserID: other.ID}, []string{"signin.failed", "user.created"}},
		{deadbolt.AuditFilter{Since: base.Add(time.Minute)}, []string{"signin.failed", "user.created"}},
		{deadbolt.AuditFilter{Limit: 1}, []string{"signin.failed"}},
	}
	for _, tt := range tests {
		if got := typesOf(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("FindEvents(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	got, _ := s.FindEvents(ctx, a.ID, deadbolt.AuditFilter{Type: "user.created"})
	if diff := cmp.Diff(events[1], got[0]); diff != "" {
		t.Errorf("event round trip (-recorded +found):\n%s", diff)
	}
}

// testTimes checks that times come back as the same instant, in UTC, to the
// microsecond, whatever zone they went in with.
func testTimes(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	in := time.Date(2026, 7, 4, 23, 59, 58, 123456789, zone)
	want := in.UTC().Truncate(time.Microsecond)
	ss := &deadbolt.Session{AccountID: a.ID, UserID: u.ID, TokenHash: []byte("h"), IdleTimeout: time.Hour,
		ExpiresAt: in, SecondFactorAt: in, CreatedAt: in}
	if err := s.CreateSession(ctx, ss); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindSessionByTokenHash(ctx, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tm := range map[string]time.Time{"ExpiresAt": got.ExpiresAt, "SecondFactorAt": got.SecondFactorAt,
		"CreatedAt": got.CreatedAt, "LastSeenAt": got.LastSeenAt} {
		if !tm.Equal(want) || tm.Location() != time.UTC {
			t.Errorf("%s = %v (%v), want %v in UTC", name, tm, tm.Location(), want)
		}
	}
	if !got.PasswordAt.IsZero() {
		t.Errorf("unset PasswordAt = %v, want zero", got.PasswordAt)
	}
	if !ss.ExpiresAt.Equal(want) || ss.ExpiresAt.Location() != time.UTC {
		t.Errorf("CreateSession left ExpiresAt = %v, want %v in UTC", ss.ExpiresAt, want)
	}
	e := &deadbolt.AuditEvent{AccountID: a.ID, Time: in, Type: "t"}
	if err := s.RecordEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.FindEvents(ctx, a.ID, deadbolt.AuditFilter{Since: in})
	if len(evs) != 1 || !evs[0].Time.Equal(want) || evs[0].Time.Location() != time.UTC {
		t.Errorf("audit time round trip = %v, want %v in UTC", evs, want)
	}
	if acc, _ := s.FindAccountByID(ctx, a.ID); acc.CreatedAt.Location() != time.UTC || acc.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("account CreatedAt = %v, want UTC to the microsecond", acc.CreatedAt)
	}
}

func testMigrateTwice(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	for i := range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate (run %d more) = %v", i+1, err)
		}
	}
	if got, err := s.FindUserByID(ctx, a.ID, u.ID); err != nil || got.Email != u.Email {
		t.Errorf("data after migrating again: %v, %v", got, err)
	}
}
