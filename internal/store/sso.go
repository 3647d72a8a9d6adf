package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/deadbolt/deadbolt"
)

// The records of SSO: identity providers (their secrets sealed, bound to
// the account and provider), sign-ins waiting at them, and used SAML
// assertions.

const ssoProviderColumns = `account_id, id, kind, name, domains, jit, default_role, trust_mfa, issuer, client_id, client_secret,
	metadata_url, metadata_xml, sp_key, sp_cert, created_at, updated_at`

func (s *DB) scanSSOProvider(row interface{ Scan(...any) error }) (*deadbolt.SSOProvider, error) {
	var p deadbolt.SSOProvider
	var secret, spKey []byte
	if err := row.Scan(&p.AccountID, &p.ID, &p.Kind, &p.Name, js(&p.Domains), &p.JIT, &p.DefaultRole, &p.TrustMFA, &p.Issuer,
		&p.ClientID, &secret, &p.MetadataURL, &p.MetadataXML, &spKey, &p.SPCertPEM, at(&p.CreatedAt), at(&p.UpdatedAt)); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		sealed []byte
		column string
		to     *string
	}{{secret, "sso_providers.client_secret", &p.ClientSecret}, {spKey, "sso_providers.sp_key", &p.SPKeyPEM}} {
		if len(f.sealed) == 0 {
			continue
		}
		ad := aad(f.column, p.AccountID, p.ID)
		plain, err := s.sealer.Open(f.sealed, ad)
		if err != nil {
			return nil, fmt.Errorf("store: open sealed %s: %w", ad, err)
		}
		*f.to = string(plain)
	}
	return &p, nil
}

// sealSSO seals a provider's secrets; an empty one is stored as NULL.
func (s *DB) sealSSO(p *deadbolt.SSOProvider) (secret, spKey []byte, err error) {
	if p.ClientSecret != "" {
		if secret, err = s.sealer.Seal([]byte(p.ClientSecret), aad("sso_providers.client_secret", p.AccountID, p.ID)); err != nil {
			return nil, nil, fmt.Errorf("store: seal: %w", err)
		}
	}
	if p.SPKeyPEM != "" {
		if spKey, err = s.sealer.Seal([]byte(p.SPKeyPEM), aad("sso_providers.sp_key", p.AccountID, p.ID)); err != nil {
			return nil, nil, fmt.Errorf("store: seal: %w", err)
		}
	}
	return secret, spKey, nil
}

