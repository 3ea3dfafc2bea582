//! The shared store: PostgreSQL, for several instances behind a load balancer.
//!
//! Every instance appends with group commit and claims deliveries with
//! `FOR UPDATE SKIP LOCKED` under a lease; a lease that expires (its instance died) makes the
//! delivery claimable again. Dedup holds across instances through a primary key.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use ulid::Ulid;

use super::rows::{self, corrupt, to_json};
use super::writer::{Batch, Job, Writer};

use super::{
    Appended, AttemptRecord, Delivery, EventLog, Lifecycle, NewDelivery, NewEvent, Next, Queue, Rejection,
    ReprocessOutcome, SequenceLock, StoreError, StoredEvent, millis, next_state,
};
use crate::body::BodyEncoding;
use crate::event::handling::Status;
use crate::event::{Event, EventId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/postgres");

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    writer: Writer,
    /// Connections that hold sequence locks, apart from `pool`: a lock is held until its event
    /// is committed, which the writer does on a connection of `pool`.
    locks: PgPool,
}

impl PostgresStore {
    /// Connects and migrates (instances starting together take turns: sqlx migrations lock).
    ///
    /// # Errors
    /// The server cannot be reached, or a migration fails.
    pub async fn open(options: PgConnectOptions, rejected_keep: u32) -> Result<Self, StoreError> {
        // Opened when the first event of a sequence arrives; most deployments of other vendors
        // never open one.
        let locks = PgPoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.clone());
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Migration(e.into()))?;
        let writer = Writer::start(PostgresBatch { pool: pool.clone(), rejected_keep });
        Ok(Self { pool, writer, locks })
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        self.writer.append(event).await
    }

    async fn reject(&self, rejection: Rejection) -> Result<(), StoreError> {
        self.writer.reject(rejection).await
    }

    async fn lock_sequence(&self, key: &str) -> Result<SequenceLock, StoreError> {
        // A transaction's advisory lock: rolled back when the guard is dropped (sqlx rolls back a
        // transaction dropped uncommitted), which releases it; a connection lost releases it too.
        let mut transaction = self.locks.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *transaction)
            .await?;
        Ok(SequenceLock::holding(Box::new(transaction)))
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
impl Queue for PostgresStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<(Delivery, Event)>, StoreError> {
        let now_ms = millis(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        // SKIP LOCKED: instances claiming at once each take different rows, and none waits.
        let rows = sqlx::query(
            // A lease still held is an attempt its instance never finished: counted (see CLAIM in
            // the SQLite store).
            "UPDATE deliveries SET lease_until = $1, updated_at = $2,
                 interrupted = interrupted + CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END
             WHERE id IN (
                 SELECT id FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
                 ORDER BY next_attempt_at LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, event_id, route, output, template, state, attempts, next_attempt_at, expires_at, created_at,
                       last_error, interrupted, redraws, unless_status, dismissed_at, dismissed_by, dismiss_note",
        )
        .bind(until)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let deliveries = rows.iter().map(rows::delivery).collect::<Result<Vec<_>, _>>()?;
        // The batch's events in one query rather than one each.
        let ids: Vec<String> = deliveries.iter().map(|d| d.event_id.to_string()).collect();
        let events = sqlx::query(
            "SELECT id, received_at, vendor, event, kind, fields, payload,
                     body_encoding, CASE WHEN payload IS NULL THEN raw_body END AS raw_body
                 FROM events WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        rows::pair_with_events(deliveries, events.iter().map(rows::event))
    }

    async fn finish_attempt(&self, id: Ulid, attempt: AttemptRecord, next: Next) -> Result<(), StoreError> {
        let (state, next_at, error) = next_state(&attempt, next);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, outcome, reason, detail, action,
                                   remote_id, message)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (delivery_id, number) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(i64::from(attempt.number))
        .bind(millis(attempt.started_at))
        .bind(i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX))
        .bind(&attempt.outcome)
        .bind(attempt.reason.as_deref())
        .bind(&attempt.detail)
        .bind(attempt.action.as_deref())
        .bind(attempt.remote_id.as_deref())
        .bind(attempt.sent.as_deref())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET state = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at),
                 lease_until = NULL, updated_at = $4, last_error = $5, remote_id = COALESCE($7, remote_id)
             WHERE id = $6",
        )
        .bind(state.as_str())
        .bind(i64::from(attempt.number))
        .bind(next_at)
        .bind(millis(Utc::now()))
        .bind(error)
        .bind(id.to_string())
        .bind(attempt.remote_id.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn defer(&self, id: Ulid, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $1, lease_until = NULL WHERE id = $2 AND state = 'pending'",
        )
        .bind(millis(at))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
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
        let now = millis(Utc::now());
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE events SET routes = $1 WHERE id = $2")
            .bind(to_json(&routes)?)
            .bind(event.to_string())
            .execute(&mut *tx)
            .await?;
        for delivery in deliveries {
            insert_delivery(&mut tx, event, delivery, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pull_forward(&self, output: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let pulled = sqlx::query(crate::store::reads::PULL_FORWARD)
            .bind(crate::store::millis(now))
            .bind(output)
            .execute(&self.pool)
            .await?;
        Ok(pulled.rows_affected())
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
impl Lifecycle for PostgresStore {
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = millis(before);
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM events WHERE received_at < $1
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state = 'pending')",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM rejected_requests WHERE received_at < $1").bind(before).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM handling WHERE updated_at < $1").bind(before).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM presses WHERE at < $1").bind(before).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM dedup_keys WHERE seen_at < $1").bind(before).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        // Other instances may hold live leases: a dead instance's leases expire instead.
        Ok(0)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.flush().await;
        self.pool.close().await;
        self.locks.close().await;
    }
}

