//! Where a webhook came from, for a vendor's `allow_from`: the peer's address, or — when the
//! peer is one of `server.trusted_proxies` — the sender its `X-Forwarded-For` names.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The sender's address. `X-Forwarded-For` is read right to left (each proxy appends the
/// address it received from), skipping trusted proxies; a header from an untrusted peer is
/// ignored, since anyone can write one.
pub fn sender(peer: Option<IpAddr>, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    Some(forwarded.iter().rev().find(|ip| !trusted(ip)).or(forwarded.first()).copied().unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        headers
    }

    #[test]
    fn a_trusted_proxy_names_the_sender() {
        let proxy = Some("10.0.0.5".parse().unwrap());
        let trusted = nets(&["10.0.0.0/24"]);
        // A client's own forged entry comes first; the proxy appended the real one last.
        let sender = sender(proxy, &headers("1.2.3.4, 198.51.100.7"), &trusted);
        assert_eq!(sender, Some("198.51.100.7".parse().unwrap()));
        let chained = super::sender(proxy, &headers("198.51.100.7, 10.0.0.9"), &trusted);
        assert_eq!(chained, Some("198.51.100.7".parse().unwrap()), "inner proxies are skipped");
        assert_eq!(super::sender(proxy, &HeaderMap::new(), &trusted), proxy, "no header: the peer");
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_another_address() {
        let peer = Some("203.0.113.9".parse().unwrap());
        assert_eq!(sender(peer, &headers("198.51.100.7"), &nets(&["10.0.0.0/8"])), peer);
        assert_eq!(sender(peer, &headers("198.51.100.7"), &[]), peer);
    }
}
