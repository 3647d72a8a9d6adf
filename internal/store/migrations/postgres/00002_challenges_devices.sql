-- +goose Up
CREATE TABLE challenges (
    account_id TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('second_factor', 'device_verification', 'enrollment')),
    attempts   BIGINT NOT NULL DEFAULT 0,
    device_id  TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX challenges_expiry ON challenges (expires_at);

CREATE TABLE devices (
    account_id     TEXT NOT NULL,
    id             TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    token_hash     BYTEA NOT NULL UNIQUE,
    name           TEXT NOT NULL DEFAULT '',
    ip             TEXT NOT NULL DEFAULT '',
    remembered_at  BIGINT,
    remember_until BIGINT,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX devices_user ON devices (account_id, user_id);

-- +goose Down
DROP TABLE devices;
DROP TABLE challenges;
