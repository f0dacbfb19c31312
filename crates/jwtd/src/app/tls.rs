//! TLS_CERT and TLS_KEY: a rustls server configuration from PEM files (ring provider, TLS 1.2
//! and 1.3, ALPN h2 and http/1.1), whose certificate can be swapped while serving
//! ([`CertReloader::reload`], run on SIGHUP): connections already open keep theirs, new
//! handshakes get the new one, and a bad new pair is refused with the old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The certificate in use and the files it is read from.
#[derive(Debug, Clone)]
pub struct CertReloader {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<RwLock<Arc<CertifiedKey>>>,
}

impl CertReloader {
    /// Reads the files again; on success new handshakes use the new pair. On failure the pair in
    /// use stays, and the error names the setting.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = certified_key(&self.cert, &self.key, &self.provider)?;
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(fresh),
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Resolver(Arc<RwLock<Arc<CertifiedKey>>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.0.read() {
            Ok(current) => Some(current.clone()),
            Err(poisoned) => Some(poisoned.into_inner().clone()),
        }
    }
}

/// Reads the certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> Result<(TlsAcceptor, CertReloader), String> {
    let provider = Arc::new(ring::default_provider());
    let current = Arc::new(RwLock::new(Arc::new(certified_key(cert, key, &provider)?)));
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(current.clone())));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let reloader = CertReloader { cert: cert.to_path_buf(), key: key.to_path_buf(), provider, current };
    Ok((TlsAcceptor::from(Arc::new(config)), reloader))
}

fn certified_key(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("TLS_CERT: cannot read a PEM certificate from {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("TLS_CERT: no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("TLS_KEY: cannot read a PEM private key from {}: {e}", key.display()))?;
    CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| format!("TLS_CERT/TLS_KEY: the key does not fit the certificate or is unsupported: {e}"))
}
