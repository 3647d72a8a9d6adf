package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/deadbolt/deadbolt"
)

// The records of the OpenID Connect provider. String lists are stored as
// JSON arrays; a nil list round-trips as nil, an empty one as empty.

// jsonText encodes v for a TEXT column.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("store: encode: %w", err)
	}
	return string(b), nil
}

// jsonCol scans a JSON TEXT column into v.
type jsonCol struct{ v any }

func (c jsonCol) Scan(src any) error {
	switch src := src.(type) {
	case nil:
		return nil
	case string:
		return json.Unmarshal([]byte(src), c.v)
	case []byte:
		return json.Unmarshal(src, c.v)
	default:
		return fmt.Errorf("store: JSON column holds %T", src)
	}
}

// js wraps a pointer for Scan of a JSON column.
func js(v any) jsonCol { return jsonCol{v} }

// --- Clients ---

const oidcClientColumns = `account_id, id, name, secret_hash, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri,
	scopes, require_2fa, created_at, updated_at`

func scanOIDCClient(row interface{ Scan(...any) error }) (*deadbolt.OIDCClient, error) {
	var c deadbolt.OIDCClient
	if err := row.Scan(&c.AccountID, &c.ID, &c.Name, &c.SecretHash, js(&c.RedirectURIs), js(&c.PostLogoutRedirectURIs),
		&c.BackchannelLogoutURI, js(&c.Scopes), &c.Require2FA, at(&c.CreatedAt), at(&c.UpdatedAt)); err != nil {
		return nil, err
	}
	return &c, nil
}

// clientLists encodes a client's lists.
func clientLists(c *deadbolt.OIDCClient) (redirects, postLogout, scopes string, err error) {
	if redirects, err = jsonText(c.RedirectURIs); err != nil {
		return
	}
	if postLogout, err = jsonText(c.PostLogoutRedirectURIs); err != nil {
		return
	}
	scopes, err = jsonText(c.Scopes)
	return
}

// CreateOIDCClient stores a client of the account; the caller sets the id.
func (s *DB) CreateOIDCClient(ctx context.Context, c *deadbolt.OIDCClient) error {
	n := *c
	now := s.clock()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = now
	}
	if n.UpdatedAt.IsZero() {
		n.UpdatedAt = n.CreatedAt
	}
	n.CreatedAt, n.UpdatedAt = normTime(n.CreatedAt), normTime(n.UpdatedAt)
	redirects, postLogout, scopes, err := clientLists(&n)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, s.db, `INSERT INTO oidc_clients (`+oidcClientColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)`,
		n.AccountID, n.ID, n.Name, n.SecretHash, redirects, postLogout, n.BackchannelLogoutURI, scopes, n.Require2FA,
		micros(n.CreatedAt), micros(n.UpdatedAt), n.AccountID)
	if err != nil {
		return s.dialect.conflict(err, "A client with the id %q already exists.", n.ID)
	}
	if err := checkOne(res, deadbolt.EAccountNotFound, "Account"); err != nil {
		return err
	}
	*c = n
	return nil
}

// FindOIDCClient returns a client of the account.
func (s *DB) FindOIDCClient(ctx context.Context, accountID, id string) (*deadbolt.OIDCClient, error) {
	c, err := scanOIDCClient(s.queryRow(ctx, s.db, `SELECT `+oidcClientColumns+` FROM oidc_clients WHERE account_id = ? AND id = ?`,
		accountID, id))
	return c, notFound(err, deadbolt.ENotFound, "Client")
}

// FindOIDCClients lists the account's clients, oldest first.
func (s *DB) FindOIDCClients(ctx context.Context, accountID string) ([]*deadbolt.OIDCClient, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+oidcClientColumns+` FROM oidc_clients WHERE account_id = ? ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*deadbolt.OIDCClient
	for rows.Next() {
		c, err := scanOIDCClient(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, c)
	}
	return list, rows.Err()
}

