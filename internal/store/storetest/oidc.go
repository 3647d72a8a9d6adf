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

func mustClient(t *testing.T, s Store, accountID, id string) *deadbolt.OIDCClient {
	t.Helper()
	c := &deadbolt.OIDCClient{AccountID: accountID, ID: id, Name: "App " + id, SecretHash: []byte("secret-hash-" + id),
		RedirectURIs: []string{"https://app.example/cb", "http://localhost:8080/cb"}, PostLogoutRedirectURIs: []string{"https://app.example/"},
		BackchannelLogoutURI: "https://app.example/logout", Scopes: []string{"openid", "email"}, Require2FA: true}
	if err := s.CreateOIDCClient(ctx, c); err != nil {
		t.Fatalf("CreateOIDCClient(%q) = %v", id, err)
	}
	return c
}

func mustSession(t *testing.T, s Store, u *deadbolt.User, hash string) *deadbolt.Session {
	t.Helper()
	ss := &deadbolt.Session{AccountID: u.AccountID, UserID: u.ID, TokenHash: []byte(hash), IdleTimeout: time.Hour,
		ExpiresAt: base.Add(12 * time.Hour), SecondFactorAt: base, SecondFactorMethod: "totp", CreatedAt: base}
	if err := s.CreateSession(ctx, ss); err != nil {
		t.Fatalf("CreateSession(%q) = %v", hash, err)
	}
	return ss
}

func mustAuthRequest(t *testing.T, s Store, c *deadbolt.OIDCClient, id string) *deadbolt.OIDCAuthRequest {
	t.Helper()
	maxAge := int64(300)
	r := &deadbolt.OIDCAuthRequest{AccountID: c.AccountID, ID: id, ClientID: c.ID, RedirectURI: c.RedirectURIs[0], State: "state-" + id,
		Nonce: "nonce-" + id, Scopes: []string{"openid", "email"}, ResponseType: "code", ResponseMode: "query",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", CodeChallengeMethod: "S256", Prompt: []string{"login"},
		MaxAge: &maxAge, LoginHint: "owner@example.com", ACRValues: []string{"mfa"},
		CreatedAt: base, ExpiresAt: base.Add(deadbolt.OIDCAuthRequestTTL)}
	if err := s.CreateOIDCAuthRequest(ctx, r); err != nil {
		t.Fatalf("CreateOIDCAuthRequest(%q) = %v", id, err)
	}
	return r
}

// done completes r for the session's user at base+1m.
func done(t *testing.T, s Store, r *deadbolt.OIDCAuthRequest, ss *deadbolt.Session) {
	t.Helper()
	r.UserID, r.SessionID, r.AuthTime, r.AMR, r.ACR = ss.UserID, ss.ID, base, []string{"pwd", "otp"}, "mfa"
	if err := s.CompleteOIDCAuthRequest(ctx, r, base.Add(time.Minute)); err != nil {
		t.Fatalf("CompleteOIDCAuthRequest(%q) = %v", r.ID, err)
	}
}

func newToken(ss *deadbolt.Session, clientID, id string, refresh []byte) *deadbolt.OIDCToken {
	return &deadbolt.OIDCToken{AccountID: ss.AccountID, ID: id, ClientID: clientID, UserID: ss.UserID, SessionID: ss.ID,
		AuthRequestID: "req-" + id, RefreshHash: refresh, Scopes: []string{"openid", "offline_access"}, AuthTime: base,
		AMR: []string{"pwd"}, ACR: "pwd", ExpiresAt: base.Add(deadbolt.OIDCAccessTokenTTL), RefreshExpiresAt: ss.ExpiresAt, CreatedAt: base}
}

func mustToken(t *testing.T, s Store, ss *deadbolt.Session, clientID, id string, refresh []byte) *deadbolt.OIDCToken {
	t.Helper()
	tok := newToken(ss, clientID, id, refresh)
	if err := s.CreateOIDCToken(ctx, tok); err != nil {
		t.Fatalf("CreateOIDCToken(%q) = %v", id, err)
	}
	return tok
}

// tokenIDs lists which of the ids are still found in the account.
func tokenIDs(s Store, accountID string, ids ...string) []string {
	var found []string
	for _, id := range ids {
		if _, err := s.FindOIDCToken(ctx, accountID, id); err == nil {
			found = append(found, id)
		}
	}
	return found
}

