//! From a verified request to a stored event: the plugin normalises it, its sequence is
//! recalled, the routes are planned, and the store makes it durable with its deliveries. What a
//! webhook and a kept request processed again ([`super::reprocess`]) have in common.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::{DUPLICATE_HEADER, EVENT_ID_HEADER, IngestConfig, IngestError, IngestState, sequence};
use crate::event::EventId;
use crate::metrics as m;
use crate::plugin::request::{InboundRequest, Verified};
use crate::plugin::{Echo, LegacyPath, ReplyBody, Vendor, reply};
use crate::store::{Appended, NewDelivery, NewEvent, RequestRecord};

/// A verified request on its way to the store.
pub(super) struct Intake<'r> {
    pub(super) request: &'r InboundRequest<Verified>,
    /// The request as it is kept with the event (secrets masked).
    pub(super) record: RequestRecord,
    /// The URL's segment after the secret, when the plugin reads its event there.
    pub(super) path_event: Option<&'r str>,
    pub(super) legacy: Option<&'r LegacyPath>,
    pub(super) received_at: DateTime<Utc>,
    /// When its deliveries are planned: a route's ttl and a delivery's age count from here. The
    /// arrival, except for a refused request processed again later.
    pub(super) planned_at: DateTime<Utc>,
}

/// A stored event (or a repeat of one) and the reply its vendor gets.
pub(super) struct Accepted {
    pub(super) appended: Appended,
    status: StatusCode,
    reply: ReplyBody,
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let mut response = match self.reply {
            ReplyBody::Json(json) => (self.status, axum::Json(json)).into_response(),
            ReplyBody::Text(text) => (self.status, text).into_response(),
            ReplyBody::Empty => self.status.into_response(),
        };
        let headers = response.headers_mut();
        if let Ok(id) = HeaderValue::from_str(&self.appended.id().to_string()) {
            headers.insert(EVENT_ID_HEADER, id);
        }
        if matches!(self.appended, Appended::Duplicate(_)) {
            headers.insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

/// Normalises, classifies, routes and stores one request.
///
/// # Errors
/// The plugin cannot read it (with `event.required`, names no event), or the store failed
/// (logged here: the vendor is asked to retry).
pub(super) async fn store(
    state: &IngestState,
    config: &dyn IngestConfig,
    vendor: &Vendor,
    intake: Intake<'_>,
) -> Result<Accepted, IngestError> {
    let Intake { request, record, path_event, legacy, received_at, planned_at } = intake;
    let legacy_event = legacy.and_then(|l| l.event.as_deref());
    let mut normalized = vendor.normalize(request, path_event, legacy_event, EventId::new(received_at), received_at)?;
    let sequence::Recalled { turn: sequence_turn, anew, start: sequence_start } =
        sequence::recall(&state.sequences, state.store.as_ref(), vendor, &mut normalized).await.map_err(|e| {
            tracing::error!(
                message = "Could not read the event's sequence; the vendor is asked to retry.",
                vendor = %vendor.name(), error = %e
            );
            IngestError::from(e)
        })?;
    tracing::Span::current().record("event_id", tracing::field::display(normalized.event.id));
    let plan = config.plan(&normalized.event, planned_at);
    let routes = plan.routes;
    let deliveries: Vec<NewDelivery> = plan
        .deliveries
        .into_iter()
        .map(|p| NewDelivery {
            not_before: p
                .after
                .and_then(|after| chrono::TimeDelta::from_std(after).ok())
                .map(|after| planned_at + after),
            unless: p.unless,
            ..NewDelivery::planned_at(planned_at, p.route, p.output, p.template, p.expires_at)
        })
        .collect();
    let deliver = !deliveries.is_empty();
    // The reply depends only on the event: built now, so the event can move into the store.
    let echo = legacy.map_or(Echo::None, |l| l.echo);
    let (status, reply) = reply::build(vendor, &config.vendor_settings(vendor.name()).replies, &normalized.event, echo);
    let (event_name, kind) = (normalized.event.event.clone(), normalized.event.kind.clone());

    let appended = state
        .store
        .append(NewEvent {
            event: normalized.event,
            dedup_key: normalized.dedup_key,
            dedup_window: normalized.dedup_window.unwrap_or(config.dedup_window()),
            anew,
            request: record,
            raw_body: request.body().clone(),
            payload_from_body: normalized.payload_from_body,
            routes: routes.clone(),
            sequence_key: normalized.sequence.map(|sequence| sequence.key),
            sequence_start,
            deliveries,
            planned_at,
        })
        .await
        .map_err(|e| {
            tracing::error!(
                message = "Could not store the event; the vendor is asked to retry.",
                vendor = %vendor.name(), error = %e
            );
            IngestError::from(e)
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
    Ok(Accepted { appended, status, reply })
}
