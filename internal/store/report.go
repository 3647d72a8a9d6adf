package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
)

// adminActions are the audit event types that count as an admin's action
// on a user in the 2FA report.
var adminActions = []string{deadbolt.AuditUserCreated, deadbolt.AuditUserUpdated, deadbolt.AuditTwoFactorReset,
	deadbolt.AuditAdminRecoveryCreated}

// StreamUserSummaries reads every user with their 2FA state in one query:
// the factors, codes, devices and audit events are aggregated per user in
// subqueries and joined, so an account of 100,000 users costs one scan of
// each table, not 100,000 lookups.
func (s *DB) StreamUserSummaries(ctx context.Context, accountID string, f deadbolt.SummaryFilter, now time.Time, fn func(*deadbolt.UserSummary) error) error {
	q := `SELECT ` + prefixed("u.", userColumns) + `, f.kinds, f.default_kind, f.last_used, rc.n, d.n, a.last
		FROM users u
		LEFT JOIN (SELECT user_id, ` + s.dialect.groupConcat("kind") + ` AS kinds,
				MAX(CASE WHEN is_default THEN kind END) AS default_kind, MAX(last_used_at) AS last_used
			FROM factors WHERE account_id = ? AND status = 'active' GROUP BY user_id) f ON f.user_id = u.id
		LEFT JOIN (SELECT user_id, COUNT(*) AS n FROM recovery_codes
			WHERE account_id = ? AND created_by IS NULL AND used_at IS NULL GROUP BY user_id) rc ON rc.user_id = u.id
		LEFT JOIN (SELECT user_id, COUNT(*) AS n FROM devices
			WHERE account_id = ? AND remember_until > ? GROUP BY user_id) d ON d.user_id = u.id
		LEFT JOIN (SELECT subject_id, MAX(time) AS last FROM audit_events
			WHERE account_id = ? AND actor_id <> '' AND actor_id <> subject_id AND type IN (?, ?, ?, ?) GROUP BY subject_id) a ON a.subject_id = u.id
		WHERE u.account_id = ?`
	args := []any{accountID, accountID, accountID, micros(now), accountID}
	for _, t := range adminActions {
		args = append(args, t)
	}
	args = append(args, accountID)
	if len(f.Roles) > 0 {
		q += ` AND u.role IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(f.Roles)), ", ") + `)`
		for _, r := range f.Roles {
			args = append(args, string(r))
		}
	}
	rows, err := s.query(ctx, s.db, q+` ORDER BY u.email`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var sum deadbolt.UserSummary
		var kinds, def sql.NullString
		var codes, devices sql.NullInt64
		u, err := s.scanUser(scanPrefix{rows, 11, []any{&kinds, &def, at(&sum.LastSecondFactorAt), &codes, &devices, at(&sum.LastAdminActionAt)}})
		if err != nil {
			return err
		}
		sum.User = u
		if kinds.Valid {
			for _, k := range strings.Split(kinds.String, ",") {
				sum.Methods = append(sum.Methods, deadbolt.FactorKind(k))
			}
			slices.Sort(sum.Methods)
			sum.Methods = slices.Compact(sum.Methods)
		}
		sum.DefaultMethod = deadbolt.FactorKind(def.String)
		sum.RecoveryCodesLeft, sum.RememberedDevices = int(codes.Int64), int(devices.Int64)
		if err := fn(&sum); err != nil {
			return err
		}
	}
	return rows.Err()
}

// scanPrefix lets scanUser read the first n columns of a wider row, the
// rest going to extra.
type scanPrefix struct {
	rows  *sql.Rows
	n     int
	extra []any
}

func (p scanPrefix) Scan(dest ...any) error {
	return p.rows.Scan(append(dest[:p.n:p.n], p.extra...)...)
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// CreateReport records an emailed report link.
func (s *DB) CreateReport(ctx context.Context, r *deadbolt.Report) error {
	n := *r
	n.ID = newID()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.CreatedAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.ExpiresAt)
	if _, err := s.exec(ctx, s.db, `INSERT INTO reports (account_id, id, requested_by, kind, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		n.AccountID, n.ID, n.RequestedBy, n.Kind, micros(n.CreatedAt), micros(n.ExpiresAt)); err != nil {
		return err
	}
	*r = n
	return nil
}

// FindReport returns a report link of the account.
func (s *DB) FindReport(ctx context.Context, accountID, id string) (*deadbolt.Report, error) {
	var r deadbolt.Report
	err := s.queryRow(ctx, s.db, `SELECT account_id, id, requested_by, kind, created_at, expires_at FROM reports WHERE account_id = ? AND id = ?`,
		accountID, id).Scan(&r.AccountID, &r.ID, &r.RequestedBy, &r.Kind, at(&r.CreatedAt), at(&r.ExpiresAt))
	if err != nil {
		return nil, notFound(err, deadbolt.ENotFound, "Report")
	}
	return &r, nil
}

// QueueMessage queues a notice (a message without a passcode).
func (s *DB) QueueMessage(ctx context.Context, m *deadbolt.Message) error {
	n := *m
	n.ID, n.Status = newID(), deadbolt.MessageQueued
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.CreatedAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.ExpiresAt)
	n.NextAttemptAt = n.CreatedAt
	recipient, content, err := s.sealMessage(&n)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, s.db, `INSERT INTO messages (account_id, id, user_id, channel, recipient, content, status, expires_at, next_attempt_at, created_at)
		SELECT ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.UserID, string(n.Channel), recipient, content, micros(n.ExpiresAt), micros(n.NextAttemptAt), micros(n.CreatedAt),
		n.AccountID, n.UserID)
	if err != nil {
		return err
	}
	if err := checkOne(res, deadbolt.ENotFound, "User"); err != nil {
		return err
	}
	*m = n
	return nil
}
