//! The store: where an event is made durable before the vendor gets its 2xx.
//!
//! Stage 4 of the pipeline (… → router → **store** → delivery → …). The interface is split by
//! who uses it: [`EventLog`] (ingest), [`Queue`] (delivery), [`Views`] (the operator) and
//! [`Lifecycle`] (the daemon); [`Store`] is all four. [`sqlite::SqliteStore`] is the embedded
//! implementation, [`postgres::PostgresStore`] the shared one. SQLite's writes go through a
//! single writer thread that commits concurrent requests together (group commit), so durability
//! costs one flush per batch rather than one per request.

mod desk;
mod log;
pub mod postgres;
mod queue;
mod reads;
mod rejection;
mod rows;
pub mod sqlite;
mod summary;
mod views;
mod wake;
mod writer;

pub use desk::{Desk, NewPress, Pressed};
pub use log::{Appended, EventLog, NewEvent, RequestRecord, SequenceLock, StoredEvent};
pub use queue::{
    AttemptRecord, CardDelivery, CardState, Delivery, DeliveryState, Dismissal, NewDelivery, Next, Queue,
    SENT_PART_KEEP,
};
pub use rejection::{REJECTED_BODY_KEEP, Rejection, ReprocessOutcome, Reprocessed};
pub use views::{
    DeliveryCounts, DeliveryQuery, EventQuery, EventStatus, OutputHealth, QueueStats, RejectionQuery, Views,
};
pub use wake::Wake;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

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
    /// Whether trying again later may succeed: the database was busy, locked, unreachable, out
    /// of connections, failing as storage (a full disk, an I/O error: what an operator fixes
    /// while the vendor retries), or the store is shutting down. Not so for stored data that
    /// cannot be decoded, a failed migration, or a statement the database refuses as written.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode;
        match self {
            // Shutting down, or its writer stopped: either way the vendor's retry reaches a
            // restarted daemon, so "later" is the useful answer.
            Self::Closed => true,
            Self::Corrupt(_) | Self::Migration(_) => false,
            Self::Sqlite(error) => {
                self.is_storage_failure()
                    || matches!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
            }
            Self::Database(error) => match error.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    if code.len() == 5 {
                        is_transient_sqlstate(&code)
                    } else {
                        // An SQLite result code, maybe extended (https://sqlite.org/rescode.html):
                        // busy, locked, full, and the storage failures of `is_storage_failure`
                        // (I/O error, read-only, cannot open, corrupt, not a database).
                        matches!(code.parse::<i32>().map(|n| n & 0xff), Ok(5 | 6 | 8 | 10 | 11 | 13 | 14 | 26))
                    }
                }),
                _ => false,
            },
        }
    }

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

/// Whether a PostgreSQL SQLSTATE is worth trying again
/// (<https://www.postgresql.org/docs/current/errcodes-appendix.html>): a lost connection (08),
/// too many connections, a full disk or memory (53, but not a configured limit, 53400), an
/// operator's or crash shutdown or a server still starting (57P01–57P03, 57P05; not a dropped
/// database, 57P04), a cancelled statement (57014), a transaction to run again (40001, 40003,
/// 40P01; not a constraint violated at commit, 40002), a lock not available (55P03), a standby
/// that cannot take writes after a failover (25006), an I/O error (58030).
fn is_transient_sqlstate(code: &str) -> bool {
    match code {
        "53400" | "57P04" | "40002" => false,
        "57014" | "55P03" | "25006" | "58030" => true,
        _ => ["08", "53", "57P", "40"].iter().any(|class| code.starts_with(class)),
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

/// What keeps the store running: retention, recovery after a crash, health, shutdown.
#[async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// Deletes events received before `before` that have nothing pending (with their
    /// deliveries and attempts), and refusals older than that. Returns the events deleted.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Called once by the daemon at start: makes deliveries interrupted by a crash claimable
    /// again where that is safe. Returns how many were released. Tools that open the store
    /// beside a running daemon must not call it.
    async fn recover(&self) -> Result<u64, StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Finishes pending writes and closes the database.
    async fn close(&self);
}

/// The whole store, by role: [`EventLog`] (ingest), [`Queue`] (delivery), [`Views`] (the
/// operator) and [`Lifecycle`] (the daemon). Each stage takes only the role it needs.
pub trait Store: EventLog + Queue + Views + Lifecycle + Desk {}

impl<T: EventLog + Queue + Views + Lifecycle + Desk> Store for T {}

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
        Next::Cancelled => (DeliveryState::Cancelled, None),
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
