-- Passkeys and security keys (WebAuthn). A webauthn factor keeps its
-- credential: credential_id (unique within the account: a discoverable
-- credential names its user by it), the library's credential record as
-- sealed JSON, and the last signature count (a counter that goes back is a
-- cloned authenticator). Ceremonies (registration, sign-in) are kept
-- server-side until used once.

-- +goose Up
ALTER TABLE factors DROP CONSTRAINT factors_kind_check;
ALTER TABLE factors ADD CONSTRAINT factors_kind_check CHECK (kind IN ('totp', 'sms', 'email', 'webauthn'));
ALTER TABLE factors ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE factors ADD COLUMN credential_id BYTEA;
ALTER TABLE factors ADD COLUMN credential BYTEA;
ALTER TABLE factors ADD COLUMN sign_count BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX factors_credential ON factors (account_id, credential_id) WHERE credential_id IS NOT NULL;

-- A ceremony: the library's session data (challenge, user, allowed
-- credentials, user verification), sealed; token_hash is the keyed hash of
-- what the client holds. user_id is NULL for a passwordless sign-in (the
-- credential will say who). Consumed by its first answer.
CREATE TABLE webauthn_ceremonies (
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash   BYTEA NOT NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('register', 'second_factor', 'passwordless', 'step_up')),
    user_id      TEXT,
    factor_id    TEXT NOT NULL DEFAULT '',
    challenge_id TEXT NOT NULL DEFAULT '',
    session      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (token_hash),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);

-- +goose Down
DROP TABLE webauthn_ceremonies;
DELETE FROM factors WHERE kind = 'webauthn';
DROP INDEX factors_credential;
ALTER TABLE factors DROP COLUMN sign_count;
ALTER TABLE factors DROP COLUMN credential;
ALTER TABLE factors DROP COLUMN credential_id;
ALTER TABLE factors DROP COLUMN name;
ALTER TABLE factors DROP CONSTRAINT factors_kind_check;
ALTER TABLE factors ADD CONSTRAINT factors_kind_check CHECK (kind IN ('totp', 'sms', 'email'));
