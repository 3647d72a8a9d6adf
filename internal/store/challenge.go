package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
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
	res, err := s.exec(ctx, s.db, `INSERT INTO challenges (account_id, id, user_id, token_hash, purpose, attempts, device_id, ip, created_at, expires_at)
		SELECT ?, ?, ?, ?, ?, 0, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.UserID, n.TokenHash, string(n.Purpose), n.DeviceID, n.IP, micros(n.CreatedAt), micros(n.ExpiresAt),
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
	err := s.queryRow(ctx, s.db, `SELECT account_id, id, user_id, token_hash, purpose, attempts, device_id, ip, created_at, expires_at, used_at
		FROM challenges WHERE token_hash = ?`, hash).Scan(&c.AccountID, &c.ID, &c.UserID, &c.TokenHash, &c.Purpose, &c.Attempts,
		&c.DeviceID, &c.IP, at(&c.CreatedAt), at(&c.ExpiresAt), at(&c.UsedAt))
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
	n := *c.Session
	n.ID = newID()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	if n.LastSeenAt.IsZero() {
		n.LastSeenAt = n.CreatedAt
	}
	n.CreatedAt, n.LastSeenAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.LastSeenAt), normTime(n.ExpiresAt)
	n.SecondFactorAt, n.PasswordAt = normTime(n.SecondFactorAt), normTime(n.PasswordAt)
	var dev deadbolt.Device
	if c.Device != nil {
		dev = *c.Device
		if dev.ID == "" {
			dev.ID = newID()
			if dev.CreatedAt.IsZero() {
				dev.CreatedAt = s.clock()
			}
			if dev.LastSeenAt.IsZero() {
				dev.LastSeenAt = dev.CreatedAt
			}
		}
		dev.CreatedAt, dev.LastSeenAt = normTime(dev.CreatedAt), normTime(dev.LastSeenAt)
		dev.RememberedAt, dev.RememberUntil = normTime(dev.RememberedAt), normTime(dev.RememberUntil)
		n.DeviceID = dev.ID
	}
	evs := make([]deadbolt.AuditEvent, len(c.Events))
	details := make([]string, len(c.Events))
	for i, e := range c.Events {
		evs[i] = *e
		if evs[i].Time.IsZero() {
			evs[i].Time = s.clock()
		}
		evs[i].Time = normTime(evs[i].Time)
		details[i] = "{}"
		if len(evs[i].Details) > 0 {
			b, err := json.Marshal(evs[i].Details)
			if err != nil {
				return err
			}
			details[i] = string(b)
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if c.TOTPFactorID != "" {
			res, err := s.exec(ctx, tx, `UPDATE factors SET last_step = ?, last_used_at = ?
				WHERE account_id = ? AND id = ? AND (last_step IS NULL OR last_step < ?)`,
				c.TOTPStep, micros(c.Now), c.AccountID, c.TOTPFactorID, c.TOTPStep)
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err != nil {
				return err
			} else if k == 0 {
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
		if c.Device != nil {
			if c.Device.ID == "" {
				_, err = s.exec(ctx, tx, `INSERT INTO devices (account_id, id, user_id, token_hash, name, ip, remembered_at, remember_until, created_at, last_seen_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					dev.AccountID, dev.ID, dev.UserID, dev.TokenHash, dev.Name, dev.IP, micros(dev.RememberedAt), micros(dev.RememberUntil),
					micros(dev.CreatedAt), micros(dev.LastSeenAt))
			} else {
				_, err = s.exec(ctx, tx, `UPDATE devices SET token_hash = ?, ip = ?, remembered_at = ?, remember_until = ?, last_seen_at = ?
					WHERE account_id = ? AND user_id = ? AND id = ?`,
					dev.TokenHash, dev.IP, micros(dev.RememberedAt), micros(dev.RememberUntil), micros(dev.LastSeenAt), dev.AccountID, dev.UserID, dev.ID)
			}
			if err != nil {
				return s.dialect.formatError(err)
			}
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO sessions (account_id, id, user_id, token_hash, idle_seconds, expires_at,
			second_factor_at, password_at, device_id, ip, user_agent, created_at, last_seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			n.AccountID, n.ID, n.UserID, n.TokenHash, int64(n.IdleTimeout/time.Second), micros(n.ExpiresAt),
			micros(n.SecondFactorAt), micros(n.PasswordAt), n.DeviceID, n.IP, n.UserAgent, micros(n.CreatedAt), micros(n.LastSeenAt)); err != nil {
			return s.dialect.formatError(err)
		}
		for i := range evs {
			var id int64
			if err := s.queryRow(ctx, tx, `INSERT INTO audit_events (account_id, time, type, actor_id, subject_id, ip, details)
				VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, evs[i].AccountID, micros(evs[i].Time), evs[i].Type, evs[i].ActorID,
				evs[i].SubjectID, evs[i].IP, details[i]).Scan(&id); err != nil {
				return err
			}
			evs[i].ID = strconv.FormatInt(id, 10)
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
