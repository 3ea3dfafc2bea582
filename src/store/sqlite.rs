//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so a committed
//! event survives a crash or power loss.
//!
//! All writes go through one writer task. It takes every job waiting in its queue (up to
//! [`MAX_BATCH`]) and commits them in one transaction: under load, many requests share one
//! flush, and SQLite never sees two writers fight over its lock.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{
    Appended, AttemptRecord, Delivery, DeliveryState, EventQuery, NewEvent, Next, Rejection, Store, StoreError,
    StoredEvent, from_millis, millis,
};
use chrono::{DateTime, Utc};
use ulid::Ulid;

use crate::event::{Event, EventId};

/// Most jobs committed in one transaction; bounds the latency a single batch can add.
const MAX_BATCH: usize = 512;
/// Requests waiting for the writer beyond this are held back (the ingest handler waits), which
/// bounds memory under a flood.
const QUEUE_DEPTH: usize = 8192;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<WriteJob>,
}

enum WriteJob {
    Append(Box<NewEvent>, oneshot::Sender<Result<Appended, StoreError>>),
    Reject(Box<Rejection>, oneshot::Sender<Result<(), StoreError>>),
    /// Answered once every job queued before it is committed.
    Flush(oneshot::Sender<()>),
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
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Migration(e.into()))?;
        let (writer, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run_writer(pool.clone(), queue, rejected_keep));
        Ok(Self { pool, writer })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer.send(WriteJob::Append(Box::new(event), reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn reject(&self, rejection: Rejection) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer.send(WriteJob::Reject(Box::new(rejection), reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn event(&self, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
        let row = sqlx::query(
            "SELECT id, received_at, vendor, event, kind, fields, payload, dedup_key, duplicates, request, raw_body, routes
             FROM events WHERE id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| stored_event(&row)).transpose()
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, vendor, event, kind, fields, payload, dedup_key, duplicates, request, raw_body, routes
             FROM events
             WHERE (?1 IS NULL OR vendor = ?1) AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?4",
        )
        .bind(query.vendor.as_deref())
        .bind(query.kind.as_deref())
        .bind(query.before.map(|id| id.to_string()))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_event).collect()
    }

    async fn rejections(&self, limit: u32) -> Result<Vec<Rejection>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, vendor, status, reason, message, request, raw_body
             FROM rejected_requests ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Rejection {
                    id: row.try_get::<String, _>("id")?.parse().map_err(|e| corrupt("rejection id", e))?,
                    received_at: from_millis(row.try_get("received_at")?),
                    vendor: row.try_get("vendor")?,
                    status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or_default(),
                    reason: row.try_get("reason")?,
                    message: row.try_get("message")?,
                    request: json_column(row, "request")?,
                    raw_body: row.try_get::<Vec<u8>, _>("raw_body")?.into(),
                })
            })
            .collect()
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<(Delivery, Event)>, StoreError> {
        let now_ms = millis(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        // One statement claims and returns: SQLite runs it under its write lock, so two workers
        // can never take the same row.
        let rows = sqlx::query(
            "UPDATE deliveries SET lease_until = ?1, updated_at = ?2
             WHERE id IN (
                 SELECT id FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at <= ?2 AND (lease_until IS NULL OR lease_until < ?2)
                 ORDER BY next_attempt_at LIMIT ?3)
             RETURNING id, event_id, route, output, template, state, attempts, next_attempt_at, expires_at, created_at, last_error",
        )
        .bind(until)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery(row)?;
            match self.event(delivery.event_id).await? {
                Some(stored) => claimed.push((delivery, stored.event)),
                None => return Err(corrupt("delivery", format!("{} has no event", delivery.id))),
            }
        }
        Ok(claimed)
    }

    async fn finish_attempt(&self, id: Ulid, attempt: AttemptRecord, next: Next) -> Result<(), StoreError> {
        let (state, next_at) = match next {
            Next::Delivered => (DeliveryState::Delivered, None),
            Next::RetryAt(at) => (DeliveryState::Pending, Some(millis(at))),
            Next::Dead => (DeliveryState::Dead, None),
            Next::Expired => (DeliveryState::Expired, None),
        };
        let error = (!matches!(next, Next::Delivered)).then(|| attempt.detail.clone());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, outcome, reason, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(i64::from(attempt.number))
        .bind(millis(attempt.started_at))
        .bind(i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX))
        .bind(&attempt.outcome)
        .bind(attempt.reason.as_deref())
        .bind(&attempt.detail)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = COALESCE(?, next_attempt_at),
                 lease_until = NULL, updated_at = ?, last_error = ?
             WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(i64::from(attempt.number))
        .bind(next_at)
        .bind(millis(Utc::now()))
        .bind(error)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, 0))) FROM deliveries WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.map(from_millis))
    }

    async fn deliveries(&self, event: EventId) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, route, output, template, state, attempts, next_attempt_at, expires_at, created_at, last_error
             FROM deliveries WHERE event_id = ? ORDER BY id",
        )
        .bind(event.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    async fn attempts(&self, id: Ulid) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT number, started_at, duration_ms, outcome, reason, detail FROM attempts WHERE delivery_id = ? ORDER BY number",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AttemptRecord {
                    number: u32::try_from(row.try_get::<i64, _>("number")?).unwrap_or_default(),
                    started_at: from_millis(row.try_get("started_at")?),
                    duration: Duration::from_millis(
                        u64::try_from(row.try_get::<i64, _>("duration_ms")?).unwrap_or_default(),
                    ),
                    outcome: row.try_get("outcome")?,
                    reason: row.try_get("reason")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.writer.send(WriteJob::Flush(reply)).await.is_ok() {
            let _ = done.await;
        }
        self.pool.close().await;
    }
}

