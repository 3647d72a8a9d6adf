package store

import (
	"context"
	"database/sql"
)

// MoveOIDCSession rebinds a session's OpenID Connect logins and tokens to
// the session that replaces it, in one transaction.
func (s *DB) MoveOIDCSession(ctx context.Context, accountID, from, to string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE oidc_logins SET session_id = ? WHERE account_id = ? AND session_id = ?`, to, accountID, from); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `UPDATE oidc_tokens SET session_id = ? WHERE account_id = ? AND session_id = ?`, to, accountID, from)
		return err
	})
}
