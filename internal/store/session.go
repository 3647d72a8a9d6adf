package store

import (
	"context"
	"time"

	"github.com/deadbolt/deadbolt"
)

// CreateSession stores a new session under its token hash.
func (s *DB) CreateSession(ctx context.Context, ss *deadbolt.Session) error {
	n := s.newSession(ss)
	if err := s.insertSession(ctx, s.db, &n); err != nil {
		return err
	}
	*ss = n
	return nil
}

// newSession is a copy of ss with a new id and its times as stored.
func (s *DB) newSession(ss *deadbolt.Session) deadbolt.Session {
	n := *ss
	n.ID = newID()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	if n.LastSeenAt.IsZero() {
		n.LastSeenAt = n.CreatedAt
	}
	n.CreatedAt, n.LastSeenAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.LastSeenAt), normTime(n.ExpiresAt)
	n.SecondFactorAt, n.PasswordAt, n.FederatedAt = normTime(n.SecondFactorAt), normTime(n.PasswordAt), normTime(n.FederatedAt)
	return n
}

// insertSession stores a session in one statement (so it can stay
// prepared): the row goes in only if the user is in the account.
func (s *DB) insertSession(ctx context.Context, q querier, n *deadbolt.Session) error {
	res, err := s.exec(ctx, q, `INSERT INTO sessions (account_id, id, user_id, token_hash, idle_seconds, expires_at,
			second_factor_at, password_at, second_factor_method, sso_provider_id, federated_at, upstream_mfa, device_id, ip, user_agent,
			created_at, last_seen_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.UserID, n.TokenHash, int64(n.IdleTimeout/time.Second), micros(n.ExpiresAt),
		micros(n.SecondFactorAt), micros(n.PasswordAt), n.SecondFactorMethod, n.SSOProviderID, micros(n.FederatedAt), n.UpstreamMFA,
		n.DeviceID, n.IP, n.UserAgent, micros(n.CreatedAt), micros(n.LastSeenAt), n.AccountID, n.UserID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	return checkOne(res, deadbolt.ENotFound, "User")
}

const sessionColumns = `account_id, id, user_id, token_hash, idle_seconds, expires_at, second_factor_at, password_at,
	second_factor_method, sso_provider_id, federated_at, upstream_mfa, device_id, ip, user_agent, created_at, last_seen_at`

func scanSession(row interface{ Scan(...any) error }) (*deadbolt.Session, error) {
	var ss deadbolt.Session
	var idle int64
	if err := row.Scan(&ss.AccountID, &ss.ID, &ss.UserID, &ss.TokenHash, &idle, at(&ss.ExpiresAt), at(&ss.SecondFactorAt),
		at(&ss.PasswordAt), &ss.SecondFactorMethod, &ss.SSOProviderID, at(&ss.FederatedAt), &ss.UpstreamMFA, &ss.DeviceID, &ss.IP, &ss.UserAgent, at(&ss.CreatedAt), at(&ss.LastSeenAt)); err != nil {
		return nil, err
	}
	ss.IdleTimeout = time.Duration(idle) * time.Second
	return &ss, nil
}

// FindSessionByTokenHash finds a session by its token hash, in any account:
// the token is all the caller has. Everything after this is scoped to the
// session's account.
func (s *DB) FindSessionByTokenHash(ctx context.Context, hash []byte) (*deadbolt.Session, error) {
	ss, err := scanSession(s.queryRow(ctx, s.db, `SELECT `+sessionColumns+` FROM sessions WHERE token_hash = ?`, hash))
	return ss, notFound(err, deadbolt.ENotFound, "Session")
}

// FindSession returns a session of the account by id, active or not.
func (s *DB) FindSession(ctx context.Context, accountID, id string) (*deadbolt.Session, error) {
	ss, err := scanSession(s.queryRow(ctx, s.db, `SELECT `+sessionColumns+` FROM sessions WHERE account_id = ? AND id = ?`, accountID, id))
	return ss, notFound(err, deadbolt.ENotFound, "Session")
}

// FindSessions lists a user's sessions, newest first.
func (s *DB) FindSessions(ctx context.Context, accountID, userID string) ([]*deadbolt.Session, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+sessionColumns+` FROM sessions WHERE account_id = ? AND user_id = ?
		ORDER BY created_at DESC, id`, accountID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*deadbolt.Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, ss)
	}
	return list, rows.Err()
}

// UpdateSessionAuth records a second factor (and its method) or password
// proven on the session; a zero time keeps the stored one, and a zero
// secondFactorAt the stored method.
func (s *DB) UpdateSessionAuth(ctx context.Context, accountID, id string, secondFactorAt time.Time, method string, passwordAt time.Time) error {
	var m any // NULL: keep the method
	if !secondFactorAt.IsZero() {
		m = method
	}
	res, err := s.exec(ctx, s.db, `UPDATE sessions SET second_factor_at = COALESCE(?, second_factor_at),
		second_factor_method = COALESCE(?, second_factor_method), password_at = COALESCE(?, password_at)
		WHERE account_id = ? AND id = ?`, micros(secondFactorAt), m, micros(passwordAt), accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Session")
}

// TouchSession records activity; it never moves last_seen_at backwards.
func (s *DB) TouchSession(ctx context.Context, accountID, id string, now time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE sessions SET last_seen_at = CASE WHEN last_seen_at < ? THEN ? ELSE last_seen_at END
		WHERE account_id = ? AND id = ?`, micros(now), micros(now), accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Session")
}

// DeleteSession ends one session of the user.
func (s *DB) DeleteSession(ctx context.Context, accountID, userID, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM sessions WHERE account_id = ? AND user_id = ? AND id = ?`, accountID, userID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Session")
}

// DeleteSessions ends all of the user's sessions but keep.
func (s *DB) DeleteSessions(ctx context.Context, accountID, userID, keep string) (int, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM sessions WHERE account_id = ? AND user_id = ? AND id <> ?`, accountID, userID, keep)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// DeleteExpiredSessions removes ended sessions: housekeeping across all
// accounts, run by the service.
func (s *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at + idle_seconds * 1000000 <= ?`,
		micros(now), micros(now))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
