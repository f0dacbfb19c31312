//! The settings of mail and events (SPEC §5, §8): FRONTEND_URL, WEBHOOK_URL and WEBHOOK_SECRET,
//! SMTP_URL and EMAIL_FROM, PASSWORD_RESET_RATE. Parsed here, checked against each other in
//! `Settings::from_values`. Must not: send anything (that is `service::delivery`).

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;

use super::values::{Rate, Show};
use super::Secret;

/// PASSWORD_RESET_RATE: reset and activation-resend requests per account, then per client
/// address (`5/h,20/h`); one rate for both, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetRates {
    pub account: Option<Rate>,
    pub addr: Option<Rate>,
}

impl ResetRates {
    pub fn parse(s: &str) -> Result<ResetRates, String> {
        match s.split_once(',') {
            Some((account, addr)) => {
                Ok(ResetRates { account: Rate::parse(account.trim())?, addr: Rate::parse(addr.trim())? })
            }
            None => {
                let rate = Rate::parse(s.trim())?;
                Ok(ResetRates { account: rate, addr: rate })
            }
        }
    }
}

impl Show for ResetRates {
    fn show(&self) -> Option<String> {
        let one = |r: Option<Rate>| r.map(|r| r.to_string()).unwrap_or_else(|| "off".into());
        Some(format!("{},{}", one(self.account), one(self.addr)))
    }
}

/// An `http://` or `https://` URL with a host (WEBHOOK_URL, FRONTEND_URL); a trailing slash is
/// dropped so that links join with one.
pub fn parse_http_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s.trim()).map_err(|e| format!("not a URL ({e}): {s:?}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("expected an http:// or https:// URL, got {s:?}"));
    }
    Ok(s.trim().trim_end_matches('/').to_string())
}

/// WEBHOOK_SECRET: `whsec_` and the base64 of the key (Standard Webhooks), at least 24 bytes.
pub fn webhook_key(secret: &Secret) -> Result<Vec<u8>, String> {
    let text = secret.expose().trim();
    let b64 = text.strip_prefix("whsec_").ok_or("expected whsec_ followed by the base64 of the key")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the part after whsec_ is not base64".to_string())?;
    if key.len() < 24 {
        return Err(format!("the key is {} bytes; Standard Webhooks keys have 24 to 64", key.len()));
    }
    Ok(key)
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://`: STARTTLS, refused without it.
    StartTls,
    /// `smtp://` to a loopback address: STARTTLS when offered, else plain (a local relay).
    Opportunistic,
}

/// SMTP_URL: `smtp://[user:pass@]host[:port]` or `smtps://…`. `Debug` masks the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .finish()
    }
}

impl SmtpServer {
    pub fn parse(secret: &Secret) -> Result<SmtpServer, String> {
        let url = url::Url::parse(secret.expose().trim()).map_err(|e| format!("not a URL: {e}"))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err("the URL names no host".into()),
        };
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
        let (tls, default_port) = match url.scheme() {
            "smtps" => (SmtpTls::Implicit, 465),
            "smtp" if loopback => (SmtpTls::Opportunistic, 25),
            "smtp" => (SmtpTls::StartTls, 587),
            other => return Err(format!("expected smtp:// (STARTTLS) or smtps:// (TLS), got {other}://")),
        };
        let decode =
            |s: &str| percent_decode(s).ok_or_else(|| "the user or password is not valid percent-encoding".to_string());
        let user = if url.username().is_empty() { None } else { Some(decode(url.username())?) };
        let password = url.password().map(decode).transpose()?.map(Secret::new);
        Ok(SmtpServer { host, port: url.port().unwrap_or(default_port), tls, user, password })
    }
}

/// `%XX` escapes of a URL's user or password, decoded as UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where mails and events go (SPEC §8), validated: what `service::delivery` is built from.
#[derive(Debug, Clone, Default)]
pub struct DeliverySettings {
    /// FRONTEND_URL, without a trailing slash.
    pub frontend_url: Option<String>,
    pub webhook: Option<WebhookTarget>,
    pub smtp: Option<SmtpTarget>,
}

impl DeliverySettings {
    /// Whether anything is delivered: with neither WEBHOOK_URL nor SMTP_URL the reset and
    /// activation routes answer 404 (SPEC §8).
    pub fn enabled(&self) -> bool {
        self.webhook.is_some() || self.smtp.is_some()
    }
}

/// WEBHOOK_URL with its key. `Debug` masks the key.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub key: Vec<u8>,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget").field("url", &self.url).field("key", &"****").finish()
    }
}

/// SMTP_URL and EMAIL_FROM.
#[derive(Debug, Clone)]
pub struct SmtpTarget {
    pub server: SmtpServer,
    pub from: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_say_how_the_connection_is_protected() {
        let s = SmtpServer::parse(&Secret::new("smtp://ada%40x:p%2Fw@mail.example.org")).unwrap();
        assert_eq!((s.host.as_str(), s.port, s.tls), ("mail.example.org", 587, SmtpTls::StartTls));
        assert_eq!(s.user.as_deref(), Some("ada@x"));
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("p/w"));
        assert!(!format!("{s:?}").contains("p/w"));
        let s = SmtpServer::parse(&Secret::new("smtps://mail.example.org")).unwrap();
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        let s = SmtpServer::parse(&Secret::new("smtp://127.0.0.1:2525")).unwrap();
        assert_eq!((s.port, s.tls), (2525, SmtpTls::Opportunistic));
        assert!(SmtpServer::parse(&Secret::new("http://mail.example.org")).is_err());
    }

    #[test]
    fn webhook_secrets_are_standard_webhooks_keys() {
        let key = webhook_key(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap();
        assert_eq!(key.len(), 24);
        assert!(webhook_key(&Secret::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).is_err());
        assert!(webhook_key(&Secret::new("whsec_c2hvcnQ=")).is_err());
    }

    #[test]
    fn reset_rates_are_per_account_then_per_address() {
        let r = ResetRates::parse("5/h,20/h").unwrap();
        assert_eq!((r.account.unwrap().count, r.addr.unwrap().count), (5, 20));
        assert_eq!(ResetRates::parse("off").unwrap(), ResetRates { account: None, addr: None });
        assert_eq!(r.show().unwrap(), "5/h,20/h");
    }
}
