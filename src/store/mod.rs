//! The store: where an event is made durable before the vendor gets its 2xx.
//!
//! Stage 4 of the pipeline (… → router → **store** → delivery → …). [`Store`] is the one
//! interface; [`sqlite::SqliteStore`] is the embedded implementation. Writes go through a single
//! writer task that commits concurrent requests together (group commit), so durability costs one
//! flush per batch rather than one per request.

pub mod postgres;
mod rejection;
mod rows;
pub mod sqlite;
mod views;
mod wake;
mod writer;

pub use rejection::{REJECTED_BODY_KEEP, Rejection, ReprocessOutcome, Reprocessed};
pub use wake::Wake;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::body::BodyEncoding;
use crate::event::{Event, EventId};
use crate::secret::Secret;

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    /// From the SQLite writer thread, which talks to SQLite directly rather than through sqlx.
    #[error("database error: {0}")]
    Sqlite(Arc<rusqlite::Error>),
    #[error("database migration failed: {0}")]
    Migration(Arc<sqlx::migrate::MigrateError>),
    #[error("the store is shutting down")]
    Closed,
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the storage itself failed (a full disk, an I/O error, a read-only or damaged
    /// file) rather than one request: every write fails until someone fixes it.
    pub fn is_storage_failure(&self) -> bool {
        use rusqlite::ErrorCode;
        match self {
            Self::Sqlite(error) => matches!(
                error.sqlite_error_code(),
                Some(
                    ErrorCode::DiskFull
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::ReadOnly
                        | ErrorCode::CannotOpen
                        | ErrorCode::DatabaseCorrupt
                        | ErrorCode::NotADatabase
                )
            ),
            Self::Database(_) | Self::Migration(_) | Self::Closed | Self::Corrupt(_) => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(Arc::new(error))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(Arc::new(error))
    }
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
    /// [`Store::sequence`] when a later event of it is classified.
    pub sequence_key: Option<String>,
    /// Created with the event, in the same transaction; not created for a duplicate.
    pub deliveries: Vec<NewDelivery>,
    /// When the deliveries were planned: they are due, and their age counts, from here. The
    /// event's arrival, except for a refused request processed again later.
    pub planned_at: DateTime<Utc>,
}

/// One (route, output) an event must reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: Ulid,
    pub route: String,
    pub output: String,
    pub template: String,
    /// The route's ttl: past this the delivery is expired, not sent late.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewDelivery {
    /// A delivery planned at `at`: its id is of that time, so the queue serves in plan order.
    pub fn planned_at(
        at: DateTime<Utc>,
        route: String,
        output: String,
        template: String,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self { id: crate::event::monotonic_ulid(at), route, output, template, expires_at }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
    Expired,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Expired => "expired",
        }
    }

    /// Reads a state's name.
    ///
    /// # Errors
    /// Anything but `pending`, `delivered`, `dead` or `expired`.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "dead" => Ok(Self::Dead),
            "expired" => Ok(Self::Expired),
            other => Err(StoreError::Corrupt(format!("delivery state `{other}`"))),
        }
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Ulid,
    pub event_id: EventId,
    pub route: String,
    pub output: String,
    pub template: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Attempts cut short by a crash while they held the delivery: the destination may have got
    /// the message already, so a later attempt may be a duplicate.
    pub interrupted: u32,
}

/// One attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    /// `delivered`, `retry`, `dead` or `expired`.
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: String,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAt(DateTime<Utc>),
    Dead,
    Expired,
}

/// What [`Store::append`] did.
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
}

/// Filters for [`Store::events`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub vendor: Option<String>,
    pub kind: Option<String>,
    /// Only events received before this id (for paging, newest first).
    pub before: Option<EventId>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    /// Text the canonical fields contain, case-insensitively: a phone number's digits, an
    /// email address, a name.
    pub search: Option<String>,
    pub status: Option<EventStatus>,
    pub limit: u32,
}

/// Where an event's deliveries stand, as one word: what the events list filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// No route took it.
    Unrouted,
    /// Some delivery is still being tried.
    Pending,
    /// Every delivery arrived.
    Delivered,
    /// Some delivery is dead or expired.
    Failed,
}

impl EventStatus {
    pub const ALL: [Self; 4] = [Self::Unrouted, Self::Pending, Self::Delivered, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unrouted => "unrouted",
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// How many of an event's deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub pending: u32,
    pub delivered: u32,
    pub dead: u32,
    pub expired: u32,
}

impl DeliveryCounts {
    /// The event's status, given whether any route took it.
    pub fn status(&self, routed: bool) -> EventStatus {
        if self.dead + self.expired > 0 {
            EventStatus::Failed
        } else if self.pending > 0 {
            EventStatus::Pending
        } else if routed {
            EventStatus::Delivered
        } else {
            EventStatus::Unrouted
        }
    }
}

/// An output's most recent attempts, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputHealth {
    pub output: String,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// What the destination answered the last time it failed.
    pub last_failure: Option<String>,
}

/// The delivery queue at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Deliveries still to be sent (due or waiting for a retry).
    pub pending: u64,
    /// Of those, the ones due now.
    pub due: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    pub dead: u64,
}

/// Filters for [`Store::list_deliveries`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub state: Option<DeliveryState>,
    pub output: Option<String>,
    pub limit: u32,
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
}