fn stored_event(row: &SqliteRow) -> Result<StoredEvent, StoreError> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    Ok(StoredEvent {
        event: Event {
            id: id.parse().map_err(|e| corrupt("event id", e))?,
            received_at: from_millis(row.try_get("received_at")?),
            vendor: row.try_get("vendor")?,
            event: row.try_get("event")?,
            kind: crate::event::Kind::parse(&kind).map_err(|e| corrupt("kind", e))?,
            fields: json_column(row, "fields")?,
            payload: json_column(row, "payload")?,
        },
        routes: json_column(row, "routes")?,
        dedup_key: row.try_get("dedup_key")?,
        duplicates: u32::try_from(row.try_get::<i64, _>("duplicates")?).unwrap_or_default(),
        request: json_column(row, "request")?,
        raw_body: row.try_get::<Vec<u8>, _>("raw_body")?.into(),
    })
}

fn delivery(row: &SqliteRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: row.try_get::<String, _>("id")?.parse().map_err(|e| corrupt("delivery id", e))?,
        event_id: row.try_get::<String, _>("event_id")?.parse().map_err(|e| corrupt("event id", e))?,
        route: row.try_get("route")?,
        output: row.try_get("output")?,
        template: row.try_get("template")?,
        state: DeliveryState::parse(&row.try_get::<String, _>("state")?)?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or_default(),
        next_attempt_at: from_millis(row.try_get("next_attempt_at")?),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(from_millis),
        created_at: from_millis(row.try_get("created_at")?),
        last_error: row.try_get("last_error")?,
    })
}

fn json_column<T: serde::de::DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e))
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

async fn run_writer(pool: SqlitePool, mut queue: mpsc::Receiver<WriteJob>, rejected_keep: u32) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let outcome = write_batch(&pool, &jobs, rejected_keep).await;
        if let Err(error) = &outcome {
            tracing::error!(message = "Store write failed; the batch's requests are answered with an error.", %error, jobs = jobs.len());
        }
        let mut results = outcome.as_ref().ok().map(|r| r.iter());
        for job in jobs.drain(..) {
            let result = match (&outcome, results.as_mut().and_then(Iterator::next)) {
                (Ok(_), Some(done)) => Ok(*done),
                (Err(error), _) => Err(error.clone()),
                (Ok(_), None) => Err(StoreError::Corrupt("writer lost track of a job".into())),
            };
            match job {
                WriteJob::Append(_, reply) => {
                    let _ = reply.send(result.map(|done| done.expect("append jobs produce an Appended result")));
                }
                WriteJob::Reject(_, reply) => {
                    let _ = reply.send(result.map(|_| ()));
                }
                WriteJob::Flush(reply) => {
                    let _ = reply.send(());
                }
            }
        }
    }
}