// UpdateOIDCClient replaces a client's fields, its secret hash included,
// and returns it as stored.
func (s *DB) UpdateOIDCClient(ctx context.Context, c *deadbolt.OIDCClient) (*deadbolt.OIDCClient, error) {
	updated := c.UpdatedAt
	if updated.IsZero() {
		updated = s.clock()
	}
	redirects, postLogout, scopes, err := clientLists(c)
	if err != nil {
		return nil, err
	}
	out, err := scanOIDCClient(s.queryRow(ctx, s.db, `UPDATE oidc_clients SET name = ?, secret_hash = ?, redirect_uris = ?,
			post_logout_redirect_uris = ?, backchannel_logout_uri = ?, scopes = ?, require_2fa = ?, updated_at = ?
		WHERE account_id = ? AND id = ? RETURNING `+oidcClientColumns,
		c.Name, c.SecretHash, redirects, postLogout, c.BackchannelLogoutURI, scopes, c.Require2FA, micros(updated), c.AccountID, c.ID))
	if err != nil {
		return nil, notFound(err, deadbolt.ENotFound, "Client")
	}
	return out, nil
}

// DeleteOIDCClient removes a client; its tokens, logins and auth requests
// go with it in the same statement (ON DELETE CASCADE).
func (s *DB) DeleteOIDCClient(ctx context.Context, accountID, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM oidc_clients WHERE account_id = ? AND id = ?`, accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Client")
}

// --- Auth requests ---

// oidcRequest is the request column: the parameters as the application
// sent them.
type oidcRequest struct {
	RedirectURI         string   `json:"redirect_uri"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	Scopes              []string `json:"scopes"`
	ResponseType        string   `json:"response_type"`
	ResponseMode        string   `json:"response_mode,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	Prompt              []string `json:"prompt"`
	MaxAge              *int64   `json:"max_age,omitempty"`
	LoginHint           string   `json:"login_hint,omitempty"`
	ACRValues           []string `json:"acr_values"`
}

// The user_id of a request not done yet is NULL.
const oidcAuthRequestColumns = `account_id, id, client_id, request, COALESCE(user_id, ''), session_id, auth_time, amr, acr,
	done_at, code_used_at, created_at, expires_at, code_set_at`

// scanOIDCAuthRequest scans a request and when its code was set.
func scanOIDCAuthRequest(row interface{ Scan(...any) error }) (*deadbolt.OIDCAuthRequest, time.Time, error) {
	var r deadbolt.OIDCAuthRequest
	var p oidcRequest
	var codeSetAt time.Time
	if err := row.Scan(&r.AccountID, &r.ID, &r.ClientID, js(&p), &r.UserID, &r.SessionID, at(&r.AuthTime), js(&r.AMR), &r.ACR,
		at(&r.DoneAt), at(&r.CodeUsedAt), at(&r.CreatedAt), at(&r.ExpiresAt), at(&codeSetAt)); err != nil {
		return nil, time.Time{}, err
	}
	r.RedirectURI, r.State, r.Nonce, r.Scopes = p.RedirectURI, p.State, p.Nonce, p.Scopes
	r.ResponseType, r.ResponseMode, r.CodeChallenge, r.CodeChallengeMethod = p.ResponseType, p.ResponseMode, p.CodeChallenge, p.CodeChallengeMethod
	r.Prompt, r.MaxAge, r.LoginHint, r.ACRValues = p.Prompt, p.MaxAge, p.LoginHint, p.ACRValues
	return &r, codeSetAt, nil
}

// CreateOIDCAuthRequest stores a new request of a client of the account;
// the caller sets the id. Who signs in for it is recorded later
// (CompleteOIDCAuthRequest): fields of that part are not stored here.
func (s *DB) CreateOIDCAuthRequest(ctx context.Context, r *deadbolt.OIDCAuthRequest) error {
	n := *r
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	if n.ExpiresAt.IsZero() {
		n.ExpiresAt = n.CreatedAt.Add(deadbolt.OIDCAuthRequestTTL)
	}
	n.CreatedAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.ExpiresAt)
	n.UserID, n.SessionID, n.AuthTime, n.AMR, n.ACR, n.DoneAt, n.CodeUsedAt = "", "", time.Time{}, nil, "", time.Time{}, time.Time{}
	req, err := jsonText(oidcRequest{RedirectURI: n.RedirectURI, State: n.State, Nonce: n.Nonce, Scopes: n.Scopes,
		ResponseType: n.ResponseType, ResponseMode: n.ResponseMode, CodeChallenge: n.CodeChallenge,
		CodeChallengeMethod: n.CodeChallengeMethod, Prompt: n.Prompt, MaxAge: n.MaxAge, LoginHint: n.LoginHint, ACRValues: n.ACRValues})
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, s.db, `INSERT INTO oidc_auth_requests (account_id, id, client_id, request, created_at, expires_at)
		SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM oidc_clients WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.ClientID, req, micros(n.CreatedAt), micros(n.ExpiresAt), n.AccountID, n.ClientID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	if err := checkOne(res, deadbolt.ENotFound, "Client"); err != nil {
		return err
	}
	*r = n
	return nil
}

