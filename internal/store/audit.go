package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/deadbolt/deadbolt"
)

// RecordEvent appends an event to the account's audit log.
func (s *DB) RecordEvent(ctx context.Context, e *deadbolt.AuditEvent) error {
	n := *e
	details, err := s.normEvent(&n)
	if err != nil {
		return err
	}
	if err := s.insertEvent(ctx, s.db, &n, details); err != nil {
		return err
	}
	*e = n
	return nil
}

// normEvent gives an event its time, as stored, and encodes its details.
func (s *DB) normEvent(e *deadbolt.AuditEvent) (details string, err error) {
	if e.Time.IsZero() {
		e.Time = s.clock()
	}
	e.Time = normTime(e.Time)
	if len(e.Details) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(e.Details)
	if err != nil {
		return "", fmt.Errorf("store: encode audit details: %w", err)
	}
	return string(b), nil
}

// insertEvent appends an event and fills in its id.
func (s *DB) insertEvent(ctx context.Context, q querier, e *deadbolt.AuditEvent, details string) error {
	var id int64
	err := s.queryRow(ctx, q, `INSERT INTO audit_events (account_id, time, type, actor_id, subject_id, ip, user_agent, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.AccountID, micros(e.Time), e.Type, e.ActorID, e.SubjectID, e.IP, e.UserAgent, details).Scan(&id)
	if err != nil {
		return err
	}
	e.ID = strconv.FormatInt(id, 10)
	return nil
}

// FindEvents returns the account's events matching f, newest first.
func (s *DB) FindEvents(ctx context.Context, accountID string, f deadbolt.AuditFilter) ([]*deadbolt.AuditEvent, error) {
	q := `SELECT id, account_id, time, type, actor_id, subject_id, ip, user_agent, details FROM audit_events WHERE account_id = ?`
	args := []any{accountID}
	if f.Type != "" {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	if f.UserID != "" {
		q += ` AND (actor_id = ? OR subject_id = ?)`
		args = append(args, f.UserID, f.UserID)
	}
	if !f.Since.IsZero() {
		q += ` AND time >= ?`
		args = append(args, micros(f.Since))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = deadbolt.DefaultAuditLimit
	}
	limit = min(limit, deadbolt.MaxAuditLimit)
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.query(ctx, s.db, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []*deadbolt.AuditEvent
	for rows.Next() {
		var e deadbolt.AuditEvent
		var id int64
		var details string
		if err := rows.Scan(&id, &e.AccountID, at(&e.Time), &e.Type, &e.ActorID, &e.SubjectID, &e.IP, &e.UserAgent, &details); err != nil {
			return nil, err
		}
		e.ID = strconv.FormatInt(id, 10)
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return nil, fmt.Errorf("store: decode audit details of event %d: %w", id, err)
		}
		events = append(events, &e)
	}
	return events, rows.Err()
}

var _ deadbolt.Store = (*DB)(nil)
