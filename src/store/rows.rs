//! Turning database rows into store types, written once for SQLite and PostgreSQL.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use sqlx::Row;
use ulid::Ulid;

use super::{
    AttemptRecord, Delivery, DeliveryState, Dismissal, Rejection, Reprocessed, StoreError, StoredEvent, from_millis,
};
use crate::body::BodyEncoding;
use crate::event::handling::{Handling, Person, Status};
use crate::event::{Event, Kind};

/// The column reads the decoders need, for any database the store runs on.
pub(super) trait Columns {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn maybe_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn maybe_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn maybe_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}

columns_for!(sqlx::sqlite::SqliteRow);
columns_for!(sqlx::postgres::PgRow);

pub(super) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

fn json<T: serde::de::DeserializeOwned>(row: &impl Columns, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(&row.text(column)?).map_err(|e| corrupt(column, e))
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or_default()
}

/// `id, received_at, vendor, event, kind, fields, payload, body_encoding, dedup_key,
/// duplicates, request, raw_body, routes, sequence_key, sequence_start`
pub(super) fn stored_event(row: &impl Columns) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        event: event(row)?,
        routes: json(row, "routes")?,
        dedup_key: row.text("dedup_key")?,
        duplicates: count(row.int("duplicates")?),
        request: json(row, "request")?,
        raw_body: row.bytes("raw_body")?.into(),
        sequence_key: row.maybe_text("sequence_key")?,
        sequence_start: row
            .maybe_text("sequence_start")?
            .map(|id| id.parse())
            .transpose()
            .map_err(|e| corrupt("event id", e))?,
    })
}

/// `id, received_at, vendor, event, kind, fields, payload` and, where `payload` is NULL,
/// `body_encoding` and `raw_body`: what a delivery needs, without the request record an
/// operator's view reads too.
pub(super) fn event(row: &impl Columns) -> Result<Event, StoreError> {
    Ok(Event {
        id: row.text("id")?.parse().map_err(|e| corrupt("event id", e))?,
        received_at: from_millis(row.int("received_at")?),
        vendor: row.text("vendor")?,
        event: row.text("event")?,
        kind: Kind::parse(&row.text("kind")?).map_err(|e| corrupt("kind", e))?,
        fields: json(row, "fields")?,
        payload: payload(row)?,
    })
}

/// The `payload` column, or where it is NULL (the body is the payload's whole record, kept once)
/// the `raw_body` column decoded as `body_encoding` says — JSON where that is NULL too, as in rows
/// from before the column, when only JSON bodies were kept so. A read that selects `payload`
/// selects `body_encoding` and `raw_body` at least when `payload` is NULL.
fn payload(row: &impl Columns) -> Result<serde_json::Value, StoreError> {
    if let Some(text) = row.maybe_text("payload")? {
        return serde_json::from_str(&text).map_err(|e| corrupt("payload", e));
    }
    let encoding = match row.maybe_text("body_encoding")? {
        None => BodyEncoding::Json,
        Some(name) => {
            BodyEncoding::parse(&name).ok_or_else(|| corrupt("body_encoding", format!("unknown `{name}`")))?
        }
    };
    encoding.decode(&row.bytes("raw_body")?).map_err(|e| corrupt("payload (the raw body)", e))
}

/// `id, event_id, route, output, template, state, attempts, next_attempt_at, expires_at,
/// created_at, last_error`
pub(super) fn delivery(row: &impl Columns) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: row.text("id")?.parse().map_err(|e| corrupt("delivery id", e))?,
        event_id: row.text("event_id")?.parse().map_err(|e| corrupt("event id", e))?,
        route: row.text("route")?,
        output: row.text("output")?,
        template: row.text("template")?,
        state: DeliveryState::parse(&row.text("state")?)?,
        attempts: count(row.int("attempts")?),
        next_attempt_at: from_millis(row.int("next_attempt_at")?),
        expires_at: row.maybe_int("expires_at")?.map(from_millis),
        created_at: from_millis(row.int("created_at")?),
        last_error: row.maybe_text("last_error")?,
        interrupted: count(row.int("interrupted")?),
        redraws: row.maybe_text("redraws")?,
        unless: match row.maybe_text("unless_status")? {
            Some(text) => Some(Status::parse(&text).ok_or_else(|| corrupt("unless_status", text))?),
            None => None,
        },
        dismissal: match (row.maybe_int("dismissed_at")?, row.maybe_text("dismissed_by")?) {
            (Some(at), Some(by)) => Some(Dismissal { by, at: from_millis(at), note: row.maybe_text("dismiss_note")? }),
            _ => None,
        },
    })
}

