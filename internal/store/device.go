package store

import (
	"context"
	"database/sql"

	"github.com/deadbolt/deadbolt"
)

// CreateDevice stores a new device under its token hash.
func (s *DB) CreateDevice(ctx context.Context, d *deadbolt.Device) error {
	n := *d
	n.ID = newID()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	if n.LastSeenAt.IsZero() {
		n.LastSeenAt = n.CreatedAt
	}
	n.CreatedAt, n.LastSeenAt = normTime(n.CreatedAt), normTime(n.LastSeenAt)
	n.RememberedAt, n.RememberUntil = normTime(n.RememberedAt), normTime(n.RememberUntil)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, n.AccountID, n.UserID); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO devices (account_id, id, user_id, token_hash, name, ip, remembered_at, remember_until, created_at, last_seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			n.AccountID, n.ID, n.UserID, n.TokenHash, n.Name, n.IP, micros(n.RememberedAt), micros(n.RememberUntil),
			micros(n.CreatedAt), micros(n.LastSeenAt))
		return s.dialect.formatError(err)
	})
	if err != nil {
		return err
	}
	*d = n
	return nil
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
	d.RememberedAt, d.RememberUntil, d.LastSeenAt = normTime(d.RememberedAt), normTime(d.RememberUntil), normTime(d.LastSeenAt)
	res, err := s.exec(ctx, s.db, `UPDATE devices SET token_hash = ?, name = ?, ip = ?, remembered_at = ?, remember_until = ?, last_seen_at = ?
		WHERE account_id = ? AND user_id = ? AND id = ?`,
		d.TokenHash, d.Name, d.IP, micros(d.RememberedAt), micros(d.RememberUntil), micros(d.LastSeenAt), d.AccountID, d.UserID, d.ID)
	if err != nil {
		return s.dialect.formatError(err)
	}
	return checkOne(res, deadbolt.ENotFound, "Device")
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
