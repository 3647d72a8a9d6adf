package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/deadbolt/deadbolt"
)

// CreateWebAuthnCeremony stores a ceremony, its session data sealed; it
// replaces one of the same token hash (the same scope), live or dead.
func (s *DB) CreateWebAuthnCeremony(ctx context.Context, c *deadbolt.WebAuthnCeremony) error {
	n := *c
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.CreatedAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.ExpiresAt)
	sealed, err := s.sealer.Seal(n.Session, aad("webauthn_ceremonies.session", n.AccountID, string(n.TokenHash)))
	if err != nil {
		return fmt.Errorf("store: seal: %w", err)
	}
	var user any
	if n.UserID != "" {
		user = n.UserID
	}
	if _, err := s.exec(ctx, s.db, `DELETE FROM webauthn_ceremonies WHERE token_hash = ?`, n.TokenHash); err != nil {
		return err
	}
	res, err := s.exec(ctx, s.db, `INSERT INTO webauthn_ceremonies (account_id, token_hash, purpose, user_id, factor_id, challenge_id,
			session, created_at, expires_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)`,
		n.AccountID, n.TokenHash, string(n.Purpose), user, n.FactorID, n.ChallengeID, sealed, micros(n.CreatedAt), micros(n.ExpiresAt),
		n.AccountID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	if err := checkOne(res, deadbolt.EAccountNotFound, "Account"); err != nil {
		return err
	}
	*c = n
	return nil
}

// ConsumeWebAuthnCeremony returns the live ceremony with the token hash
// and deletes it in one statement: a ceremony answers once. ENotFound if
// unknown, expired or used.
func (s *DB) ConsumeWebAuthnCeremony(ctx context.Context, tokenHash []byte, now time.Time) (*deadbolt.WebAuthnCeremony, error) {
	var c deadbolt.WebAuthnCeremony
	var user sql.NullString
	var sealed []byte
	err := s.queryRow(ctx, s.db, `DELETE FROM webauthn_ceremonies WHERE token_hash = ? AND expires_at > ?
		RETURNING account_id, token_hash, purpose, user_id, factor_id, challenge_id, session, created_at, expires_at`,
		tokenHash, micros(now)).Scan(&c.AccountID, &c.TokenHash, &c.Purpose, &user, &c.FactorID, &c.ChallengeID, &sealed,
		at(&c.CreatedAt), at(&c.ExpiresAt))
	if err != nil {
		return nil, notFound(err, deadbolt.ENotFound, "Passkey request")
	}
	c.UserID = user.String
	ad := aad("webauthn_ceremonies.session", c.AccountID, string(c.TokenHash))
	if c.Session, err = s.sealer.Open(sealed, ad); err != nil {
		return nil, fmt.Errorf("store: open sealed %s: %w", ad, err)
	}
	return &c, nil
}

// DeleteExpiredWebAuthnCeremonies removes ceremonies nobody answered.
func (s *DB) DeleteExpiredWebAuthnCeremonies(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM webauthn_ceremonies WHERE expires_at <= ?`, micros(now))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
