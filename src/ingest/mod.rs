//! Ingest: the HTTP edge where vendors' webhooks arrive.
//!
//! Stage 1 of the pipeline (**ingest** → plugin → router → store → …). A request to `/hooks/{vendor}`
//! (or `/hooks/{vendor}/{secret}`, or a plugin's legacy path) is read within the size and time
//! limits, its secret is verified, the vendor plugin normalises it (an event of a plugin's
//! sequence, such as a Jivo call's `end`, with what the sequence's earlier events showed:
//! [`sequence`]), and the store makes the event durable. Only then does the vendor get its
//! 2xx ([`process`]). Every refusal is answered with a 4xx that names the problem and kept, with
//! the request, for the operator ([`rejection`]), who can have it processed again once its
//! cause is fixed ([`reprocess`]).

mod error;
mod process;
mod rejection;
mod reprocess;
mod sequence;
mod settings;
mod source;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;

pub use error::{IngestError, REASONS};
pub use reprocess::{ReprocessError, not_reprocessable, rejection_summary, reprocess};
pub use sequence::SequenceTurns;
pub use settings::{IngestConfig, LiveConfig};

use crate::plugin::request::InboundRequest;
pub use rejection::malformed_reporter;
use rejection::{keep_rejection, request_record};

use crate::body;
use crate::plugin::LegacyPath;
use crate::store::EventLog;

/// Response header carrying the stored event's id, for operators and tests.
pub const EVENT_ID_HEADER: &str = "x-switchboard-event-id";
/// Response header set when the vendor sent an event it had sent before.
pub const DUPLICATE_HEADER: &str = "x-switchboard-duplicate";

/// What the ingest handlers share.
#[derive(Clone)]
pub struct IngestState {
    /// The live configuration; a reload swaps it atomically.
    pub config: Arc<dyn LiveConfig>,
    pub store: Arc<dyn EventLog>,
    /// Tells the delivery workers that new deliveries were stored.
    pub wake: crate::store::Wake,
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
    let config = state.config.current();
    let Some((vendor, legacy)) = config.vendors().legacy(request.uri().path()) else {
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
    fn secret_and_event(&self, config: &dyn IngestConfig) -> Result<(Option<&str>, Option<&str>), IngestError> {
        let takes_event = config.vendors().get(&self.vendor).is_some_and(|vendor| vendor.takes_event_from_path());
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
// daemon's CPU under load (BENCHMARKS.md, "What made it fast"): it is a `debug` span, and the lines
// logged at `info` and above name their vendor themselves.
#[tracing::instrument(
    name = "ingest",
    level = "debug",
    skip_all,
    fields(vendor = %target.vendor, event_id = tracing::field::Empty)
)]
async fn receive(state: &IngestState, target: Target, request: Request) -> Response {
    let received_at = Utc::now();
    let started = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let config = state.config.current();
    let path_has_secret =
        target.secret_and_event(config.as_ref()).map_or(!target.segments.is_empty(), |(secret, _)| secret.is_some());
    let response = match accept(state, &target, &parts, body, received_at).await {
        Ok(response) => response,
        Err(Refused { error, body, proven }) => {
            let record = request_record(&parts, path_has_secret);
            keep_rejection(state.store.as_ref(), &target, &error, record, body, proven, received_at).await;
            error.into_response()
        }
    };
    // Labels from closed sets only: a path no plugin serves is `unknown`, not its own series.
    let vendor = if config.vendors().get(&target.vendor).is_some() { target.vendor.clone() } else { "unknown".into() };
    metrics::histogram!(crate::metrics::INGEST_DURATION, "vendor" => vendor, "status" => status_label(response.status()))
        .record(started.elapsed().as_secs_f64());
    // One line a webhook, its own target so it can be turned down alone
    // (`RUST_LOG=switchboard::access=warn`); the secret in the path is masked.
    if tracing::enabled!(target: "switchboard::access", tracing::Level::INFO) {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let remote = source::sender(peer, &parts.headers, config.trusted_proxies());
        tracing::info!(
            target: "switchboard::access",
            message = "webhook",
            method = %parts.method,
            path = %rejection::masked_path(parts.uri.path(), path_has_secret),
            vendor = %target.vendor,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            remote = remote.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        );
    }
    response
}

/// An HTTP status as a label value, without allocating for the ones a webhook gets.
fn status_label(status: axum::http::StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        code if code < 300 => "2xx",
        code if code < 400 => "3xx",
        code if code < 500 => "4xx",
        _ => "5xx",
    }
}

