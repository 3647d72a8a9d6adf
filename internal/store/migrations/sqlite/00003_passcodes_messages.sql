-- +goose Up
CREATE TABLE passcodes (
    account_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    challenge_id TEXT NOT NULL DEFAULT '',
    factor_id    TEXT NOT NULL DEFAULT '',
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    code_hash    BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX passcodes_challenge ON passcodes (account_id, challenge_id, channel, created_at);
CREATE INDEX passcodes_factor ON passcodes (account_id, factor_id, channel, created_at);
CREATE INDEX passcodes_expiry ON passcodes (expires_at);

-- The outbox. Recipient and content are sealed: the content carries a
-- passcode, which must not sit in the database in the clear. Content is
-- dropped once the message is sent or dead.
CREATE TABLE messages (
    account_id      TEXT NOT NULL,
    id              TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient       BLOB NOT NULL,
    content         BLOB,
    passcode_id     TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'expired')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    lease_token     TEXT NOT NULL DEFAULT '',
    lease_until     INTEGER,
    expires_at      INTEGER,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX messages_due ON messages (status, next_attempt_at);

-- +goose Down
DROP TABLE messages;
DROP TABLE passcodes;
