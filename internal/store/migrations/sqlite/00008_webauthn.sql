-- Passkeys and security keys (WebAuthn). A webauthn factor keeps its
-- credential: credential_id (unique within the account: a discoverable
-- credential names its user by it), the library's credential record as
-- sealed JSON, and the last signature count (a counter that goes back is a
-- cloned authenticator). Ceremonies (registration, sign-in) are kept
-- server-side until used once.
--
-- SQLite cannot change a CHECK constraint: factors is rebuilt (nothing
-- references it).

-- +goose Up
CREATE TABLE factors_new (
    account_id    TEXT NOT NULL,
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('totp', 'sms', 'email', 'webauthn')),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'active')),
    is_default    BOOLEAN NOT NULL DEFAULT FALSE,
    secret        BLOB,
    phone         BLOB,
    last_step     INTEGER,
    created_at    INTEGER NOT NULL,
    activated_at  INTEGER,
    last_used_at  INTEGER,
    name          TEXT NOT NULL DEFAULT '',
    credential_id BLOB,
    credential    BLOB,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
INSERT INTO factors_new (account_id, id, user_id, kind, status, is_default, secret, phone, last_step, created_at, activated_at, last_used_at)
    SELECT account_id, id, user_id, kind, status, is_default, secret, phone, last_step, created_at, activated_at, last_used_at FROM factors;
DROP TABLE factors;
ALTER TABLE factors_new RENAME TO factors;
CREATE INDEX factors_user ON factors (account_id, user_id);
CREATE UNIQUE INDEX factors_one_default ON factors (account_id, user_id) WHERE is_default;
CREATE UNIQUE INDEX factors_credential ON factors (account_id, credential_id) WHERE credential_id IS NOT NULL;

-- A ceremony: the library's session data (challenge, user, allowed
-- credentials, user verification), sealed; token_hash is the keyed hash of
-- what the client holds. user_id is NULL for a passwordless sign-in (the
-- credential will say who). Consumed by its first answer.
CREATE TABLE webauthn_ceremonies (
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('register', 'second_factor', 'passwordless', 'step_up')),
    user_id      TEXT,
    factor_id    TEXT NOT NULL DEFAULT '',
    challenge_id TEXT NOT NULL DEFAULT '',
    session      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (token_hash),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);

-- +goose Down
DROP TABLE webauthn_ceremonies;
DELETE FROM factors WHERE kind = 'webauthn';
CREATE TABLE factors_old (
    account_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('totp', 'sms', 'email')),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'active')),
    is_default   BOOLEAN NOT NULL DEFAULT FALSE,
    secret       BLOB,
    phone        BLOB,
    last_step    INTEGER,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    last_used_at INTEGER,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
INSERT INTO factors_old SELECT account_id, id, user_id, kind, status, is_default, secret, phone, last_step, created_at, activated_at, last_used_at FROM factors;
DROP TABLE factors;
ALTER TABLE factors_old RENAME TO factors;
CREATE INDEX factors_user ON factors (account_id, user_id);
CREATE UNIQUE INDEX factors_one_default ON factors (account_id, user_id) WHERE is_default;
