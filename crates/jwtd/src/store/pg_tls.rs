//! TLS to PostgreSQL, for the store and `jwtd import-django`: which mode applies (DATABASE_TLS,
//! else the URL's `sslmode`, else verify-full when DATABASE_CA_CERT is set, else none), and the
//! rustls client configuration that enforces it. tokio-postgres knows only `disable`, `prefer`
//! and `require`, so `sslmode` is taken out of the URL here and the certificate checks are
//! rustls's. Must not: fall back to plain TCP once TLS was asked for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{self, DatabaseTls};

/// What the TLS settings ask of a PostgreSQL connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgTls {
    /// DATABASE_TLS; `None`: the URL's `sslmode` decides.
    pub mode: Option<DatabaseTls>,
    /// DATABASE_CA_CERT; `None`: the Mozilla roots (webpki-roots) verify the server.
    pub ca_cert: Option<PathBuf>,
}

/// A connection configuration and the TLS connector that goes with it.
pub struct Prepared {
    pub config: tokio_postgres::Config,
    pub connector: MakeRustlsConnect,
    pub mode: DatabaseTls,
    /// The settings in effect (with the URL's `sslrootcert`), for [`PgTls::explain`].
    pub tls: PgTls,
}

/// The certificate of the server was refused, or the server speaks no TLS: never retried.
#[derive(Debug, thiserror::Error)]
#[error("TLS to PostgreSQL failed ({mode}{ca}); check the server's certificate, its host name in the URL, and DATABASE_CA_CERT")]
pub struct TlsRefused {
    mode: DatabaseTls,
    ca: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl PgTls {
    /// The mode that applies to `url`.
    pub fn mode_for(&self, url: &str) -> Result<DatabaseTls, String> {
        let from_url = config::sslmode(url)?;
        Ok(self.mode.or(from_url).unwrap_or(if self.ca_cert.is_some() || query_param(url, "sslrootcert").is_some() {
            DatabaseTls::VerifyFull
        } else {
            DatabaseTls::Disable
        }))
    }

    /// Parses `url` (without its `sslmode` and `sslrootcert`) and builds the connector for the
    /// mode that applies. libpq's `sslrootcert` in the URL is the CA when DATABASE_CA_CERT is unset
    /// (how `import-django --from` names the CA of a Django database).
    pub fn prepare(&self, url: &str) -> Result<Prepared, String> {
        let mode = self.mode_for(url)?;
        if self.ca_cert.is_none() {
            if let Some(path) = query_param(url, "sslrootcert") {
                let with_ca = PgTls { mode: Some(mode), ca_cert: Some(PathBuf::from(path)) };
                return with_ca.prepare(&without_params(url));
            }
        }
        let mut config: tokio_postgres::Config =
            without_params(url).parse().map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        config.ssl_mode(if mode == DatabaseTls::Disable { SslMode::Disable } else { SslMode::Require });
        let connector = MakeRustlsConnect::new(self.client_config(mode)?);
        Ok(Prepared { config, connector, mode, tls: self.clone() })
    }

    /// `err` explained when it is a failed TLS handshake (a refused certificate or name).
    pub fn explain(&self, mode: DatabaseTls, err: Box<dyn std::error::Error + Send + Sync>) -> TlsOr {
        if mode != DatabaseTls::Disable && is_tls_failure(err.as_ref()) {
            let ca = match &self.ca_cert {
                Some(path) => format!(", DATABASE_CA_CERT {}", path.display()),
                None if mode == DatabaseTls::VerifyFull => ", public roots".to_string(),
                None => String::new(),
            };
            TlsOr::Tls(TlsRefused { mode, ca, source: err })
        } else {
            TlsOr::Other(err)
        }
    }

    fn client_config(&self, mode: DatabaseTls) -> Result<ClientConfig, String> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let config = match mode {
            DatabaseTls::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            DatabaseTls::VerifyFull => builder.with_root_certificates(self.roots()?).with_no_client_auth(),
            DatabaseTls::Disable => builder.with_root_certificates(RootCertStore::empty()).with_no_client_auth(),
        };
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let Some(path) = &self.ca_cert else {
            return Ok(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() });
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|e| format!("DATABASE_CA_CERT: {}: {e}", path.display()))?;
        }
        Ok(roots)
    }
}

/// A TLS refusal, or any other error unchanged.
pub enum TlsOr {
    Tls(TlsRefused),
    Other(Box<dyn std::error::Error + Send + Sync>),
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("DATABASE_CA_CERT: cannot read PEM certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("DATABASE_CA_CERT: no certificate in {}", path.display()));
    }
    Ok(certs)
}

/// The value of `name` in `url`'s query.
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = url.split_once('?')?;
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// `url` without its `sslmode` and `sslrootcert` query parameters (tokio-postgres refuses
/// `verify-full` and does not know `sslrootcert`).
fn without_params(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else { return url.to_string() };
    let kept: Vec<&str> =
        query.split('&').filter(|kv| !matches!(kv.split('=').next(), Some("sslmode" | "sslrootcert"))).collect();
    if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    }
}

/// Whether a rustls error, or a server without TLS, is in `err`'s chain.
fn is_tls_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<tokio_rustls::rustls::Error>() || e.to_string().contains("server does not support TLS") {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>()) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// `require`: the connection is encrypted, the certificate is not checked (libpq's meaning);
/// the handshake's signatures still are.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_taken_out_of_the_url_and_decides_unless_the_setting_does() {
        let none = PgTls::default();
        assert_eq!(without_params("postgres://a@h/db?sslmode=verify-full"), "postgres://a@h/db");
        assert_eq!(without_params("postgres://a@h/db?x=1&sslmode=require&y=2"), "postgres://a@h/db?x=1&y=2");
        assert_eq!(without_params("postgres://a@h/db?sslrootcert=/ca.pem&sslmode=require"), "postgres://a@h/db");
        assert_eq!(none.mode_for("postgres://h/db?sslrootcert=/ca.pem").unwrap(), DatabaseTls::VerifyFull);
        assert_eq!(none.mode_for("postgres://h/db").unwrap(), DatabaseTls::Disable);
        assert_eq!(none.mode_for("postgres://h/db?sslmode=require").unwrap(), DatabaseTls::Require);
        let ca = PgTls { mode: None, ca_cert: Some("ca.pem".into()) };
        assert_eq!(ca.mode_for("postgres://h/db").unwrap(), DatabaseTls::VerifyFull);
        let set = PgTls { mode: Some(DatabaseTls::VerifyFull), ca_cert: None };
        assert_eq!(set.mode_for("postgres://h/db?sslmode=disable").unwrap(), DatabaseTls::VerifyFull);
        assert!(none.mode_for("postgres://h/db?sslmode=verify-ca").is_err());
    }
}
