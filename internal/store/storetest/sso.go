package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/google/go-cmp/cmp"
)

func mustSSOProvider(t *testing.T, s Store, accountID, id string, domains ...string) *deadbolt.SSOProvider {
	t.Helper()
	p := &deadbolt.SSOProvider{AccountID: accountID, ID: id, Kind: deadbolt.SSOOIDC, Name: "IdP " + id, Domains: domains, JIT: true,
		DefaultRole: deadbolt.RoleAgent, TrustMFA: true, Issuer: "https://idp.example/" + id, ClientID: "client-" + id,
		ClientSecret: "secret-" + id}
	if err := s.CreateSSOProvider(ctx, p); err != nil {
		t.Fatalf("CreateSSOProvider(%q) = %v", id, err)
	}
	return p
}

func testSSOProviders(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	okta := mustSSOProvider(t, s, a.ID, "okta", "acme.example", "acme.test")
	got, err := s.FindSSOProvider(ctx, a.ID, "okta")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(okta, got); diff != "" {
		t.Errorf("FindSSOProvider differs from what was stored (-want +got):\n%s", diff)
	}
	saml := &deadbolt.SSOProvider{AccountID: a.ID, ID: "entra", Kind: deadbolt.SSOSAML, Name: "Entra", DefaultRole: deadbolt.RoleEndUser,
		MetadataURL: "https://login.example/metadata", MetadataXML: "<md/>", SPKeyPEM: "KEY", SPCertPEM: "CERT"}
	if err := s.CreateSSOProvider(ctx, saml); err != nil {
		t.Fatal(err)
	}
	list, err := s.FindSSOProviders(ctx, a.ID)
	if err != nil || len(list) != 2 || list[0].ID != "entra" || list[1].ID != "okta" {
		t.Fatalf("FindSSOProviders = %v, %v; want entra, okta by name", list, err)
	}
	if list[0].Domains == nil || len(list[0].Domains) != 0 {
		t.Errorf("no domains came back as %#v, want an empty list", list[0].Domains)
	}

	tests := []struct {
		name string
		p    *deadbolt.SSOProvider
		want string
	}{
		{"a domain of another provider", &deadbolt.SSOProvider{AccountID: a.ID, ID: "dup", Kind: deadbolt.SSOOIDC, Name: "Dup",
			Domains: []string{"acme.test"}, DefaultRole: deadbolt.RoleAgent}, deadbolt.EConflict},
		{"the same id", &deadbolt.SSOProvider{AccountID: a.ID, ID: "okta", Kind: deadbolt.SSOOIDC, Name: "Again",
			DefaultRole: deadbolt.RoleAgent}, deadbolt.EConflict},
		{"an unknown account", &deadbolt.SSOProvider{AccountID: "nope", ID: "x", Kind: deadbolt.SSOOIDC, Name: "X",
			DefaultRole: deadbolt.RoleAgent}, deadbolt.EAccountNotFound},
	}
	for _, tt := range tests {
		if err := s.CreateSSOProvider(ctx, tt.p); !deadbolt.IsCode(err, tt.want) {
			t.Errorf("CreateSSOProvider(%s) = %v, want %s", tt.name, err, tt.want)
		}
	}
	// Another account may use the same domain: domains are per account.
	mustSSOProvider(t, s, b.ID, "okta-b", "acme.example")

	okta.Name, okta.Domains, okta.ClientSecret, okta.JIT = "Okta SSO", []string{"acme.example"}, "rotated", false
	if err := s.UpdateSSOProvider(ctx, okta); err != nil {
		t.Fatal(err)
	}
	got, _ = s.FindSSOProvider(ctx, a.ID, "okta")
	if got.Name != "Okta SSO" || got.ClientSecret != "rotated" || got.JIT || len(got.Domains) != 1 {
		t.Errorf("after update = %+v", got)
	}
	// acme.test is free again.
	saml.Domains = []string{"acme.test"}
	if err := s.UpdateSSOProvider(ctx, saml); err != nil {
		t.Errorf("UpdateSSOProvider to a freed domain = %v", err)
	}
	saml.Domains = []string{"acme.example"}
	if err := s.UpdateSSOProvider(ctx, saml); !deadbolt.IsCode(err, deadbolt.EConflict) {
		t.Errorf("UpdateSSOProvider to another provider's domain = %v, want conflict", err)
	}
	// Another account's provider is not found through this one.
	other := *okta
	other.AccountID = b.ID
	if err := s.UpdateSSOProvider(ctx, &other); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("UpdateSSOProvider across accounts = %v, want not found", err)
	}
	if _, err := s.FindSSOProvider(ctx, b.ID, "okta"); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("FindSSOProvider across accounts = %v, want not found", err)
	}
	if err := s.DeleteSSOProvider(ctx, b.ID, "okta"); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("DeleteSSOProvider across accounts = %v, want not found", err)
	}
	if err := s.DeleteSSOProvider(ctx, a.ID, "okta"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindSSOProvider(ctx, a.ID, "okta"); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("after delete = %v, want not found", err)
	}

	// The limit per account.
	c, _ := mustAccount(t, s, "gamma")
	for i := range deadbolt.MaxSSOProviders {
		mustSSOProvider(t, s, c.ID, fmt.Sprint("p", i))
	}
	if err := s.CreateSSOProvider(ctx, &deadbolt.SSOProvider{AccountID: c.ID, ID: "one-more", Kind: deadbolt.SSOOIDC, Name: "More",
		DefaultRole: deadbolt.RoleAgent}); !deadbolt.IsCode(err, deadbolt.EConflict) {
		t.Errorf("provider %d = %v, want conflict", deadbolt.MaxSSOProviders+1, err)
	}
}

