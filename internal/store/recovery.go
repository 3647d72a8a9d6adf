package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/deadbolt/deadbolt"
)

// ReplaceRecoveryCodes stores the user's new set; the old set dies in the
// same transaction, so there is never a moment with both or neither.
func (s *DB) ReplaceRecoveryCodes(ctx context.Context, accountID, userID string, hashes [][]byte, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, accountID, userID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM recovery_codes WHERE account_id = ? AND user_id = ? AND created_by IS NULL`,
			accountID, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := s.exec(ctx, tx, `INSERT INTO recovery_codes (account_id, id, user_id, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
				accountID, newID(), userID, h, micros(now)); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateAdminRecoveryCode stores one admin-generated code.
func (s *DB) CreateAdminRecoveryCode(ctx context.Context, c *deadbolt.RecoveryCode) error {
	if c.CreatedBy == "" || c.ExpiresAt.IsZero() {
		return deadbolt.Invalid("recovery_code", "An admin recovery code needs its creator and an expiry.")
	}
	nc := *c
	nc.ID, nc.CreatedAt = newID(), s.clock()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, nc.AccountID, nc.UserID); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO recovery_codes (account_id, id, user_id, hash, created_by, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			nc.AccountID, nc.ID, nc.UserID, nc.Hash, nc.CreatedBy, micros(nc.ExpiresAt), micros(nc.CreatedAt))
		return err
	})
	if err != nil {
		return err
	}
	*c = nc
	return nil
}

// ConsumeRecoveryCode marks the code used in one conditional statement:
// of any number of racing callers, exactly one sees the row.
func (s *DB) ConsumeRecoveryCode(ctx context.Context, accountID, userID string, hash []byte, now time.Time) (*deadbolt.RecoveryCode, error) {
	c := deadbolt.RecoveryCode{AccountID: accountID, UserID: userID, Hash: hash, UsedAt: now.UTC().Truncate(time.Microsecond)}
	var createdBy sql.NullString
	err := s.queryRow(ctx, s.db, `UPDATE recovery_codes SET used_at = ?
		WHERE account_id = ? AND user_id = ? AND hash = ? AND used_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
		RETURNING id, created_by, expires_at, created_at`,
		micros(now), accountID, userID, hash, micros(now)).Scan(&c.ID, &createdBy, at(&c.ExpiresAt), at(&c.CreatedAt))
	if err != nil {
		return nil, notFound(err, deadbolt.ENotFound, "Recovery code")
	}
	c.CreatedBy = createdBy.String
	return &c, nil
}

// CountRecoveryCodes counts the unused codes of the user's own set.
func (s *DB) CountRecoveryCodes(ctx context.Context, accountID, userID string) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM recovery_codes WHERE account_id = ? AND user_id = ? AND created_by IS NULL AND used_at IS NULL`,
		accountID, userID).Scan(&n)
	return n, err
}
