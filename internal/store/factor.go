package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/deadbolt/deadbolt"
)

// CreateFactor stores a new pending factor with its secret sealed.
func (s *DB) CreateFactor(ctx context.Context, f *deadbolt.Factor) error {
	nf := *f
	nf.ID, nf.Status, nf.Default = newID(), deadbolt.FactorPending, false
	nf.CreatedAt = s.clock()
	var secret any
	if len(nf.Secret) > 0 {
		b, err := s.sealer.Seal(nf.Secret, aad("factors.secret", nf.AccountID, nf.ID))
		if err != nil {
			return fmt.Errorf("store: seal: %w", err)
		}
		secret = b
	}
	phone, err := s.sealString(nf.Phone, aad("factors.phone", nf.AccountID, nf.ID))
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, nf.AccountID, nf.UserID); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO factors (account_id, id, user_id, kind, status, is_default, secret, phone, name, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			nf.AccountID, nf.ID, nf.UserID, string(nf.Kind), string(nf.Status), false, secret, phone, nf.Name, micros(nf.CreatedAt))
		return err
	})
	if err != nil {
		return err
	}
	*f = nf
	return nil
}

const factorColumns = `account_id, id, user_id, kind, status, is_default, secret, phone, created_at, activated_at, last_used_at,
	name, credential_id, credential, sign_count`

func (s *DB) scanFactor(row interface{ Scan(...any) error }) (*deadbolt.Factor, error) {
	var f deadbolt.Factor
	var secret, phone, credential []byte
	var signCount int64
	if err := row.Scan(&f.AccountID, &f.ID, &f.UserID, &f.Kind, &f.Status, &f.Default, &secret, &phone,
		at(&f.CreatedAt), at(&f.ActivatedAt), at(&f.LastUsedAt), &f.Name, &f.CredentialID, &credential, &signCount); err != nil {
		return nil, err
	}
	f.SignCount = uint32(signCount)
	if credential != nil {
		b, err := s.sealer.Open(credential, aad("factors.credential", f.AccountID, f.ID))
		if err != nil {
			return nil, fmt.Errorf("store: open credential of factor %s: %w", f.ID, err)
		}
		f.Credential = b
	}
	if secret != nil {
		b, err := s.sealer.Open(secret, aad("factors.secret", f.AccountID, f.ID))
		if err != nil {
			return nil, fmt.Errorf("store: open secret of factor %s: %w", f.ID, err)
		}
		f.Secret = b
	}
	var err error
	if f.Phone, err = s.openString(phone, aad("factors.phone", f.AccountID, f.ID)); err != nil {
		return nil, err
	}
	return &f, nil
}

// FindFactor returns a factor of the account.
func (s *DB) FindFactor(ctx context.Context, accountID, id string) (*deadbolt.Factor, error) {
	f, err := s.scanFactor(s.queryRow(ctx, s.db, `SELECT `+factorColumns+` FROM factors WHERE account_id = ? AND id = ?`, accountID, id))
	return f, notFound(err, deadbolt.ENotFound, "Factor")
}

// FindFactors lists a user's factors, oldest first.
func (s *DB) FindFactors(ctx context.Context, accountID, userID string) ([]*deadbolt.Factor, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+factorColumns+` FROM factors WHERE account_id = ? AND user_id = ? ORDER BY created_at, id`, accountID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var fs []*deadbolt.Factor
	for rows.Next() {
		f, err := s.scanFactor(rows)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, rows.Err()
}

// ActivateFactor turns a pending factor active. The conditional update on
// status makes two racing confirmations activate it once.
func (s *DB) ActivateFactor(ctx context.Context, accountID, id string, now time.Time) (bool, error) {
	var first bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		first, err = s.activate(ctx, tx, accountID, id, now)
		return err
	})
	return first, err
}

