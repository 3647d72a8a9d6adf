package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/deadbolt/deadbolt"
)

// CreateChallenge stores a new challenge under its token hash.
func (s *DB) CreateChallenge(ctx context.Context, c *deadbolt.Challenge) error {
	n := *c
	n.ID = newID()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.CreatedAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.ExpiresAt)
	res, err := s.exec(ctx, s.db, `INSERT INTO challenges (account_id, id, user_id, token_hash, purpose, attempts, device_id, sso_provider_id,
			ip, created_at, expires_at)
		SELECT ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.UserID, n.TokenHash, string(n.Purpose), n.DeviceID, n.SSOProviderID, n.IP, micros(n.CreatedAt), micros(n.ExpiresAt),
		n.AccountID, n.UserID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	if err := checkOne(res, deadbolt.ENotFound, "User"); err != nil {
		return err
	}
	n.Attempts = 0
	*c = n
	return nil
}

// FindChallengeByTokenHash finds a challenge by its token hash.
func (s *DB) FindChallengeByTokenHash(ctx context.Context, hash []byte) (*deadbolt.Challenge, error) {
	var c deadbolt.Challenge
	err := s.queryRow(ctx, s.db, `SELECT account_id, id, user_id, token_hash, purpose, attempts, device_id, sso_provider_id, ip, created_at,
			expires_at, used_at
		FROM challenges WHERE token_hash = ?`, hash).Scan(&c.AccountID, &c.ID, &c.UserID, &c.TokenHash, &c.Purpose, &c.Attempts,
		&c.DeviceID, &c.SSOProviderID, &c.IP, at(&c.CreatedAt), at(&c.ExpiresAt), at(&c.UsedAt))
	if err != nil {
		return nil, notFound(err, deadbolt.ENotFound, "Challenge")
	}
	return &c, nil
}

// FailChallenge counts a wrong code in one conditional statement: however
// many wrong codes race, the count stops at max.
func (s *DB) FailChallenge(ctx context.Context, accountID, id string, max int) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `UPDATE challenges SET attempts = attempts + 1
		WHERE account_id = ? AND id = ? AND used_at IS NULL AND attempts < ? RETURNING attempts`,
		accountID, id, max).Scan(&n)
	if err != nil {
		return 0, notFound(err, deadbolt.ENotFound, "Challenge")
	}
	return n, nil
}

// ConsumeChallenge marks the challenge used; only one caller can.
func (s *DB) ConsumeChallenge(ctx context.Context, accountID, id string, max int, now time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE challenges SET used_at = ?
		WHERE account_id = ? AND id = ? AND used_at IS NULL AND attempts < ? AND expires_at > ?`,
		micros(now), accountID, id, max, micros(now))
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Challenge")
}

// DeleteExpiredChallenges removes old challenges. This is housekeeping
// across all accounts, run by the service, not on anyone's behalf.
func (s *DB) DeleteExpiredChallenges(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM challenges WHERE expires_at < ?`, micros(now))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// CompleteChallenge writes a sign-in's completion in one transaction.
func (s *DB) CompleteChallenge(ctx context.Context, c *deadbolt.Completion) error {
	n := s.newSession(c.Session)
	var dev deadbolt.Device
	if c.Device != nil {
		dev = *c.Device
		s.normDevice(&dev)
		n.DeviceID = dev.ID
	}
	evs := make([]deadbolt.AuditEvent, len(c.Events))
	details := make([]string, len(c.Events))
	for i, e := range c.Events {
		evs[i] = *e
		var err error
		if details[i], err = s.normEvent(&evs[i]); err != nil {
			return err
		}
	}
	err := s.batched(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if c.TOTPFactorID != "" {
			used, err := s.useStep(ctx, tx, c.AccountID, c.TOTPFactorID, c.TOTPStep, c.Now)
			if err != nil {
				return err
			}
			if !used {
				return deadbolt.Errorf(deadbolt.EConflict, "This code was already used.")
			}
		}
		res, err := s.exec(ctx, tx, `UPDATE challenges SET used_at = ?
			WHERE account_id = ? AND id = ? AND used_at IS NULL AND attempts < ? AND expires_at > ?`,
			micros(c.Now), c.AccountID, c.ChallengeID, c.MaxAttempts, micros(c.Now))
		if err != nil {
			return err
		}
		if err := checkOne(res, deadbolt.ENotFound, "Challenge"); err != nil {
			return err
		}
		for _, key := range c.ResetCounters {
			if _, err := s.exec(ctx, tx, `DELETE FROM counters WHERE account_id = ? AND name = ?`, c.AccountID, key); err != nil {
				return err
			}
		}
		if c.Device != nil {
			if c.Device.ID == "" {
				err = s.insertDevice(ctx, tx, &dev)
			} else {
				err = s.updateDevice(ctx, tx, &dev)
			}
			if err != nil {
				return err
			}
		}
		if err := s.insertSession(ctx, tx, &n); err != nil {
			return err
		}
		for i := range evs {
			if err := s.insertEvent(ctx, tx, &evs[i], details[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*c.Session = n
	if c.Device != nil {
		*c.Device = dev
	}
	for i, e := range c.Events {
		*e = evs[i]
	}
	return nil
}

// ReturnChallengeAttempt gives back one attempt of a live challenge.
func (s *DB) ReturnChallengeAttempt(ctx context.Context, accountID, id string) error {
	res, err := s.exec(ctx, s.db, `UPDATE challenges SET attempts = attempts - 1
		WHERE account_id = ? AND id = ? AND used_at IS NULL AND attempts > 0`, accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Challenge")
}