/// A refused request: why, what of its body was read, and whether its sender had proved to be
/// the vendor (a secret or an address the configuration asks for) before it was refused.
struct Refused {
    error: IngestError,
    body: Bytes,
    proven: bool,
}

impl From<(IngestError, Bytes)> for Refused {
    fn from((error, body): (IngestError, Bytes)) -> Self {
        Self { error, body, proven: false }
    }
}

async fn accept(
    state: &IngestState,
    target: &Target,
    parts: &Parts,
    body: Body,
    received_at: DateTime<Utc>,
) -> Result<Response, Refused> {
    let config = state.config.current();
    let fail = |error: IngestError| Refused::from((error, Bytes::new()));
    head_within_limits(parts).map_err(fail)?;
    let limit = config.body_limit();
    let Some(vendor) = config.vendors().get(&target.vendor) else {
        // Kept with its body (what a stranger sends is cut to 64 KiB): once the operator adds
        // the plugin, it can be processed again. A body not received whole is refused for that.
        let body = read_body(body, &parts.headers, limit, config.read_timeout()).await?;
        return Err((IngestError::UnknownVendor(target.vendor.clone()), body).into());
    };
    if !vendor.accepts(&parts.method) {
        let body = read_body(body, &parts.headers, limit, config.read_timeout()).await?;
        let error = IngestError::MethodNotAllowed { vendor: target.vendor.clone(), method: parts.method.to_string() };
        return Err((error, body).into());
    }
    let settings = config.vendor_settings(vendor.name());
    if !settings.allow_from.is_empty() {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let sender = source::sender(peer, &parts.headers, config.trusted_proxies());
        if !sender.is_some_and(|ip| settings.allow_from.iter().any(|net| net.contains(&ip))) {
            let sender = sender.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
            return Err(fail(IngestError::SourceNotAllowed { vendor: target.vendor.clone(), sender }));
        }
    }
    let raw_body = read_body(body, &parts.headers, limit, config.read_timeout()).await?;
    let fail = |error: IngestError| Refused::from((error, raw_body.clone()));
    let (path_secret, path_event) = target.secret_and_event(config.as_ref()).map_err(fail)?;

    let query = body::query_pairs(parts.uri.query().unwrap_or_default());
    let presented =
        path_secret.or_else(|| query.iter().find(|(key, _)| key == "token").map(|(_, value)| value.as_str()));
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request = InboundRequest::new(parts.method.clone(), content_type, query.clone(), raw_body.clone())
        .verify(settings.secret.as_ref(), presented)
        .map_err(|e| fail(e.into()))?;
    // Past here the sender is the vendor, as far as the configuration can tell.
    let proven = settings.secret.is_some() || !settings.allow_from.is_empty();

    let intake = process::Intake {
        request: &request,
        record: request_record(parts, path_secret.is_some()),
        path_event,
        legacy: target.legacy.as_ref(),
        received_at,
        planned_at: received_at,
    };
    let accepted = process::store(state, config.as_ref(), vendor, intake).await.map_err(|error| Refused {
        error,
        body: raw_body.clone(),
        proven,
    })?;
    Ok(accepted.into_response())
}

/// The longest URL a webhook may have: a GET's query carries its payload, a few KiB at most.
const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes a webhook may have. (More than 100 headers hyper refuses itself.)
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses a request line or headers beyond reason with an answer that says so; hyper's own
/// limits lie beyond these, and its answers have no body (`crate::server`).
fn head_within_limits(parts: &Parts) -> Result<(), IngestError> {
    let length = parts.uri.path().len() + parts.uri.query().map_or(0, |query| query.len() + 1);
    if length > MAX_URI_BYTES {
        return Err(IngestError::UriTooLong { length, limit: MAX_URI_BYTES });
    }
    let bytes: usize = parts.headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(IngestError::HeadersTooLarge { bytes, limit: MAX_HEADER_BYTES });
    }
    Ok(())
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