// FindOIDCAuthRequest returns a request that has not expired at now.
func (s *DB) FindOIDCAuthRequest(ctx context.Context, accountID, id string, now time.Time) (*deadbolt.OIDCAuthRequest, error) {
	r, _, err := scanOIDCAuthRequest(s.queryRow(ctx, s.db, `SELECT `+oidcAuthRequestColumns+` FROM oidc_auth_requests
		WHERE account_id = ? AND id = ? AND expires_at > ?`, accountID, id, micros(now)))
	if err != nil {
		return nil, notFound(err, deadbolt.ENotFound, "Sign-in request")
	}
	return r, nil
}

// CompleteOIDCAuthRequest records who signed in for a live request not
// done yet, in one conditional statement: the session must be the user's.
// A zero DoneAt is now.
func (s *DB) CompleteOIDCAuthRequest(ctx context.Context, r *deadbolt.OIDCAuthRequest, now time.Time) error {
	done := r.DoneAt
	if done.IsZero() {
		done = now
	}
	done, authTime := normTime(done), normTime(r.AuthTime)
	amr, err := jsonText(r.AMR)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, s.db, `UPDATE oidc_auth_requests SET user_id = ?, session_id = ?, auth_time = ?, amr = ?, acr = ?, done_at = ?
		WHERE account_id = ? AND id = ? AND done_at IS NULL AND expires_at > ?
		AND EXISTS (SELECT 1 FROM sessions WHERE account_id = ? AND id = ? AND user_id = ?)`,
		r.UserID, r.SessionID, micros(authTime), amr, r.ACR, micros(done), r.AccountID, r.ID, micros(now),
		r.AccountID, r.SessionID, r.UserID)
	if err != nil {
		return err
	}
	if err := checkOne(res, deadbolt.ENotFound, "Sign-in request"); err != nil {
		return err
	}
	r.DoneAt, r.AuthTime = done, authTime
	return nil
}