// checkSSODomains refuses a domain that another provider of the account
// has: home-realm discovery must name one provider. It runs in the writing
// transaction, which holds the write lock on SQLite; on PostgreSQL the
// account row is locked first, so two writers of one account take turns.
func (s *DB) checkSSODomains(ctx context.Context, tx *sql.Tx, p *deadbolt.SSOProvider, creating bool) error {
	if s.dialect.name == "postgres" {
		if _, err := s.exec(ctx, tx, `SELECT id FROM accounts WHERE id = ? FOR UPDATE`, p.AccountID); err != nil {
			return err
		}
	}
	rows, err := s.query(ctx, tx, `SELECT id, domains FROM sso_providers WHERE account_id = ?`, p.AccountID)
	if err != nil {
		return err
	}
	defer rows.Close()
	n, found := 0, false
	var taken string
	for rows.Next() {
		var id string
		var domains []string
		if err := rows.Scan(&id, js(&domains)); err != nil {
			return err
		}
		n++
		if id == p.ID {
			found = true
			continue
		}
		for _, d := range p.Domains {
			if taken == "" && slices.Contains(domains, d) {
				taken = d
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !creating && !found {
		return deadbolt.Errorf(deadbolt.ENotFound, "Identity provider not found.")
	}
	if taken != "" {
		return deadbolt.Errorf(deadbolt.EConflict, "The domain %s is another identity provider's already.", taken)
	}
	if creating && n >= deadbolt.MaxSSOProviders {
		return deadbolt.Errorf(deadbolt.EConflict, "An account may have at most %d identity providers.", deadbolt.MaxSSOProviders)
	}
	return nil
}

// CreateSSOProvider stores a provider of the account; the caller sets the
// id.
func (s *DB) CreateSSOProvider(ctx context.Context, p *deadbolt.SSOProvider) error {
	n := *p
	now := s.clock()
	if n.CreatedAt.IsZero() {
		n.CreatedAt = now
	}
	n.CreatedAt = normTime(n.CreatedAt)
	n.UpdatedAt = n.CreatedAt
	domains, err := jsonText(orEmpty(n.Domains))
	if err != nil {
		return err
	}
	secret, spKey, err := s.sealSSO(&n)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkSSODomains(ctx, tx, &n, true); err != nil {
			return err
		}
		res, err := s.exec(ctx, tx, `INSERT INTO sso_providers (`+ssoProviderColumns+`)
			SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)`,
			n.AccountID, n.ID, string(n.Kind), n.Name, domains, n.JIT, string(n.DefaultRole), n.TrustMFA, n.Issuer, n.ClientID, secret,
			n.MetadataURL, n.MetadataXML, spKey, n.SPCertPEM, micros(n.CreatedAt), micros(n.UpdatedAt), n.AccountID)
		if err != nil {
			return s.dialect.conflict(err, "An identity provider with the id %q already exists.", n.ID)
		}
		return checkOne(res, deadbolt.EAccountNotFound, "Account")
	})
	if err != nil {
		return err
	}
	*p = n
	return nil
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// UpdateSSOProvider replaces a provider's fields (not its kind or
// creation time).
func (s *DB) UpdateSSOProvider(ctx context.Context, p *deadbolt.SSOProvider) error {
	n := *p
	n.UpdatedAt = s.clock()
	domains, err := jsonText(orEmpty(n.Domains))
	if err != nil {
		return err
	}
	secret, spKey, err := s.sealSSO(&n)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkSSODomains(ctx, tx, &n, false); err != nil {
			return err
		}
		res, err := s.exec(ctx, tx, `UPDATE sso_providers SET name = ?, domains = ?, jit = ?, default_role = ?, trust_mfa = ?,
			issuer = ?, client_id = ?, client_secret = ?, metadata_url = ?, metadata_xml = ?, sp_key = ?, sp_cert = ?, updated_at = ?
			WHERE account_id = ? AND id = ?`,
			n.Name, domains, n.JIT, string(n.DefaultRole), n.TrustMFA, n.Issuer, n.ClientID, secret, n.MetadataURL, n.MetadataXML,
			spKey, n.SPCertPEM, micros(n.UpdatedAt), n.AccountID, n.ID)
		if err != nil {
			return s.dialect.formatError(err)
		}
		return checkOne(res, deadbolt.ENotFound, "Identity provider")
	})
	if err != nil {
		return err
	}
	*p = n
	return nil
}

// FindSSOProvider returns a provider of the account.
func (s *DB) FindSSOProvider(ctx context.Context, accountID, id string) (*deadbolt.SSOProvider, error) {
	p, err := s.scanSSOProvider(s.queryRow(ctx, s.db, `SELECT `+ssoProviderColumns+` FROM sso_providers
		WHERE account_id = ? AND id = ?`, accountID, id))
	return p, notFound(err, deadbolt.ENotFound, "Identity provider")
}

// FindSSOProviders lists the account's providers by name.
func (s *DB) FindSSOProviders(ctx context.Context, accountID string) ([]*deadbolt.SSOProvider, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+ssoProviderColumns+` FROM sso_providers WHERE account_id = ? ORDER BY name, id`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*deadbolt.SSOProvider
	for rows.Next() {
		p, err := s.scanSSOProvider(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, p)
	}
	return list, rows.Err()
}

