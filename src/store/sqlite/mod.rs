//! The embedded store: one SQLite file in WAL mode. Events are committed with
//! `synchronous = FULL`, so an acknowledged event survives a crash or power loss; attempt
//! records use `NORMAL` (see [`writer`]). Every write of ingest and delivery — appends,
//! rejections, claims, attempt records, deferrals, pull-forwards, replays — goes through one writer thread
//! with group commit ([`writer`]), which also reads back what a claim leased; its log is copied
//! back by [`checkpoint`]. The operator's reads and the rare writes of operators and
//! housekeeping (hand retries, pruning, recovery at start) use a sqlx pool, and SQLite's single
//! writer lock serialises those with the writer thread.

mod actions;
mod checkpoint;
mod dedup;
mod owned_row;
mod statements;
mod writer;

pub use actions::operator_actions;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use ulid::Ulid;

use super::rows;
use super::{
    Appended, AttemptRecord, Delivery, EventLog, Lifecycle, NewDelivery, NewEvent, Next, Queue, Rejection,
    ReprocessOutcome, StoreError, StoredEvent, millis,
};
use crate::event::{Event, EventId, ID_DRIFT_MILLIS};
use writer::Writer;

/// Bytes per page of a new database file.
const PAGE_SIZE: u32 = 16 * 1024;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its directory, and migrates it.
    ///
    /// # Errors
    /// The file cannot be created or opened, or a migration fails.
    pub async fn open(path: &Path, rejected_keep: u32) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Takes effect when the file is created (an existing one keeps its size). An event
            // of a few KiB then fits in its table page instead of spilling into an overflow
            // page, and the log is written in a quarter as many frames.
            .page_size(PAGE_SIZE);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Migration(e.into()))?;
        let writer = Writer::start(path, rejected_keep)?;
        Ok(Self { pool, writer })
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        self.writer.append(event).await
    }

    async fn reject(&self, rejection: Rejection) -> Result<(), StoreError> {
        self.writer.reject(rejection).await
    }

    async fn sequence(&self, key: &str, since: DateTime<Utc>, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        reads::sequence(&self.pool, key, since, limit).await
    }

    async fn rejection(&self, id: Ulid) -> Result<Option<Rejection>, StoreError> {
        Ok(reads::rejections(&self.pool, &crate::store::RejectionQuery::latest(1), Some(id)).await?.pop())
    }

    async fn reprocessed(&self, id: Ulid, at: DateTime<Utc>, outcome: ReprocessOutcome) -> Result<(), StoreError> {
        reads::reprocessed(&self.pool, id, at, outcome).await
    }
}

#[async_trait]
impl Queue for SqliteStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<(Delivery, Event)>, StoreError> {
        // The claim is a write, so the writer thread makes it (no second writer to wait for
        // SQLite's lock), and reads the rows in the same transaction; they are decoded here.
        let until = now + chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::MAX);
        let claimed = self.writer.claim(millis(now), millis(until), limit).await?;
        let mut deliveries = claimed.deliveries.iter().map(rows::delivery).collect::<Result<Vec<_>, _>>()?;
        deliveries.sort_by_key(|delivery| delivery.next_attempt_at);
        rows::pair_with_events(deliveries, claimed.events.iter().map(rows::event))
    }

    async fn finish_attempt(&self, id: Ulid, attempt: AttemptRecord, next: Next) -> Result<(), StoreError> {
        self.writer.finish_attempt(id, attempt, next).await
    }

    async fn defer(&self, id: Ulid, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.writer.defer(id, millis(at)).await
    }

    async fn card(&self, event: EventId, output: &str) -> Result<crate::store::CardState, StoreError> {
        reads::card(&self.pool, event, output).await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        reads::next_due(&self.pool, Utc::now()).await
    }

    async fn add_deliveries(
        &self,
        event: EventId,
        routes: &[String],
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        self.writer.add_deliveries(event, routes, deliveries).await
    }

    async fn pull_forward(&self, output: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.writer.pull_forward(output, millis(now)).await
    }

    async fn retry(&self, delivery: Option<Ulid>, output: Option<&str>) -> Result<u64, StoreError> {
        reads::retry(&self.pool, delivery, output).await
    }

    async fn dismiss(
        &self,
        delivery: Option<Ulid>,
        output: Option<&str>,
        by: &super::Dismissal,
    ) -> Result<u64, StoreError> {
        reads::dismiss(&self.pool, delivery, output, by).await
    }
}

#[async_trait]
impl Lifecycle for SqliteStore {
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = millis(before);
        // IMMEDIATE waits for the writer thread's lock up front; a deferred transaction whose
        // snapshot went stale before its first write would fail at once with SQLITE_BUSY.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Found by id, the primary key (there is no index on `received_at`): an id's time is at
        // most a drift later than its event's arrival.
        let deleted = sqlx::query(
            "DELETE FROM events WHERE id < ?1 AND received_at < ?2
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state = 'pending')",
        )
        .bind(EventId::first_at_millis(before.saturating_add(ID_DRIFT_MILLIS + 1)).to_string())
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM rejected_requests WHERE received_at < ?").bind(before).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM handling WHERE updated_at < ?").bind(before).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM presses WHERE at < ?").bind(before).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        // An SQLite file serves one daemon, so leases still held when it starts belong to a
        // previous run that died mid-attempt: release them, and those deliveries resume at once
        // instead of waiting for the leases to expire.
        // Each was being sent, or about to be: counted as interrupted, a possible duplicate.
        let released = sqlx::query(
            "UPDATE deliveries SET lease_until = NULL, interrupted = interrupted + 1
             WHERE state = 'pending' AND lease_until IS NOT NULL",
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(released)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.writer.is_running() {
            return Err(StoreError::Closed);
        }
        if let Some(failure) = self.writer.failing() {
            // Webhooks are refused with 503 while writes fail; only a write tells whether they
            // work again, and none may come while a probe keeps the daemon out of rotation.
            self.writer.probe().await.map_err(|error| {
                tracing::debug!(message = "The store still cannot write.", %error, last = %failure);
                error
            })?;
        }
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.flush().await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests;

crate::store::desk::shared_desk!(SqliteStore);

/// The reads both stores share ([`super::reads`]) over this pool, and its [`Views`].
mod reads {
    crate::store::reads::shared_reads!(
        super::SqliteStore,
        sqlx::sqlite::SqlitePool,
        ids_from_json = "SELECT value FROM json_each($1)"
    );
}