struct PostgresBatch {
    pool: PgPool,
    rejected_keep: u32,
}

#[async_trait]
impl Batch for PostgresBatch {
    async fn write(&self, jobs: &[Job]) -> Result<Vec<Option<Appended>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut results = Vec::with_capacity(jobs.len());
        let mut rejected = false;
        for job in jobs {
            results.push(match job {
                Job::Append(new, _) => Some(append_one(&mut tx, new).await?),
                Job::Reject(rejection, _) => {
                    insert_rejection(&mut tx, rejection).await?;
                    rejected = true;
                    None
                }
                Job::Flush(_) => None,
            });
        }
        if rejected {
            sqlx::query(
                "DELETE FROM rejected_requests
                 WHERE id <= (SELECT id FROM rejected_requests ORDER BY id DESC LIMIT 1 OFFSET $1)",
            )
            .bind(i64::from(self.rejected_keep))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(results)
    }
}

async fn append_one(tx: &mut Transaction<'_, Postgres>, new: &NewEvent) -> Result<Appended, StoreError> {
    let event = &new.event;
    let window = i64::try_from(new.dedup_window.as_millis()).unwrap_or(i64::MAX);
    let received = millis(event.received_at);
    // Claim the key unless another event holds it within the window. A concurrent instance
    // inserting the same key waits on the row lock here, then sees the conflict.
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO dedup_keys (vendor, dedup_key, event_id, seen_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (vendor, dedup_key) DO UPDATE SET event_id = EXCLUDED.event_id, seen_at = EXCLUDED.seen_at
             WHERE dedup_keys.seen_at < $5
         RETURNING event_id",
    )
    .bind(&event.vendor)
    .bind(&new.dedup_key)
    .bind(event.id.to_string())
    .bind(received)
    // An event known to be new takes the key whatever holds it.
    .bind(if new.anew { i64::MAX } else { received.saturating_sub(window) })
    .fetch_optional(&mut **tx)
    .await?;
    if claimed.is_none() {
        let original: String =
            sqlx::query_scalar("SELECT event_id FROM dedup_keys WHERE vendor = $1 AND dedup_key = $2")
                .bind(&event.vendor)
                .bind(&new.dedup_key)
                .fetch_one(&mut **tx)
                .await?;
        sqlx::query("UPDATE events SET duplicates = duplicates + 1 WHERE id = $1")
            .bind(&original)
            .execute(&mut **tx)
            .await?;
        return Ok(Appended::Duplicate(original.parse().map_err(|e| corrupt("event id", e))?));
    }
    sqlx::query(
        "INSERT INTO events (id, received_at, vendor, event, kind, fields, payload, body_encoding, dedup_key, request,
                             raw_body, routes, sequence_key, sequence_start)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(event.id.to_string())
    .bind(received)
    .bind(&event.vendor)
    .bind(&event.event)
    .bind(event.kind.as_str())
    .bind(to_json(&event.fields)?)
    .bind(if new.payload_from_body.is_some() { None } else { Some(to_json(&event.payload)?) })
    .bind(new.payload_from_body.map(BodyEncoding::as_str))
    .bind(&new.dedup_key)
    .bind(to_json(&new.request)?)
    .bind(new.raw_body.as_ref())
    .bind(to_json(&new.routes)?)
    .bind(new.sequence_key.as_deref())
    .bind(new.sequence_start.map(|id| id.to_string()))
    .execute(&mut **tx)
    .await?;
    for delivery in &new.deliveries {
        insert_delivery(tx, event.id, delivery, millis(new.planned_at)).await?;
    }
    Ok(Appended::Stored(event.id))
}

async fn insert_delivery(
    tx: &mut Transaction<'_, Postgres>,
    event: EventId,
    delivery: &NewDelivery,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deliveries (id, event_id, route, output, template, state, next_attempt_at, expires_at, created_at,
                                 updated_at, redraws, unless_status)
         VALUES ($1, $2, $3, $4, $5, 'pending', GREATEST($6, COALESCE($9, $6)), $7, GREATEST($6, COALESCE($9, $6)), $6,
                 $8, $10)",
    )
    .bind(delivery.id.to_string())
    .bind(event.to_string())
    .bind(&delivery.route)
    .bind(&delivery.output)
    .bind(&delivery.template)
    .bind(now)
    .bind(delivery.expires_at.map(millis))
    .bind(delivery.redraws.as_deref())
    .bind(delivery.not_before.map(millis))
    .bind(delivery.unless.map(Status::as_str))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_rejection(tx: &mut Transaction<'_, Postgres>, rejection: &Rejection) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rejected_requests (id, received_at, vendor, status, reason, message, request, raw_body, body_size)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(rejection.id.to_string())
    .bind(millis(rejection.received_at))
    .bind(rejection.vendor.as_deref())
    .bind(i64::from(rejection.status))
    .bind(&rejection.reason)
    .bind(&rejection.message)
    .bind(to_json(&rejection.request)?)
    .bind(&rejection.raw_body[..])
    .bind(i64::try_from(rejection.body_size).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

super::desk::shared_desk!(PostgresStore);

/// The reads both stores share ([`super::reads`]) over this pool, and its [`Views`].
mod reads {
    super::super::reads::shared_reads!(
        super::PostgresStore,
        sqlx::postgres::PgPool,
        ids_from_json = "SELECT json_array_elements_text(CAST($1 AS json))"
    );
}
