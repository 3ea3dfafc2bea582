//! `IngestError`: every way a webhook can be refused, and the answer the sender gets.
//!
//! 4xx answers say exactly what is wrong; a 5xx says nothing internal (the cause is logged).
//! Answers are JSON with `"result"` not `"ok"`, which Jivo reads as a failure.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::plugin::NormalizeError;
use crate::plugin::request::VerifyError;
use crate::store::StoreError;

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no vendor plugin is called `{0}`")]
    UnknownVendor(String),
    #[error("vendor `{0}` does not take its event from the URL; post to /hooks/{0}/<secret>")]
    EventNotInPath(String),
    #[error("vendor `{vendor}` does not send {method} requests")]
    MethodNotAllowed { vendor: String, method: String },
    #[error("requests for `{vendor}` are accepted only from its `allow_from` addresses; this one came from {sender}")]
    SourceNotAllowed { vendor: String, sender: String },
    #[error(transparent)]
    Secret(#[from] VerifyError),
    #[error("the URL is {length} bytes long; the limit is {limit}")]
    UriTooLong { length: usize, limit: usize },
    #[error("the request's headers take {bytes} bytes; the limit is {limit}")]
    HeadersTooLarge { bytes: usize, limit: usize },
    #[error("the body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body was not received within {secs} s")]
    Timeout { secs: u64 },
    #[error("the body could not be read: {0}")]
    BodyRead(String),
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
    /// 503 when the storage is failing for now, 500 otherwise; the detail stays in the log.
    #[error("the event could not be stored")]
    Store(#[from] StoreError),
}

impl IngestError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownVendor(_) | Self::EventNotInPath(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::SourceNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::Secret(_) => StatusCode::UNAUTHORIZED,
            Self::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::BodyRead(_) | Self::Normalize(_) => StatusCode::BAD_REQUEST,
            // Nothing was stored either way: a failure that may pass asks the vendor to come
            // back; one that will not says so.
            Self::Store(error) if error.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, low-cardinality code: the `error` field of the answer, and a metric label.
    /// Every one is in [`REASONS`].
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownVendor(_) => "unknown_vendor",
            Self::EventNotInPath(_) => "event_not_in_path",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::SourceNotAllowed { .. } => "source_not_allowed",
            Self::Secret(VerifyError::Missing) => "missing_secret",
            Self::Secret(VerifyError::Mismatch) => "bad_secret",
            Self::UriTooLong { .. } => "uri_too_long",
            Self::HeadersTooLarge { .. } => "headers_too_large",
            Self::TooLarge { .. } => "body_too_large",
            Self::Timeout { .. } => "read_timeout",
            Self::BodyRead(_) => "body_read_failed",
            Self::Normalize(error) => error.code(),
            Self::Store(error) if error.is_transient() => "storage_unavailable",
            Self::Store(_) => "storage_failed",
        }
    }
}

/// Every code a refused request is kept with ([`IngestError::code`], and the malformed requests
/// `malformed_reporter` keeps): what the Rejected page offers to filter on.
pub const REASONS: &[&str] = &[
    "bad_secret",
    "body_read_failed",
    "body_too_large",
    "empty_body",
    "event_not_in_path",
    "headers_too_large",
    "invalid_event",
    "invalid_form",
    "invalid_json",
    "malformed_request",
    "method_not_allowed",
    "missing_event",
    "missing_secret",
    "read_timeout",
    "request_too_large",
    "source_not_allowed",
    "storage_failed",
    "storage_unavailable",
    "unknown_vendor",
    "uri_too_long",
];

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let body = json!({ "result": "error", "error": self.code(), "message": self.to_string() });
        (self.status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing is stored either way; only a failure that may pass asks the vendor to retry.
    #[test]
    fn a_store_failure_that_may_pass_asks_the_vendor_to_come_back() {
        let busy = IngestError::Store(StoreError::Closed);
        assert_eq!((busy.status(), busy.code()), (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"));
        let lasting = IngestError::Store(StoreError::Corrupt("an earlier event".into()));
        assert_eq!((lasting.status(), lasting.code()), (StatusCode::INTERNAL_SERVER_ERROR, "storage_failed"));
    }
}
