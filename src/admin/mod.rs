//! The admin listener: what an operator (or a probe) asks the daemon.
//!
//! [`probes`]: `/healthz` (alive), `/readyz` (store reachable, configuration loaded),
//! `/-/status` (JSON), `POST /-/reload` and `/metrics` (Prometheus). [`dashboard`]: the pages
//! an operator reads when an alert did not arrive. [`api`]: the same, as JSON, for the command
//! line's `--url`. It listens on loopback by default; with
//! `server.admin_token` set, every request must carry it, as a bearer token (probes, scripts)
//! or as the password of HTTP basic auth (browsers). [`guard`] refuses host names it does not
//! answer to (DNS rebinding) and state-changing requests from other sites.

mod api;
mod dashboard;
mod guard;
mod probes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::ingest::IngestState;
use crate::reload::Reloader;
use crate::store::Store;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    pub reloader: Reloader,
    pub store: Arc<dyn Store>,
    /// The webhook pipeline, for the dashboard's test events (sent through it for real).
    pub ingest: IngestState,
    /// Where the webhook listener is bound, for the hook URLs shown.
    pub hooks_addr: SocketAddr,
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(probes::ready))
        .route("/-/status", get(probes::status))
        .route("/-/reload", post(probes::reload))
        .route("/metrics", get(probes::metrics))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/events/{id}/replay", post(api::replay))
        .route("/api/v1/deliveries", get(api::deliveries))
        .route("/api/v1/deliveries/retry", post(api::retry_dead))
        .route("/api/v1/deliveries/dismiss", post(api::dismiss_dead))
        .route("/api/v1/deliveries/{id}/retry", post(api::retry_one))
        .route("/api/v1/deliveries/{id}/dismiss", post(api::dismiss_one))
        .route("/api/v1/rejected", get(api::rejected))
        .merge(dashboard::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        // Before the token: a cross-site POST gets 403, not a login prompt on the operator's screen.
        .route_layer(middleware::from_fn(guard::same_origin))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::known_host))
        .with_state(state)
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let config = state.reloader.live().load();
    let open_probe = config.server().open_probes && matches!(request.uri().path(), "/healthz" | "/readyz");
    if let Some(token) = config.server().admin_token.as_ref().filter(|_| !open_probe) {
        let presented =
            request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(presented_token);
        if !presented.is_some_and(|p| token.matches(&p)) {
            let body = json!({"result": "error", "error": "unauthorized", "message": "send the admin token as `Authorization: Bearer <token>`, or as the password of basic auth"});
            // The Basic challenge makes a browser ask for it; scripts send the bearer token.
            let challenge = [(header::WWW_AUTHENTICATE, r#"Basic realm="Switchboard", charset="UTF-8""#)];
            return (StatusCode::UNAUTHORIZED, challenge, axum::Json(body)).into_response();
        }
    }
    next.run(request).await
}

/// Where vendors reach the webhook listener: `server.public_url`; else the address it is bound
/// to, with the host the operator reached the dashboard by when it listens on all interfaces.
fn hook_base(config: &crate::config::Config, hooks: SocketAddr, dashboard_host: Option<&str>) -> String {
    if let Some(url) = &config.server().public_url {
        return url.clone();
    }
    let host = dashboard_host.map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name));
    match host {
        Some(host) if hooks.ip().is_unspecified() => format!("http://{host}:{}", hooks.port()),
        _ => format!("http://{hooks}"),
    }
}

/// The token in an `Authorization` header: `Bearer <token>`, or basic auth with the token as
/// password (any user name).
fn presented_token(header: &str) -> Option<String> {
    if let Some(token) = header.strip_prefix("Bearer ") {
        return Some(token.to_owned());
    }
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD.decode(header.strip_prefix("Basic ")?.trim()).ok()?;
    let (_user, password) =
        String::from_utf8(decoded).ok()?.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    Some(password)
}

#[cfg(test)]
mod tests {
    use super::presented_token;

    #[test]
    fn the_token_comes_as_bearer_or_as_the_basic_auth_password() {
        assert_eq!(presented_token("Bearer s3cret").as_deref(), Some("s3cret"));
        // "admin:s3cret"
        assert_eq!(presented_token("Basic YWRtaW46czNjcmV0").as_deref(), Some("s3cret"));
        assert_eq!(presented_token("Basic !!!"), None);
        assert_eq!(presented_token("Digest x"), None);
    }

    #[test]
    fn hook_urls_use_the_public_url_or_the_bound_address() {
        let config = crate::config::Config::embedded().unwrap();
        let bound: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(super::hook_base(&config, bound, Some("vps.example.com:8081")), "http://vps.example.com:8080");
        let loopback: std::net::SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(super::hook_base(&config, loopback, Some("localhost:8081")), "http://127.0.0.1:9000");
        let text = "[server]\npublic_url = \"https://hooks.example.com\"\n";
        let config = crate::config::Config::from_source(
            &crate::config::Source::embedded("config.toml", text),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        )
        .unwrap();
        assert_eq!(super::hook_base(&config, bound, None), "https://hooks.example.com");
    }
}