/// Writes a batch in one transaction; one result per job (`None` for non-append jobs).
async fn write_batch(
    pool: &SqlitePool,
    jobs: &[WriteJob],
    rejected_keep: u32,
) -> Result<Vec<Option<Appended>>, StoreError> {
    if jobs.iter().all(|job| matches!(job, WriteJob::Flush(_))) {
        return Ok(jobs.iter().map(|_| None).collect());
    }
    // IMMEDIATE takes the write lock up front. A deferred transaction that reads (the dedup
    // check) and then writes fails at once with SQLITE_BUSY if another connection (the
    // delivery workers) committed in between: a stale snapshot cannot wait for the lock.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(jobs.len());
    let mut rejected = false;
    for job in jobs {
        results.push(match job {
            WriteJob::Append(new, _) => Some(append_one(&mut tx, new).await?),
            WriteJob::Reject(rejection, _) => {
                insert_rejection(&mut tx, rejection).await?;
                rejected = true;
                None
            }
            WriteJob::Flush(_) => None,
        });
    }
    if rejected {
        sqlx::query(
            "DELETE FROM rejected_requests WHERE id <= (SELECT id FROM rejected_requests ORDER BY id DESC LIMIT 1 OFFSET ?)",
        )
        .bind(i64::from(rejected_keep))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(results)
}

async fn append_one(tx: &mut Transaction<'_, Sqlite>, new: &NewEvent) -> Result<Appended, StoreError> {
    let event = &new.event;
    let window = i64::try_from(new.dedup_window.as_millis()).unwrap_or(i64::MAX);
    let since = millis(event.received_at).saturating_sub(window);
    let original: Option<String> = sqlx::query_scalar(
        "SELECT id FROM events WHERE vendor = ? AND dedup_key = ? AND received_at >= ? ORDER BY received_at LIMIT 1",
    )
    .bind(&event.vendor)
    .bind(&new.dedup_key)
    .bind(since)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(original) = original {
        sqlx::query("UPDATE events SET duplicates = duplicates + 1 WHERE id = ?")
            .bind(&original)
            .execute(&mut **tx)
            .await?;
        return Ok(Appended::Duplicate(original.parse().map_err(|e| corrupt("event id", e))?));
    }
    sqlx::query(
        "INSERT INTO events (id, received_at, vendor, event, kind, fields, payload, dedup_key, request, raw_body, routes)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event.id.to_string())
    .bind(millis(event.received_at))
    .bind(&event.vendor)
    .bind(&event.event)
    .bind(event.kind.as_str())
    .bind(to_json(&event.fields)?)
    .bind(to_json(&event.payload)?)
    .bind(&new.dedup_key)
    .bind(to_json(&new.request)?)
    .bind(new.raw_body.as_ref())
    .bind(to_json(&new.routes)?)
    .execute(&mut **tx)
    .await?;
    let now = millis(event.received_at);
    for delivery in &new.deliveries {
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, route, output, template, state, next_attempt_at, expires_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        )
        .bind(delivery.id.to_string())
        .bind(event.id.to_string())
        .bind(&delivery.route)
        .bind(&delivery.output)
        .bind(&delivery.template)
        .bind(now)
        .bind(delivery.expires_at.map(millis))
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Appended::Stored(event.id))
}

async fn insert_rejection(tx: &mut Transaction<'_, Sqlite>, rejection: &Rejection) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rejected_requests (id, received_at, vendor, status, reason, message, request, raw_body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(rejection.id.to_string())
    .bind(millis(rejection.received_at))
    .bind(rejection.vendor.as_deref())
    .bind(i64::from(rejection.status))
    .bind(&rejection.reason)
    .bind(&rejection.message)
    .bind(to_json(&rejection.request)?)
    .bind(&rejection.raw_body[..rejection.raw_body.len().min(super::REJECTED_BODY_KEEP)])
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt("serialising", e))
}
