package store

import (
	"context"
	"database/sql"

	"github.com/deadbolt/deadbolt"
)

// CreateDevice stores a new device under its token hash.
func (s *DB) CreateDevice(ctx context.Context, d *deadbolt.Device) error {
	n := *d
	n.ID = ""
	s.normDevice(&n)
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.insertDevice(ctx, tx, &n) }); err != nil {
		return err
	}
	*d = n
	return nil
}

// normDevice gives a new device (one without an id) its id and times, and
// puts every time in its stored form.
func (s *DB) normDevice(d *deadbolt.Device) {
	if d.ID == "" {
		d.ID = newID()
		if d.CreatedAt.IsZero() {
			d.CreatedAt = s.clock()
		}
		if d.LastSeenAt.IsZero() {
			d.LastSeenAt = d.CreatedAt
		}
	}
	d.CreatedAt, d.LastSeenAt = normTime(d.CreatedAt), normTime(d.LastSeenAt)
	d.RememberedAt, d.RememberUntil = normTime(d.RememberedAt), normTime(d.RememberUntil)
}

// insertDevice stores a device in one statement: the row goes in only if
// the user is in the account.
func (s *DB) insertDevice(ctx context.Context, q querier, n *deadbolt.Device) error {
	res, err := s.exec(ctx, q, `INSERT INTO devices (account_id, id, user_id, token_hash, name, ip, remembered_at, remember_until, created_at, last_seen_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.UserID, n.TokenHash, n.Name, n.IP, micros(n.RememberedAt), micros(n.RememberUntil),
		micros(n.CreatedAt), micros(n.LastSeenAt), n.AccountID, n.UserID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	if err := checkOne(res, deadbolt.ENotFound, "User"); err != nil {
		return err
	}
	_, err = s.exec(ctx, q, `DELETE FROM devices WHERE account_id = ? AND user_id = ? AND remembered_at IS NULL AND id NOT IN (
		SELECT id FROM devices WHERE account_id = ? AND user_id = ? AND remembered_at IS NULL ORDER BY last_seen_at DESC, id DESC LIMIT ?)`,
		n.AccountID, n.UserID, n.AccountID, n.UserID, deadbolt.MaxRecognisedDevices)
	return err
}

// updateDevice stores a device's changing fields.
func (s *DB) updateDevice(ctx context.Context, q querier, d *deadbolt.Device) error {
	res, err := s.exec(ctx, q, `UPDATE devices SET token_hash = ?, name = ?, ip = ?, remembered_at = ?, remember_until = ?, last_seen_at = ?
		WHERE account_id = ? AND user_id = ? AND id = ?`,
		d.TokenHash, d.Name, d.IP, micros(d.RememberedAt), micros(d.RememberUntil), micros(d.LastSeenAt), d.AccountID, d.UserID, d.ID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	return checkOne(res, deadbolt.ENotFound, "Device")
}

const deviceColumns = `account_id, id, user_id, token_hash, name, ip, remembered_at, remember_until, created_at, last_seen_at`

func scanDevice(row interface{ Scan(...any) error }) (*deadbolt.Device, error) {
	var d deadbolt.Device
	err := row.Scan(&d.AccountID, &d.ID, &d.UserID, &d.TokenHash, &d.Name, &d.IP, at(&d.RememberedAt), at(&d.RememberUntil),
		at(&d.CreatedAt), at(&d.LastSeenAt))
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// FindDeviceByTokenHash finds the account's device by its token hash.
func (s *DB) FindDeviceByTokenHash(ctx context.Context, accountID string, hash []byte) (*deadbolt.Device, error) {
	d, err := scanDevice(s.queryRow(ctx, s.db, `SELECT `+deviceColumns+` FROM devices WHERE account_id = ? AND token_hash = ?`, accountID, hash))
	return d, notFound(err, deadbolt.ENotFound, "Device")
}

// FindDevices lists a user's devices, most recently seen first.
func (s *DB) FindDevices(ctx context.Context, accountID, userID string) ([]*deadbolt.Device, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+deviceColumns+` FROM devices WHERE account_id = ? AND user_id = ?
		ORDER BY last_seen_at DESC, id`, accountID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*deadbolt.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, d)
	}
	return list, rows.Err()
}

// UpdateDevice stores the device's changing fields.
func (s *DB) UpdateDevice(ctx context.Context, d *deadbolt.Device) error {
	s.normDevice(d)
	return s.updateDevice(ctx, s.db, d)
}

// DeleteDevice forgets one device of the user.
func (s *DB) DeleteDevice(ctx context.Context, accountID, userID, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM devices WHERE account_id = ? AND user_id = ? AND id = ?`, accountID, userID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Device")
}

// DeleteDevices forgets all of the user's devices.
func (s *DB) DeleteDevices(ctx context.Context, accountID, userID string) (int, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM devices WHERE account_id = ? AND user_id = ?`, accountID, userID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
