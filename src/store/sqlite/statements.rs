//! The SQL of the writer thread ([`super::writer`]): one function per kind of command, each
//! run inside the batch's transaction with cached statements.

use std::collections::HashMap;

use rusqlite::{CachedStatement, Transaction, params};
use ulid::Ulid;

use super::dedup::DedupWindow;
use super::owned_row::OwnedRow;
use crate::body::BodyEncoding;
use crate::event::EventId;
use crate::event::handling::Status;
use crate::store::rows::{corrupt, to_json};
use crate::store::{Appended, AttemptRecord, NewDelivery, NewEvent, Next, Rejection, StoreError, millis, next_state};

/// An event with its JSON columns serialised by the sender, in parallel on the runtime's
/// workers, so the one writer thread only binds and steps.
pub(super) struct EncodedEvent {
    id: String,
    pub(super) received_at: i64,
    pub(super) vendor: String,
    event: String,
    kind: String,
    fields: String,
    /// None when the raw body is the payload's whole record: kept once, as the body.
    payload: Option<String>,
    /// How the payload is read from the body when `payload` is None.
    body_encoding: Option<&'static str>,
    pub(super) dedup_key: String,
    /// Arrivals before this are outside the dedup window.
    pub(super) dedup_since: i64,
    anew: bool,
    /// When the deliveries were planned (ms).
    planned_at: i64,
    request: String,
    raw_body: bytes::Bytes,
    routes: String,
    sequence_key: Option<String>,
    sequence_start: Option<String>,
    deliveries: Vec<NewDelivery>,
}

impl EncodedEvent {
    pub(super) fn new(new: NewEvent) -> Result<Self, StoreError> {
        let received_at = millis(new.event.received_at);
        let window = i64::try_from(new.dedup_window.as_millis()).unwrap_or(i64::MAX);
        Ok(Self {
            id: new.event.id.to_string(),
            received_at,
            kind: new.event.kind.as_str().to_owned(),
            fields: to_json(&new.event.fields)?,
            payload: if new.payload_from_body.is_some() { None } else { Some(to_json(&new.event.payload)?) },
            body_encoding: new.payload_from_body.map(BodyEncoding::as_str),
            request: to_json(&new.request)?,
            routes: to_json(&new.routes)?,
            vendor: new.event.vendor,
            event: new.event.event,
            dedup_key: new.dedup_key,
            dedup_since: received_at.saturating_sub(window),
            anew: new.anew,
            planned_at: millis(new.planned_at),
            raw_body: new.raw_body,
            sequence_key: new.sequence_key,
            sequence_start: new.sequence_start.map(|id| id.to_string()),
            deliveries: new.deliveries,
        })
    }
}

pub(super) struct Replayed {
    pub(super) event_id: String,
    pub(super) routes: String,
    pub(super) at: i64,
    pub(super) deliveries: Vec<NewDelivery>,
}

pub(super) struct Finished {
    pub(super) id: String,
    pub(super) attempt: AttemptRecord,
    pub(super) next: Next,
}

/// The appends of one batch. Their statements are prepared once per batch, not once per event:
/// taking a statement from rusqlite's cache hashes its whole SQL text, and so does giving it
/// back (measured: 7% of the writer thread's instructions per event saved).
pub(super) struct Appender<'tx, 'b> {
    insert_event: Option<CachedStatement<'tx>>,
    insert_delivery: Option<CachedStatement<'tx>>,
    /// Events of this batch by (vendor, dedup key): a repeat inside the batch is a duplicate
    /// of the first even though it is not in the table yet.
    in_batch: HashMap<(&'b str, &'b str), (&'b str, i64)>,
    /// What the dedup window is to remember once the batch has committed: (window key, id,
    /// arrival) of each event stored.
    stored: Vec<(u64, EventId, i64)>,
}

impl<'tx, 'b> Appender<'tx, 'b> {
    /// For a batch of at most `commands` appends.
    pub(super) fn new(commands: usize) -> Self {
        Self {
            insert_event: None,
            insert_delivery: None,
            in_batch: HashMap::with_capacity(commands),
            stored: Vec::with_capacity(commands),
        }
    }

    /// The events stored, for the dedup window; the statements go back to the cache.
    pub(super) fn into_stored(self) -> Vec<(u64, EventId, i64)> {
        self.stored
    }