/// Durable storage of events and rejected requests.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Makes an event durable, or recognises it as a duplicate. Returns only once it is on disk.
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError>;
    /// Keeps a refused request, pruning the oldest beyond the configured bound.
    async fn reject(&self, rejection: Rejection) -> Result<(), StoreError>;
    /// One event with its request.
    async fn event(&self, id: EventId) -> Result<Option<StoredEvent>, StoreError>;
    /// Events, newest first.
    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;
    /// Waits until no other instance sharing the store holds `key`'s sequence, and holds it
    /// until the lock is dropped.
    async fn lock_sequence(&self, _key: &str) -> Result<SequenceLock, StoreError> {
        Ok(SequenceLock::local())
    }
    /// The events stored with this sequence key and received at `since` or later, newest first,
    /// at most `limit` of them.
    async fn sequence(&self, key: &str, since: DateTime<Utc>, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;
    /// Refused requests, newest first.
    async fn rejections(&self, limit: u32) -> Result<Vec<Rejection>, StoreError>;
    /// One refused request.
    async fn rejection(&self, id: Ulid) -> Result<Option<Rejection>, StoreError>;
    /// Records that a refused request was processed again, and what came of it: the event it
    /// became, or the new reason it was refused for. The request stays kept either way.
    async fn reprocessed(&self, id: Ulid, at: DateTime<Utc>, outcome: ReprocessOutcome) -> Result<(), StoreError>;
    /// Takes up to `limit` pending deliveries that are due at `now` and not held by another
    /// worker, holding each until `now + lease`; returns them with their events.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<(Delivery, Event)>, StoreError>;
    /// Records an attempt and moves the delivery on; releases its lease.
    async fn finish_attempt(&self, delivery: Ulid, attempt: AttemptRecord, next: Next) -> Result<(), StoreError>;
    /// Puts a claimed delivery back, due at `at`, without counting an attempt (pacing).
    async fn defer(&self, delivery: Ulid, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// When the next pending delivery that no one holds falls due, if any. Deliveries under a
    /// lease are left out: the attempt holding one records what comes next, and a lease whose
    /// holder died is found by the workers' idle poll once it has expired.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The deliveries of one event.
    async fn deliveries(&self, event: EventId) -> Result<Vec<Delivery>, StoreError>;
    /// The attempts of one delivery, in order.
    async fn attempts(&self, delivery: Ulid) -> Result<Vec<AttemptRecord>, StoreError>;
    /// Deliveries across events, newest first, filtered by state and output.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError>;
    /// Adds deliveries to a stored event (a replay through today's routes) and records the
    /// routes that took it.
    async fn add_deliveries(
        &self,
        event: EventId,
        routes: &[String],
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError>;
    /// Makes dead or expired deliveries pending again, due now. `Some(id)` retries one;
    /// otherwise every dead one (of `output`, if given). Returns how many were requeued.
    async fn retry(&self, delivery: Option<Ulid>, output: Option<&str>) -> Result<u64, StoreError>;
    /// Deletes events received before `before` that have nothing pending (with their
    /// deliveries and attempts), and refusals older than that. Returns the events deleted.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Called once by the daemon at start: makes deliveries interrupted by a crash claimable
    /// again where that is safe. Returns how many were released. Tools that open the store
    /// beside a running daemon must not call it.
    async fn recover(&self) -> Result<u64, StoreError>;
    /// How each event's deliveries stand, for the events it is given (absent: none).
    async fn delivery_counts(
        &self,
        events: &[EventId],
    ) -> Result<std::collections::HashMap<EventId, DeliveryCounts>, StoreError>;
    /// Each output's last success and failure, for outputs that were ever tried.
    async fn output_health(&self) -> Result<Vec<OutputHealth>, StoreError>;
    /// The size and age of the delivery queue at `now`.
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Finishes pending writes and closes the database.
    async fn close(&self);
}

/// Where events are kept: `storage.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// An SQLite database file (created with its directory when missing).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL, shared by several instances; it may hold a password.
    Postgres(Secret),
}

/// Opens the store a URL names, running migrations.
///
/// # Errors
/// The database cannot be opened or migrated.
pub async fn open(url: &StorageUrl, rejected_keep: u32) -> Result<Arc<dyn Store>, StoreError> {
    match url {
        StorageUrl::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path, rejected_keep).await?)),
        StorageUrl::Postgres(secret) => {
            let options: sqlx::postgres::PgConnectOptions = secret.expose().parse()?;
            Ok(Arc::new(postgres::PostgresStore::open(options, rejected_keep).await?))
        }
    }
}

/// A delivery's state, next attempt time (ms) and last error after an attempt.
fn next_state(attempt: &AttemptRecord, next: Next) -> (DeliveryState, Option<i64>, Option<String>) {
    let (state, next_at) = match next {
        Next::Delivered => (DeliveryState::Delivered, None),
        Next::RetryAt(at) => (DeliveryState::Pending, Some(millis(at))),
        Next::Dead => (DeliveryState::Dead, None),
        Next::Expired => (DeliveryState::Expired, None),
    };
    let error = (!matches!(next, Next::Delivered)).then(|| attempt.detail.clone());
    (state, next_at, error)
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

#[cfg(test)]
mod tests;
