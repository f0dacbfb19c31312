//! SERVICE_TOKENS: the secrets of the services allowed to introspect tokens and read the
//! revocation feed. Kept as SHA-256 digests and compared in constant time, every configured
//! token each time, so neither a presented token's length nor which one matched shows in timing.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::Secret;

/// The configured service tokens (none: the routes that need one are not served).
#[derive(Clone, Default)]
pub struct ServiceTokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceTokens({} configured)", self.digests.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl ServiceTokens {
    pub fn new(secrets: &[Secret]) -> Self {
        ServiceTokens { digests: secrets.iter().map(|s| digest(s.expose())).collect() }
    }

    /// Whether `presented` is one of the tokens.
    pub fn admits(&self, presented: &str) -> bool {
        let presented = digest(presented);
        let mut admitted = Choice::from(0);
        for known in &self.digests {
            admitted |= known.ct_eq(&presented);
        }
        admitted.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_token_is_admitted() {
        let a = "a".repeat(32);
        let b = "b".repeat(40);
        let tokens = ServiceTokens::new(&[Secret::new(a.clone()), Secret::new(b.clone())]);
        assert!(tokens.admits(&a) && tokens.admits(&b));
        assert!(!tokens.admits(&a[..31]) && !tokens.admits("") && !tokens.admits(&format!("{a} ")));
        assert!(!ServiceTokens::default().admits(""));
        assert_eq!(format!("{tokens:?}"), "ServiceTokens(2 configured)");
    }
}
