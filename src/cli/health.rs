//! `switchboard health`: asks a running daemon's `/readyz` whether it is ready, and exits 0 if
//! so and 1 if not (or if nothing answers) — what a container's `HEALTHCHECK` runs, since the
//! distroless image has no curl.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::ServerSettings;

/// How long the probe waits: a health check that hangs is a failed one.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The readiness URL for the admin listener `server` describes: its address, with a wildcard
/// one asked on loopback.
pub fn readiness_url(server: &ServerSettings) -> Option<String> {
    let admin = server.admin_listen?;
    let addr = if admin.ip().is_unspecified() {
        let loopback = if admin.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        SocketAddr::new(loopback, admin.port())
    } else {
        admin
    };
    Some(format!("http://{addr}/readyz"))
}

/// Whether `url` answers 200, and what it said.
pub async fn probe(url: &str, server: &ServerSettings) -> (bool, String) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => return (false, format!("cannot build an HTTP client: {error}")),
    };
    let mut request = client.get(url);
    if let Some(token) = server.admin_token.as_ref().filter(|_| !server.open_probes) {
        request = request.bearer_auth(token.expose());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            (status.is_success(), format!("{url}: {status} {body}"))
        }
        Err(error) => (false, format!("{url}: no answer: {}", crate::outputs::error_chain(&error))),
    }
}
