package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/deadbolt/deadbolt"
)

// ClaimMessages leases due messages. Candidates are read first, then each
// is claimed by a conditional update on its lease, so two workers (in one
// process or many) never hold the same message: the loser's update changes
// no row and it moves on.
func (s *DB) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, n int) ([]*deadbolt.Message, error) {
	// Messages whose content is no longer worth sending die first.
	if _, err := s.exec(ctx, s.db, `UPDATE messages SET status = 'expired', content = NULL
		WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= ? AND (lease_until IS NULL OR lease_until <= ?)`,
		micros(now), micros(now)); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.db, `SELECT account_id, id FROM messages
		WHERE status = 'queued' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
		ORDER BY next_attempt_at, created_at LIMIT ?`, micros(now), micros(now), n)
	if err != nil {
		return nil, err
	}
	type key struct{ account, id string }
	var keys []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.account, &k.id); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []*deadbolt.Message
	for _, k := range keys {
		token := newID()
		m := deadbolt.Message{AccountID: k.account, ID: k.id, LeaseToken: token}
		var recipient, content []byte
		err := s.queryRow(ctx, s.db, `UPDATE messages SET lease_token = ?, lease_until = ?, attempts = attempts + 1
			WHERE account_id = ? AND id = ? AND status = 'queued' AND (lease_until IS NULL OR lease_until <= ?)
			RETURNING user_id, channel, recipient, content, passcode_id, attempts, last_error, expires_at, next_attempt_at, created_at`,
			token, micros(now.Add(lease)), k.account, k.id, micros(now)).Scan(&m.UserID, &m.Channel, &recipient, &content,
			&m.PasscodeID, &m.Attempts, &m.LastError, at(&m.ExpiresAt), at(&m.NextAttemptAt), at(&m.CreatedAt))
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				continue // another worker claimed it first
			}
			return out, err
		}
		m.Status = deadbolt.MessageQueued
		if err := s.openMessage(&m, recipient, content); err != nil {
			return out, err
		}
		out = append(out, &m)
	}
	return out, nil
}

// MarkMessageSent records a delivery; the content, with its code, goes.
func (s *DB) MarkMessageSent(ctx context.Context, m *deadbolt.Message, now time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE messages SET status = 'sent', sent_at = ?, content = NULL, lease_until = NULL, last_error = ''
		WHERE account_id = ? AND id = ? AND lease_token = ? AND status = 'queued'`, micros(now), m.AccountID, m.ID, m.LeaseToken)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Leased message")
}

// RetryMessage records a failed attempt.
func (s *DB) RetryMessage(ctx context.Context, m *deadbolt.Message, errText string, next time.Time, final bool) error {
	q := `UPDATE messages SET last_error = ?, next_attempt_at = ?, lease_until = NULL WHERE account_id = ? AND id = ? AND lease_token = ? AND status = 'queued'`
	if final {
		q = `UPDATE messages SET last_error = ?, next_attempt_at = ?, lease_until = NULL, status = 'failed', content = NULL
			WHERE account_id = ? AND id = ? AND lease_token = ? AND status = 'queued'`
	}
	if len(errText) > 500 {
		errText = errText[:500]
	}
	res, err := s.exec(ctx, s.db, q, errText, micros(next), m.AccountID, m.ID, m.LeaseToken)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Leased message")
}

// MessageStats counts the queue and recent failures.
func (s *DB) MessageStats(ctx context.Context, since time.Time) (deadbolt.MessageStats, error) {
	var st deadbolt.MessageStats
	var oldest *int64
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*), MIN(created_at) FROM messages WHERE status = 'queued'`).Scan(&st.Queued, &oldest); err != nil {
		return st, err
	}
	if oldest != nil {
		st.OldestQueued = time.UnixMicro(*oldest).UTC()
	}
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM messages WHERE status = 'failed' AND next_attempt_at >= ?`, micros(since)).Scan(&st.Failed)
	return st, err
}