// SetOIDCAuthCode stores the hash of the code of a live, done request that
// has none yet.
func (s *DB) SetOIDCAuthCode(ctx context.Context, accountID, id string, codeHash []byte, now time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE oidc_auth_requests SET code_hash = ?, code_set_at = ?
		WHERE account_id = ? AND id = ? AND done_at IS NOT NULL AND code_hash IS NULL AND expires_at > ?`,
		codeHash, micros(now), accountID, id, micros(now))
	if err != nil {
		return s.dialect.formatError(err)
	}
	return checkOne(res, deadbolt.ENotFound, "Sign-in request")
}

// ConsumeOIDCAuthCode marks the code used and returns its request. The mark
// is a conditional statement: of racing callers one wins. A code used
// already (a replay, or a racing caller that lost) gives ENotFound with its
// request, so that the caller can revoke what the code gave; an unknown or
// stale code gives ENotFound alone.
func (s *DB) ConsumeOIDCAuthCode(ctx context.Context, accountID string, codeHash []byte, now time.Time) (*deadbolt.OIDCAuthRequest, error) {
	var r *deadbolt.OIDCAuthRequest
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var codeSetAt time.Time
		var err error
		r, codeSetAt, err = scanOIDCAuthRequest(s.queryRow(ctx, tx, `SELECT `+oidcAuthRequestColumns+` FROM oidc_auth_requests
			WHERE account_id = ? AND code_hash = ?`, accountID, codeHash))
		if err != nil {
			return notFound(err, deadbolt.ENotFound, "Code")
		}
		if !r.CodeUsedAt.IsZero() {
			return deadbolt.Errorf(deadbolt.ENotFound, "Code not found.")
		}
		if !now.Before(codeSetAt.Add(deadbolt.OIDCCodeTTL)) || !now.Before(r.ExpiresAt) {
			r = nil
			return deadbolt.Errorf(deadbolt.ENotFound, "Code not found.")
		}
		used := normTime(now)
		res, err := s.exec(ctx, tx, `UPDATE oidc_auth_requests SET code_used_at = ? WHERE account_id = ? AND id = ? AND code_used_at IS NULL`,
			micros(used), accountID, r.ID)
		if err != nil {
			return err
		}
		if err := checkOne(res, deadbolt.ENotFound, "Code"); err != nil {
			return err // another caller used it first
		}
		r.CodeUsedAt = used
		return nil
	})
	if err != nil {
		if deadbolt.IsCode(err, deadbolt.ENotFound) && r != nil {
			return r, err
		}
		return nil, err
	}
	return r, nil
}

// DeleteExpiredOIDCAuthRequests removes requests past their expiry:
// housekeeping across all accounts, run by the service.
func (s *DB) DeleteExpiredOIDCAuthRequests(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM oidc_auth_requests WHERE expires_at <= ?`, micros(now))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// --- Tokens ---

const oidcTokenColumns = `account_id, id, client_id, user_id, session_id, auth_request_id, refresh_hash, scopes, auth_time, amr, acr,
	expires_at, refresh_expires_at, created_at`

func scanOIDCToken(row interface{ Scan(...any) error }) (*deadbolt.OIDCToken, error) {
	var t deadbolt.OIDCToken
	if err := row.Scan(&t.AccountID, &t.ID, &t.ClientID, &t.UserID, &t.SessionID, &t.AuthRequestID, &t.RefreshHash, js(&t.Scopes),
		at(&t.AuthTime), js(&t.AMR), &t.ACR, at(&t.ExpiresAt), at(&t.RefreshExpiresAt), at(&t.CreatedAt)); err != nil {
		return nil, err
	}
	return &t, nil
}

// newOIDCToken is a copy of t with its times as stored (and an id if it
// had none).
func (s *DB) newOIDCToken(t *deadbolt.OIDCToken) deadbolt.OIDCToken {
	n := *t
	if n.ID == "" {
		n.ID = newID()
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.CreatedAt, n.AuthTime = normTime(n.CreatedAt), normTime(n.AuthTime)
	n.ExpiresAt, n.RefreshExpiresAt = normTime(n.ExpiresAt), normTime(n.RefreshExpiresAt)
	return n
}

// insertOIDCToken stores a token issue and the login of its client for its
// session. The token goes in only if the session exists and is the user's
// (and the client is the account's): nothing outlives its session.
func (s *DB) insertOIDCToken(ctx context.Context, tx *sql.Tx, n *deadbolt.OIDCToken) error {
	scopes, err := jsonText(n.Scopes)
	if err != nil {
		return err
	}
	amr, err := jsonText(n.AMR)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, tx, `INSERT INTO oidc_tokens (`+oidcTokenColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE EXISTS (SELECT 1 FROM sessions WHERE account_id = ? AND id = ? AND user_id = ?)
		AND EXISTS (SELECT 1 FROM oidc_clients WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.ClientID, n.UserID, n.SessionID, n.AuthRequestID, n.RefreshHash, scopes, micros(n.AuthTime), amr, n.ACR,
		micros(n.ExpiresAt), micros(n.RefreshExpiresAt), micros(n.CreatedAt),
		n.AccountID, n.SessionID, n.UserID, n.AccountID, n.ClientID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	if err := checkOne(res, deadbolt.ENotFound, "Session"); err != nil {
		return err
	}
	_, err = s.exec(ctx, tx, `INSERT INTO oidc_logins (account_id, client_id, session_id, user_id, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, n.AccountID, n.ClientID, n.SessionID, n.UserID, micros(n.CreatedAt))
	return err
}

// CreateOIDCToken stores a token issue and its login in one transaction.
func (s *DB) CreateOIDCToken(ctx context.Context, t *deadbolt.OIDCToken) error {
	n := s.newOIDCToken(t)
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.insertOIDCToken(ctx, tx, &n) }); err != nil {
		return err
	}
	*t = n
	return nil
}

// RotateOIDCToken replaces the token with the refresh hash old by t, in one
// transaction: the old row's deletion is conditional, so of racing
// refreshes one wins. The old token must be of t's client and user.
func (s *DB) RotateOIDCToken(ctx context.Context, accountID string, old []byte, t *deadbolt.OIDCToken) error {
	n := s.newOIDCToken(t)
	if n.AccountID == "" {
		n.AccountID = accountID
	}
	if n.AccountID != accountID {
		return deadbolt.Errorf(deadbolt.ENotFound, "Refresh token not found.")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM oidc_tokens WHERE account_id = ? AND refresh_hash = ? AND client_id = ? AND user_id = ?`,
			accountID, old, n.ClientID, n.UserID)
		if err != nil {
			return err
		}
		if err := checkOne(res, deadbolt.ENotFound, "Refresh token"); err != nil {
			return err
		}
		return s.insertOIDCToken(ctx, tx, &n)
	})
	if err != nil {
		return err
	}
	*t = n
	return nil
}

