package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func mustPasskey(t *testing.T, s Store, u *deadbolt.User, credID string) *deadbolt.Factor {
	t.Helper()
	f := &deadbolt.Factor{AccountID: u.AccountID, UserID: u.ID, Kind: deadbolt.FactorWebAuthn, Name: "YubiKey " + credID}
	if err := s.CreateFactor(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ActivateWebAuthnFactor(ctx, u.AccountID, f.ID, []byte(credID), []byte(`{"id":"`+credID+`"}`), 5, base); err != nil {
		t.Fatalf("ActivateWebAuthnFactor(%q) = %v", credID, err)
	}
	return f
}

func testWebAuthnFactors(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	b, other := mustAccount(t, s, "beta")
	f := mustPasskey(t, s, owner, "cred-1")
	got, err := s.FindFactorByCredentialID(ctx, a.ID, []byte("cred-1"))
	if err != nil || got.ID != f.ID || got.Name != "YubiKey cred-1" || got.SignCount != 5 || !bytes.Equal(got.Credential, []byte(`{"id":"cred-1"}`)) ||
		got.Status != deadbolt.FactorActive || !got.Default {
		t.Fatalf("FindFactorByCredentialID = %+v, %v", got, err)
	}
	if _, err := s.FindFactorByCredentialID(ctx, b.ID, []byte("cred-1")); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("another account's credential = %v, want not found", err)
	}
	// The same credential id again in the account: refused; in another
	// account: its own.
	dup := &deadbolt.Factor{AccountID: a.ID, UserID: owner.ID, Kind: deadbolt.FactorWebAuthn}
	if err := s.CreateFactor(ctx, dup); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ActivateWebAuthnFactor(ctx, a.ID, dup.ID, []byte("cred-1"), []byte("{}"), 0, base); !deadbolt.IsCode(err, deadbolt.EConflict) {
		t.Errorf("a credential id twice in an account = %v, want conflict", err)
	}
	mustPasskey(t, s, other, "cred-1")
	// A TOTP factor is no WebAuthn factor.
	totp := mustFactor(t, s, owner, deadbolt.FactorTOTP, false)
	if _, err := s.ActivateWebAuthnFactor(ctx, a.ID, totp.ID, []byte("cred-x"), []byte("{}"), 0, base); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("ActivateWebAuthnFactor of a TOTP factor = %v, want not found", err)
	}

	// Counters move forward only.
	tests := []struct {
		count uint32
		want  string
	}{{6, ""}, {6, deadbolt.EConflict}, {4, deadbolt.EConflict}, {100, ""}}
	for _, tt := range tests {
		err := s.UseWebAuthnSignature(ctx, a.ID, f.ID, tt.count, []byte(`{"n":1}`), base.Add(time.Minute))
		if (tt.want == "" && err != nil) || (tt.want != "" && !deadbolt.IsCode(err, tt.want)) {
			t.Errorf("UseWebAuthnSignature(%d) = %v, want %q", tt.count, err, tt.want)
		}
	}
	got, _ = s.FindFactor(ctx, a.ID, f.ID)
	if got.SignCount != 100 || !got.LastUsedAt.Equal(base.Add(time.Minute)) || string(got.Credential) != `{"n":1}` {
		t.Errorf("after uses: %+v", got)
	}
	// Of parallel uses of one count, one wins.
	wins, codes := race(20, func(int) error { return s.UseWebAuthnSignature(ctx, a.ID, f.ID, 101, []byte("{}"), base) })
	if wins != 1 || codes[deadbolt.EConflict] != 19 {
		t.Errorf("20 parallel uses of one signature count: %d won, the others %v; want 1, and conflict for the others", wins, codes)
	}
	// An authenticator without a counter (always 0) is accepted at 0.
	z := &deadbolt.Factor{AccountID: a.ID, UserID: owner.ID, Kind: deadbolt.FactorWebAuthn}
	if err := s.CreateFactor(ctx, z); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ActivateWebAuthnFactor(ctx, a.ID, z.ID, []byte("cred-zero"), []byte("{}"), 0, base); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.UseWebAuthnSignature(ctx, a.ID, z.ID, 0, []byte("{}"), base); err != nil {
			t.Errorf("a zero counter's use %d = %v", i+1, err)
		}
	}
}

func testWebAuthnCeremonies(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	c := &deadbolt.WebAuthnCeremony{AccountID: a.ID, TokenHash: []byte("hash-1"), Purpose: deadbolt.WebAuthnRegister, UserID: owner.ID,
		FactorID: "f1", Session: []byte(`{"challenge":"abc"}`), CreatedAt: base, ExpiresAt: base.Add(deadbolt.WebAuthnCeremonyTTL)}
	if err := s.CreateWebAuthnCeremony(ctx, c); err != nil {
		t.Fatal(err)
	}
	pl := &deadbolt.WebAuthnCeremony{AccountID: a.ID, TokenHash: []byte("hash-2"), Purpose: deadbolt.WebAuthnPasswordless,
		Session: []byte(`{}`), CreatedAt: base, ExpiresAt: base.Add(time.Minute)}
	if err := s.CreateWebAuthnCeremony(ctx, pl); err != nil {
		t.Fatalf("a passwordless ceremony (no user) = %v", err)
	}
	if _, err := s.ConsumeWebAuthnCeremony(ctx, []byte("hash-1"), base.Add(deadbolt.WebAuthnCeremonyTTL)); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("an expired ceremony = %v, want not found", err)
	}
	wins, codes := race(20, func(int) error {
		got, err := s.ConsumeWebAuthnCeremony(ctx, []byte("hash-1"), base.Add(time.Minute))
		if err == nil && (got.UserID != owner.ID || got.FactorID != "f1" || string(got.Session) != `{"challenge":"abc"}` ||
			got.Purpose != deadbolt.WebAuthnRegister) {
			t.Errorf("consumed = %+v", got)
		}
		return err
	})
	if wins != 1 || codes[deadbolt.ENotFound] != 19 {
		t.Errorf("20 answers for one ceremony: %d consumed it, the others %v; want 1, and not found for the others", wins, codes)
	}
	if got, err := s.ConsumeWebAuthnCeremony(ctx, []byte("hash-2"), base); err != nil || got.UserID != "" {
		t.Errorf("passwordless ceremony = %+v, %v", got, err)
	}
	if err := s.CreateWebAuthnCeremony(ctx, &deadbolt.WebAuthnCeremony{AccountID: a.ID, TokenHash: []byte("old"), Purpose: deadbolt.WebAuthnStepUp,
		UserID: owner.ID, Session: []byte("{}"), CreatedAt: base, ExpiresAt: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// New options for a scope replace the live ones.
	for _, session := range []string{`{"n":1}`, `{"n":2}`} {
		if err := s.CreateWebAuthnCeremony(ctx, &deadbolt.WebAuthnCeremony{AccountID: a.ID, TokenHash: []byte("hash-3"),
			Purpose: deadbolt.WebAuthnSecondFactor, UserID: owner.ID, Session: []byte(session), CreatedAt: base, ExpiresAt: base.Add(time.Minute)}); err != nil {
			t.Fatalf("CreateWebAuthnCeremony(%s) = %v", session, err)
		}
	}
	if got, err := s.ConsumeWebAuthnCeremony(ctx, []byte("hash-3"), base); err != nil || string(got.Session) != `{"n":2}` {
		t.Errorf("after a replacement the ceremony is %+v, %v; want the newest", got, err)
	}
	if n, err := s.DeleteExpiredWebAuthnCeremonies(ctx, base.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredWebAuthnCeremonies = %d, %v; want 1", n, err)
	}
}
