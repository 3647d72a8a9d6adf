-- Times are BIGINT microseconds since the Unix epoch (UTC) in both dialects,
-- so that comparisons in SQL mean the same everywhere. Every table but
-- accounts has account_id in its primary key: rows of one account cannot be
-- reached, or referenced, through another.

-- +goose Up
CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    policy     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    account_id          TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id                  TEXT NOT NULL,
    email               TEXT NOT NULL,
    name                TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'agent', 'end_user')),
    auth_source         TEXT NOT NULL CHECK (auth_source IN ('password', 'sso')),
    phone               BYTEA,
    password_hash       TEXT NOT NULL DEFAULT '',
    password_changed_at BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, email)
);

CREATE TABLE factors (
    account_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('totp', 'sms', 'email')),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'active')),
    is_default   BOOLEAN NOT NULL DEFAULT FALSE,
    secret       BYTEA,
    phone        BYTEA,
    last_step    BIGINT,
    created_at   BIGINT NOT NULL,
    activated_at BIGINT,
    last_used_at BIGINT,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX factors_user ON factors (account_id, user_id);
-- One default factor per user, enforced by the database.
CREATE UNIQUE INDEX factors_one_default ON factors (account_id, user_id) WHERE is_default;

CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    hash       BYTEA NOT NULL,
    created_by TEXT,
    expires_at BIGINT,
    used_at    BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX recovery_codes_user ON recovery_codes (account_id, user_id, hash);

-- Counters carry no foreign key: account_id '' holds limits that are not
-- any one account's (such as per client IP across the service).
CREATE TABLE counters (
    account_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    count      BIGINT NOT NULL,
    reset_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE sessions (
    account_id       TEXT NOT NULL,
    id               TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    token_hash       BYTEA NOT NULL UNIQUE,
    idle_seconds     BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    second_factor_at BIGINT,
    password_at      BIGINT,
    device_id        TEXT NOT NULL DEFAULT '',
    ip               TEXT NOT NULL DEFAULT '',
    user_agent       TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (account_id, user_id);

-- Audit events outlive the users they name: no foreign key to users.
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    time       BIGINT NOT NULL,
    type       TEXT NOT NULL,
    actor_id   TEXT NOT NULL DEFAULT '',
    subject_id TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_account ON audit_events (account_id, id);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE sessions;
DROP TABLE counters;
DROP TABLE recovery_codes;
DROP TABLE factors;
DROP TABLE users;
DROP TABLE accounts;