// ActivateWebAuthnFactor stores the credential of a pending WebAuthn
// factor and activates it, in one transaction. EConflict if the
// credential is another factor's of the account.
func (s *DB) ActivateWebAuthnFactor(ctx context.Context, accountID, id string, credentialID, credential []byte, signCount uint32,
	now time.Time) (bool, error) {
	sealed, err := s.sealer.Seal(credential, aad("factors.credential", accountID, id))
	if err != nil {
		return false, fmt.Errorf("store: seal: %w", err)
	}
	var first bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE factors SET credential_id = ?, credential = ?, sign_count = ?
			WHERE account_id = ? AND id = ? AND status = 'pending' AND kind = 'webauthn'`,
			credentialID, sealed, int64(signCount), accountID, id)
		if err != nil {
			return s.dialect.conflict(err, "This passkey is registered already.")
		}
		if err := checkOne(res, deadbolt.ENotFound, "Pending factor"); err != nil {
			return err
		}
		first, err = s.activate(ctx, tx, accountID, id, now)
		return err
	})
	return first, err
}

// FindFactorByCredentialID returns the active WebAuthn factor of the
// account with the credential id.
func (s *DB) FindFactorByCredentialID(ctx context.Context, accountID string, credentialID []byte) (*deadbolt.Factor, error) {
	f, err := s.scanFactor(s.queryRow(ctx, s.db, `SELECT `+factorColumns+` FROM factors
		WHERE account_id = ? AND credential_id = ? AND status = 'active'`, accountID, credentialID))
	return f, notFound(err, deadbolt.ENotFound, "Passkey")
}

// UseWebAuthnSignature records a signature the factor made: its count must
// be above the stored one (or both zero: authenticators that keep no
// counter), in one statement, so of two uses of one signature one wins
// and a cloned authenticator's older count is refused (EConflict).
func (s *DB) UseWebAuthnSignature(ctx context.Context, accountID, factorID string, signCount uint32, credential []byte, now time.Time) error {
	sealed, err := s.sealer.Seal(credential, aad("factors.credential", accountID, factorID))
	if err != nil {
		return fmt.Errorf("store: seal: %w", err)
	}
	n := int64(signCount)
	res, err := s.exec(ctx, s.db, `UPDATE factors SET sign_count = ?, credential = ?, last_used_at = ?
		WHERE account_id = ? AND id = ? AND status = 'active' AND kind = 'webauthn' AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`,
		n, sealed, micros(now), accountID, factorID, n, n)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return deadbolt.Errorf(deadbolt.EConflict, "This passkey's signature counter did not move on: it may have been copied.")
	}
	return nil
}

// activate turns a pending factor active in tx (see ActivateFactor).
func (s *DB) activate(ctx context.Context, tx *sql.Tx, accountID, id string, now time.Time) (bool, error) {
	var first bool
	err := func() error {
		var userID string
		err := s.queryRow(ctx, tx, `UPDATE factors SET status = 'active', activated_at = ?
			WHERE account_id = ? AND id = ? AND status = 'pending' RETURNING user_id`, micros(now), accountID, id).Scan(&userID)
		if err != nil {
			return notFound(err, deadbolt.ENotFound, "Pending factor")
		}
		// The first active factor becomes the default, unless one is set.
		if _, err := s.exec(ctx, tx, `UPDATE factors SET is_default = TRUE WHERE account_id = ? AND id = ?
			AND NOT EXISTS (SELECT 1 FROM factors WHERE account_id = ? AND user_id = ? AND is_default)`,
			accountID, id, accountID, userID); err != nil {
			return err
		}
		var n int
		if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM factors WHERE account_id = ? AND user_id = ? AND status = 'active'`,
			accountID, userID).Scan(&n); err != nil {
			return err
		}
		first = n == 1
		return nil
	}()
	return first, err
}

// SetDefaultFactor makes an active factor the user's default.
func (s *DB) SetDefaultFactor(ctx context.Context, accountID, userID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := s.queryRow(ctx, tx, `SELECT 1 FROM factors WHERE account_id = ? AND user_id = ? AND id = ? AND status = 'active'`,
			accountID, userID, id).Scan(&one); err != nil {
			return notFound(err, deadbolt.ENotFound, "Active factor")
		}
		if _, err := s.exec(ctx, tx, `UPDATE factors SET is_default = FALSE WHERE account_id = ? AND user_id = ? AND is_default`,
			accountID, userID); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `UPDATE factors SET is_default = TRUE WHERE account_id = ? AND id = ?`, accountID, id)
		return err
	})
}

// DeleteFactor removes a factor; the oldest remaining active factor becomes
// the default if the removed one was.
func (s *DB) DeleteFactor(ctx context.Context, accountID, userID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM factors WHERE account_id = ? AND user_id = ? AND id = ?`, accountID, userID, id)
		if err != nil {
			return err
		}
		if err := checkOne(res, deadbolt.ENotFound, "Factor"); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `UPDATE factors SET is_default = TRUE WHERE account_id = ? AND id = (
				SELECT id FROM factors WHERE account_id = ? AND user_id = ? AND status = 'active' ORDER BY activated_at, id LIMIT 1)
			AND NOT EXISTS (SELECT 1 FROM factors WHERE account_id = ? AND user_id = ? AND is_default)`,
			accountID, accountID, userID, accountID, userID)
		return err
	})
}

// DeleteFactors removes all of a user's factors and recovery codes.
func (s *DB) DeleteFactors(ctx context.Context, accountID, userID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM factors WHERE account_id = ? AND user_id = ?`, accountID, userID); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `DELETE FROM recovery_codes WHERE account_id = ? AND user_id = ?`, accountID, userID)
		return err
	})
}

// MarkFactorUsed records the factor's latest use.
func (s *DB) MarkFactorUsed(ctx context.Context, accountID, id string, now time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE factors SET last_used_at = ? WHERE account_id = ? AND id = ?`, micros(now), accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Factor")
}

// useStep is the conditional update of UseTOTPStep; it reports whether the
// step was recorded.
func (s *DB) useStep(ctx context.Context, q querier, accountID, factorID string, step int64, now time.Time) (bool, error) {
	res, err := s.exec(ctx, q, `UPDATE factors SET last_step = ?, last_used_at = ?
		WHERE account_id = ? AND id = ? AND (last_step IS NULL OR last_step < ?)`,
		step, micros(now), accountID, factorID, step)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UseTOTPStep records the accepted time step. The conditional update is the
// replay protection: it succeeds only if no step at or after this one was
// accepted before, so a code works once, and an older code cannot follow a
// newer one (RFC 6238 section 5.2), whichever process sees it.
func (s *DB) UseTOTPStep(ctx context.Context, accountID, factorID string, step int64, now time.Time) error {
	used, err := s.useStep(ctx, s.db, accountID, factorID, step, now)
	if err != nil || used {
		return err
	}
	// Nothing changed: either no such factor, or a replay.
	var one int
	if err := s.queryRow(ctx, s.db, `SELECT 1 FROM factors WHERE account_id = ? AND id = ?`, accountID, factorID).Scan(&one); err != nil {
		return notFound(err, deadbolt.ENotFound, "Factor")
	}
	return deadbolt.Errorf(deadbolt.EConflict, "This code was already used.")
}
