package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/deadbolt/deadbolt"
)

// HitCounter counts one more hit in one upsert, so concurrent hits from any
// number of processes are all counted and a window restarts exactly once.
func (s *DB) HitCounter(ctx context.Context, accountID, key string, window time.Duration, now time.Time) (deadbolt.Counter, error) {
	c := deadbolt.Counter{Key: key}
	err := s.queryRow(ctx, s.db, `INSERT INTO counters (account_id, name, count, reset_at, last_at) VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (account_id, name) DO UPDATE SET
			count = CASE WHEN counters.reset_at <= excluded.last_at THEN 1 ELSE counters.count + 1 END,
			reset_at = CASE WHEN counters.reset_at <= excluded.last_at THEN excluded.reset_at ELSE counters.reset_at END,
			last_at = excluded.last_at
		RETURNING count, reset_at, last_at`,
		accountID, key, micros(now.Add(window)), micros(now)).Scan(&c.Count, at(&c.ResetAt), at(&c.LastAt))
	return c, err
}

// PeekCounter reads a counter; an expired one counts zero.
func (s *DB) PeekCounter(ctx context.Context, accountID, key string, now time.Time) (deadbolt.Counter, error) {
	c := deadbolt.Counter{Key: key}
	err := s.queryRow(ctx, s.db, `SELECT count, reset_at, last_at FROM counters WHERE account_id = ? AND name = ? AND reset_at > ?`,
		accountID, key, micros(now)).Scan(&c.Count, at(&c.ResetAt), at(&c.LastAt))
	if errors.Is(err, sql.ErrNoRows) {
		return deadbolt.Counter{Key: key}, nil
	}
	return c, err
}

// ResetCounter removes a counter.
func (s *DB) ResetCounter(ctx context.Context, accountID, key string) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM counters WHERE account_id = ? AND name = ?`, accountID, key)
	return err
}

// ReserveAttempt counts an attempt only if the rule lets it through, in
// one upsert whose update is conditional: the database evaluates the rule
// on the row it has locked, so racing reservations are serialised and each
// sees the count the previous one left. A new key, or one past its window,
// always lets the attempt through and starts a window.
//
// The wait for a count n mirrors deadbolt.AttemptRule.Wait: none below
// Free, Base << (n − Free) up to PauseAt, then Pause.
func (s *DB) ReserveAttempt(ctx context.Context, accountID, key string, r deadbolt.AttemptRule, now time.Time) (deadbolt.Counter, bool, error) {
	c := deadbolt.Counter{Key: key}
	err := s.queryRow(ctx, s.db, `INSERT INTO counters (account_id, name, count, reset_at, last_at) VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (account_id, name) DO UPDATE SET
			count = CASE WHEN counters.reset_at <= excluded.last_at THEN 1 ELSE counters.count + 1 END,
			reset_at = CASE WHEN counters.reset_at <= excluded.last_at OR ? = 1 THEN excluded.reset_at ELSE counters.reset_at END,
			last_at = excluded.last_at
		WHERE counters.reset_at <= excluded.last_at
			OR counters.count < CAST(? AS INTEGER)
			OR counters.last_at + CASE WHEN counters.count >= CAST(? AS INTEGER) THEN CAST(? AS BIGINT)
				ELSE CAST(? AS BIGINT) * (CAST(1 AS BIGINT) << CAST(counters.count - ? AS INTEGER)) END <= excluded.last_at
		RETURNING count, reset_at, last_at`,
		accountID, key, micros(now.Add(r.Window)), micros(now), boolInt(r.Sliding),
		r.Free, r.PauseAt, r.Pause.Microseconds(), r.Base.Microseconds(), r.Free).Scan(&c.Count, at(&c.ResetAt), at(&c.LastAt))
	if err == nil {
		return c, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return c, false, err
	}
	// Refused: the row is as the other attempts left it.
	c, err = s.PeekCounter(ctx, accountID, key, now)
	return c, false, err
}

// ReleaseAttempt gives one attempt back.
func (s *DB) ReleaseAttempt(ctx context.Context, accountID, key string) error {
	_, err := s.exec(ctx, s.db, `UPDATE counters SET count = count - 1 WHERE account_id = ? AND name = ? AND count > 0`, accountID, key)
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
