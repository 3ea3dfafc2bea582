//! The dashboard: server-rendered pages on the admin listener that answer "why did this alert
//! not arrive?" in a minute — was the webhook received, how was it parsed, which routes took it,
//! what was rendered, what did the destination answer — and let the operator act: retry a dead
//! letter, replay an event, send a test event through the real pipeline.
//!
//! Pages are handlebars templates compiled into the binary ([`view`]); there is no build step
//! and no script. Actions are plain form POSTs that redirect back with a notice; a POST from
//! another site is refused before it gets here (`admin::guard`).

mod actions;
mod clock;
mod pages;
mod sequence;
mod view;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AdminState;
use crate::store::StoreError;

/// The dashboard's routes.
pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/", get(pages::events))
        .route("/events/{id}", get(pages::event))
        .route("/events/{id}/replay", post(actions::replay))
        .route("/deliveries/{id}/retry", post(actions::retry))
        .route("/deliveries/{id}/dismiss", post(actions::dismiss))
        .route("/dead", get(pages::dead))
        .route("/dead/retry", post(actions::retry_dead))
        .route("/dead/dismiss", post(actions::dismiss_dead))
        .route("/rejected", get(pages::rejected))
        .route("/rejected/{id}/reprocess", post(actions::reprocess))
        .route("/status", get(pages::status))
        .route("/test-event", post(actions::test_event))
        .route("/assets/style.css", get(stylesheet))
}

async fn stylesheet() -> Response {
    let headers = [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")];
    (headers, include_str!("style.css")).into_response()
}

/// A page that could not be shown, as a page that says why.
#[derive(Debug)]
pub(super) struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("No {what}: it may have been pruned by storage.retention_days."))
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("The store did not answer: {error}"))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = view::render_page(
            "error",
            "Error",
            "",
            &serde_json::json!({ "status": self.status.as_u16(), "message": self.message }),
        );
        (self.status, Html(page)).into_response()
    }
}

/// Back to `to` with a notice the page shows once.
fn redirect_with_notice(to: &str, notice: &str) -> Response {
    let notice: String = url_encode(notice);
    let separator = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{separator}notice={notice}")).into_response()
}

fn url_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
