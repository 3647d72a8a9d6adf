-- +goose Up
-- The browser or program behind each audited request.
ALTER TABLE audit_events ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
-- API tokens may expire; NULL is a token without an expiry.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN expires_at;
ALTER TABLE audit_events DROP COLUMN user_agent;