// FindOIDCToken returns a token by id, live or not.
func (s *DB) FindOIDCToken(ctx context.Context, accountID, id string) (*deadbolt.OIDCToken, error) {
	t, err := scanOIDCToken(s.queryRow(ctx, s.db, `SELECT `+oidcTokenColumns+` FROM oidc_tokens WHERE account_id = ? AND id = ?`,
		accountID, id))
	return t, notFound(err, deadbolt.ENotFound, "Token")
}

// FindOIDCTokenByRefresh returns a token by its refresh hash, live or not.
func (s *DB) FindOIDCTokenByRefresh(ctx context.Context, accountID string, hash []byte) (*deadbolt.OIDCToken, error) {
	t, err := scanOIDCToken(s.queryRow(ctx, s.db, `SELECT `+oidcTokenColumns+` FROM oidc_tokens WHERE account_id = ? AND refresh_hash = ?`,
		accountID, hash))
	return t, notFound(err, deadbolt.ENotFound, "Token")
}

// ExpireOIDCAccessToken ends a token's access token, keeping its refresh
// token: its expiry becomes the epoch, before any time it is checked at.
func (s *DB) ExpireOIDCAccessToken(ctx context.Context, accountID, id string) error {
	res, err := s.exec(ctx, s.db, `UPDATE oidc_tokens SET expires_at = 0 WHERE account_id = ? AND id = ?`, accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Token")
}

// DeleteOIDCToken ends a token issue, refresh token and all.
func (s *DB) DeleteOIDCToken(ctx context.Context, accountID, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM oidc_tokens WHERE account_id = ? AND id = ?`, accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Token")
}

// DeleteOIDCTokensOf ends the tokens of one auth request when
// authRequestID is set (those it gave, and their refreshed successors);
// otherwise the user's, with one client or (clientID empty) every client.
func (s *DB) DeleteOIDCTokensOf(ctx context.Context, accountID, userID, clientID, authRequestID string) (int, error) {
	var res sql.Result
	var err error
	switch {
	case authRequestID != "":
		res, err = s.exec(ctx, s.db, `DELETE FROM oidc_tokens WHERE account_id = ? AND auth_request_id = ?`, accountID, authRequestID)
	case clientID != "":
		res, err = s.exec(ctx, s.db, `DELETE FROM oidc_tokens WHERE account_id = ? AND user_id = ? AND client_id = ?`, accountID, userID, clientID)
	default:
		res, err = s.exec(ctx, s.db, `DELETE FROM oidc_tokens WHERE account_id = ? AND user_id = ?`, accountID, userID)
	}
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// --- Logins ---

// EndedOIDCLogins lists up to n logins, in any account, whose session no
// longer exists, oldest first: housekeeping run by the service.
func (s *DB) EndedOIDCLogins(ctx context.Context, n int) ([]*deadbolt.OIDCLogin, error) {
	rows, err := s.query(ctx, s.db, `SELECT l.account_id, l.client_id, l.session_id, l.user_id, l.created_at
		FROM oidc_logins l LEFT JOIN sessions s ON s.account_id = l.account_id AND s.id = l.session_id
		WHERE s.id IS NULL ORDER BY l.created_at, l.account_id, l.client_id, l.session_id LIMIT ?`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*deadbolt.OIDCLogin
	for rows.Next() {
		var l deadbolt.OIDCLogin
		if err := rows.Scan(&l.AccountID, &l.ClientID, &l.SessionID, &l.UserID, at(&l.CreatedAt)); err != nil {
			return nil, err
		}
		list = append(list, &l)
	}
	return list, rows.Err()
}

// DeleteOIDCLogin forgets a login and the tokens of its session and
// client, in one transaction.
func (s *DB) DeleteOIDCLogin(ctx context.Context, accountID, clientID, sessionID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM oidc_logins WHERE account_id = ? AND client_id = ? AND session_id = ?`,
			accountID, clientID, sessionID)
		if err != nil {
			return err
		}
		if err := checkOne(res, deadbolt.ENotFound, "Login"); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `DELETE FROM oidc_tokens WHERE account_id = ? AND client_id = ? AND session_id = ?`,
			accountID, clientID, sessionID)
		return err
	})
}