func testOIDCClients(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	c := mustClient(t, s, a.ID, "dbo_one")
	if c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Errorf("CreateOIDCClient times: created %v updated %v, want set and equal", c.CreatedAt, c.UpdatedAt)
	}
	got, err := s.FindOIDCClient(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatalf("FindOIDCClient = %v", err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("client round trip (-created +found):\n%s", diff)
	}
	_, err = s.FindOIDCClient(ctx, a.ID, "nope")
	wantCode(t, "FindOIDCClient(unknown)", err, deadbolt.ENotFound)

	b, _ := mustAccount(t, s, "beta")
	for _, tt := range []struct {
		what      string
		accountID string
		code      string
	}{
		{"same account", a.ID, deadbolt.EConflict},
		{"another account", b.ID, deadbolt.EConflict}, // client ids are unique across accounts
	} {
		err := s.CreateOIDCClient(ctx, &deadbolt.OIDCClient{AccountID: tt.accountID, ID: c.ID, Name: "Twin", RedirectURIs: []string{"https://x.example/"}})
		wantCode(t, "CreateOIDCClient(duplicate id, "+tt.what+")", err, tt.code)
	}
	err = s.CreateOIDCClient(ctx, &deadbolt.OIDCClient{AccountID: "nope", ID: "dbo_orphan", Name: "Orphan", RedirectURIs: []string{"https://x.example/"}})
	wantCode(t, "CreateOIDCClient(unknown account)", err, deadbolt.EAccountNotFound)

	later := &deadbolt.OIDCClient{AccountID: a.ID, ID: "dbo_two", Name: "Public app", RedirectURIs: []string{"https://spa.example/"},
		Scopes: []string{"openid"}, CreatedAt: c.CreatedAt.Add(time.Hour)}
	if err := s.CreateOIDCClient(ctx, later); err != nil {
		t.Fatal(err)
	}
	if !later.Public() {
		t.Errorf("a client without a secret hash is not public")
	}
	mustClient(t, s, b.ID, "dbo_beta")
	list, err := s.FindOIDCClients(ctx, a.ID)
	var ids []string
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	if want := []string{c.ID, later.ID}; err != nil || !slices.Equal(ids, want) {
		t.Errorf("FindOIDCClients = %v, %v; want %v (oldest first, the account's only)", ids, err, want)
	}

	upd := *got
	upd.Name, upd.SecretHash, upd.RedirectURIs, upd.PostLogoutRedirectURIs = "Renamed", []byte("new-secret-hash"), []string{"https://new.example/cb"}, nil
	upd.BackchannelLogoutURI, upd.Scopes, upd.Require2FA, upd.UpdatedAt = "", []string{"openid", "profile"}, false, base.Add(2*time.Hour)
	out, err := s.UpdateOIDCClient(ctx, &upd)
	if err != nil {
		t.Fatalf("UpdateOIDCClient = %v", err)
	}
	if diff := cmp.Diff(&upd, out); diff != "" {
		t.Errorf("UpdateOIDCClient result (-put +returned):\n%s", diff)
	}
	if found, _ := s.FindOIDCClient(ctx, a.ID, c.ID); !cmp.Equal(&upd, found) {
		t.Errorf("client after update = %+v, want %+v", found, &upd)
	}
	if !out.CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("UpdateOIDCClient changed CreatedAt: %v, want %v", out.CreatedAt, c.CreatedAt)
	}
	ghost := upd
	ghost.ID = "nope"
	_, err = s.UpdateOIDCClient(ctx, &ghost)
	wantCode(t, "UpdateOIDCClient(unknown)", err, deadbolt.ENotFound)

	// Deleting a client takes its tokens, logins and auth requests.
	u := mustUser(t, s, a.ID, "agent@acme.example", deadbolt.RoleAgent)
	ss := mustSession(t, s, u, "client-session")
	req := mustAuthRequest(t, s, c, "req-of-client")
	mustToken(t, s, ss, c.ID, "tok-of-client", []byte("refresh-of-client"))
	mustToken(t, s, ss, later.ID, "tok-of-other", []byte("refresh-of-other"))
	if err := s.DeleteOIDCClient(ctx, a.ID, c.ID); err != nil {
		t.Fatalf("DeleteOIDCClient = %v", err)
	}
	_, err = s.FindOIDCClient(ctx, a.ID, c.ID)
	wantCode(t, "FindOIDCClient(deleted)", err, deadbolt.ENotFound)
	_, err = s.FindOIDCAuthRequest(ctx, a.ID, req.ID, base)
	wantCode(t, "FindOIDCAuthRequest(of a deleted client)", err, deadbolt.ENotFound)
	if got := tokenIDs(s, a.ID, "tok-of-client", "tok-of-other"); !slices.Equal(got, []string{"tok-of-other"}) {
		t.Errorf("tokens after DeleteOIDCClient = %v, want only the other client's", got)
	}
	if err := s.DeleteSession(ctx, a.ID, u.ID, ss.ID); err != nil {
		t.Fatal(err)
	}
	ended, _ := s.EndedOIDCLogins(ctx, 10)
	if len(ended) != 1 || ended[0].ClientID != later.ID {
		t.Errorf("logins after DeleteOIDCClient = %+v, want only the other client's", ended)
	}
	wantCode(t, "DeleteOIDCClient(again)", s.DeleteOIDCClient(ctx, a.ID, c.ID), deadbolt.ENotFound)
}

