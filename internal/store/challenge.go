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

// CompleteChallenge consumes the challenge, creates the session and records
// the events in one transaction: one commit instead of three on the path
// every sign-in takes.
func (s *DB) CompleteChallenge(ctx context.Context, accountID, challengeID string, max int, now time.Time, ss *deadbolt.Session, events []*deadbolt.AuditEvent) error {
	n := *ss
	n.ID = newID()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	if n.LastSeenAt.IsZero() {
		n.LastSeenAt = n.CreatedAt
	}
	n.CreatedAt, n.LastSeenAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.LastSeenAt), normTime(n.ExpiresAt)
	n.SecondFactorAt, n.PasswordAt = normTime(n.SecondFactorAt), normTime(n.PasswordAt)
	evs := make([]deadbolt.AuditEvent, len(events))
	details := make([]string, len(events))
	for i, e := range events {
		evs[i] = *e
		if evs[i].Time.IsZero() {
			evs[i].Time = s.clock()
		}
		evs[i].Time = normTime(evs[i].Time)
		b, err := json.Marshal(evs[i].Details)
		if err != nil {
			return err
		}
		details[i] = string(b)
		if len(evs[i].Details) == 0 {
			details[i] = "{}"
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE challenges SET used_at = ?
			WHERE account_id = ? AND id = ? AND used_at IS NULL AND attempts < ? AND expires_at > ?`,
			micros(now), accountID, challengeID, max, micros(now))
		if err != nil {
			return err
		}
		if err := checkOne(res, deadbolt.ENotFound, "Challenge"); err != nil {
			return err
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
	*ss = n
	for i, e := range events {
		*e = evs[i]
	}
	return nil
}
