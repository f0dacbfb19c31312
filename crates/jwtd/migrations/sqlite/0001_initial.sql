-- jwtd schema, version 1. Rows hold jti, user, family and times; never a token string.
CREATE TABLE users (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    username           TEXT    NOT NULL UNIQUE,
    password           TEXT    NOT NULL,
    email              TEXT    NOT NULL DEFAULT '',
    is_active          INTEGER NOT NULL DEFAULT 1,
    date_joined_ms     INTEGER NOT NULL,
    last_login_ms      INTEGER,
    -- tokens issued (iat) before this second are revoked (password change, logout-all)
    tokens_valid_after INTEGER NOT NULL DEFAULT 0
);

-- Every refresh token issued or seen: outstanding while blacklisted_ms is NULL.
CREATE TABLE refresh_tokens (
    jti               TEXT    PRIMARY KEY,
    user_id           INTEGER NOT NULL,
    family            TEXT    NOT NULL,
    family_started    INTEGER NOT NULL,  -- seconds; the session's absolute start
    issued_at         INTEGER NOT NULL,  -- seconds (iat)
    expires_at        INTEGER NOT NULL,  -- seconds (exp)
    blacklisted_ms    INTEGER,
    replaced_by       TEXT,              -- successor jti once rotated
    rotated_ms        INTEGER
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Per-user revocations, polled by every instance to keep its in-memory "valid after" map.
CREATE TABLE revocations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL,
    valid_after INTEGER NOT NULL,  -- seconds
    created_ms  INTEGER NOT NULL
);

-- Server-held secrets, e.g. the generated HMAC key.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
