package store

import (
	"context"
	"time"

	"github.com/deadbolt/deadbolt"
)

// CreateAPIToken stores a token's hash for a user of the account.
func (s *DB) CreateAPIToken(ctx context.Context, t *deadbolt.APIToken) error {
	n := *t
	n.ID = newID()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.CreatedAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.ExpiresAt)
	res, err := s.exec(ctx, s.db, `INSERT INTO api_tokens (account_id, id, user_id, description, token_hash, created_at, expires_at)
		SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.UserID, n.Description, n.TokenHash, micros(n.CreatedAt), micros(n.ExpiresAt), n.AccountID, n.UserID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	if err := checkOne(res, deadbolt.ENotFound, "User"); err != nil {
		return err
	}
	*t = n
	return nil
}

const apiTokenColumns = `account_id, id, user_id, description, token_hash, created_at, last_used_at, expires_at`

func scanAPIToken(row interface{ Scan(...any) error }) (*deadbolt.APIToken, error) {
	var t deadbolt.APIToken
	if err := row.Scan(&t.AccountID, &t.ID, &t.UserID, &t.Description, &t.TokenHash, at(&t.CreatedAt), at(&t.LastUsedAt), at(&t.ExpiresAt)); err != nil {
		return nil, err
	}
	return &t, nil
}

// FindAPITokenByHash finds a token by its hash.
func (s *DB) FindAPITokenByHash(ctx context.Context, hash []byte) (*deadbolt.APIToken, error) {
	t, err := scanAPIToken(s.queryRow(ctx, s.db, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE token_hash = ?`, hash))
	return t, notFound(err, deadbolt.ENotFound, "API token")
}

// FindAPITokens lists the account's tokens, newest first.
func (s *DB) FindAPITokens(ctx context.Context, accountID string) ([]*deadbolt.APIToken, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE account_id = ? ORDER BY created_at DESC, id`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*deadbolt.APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, t)
	}
	return list, rows.Err()
}

// TouchAPIToken records a use, at most once a minute per token.
func (s *DB) TouchAPIToken(ctx context.Context, accountID, id string, now time.Time) error {
	_, err := s.exec(ctx, s.db, `UPDATE api_tokens SET last_used_at = ? WHERE account_id = ? AND id = ?
		AND (last_used_at IS NULL OR last_used_at < ?)`, micros(now), accountID, id, micros(now.Add(-time.Minute)))
	return err
}

// DeleteAPIToken revokes a token.
func (s *DB) DeleteAPIToken(ctx context.Context, accountID, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM api_tokens WHERE account_id = ? AND id = ?`, accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "API token")
}

// DeleteUserAPITokens revokes a user's tokens in one statement.
func (s *DB) DeleteUserAPITokens(ctx context.Context, accountID, userID string) ([]string, error) {
	rows, err := s.query(ctx, s.db, `DELETE FROM api_tokens WHERE account_id = ? AND user_id = ? RETURNING id`, accountID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