func testSSOStates(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	mustSSOProvider(t, s, a.ID, "okta")
	st := &deadbolt.SSOState{AccountID: a.ID, ID: "state1", ProviderID: "okta", Nonce: "n1", Verifier: "v1", BrowserHash: []byte("bh"),
		CreatedAt: base, ExpiresAt: base.Add(deadbolt.SSOStateTTL)}
	if err := s.CreateSSOState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSSOState(ctx, &deadbolt.SSOState{AccountID: b.ID, ID: "s", ProviderID: "okta", BrowserHash: []byte("x"),
		ExpiresAt: base.Add(time.Minute)}); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("a state for another account's provider = %v, want not found", err)
	}
	if _, err := s.ConsumeSSOState(ctx, b.ID, "state1", base); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("ConsumeSSOState across accounts = %v, want not found", err)
	}
	if _, err := s.ConsumeSSOState(ctx, a.ID, "state1", base.Add(deadbolt.SSOStateTTL)); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("ConsumeSSOState when expired = %v, want not found", err)
	}
	// Of parallel answers for one state, one gets it.
	wins, codes := race(20, func(int) error {
		got, err := s.ConsumeSSOState(ctx, a.ID, "state1", base.Add(time.Minute))
		if err == nil {
			if diff := cmp.Diff(st, got); diff != "" {
				t.Errorf("consumed state differs (-want +got):\n%s", diff)
			}
		}
		return err
	})
	if wins != 1 || codes[deadbolt.ENotFound] != 19 {
		t.Errorf("20 answers for one state: %d consumed it, the others %v; want 1, and not found for the others", wins, codes)
	}
	if err := s.CreateSSOState(ctx, &deadbolt.SSOState{AccountID: a.ID, ID: "old", ProviderID: "okta", BrowserHash: []byte("x"),
		CreatedAt: base, ExpiresAt: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpiredSSO(ctx, base.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSSO = %d, %v; want 1", n, err)
	}
}

func testSSOAssertions(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	mustSSOProvider(t, s, a.ID, "entra")
	mustSSOProvider(t, s, a.ID, "other")
	exp := base.Add(5 * time.Minute)
	if err := s.UseSSOAssertion(ctx, a.ID, "entra", "_a1", exp, base); err != nil {
		t.Fatal(err)
	}
	if err := s.UseSSOAssertion(ctx, a.ID, "entra", "_a1", exp, base.Add(time.Minute)); !deadbolt.IsCode(err, deadbolt.EConflict) {
		t.Errorf("a replayed assertion = %v, want conflict", err)
	}
	if err := s.UseSSOAssertion(ctx, a.ID, "other", "_a1", exp, base); err != nil {
		t.Errorf("the same id from another provider = %v, want accepted", err)
	}
	// Parallel replays: one use.
	ok, codes := race(20, func(int) error { return s.UseSSOAssertion(ctx, a.ID, "entra", "_race", exp, base) })
	if ok != 1 || codes[deadbolt.EConflict] != 19 {
		t.Errorf("20 parallel uses of one assertion: %d succeeded, the others %v; want 1, and conflict for the others", ok, codes)
	}
	if n, err := s.DeleteExpiredSSO(ctx, exp); err != nil || n != 3 {
		t.Errorf("DeleteExpiredSSO = %d, %v; want 3", n, err)
	}
}

// testSSOSessions: a session and a challenge remember the SSO sign-in.
func testSSOSessions(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	u := mustUser(t, s, a.ID, "sso@acme.example", deadbolt.RoleAgent)
	ss := &deadbolt.Session{AccountID: a.ID, UserID: u.ID, TokenHash: []byte("sso-session"), IdleTimeout: time.Hour,
		ExpiresAt: base.Add(time.Hour), SSOProviderID: "okta", FederatedAt: base, UpstreamMFA: true, CreatedAt: base}
	if err := s.CreateSession(ctx, ss); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindSessionByTokenHash(ctx, []byte("sso-session"))
	if err != nil || got.SSOProviderID != "okta" || !got.FederatedAt.Equal(base) || !got.UpstreamMFA {
		t.Errorf("session = %+v, %v; want the SSO fields back", got, err)
	}
	ch := &deadbolt.Challenge{AccountID: a.ID, UserID: u.ID, TokenHash: []byte("sso-challenge"), Purpose: deadbolt.ChallengeSecondFactor,
		SSOProviderID: "okta", ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateChallenge(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindChallengeByTokenHash(ctx, []byte("sso-challenge")); err != nil || got.SSOProviderID != "okta" {
		t.Errorf("challenge = %+v, %v; want its provider back", got, err)
	}
}