    /// Stores the event unless the vendor sent it before within its dedup window (earlier in
    /// this batch, or committed before: then `window` holds it): then the repeat is counted on
    /// the original.
    pub(super) fn append(
        &mut self,
        tx: &'tx Transaction<'_>,
        new: &'b EncodedEvent,
        window: &DedupWindow,
    ) -> Result<Appended, StoreError> {
        let key = (new.vendor.as_str(), new.dedup_key.as_str());
        let window_key = window.key(&new.vendor, &new.dedup_key);
        let original = match self.in_batch.get(&key) {
            _ if new.anew => None,
            Some((id, at)) if *at >= new.dedup_since => Some((*id).to_owned()),
            _ => window.original(tx, window_key, new.dedup_since, &new.vendor, &new.dedup_key)?,
        };
        if let Some(original) = original {
            tx.prepare_cached("UPDATE events SET duplicates = duplicates + 1 WHERE id = ?1")?.execute([&original])?;
            let id = original.parse().map_err(|e| corrupt("event id", e))?;
            return Ok(Appended::Duplicate(id));
        }
        let insert = match &mut self.insert_event {
            Some(insert) => insert,
            empty => empty.insert(tx.prepare_cached(INSERT_EVENT)?),
        };
        insert.execute(params![
            new.id,
            new.received_at,
            new.vendor,
            new.event,
            new.kind,
            new.fields,
            new.payload,
            new.body_encoding,
            new.dedup_key,
            new.request,
            &new.raw_body[..],
            new.routes,
            new.sequence_key,
            new.sequence_start,
        ])?;
        insert_deliveries(tx, &mut self.insert_delivery, &new.id, new.planned_at, &new.deliveries)?;
        self.in_batch.insert(key, (new.id.as_str(), new.received_at));
        let id: EventId = new.id.parse().map_err(|e| corrupt("event id", e))?;
        self.stored.push((window_key, id, new.received_at));
        Ok(Appended::Stored(id))
    }
}

const INSERT_EVENT: &str = "INSERT INTO events (id, received_at, vendor, event, kind, fields, payload, body_encoding,
                                      dedup_key, request, raw_body, routes, sequence_key, sequence_start)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// Pending deliveries of one event, due at once; `insert` is prepared on first use.
fn insert_deliveries<'tx>(
    tx: &'tx Transaction<'_>,
    insert: &mut Option<CachedStatement<'tx>>,
    event_id: &str,
    now: i64,
    deliveries: &[NewDelivery],
) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let insert = match insert {
        Some(insert) => insert,
        empty => empty.insert(tx.prepare_cached(
            "INSERT INTO deliveries (id, event_id, route, output, template, state, next_attempt_at, expires_at, created_at,
                                     updated_at, redraws, unless_status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', MAX(?6, COALESCE(?9, ?6)), ?7, MAX(?6, COALESCE(?9, ?6)), ?6, ?8,
                     ?10)",
        )?),
    };
    for delivery in deliveries {
        insert.execute(params![
            delivery.id.to_string(),
            event_id,
            delivery.route,
            delivery.output,
            delivery.template,
            now,
            delivery.expires_at.map(millis),
            delivery.redraws,
            delivery.not_before.map(millis),
            delivery.unless.map(Status::as_str),
        ])?;
    }
    Ok(())
}

pub(super) fn insert_rejection(tx: &Transaction<'_>, rejection: &Rejection) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO rejected_requests (id, received_at, vendor, status, reason, message, request, raw_body, body_size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        rejection.id.to_string(),
        millis(rejection.received_at),
        rejection.vendor,
        rejection.status,
        rejection.reason,
        rejection.message,
        to_json(&rejection.request)?,
        &rejection.raw_body[..],
        i64::try_from(rejection.body_size).unwrap_or(i64::MAX),
    ])?;
    Ok(())
}

