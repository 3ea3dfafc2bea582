//! The admin listener: what an operator (or a probe) asks the daemon.
//!
//! `/healthz` (alive), `/readyz` (store reachable, configuration current), `/-/status` (what is
//! loaded, reload state, hook URLs), `POST /-/reload` and `/metrics` (Prometheus). It listens on
//! loopback by default; with `server.admin_token` set, every request must carry it as a bearer
//! token.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::reload::Reloader;
use crate::store::Store;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    pub reloader: Reloader,
    pub store: Arc<dyn Store>,
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/-/status", get(status))
        .route("/-/reload", post(reload))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let config = state.reloader.live().load();
    if let Some(token) = &config.server.admin_token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !presented.is_some_and(|p| token.matches(p)) {
            let body = json!({"result": "error", "error": "unauthorized", "message": "send the admin token as `Authorization: Bearer <token>`"});
            return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
    }
    next.run(request).await
}

async fn ready(State(state): State<AdminState>) -> Response {
    let reload = state.reloader.status();
    let store = state.store.ping().await;
    let ready = store.is_ok();
    let body = json!({
        "ready": ready,
        "store": store.as_ref().map_or_else(|e| e.to_string(), |()| "ok".to_owned()),
        "config": {
            "loaded_at": reload.loaded_at,
            // A failed reload does not make the daemon unready (the previous configuration
            // serves), but it is shown so a probe's log says why edits did not take.
            "last_reload_error": reload.last_error,
        },
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn status(State(state): State<AdminState>) -> Response {
    let config = state.reloader.live().load();
    let vendors: Vec<_> = config
        .vendors
        .iter()
        .map(|v| {
            json!({
                "name": v.name(),
                "title": v.title(),
                "hook_path": format!("/hooks/{}", v.name()),
                "secret": config.vendor_settings(v.name()).secret.is_some(),
                "legacy_paths": v.legacy_paths().iter().map(|l| l.path.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let outputs: Vec<_> = config
        .outputs
        .iter()
        .map(|(name, entry)| json!({ "name": name, "type": entry.kind, "enabled": entry.output.is_some() }))
        .collect();
    let routes: Vec<_> = config.routes.iter().map(|r| json!({ "name": r.name, "enabled": r.enabled })).collect();
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": { "origin": config.origin, "reload": state.reloader.status() },
        "vendors": vendors,
        "outputs": outputs,
        "routes": routes,
    }))
    .into_response()
}

async fn reload(State(state): State<AdminState>) -> Response {
    match state.reloader.reload("POST /-/reload").await {
        Ok(()) => axum::Json(json!({ "result": "ok" })).into_response(),
        Err(errors) => {
            let problems: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            let body = json!({ "result": "error", "message": "the new configuration was refused; the previous one keeps serving", "problems": problems });
            (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
        }
    }
}

async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::handle().render()).into_response()
}
