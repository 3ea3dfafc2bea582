//! The admin API, `/api/v1/…`: what `switchboard events|deliveries|rejected|retry|dismiss|replay
//! --url …` ask the running daemon (as `amtool --alertmanager.url` asks Alertmanager), so a
//! command never needs the database file or its credentials. JSON in and out; the records in
//! the shape `-o json` prints ([`crate::store::StoredEvent::summary`] and its siblings). Behind
//! the admin token like every other admin path.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use ulid::Ulid;

use super::AdminState;
use crate::delivery::ReplayTo;
use crate::event::EventId;
use crate::store::{DeliveryQuery, DeliveryState, Dismissal, EventQuery, EventStatus, RejectionQuery, StoreError};

/// How many records a listing answers when the request does not say.
const DEFAULT_LIMIT: u32 = 50;
/// The most one listing answers.
const MAX_LIMIT: u32 = 1000;

/// A JSON error with its status: `{"result": "error", "error": <code>, "message": …}`.
pub(super) struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"result": "error", "error": self.1, "message": self.2}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, "store_failed", error.to_string())
    }
}

type Answer = Result<Json<Value>, ApiError>;

fn bad_request(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn limit(asked: Option<u32>) -> u32 {
    asked.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

fn delivery_id(id: &str) -> Result<Ulid, ApiError> {
    id.parse().map_err(|_| bad_request(format!("`{id}` is not a delivery id")))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct EventsQuery {
    vendor: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    search: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn events(State(state): State<AdminState>, Query(query): Query<EventsQuery>) -> Answer {
    let status =
        match query.status.as_deref() {
            None | Some("") => None,
            Some(text) => Some(EventStatus::parse(text).ok_or_else(|| {
                bad_request(format!("`{text}` is not a status: unrouted, pending, delivered or failed"))
            })?),
        };
    let query = EventQuery {
        vendor: query.vendor,
        kind: query.kind,
        status,
        search: query.search,
        limit: limit(query.limit),
        ..EventQuery::default()
    };
    let events = state.store.events(&query).await?;
    Ok(Json(Value::Array(events.iter().map(crate::store::StoredEvent::summary).collect())))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct DeliveriesQuery {
    state: Option<String>,
    output: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn deliveries(State(state): State<AdminState>, Query(query): Query<DeliveriesQuery>) -> Answer {
    let wanted = match query.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(DeliveryState::parse(text).map_err(|_| bad_request(format!("`{text}` is not a state")))?),
    };
    let query = DeliveryQuery { state: wanted, output: query.output, limit: limit(query.limit) };
    let deliveries = state.store.list_deliveries(&query).await?;
    Ok(Json(Value::Array(deliveries.iter().map(crate::store::Delivery::summary).collect())))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RejectedQuery {
    vendor: Option<String>,
    reason: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn rejected(State(state): State<AdminState>, Query(query): Query<RejectedQuery>) -> Answer {
    let query = RejectionQuery { vendor: query.vendor, reason: query.reason, limit: limit(query.limit) };
    let rejections = state.store.rejections(&query).await?;
    let config = state.reloader.live().load_full();
    let summaries = rejections.iter().map(|r| crate::ingest::rejection_summary(r, Some(config.as_ref()))).collect();
    Ok(Json(Value::Array(summaries)))
}

/// Which dead letters an action takes: one by its id in the path, or every one of `output`
/// (`null`: of every output). A misspelt key is refused rather than read as "every output".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Many {
    output: Option<String>,
    by: Option<String>,
    note: Option<String>,
}

/// `count` acted on; a named delivery that was not there to act on is a 409.
fn acted(count: u64, one: Option<Ulid>, what: &str) -> Answer {
    match (one, count) {
        (Some(id), 0) => Err(ApiError(
            StatusCode::CONFLICT,
            "not_dead",
            format!("delivery {id} is not dead or expired (or does not exist); nothing to {what}"),
        )),
        _ => Ok(Json(json!({"result": "ok", "count": count}))),
    }
}

pub(super) async fn retry_one(State(state): State<AdminState>, Path(id): Path<String>) -> Answer {
    let id = delivery_id(&id)?;
    let count = state.store.retry(Some(id), None).await?;
    state.ingest.wake.notify();
    acted(count, Some(id), "retry")
}

/// A bulk action needs its body, `{"output": …}`: one sent without it is not taken for "all".
pub(super) async fn retry_dead(State(state): State<AdminState>, Json(many): Json<Many>) -> Answer {
    let count = state.store.retry(None, many.output.as_deref()).await?;
    state.ingest.wake.notify();
    acted(count, None, "retry")
}

fn dismissal(many: &Many) -> Dismissal {
    Dismissal::now(many.by.as_deref(), many.note.as_deref(), "api")
}

pub(super) async fn dismiss_one(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: Option<Json<Many>>,
) -> Answer {
    let id = delivery_id(&id)?;
    let many = body.map(|Json(many)| many).unwrap_or_default();
    let count = state.store.dismiss(Some(id), None, &dismissal(&many)).await?;
    acted(count, Some(id), "dismiss")
}

pub(super) async fn dismiss_dead(State(state): State<AdminState>, Json(many): Json<Many>) -> Answer {
    let count = state.store.dismiss(None, many.output.as_deref(), &dismissal(&many)).await?;
    acted(count, None, "dismiss")
}

/// `{"all": true}` or `{"outputs": ["crm"]}`; neither: where the event has not arrived.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Replay {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    outputs: Vec<String>,
}

pub(super) async fn replay(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: Option<Json<Replay>>,
) -> Answer {
    let id: EventId = id.parse().map_err(|_| bad_request(format!("`{id}` is not an event id")))?;
    let Some(stored) = state.store.event(id).await? else {
        return Err(ApiError(StatusCode::NOT_FOUND, "not_found", format!("no event {id}")));
    };
    let replay = body.map(|Json(replay)| replay).unwrap_or_default();
    let to = match (replay.all, replay.outputs.is_empty()) {
        (true, _) => ReplayTo::All,
        (false, false) => ReplayTo::Outputs(replay.outputs),
        (false, true) => ReplayTo::NotReached,
    };
    let config = state.reloader.live().load_full();
    let earlier = state.store.deliveries(id).await?;
    let deliveries = crate::delivery::replay(state.store.as_ref(), config.as_ref(), &stored, &earlier, &to).await?;
    state.ingest.wake.notify();
    let planned: Vec<Value> =
        deliveries.iter().map(|d| json!({"id": d.id.to_string(), "route": d.route, "output": d.output})).collect();
    Ok(Json(json!({"result": "ok", "count": planned.len(), "deliveries": planned})))
}
