//! What is kept of a request: its record with secrets masked, and a refusal with its body.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{IngestError, Target};
use crate::metrics as m;
use crate::store::{EventLog, REJECTED_BODY_KEEP, Rejection, RequestRecord};

/// Headers whose values are credentials: never stored or shown.
fn is_sensitive_header(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie" | "set-cookie")
        || ["token", "secret", "signature", "key", "password", "auth"].iter().any(|word| name.contains(word))
}

/// The request's path with the secret's segment (`/hooks/<vendor>/<secret>/…`) as `***`.
pub(super) fn masked_path(path: &str, has_secret: bool) -> String {
    if !has_secret {
        return path.to_owned();
    }
    path.split('/')
        .enumerate()
        .map(|(at, segment)| if at == SECRET_SEGMENT { "***" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

/// The request as it is kept: the path's secret, the `token` parameter and credential headers
/// masked. The secret is masked by its place (`/hooks/<vendor>/<secret>/…`), not by its value:
/// a client may percent-encode it, and another segment may happen to equal it.
pub(super) fn request_record(parts: &Parts, path_has_secret: bool) -> RequestRecord {
    let path = masked_path(parts.uri.path(), path_has_secret);
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

/// Where a path secret stands in `/hooks/<vendor>/<secret>`, split at `/`.
const SECRET_SEGMENT: usize = 3;

/// Logs and counts a refusal, and keeps it with the request for the operator. The body is kept
/// whole when the sender proved it is the vendor (its secret or its address was checked) and the
/// plugin could not read it, to be processed again once that is fixed; otherwise its first
/// [`REJECTED_BODY_KEEP`] bytes, so that strangers cannot fill the disk.
pub(super) async fn keep_rejection(
    store: &dyn EventLog,
    target: &Target,
    error: &IngestError,
    request: RequestRecord,
    raw_body: Bytes,
    proven: bool,
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
    let request = if matches!(error, IngestError::UriTooLong { .. } | IngestError::HeadersTooLarge { .. }) {
        shrink(request)
    } else {
        request
    };
    let rejection = Rejection {
        id: crate::event::monotonic_ulid(received_at),
        received_at,
        vendor: Some(target.vendor.clone()),
        status: status.as_u16(),
        reason: error.code().to_owned(),
        message: error.to_string(),
        request,
        body_size: raw_body.len() as u64,
        raw_body: if proven && matches!(error, IngestError::Normalize(_)) {
            raw_body
        } else {
            raw_body.slice(..raw_body.len().min(REJECTED_BODY_KEEP))
        },
        reprocessed: None,
    };
    if let Err(error) = store.reject(rejection).await {
        tracing::error!(message = "Could not keep the rejected request.", vendor = %target.vendor, %error);
    }
}

/// Keeps what can be known of a request hyper refused before Switchboard saw it (a malformed
/// request line or header, conflicting `Content-Length`s, a head too large): hyper answered it
/// with a bare status, and the Rejected page shows it with the reason.
pub fn malformed_reporter(store: Arc<dyn EventLog>) -> crate::server::OnMalformed {
    // A flood of garbage (a scanner speaking TLS to the port) must not pile up writes: at most
    // this many are being kept at once, the rest only counted and logged.
    let writing = Arc::new(tokio::sync::Semaphore::new(MALFORMED_KEPT_AT_ONCE));
    Arc::new(move |peer: SocketAddr, error: &hyper::Error| {
        let (status, reason) =
            if error.is_parse_too_large() { (431, "request_too_large") } else { (400, "malformed_request") };
        tracing::warn!(message = "Malformed request refused.", %peer, reason, detail = %error);
        metrics::counter!(m::WEBHOOKS_RECEIVED, "vendor" => "unknown", "outcome" => reason).increment(1);
        let received_at = Utc::now();
        let rejection = Rejection {
            id: crate::event::monotonic_ulid(received_at),
            received_at,
            vendor: None,
            status,
            reason: reason.to_owned(),
            message: format!("the HTTP layer refused it: {error}"),
            request: RequestRecord { remote_addr: Some(peer.to_string()), ..RequestRecord::default() },
            raw_body: Bytes::new(),
            body_size: 0,
            reprocessed: None,
        };
        let Ok(permit) = writing.clone().try_acquire_owned() else {
            return;
        };
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(error) = store.reject(rejection).await {
                tracing::error!(message = "Could not keep the refused request.", %error);
            }
            drop(permit);
        });
    })
}

/// How many refusals made by the HTTP layer may be being written at once.
const MALFORMED_KEPT_AT_ONCE: usize = 8;

/// What is kept of a head refused for its size: the path and query cut short, header values
/// replaced by their length — not the very bytes that were too many.
fn shrink(mut request: RequestRecord) -> RequestRecord {
    const KEEP: usize = 1024;
    let cut = |text: &mut String| {
        if text.len() > KEEP {
            let mut end = KEEP;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let length = text.len();
            text.truncate(end);
            text.push_str(&format!("… ({length} bytes)"));
        }
    };
    cut(&mut request.path);
    cut(&mut request.query);
    for (_, value) in &mut request.headers {
        *value = format!("({} bytes)", value.len());
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_mask_secrets() {
        let request = axum::http::Request::post("/hooks/jivo/s3%2Dcret?token=abc&x=1")
            .header("authorization", "Bearer abc")
            .header("x-api-key", "abc")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let record = request_record(&parts, true);
        assert_eq!(record.path, "/hooks/jivo/***", "masked by its place, however it is encoded");
        assert_eq!(record.query, "token=***&x=1");
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("abc") && !text.contains("cret"), "{text}");
        assert!(text.contains("application/json"));
        // Only the secret's place: an event segment that equals it stays.
        let (parts, ()) = axum::http::Request::post("/hooks/ct/end/end").body(()).unwrap().into_parts();
        assert_eq!(request_record(&parts, true).path, "/hooks/ct/***/end");
        let (parts, ()) = axum::http::Request::post("/hooks/ct/end").body(()).unwrap().into_parts();
        assert_eq!(request_record(&parts, false).path, "/hooks/ct/end");
    }
}
