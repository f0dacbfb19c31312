//! The token keys a server starts with (SPEC §5: ALGORITHM, SIGNING_KEY, SIGNING_KEY_FALLBACKS,
//! VERIFYING_KEY, PREVIOUS_VERIFYING_KEYS), parsed and checked once, so that a wrong key stops the start with a
//! message naming its setting instead of failing on the first request. Key material never
//! appears in these messages.

use tracing::info;

use super::StartError;
use crate::config::Settings;
use crate::store::Store;
use crate::tokens::keys::{self, KeyKind};
use crate::tokens::{Codec, KeyError, Policy, PrivateKey, PublicKey};

const HMAC_KEY_NAME: &str = "hmac_signing_key";

fn policy(settings: &Settings) -> Policy {
    Policy { audience: settings.audience.clone(), issuer: settings.issuer.clone(), leeway: settings.leeway }
}

fn refused(setting: &str, e: impl std::fmt::Display) -> StartError {
    StartError::Key(format!("{setting}: {e}"))
}

/// The codec of `settings`. Without SIGNING_KEY, a key is generated on first start and kept in
/// the database (SPEC §5), so restarts keep tokens valid.
pub async fn codec(settings: &Settings, store: &dyn Store) -> Result<Codec, StartError> {
    let alg = settings.algorithm;
    let Some(kind) = KeyKind::of(alg) else {
        let secret = match &settings.signing_key {
            Some(key) => key.expose().as_bytes().to_vec(),
            None => {
                let mut fresh = vec![0u8; 64];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
                store.secret_or_insert(HMAC_KEY_NAME, fresh).await.map_err(StartError::Store)?
            }
        };
        return hmac_codec(settings, &secret);
    };
    let private_pem = match &settings.signing_key {
        Some(key) => key.expose().as_bytes().to_vec(),
        None => {
            // Generating costs nothing for EC and Ed25519 and a moment for RSA; a key already
            // kept in the database wins over the fresh one.
            let fresh = tokio::task::spawn_blocking(move || keys::generate(alg, &mut rand::rngs::OsRng))
                .await
                .map_err(|e| refused("SIGNING_KEY", e))?
                .map_err(|e| refused("SIGNING_KEY", e))?;
            let name = format!("{}_signing_key_pkcs8", kind.name());
            let kept =
                store.secret_or_insert(&name, fresh.private_pem.into_bytes()).await.map_err(StartError::Store)?;
            info!(alg = %alg, "SIGNING_KEY unset: signing with the key kept in the database");
            kept
        }
    };
    asymmetric_codec(settings, &private_pem)
}

/// The codec of an HMAC algorithm: signs with `secret` only, verifies with it and with
/// SIGNING_KEY_FALLBACKS.
fn hmac_codec(settings: &Settings, secret: &[u8]) -> Result<Codec, StartError> {
    let fallbacks: Vec<&[u8]> = settings.signing_key_fallbacks.iter().map(|s| s.expose().as_bytes()).collect();
    Codec::from_secrets(settings.algorithm, secret, &fallbacks, policy(settings)).map_err(|e| refused("SIGNING_KEY", e))
}

/// The codec of an asymmetric algorithm from the private key's PEM: the key must suit ALGORITHM
/// (and RSA have at least 2048 bits), VERIFYING_KEY, when set, must be its public half, and each
/// of PREVIOUS_VERIFYING_KEYS must suit ALGORITHM too.
pub fn asymmetric_codec(settings: &Settings, private_pem: &[u8]) -> Result<Codec, StartError> {
    let alg = settings.algorithm;
    let signing = PrivateKey::from_pem(alg, private_pem).map_err(|e| refused("SIGNING_KEY", e))?;
    if let Some(configured) = &settings.verifying_key {
        let public = PublicKey::from_pem(alg, configured.pem.as_bytes()).map_err(|e| refused("VERIFYING_KEY", e))?;
        signing.check_pair(&public).map_err(|e| match e {
            KeyError::Mismatch => refused("VERIFYING_KEY", "is not the public key of SIGNING_KEY"),
            other => refused("VERIFYING_KEY", other),
        })?;
    }
    let previous = settings
        .previous_verifying_keys
        .iter()
        .map(|key| {
            PublicKey::from_pem(alg, key.pem.as_bytes())
                .map_err(|e| refused("PREVIOUS_VERIFYING_KEYS", format!("{}: {e}", key.origin())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Codec::from_keys(&signing, previous, policy(settings)))
}

/// Checks the configured keys without a database (`jwtd config check`): `Ok(None)` when the
/// signing key is the one generated and kept in the database, else the current key's `kid`
/// (`None` for HMAC, whose tokens carry no `kid`).
pub fn check(settings: &Settings) -> Result<Option<String>, StartError> {
    let Some(key) = &settings.signing_key else {
        return Ok(None);
    };
    if settings.algorithm.is_hmac() {
        hmac_codec(settings, key.expose().as_bytes())?;
        return Ok(None);
    }
    Ok(asymmetric_codec(settings, key.expose().as_bytes())?.kid().map(String::from))
}
