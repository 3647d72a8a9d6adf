package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

func testAPITokens(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	tok := &deadbolt.APIToken{AccountID: a.ID, UserID: owner.ID, Description: "CI integration", TokenHash: []byte("tok-1"), CreatedAt: base}
	if err := s.CreateAPIToken(ctx, tok); err != nil {
		t.Fatalf("CreateAPIToken = %v", err)
	}
	wantCode(t, "CreateAPIToken(user of another account)", s.CreateAPIToken(ctx, &deadbolt.APIToken{AccountID: b.ID, UserID: owner.ID, TokenHash: []byte("tok-2")}), deadbolt.ENotFound)
	wantCode(t, "CreateAPIToken(same hash)", s.CreateAPIToken(ctx, &deadbolt.APIToken{AccountID: a.ID, UserID: owner.ID, TokenHash: []byte("tok-1")}), deadbolt.EConflict)
	got, err := s.FindAPITokenByHash(ctx, []byte("tok-1"))
	if err != nil || got.ID != tok.ID || got.Description != "CI integration" || got.UserID != owner.ID {
		t.Fatalf("FindAPITokenByHash = %+v, %v", got, err)
	}
	if err := s.TouchAPIToken(ctx, a.ID, tok.ID, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	list, _ := s.FindAPITokens(ctx, a.ID)
	if len(list) != 1 || !list[0].LastUsedAt.Equal(base.Add(time.Hour)) {
		t.Errorf("FindAPITokens = %+v", list)
	}
	if list, _ := s.FindAPITokens(ctx, b.ID); len(list) != 0 {
		t.Errorf("FindAPITokens through another account = %d", len(list))
	}
	wantCode(t, "DeleteAPIToken through another account", s.DeleteAPIToken(ctx, b.ID, tok.ID), deadbolt.ENotFound)
	if err := s.DeleteAPIToken(ctx, a.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.FindAPITokenByHash(ctx, []byte("tok-1"))
	wantCode(t, "FindAPITokenByHash after revocation", err, deadbolt.ENotFound)

	// An expiry round-trips; a user's tokens are revoked together, and
	// nobody else's.
	exp := &deadbolt.APIToken{AccountID: a.ID, UserID: owner.ID, TokenHash: []byte("tok-3"), CreatedAt: base, ExpiresAt: base.Add(30 * 24 * time.Hour)}
	other := &deadbolt.APIToken{AccountID: a.ID, UserID: owner.ID, TokenHash: []byte("tok-4"), CreatedAt: base}
	bTok := &deadbolt.APIToken{AccountID: b.ID, UserID: mustUser(t, s, b.ID, "ann@beta.example", deadbolt.RoleAdmin).ID, TokenHash: []byte("tok-5"), CreatedAt: base}
	for _, x := range []*deadbolt.APIToken{exp, other, bTok} {
		if err := s.CreateAPIToken(ctx, x); err != nil {
			t.Fatalf("CreateAPIToken = %v", err)
		}
	}
	if got, err := s.FindAPITokenByHash(ctx, []byte("tok-3")); err != nil || !got.ExpiresAt.Equal(exp.ExpiresAt) || got.Active(exp.ExpiresAt) || !got.Active(base) {
		t.Errorf("token with an expiry = %+v, %v; want expires_at %v, active before it only", got, err, exp.ExpiresAt)
	}
	ids, err := s.DeleteUserAPITokens(ctx, a.ID, owner.ID)
	slices.Sort(ids)
	want := []string{exp.ID, other.ID}
	slices.Sort(want)
	if err != nil || !slices.Equal(ids, want) {
		t.Errorf("DeleteUserAPITokens = %v, %v; want %v", ids, err, want)
	}
	if _, err := s.FindAPITokenByHash(ctx, []byte("tok-5")); err != nil {
		t.Errorf("another account's token after DeleteUserAPITokens = %v, want it kept", err)
	}
	if ids, err := s.DeleteUserAPITokens(ctx, b.ID, owner.ID); err != nil || len(ids) != 0 {
		t.Errorf("DeleteUserAPITokens through another account = %v, %v; want none", ids, err)
	}
}

func testUserSummaries(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	mustUser(t, s, b.ID, "other@beta.example", deadbolt.RoleAgent)
	agent := mustUser(t, s, a.ID, "agent@acme.example", deadbolt.RoleAgent)
	end := mustUser(t, s, a.ID, "end@acme.example", deadbolt.RoleEndUser)
	admin := mustUser(t, s, a.ID, "admin@acme.example", deadbolt.RoleAdmin)
	// The agent: TOTP (default) and SMS, 10 codes with 2 used, a
	// remembered device and an expired one, and an admin's action.
	totp := mustFactor(t, s, agent, deadbolt.FactorTOTP, true)
	mustFactor(t, s, agent, deadbolt.FactorSMS, true)
	mustFactor(t, s, agent, deadbolt.FactorEmail, false) // pending: not counted
	if err := s.UseTOTPStep(ctx, a.ID, totp.ID, 7, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	for i := range 10 {
		hashes = append(hashes, []byte(fmt.Sprint("h", i)))
	}
	s.ReplaceRecoveryCodes(ctx, a.ID, agent.ID, hashes, base)
	s.ConsumeRecoveryCode(ctx, a.ID, agent.ID, hashes[0], base)
	s.ConsumeRecoveryCode(ctx, a.ID, agent.ID, hashes[1], base)
	for i, until := range []time.Time{base.Add(24 * time.Hour), base.Add(-time.Hour)} {
		s.CreateDevice(ctx, &deadbolt.Device{AccountID: a.ID, UserID: agent.ID, TokenHash: []byte(fmt.Sprint("d", i)),
			RememberedAt: base.Add(-48 * time.Hour), RememberUntil: until})
	}
	s.RecordEvent(ctx, &deadbolt.AuditEvent{AccountID: a.ID, Time: base.Add(2 * time.Hour), Type: deadbolt.AuditTwoFactorReset, ActorID: owner.ID, SubjectID: agent.ID})
	s.RecordEvent(ctx, &deadbolt.AuditEvent{AccountID: a.ID, Time: base.Add(3 * time.Hour), Type: deadbolt.AuditSignInSucceeded, ActorID: agent.ID, SubjectID: agent.ID})
	// An event of another account for the same subject id does not count.
	s.RecordEvent(ctx, &deadbolt.AuditEvent{AccountID: b.ID, Time: base.Add(5 * time.Hour), Type: deadbolt.AuditTwoFactorReset, ActorID: "x", SubjectID: agent.ID})

	collect := func(f deadbolt.SummaryFilter) map[string]*deadbolt.UserSummary {
		t.Helper()
		out := map[string]*deadbolt.UserSummary{}
		var order []string
		err := s.StreamUserSummaries(ctx, a.ID, f, base, func(u *deadbolt.UserSummary) error {
			out[u.User.Email] = u
			order = append(order, u.User.Email)
			return nil
		})
		if err != nil {
			t.Fatalf("StreamUserSummaries = %v", err)
		}
		if !slices.IsSorted(order) {
			t.Errorf("summaries not ordered by email: %v", order)
		}
		return out
	}
	all := collect(deadbolt.SummaryFilter{})
	if len(all) != 4 || all["other@beta.example"] != nil {
		t.Fatalf("summaries = %d users, want the 4 of the account only", len(all))
	}
	ag := all["agent@acme.example"]
	if got := fmt.Sprint(ag.Methods); got != "[sms totp]" || ag.DefaultMethod != deadbolt.FactorTOTP {
		t.Errorf("agent methods = %s default %q, want [sms totp] and totp", got, ag.DefaultMethod)
	}
	if ag.RecoveryCodesLeft != 8 || ag.RememberedDevices != 1 || !ag.LastSecondFactorAt.Equal(base.Add(time.Hour)) ||
		!ag.LastAdminActionAt.Equal(base.Add(2*time.Hour)) {
		t.Errorf("agent summary = codes %d devices %d last 2FA %v last admin %v", ag.RecoveryCodesLeft, ag.RememberedDevices,
			ag.LastSecondFactorAt, ag.LastAdminActionAt)
	}
	if e := all["end@acme.example"]; len(e.Methods) != 0 || e.DefaultMethod != "" || e.RecoveryCodesLeft != 0 || !e.LastAdminActionAt.IsZero() {
		t.Errorf("end user summary = %+v", e)
	}
	team := collect(deadbolt.SummaryFilter{Roles: []deadbolt.Role{deadbolt.RoleOwner, deadbolt.RoleAdmin, deadbolt.RoleAgent}})
	if len(team) != 3 || team[end.Email] != nil || team[admin.Email] == nil {
		t.Errorf("team summaries = %v", team)
	}
	stop := fmt.Errorf("stop")
	n := 0
	if err := s.StreamUserSummaries(ctx, a.ID, deadbolt.SummaryFilter{}, base, func(*deadbolt.UserSummary) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("an error from fn: StreamUserSummaries = %v after %d calls, want it back after 1", err, n)
	}
}

func testReportsAndNotices(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	r := &deadbolt.Report{AccountID: a.ID, RequestedBy: owner.ID, Kind: "two_factor", CreatedAt: base, ExpiresAt: base.Add(24 * time.Hour)}
	if err := s.CreateReport(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindReport(ctx, a.ID, r.ID)
	if err != nil || got.RequestedBy != owner.ID || !got.ExpiresAt.Equal(r.ExpiresAt) {
		t.Errorf("FindReport = %+v, %v", got, err)
	}
	_, err = s.FindReport(ctx, b.ID, r.ID)
	wantCode(t, "FindReport through another account", err, deadbolt.ENotFound)

	m := &deadbolt.Message{AccountID: a.ID, UserID: owner.ID, Channel: deadbolt.ChannelEmail, To: owner.Email, Subject: "Notice", Text: "Hello"}
	if err := s.QueueMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "QueueMessage(user of another account)", s.QueueMessage(ctx, &deadbolt.Message{AccountID: b.ID, UserID: owner.ID,
		Channel: deadbolt.ChannelEmail, To: "x@y.example", Text: "x"}), deadbolt.ENotFound)
	ms, err := s.ClaimMessages(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(ms) != 1 || ms[0].Text != "Hello" || ms[0].To != owner.Email || ms[0].PasscodeID != "" {
		t.Errorf("claimed notice = %+v, %v", ms, err)
	}
}