func testOIDCAuthCodes(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	other := mustUser(t, s, a.ID, "agent@acme.example", deadbolt.RoleAgent)
	c := mustClient(t, s, a.ID, "dbo_app")
	mine := mustSession(t, s, owner, "owner-session")
	theirs := mustSession(t, s, other, "other-session")

	r := mustAuthRequest(t, s, c, "req-1")
	got, err := s.FindOIDCAuthRequest(ctx, a.ID, r.ID, base.Add(time.Minute))
	if err != nil {
		t.Fatalf("FindOIDCAuthRequest = %v", err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("auth request round trip (-created +found):\n%s", diff)
	}
	_, err = s.FindOIDCAuthRequest(ctx, a.ID, r.ID, r.ExpiresAt)
	wantCode(t, "FindOIDCAuthRequest(at expiry)", err, deadbolt.ENotFound)
	wantCode(t, "CreateOIDCAuthRequest(duplicate id)", s.CreateOIDCAuthRequest(ctx, &deadbolt.OIDCAuthRequest{AccountID: a.ID, ID: r.ID,
		ClientID: c.ID, ExpiresAt: base.Add(time.Minute)}), deadbolt.EConflict)
	wantCode(t, "CreateOIDCAuthRequest(unknown client)", s.CreateOIDCAuthRequest(ctx, &deadbolt.OIDCAuthRequest{AccountID: a.ID, ID: "req-x",
		ClientID: "nope", ExpiresAt: base.Add(time.Minute)}), deadbolt.ENotFound)

	wantCode(t, "SetOIDCAuthCode(not done)", s.SetOIDCAuthCode(ctx, a.ID, r.ID, []byte("code-early"), base), deadbolt.ENotFound)
	now := base.Add(time.Minute)
	complete := func(userID, sessionID string, at time.Time) error {
		x := *r
		x.UserID, x.SessionID, x.AuthTime, x.AMR, x.ACR = userID, sessionID, base, []string{"pwd", "otp"}, "mfa"
		return s.CompleteOIDCAuthRequest(ctx, &x, at)
	}
	for _, tt := range []struct {
		what              string
		userID, sessionID string
		at                time.Time
		code              string
	}{
		{"another user's session", owner.ID, theirs.ID, now, deadbolt.ENotFound},
		{"no such session", owner.ID, "nope", now, deadbolt.ENotFound},
		{"after expiry", owner.ID, mine.ID, r.ExpiresAt, deadbolt.ENotFound},
		{"own session", owner.ID, mine.ID, now, ""},
		{"again", owner.ID, mine.ID, now, deadbolt.ENotFound},
		{"again, by another user", other.ID, theirs.ID, now, deadbolt.ENotFound},
	} {
		wantCode(t, "CompleteOIDCAuthRequest("+tt.what+")", complete(tt.userID, tt.sessionID, tt.at), tt.code)
	}
	got, _ = s.FindOIDCAuthRequest(ctx, a.ID, r.ID, now)
	if got.UserID != owner.ID || got.SessionID != mine.ID || !got.DoneAt.Equal(now) || !got.AuthTime.Equal(base) ||
		!slices.Equal(got.AMR, []string{"pwd", "otp"}) || got.ACR != "mfa" {
		t.Errorf("request after completion = %+v", got)
	}

	wantCode(t, "SetOIDCAuthCode", s.SetOIDCAuthCode(ctx, a.ID, r.ID, []byte("code-1"), now), "")
	wantCode(t, "SetOIDCAuthCode(again)", s.SetOIDCAuthCode(ctx, a.ID, r.ID, []byte("code-1b"), now), deadbolt.ENotFound)

	// The code is consumed once; a replay gets ENotFound and the request.
	_, err = s.ConsumeOIDCAuthCode(ctx, a.ID, []byte("code-1b"), now)
	wantCode(t, "ConsumeOIDCAuthCode(never set)", err, deadbolt.ENotFound)
	used, err := s.ConsumeOIDCAuthCode(ctx, a.ID, []byte("code-1"), now.Add(time.Second))
	if err != nil {
		t.Fatalf("ConsumeOIDCAuthCode = %v", err)
	}
	want := *got
	want.CodeUsedAt = now.Add(time.Second)
	if diff := cmp.Diff(&want, used); diff != "" {
		t.Errorf("consumed request (-want +got):\n%s", diff)
	}
	replay, err := s.ConsumeOIDCAuthCode(ctx, a.ID, []byte("code-1"), now.Add(2*time.Second))
	wantCode(t, "ConsumeOIDCAuthCode(replay)", err, deadbolt.ENotFound)
	if replay == nil || replay.ID != r.ID || replay.UserID != owner.ID || !replay.CodeUsedAt.Equal(want.CodeUsedAt) {
		t.Errorf("ConsumeOIDCAuthCode(replay) request = %+v, want the used request", replay)
	}

	// A code past OIDCCodeTTL, or of an expired request, is refused, alone.
	for _, tt := range []struct {
		what string
		set  time.Time
		use  time.Time
		ok   bool
	}{
		{"just before OIDCCodeTTL", now, now.Add(deadbolt.OIDCCodeTTL - time.Microsecond), true},
		{"at OIDCCodeTTL", now, now.Add(deadbolt.OIDCCodeTTL), false},
		{"past the request's expiry", base.Add(deadbolt.OIDCAuthRequestTTL - 30*time.Second), base.Add(deadbolt.OIDCAuthRequestTTL), false},
	} {
		x := mustAuthRequest(t, s, c, "req-"+tt.what)
		done(t, s, x, mine)
		code := []byte("code-" + tt.what)
		if err := s.SetOIDCAuthCode(ctx, a.ID, x.ID, code, tt.set); err != nil {
			t.Fatalf("SetOIDCAuthCode(%s) = %v", tt.what, err)
		}
		got, err := s.ConsumeOIDCAuthCode(ctx, a.ID, code, tt.use)
		if tt.ok && (err != nil || got == nil || got.ID != x.ID) {
			t.Errorf("ConsumeOIDCAuthCode(%s) = %v, %v; want the request", tt.what, got, err)
		}
		if !tt.ok {
			wantCode(t, "ConsumeOIDCAuthCode("+tt.what+")", err, deadbolt.ENotFound)
			if got != nil {
				t.Errorf("ConsumeOIDCAuthCode(%s) returned a request for an unused code", tt.what)
			}
		}
	}
	// Codes are unique.
	dup := mustAuthRequest(t, s, c, "req-dup")
	done(t, s, dup, mine)
	wantCode(t, "SetOIDCAuthCode(a code in use)", s.SetOIDCAuthCode(ctx, a.ID, dup.ID, []byte("code-1"), now), deadbolt.EConflict)

	// 5 requests, all expiring at base+OIDCAuthRequestTTL.
	n, err := s.DeleteExpiredOIDCAuthRequests(ctx, base.Add(deadbolt.OIDCAuthRequestTTL-time.Second))
	if err != nil || n != 0 {
		t.Errorf("DeleteExpiredOIDCAuthRequests(before expiry) = %d, %v; want 0", n, err)
	}
	n, err = s.DeleteExpiredOIDCAuthRequests(ctx, base.Add(deadbolt.OIDCAuthRequestTTL))
	if err != nil || n != 5 {
		t.Errorf("DeleteExpiredOIDCAuthRequests = %d, %v; want 5", n, err)
	}
	_, err = s.ConsumeOIDCAuthCode(ctx, a.ID, []byte("code-1"), now)
	wantCode(t, "ConsumeOIDCAuthCode(deleted request)", err, deadbolt.ENotFound)
}

func testOIDCCodeRace(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	c := mustClient(t, s, a.ID, "dbo_app")
	r := mustAuthRequest(t, s, c, "req-race")
	done(t, s, r, mustSession(t, s, owner, "race-session"))
	if err := s.SetOIDCAuthCode(ctx, a.ID, r.ID, []byte("the-code"), base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ok, codes := race(50, func(int) error {
		_, err := s.ConsumeOIDCAuthCode(ctx, a.ID, []byte("the-code"), base.Add(time.Minute+time.Second))
		return err
	})
	if ok != 1 || codes[deadbolt.ENotFound] != 49 {
		t.Errorf("50 racing ConsumeOIDCAuthCode: %d succeeded, errors %v; want exactly 1 success and 49 not found", ok, codes)
	}
}

func testOIDCTokens(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	other := mustUser(t, s, a.ID, "agent@acme.example", deadbolt.RoleAgent)
	c := mustClient(t, s, a.ID, "dbo_app")
	c2 := mustClient(t, s, a.ID, "dbo_app2")
	mine := mustSession(t, s, owner, "owner-session")
	theirs := mustSession(t, s, other, "other-session")

	for _, tt := range []struct {
		what string
		tok  func() *deadbolt.OIDCToken
	}{
		{"no such session", func() *deadbolt.OIDCToken {
			x := newToken(mine, c.ID, "t-x", nil)
			x.SessionID = "nope"
			return x
		}},
		{"another user's session", func() *deadbolt.OIDCToken {
			x := newToken(theirs, c.ID, "t-x", nil)
			x.UserID = owner.ID
			return x
		}},
		{"unknown client", func() *deadbolt.OIDCToken { return newToken(mine, "nope", "t-x", nil) }},
	} {
		wantCode(t, "CreateOIDCToken("+tt.what+")", s.CreateOIDCToken(ctx, tt.tok()), deadbolt.ENotFound)
	}
	if got := tokenIDs(s, a.ID, "t-x"); len(got) != 0 {
		t.Errorf("a refused CreateOIDCToken left a token")
	}

	t1 := mustToken(t, s, mine, c.ID, "t-1", []byte("refresh-1"))
	for name, find := range map[string]func() (*deadbolt.OIDCToken, error){
		"FindOIDCToken":          func() (*deadbolt.OIDCToken, error) { return s.FindOIDCToken(ctx, a.ID, t1.ID) },
		"FindOIDCTokenByRefresh": func() (*deadbolt.OIDCToken, error) { return s.FindOIDCTokenByRefresh(ctx, a.ID, []byte("refresh-1")) },
	} {
		got, err := find()
		if err != nil {
			t.Fatalf("%s = %v", name, err)
		}
		if diff := cmp.Diff(t1, got); diff != "" {
			t.Errorf("%s round trip (-created +found):\n%s", name, diff)
		}
	}
	wantCode(t, "CreateOIDCToken(duplicate refresh hash)", s.CreateOIDCToken(ctx, newToken(mine, c.ID, "t-dup", []byte("refresh-1"))), deadbolt.EConflict)
	wantCode(t, "CreateOIDCToken(duplicate id)", s.CreateOIDCToken(ctx, newToken(mine, c.ID, "t-1", nil)), deadbolt.EConflict)
	noRefresh := mustToken(t, s, mine, c.ID, "t-access-only", nil)
	if got, err := s.FindOIDCToken(ctx, a.ID, noRefresh.ID); err != nil || got.RefreshHash != nil {
		t.Errorf("token without a refresh token = %+v, %v; want a nil RefreshHash", got, err)
	}

	// Rotation: the old refresh hash is gone, the new one found.
	t2 := newToken(mine, c.ID, "t-2", []byte("refresh-2"))
	t2.AuthRequestID = t1.AuthRequestID
	if err := s.RotateOIDCToken(ctx, a.ID, []byte("refresh-1"), t2); err != nil {
		t.Fatalf("RotateOIDCToken = %v", err)
	}
	_, err := s.FindOIDCTokenByRefresh(ctx, a.ID, []byte("refresh-1"))
	wantCode(t, "FindOIDCTokenByRefresh(rotated away)", err, deadbolt.ENotFound)
	if got, err := s.FindOIDCTokenByRefresh(ctx, a.ID, []byte("refresh-2")); err != nil || got.ID != t2.ID {
		t.Errorf("FindOIDCTokenByRefresh(new) = %v, %v; want %s", got, err, t2.ID)
	}
	if got := tokenIDs(s, a.ID, t1.ID, t2.ID); !slices.Equal(got, []string{t2.ID}) {
		t.Errorf("tokens after rotation = %v, want only the new one", got)
	}
	for _, tt := range []struct {
		what string
		old  string
		tok  func() *deadbolt.OIDCToken
	}{
		{"used refresh hash", "refresh-1", func() *deadbolt.OIDCToken { return newToken(mine, c.ID, "t-3", []byte("refresh-3")) }},
		{"nil refresh hash", "", func() *deadbolt.OIDCToken { return newToken(mine, c.ID, "t-3", []byte("refresh-3")) }},
		{"another client's token", "refresh-2", func() *deadbolt.OIDCToken { return newToken(mine, c2.ID, "t-3", []byte("refresh-3")) }},
		{"another user's token", "refresh-2", func() *deadbolt.OIDCToken { return newToken(theirs, c.ID, "t-3", []byte("refresh-3")) }},
	} {
		var old []byte
		if tt.old != "" {
			old = []byte(tt.old)
		}
		wantCode(t, "RotateOIDCToken("+tt.what+")", s.RotateOIDCToken(ctx, a.ID, old, tt.tok()), deadbolt.ENotFound)
	}
	if got := tokenIDs(s, a.ID, t2.ID, "t-3"); !slices.Equal(got, []string{t2.ID}) {
		t.Errorf("tokens after refused rotations = %v, want %s untouched", got, t2.ID)
	}

	// A rotation into a session that is gone is refused as a whole.
	gone := mustSession(t, s, owner, "gone-session")
	g1 := mustToken(t, s, gone, c.ID, "g-1", []byte("refresh-g1"))
	if err := s.DeleteSession(ctx, a.ID, owner.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "RotateOIDCToken(session gone)", s.RotateOIDCToken(ctx, a.ID, []byte("refresh-g1"), newToken(gone, c.ID, "g-2", []byte("refresh-g2"))), deadbolt.ENotFound)
	if got := tokenIDs(s, a.ID, g1.ID, "g-2"); !slices.Equal(got, []string{g1.ID}) {
		t.Errorf("tokens after a refused rotation = %v, want the old one kept (rolled back)", got)
	}
	wantCode(t, "CreateOIDCToken(session gone)", s.CreateOIDCToken(ctx, newToken(gone, c.ID, "g-3", nil)), deadbolt.ENotFound)

	// Expiring the access token keeps the refresh token.
	if err := s.ExpireOIDCAccessToken(ctx, a.ID, t2.ID); err != nil {
		t.Fatalf("ExpireOIDCAccessToken = %v", err)
	}
	got, err := s.FindOIDCTokenByRefresh(ctx, a.ID, []byte("refresh-2"))
	if err != nil || got.ID != t2.ID || got.ExpiresAt.After(got.CreatedAt) || !got.RefreshExpiresAt.Equal(t2.RefreshExpiresAt) {
		t.Errorf("after ExpireOIDCAccessToken: %+v, %v; want the refresh token, and the access token expired at issue or before", got, err)
	}
	wantCode(t, "ExpireOIDCAccessToken(unknown)", s.ExpireOIDCAccessToken(ctx, a.ID, "nope"), deadbolt.ENotFound)
	if err := s.DeleteOIDCToken(ctx, a.ID, t2.ID); err != nil {
		t.Fatalf("DeleteOIDCToken = %v", err)
	}
	_, err = s.FindOIDCTokenByRefresh(ctx, a.ID, []byte("refresh-2"))
	wantCode(t, "FindOIDCTokenByRefresh(deleted)", err, deadbolt.ENotFound)
	wantCode(t, "DeleteOIDCToken(again)", s.DeleteOIDCToken(ctx, a.ID, t2.ID), deadbolt.ENotFound)
}

func testOIDCTokensOf(t *testing.T, s Store) {
	tests := []struct {
		what                    string
		user                    string // "owner" or "other"
		clientID, authRequestID string
		want                    int
		left                    []string
	}{
		{"one auth request", "owner", "", "req-o1", 2, []string{"o2", "x1"}},
		{"the user's, one client", "owner", "dbo_app", "", 2, []string{"o2", "x1"}},
		{"the user's, every client", "owner", "", "", 3, []string{"x1"}},
		{"the other user's", "other", "", "", 1, []string{"o1", "o1b", "o2"}},
		{"no such client", "owner", "nope", "", 0, []string{"o1", "o1b", "o2", "x1"}},
		{"no such auth request", "owner", "", "nope", 0, []string{"o1", "o1b", "o2", "x1"}},
	}
	for i, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			a, owner := mustAccount(t, s, fmt.Sprint("acme-", i))
			other := mustUser(t, s, a.ID, "agent@acme.example", deadbolt.RoleAgent)
			c := mustClient(t, s, a.ID, "dbo_app-"+a.ID)
			c2 := mustClient(t, s, a.ID, "dbo_app2-"+a.ID)
			mine, theirs := mustSession(t, s, owner, "o-"+a.ID), mustSession(t, s, other, "x-"+a.ID)
			o1 := newToken(mine, c.ID, "o1", nil)
			o1.AuthRequestID = "req-o1"
			o1b := newToken(mine, c.ID, "o1b", nil) // a refreshed successor of o1
			o1b.AuthRequestID = "req-o1"
			for _, tok := range []*deadbolt.OIDCToken{o1, o1b, newToken(mine, c2.ID, "o2", nil), newToken(theirs, c.ID, "x1", nil)} {
				if err := s.CreateOIDCToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			userID := owner.ID
			if tt.user == "other" {
				userID = other.ID
			}
			clientID := tt.clientID
			if clientID == "dbo_app" {
				clientID = c.ID
			}
			n, err := s.DeleteOIDCTokensOf(ctx, a.ID, userID, clientID, tt.authRequestID)
			if err != nil || n != tt.want {
				t.Errorf("DeleteOIDCTokensOf = %d, %v; want %d", n, err, tt.want)
			}
			if got := tokenIDs(s, a.ID, "o1", "o1b", "o2", "x1"); !slices.Equal(got, tt.left) {
				t.Errorf("tokens left = %v, want %v", got, tt.left)
			}
		})
	}
}

