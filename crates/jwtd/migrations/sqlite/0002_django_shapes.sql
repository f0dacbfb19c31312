-- jwtd schema, version 2: the user shapes of real Django projects (SPEC §3, §5, §6): UUID ids,
-- e-mail sign-in, staff flags and names, groups, a user's own claims; and the id type the database
-- was made for.
--
-- users is rebuilt (SQLite cannot drop a constraint): a username is unique only when it is not
-- blank, since e-mail sign-in projects leave it blank. The internal integer id stays the key every
-- other table refers to; `uuid` is the id tokens carry when USER_ID_TYPE=uuid (Django's str(uuid):
-- lowercase, hyphenated).
CREATE TABLE users_v2 (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid               TEXT    UNIQUE,
    username           TEXT    NOT NULL DEFAULT '',
    password           TEXT    NOT NULL,
    email              TEXT    NOT NULL DEFAULT '',
    first_name         TEXT    NOT NULL DEFAULT '',
    last_name          TEXT    NOT NULL DEFAULT '',
    is_active          INTEGER NOT NULL DEFAULT 1,
    is_staff           INTEGER NOT NULL DEFAULT 0,
    is_superuser       INTEGER NOT NULL DEFAULT 0,
    date_joined_ms     INTEGER NOT NULL,
    last_login_ms      INTEGER,
    -- tokens issued (iat) before this second are revoked (password change, logout-all)
    tokens_valid_after INTEGER NOT NULL DEFAULT 0,
    -- the user's own claims (`jwtd user set-claims`): a JSON object, at most 4 KiB
    claims             TEXT    NOT NULL DEFAULT '{}'
);
INSERT INTO users_v2 (id, username, password, email, is_active, date_joined_ms, last_login_ms, tokens_valid_after)
    SELECT id, username, password, email, is_active, date_joined_ms, last_login_ms, tokens_valid_after FROM users;
-- keep AUTOINCREMENT's high-water mark: a deleted user's id is never handed out again (its tokens
-- would name the new user)
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'users_v2', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users_v2');
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'users'), 0))
    WHERE name = 'users_v2';
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users;
CREATE UNIQUE INDEX users_username ON users (username) WHERE username <> '';
-- e-mail sign-in matches case-insensitively (Django's email__iexact)
CREATE INDEX users_email ON users (lower(email));

CREATE TABLE groups (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT    NOT NULL UNIQUE
);
CREATE TABLE user_groups (
    user_id  INTEGER NOT NULL,
    group_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, group_id)
);

-- Facts about the database itself, e.g. user_id_type = int | uuid, fixed by the first start.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
