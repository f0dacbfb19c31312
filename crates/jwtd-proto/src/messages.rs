//! Every text a client can read in an error body (SPEC §2), as SimpleJWT, DRF and Django word
//! them, plus jwtd's own for faults and transport limits: the server writes its answers from
//! these, its OpenAPI document lists them, and clients may match on them. A text with a part that
//! varies per answer is a [`Template`].

use std::fmt::Display;

/// A text with one part that varies per answer: `before`, the part, `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// What comes before the varying part.
    pub before: &'static str,
    /// What comes after it.
    pub after: &'static str,
}

impl Template {
    /// The text with `part` filled in.
    pub fn fill(&self, part: impl Display) -> String {
        format!("{}{part}{}", self.before, self.after)
    }
}

// --- SimpleJWT: the token views and the Bearer authentication.

/// Refresh/verify/blacklist of a bad token.
pub const TOKEN_INVALID: &str = "Token is invalid or expired";
/// Refresh/verify/blacklist of a blacklisted token; also the reason of a revoked access token.
pub const TOKEN_BLACKLISTED: &str = "Token is blacklisted";
/// The `code` of token errors.
pub const TOKEN_NOT_VALID: &str = "token_not_valid";
/// Bad credentials or inactive user on sign-in.
pub const NO_ACTIVE_ACCOUNT: &str = "No active account found with the given credentials";
/// Protected route without credentials.
pub const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
/// Protected route with a bad token.
pub const GIVEN_TOKEN_NOT_VALID: &str = "Given token not valid for any token type";
/// An `Authorization` header that is not `<type> <token>`.
pub const BAD_AUTHORIZATION_HEADER: &str = "Authorization header must contain two space-delimited values";
/// The `code` of [`BAD_AUTHORIZATION_HEADER`].
pub const BAD_AUTHORIZATION_HEADER_CODE: &str = "bad_authorization_header";
/// An access token without the user id claim.
pub const NO_USER_ID: &str = "Token contained no recognizable user identification";
/// The user of a valid access token no longer exists.
pub const USER_NOT_FOUND: &str = "User not found";
/// The `code` of [`USER_NOT_FOUND`].
pub const USER_NOT_FOUND_CODE: &str = "user_not_found";
/// The user of a valid access token is inactive.
pub const USER_INACTIVE: &str = "User is inactive";
/// The `code` of [`USER_INACTIVE`].
pub const USER_INACTIVE_CODE: &str = "user_inactive";
/// `token_class` of a refused Bearer token's `messages`.
pub const ACCESS_TOKEN_CLASS: &str = "AccessToken";
/// `token_type` of a refused Bearer token's `messages`.
pub const ACCESS_TOKEN_TYPE: &str = "access";
/// `token_class` of a refused Bearer token's `messages`, for sliding tokens (AUTH_TOKEN_CLASSES).
pub const SLIDING_TOKEN_CLASS: &str = "SlidingToken";
/// `token_type` of [`SLIDING_TOKEN_CLASS`].
pub const SLIDING_TOKEN_TYPE: &str = "sliding";
/// `token_class` of refresh tokens (never accepted as Bearer).
pub const REFRESH_TOKEN_CLASS: &str = "RefreshToken";
/// `token_type` of [`REFRESH_TOKEN_CLASS`].
pub const REFRESH_TOKEN_TYPE: &str = "refresh";

// --- SimpleJWT: why a token was refused (`message` of a refused Bearer token).

/// The token's `exp` is past.
pub const TOKEN_EXPIRED: &str = "Token is expired";
/// The token has no `exp`.
pub const TOKEN_NO_EXP: &str = "Token has no 'exp' claim";
/// The token has no `jti`.
pub const TOKEN_NO_ID: &str = "Token has no id";
/// The token has no `token_type`.
pub const TOKEN_NO_TYPE: &str = "Token has no type";
/// The token is of another type than the view takes.
pub const TOKEN_WRONG_TYPE: &str = "Token has wrong type";
/// Any other reason: malformed, bad signature, wrong audience or issuer…
pub const TOKEN_IS_INVALID: &str = "Token is invalid";

// --- DRF: field errors (`{"field": ["…"]}`).

