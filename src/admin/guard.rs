//! What the admin listener refuses before any handler runs: a request for a host name it does
//! not answer to, and a state-changing request another site's page made the browser send.
//!
//! With the default loopback listener and no token, a web page the operator visits can rebind
//! its own name to 127.0.0.1 and then read `/status` (hook URLs with vendor secrets, customers'
//! messages) or press the dashboard's buttons: the browser believes it is talking to the page's
//! own site, so Origin equals Host. Such a request names the page's host, though, so only
//! loopback names, IP addresses (a rebinding needs a name) and `server.admin_hosts` are served;
//! others get 421 Misdirected Request. The probes and `/metrics` are exempt: they hold no secret
//! and no customer's data, and Prometheus or a Kubernetes probe may call the daemon by a
//! service name.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AdminState;

/// Refuses a request whose `Host` is not one the admin listener answers to.
pub(super) async fn known_host(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    // No Host at all (HTTP/1.0) cannot come from a browser; one that is not text is refused.
    let host = match request.headers().get(header::HOST).map(|v| v.to_str()) {
        None => "",
        Some(Ok(host)) if !host.trim().is_empty() => host,
        Some(_) => "(not a host name)",
    };
    let allowed = is_known_host(host, &state.reloader.live().load().server().admin_hosts);
    if !allowed {
        tracing::warn!(message = "Admin request for an unknown host name refused.", host);
        let body = json!({
            "result": "error",
            "error": "unknown_host",
            "message": format!(
                "the admin listener does not answer to `{host}`; add the name you reach it by to server.admin_hosts"
            ),
        });
        return (StatusCode::MISDIRECTED_REQUEST, axum::Json(body)).into_response();
    }
    next.run(request).await
}

/// Refuses a state-changing request that another site's page made the browser send: a browser
/// sends basic-auth credentials along with it.
pub(super) async fn same_origin(request: Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD && !is_same_origin(request.headers()) {
        let body = json!({
            "result": "error",
            "error": "cross_site",
            "message": "this action must come from the dashboard's own pages, or from a client that sends no Origin",
        });
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    next.run(request).await
}

/// A loopback name (`localhost`, `*.localhost`), an IP address, or one of `admin_hosts`; with
/// or without a port. No `Host` at all (HTTP/1.0) cannot come from a browser.
fn is_known_host(host: &str, admin_hosts: &[String]) -> bool {
    let host = host.trim();
    if host.is_empty() {
        return true;
    }
    let name = match host.strip_prefix('[') {
        Some(bracketed) => {
            let port_or_nothing = |rest: &str| {
                rest.is_empty() || rest.strip_prefix(':').is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()))
            };
            return bracketed
                .split_once(']')
                .is_some_and(|(ip, rest)| ip.parse::<std::net::Ipv6Addr>().is_ok() && port_or_nothing(rest));
        }
        None => host
            .rsplit_once(':')
            .map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || admin_hosts.contains(&name)
}

fn is_same_origin(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::HeaderName::from_static("sec-fetch-site")).is_some_and(|site| site == "cross-site") {
        return false;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        // Non-browser clients (curl, scripts) send no Origin; they authenticate explicitly.
        (None, _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn actions_from_other_sites_are_refused() {
        assert!(is_same_origin(&headers(&[("host", "127.0.0.1:8081"), ("origin", "http://127.0.0.1:8081")])));
        assert!(is_same_origin(&headers(&[("host", "127.0.0.1:8081")])), "curl sends no Origin");
        assert!(!is_same_origin(&headers(&[("host", "127.0.0.1:8081"), ("origin", "https://evil.example")])));
        assert!(!is_same_origin(&headers(&[("host", "127.0.0.1:8081"), ("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn only_loopback_names_addresses_and_configured_hosts_are_served() {
        let configured = ["switchboard.internal".to_owned()];
        for host in [
            "localhost:8081",
            "LOCALHOST",
            "dash.localhost:8081",
            "127.0.0.1:8081",
            "10.0.0.5",
            "[::1]:8081",
            "switchboard.internal:443",
            "switchboard.internal.",
            "",
        ] {
            assert!(is_known_host(host, &configured), "{host}");
        }
        for host in [
            "evil.example:8081",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "[evil]:80",
            "[::1]junk",
            "(not a host name)",
        ] {
            assert!(!is_known_host(host, &configured), "{host}");
        }
    }
}
