//! Ingest: the HTTP edge where vendors' webhooks arrive.
//!
//! Stage 1 of the pipeline (**ingest** → vendor → store → …). A request to `/hooks/{vendor}`
//! (or `/hooks/{vendor}/{secret}`, or a plugin's legacy path) is read within the size and time
//! limits, its secret is verified, the vendor plugin normalises it (an event of a plugin's
//! sequence, such as a Jivo call's `end`, with what the sequence's earlier events showed:
//! [`sequence`]), and the store makes the event durable. Only then does the vendor get its
//! 2xx. Every refusal is answered with a 4xx that names the problem and kept, with the request,
//! for the operator.

mod error;
pub mod request;
mod sequence;
mod source;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;

pub use error::IngestError;
pub use sequence::SequenceTurns;

use crate::metrics as m;
use request::InboundRequest;

use crate::config::Config;
use crate::event::EventId;
use crate::store::{Appended, NewEvent, Rejection, RequestRecord, Store};
use crate::vendor::{Echo, LegacyPath, ReplyBody, body, reply};

/// Response header carrying the stored event's id, for operators and tests.
pub const EVENT_ID_HEADER: &str = "x-switchboard-event-id";
/// Response header set when the vendor sent an event it had sent before.
pub const DUPLICATE_HEADER: &str = "x-switchboard-duplicate";

/// What the ingest handlers share.
#[derive(Clone)]
pub struct IngestState {
    /// The live configuration; a reload swaps it atomically.
    pub config: Arc<ArcSwap<Config>>,
    pub store: Arc<dyn Store>,
    /// Tells the delivery workers that new deliveries were stored.
    pub wake: crate::delivery::Wake,
    /// Orders the events of one vendor sequence (a call), so each is classified by the ones
    /// before it.
    pub sequences: Arc<SequenceTurns>,
}

/// The webhook router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so
/// rejected requests record the sender's address.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .route("/hooks/{vendor}", any(hook))
        .route("/hooks/{vendor}/{segment}", any(hook_with_segment))
        .route("/hooks/{vendor}/{secret}/{event}", any(hook_with_secret_and_event))
        .fallback(legacy_or_not_found)
        .with_state(state)
}

async fn hook(State(state): State<IngestState>, Path(vendor): Path<String>, request: Request) -> Response {
    receive(&state, Target { vendor, segments: Vec::new(), legacy: None }, request).await
}

async fn hook_with_segment(
    State(state): State<IngestState>,
    Path((vendor, segment)): Path<(String, String)>,
    request: Request,
) -> Response {
    receive(&state, Target { vendor, segments: vec![segment], legacy: None }, request).await
}