/// A required field is absent.
pub const REQUIRED: &str = "This field is required.";
/// A field is an empty string.
pub const BLANK: &str = "This field may not be blank.";
/// A field is null.
pub const NULL: &str = "This field may not be null.";
/// A field is a list, object or boolean.
pub const NOT_A_STRING: &str = "Not a valid string.";
/// A field holds a NUL character.
pub const NULL_CHARACTERS: &str = "Null characters are not allowed.";
/// The JSON body is `null` (under `non_field_errors`).
pub const NO_DATA: &str = "No data provided";
/// Sign-up: the username is taken (Django's `unique` error).
pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
/// Sign-up with USERNAME_FIELD=email: the address (compared case-insensitively) is taken
/// (the reference project's serializer).
pub const EMAIL_TAKEN: &str = "A user with that email already exists.";
/// Sign-up: a username over 150 characters.
pub const USERNAME_TOO_LONG: &str = "Ensure this field has no more than 150 characters.";
/// Sign-up and password change: a password under 8 characters.
pub const PASSWORD_TOO_SHORT: &str = "Ensure this field has at least 8 characters.";
/// Sign-up: not an e-mail address.
pub const INVALID_EMAIL: &str = "Enter a valid email address.";
/// Sign-up: an e-mail address over 254 characters.
pub const EMAIL_TOO_LONG: &str = "Ensure this field has no more than 254 characters.";
/// Password change: the old password is wrong.
pub const WRONG_PASSWORD: &str = "Wrong password.";
/// djoser's `INVALID_UID_ERROR`: a reset or activation `uid` that names no user.
pub const INVALID_UID: &str = "Invalid user id or user doesn't exist.";
/// djoser's `INVALID_TOKEN_ERROR`: a reset or activation token that is wrong, used or expired.
pub const INVALID_LINK_TOKEN: &str = "Invalid token for given user.";
/// djoser's `STALE_TOKEN_ERROR` (403): an activation link of a user who is active already.
pub const STALE_TOKEN: &str = "Stale token for given user.";

// --- DRF: the request itself (`{"detail": "…"}`).

/// A body that is not JSON; the part is the parser's message.
pub const JSON_PARSE_ERROR: Template = Template { before: "JSON parse error - ", after: "" };
/// A JSON body that is not an object (under `non_field_errors`); the part is Python's type name.
pub const NOT_A_DICT: Template = Template { before: "Invalid data. Expected a dictionary, but got ", after: "." };
/// A form or multipart body that cannot be parsed, or a body that cannot be read.
pub const MALFORMED_REQUEST: &str = "Malformed request.";
/// A content type no parser takes; the part is the media type.
pub const UNSUPPORTED_MEDIA_TYPE: Template = Template { before: "Unsupported media type \"", after: "\" in request." };
/// A method the path does not serve; the part is the method.
pub const METHOD_NOT_ALLOWED: Template = Template { before: "Method \"", after: "\" not allowed." };
/// A path no route serves.
pub const NOT_FOUND: &str = "Not found.";
/// DRF's `IntegerField`: a query parameter that is not an integer (the revocation feed's `after`).
pub const INVALID_INTEGER: &str = "A valid integer is required.";
/// DRF's `TokenAuthentication`: a service token (SERVICE_TOKENS) that is not one of them.
pub const INVALID_SERVICE_TOKEN: &str = "Invalid token.";
/// The `WWW-Authenticate` error of a claim guard's 403 (RFC 6750 §3.1).
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
/// DRF's `PermissionDenied`: sign-up while SIGNUP is closed.
pub const PERMISSION_DENIED: &str = "You do not have permission to perform this action.";
/// Too many failed sign-ins; the part is `N second` or `N seconds`.
pub const THROTTLED: Template = Template { before: "Request was throttled. Expected available in ", after: "." };
/// Cookie mode: a browser request from another origin (Django's CSRF origin check); the part
/// is the origin.
pub const CSRF_FAILED: Template =
    Template { before: "CSRF Failed: Origin checking failed - ", after: " does not match any trusted origins." };

// --- jwtd: faults of the server's own and transport limits.

/// Body over MAX_BODY_BYTES.
pub const BODY_TOO_LARGE: &str = "Request body too large.";
/// Request line and headers over the header size limit (431).
pub const HEADERS_TOO_LARGE: &str = "Request header fields too large.";
/// The body did not arrive within the body deadline (408).
pub const BODY_TIMED_OUT: &str = "Timed out reading the request body.";
/// The answer took longer than the request timeout (503).
pub const REQUEST_TIMED_OUT: &str = "Request timed out, try again later.";
/// Too many requests in flight, for longer than the queue timeout (503, `Retry-After`).
pub const BUSY: &str = "Server is busy, try again later.";
/// The database is away, or too many sign-ins are waiting (503).
pub const UNAVAILABLE: &str = "Service temporarily unavailable, try again later.";
/// Any other fault of the server's own (500); the cause is logged, never sent.
pub const SERVER_ERROR: &str = "A server error occurred.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_their_part() {
        assert_eq!(METHOD_NOT_ALLOWED.fill("GET"), "Method \"GET\" not allowed.");
        assert_eq!(THROTTLED.fill("1 second"), "Request was throttled. Expected available in 1 second.");
        assert_eq!(JSON_PARSE_ERROR.fill("x"), "JSON parse error - x");
    }
}
