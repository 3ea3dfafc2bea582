//! The event log: what ingest writes and reads back — events made durable before the vendor's
//! 2xx, a sequence's earlier events, and refused requests kept for the operator.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::{NewDelivery, Rejection, ReprocessOutcome, StoreError};
use crate::body::BodyEncoding;
use crate::event::{Event, EventId};

/// Events and refused requests, as ingest writes and reads them.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Makes an event durable, or recognises it as a duplicate. Returns only once it is on disk.
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError>;
    /// Keeps a refused request, pruning the oldest beyond the configured bound.
    async fn reject(&self, rejection: Rejection) -> Result<(), StoreError>;
    /// Waits until no other instance sharing the store holds `key`'s sequence, and holds it
    /// until the lock is dropped.
    async fn lock_sequence(&self, _key: &str) -> Result<SequenceLock, StoreError> {
        Ok(SequenceLock::local())
    }
    /// The events stored with this sequence key and received at `since` or later, newest first,
    /// at most `limit` of them.
    async fn sequence(&self, key: &str, since: DateTime<Utc>, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;
    /// One refused request.
    async fn rejection(&self, id: Ulid) -> Result<Option<Rejection>, StoreError>;
    /// Records that a refused request was processed again, and what came of it: the event it
    /// became, or the new reason it was refused for. The request stays kept either way.
    async fn reprocessed(&self, id: Ulid, at: DateTime<Utc>, outcome: ReprocessOutcome) -> Result<(), StoreError>;
}

/// How a request reached us, with secrets masked: kept with every event and rejection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub remote_addr: Option<String>,
}

/// An event to store, with what is needed to recognise the vendor's retries of it and the
/// deliveries the router decided on.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub dedup_key: String,
    pub dedup_window: Duration,
    /// Ingest knows the event repeats none stored before, though an earlier one has its dedup
    /// key (a visitor's second call: `plugin::Repeat::Anew`). It is stored without looking for
    /// a repeat, and is the event its key's later repeats find.
    pub anew: bool,
    pub request: RequestRecord,
    pub raw_body: Bytes,
    /// The raw body is the payload's whole record, read this way
    /// (`plugin::Normalized::payload_from_body`): the payload is kept once, as the body, and read
    /// back by decoding it again.
    pub payload_from_body: Option<BodyEncoding>,
    /// Names of the routes that took the event; empty means unrouted.
    pub routes: Vec<String>,
    /// The sequence the event belongs to (`plugin::SequenceRef::key`), found again by
    /// [`EventLog::sequence`] when a later event of it is classified.
    pub sequence_key: Option<String>,
    /// The event that began this run of the sequence (a call's `start`; the event itself when
    /// it begins one, or when no earlier event of the run is stored). Its events share one live
    /// card at an output that can edit a message.
    pub sequence_start: Option<EventId>,
    /// Created with the event, in the same transaction; not created for a duplicate.
    pub deliveries: Vec<NewDelivery>,
    /// When the deliveries were planned: they are due, and their age counts, from here. The
    /// event's arrival, except for a refused request processed again later.
    pub planned_at: DateTime<Utc>,
}

/// What [`EventLog::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored as a new event.
    Stored(EventId),
    /// The vendor sent this event before, within the dedup window: counted, not stored again.
    Duplicate(EventId),
}

impl Appended {
    /// The id of the stored event (the original, for a duplicate).
    pub fn id(&self) -> EventId {
        match self {
            Self::Stored(id) | Self::Duplicate(id) => *id,
        }
    }
}

/// An event as stored, with the request that brought it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub event: Event,
    /// The routes that took it; empty: unrouted.
    pub routes: Vec<String>,
    pub dedup_key: String,
    pub duplicates: u32,
    pub request: RequestRecord,
    pub raw_body: Bytes,
    /// The vendor sequence it belongs to (`NewEvent::sequence_key`), if any.
    pub sequence_key: Option<String>,
    /// The event that began its run of the sequence (`NewEvent::sequence_start`).
    pub sequence_start: Option<EventId>,
}

/// Held while an event of a vendor sequence is read, classified and stored: another instance
/// sharing the store waits for it before reading the same sequence. Dropping it lets it go.
pub struct SequenceLock {
    /// What keeps the lock while it lives (PostgreSQL: the transaction that took it).
    _held: Option<Box<dyn std::any::Any + Send>>,
}

impl SequenceLock {
    /// A lock that holds nothing: the store serves one daemon, whose own turns suffice.
    pub fn local() -> Self {
        Self { _held: None }
    }

    /// A lock that lasts as long as `held` does (PostgreSQL: the transaction that took it).
    pub fn holding(held: Box<dyn std::any::Any + Send>) -> Self {
        Self { _held: Some(held) }
    }
}
