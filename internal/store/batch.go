package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// Group commit. The writes on the path of every sign-in (reserving an
// attempt, completing a challenge, settling counters) are each one small
// transaction, and a transaction costs its commit: on SQLite the one
// writer's turn and a WAL append, on PostgreSQL a WAL flush. Writers that
// arrive while a commit is in flight wait for the committer and are then
// committed together, in one transaction, each in its own savepoint: a
// unit that fails (a replayed TOTP step, a dead challenge, a refused
// attempt) rolls back only its own work and gets its own error, exactly as
// if it had run alone. A writer that arrives when none is in flight is
// committed at once: no added latency when the service is idle.
//
// Only SQLite batches (see Options.Committers): its one writer holds the
// whole database, so batches cannot deadlock, and a commit there is what
// every write waits for.

// maxBatch bounds the units of one transaction, so that none waits for an
// unbounded batch, and a transaction's locks are held briefly.
const maxBatch = 64

// unit is one writer's transaction, waiting for a committer.
type unit struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

// committer runs batches of units on the write pool.
type committer struct {
	s     *DB
	queue chan *unit
	wg    sync.WaitGroup
	// batches and units count what was committed together, for
	// GroupCommitStats.
	batches, units atomic.Int64
}

// GroupCommitStats says how many transactions the group committers ran
// and how many writers' units they held: units/batches is the mean batch.
func (s *DB) GroupCommitStats() (batches, units int64) {
	if s.commits == nil {
		return 0, 0
	}
	return s.commits.batches.Load(), s.commits.units.Load()
}

// newCommitter starts workers committers; each commits one batch at a time.
func newCommitter(s *DB, workers int) *committer {
	c := &committer{s: s, queue: make(chan *unit, maxBatch*workers)}
	for range workers {
		c.wg.Add(1)
		go c.run()
	}
	return c
}

// close stops the committers once the queued units are committed.
func (c *committer) close() {
	close(c.queue)
	c.wg.Wait()
}

func (c *committer) run() {
	defer c.wg.Done()
	for first := range c.queue {
		batch := []*unit{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case u, ok := <-c.queue:
				if !ok {
					break fill
				}
				batch = append(batch, u)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

// commit runs a batch in one transaction. If the transaction as a whole
// fails (begin, a savepoint that cannot be rolled back to, the commit),
// nothing of it was written, and each unit runs again alone, to get its
// own answer.
func (c *committer) commit(batch []*unit) {
	live := batch[:0]
	for _, u := range batch {
		if err := u.ctx.Err(); err != nil {
			u.done <- err // gone before its turn: nothing was done
			continue
		}
		live = append(live, u)
	}
	if len(live) == 0 {
		return
	}
	c.batches.Add(1)
	c.units.Add(int64(len(live)))
	if len(live) == 1 {
		u := live[0]
		u.done <- c.s.inTx(u.ctx, func(tx *sql.Tx) error { return u.fn(context.WithoutCancel(u.ctx), tx) })
		return
	}
	errs, ok := c.together(live)
	for i, u := range live {
		if !ok {
			errs[i] = c.s.inTx(u.ctx, func(tx *sql.Tx) error { return u.fn(context.WithoutCancel(u.ctx), tx) })
		}
		u.done <- errs[i]
	}
}

// together runs the units in one transaction, a savepoint each. ok is
// false when the transaction did not commit.
func (c *committer) together(units []*unit) (errs []error, ok bool) {
	ctx := context.Background()
	tx, err := c.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, false
	}
	defer tx.Rollback()
	errs = make([]error, len(units))
	for i, u := range units {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT unit"); err != nil {
			return nil, false
		}
		// The unit's statements run without its cancellation: on SQLite an
		// interrupted statement can roll back the whole transaction, and
		// with it the other units' work.
		if errs[i] = u.fn(context.WithoutCancel(u.ctx), tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT unit"); err != nil {
				return nil, false
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT unit"); err != nil {
			return nil, false
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, false
	}
	c.s.prepareNoted(ctx)
	return errs, true
}

// batched runs fn as one transaction of its own, committed together with
// other writers' when they arrive at once (see above). fn must only write
// through tx and must not keep results it computed unless batched returns
// nil: a batch that fails runs it again.
func (s *DB) batched(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.commits == nil {
		return s.inTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
	u := &unit{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.commits.queue <- u:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the unit may be committed: wait for its answer even if
	// the caller goes away, so that what it reports is what happened.
	return <-u.done
}
