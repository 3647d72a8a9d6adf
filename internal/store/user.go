package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/deadbolt/deadbolt"
)

// aad is the additional data that binds a sealed value to its place.
func aad(column, accountID, ownerID string) []byte {
	return []byte(column + "/" + accountID + "/" + ownerID)
}

// sealString encrypts a non-empty string; the empty string is stored as NULL.
func (s *DB) sealString(v string, ad []byte) (any, error) {
	if v == "" {
		return nil, nil
	}
	b, err := s.sealer.Seal([]byte(v), ad)
	if err != nil {
		return nil, fmt.Errorf("store: seal: %w", err)
	}
	return b, nil
}

func (s *DB) openString(b []byte, ad []byte) (string, error) {
	if b == nil {
		return "", nil
	}
	v, err := s.sealer.Open(b, ad)
	if err != nil {
		return "", fmt.Errorf("store: open sealed %s: %w", ad, err)
	}
	return string(v), nil
}

// CreateUser stores a new user.
func (s *DB) CreateUser(ctx context.Context, u *deadbolt.User) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// An unknown account would otherwise surface as a foreign key error.
		var one int
		if err := s.queryRow(ctx, tx, `SELECT 1 FROM accounts WHERE id = ?`, u.AccountID).Scan(&one); err != nil {
			return notFound(err, deadbolt.EAccountNotFound, "Account")
		}
		return s.createUser(ctx, tx, u)
	})
}

// userExists checks, inside a transaction, that the user is in the account,
// so that a missing user is ENotFound rather than a foreign key failure.
func (s *DB) userExists(ctx context.Context, tx *sql.Tx, accountID, userID string) error {
	var one int
	err := s.queryRow(ctx, tx, `SELECT 1 FROM users WHERE account_id = ? AND id = ?`, accountID, userID).Scan(&one)
	return notFound(err, deadbolt.ENotFound, "User")
}

func (s *DB) createUser(ctx context.Context, tx *sql.Tx, u *deadbolt.User) error {
	nu := *u
	now := s.clock()
	nu.ID, nu.CreatedAt, nu.UpdatedAt = newID(), now, now
	if nu.PasswordHash != "" && nu.PasswordChangedAt.IsZero() {
		nu.PasswordChangedAt = now
	}
	phone, err := s.sealString(nu.Phone, aad("users.phone", nu.AccountID, nu.ID))
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, tx, `INSERT INTO users (account_id, id, email, name, role, auth_source, phone, password_hash, password_changed_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		nu.AccountID, nu.ID, nu.Email, nu.Name, string(nu.Role), string(nu.AuthSource), phone, nu.PasswordHash,
		micros(nu.PasswordChangedAt), micros(now), micros(now))
	if err != nil {
		return s.dialect.conflict(err, "A user with the email %q already exists in this account.", nu.Email)
	}
	*u = nu
	return nil
}

const userColumns = `account_id, id, email, name, role, auth_source, phone, password_hash, password_changed_at, created_at, updated_at`

func (s *DB) scanUser(row interface{ Scan(...any) error }) (*deadbolt.User, error) {
	var u deadbolt.User
	var phone []byte
	if err := row.Scan(&u.AccountID, &u.ID, &u.Email, &u.Name, &u.Role, &u.AuthSource, &phone, &u.PasswordHash,
		at(&u.PasswordChangedAt), at(&u.CreatedAt), at(&u.UpdatedAt)); err != nil {
		return nil, err
	}
	var err error
	if u.Phone, err = s.openString(phone, aad("users.phone", u.AccountID, u.ID)); err != nil {
		return nil, err
	}
	return &u, nil
}

// FindUserByID returns a user of the account.
func (s *DB) FindUserByID(ctx context.Context, accountID, id string) (*deadbolt.User, error) {
	u, err := s.scanUser(s.queryRow(ctx, s.db, `SELECT `+userColumns+` FROM users WHERE account_id = ? AND id = ?`, accountID, id))
	return u, notFound(err, deadbolt.ENotFound, "User")
}

// FindUserByEmail returns a user of the account by normalised email.
func (s *DB) FindUserByEmail(ctx context.Context, accountID, email string) (*deadbolt.User, error) {
	u, err := s.scanUser(s.queryRow(ctx, s.db, `SELECT `+userColumns+` FROM users WHERE account_id = ? AND email = ?`, accountID, email))
	return u, notFound(err, deadbolt.ENotFound, "User")
}

// FindUsers lists the account's users, ordered by email.
func (s *DB) FindUsers(ctx context.Context, accountID string, f deadbolt.UserFilter) ([]*deadbolt.User, error) {
	q := `SELECT ` + userColumns + ` FROM users WHERE account_id = ?`
	args := []any{accountID}
	if f.Role != "" {
		q += ` AND role = ?`
		args = append(args, string(f.Role))
	}
	rows, err := s.query(ctx, s.db, q+` ORDER BY email`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var users []*deadbolt.User
	for rows.Next() {
		u, err := s.scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// UpdateUser changes the fields set in upd.
func (s *DB) UpdateUser(ctx context.Context, accountID, id string, upd deadbolt.UserUpdate) (*deadbolt.User, error) {
	var u *deadbolt.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = s.scanUser(s.queryRow(ctx, tx, `SELECT `+userColumns+` FROM users WHERE account_id = ? AND id = ?`, accountID, id))
		if err != nil {
			return notFound(err, deadbolt.ENotFound, "User")
		}
		now := s.clock()
		if upd.Name != nil {
			u.Name = *upd.Name
		}
		if upd.Role != nil {
			u.Role = *upd.Role
		}
		if upd.Phone != nil {
			u.Phone = *upd.Phone
		}
		if upd.PasswordHash != nil {
			u.PasswordHash = *upd.PasswordHash
			u.PasswordChangedAt = now
		}
		if upd.AuthSource != nil {
			u.AuthSource = *upd.AuthSource
			if u.AuthSource == deadbolt.AuthSSO {
				u.PasswordHash, u.PasswordChangedAt = "", now
			}
		}
		if err := u.Validate(); err != nil {
			return err
		}
		phone, err := s.sealString(u.Phone, aad("users.phone", u.AccountID, u.ID))
		if err != nil {
			return err
		}
		u.UpdatedAt = now
		_, err = s.exec(ctx, tx, `UPDATE users SET name = ?, role = ?, phone = ?, password_hash = ?, password_changed_at = ?, auth_source = ?,
			updated_at = ? WHERE account_id = ? AND id = ?`,
			u.Name, string(u.Role), phone, u.PasswordHash, micros(u.PasswordChangedAt), string(u.AuthSource), micros(now), accountID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUser removes the user; their factors, codes and sessions go with
// them (ON DELETE CASCADE).
func (s *DB) DeleteUser(ctx context.Context, accountID, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM users WHERE account_id = ? AND id = ?`, accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "User")
}
