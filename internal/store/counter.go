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

// reserveQuery counts an attempt if the rule lets it through; see
// ReserveAttempt.
const reserveQuery = `INSERT INTO counters (account_id, name, count, reset_at, last_at) VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (account_id, name) DO UPDATE SET
			count = CASE WHEN counters.reset_at <= excluded.last_at THEN 1 ELSE counters.count + 1 END,
			reset_at = CASE WHEN counters.reset_at <= excluded.last_at OR ? = 1 THEN excluded.reset_at ELSE counters.reset_at END,
			last_at = excluded.last_at
		WHERE counters.reset_at <= excluded.last_at
			OR counters.count < CAST(? AS INTEGER)
			OR counters.last_at + CASE WHEN counters.count >= CAST(? AS INTEGER) THEN CAST(? AS BIGINT)
				ELSE CAST(? AS BIGINT) * (CAST(1 AS BIGINT) << CAST(counters.count - ? AS INTEGER)) END <= excluded.last_at
		RETURNING count, reset_at, last_at`

func reserveArgs(accountID, key string, r deadbolt.AttemptRule, now time.Time) []any {
	return []any{accountID, key, micros(now.Add(r.Window)), micros(now), boolInt(r.Sliding),
		r.Free, r.PauseAt, r.Pause.Microseconds(), r.Base.Microseconds(), r.Free}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// errRefused rolls back a reservation that the rule refused.
var errRefused = errors.New("store: attempt refused")

// ReserveCodeAttempt takes a challenge attempt and the user's attempt in
// one transaction: one commit on the path of every code.
func (s *DB) ReserveCodeAttempt(ctx context.Context, accountID, challengeID string, max int, key string, r deadbolt.AttemptRule,
	now time.Time) (int, deadbolt.Counter, bool, error) {
	c := deadbolt.Counter{Key: key}
	var n int
	err := s.batched(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := s.queryRow(ctx, tx, `UPDATE challenges SET attempts = attempts + 1
			WHERE account_id = ? AND id = ? AND used_at IS NULL AND attempts < ? RETURNING attempts`,
			accountID, challengeID, max).Scan(&n)
		if err != nil {
			return notFound(err, deadbolt.ENotFound, "Challenge")
		}
		err = s.queryRow(ctx, tx, reserveQuery, reserveArgs(accountID, key, r, now)...).Scan(&c.Count, at(&c.ResetAt), at(&c.LastAt))
		if errors.Is(err, sql.ErrNoRows) {
			return errRefused
		}
		return err
	})
	switch {
	case err == nil:
		return n, c, true, nil
	case errors.Is(err, errRefused):
		c, err = s.PeekCounter(ctx, accountID, key, now)
		return 0, c, false, err
	}
	return 0, c, false, err
}

// ReserveAttempts counts an attempt under each limit only if its rule lets
// it through, each in one upsert whose update is conditional: the database
// evaluates the rule on the row it has locked, so racing reservations are
// serialised and each sees the count the previous one left. A new key, or
// one past its window, always lets the attempt through and starts a
// window. The wait for a count n mirrors deadbolt.AttemptRule.Wait: none
// below Free, Base << (n − Free) up to PauseAt, then Pause.
func (s *DB) ReserveAttempts(ctx context.Context, accountID string, now time.Time, limits ...deadbolt.AttemptLimit) ([]deadbolt.Counter, int, error) {
	counters := make([]deadbolt.Counter, len(limits))
	refused := -1
	err := s.batched(ctx, func(ctx context.Context, tx *sql.Tx) error {
		refused = -1 // a batch that failed runs this again
		for i, l := range limits {
			c := deadbolt.Counter{Key: l.Key}
			err := s.queryRow(ctx, tx, reserveQuery, reserveArgs(accountID, l.Key, l.Rule, now)...).Scan(&c.Count, at(&c.ResetAt), at(&c.LastAt))
			if errors.Is(err, sql.ErrNoRows) {
				refused = i
				return errRefused
			} else if err != nil {
				return err
			}
			counters[i] = c
		}
		return nil
	})
	if errors.Is(err, errRefused) {
		c, err := s.PeekCounter(ctx, accountID, limits[refused].Key, now)
		counters[refused] = c
		return counters[:refused+1], refused, err
	}
	if err != nil {
		return nil, -1, err
	}
	return counters, -1, nil
}

// SettleAttempts resets and releases counters in one transaction.
func (s *DB) SettleAttempts(ctx context.Context, accountID string, reset, release []string) error {
	if len(reset)+len(release) == 0 {
		return nil
	}
	return s.batched(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, key := range reset {
			if _, err := s.exec(ctx, tx, `DELETE FROM counters WHERE account_id = ? AND name = ?`, accountID, key); err != nil {
				return err
			}
		}
		for _, key := range release {
			if _, err := s.exec(ctx, tx, `UPDATE counters SET count = count - 1 WHERE account_id = ? AND name = ? AND count > 0`, accountID, key); err != nil {
				return err
			}
		}
		return nil
	})
}
