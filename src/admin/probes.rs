//! Probes and machine endpoints: `/readyz`, `/-/status`, `POST /-/reload`, `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AdminState;
use crate::metrics as m;

/// How long `/readyz` waits for the store.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) async fn ready(State(state): State<AdminState>) -> Response {
    let reload = state.reloader.status();
    // A probe must get an answer even when the database hangs (a pool waiting to reconnect).
    let store = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("the store did not answer within {} s", READY_TIMEOUT.as_secs())),
    };
    let ready = store.is_ok();
    let body = json!({
        "ready": ready,
        "store": store.as_ref().map_or_else(Clone::clone, |()| "ok".to_owned()),
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

pub(super) async fn status(State(state): State<AdminState>) -> Response {
    let config = state.reloader.live().load();
    let vendors: Vec<_> = config
        .vendors()
        .iter()
        .map(|v| {
            json!({
                "name": v.name(),
                "title": v.title(),
                "hook_path": format!("/hooks/{}", v.name()),
                "hook_url": super::hook_base(&config, state.hooks_addr, None) + &format!("/hooks/{}", v.name()),
                "secret": config.vendor_settings(v.name()).secret.is_some(),
                "legacy_paths": v.legacy_paths().iter().map(|l| l.path.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let outputs: Vec<_> = config
        .outputs()
        .iter()
        .map(|(name, entry)| json!({ "name": name, "type": entry.kind, "enabled": entry.output.is_some() }))
        .collect();
    let routes: Vec<_> = config.routes().iter().map(|r| json!({ "name": r.name, "enabled": r.enabled })).collect();
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": { "origin": config.origin(), "reload": state.reloader.status() },
        "vendors": vendors,
        "outputs": outputs,
        "routes": routes,
    }))
    .into_response()
}

pub(super) async fn reload(State(state): State<AdminState>) -> Response {
    match state.reloader.reload("POST /-/reload").await {
        Ok(()) => axum::Json(json!({ "result": "ok" })).into_response(),
        Err(errors) => {
            let problems: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            let body = json!({ "result": "error", "message": "the new configuration was refused; the previous one keeps serving", "problems": problems });
            (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
        }
    }
}

pub(super) async fn metrics(State(state): State<AdminState>) -> Response {
    // Queue gauges are read at scrape time, so they are never staler than the scrape.
    let now = chrono::Utc::now();
    match state.store.queue_stats(now).await {
        Ok(queue) => {
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            let gauge = |count: u64| count as f64;
            metrics::gauge!(m::QUEUE_DEPTH).set(gauge(queue.pending));
            metrics::gauge!(m::QUEUE_DUE).set(gauge(queue.due));
            metrics::gauge!(m::DEAD_LETTERS).set(gauge(queue.dead));
            let age = queue.oldest_pending_at.map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
            metrics::gauge!(m::QUEUE_OLDEST_AGE).set(age);
        }
        Err(error) => tracing::warn!(message = "Could not read the queue for /metrics.", %error),
    }
    m::collect_process();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::handle().render()).into_response()
}