func testOIDCRefreshRace(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	c := mustClient(t, s, a.ID, "dbo_app")
	ss := mustSession(t, s, owner, "race-session")
	mustToken(t, s, ss, c.ID, "t-0", []byte("refresh-0"))
	const n = 50
	ok, codes := race(n, func(i int) error {
		return s.RotateOIDCToken(ctx, a.ID, []byte("refresh-0"), newToken(ss, c.ID, fmt.Sprint("t-new-", i), []byte(fmt.Sprint("refresh-new-", i))))
	})
	if ok != 1 || codes[deadbolt.ENotFound] != n-1 {
		t.Errorf("%d racing RotateOIDCToken: %d succeeded, errors %v; want exactly 1 success and %d not found", n, ok, codes, n-1)
	}
	ids := []string{"t-0"}
	for i := range n {
		ids = append(ids, fmt.Sprint("t-new-", i))
	}
	if got := tokenIDs(s, a.ID, ids...); len(got) != 1 || got[0] == "t-0" {
		t.Errorf("tokens after the race = %v, want exactly one new token", got)
	}
}

func testOIDCLogins(t *testing.T, s Store) {
	a, owner := mustAccount(t, s, "acme")
	b, ownerB := mustAccount(t, s, "beta")
	c := mustClient(t, s, a.ID, "dbo_app")
	c2 := mustClient(t, s, a.ID, "dbo_app2")
	cb := mustClient(t, s, b.ID, "dbo_beta")
	s1 := mustSession(t, s, owner, "session-1")
	s2 := mustSession(t, s, owner, "session-2")
	sb := mustSession(t, s, ownerB, "session-b")
	mustToken(t, s, s1, c.ID, "t-1", []byte("refresh-1"))
	mustToken(t, s, s1, c.ID, "t-1b", nil) // a second issue: one login
	mustToken(t, s, s1, c2.ID, "t-1c", nil)
	mustToken(t, s, s2, c.ID, "t-2", nil)
	bt := newToken(sb, cb.ID, "t-b", nil)
	bt.CreatedAt = base.Add(time.Hour)
	if err := s.CreateOIDCToken(ctx, bt); err != nil {
		t.Fatal(err)
	}

	ended := func() []string {
		t.Helper()
		list, err := s.EndedOIDCLogins(ctx, 10)
		if err != nil {
			t.Fatalf("EndedOIDCLogins = %v", err)
		}
		var out []string
		for _, l := range list {
			out = append(out, l.AccountID+"/"+l.ClientID+"/"+l.SessionID)
		}
		return out
	}
	if got := ended(); len(got) != 0 {
		t.Errorf("EndedOIDCLogins with every session alive = %v, want none", got)
	}
	for _, x := range []struct {
		acc, user, id string
	}{{a.ID, owner.ID, s1.ID}, {b.ID, ownerB.ID, sb.ID}} {
		if err := s.DeleteSession(ctx, x.acc, x.user, x.id); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{a.ID + "/" + c.ID + "/" + s1.ID, a.ID + "/" + c2.ID + "/" + s1.ID, b.ID + "/" + cb.ID + "/" + sb.ID}
	got := ended()
	slices.Sort(want[:2])
	if len(got) == 3 {
		slices.Sort(got[:2]) // the two of s1 were made at the same instant
	}
	if !slices.Equal(got, want) {
		t.Errorf("EndedOIDCLogins = %v, want %v (every account, oldest first)", got, want)
	}
	if list, _ := s.EndedOIDCLogins(ctx, 1); len(list) != 1 || list[0].AccountID != a.ID || list[0].UserID != owner.ID || !list[0].CreatedAt.Equal(base) {
		t.Errorf("EndedOIDCLogins(1) = %+v, want one login of acme's owner made at %v", list, base)
	}

	wantCode(t, "DeleteOIDCLogin through another account", s.DeleteOIDCLogin(ctx, b.ID, c.ID, s1.ID), deadbolt.ENotFound)
	if err := s.DeleteOIDCLogin(ctx, a.ID, c.ID, s1.ID); err != nil {
		t.Fatalf("DeleteOIDCLogin = %v", err)
	}
	if got := tokenIDs(s, a.ID, "t-1", "t-1b", "t-1c", "t-2"); !slices.Equal(got, []string{"t-1c", "t-2"}) {
		t.Errorf("tokens after DeleteOIDCLogin = %v, want those of other clients and sessions", got)
	}
	wantCode(t, "DeleteOIDCLogin(again)", s.DeleteOIDCLogin(ctx, a.ID, c.ID, s1.ID), deadbolt.ENotFound)
	if got := ended(); len(got) != 2 || slices.Contains(got, a.ID+"/"+c.ID+"/"+s1.ID) {
		t.Errorf("EndedOIDCLogins after DeleteOIDCLogin = %v", got)
	}

	// A session rotated after a step-up takes its logins and tokens along.
	s3 := mustSession(t, s, owner, "session-3")
	if err := s.MoveOIDCSession(ctx, a.ID, s2.ID, s3.ID); err != nil {
		t.Fatalf("MoveOIDCSession = %v", err)
	}
	if tok, err := s.FindOIDCToken(ctx, a.ID, "t-2"); err != nil || tok.SessionID != s3.ID {
		t.Errorf("token after MoveOIDCSession = %+v, %v; want bound to %s", tok, err, s3.ID)
	}
	if err := s.DeleteSession(ctx, a.ID, owner.ID, s2.ID); err != nil {
		t.Fatal(err)
	}
	if got := ended(); slices.Contains(got, a.ID+"/"+c.ID+"/"+s2.ID) || slices.Contains(got, a.ID+"/"+c.ID+"/"+s3.ID) {
		t.Errorf("EndedOIDCLogins after the move and the old session's end = %v, want the moved login live", got)
	}
	if err := s.DeleteSession(ctx, a.ID, owner.ID, s3.ID); err != nil {
		t.Fatal(err)
	}
	if got := ended(); !slices.Contains(got, a.ID+"/"+c.ID+"/"+s3.ID) {
		t.Errorf("EndedOIDCLogins after the new session's end = %v, want its login", got)
	}

	// Deleting the user leaves none of their tokens or logins.
	agent := mustUser(t, s, a.ID, "agent@acme.example", deadbolt.RoleAgent)
	sa := mustSession(t, s, agent, "agent-session")
	mustToken(t, s, sa, c.ID, "t-agent", []byte("refresh-agent"))
	r := mustAuthRequest(t, s, c, "req-agent")
	done(t, s, r, sa)
	if err := s.DeleteUser(ctx, a.ID, agent.ID); err != nil {
		t.Fatal(err)
	}
	if got := tokenIDs(s, a.ID, "t-agent"); len(got) != 0 {
		t.Errorf("tokens of a deleted user = %v, want none", got)
	}
	if _, err := s.FindOIDCAuthRequest(ctx, a.ID, r.ID, base); !deadbolt.IsCode(err, deadbolt.ENotFound) {
		t.Errorf("auth request of a deleted user: %v, want ENotFound", err)
	}
	for _, l := range ended() {
		if l == a.ID+"/"+c.ID+"/"+sa.ID {
			t.Errorf("a login of a deleted user is left")
		}
	}
}

func testOIDCKeys(t *testing.T, s Store) {
	a, _ := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	if keys, err := s.FindOIDCKeys(ctx, a.ID, time.Time{}); err != nil || len(keys) != 0 {
		t.Errorf("FindOIDCKeys(no keys) = %d, %v", len(keys), err)
	}
	k1 := &deadbolt.OIDCKey{AccountID: a.ID, ID: "k1", Alg: "RS256", Private: []byte("private-key-one\x00\x01"), CreatedAt: base}
	k2 := &deadbolt.OIDCKey{AccountID: a.ID, ID: "k2", Alg: "ES256", Private: []byte("private-key-two"), CreatedAt: base.Add(24 * time.Hour)}
	kb := &deadbolt.OIDCKey{AccountID: b.ID, ID: "kb", Alg: "ES256", Private: []byte("private-key-beta"), CreatedAt: base}
	for _, k := range []*deadbolt.OIDCKey{k1, k2, kb} {
		if err := s.CreateOIDCKey(ctx, k); err != nil {
			t.Fatalf("CreateOIDCKey(%s) = %v", k.ID, err)
		}
	}
	wantCode(t, "CreateOIDCKey(duplicate id)", s.CreateOIDCKey(ctx, &deadbolt.OIDCKey{AccountID: a.ID, ID: "k2", Alg: "ES256",
		Private: []byte("x"), CreatedAt: base.Add(48 * time.Hour)}), deadbolt.EConflict)
	wantCode(t, "CreateOIDCKey(unknown account)", s.CreateOIDCKey(ctx, &deadbolt.OIDCKey{AccountID: "nope", ID: "kx", Alg: "ES256",
		Private: []byte("x")}), deadbolt.EAccountNotFound)
	retired := *k1
	retired.RetiredAt = k2.CreatedAt
	tests := []struct {
		what  string
		since time.Time
		want  []*deadbolt.OIDCKey
	}{
		{"since before the retirement", k2.CreatedAt.Add(-time.Second), []*deadbolt.OIDCKey{k2, &retired}},
		{"since zero", time.Time{}, []*deadbolt.OIDCKey{k2, &retired}},
		{"since the retirement", k2.CreatedAt, []*deadbolt.OIDCKey{k2}},
		{"since after the retirement", k2.CreatedAt.Add(time.Hour), []*deadbolt.OIDCKey{k2}},
	}
	for _, tt := range tests {
		got, err := s.FindOIDCKeys(ctx, a.ID, tt.since)
		if err != nil {
			t.Fatalf("FindOIDCKeys(%s) = %v", tt.what, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("FindOIDCKeys(%s) (-want +got):\n%s", tt.what, diff)
		}
	}
	if got, _ := s.FindOIDCKeys(ctx, b.ID, time.Time{}); len(got) != 1 || !bytes.Equal(got[0].Private, kb.Private) || !got[0].RetiredAt.IsZero() {
		t.Errorf("FindOIDCKeys(beta) = %+v, want beta's one current key (acme's rotation leaves it)", got)
	}
	// Keys made at once: one is current at the end, and a loser is told
	// of the conflict.
	ok, codes := race(10, func(i int) error {
		return s.CreateOIDCKey(ctx, &deadbolt.OIDCKey{AccountID: b.ID, ID: fmt.Sprint("race-", i), Alg: "ES256", Private: []byte("p"),
			CreatedAt: base.Add(time.Duration(i+1) * time.Hour)})
	})
	if ok == 0 || ok+codes[deadbolt.EConflict] != 10 {
		t.Errorf("10 racing CreateOIDCKey: %d succeeded, errors %v; want successes and conflicts only", ok, codes)
	}
	keys, _ := s.FindOIDCKeys(ctx, b.ID, time.Time{})
	current := 0
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			current++
		}
	}
	if current != 1 || !keys[0].RetiredAt.IsZero() {
		t.Errorf("after the race: %d current keys, want 1, listed first", current)
	}
}