async fn hook_with_secret_and_event(
    State(state): State<IngestState>,
    Path((vendor, secret, event)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    receive(&state, Target { vendor, segments: vec![secret, event], legacy: None }, request).await
}

async fn legacy_or_not_found(State(state): State<IngestState>, request: Request) -> Response {
    let config = state.config.load();
    let Some((vendor, legacy)) = config.vendors.legacy(request.uri().path()) else {
        let body = serde_json::json!({
            "result": "error",
            "error": "not_found",
            "message": "no webhook endpoint at this path; vendors post to /hooks/<vendor>",
        });
        return (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let target = Target { vendor: vendor.name().to_owned(), segments: Vec::new(), legacy: Some(legacy.clone()) };
    drop(config);
    receive(&state, target, request).await
}

/// Where a request is going.
struct Target {
    vendor: String,
    /// The path's segments after `/hooks/<vendor>/`: a secret, an event, or both
    /// ([`Target::secret_and_event`]).
    segments: Vec<String>,
    legacy: Option<LegacyPath>,
}

impl Target {
    /// What the path's segments are: `<secret>`, `<secret>/<event>`, or — for a vendor that
    /// takes its event from the path and has no secret — `<event>`.
    ///
    /// # Errors
    /// Two segments for a vendor whose event is not in its path.
    fn secret_and_event(&self, config: &Config) -> Result<(Option<&str>, Option<&str>), IngestError> {
        let takes_event = config.vendors.get(&self.vendor).is_some_and(|vendor| vendor.takes_event_from_path());
        match self.segments.as_slice() {
            [] => Ok((None, None)),
            [event] if takes_event && config.vendor_settings(&self.vendor).secret.is_none() => Ok((None, Some(event))),
            [secret] => Ok((Some(secret), None)),
            [secret, event] if takes_event => Ok((Some(secret), Some(event))),
            [_, _, ..] => Err(IngestError::EventNotInPath(self.vendor.clone())),
        }
    }
}

// A span per webhook, formatted by the log subscriber whenever it is enabled, was ~2% of the
// daemon's CPU under load (BENCHMARKS.md, session 10): it is a `debug` span, and the lines
// logged at `info` and above name their vendor themselves.
#[tracing::instrument(
    name = "ingest",
    level = "debug",
    skip_all,
    fields(vendor = %target.vendor, event_id = tracing::field::Empty)
)]
async fn receive(state: &IngestState, target: Target, request: Request) -> Response {
    let received_at = Utc::now();
    let (parts, body) = request.into_parts();
    match accept(state, &target, &parts, body, received_at).await {
        Ok(response) => response,
        Err((error, raw_body)) => {
            let config = state.config.load();
            let secret = target.secret_and_event(&config).map_or(target.segments.first().map(String::as_str), |s| s.0);
            let record = request_record(&parts, secret);
            keep_rejection(state.store.as_ref(), &target, &error, record, raw_body, received_at).await;
            error.into_response()
        }
    }
}

async fn accept(
    state: &IngestState,
    target: &Target,
    parts: &Parts,
    body: Body,
    received_at: DateTime<Utc>,
) -> Result<Response, (IngestError, Bytes)> {
    let config = state.config.load_full();
    let fail = |error: IngestError| (error, Bytes::new());
    let vendor =
        config.vendors.get(&target.vendor).ok_or_else(|| fail(IngestError::UnknownVendor(target.vendor.clone())))?;
    if !vendor.accepts(&parts.method) {
        return Err(fail(IngestError::MethodNotAllowed {
            vendor: target.vendor.clone(),
            method: parts.method.to_string(),
        }));
    }
    let settings = config.vendor_settings(vendor.name());
    if !settings.allow_from.is_empty() {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let sender = source::sender(peer, &parts.headers, &config.server.trusted_proxies);
        if !sender.is_some_and(|ip| settings.allow_from.iter().any(|net| net.contains(&ip))) {
            let sender = sender.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
            return Err(fail(IngestError::SourceNotAllowed { vendor: target.vendor.clone(), sender }));
        }
    }
    let (path_secret, path_event) = target.secret_and_event(&config).map_err(fail)?;
    let raw_body = read_body(body, &parts.headers, config.server.body_limit_bytes, config.server.read_timeout).await?;
    let fail = |error: IngestError| (error, raw_body.clone());

    let query = body::query_pairs(parts.uri.query().unwrap_or_default());
    let presented =
        path_secret.or_else(|| query.iter().find(|(key, _)| key == "token").map(|(_, value)| value.as_str()));
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request = InboundRequest::new(parts.method.clone(), content_type, query.clone(), raw_body.clone())
        .verify(settings.secret.as_ref(), presented)
        .map_err(|e| fail(e.into()))?;

    let legacy_event = target.legacy.as_ref().and_then(|l| l.event.as_deref());
    let mut normalized = vendor
        .normalize(&request, path_event, legacy_event, EventId::new(received_at), received_at)
        .map_err(|e| fail(e.into()))?;
    let sequence::Recalled { turn: sequence_turn, anew } =
        sequence::recall(&state.sequences, state.store.as_ref(), vendor, &mut normalized).await.map_err(|e| {
            tracing::error!(
                message = "Could not read the event's sequence; the vendor is asked to retry.",
                vendor = %target.vendor, error = %e
            );
            fail(e.into())
        })?;
    tracing::Span::current().record("event_id", tracing::field::display(normalized.event.id));
    let (routes, deliveries) = crate::delivery::plan(&config, &normalized.event, received_at);
    let deliver = !deliveries.is_empty();
    // The reply depends only on the event: built now, so the event can move into the store.
    let echo = target.legacy.as_ref().map_or(Echo::None, |l| l.echo);
    let (status, reply) = reply::build(vendor, &settings.replies, &normalized.event, echo);
    let (event_name, kind) = (normalized.event.event.clone(), normalized.event.kind.clone());

    let appended = state
        .store
        .append(NewEvent {
            event: normalized.event,
            dedup_key: normalized.dedup_key,
            dedup_window: config.storage.dedup_window,
            anew,
            request: request_record(parts, path_secret),
            raw_body: raw_body.clone(),
            payload_from_body: normalized.payload_from_body,
            routes: routes.clone(),
            sequence_key: normalized.sequence.map(|sequence| sequence.key),
            deliveries,
        })
        .await
        .map_err(|e| {
            tracing::error!(
                message = "Could not store the event; the vendor is asked to retry.",
                vendor = %target.vendor, error = %e
            );
            fail(e.into())
        })?;
    // Stored: the sequence's next event may read this one now.
    drop(sequence_turn);
    if deliver && matches!(appended, Appended::Stored(_)) {
        // Only new deliveries are worth a look: a claim is a write, committed by the same
        // writer as the appends, so a needless one delays the next batch of webhooks.
        state.wake.notify();
    }
    let vendor_label = vendor.name().to_owned();
    match appended {
        Appended::Stored(id) => {
            tracing::debug!(message = "Event stored.", event_id = %id, event = %event_name, kind = %kind);
            metrics::counter!(m::WEBHOOKS_RECEIVED, "vendor" => vendor_label.clone(), "outcome" => "stored")
                .increment(1);
            metrics::counter!(m::EVENTS_STORED, "vendor" => vendor_label, "kind" => kind.to_string()).increment(1);
            // Counted here, not when routing: a vendor's retry is not another match.
            if routes.is_empty() {
                metrics::counter!(m::ROUTES_MATCHED, "route" => "unrouted").increment(1);
            }
            for route in &routes {
                metrics::counter!(m::ROUTES_MATCHED, "route" => route.clone()).increment(1);
            }
        }
        Appended::Duplicate(id) => {
            tracing::debug!(message = "Duplicate of a stored event; not stored again.", event_id = %id);
            metrics::counter!(m::WEBHOOKS_RECEIVED, "vendor" => vendor_label, "outcome" => "duplicate").increment(1);
        }
    }

    let mut response = match reply {
        ReplyBody::Json(json) => (status, axum::Json(json)).into_response(),
        ReplyBody::Text(text) => (status, text).into_response(),
        ReplyBody::Empty => status.into_response(),
    };
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&appended.id().to_string()) {
        headers.insert(EVENT_ID_HEADER, id);
    }
    if matches!(appended, Appended::Duplicate(_)) {
        headers.insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Reads the body within the size and time limits. On failure, what was read so far is kept
/// with the error, for the rejection record.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, (IngestError, Bytes)> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err((IngestError::TooLarge { limit }, Bytes::new()));
    }
    let mut buffer = BytesMut::new();
    let mut body = body;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| IngestError::BodyRead(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if buffer.len() + data.len() > limit {
                    return Err(IngestError::TooLarge { limit });
                }
                buffer.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(())) => Ok(buffer.freeze()),
        Ok(Err(error)) => Err((error, buffer.freeze())),
        Err(_) => Err((IngestError::Timeout { secs: timeout.as_secs() }, buffer.freeze())),
    }
}

