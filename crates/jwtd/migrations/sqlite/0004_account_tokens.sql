-- jwtd schema, version 4: accounts a person can recover (SPEC §1, §8). Password-reset and
-- activation links carry a random token; only its SHA-256 is kept here, with the user, what it is
-- for, when it expires, and a digest of the password hash it was issued against (a link stops
-- working once the password changes). A reset token is deleted when used; an activation token is
-- marked used, so presenting it again answers "Stale token" as djoser does.
CREATE TABLE account_tokens (
    digest     TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    purpose    TEXT    NOT NULL,
    bound      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX account_tokens_user ON account_tokens (user_id);
CREATE INDEX account_tokens_expiry ON account_tokens (expires_at);

-- Users who signed up with REQUIRE_EMAIL_VERIFICATION and have not activated yet: only they can
-- activate themselves or have the link sent again (an operator's deactivation stays).
CREATE TABLE pending_activations (
    user_id INTEGER PRIMARY KEY
);
