-- +goose Up
CREATE TABLE api_tokens (
    account_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    token_hash   BYTEA NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);

-- Emailed report links: the link names a report, carries no secret, and
-- opens only for a signed-in admin of the account until it expires.
CREATE TABLE reports (
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    kind         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);

-- The 2FA report's "last admin action" reads the newest event per subject.
CREATE INDEX audit_events_subject ON audit_events (account_id, subject_id, time);

-- +goose Down
DROP INDEX audit_events_subject;
DROP TABLE reports;
DROP TABLE api_tokens;