/// Headers whose values are credentials: never stored or shown.
fn is_sensitive_header(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie" | "set-cookie")
        || ["token", "secret", "signature", "key", "password", "auth"].iter().any(|word| name.contains(word))
}

/// The request as it is kept: the path's secret, the `token` parameter and credential headers
/// masked.
fn request_record(parts: &Parts, path_secret: Option<&str>) -> RequestRecord {
    let path = match path_secret.filter(|secret| !secret.is_empty()) {
        Some(secret) => parts
            .uri
            .path()
            .split('/')
            .map(|segment| if segment == secret { "***" } else { segment })
            .collect::<Vec<_>>()
            .join("/"),
        None => parts.uri.path().to_owned(),
    };
    let query = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some(("token", _)) => "token=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value = if is_sensitive_header(name.as_str()) {
                "***".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    let remote_addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.to_string());
    RequestRecord { method: parts.method.to_string(), path, query, headers, remote_addr }
}

async fn keep_rejection(
    store: &dyn Store,
    target: &Target,
    error: &IngestError,
    request: RequestRecord,
    raw_body: Bytes,
    received_at: DateTime<Utc>,
) {
    let status = error.status();
    tracing::warn!(
        message = "Webhook rejected.",
        vendor = %target.vendor, status = status.as_u16(), reason = error.code(), detail = %error
    );
    // An unknown vendor's name comes from the URL: any string. Keep the label set closed.
    let vendor =
        if matches!(error, IngestError::UnknownVendor(_)) { "unknown".to_owned() } else { target.vendor.clone() };
    metrics::counter!(m::WEBHOOKS_RECEIVED, "vendor" => vendor, "outcome" => error.code()).increment(1);
    if matches!(error, IngestError::Store(_)) {
        // The store is what failed; the vendor will retry and the log above has the cause.
        return;
    }
    let rejection = Rejection {
        id: crate::event::monotonic_ulid(received_at),
        received_at,
        vendor: Some(target.vendor.clone()),
        status: status.as_u16(),
        reason: error.code().to_owned(),
        message: error.to_string(),
        request,
        raw_body,
    };
    if let Err(error) = store.reject(rejection).await {
        tracing::error!(message = "Could not keep the rejected request.", vendor = %target.vendor, %error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_mask_secrets() {
        let request = axum::http::Request::post("/hooks/jivo/s3cret?token=abc&x=1")
            .header("authorization", "Bearer abc")
            .header("x-api-key", "abc")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let record = request_record(&parts, Some("s3cret"));
        assert_eq!(record.path, "/hooks/jivo/***");
        assert_eq!(record.query, "token=***&x=1");
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("abc") && !text.contains("s3cret"), "{text}");
        assert!(text.contains("application/json"));
    }
}
