-- jwtd schema, version 3: sessions (SPEC §1). A session is a refresh-token family; its id, 16 hex
-- digits, rides in the jti of every token issued in it (jwtd_proto::session).
--
-- Families made before this version have the 32 hex digits of a UUID as their id (or, imported
-- from Django, the token's jti): they are shortened to their first 16, the session id their
-- successors' jtis carry. Anything else (a jti of another shape) is left as it is.
UPDATE refresh_tokens SET family = substr(family, 1, 16)
    WHERE length(family) = 32 AND family ~ '^[0-9a-f]+$';

-- What a sign-in recorded of its session, and when it was last refreshed (written in batches, a
-- few seconds late). Families without one (tokens adopted from SimpleJWT) list their first row's
-- times and no client.
CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,  -- the family
    user_id      BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,     -- seconds
    last_used_at BIGINT  NOT NULL,     -- seconds
    user_agent   TEXT    NOT NULL DEFAULT '',
    ip           TEXT                  -- the client's address, as ClientAddr found it
);
CREATE INDEX sessions_user ON sessions (user_id);

-- A revocation of one session (its access tokens refused by every instance's in-memory set);
-- NULL: of every token of the user issued before valid_after.
ALTER TABLE revocations ADD COLUMN session TEXT;
