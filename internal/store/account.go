package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/deadbolt/deadbolt"
)

// CreateAccount stores a new account and its owner in one transaction.
func (s *DB) CreateAccount(ctx context.Context, a *deadbolt.Account, owner *deadbolt.User) error {
	if owner.Role != deadbolt.RoleOwner {
		return deadbolt.Invalid("role", "The first user of an account must be its owner.")
	}
	policy, err := json.Marshal(a.Policy)
	if err != nil {
		return fmt.Errorf("store: encode policy: %w", err)
	}
	now := s.clock()
	acc := *a
	acc.ID, acc.CreatedAt, acc.UpdatedAt = newID(), now, now
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO accounts (id, slug, name, policy, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			acc.ID, acc.Slug, acc.Name, string(policy), micros(now), micros(now))
		if err != nil {
			return s.dialect.conflict(err, "An account with the slug %q already exists.", acc.Slug)
		}
		owner.AccountID = acc.ID
		return s.createUser(ctx, tx, owner)
	})
	if err != nil {
		owner.AccountID = ""
		return err
	}
	*a = acc
	return nil
}

const accountColumns = `id, slug, name, policy, created_at, updated_at`

func scanAccount(row interface{ Scan(...any) error }) (*deadbolt.Account, error) {
	var a deadbolt.Account
	var policy string
	if err := row.Scan(&a.ID, &a.Slug, &a.Name, &policy, at(&a.CreatedAt), at(&a.UpdatedAt)); err != nil {
		return nil, err
	}
	// Decode onto the defaults: a field added to Policy later takes its
	// default in accounts stored before it existed.
	a.Policy = deadbolt.DefaultPolicy()
	if err := json.Unmarshal([]byte(policy), &a.Policy); err != nil {
		return nil, fmt.Errorf("store: decode policy of account %s: %w", a.ID, err)
	}
	return &a, nil
}

// FindAccountBySlug returns the account with the slug.
func (s *DB) FindAccountBySlug(ctx context.Context, slug string) (*deadbolt.Account, error) {
	a, err := scanAccount(s.queryRow(ctx, s.db, `SELECT `+accountColumns+` FROM accounts WHERE slug = ?`, slug))
	return a, notFound(err, deadbolt.EAccountNotFound, "Account")
}

// FindAccountByID returns the account with the id.
func (s *DB) FindAccountByID(ctx context.Context, id string) (*deadbolt.Account, error) {
	a, err := scanAccount(s.queryRow(ctx, s.db, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	return a, notFound(err, deadbolt.EAccountNotFound, "Account")
}

// UpdatePolicy replaces the account's policy.
func (s *DB) UpdatePolicy(ctx context.Context, accountID string, p deadbolt.Policy) error {
	policy, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("store: encode policy: %w", err)
	}
	res, err := s.exec(ctx, s.db, `UPDATE accounts SET policy = ?, updated_at = ? WHERE id = ?`,
		string(policy), micros(s.clock()), accountID)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.EAccountNotFound, "Account")
}