/// `id, received_at, vendor, status, reason, message, request, raw_body, body_size,
/// reprocessed_at, reprocessed_event`
pub(super) fn rejection(row: &impl Columns) -> Result<Rejection, StoreError> {
    let raw_body = row.bytes("raw_body")?;
    Ok(Rejection {
        id: row.text("id")?.parse::<Ulid>().map_err(|e| corrupt("rejection id", e))?,
        received_at: from_millis(row.int("received_at")?),
        vendor: row.maybe_text("vendor")?,
        status: u16::try_from(row.int("status")?).unwrap_or_default(),
        reason: row.text("reason")?,
        message: row.text("message")?,
        request: json(row, "request")?,
        // Rows from before the column were cut at REJECTED_BODY_KEEP: one that long may have been.
        body_size: row.maybe_int("body_size")?.map_or_else(
            || if raw_body.len() < super::REJECTED_BODY_KEEP { raw_body.len() as u64 } else { u64::MAX },
            |size| u64::try_from(size).unwrap_or(0),
        ),
        raw_body: raw_body.into(),
        reprocessed: row
            .maybe_int("reprocessed_at")?
            .map(|at| -> Result<Reprocessed, StoreError> {
                let event = row.maybe_text("reprocessed_event")?;
                let event = event.map(|id| id.parse().map_err(|e| corrupt("reprocessed event id", e))).transpose()?;
                Ok(Reprocessed { at: from_millis(at), event })
            })
            .transpose()?,
    })
}

pub(super) fn event_id(text: &str) -> Result<crate::event::EventId, StoreError> {
    text.parse().map_err(|e| corrupt("event id", e))
}

/// `card, status, taken_by_id, taken_by, taken_at, done_by_id, done_by, done_at, no_answers,
/// last_no_answer_at`
pub(super) fn handling(row: &impl Columns) -> Result<Handling, StoreError> {
    let person = |id: &str, name: &str| -> Result<Option<Person>, StoreError> {
        Ok(match (row.maybe_int(id)?, row.maybe_text(name)?) {
            (Some(id), Some(name)) => Some(Person { id, name }),
            _ => None,
        })
    };
    let status = row.text("status")?;
    Ok(Handling {
        card: event_id(&row.text("card")?)?,
        status: Status::parse(&status).ok_or_else(|| corrupt("handling status", status))?,
        taken_by: person("taken_by_id", "taken_by")?,
        taken_at: row.maybe_int("taken_at")?.map(from_millis),
        done_by: person("done_by_id", "done_by")?,
        done_at: row.maybe_int("done_at")?.map(from_millis),
        no_answers: count(row.int("no_answers")?),
        last_no_answer_at: row.maybe_int("last_no_answer_at")?.map(from_millis),
    })
}

/// `number, started_at, duration_ms, outcome, reason, detail, action, remote_id`
pub(super) fn attempt(row: &impl Columns) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        number: count(row.int("number")?),
        started_at: from_millis(row.int("started_at")?),
        duration: std::time::Duration::from_millis(u64::try_from(row.int("duration_ms")?).unwrap_or_default()),
        outcome: row.text("outcome")?,
        reason: row.maybe_text("reason")?,
        detail: row.text("detail")?,
        action: row.maybe_text("action")?,
        remote_id: row.maybe_text("remote_id")?,
        sent: row.maybe_text("message")?,
    })
}

/// Each claimed delivery with its event ([`event`] rows). An event is moved to the last of its
/// deliveries and copied only for the others.
///
/// # Errors
/// An event row that does not decode, or a delivery whose event is missing.
pub(super) fn pair_with_events(
    deliveries: Vec<Delivery>,
    events: impl Iterator<Item = Result<Event, StoreError>>,
) -> Result<Vec<(Delivery, Event)>, StoreError> {
    let mut by_id = HashMap::new();
    for event in events {
        let event = event?;
        by_id.insert(event.id, (0_usize, event));
    }
    for delivery in &deliveries {
        if let Some((wanted, _)) = by_id.get_mut(&delivery.event_id) {
            *wanted += 1;
        }
    }
    deliveries
        .into_iter()
        .map(|delivery| match by_id.entry(delivery.event_id) {
            Entry::Occupied(mut entry) => {
                entry.get_mut().0 -= 1;
                let event = if entry.get().0 == 0 { entry.remove().1 } else { entry.get().1.clone() };
                Ok((delivery, event))
            }
            Entry::Vacant(_) => Err(corrupt("delivery", format!("{} has no event", delivery.id))),
        })
        .collect()
}

pub(super) fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt("serialising", e))
}
