//! Extractors: the Bearer-authenticated user and the client's address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

/// The user of a request's valid access token: `jwtd-verify`'s extractor, the one implementation
/// (signature, `alg`, expiry, type, revocation by its user or of its session; no database round
/// trip). Its refusals are SPEC §2's, from [`BearerError`](crate::service::BearerError).
pub use jwtd_verify::AuthUser;

/// The client's address, for throttles and logs: the connection's peer, or, when the peer is a
/// trusted proxy (TRUSTED_PROXIES), the rightmost address of `X-Forwarded-For` that is not a
/// trusted proxy. Only the entries appended by proxies we trust are believed: anything to the
/// left of the first untrusted hop was written by the client and may be forged. `None` when
/// the server was started without connect info (a router mounted in another app without
/// `into_make_service_with_connect_info`).
///
/// Use it wherever a request's client is counted or logged; the state needs
/// `TrustedProxies: FromRef<S>` (an [`AppState`](super::AppState) has it). The first extraction
/// of a request leaves its answer in the request's extensions, where later ones (and a host
/// application that resolved the client itself, inserting a `ClientAddr` first) find it.
/// Outside an extractor, [`ClientAddr::resolve`] does the same from a peer and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

/// TRUSTED_PROXIES: the networks whose `X-Forwarded-For` is believed. Empty: never.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<Vec<IpNet>>);

impl TrustedProxies {
    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&addr))
    }
}

impl ClientAddr {
    /// The client of a request from `peer` with these headers (see [`ClientAddr`]).
    pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, proxies: &TrustedProxies) -> ClientAddr {
        let Some(mut client) = peer else { return ClientAddr(None) };
        if proxies.0.is_empty() || !proxies.trusts(client) {
            return ClientAddr(Some(client));
        }
        // Every X-Forwarded-For line, in order, is one list (RFC 9110 §5.3); walk it from the right.
        let hops = headers.get_all(X_FORWARDED_FOR).iter().flat_map(|v| v.to_str().unwrap_or("").split(','));
        let hops: Vec<&str> = hops.collect();
        for hop in hops.into_iter().rev() {
            match parse_hop(hop) {
                Some(addr) => {
                    client = addr;
                    if !proxies.trusts(addr) {
                        break;
                    }
                }
                // Garbage where an address belongs: the proxy that wrote it is the client we know.
                None => break,
            }
        }
        ClientAddr(Some(client))
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(resolved) = parts.extensions.get::<ClientAddr>() {
            return Ok(*resolved);
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let resolved = ClientAddr::resolve(peer, &parts.headers, &TrustedProxies::from_ref(state));
        parts.extensions.insert(resolved);
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, forwarded: &[&str], proxies: &str) -> Option<IpAddr> {
        let mut headers = HeaderMap::new();
        for line in forwarded {
            headers.append(X_FORWARDED_FOR, line.parse().unwrap());
        }
        let proxies = TrustedProxies(Arc::new(crate::config::parse_networks(proxies).unwrap()));
        ClientAddr::resolve(Some(peer.parse().unwrap()), &headers, &proxies).0
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies_and_walked_from_the_right() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // No trusted proxies: the header is the client's own words.
        assert_eq!(client("203.0.113.9", &["1.2.3.4"], ""), ip("203.0.113.9"));
        // From an untrusted peer: ignored.
        assert_eq!(client("203.0.113.9", &["1.2.3.4"], "10.0.0.0/8"), ip("203.0.113.9"));
        // nginx at 10.0.0.2 appends the client; what the client wrote itself stays to the left.
        assert_eq!(client("10.0.0.2", &["6.6.6.6, 198.51.100.7"], "10.0.0.0/8"), ip("198.51.100.7"));
        // Two trusted hops, header split over lines.
        assert_eq!(client("10.0.0.2", &["6.6.6.6, 198.51.100.7", "10.0.0.3"], "10.0.0.0/8"), ip("198.51.100.7"));
        // Every hop trusted: the leftmost is the best we know.
        assert_eq!(client("10.0.0.2", &["10.0.0.5"], "10.0.0.0/8"), ip("10.0.0.5"));
        // Garbage stops the walk at the last proxy that wrote sense.
        assert_eq!(client("10.0.0.2", &["6.6.6.6, bogus"], "10.0.0.0/8"), ip("10.0.0.2"));
        // No header from a trusted proxy: the proxy itself.
        assert_eq!(client("10.0.0.2", &[], "10.0.0.2"), ip("10.0.0.2"));
        // Ports and IPv6, and an IPv4-mapped peer matching an IPv4 network.
        assert_eq!(client("::ffff:10.0.0.2", &["[2001:db8::1]:443"], "10.0.0.0/8"), ip("2001:db8::1"));
    }
}

/// The request's `User-Agent`, as a session records it (empty when absent or not visible ASCII,
/// cut to [`USER_AGENT_CHARS`](crate::store::USER_AGENT_CHARS) by the store's
/// [`SessionClient`](crate::store::SessionClient)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgent(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let cut: String = value.chars().take(crate::store::USER_AGENT_CHARS).collect();
        Ok(UserAgent(cut))
    }
}
