//! The value types of the user-shape settings (SPEC §3, §5): USERNAME_FIELD, USER_ID_TYPE and
//! TOKEN_CLAIMS, with their parsers and how `jwtd config check` shows them.

use std::fmt;

use super::values::Show;

/// USERNAME_FIELD: the field users sign in with (Django's `USERNAME_FIELD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginField {
    Username,
    /// Matched case-insensitively; stored as Django's `normalize_email`.
    Email,
}

impl LoginField {
    pub fn parse(s: &str) -> Result<LoginField, String> {
        match s.to_ascii_lowercase().as_str() {
            "username" => Ok(LoginField::Username),
            "email" => Ok(LoginField::Email),
            _ => Err(format!("expected username or email, got {s:?}")),
        }
    }

    /// The body field (and field-error key) of the login: `"username"` or `"email"`.
    pub fn name(self) -> &'static str {
        match self {
            LoginField::Username => "username",
            LoginField::Email => "email",
        }
    }
}

impl fmt::Display for LoginField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// USER_ID_TYPE: what tokens carry as the user id. Fixed for a database at its first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    Int,
    /// Django's `str(uuid)`: lowercase, hyphenated.
    Uuid,
}

impl IdType {
    pub fn parse(s: &str) -> Result<IdType, String> {
        match s.to_ascii_lowercase().as_str() {
            "int" => Ok(IdType::Int),
            "uuid" => Ok(IdType::Uuid),
            _ => Err(format!("expected int or uuid, got {s:?}")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IdType::Int => "int",
            IdType::Uuid => "uuid",
        }
    }
}

impl fmt::Display for IdType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A user field TOKEN_CLAIMS can write into tokens, under its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenClaim {
    Username,
    Email,
    FirstName,
    LastName,
    IsStaff,
    IsSuperuser,
    /// The user's group names, sorted.
    Groups,
}

impl TokenClaim {
    pub const ALL: [TokenClaim; 7] = [
        TokenClaim::Username,
        TokenClaim::Email,
        TokenClaim::FirstName,
        TokenClaim::LastName,
        TokenClaim::IsStaff,
        TokenClaim::IsSuperuser,
        TokenClaim::Groups,
    ];

    /// The claim's name, the field's name in Django's user model.
    pub fn name(self) -> &'static str {
        match self {
            TokenClaim::Username => "username",
            TokenClaim::Email => "email",
            TokenClaim::FirstName => "first_name",
            TokenClaim::LastName => "last_name",
            TokenClaim::IsStaff => "is_staff",
            TokenClaim::IsSuperuser => "is_superuser",
            TokenClaim::Groups => "groups",
        }
    }
}

/// Claims a token's issuer sets itself: no user field or user's own claim may take their name
/// (the user id claim, whatever USER_ID_CLAIM names, is refused beside these).
pub const REGISTERED_CLAIMS: [&str; 10] =
    ["token_type", "exp", "iat", "nbf", "jti", "aud", "iss", "sub", "sid", "refresh_exp"];

/// The user fields written into tokens (TOKEN_CLAIMS), in the order given, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims(pub Vec<TokenClaim>);

impl TokenClaims {
    /// A comma list of field names; empty: none.
    pub fn parse(s: &str) -> Result<TokenClaims, String> {
        let mut claims = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some(claim) = TokenClaim::ALL.into_iter().find(|c| c.name() == name) else {
                let known: Vec<_> = TokenClaim::ALL.iter().map(|c| c.name()).collect();
                return Err(format!("unknown user field {name:?}; expected some of {}", known.join(", ")));
            };
            if !claims.contains(&claim) {
                claims.push(claim);
            }
        }
        Ok(TokenClaims(claims))
    }

    pub fn contains(&self, claim: TokenClaim) -> bool {
        self.0.contains(&claim)
    }
}

impl Show for LoginField {
    fn show(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl Show for IdType {
    fn show(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl Show for TokenClaims {
    fn show(&self) -> Option<String> {
        Some(self.0.iter().map(|c| c.name()).collect::<Vec<_>>().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_claims_are_known_user_fields() {
        assert_eq!(
            TokenClaims::parse(" email, is_staff,groups,email").unwrap().0,
            vec![TokenClaim::Email, TokenClaim::IsStaff, TokenClaim::Groups]
        );
        assert_eq!(TokenClaims::parse("").unwrap(), TokenClaims::default());
        assert!(TokenClaims::parse("email,role").unwrap_err().contains("\"role\""));
    }
}