// --- Keys ---

// CreateOIDCKey stores a new signing key, sealed, and retires the current
// one at k.CreatedAt, in one transaction; the caller sets the id. A
// concurrent creator that made its key first gives EConflict (an account
// has one current key: a partial unique index).
func (s *DB) CreateOIDCKey(ctx context.Context, k *deadbolt.OIDCKey) error {
	n := *k
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.CreatedAt, n.RetiredAt = normTime(n.CreatedAt), time.Time{}
	sealed, err := s.sealer.Seal(n.Private, aad("oidc_keys.private_key", n.AccountID, n.ID))
	if err != nil {
		return fmt.Errorf("store: seal: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE oidc_keys SET retired_at = ? WHERE account_id = ? AND retired_at IS NULL`,
			micros(n.CreatedAt), n.AccountID); err != nil {
			return err
		}
		res, err := s.exec(ctx, tx, `INSERT INTO oidc_keys (account_id, id, alg, private_key, created_at)
			SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)`,
			n.AccountID, n.ID, n.Alg, sealed, micros(n.CreatedAt), n.AccountID)
		if err != nil {
			return s.dialect.conflict(err, "A signing key with this id, or another new one, was made at the same time.")
		}
		return checkOne(res, deadbolt.EAccountNotFound, "Account")
	})
	if err != nil {
		return err
	}
	*k = n
	return nil
}

// FindOIDCKeys lists the account's current key and those retired after
// since, newest first (the current key first), opened.
func (s *DB) FindOIDCKeys(ctx context.Context, accountID string, since time.Time) ([]*deadbolt.OIDCKey, error) {
	// since as microseconds even when zero (the year 1): every retired key.
	rows, err := s.query(ctx, s.db, `SELECT account_id, id, alg, private_key, created_at, retired_at FROM oidc_keys
		WHERE account_id = ? AND (retired_at IS NULL OR retired_at > ?)
		ORDER BY CASE WHEN retired_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id`, accountID, since.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*deadbolt.OIDCKey
	for rows.Next() {
		var k deadbolt.OIDCKey
		var sealed []byte
		if err := rows.Scan(&k.AccountID, &k.ID, &k.Alg, &sealed, at(&k.CreatedAt), at(&k.RetiredAt)); err != nil {
			return nil, err
		}
		ad := aad("oidc_keys.private_key", k.AccountID, k.ID)
		if k.Private, err = s.sealer.Open(sealed, ad); err != nil {
			return nil, fmt.Errorf("store: open sealed %s: %w", ad, err)
		}
		list = append(list, &k)
	}
	return list, rows.Err()
}
