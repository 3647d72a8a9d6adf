-- SSO: an account's own identity providers. A provider's secrets (an OIDC
-- client secret, the SAML SP's private key) are sealed; domains is a JSON
-- array of lower-case email domains, unique within the account (enforced
-- by the store, which reads them all: there are few).

-- +goose Up
-- A session made by an SSO sign-in names its provider; federated_at is
-- when the provider vouched; upstream_mfa whether it said a second factor
-- was used and the provider is trusted for that.
ALTER TABLE sessions ADD COLUMN sso_provider_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN federated_at INTEGER;
ALTER TABLE sessions ADD COLUMN upstream_mfa BOOLEAN NOT NULL DEFAULT FALSE;
-- A second factor asked after an SSO sign-in (require_2fa_sso_users).
ALTER TABLE challenges ADD COLUMN sso_provider_id TEXT NOT NULL DEFAULT '';

CREATE TABLE sso_providers (
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('oidc', 'saml')),
    name          TEXT NOT NULL,
    domains       TEXT NOT NULL,
    jit           BOOLEAN NOT NULL DEFAULT FALSE,
    default_role  TEXT NOT NULL,
    trust_mfa     BOOLEAN NOT NULL DEFAULT FALSE,
    issuer        TEXT NOT NULL DEFAULT '',
    client_id     TEXT NOT NULL DEFAULT '',
    client_secret BLOB,
    metadata_url  TEXT NOT NULL DEFAULT '',
    metadata_xml  TEXT NOT NULL DEFAULT '',
    sp_key        BLOB,
    sp_cert       TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);

-- Sign-ins at a provider, consumed by their answer.
CREATE TABLE sso_states (
    account_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    nonce        TEXT NOT NULL DEFAULT '',
    verifier     BLOB,
    browser_hash BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, provider_id) REFERENCES sso_providers (account_id, id) ON DELETE CASCADE
);
CREATE INDEX sso_states_expiry ON sso_states (expires_at);

-- SAML assertions already used, until they expire: a replay is refused.
CREATE TABLE sso_assertions (
    account_id   TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    assertion_id TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, provider_id, assertion_id),
    FOREIGN KEY (account_id, provider_id) REFERENCES sso_providers (account_id, id) ON DELETE CASCADE
);
CREATE INDEX sso_assertions_expiry ON sso_assertions (expires_at);

-- +goose Down
DROP TABLE sso_assertions;
DROP TABLE sso_states;
DROP TABLE sso_providers;
ALTER TABLE challenges DROP COLUMN sso_provider_id;
ALTER TABLE sessions DROP COLUMN upstream_mfa;
ALTER TABLE sessions DROP COLUMN federated_at;
ALTER TABLE sessions DROP COLUMN sso_provider_id;