// DeleteSSOProvider removes a provider; its states and assertion records
// go with it (foreign keys). Sessions it made stay until they end.
func (s *DB) DeleteSSOProvider(ctx context.Context, accountID, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM sso_providers WHERE account_id = ? AND id = ?`, accountID, id)
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Identity provider")
}

// CreateSSOState stores a sign-in leaving for a provider of the account;
// the caller sets the id. The PKCE verifier is sealed.
func (s *DB) CreateSSOState(ctx context.Context, st *deadbolt.SSOState) error {
	n := *st
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.CreatedAt, n.ExpiresAt = normTime(n.CreatedAt), normTime(n.ExpiresAt)
	var verifier []byte
	if n.Verifier != "" {
		var err error
		if verifier, err = s.sealer.Seal([]byte(n.Verifier), aad("sso_states.verifier", n.AccountID, n.ID)); err != nil {
			return fmt.Errorf("store: seal: %w", err)
		}
	}
	res, err := s.exec(ctx, s.db, `INSERT INTO sso_states (account_id, id, provider_id, nonce, verifier, browser_hash, created_at, expires_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM sso_providers WHERE account_id = ? AND id = ?)`,
		n.AccountID, n.ID, n.ProviderID, n.Nonce, verifier, n.BrowserHash, micros(n.CreatedAt), micros(n.ExpiresAt), n.AccountID, n.ProviderID)
	if err != nil {
		return s.dialect.conflict(err, "A sign-in with the id %q already exists.", n.ID)
	}
	if err := checkOne(res, deadbolt.ENotFound, "Identity provider"); err != nil {
		return err
	}
	*st = n
	return nil
}

// ConsumeSSOState returns the live state and deletes it in one statement:
// of two answers for one state, one gets the row.
func (s *DB) ConsumeSSOState(ctx context.Context, accountID, id string, now time.Time) (*deadbolt.SSOState, error) {
	var st deadbolt.SSOState
	var verifier []byte
	err := s.queryRow(ctx, s.db, `DELETE FROM sso_states WHERE account_id = ? AND id = ? AND expires_at > ?
		RETURNING account_id, id, provider_id, nonce, verifier, browser_hash, created_at, expires_at`,
		accountID, id, micros(now)).Scan(&st.AccountID, &st.ID, &st.ProviderID, &st.Nonce, &verifier, &st.BrowserHash,
		at(&st.CreatedAt), at(&st.ExpiresAt))
	if err != nil {
		return nil, notFound(err, deadbolt.ENotFound, "Sign-in")
	}
	if len(verifier) > 0 {
		ad := aad("sso_states.verifier", st.AccountID, st.ID)
		plain, err := s.sealer.Open(verifier, ad)
		if err != nil {
			return nil, fmt.Errorf("store: open sealed %s: %w", ad, err)
		}
		st.Verifier = string(plain)
	}
	return &st, nil
}

// UseSSOAssertion records an assertion's id; the primary key refuses a
// second use while the record lives (it lives until the assertion
// expires, after which the assertion itself is refused).
func (s *DB) UseSSOAssertion(ctx context.Context, accountID, providerID, assertionID string, expiresAt, now time.Time) error {
	if _, err := s.exec(ctx, s.db, `DELETE FROM sso_assertions WHERE account_id = ? AND provider_id = ? AND assertion_id = ?
		AND expires_at <= ?`, accountID, providerID, assertionID, micros(now)); err != nil {
		return err
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO sso_assertions (account_id, provider_id, assertion_id, expires_at)
		SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM sso_providers WHERE account_id = ? AND id = ?)`,
		accountID, providerID, assertionID, micros(normTime(expiresAt)), accountID, providerID)
	if err != nil {
		return s.dialect.conflict(err, "This assertion was used already.")
	}
	return nil
}

// DeleteExpiredSSO removes expired states and assertion records.
func (s *DB) DeleteExpiredSSO(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, q := range []string{`DELETE FROM sso_states WHERE expires_at <= ?`, `DELETE FROM sso_assertions WHERE expires_at <= ?`} {
		res, err := s.exec(ctx, s.db, q, micros(now))
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}
