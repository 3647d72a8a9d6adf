-- Deadbolt as an OpenID Connect provider. String lists (URIs, scopes, amr)
-- are JSON arrays in TEXT. Tokens and logins carry no foreign key to
-- sessions: a login must outlive its session, which is how the clients to
-- tell of a logout are found; nothing of them is usable without the
-- session, which every use checks.

-- +goose Up
-- How the last second factor of the session was proven (a factor kind, or
-- recovery_code); '' when none was.
ALTER TABLE sessions ADD COLUMN second_factor_method TEXT NOT NULL DEFAULT '';

-- A client id is unique across accounts: it is public and names the client
-- to the provider before the account is known.
CREATE TABLE oidc_clients (
    account_id                TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id                        TEXT NOT NULL UNIQUE,
    name                      TEXT NOT NULL,
    secret_hash               BLOB,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    backchannel_logout_uri    TEXT NOT NULL DEFAULT '',
    scopes                    TEXT NOT NULL,
    require_2fa               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);

-- request holds the parameters the application sent, as JSON. user_id is
-- NULL until someone signs in for it (a NULL escapes the foreign key).
CREATE TABLE oidc_auth_requests (
    account_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    request      TEXT NOT NULL,
    user_id      TEXT,
    session_id   TEXT NOT NULL DEFAULT '',
    auth_time    INTEGER,
    amr          TEXT NOT NULL DEFAULT 'null',
    acr          TEXT NOT NULL DEFAULT '',
    done_at      INTEGER,
    code_hash    BLOB UNIQUE,
    code_set_at  INTEGER,
    code_used_at INTEGER,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, client_id) REFERENCES oidc_clients (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX oidc_auth_requests_client ON oidc_auth_requests (account_id, client_id);
CREATE INDEX oidc_auth_requests_user ON oidc_auth_requests (account_id, user_id);
CREATE INDEX oidc_auth_requests_expiry ON oidc_auth_requests (expires_at);

-- One issue of tokens: id is the opaque access token's, refresh_hash the
-- keyed hash of the refresh token (NULL: none).
CREATE TABLE oidc_tokens (
    account_id         TEXT NOT NULL,
    id                 TEXT NOT NULL,
    client_id          TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    session_id         TEXT NOT NULL,
    auth_request_id    TEXT NOT NULL DEFAULT '',
    refresh_hash       BLOB UNIQUE,
    scopes             TEXT NOT NULL,
    auth_time          INTEGER,
    amr                TEXT NOT NULL,
    acr                TEXT NOT NULL DEFAULT '',
    expires_at         INTEGER NOT NULL,
    refresh_expires_at INTEGER,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, client_id) REFERENCES oidc_clients (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX oidc_tokens_user ON oidc_tokens (account_id, user_id, client_id);
CREATE INDEX oidc_tokens_client ON oidc_tokens (account_id, client_id, session_id);
CREATE INDEX oidc_tokens_session ON oidc_tokens (account_id, session_id);
CREATE INDEX oidc_tokens_auth_request ON oidc_tokens (account_id, auth_request_id);

-- A client got tokens for a session: it is told when the session ends.
CREATE TABLE oidc_logins (
    account_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, client_id, session_id),
    FOREIGN KEY (account_id, client_id) REFERENCES oidc_clients (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX oidc_logins_session ON oidc_logins (account_id, session_id);
CREATE INDEX oidc_logins_user ON oidc_logins (account_id, user_id);
CREATE INDEX oidc_logins_created ON oidc_logins (created_at);

-- Signing keys; private_key is the sealed PKCS #8 DER. One current key
-- (retired_at NULL) per account, enforced by the database.
CREATE TABLE oidc_keys (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    alg         TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    private_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX oidc_keys_current ON oidc_keys (account_id) WHERE retired_at IS NULL;

-- +goose Down
DROP TABLE oidc_keys;
DROP TABLE oidc_logins;
DROP TABLE oidc_tokens;
DROP TABLE oidc_auth_requests;
DROP TABLE oidc_clients;
ALTER TABLE sessions DROP COLUMN second_factor_method;