pub(super) fn finish(tx: &Transaction<'_>, finished: &Finished) -> Result<(), StoreError> {
    let Finished { id, attempt, next } = finished;
    let (state, next_at, error) = next_state(attempt, *next);
    tx.prepare_cached(
        "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, outcome, reason, detail, action, remote_id,
                               message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        id,
        attempt.number,
        millis(attempt.started_at),
        i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX),
        attempt.outcome,
        attempt.reason,
        attempt.detail,
        attempt.action,
        attempt.remote_id,
        attempt.sent,
    ])?;
    tx.prepare_cached(
        "UPDATE deliveries SET state = ?1, attempts = ?2, next_attempt_at = COALESCE(?3, next_attempt_at),
             lease_until = NULL, updated_at = ?4, last_error = ?5, remote_id = COALESCE(?7, remote_id)
         WHERE id = ?6",
    )?
    .execute(params![
        state.as_str(),
        attempt.number,
        next_at,
        millis(chrono::Utc::now()),
        error,
        id,
        attempt.remote_id
    ])?;
    Ok(())
}

/// A replay: the event's new route list, and its new deliveries.
pub(super) fn replay(tx: &Transaction<'_>, replayed: &Replayed) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE events SET routes = ?1 WHERE id = ?2")?
        .execute(params![replayed.routes, replayed.event_id])?;
    insert_deliveries(tx, &mut None, &replayed.event_id, replayed.at, &replayed.deliveries)
}

/// Deliveries just leased, each with its event, as rows for [`crate::store::rows`] to decode on
/// the runtime's workers: reading them here, in the claim's transaction, costs this thread a few
/// point lookups and saves the claimer two round trips through another connection's thread.
pub(super) struct Claimed {
    pub(super) deliveries: Vec<OwnedRow>,
    pub(super) events: Vec<OwnedRow>,
}

/// Leases up to `?3` deliveries due at `?2` until `?1`.
/// A row that still holds a lease was claimed by an attempt that never finished (the daemon was
/// killed while it ran): counted, since the destination may have got it already.
pub(super) const CLAIM: &str = "UPDATE deliveries SET lease_until = ?1, updated_at = ?2,
         interrupted = interrupted + CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END
     WHERE id IN (
         SELECT id FROM deliveries
         WHERE state = 'pending' AND next_attempt_at <= ?2 AND (lease_until IS NULL OR lease_until < ?2)
         ORDER BY next_attempt_at LIMIT ?3)
     RETURNING id, event_id, route, output, template, state, attempts, next_attempt_at, expires_at, created_at, last_error,
               interrupted, redraws, unless_status, dismissed_at, dismissed_by, dismiss_note";

/// Leases up to `limit` deliveries due at `now` until `until`. One statement, and no other
/// command runs in between, so two claimers can never take the same row.
pub(super) fn claim(tx: &Transaction<'_>, now: i64, until: i64, limit: u32) -> Result<Claimed, StoreError> {
    let mut claim = tx.prepare_cached(CLAIM)?;
    let deliveries = OwnedRow::all(&mut claim, params![until, now, limit])?;
    let mut event_ids: Vec<&str> = deliveries.iter().filter_map(|row| row.str("event_id")).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    let mut read = tx.prepare_cached(
        "SELECT id, received_at, vendor, event, kind, fields, payload,
                 body_encoding, CASE WHEN payload IS NULL THEN raw_body END AS raw_body
             FROM events WHERE id = ?1",
    )?;
    let mut events = Vec::with_capacity(event_ids.len());
    for id in event_ids {
        events.extend(OwnedRow::all(&mut read, [id])?);
    }
    Ok(Claimed { deliveries, events })
}

/// Puts a pending delivery back to wait until `at`, without counting an attempt.
pub(super) fn defer(tx: &Transaction<'_>, id: Ulid, at: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?1, lease_until = NULL WHERE id = ?2 AND state = 'pending'",
    )?
    .execute(params![at, id.to_string()])?;
    Ok(())
}

/// Makes the deliveries to `output` that wait out a retry step due at `now`; how many.
pub(super) fn pull_forward(tx: &Transaction<'_>, output: &str, now: i64) -> Result<u64, StoreError> {
    let pulled = tx.prepare_cached(crate::store::reads::PULL_FORWARD)?.execute(params![now, output])?;
    Ok(u64::try_from(pulled).unwrap_or_default())
}

/// Keeps the newest `keep` refused requests.
pub(super) fn trim_rejections(tx: &Transaction<'_>, keep: u32) -> Result<(), StoreError> {
    tx.prepare_cached(
        "DELETE FROM rejected_requests
         WHERE id <= (SELECT id FROM rejected_requests ORDER BY id DESC LIMIT 1 OFFSET ?1)",
    )?
    .execute([i64::from(keep)])?;
    Ok(())
}