// testOIDCTenantIsolation checks that nothing of account A's provider can
// be read, changed or used through account B.
func testOIDCTenantIsolation(t *testing.T, s Store) {
	a, ownerA := mustAccount(t, s, "alpha")
	b, ownerB := mustAccount(t, s, "beta")
	c := mustClient(t, s, a.ID, "dbo_alpha")
	cb := mustClient(t, s, b.ID, "dbo_beta")
	ss := mustSession(t, s, ownerA, "alpha-session")
	sb := mustSession(t, s, ownerB, "beta-session")
	r := mustAuthRequest(t, s, c, "req-alpha")
	done(t, s, r, ss)
	if err := s.SetOIDCAuthCode(ctx, a.ID, r.ID, []byte("alpha-code"), base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r2 := mustAuthRequest(t, s, c, "req-alpha-2")
	tok := mustToken(t, s, ss, c.ID, "alpha-token", []byte("alpha-refresh"))
	if err := s.CreateOIDCKey(ctx, &deadbolt.OIDCKey{AccountID: a.ID, ID: "alpha-key", Alg: "ES256", Private: []byte("alpha-private"), CreatedAt: base}); err != nil {
		t.Fatal(err)
	}

	upd := *c
	upd.AccountID, upd.Name = b.ID, "Mallory"
	complete := *r2
	complete.AccountID, complete.UserID, complete.SessionID = b.ID, ownerB.ID, sb.ID
	checks := []struct {
		what string
		err  func() error
	}{
		{"FindOIDCClient", func() error { _, err := s.FindOIDCClient(ctx, b.ID, c.ID); return err }},
		{"UpdateOIDCClient", func() error { _, err := s.UpdateOIDCClient(ctx, &upd); return err }},
		{"DeleteOIDCClient", func() error { return s.DeleteOIDCClient(ctx, b.ID, c.ID) }},
		{"CreateOIDCAuthRequest for A's client", func() error {
			return s.CreateOIDCAuthRequest(ctx, &deadbolt.OIDCAuthRequest{AccountID: b.ID, ID: "req-b", ClientID: c.ID, ExpiresAt: base.Add(time.Minute)})
		}},
		{"FindOIDCAuthRequest", func() error { _, err := s.FindOIDCAuthRequest(ctx, b.ID, r.ID, base); return err }},
		{"CompleteOIDCAuthRequest", func() error { return s.CompleteOIDCAuthRequest(ctx, &complete, base) }},
		{"SetOIDCAuthCode", func() error { return s.SetOIDCAuthCode(ctx, b.ID, r.ID, []byte("b-code"), base) }},
		{"ConsumeOIDCAuthCode", func() error {
			got, err := s.ConsumeOIDCAuthCode(ctx, b.ID, []byte("alpha-code"), base.Add(time.Minute))
			if got != nil {
				return fmt.Errorf("returned A's request")
			}
			return err
		}},
		{"CreateOIDCToken with A's session", func() error {
			x := newToken(ss, cb.ID, "b-token", nil)
			x.AccountID = b.ID
			return s.CreateOIDCToken(ctx, x)
		}},
		{"CreateOIDCToken with A's client", func() error {
			return s.CreateOIDCToken(ctx, newToken(sb, c.ID, "b-token", nil))
		}},
		{"RotateOIDCToken", func() error {
			return s.RotateOIDCToken(ctx, b.ID, []byte("alpha-refresh"), newToken(sb, cb.ID, "b-token", []byte("b-refresh")))
		}},
		{"FindOIDCToken", func() error { _, err := s.FindOIDCToken(ctx, b.ID, tok.ID); return err }},
		{"FindOIDCTokenByRefresh", func() error { _, err := s.FindOIDCTokenByRefresh(ctx, b.ID, []byte("alpha-refresh")); return err }},
		{"ExpireOIDCAccessToken", func() error { return s.ExpireOIDCAccessToken(ctx, b.ID, tok.ID) }},
		{"DeleteOIDCToken", func() error { return s.DeleteOIDCToken(ctx, b.ID, tok.ID) }},
		{"DeleteOIDCLogin", func() error { return s.DeleteOIDCLogin(ctx, b.ID, c.ID, ss.ID) }},
		{"FindSession", func() error { _, err := s.FindSession(ctx, b.ID, ss.ID); return err }},
	}
	for _, ch := range checks {
		wantCode(t, ch.what+" through the other account", ch.err(), deadbolt.ENotFound)
	}
	if list, err := s.FindOIDCClients(ctx, b.ID); err != nil || len(list) != 1 || list[0].ID != cb.ID {
		t.Errorf("FindOIDCClients(B) = %d clients, %v; want B's only", len(list), err)
	}
	if n, err := s.DeleteOIDCTokensOf(ctx, b.ID, ownerA.ID, "", ""); err != nil || n != 0 {
		t.Errorf("DeleteOIDCTokensOf(A's user) through B = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteOIDCTokensOf(ctx, b.ID, ownerA.ID, "", tok.AuthRequestID); err != nil || n != 0 {
		t.Errorf("DeleteOIDCTokensOf(A's auth request) through B = %d, %v; want 0", n, err)
	}
	if err := s.MoveOIDCSession(ctx, b.ID, ss.ID, sb.ID); err != nil {
		t.Errorf("MoveOIDCSession through B = %v", err)
	}
	if keys, err := s.FindOIDCKeys(ctx, b.ID, time.Time{}); err != nil || len(keys) != 0 {
		t.Errorf("FindOIDCKeys through B = %d, %v; want none", len(keys), err)
	}
	// And A still has all of it, unchanged.
	if got, err := s.FindOIDCClient(ctx, a.ID, c.ID); err != nil || got.Name != c.Name {
		t.Errorf("A's client after B's attempts = %+v, %v", got, err)
	}
	if got, err := s.FindOIDCToken(ctx, a.ID, tok.ID); err != nil || !got.ExpiresAt.Equal(tok.ExpiresAt) || got.SessionID != ss.ID {
		t.Errorf("A's token after B's attempts = %+v, %v", got, err)
	}
	if got, err := s.FindOIDCAuthRequest(ctx, a.ID, r2.ID, base); err != nil || !got.DoneAt.IsZero() {
		t.Errorf("A's open request after B's attempts = %+v, %v; want not done", got, err)
	}
	if _, err := s.ConsumeOIDCAuthCode(ctx, a.ID, []byte("alpha-code"), base.Add(time.Minute)); err != nil {
		t.Errorf("A's code after B's attempts = %v, want usable", err)
	}
}

func testFindSession(t *testing.T, s Store) {
	a, u := mustAccount(t, s, "acme")
	b, _ := mustAccount(t, s, "beta")
	ss := mustSession(t, s, u, "find-me")
	got, err := s.FindSession(ctx, a.ID, ss.ID)
	if err != nil {
		t.Fatalf("FindSession = %v", err)
	}
	if diff := cmp.Diff(ss, got); diff != "" {
		t.Errorf("FindSession round trip (-created +found):\n%s", diff)
	}
	for _, tt := range []struct {
		what, accountID, id string
	}{{"unknown id", a.ID, "nope"}, {"another account", b.ID, ss.ID}} {
		_, err := s.FindSession(ctx, tt.accountID, tt.id)
		wantCode(t, "FindSession("+tt.what+")", err, deadbolt.ENotFound)
	}

	// The second factor's method is written with its time, and kept when
	// only a password is proven.
	steps := []struct {
		what           string
		secondFactorAt time.Time
		method         string
		passwordAt     time.Time
		wantAt         time.Time
		wantMethod     string
	}{
		{"as created", time.Time{}, "", time.Time{}, base, "totp"},
		{"password only", time.Time{}, "sms", base.Add(time.Minute), base, "totp"},
		{"second factor", base.Add(2 * time.Minute), "recovery_code", time.Time{}, base.Add(2 * time.Minute), "recovery_code"},
		{"second factor, no method", base.Add(3 * time.Minute), "", time.Time{}, base.Add(3 * time.Minute), ""},
	}
	for _, st := range steps {
		if st.what != "as created" {
			if err := s.UpdateSessionAuth(ctx, a.ID, ss.ID, st.secondFactorAt, st.method, st.passwordAt); err != nil {
				t.Fatalf("UpdateSessionAuth(%s) = %v", st.what, err)
			}
		}
		got, err := s.FindSession(ctx, a.ID, ss.ID)
		if err != nil || !got.SecondFactorAt.Equal(st.wantAt) || got.SecondFactorMethod != st.wantMethod {
			t.Errorf("after %s: second factor at %v by %q, %v; want %v by %q", st.what, got.SecondFactorAt, got.SecondFactorMethod, err,
				st.wantAt, st.wantMethod)
		}
	}
	if got, _ := s.FindSessionByTokenHash(ctx, []byte("find-me")); got.SecondFactorMethod != "" || !got.PasswordAt.Equal(base.Add(time.Minute)) {
		t.Errorf("FindSessionByTokenHash after the updates = %+v", got)
	}
	// The method goes through a sign-in's completion too.
	c := mustChallenge(t, s, u, "method-challenge")
	sess := &deadbolt.Session{AccountID: a.ID, UserID: u.ID, TokenHash: []byte("completed"), IdleTimeout: time.Hour,
		ExpiresAt: base.Add(time.Hour), SecondFactorAt: base, SecondFactorMethod: "email", CreatedAt: base}
	if err := s.CompleteChallenge(ctx, &deadbolt.Completion{AccountID: a.ID, ChallengeID: c.ID, MaxAttempts: 5, Now: base, Session: sess}); err != nil {
		t.Fatalf("CompleteChallenge = %v", err)
	}
	if got, err := s.FindSession(ctx, a.ID, sess.ID); err != nil || got.SecondFactorMethod != "email" {
		t.Errorf("session of a completion = %+v, %v; want method email", got, err)
	}
}
