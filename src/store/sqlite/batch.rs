//! Group commit on SQLite: a batch of appends and rejections in one transaction and a
//! handful of statements, whatever its size.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::sqlite::SqlitePool;
use sqlx::{Row, Sqlite, Transaction};

use super::SqliteStore;
use crate::event::EventId;
use crate::store::rows::{corrupt, to_json};
use crate::store::writer::{Batch, Job};
use crate::store::{Appended, NewDelivery, NewEvent, Rejection, StoreError, millis};

pub(super) struct SqliteBatch {
    pub(super) pool: SqlitePool,
    pub(super) rejected_keep: u32,
}

#[async_trait]
impl Batch for SqliteBatch {
    /// The whole batch in a handful of statements: one dedup lookup, one multi-row insert of
    /// events and one of deliveries. Every statement is a round trip to SQLite's thread, so a
    /// statement per event would cap the batch, not the disk.
    async fn write(&self, jobs: &[Job]) -> Result<Vec<Option<Appended>>, StoreError> {
        let mut tx = SqliteStore::write_transaction(&self.pool).await?;
        let appends: Vec<&NewEvent> =
            jobs.iter().filter_map(|job| if let Job::Append(new, _) = job { Some(&**new) } else { None }).collect();
        let mut seen = recent_dedup_keys(&mut tx, &appends).await?;
        let mut stored: Vec<&NewEvent> = Vec::with_capacity(appends.len());
        let mut repeats: HashMap<String, i64> = HashMap::new();
        let mut results = Vec::with_capacity(jobs.len());
        let mut rejected = false;
        for job in jobs {
            results.push(match job {
                Job::Append(new, _) => {
                    let since = millis(new.event.received_at).saturating_sub(window_ms(new));
                    let key = (new.event.vendor.clone(), new.dedup_key.clone());
                    match seen.get(&key) {
                        // The vendor sent this before, within the window (earlier in this batch
                        // or already stored): counted on the original, not stored again.
                        Some((original, at)) if *at >= since => {
                            *repeats.entry(original.clone()).or_default() += 1;
                            Some(Appended::Duplicate(original.parse().map_err(|e| corrupt("event id", e))?))
                        }
                        _ => {
                            seen.insert(key, (new.event.id.to_string(), millis(new.event.received_at)));
                            stored.push(new);
                            Some(Appended::Stored(new.event.id))
                        }
                    }
                }
                Job::Reject(rejection, _) => {
                    insert_rejection(&mut tx, rejection).await?;
                    rejected = true;
                    None
                }
                Job::Flush(_) => None,
            });
        }
        insert_events(&mut tx, &stored).await?;
        for (original, count) in repeats {
            sqlx::query("UPDATE events SET duplicates = duplicates + ? WHERE id = ?")
                .bind(count)
                .bind(original)
                .execute(&mut *tx)
                .await?;
        }
        if rejected {
            sqlx::query(
                "DELETE FROM rejected_requests
                 WHERE id <= (SELECT id FROM rejected_requests ORDER BY id DESC LIMIT 1 OFFSET ?)",
            )
            .bind(i64::from(self.rejected_keep))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(results)
    }
}

fn window_ms(new: &NewEvent) -> i64 {
    i64::try_from(new.dedup_window.as_millis()).unwrap_or(i64::MAX)
}

/// For each (vendor, dedup key) of the batch, the earliest stored event with it inside the
/// widest dedup window of the batch: its id and arrival time. The writer task is the only
/// writer of events, so nothing can slip in between this and the inserts.
async fn recent_dedup_keys(
    tx: &mut Transaction<'_, Sqlite>,
    appends: &[&NewEvent],
) -> Result<HashMap<(String, String), (String, i64)>, StoreError> {
    let mut seen = HashMap::new();
    let Some(since) = appends.iter().map(|new| millis(new.event.received_at).saturating_sub(window_ms(new))).min()
    else {
        return Ok(seen);
    };
    let keys: Vec<(&str, &str)> =
        appends.iter().map(|new| (new.event.vendor.as_str(), new.dedup_key.as_str())).collect();
    let rows = sqlx::query(
        "SELECT id, vendor, dedup_key, received_at FROM events
         WHERE received_at >= ?1
           AND (vendor, dedup_key) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2))
         ORDER BY received_at",
    )
    .bind(since)
    .bind(to_json(&keys)?)
    .fetch_all(&mut **tx)
    .await?;
    for row in &rows {
        let key = (row.try_get::<String, _>("vendor")?, row.try_get::<String, _>("dedup_key")?);
        // Ordered by arrival: the first seen is the original.
        seen.entry(key).or_insert((row.try_get("id")?, row.try_get("received_at")?));
    }
    Ok(seen)
}

/// SQLite allows 32,766 bound values per statement; rows go in chunks well below that.
const ROWS_PER_INSERT: usize = 500;

async fn insert_events(tx: &mut Transaction<'_, Sqlite>, events: &[&NewEvent]) -> Result<(), StoreError> {
    for chunk in events.chunks(ROWS_PER_INSERT) {
        // Serialised first: the row closure below cannot return an error.
        let mut rows = Vec::with_capacity(chunk.len());
        for new in chunk {
            let event = &new.event;
            rows.push((
                to_json(&event.fields)?,
                to_json(&event.payload)?,
                to_json(&new.request)?,
                to_json(&new.routes)?,
                *new,
            ));
        }
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, received_at, vendor, event, kind, fields, payload, dedup_key, request, raw_body, routes) ",
        );
        insert.push_values(rows, |mut row, (fields, payload, request, routes, new)| {
            let event = &new.event;
            row.push_bind(event.id.to_string())
                .push_bind(millis(event.received_at))
                .push_bind(event.vendor.clone())
                .push_bind(event.event.clone())
                .push_bind(event.kind.as_str().to_owned())
                .push_bind(fields)
                .push_bind(payload)
                .push_bind(new.dedup_key.clone())
                .push_bind(request)
                .push_bind(new.raw_body.to_vec())
                .push_bind(routes);
        });
        insert.build().execute(&mut **tx).await?;
    }
    let deliveries: Vec<(EventId, i64, &NewDelivery)> = events
        .iter()
        .flat_map(|new| new.deliveries.iter().map(|d| (new.event.id, millis(new.event.received_at), d)))
        .collect();
    insert_deliveries(tx, &deliveries).await
}

/// Pending deliveries: (event, created at in ms, delivery).
pub(super) async fn insert_deliveries(
    tx: &mut Transaction<'_, Sqlite>,
    deliveries: &[(EventId, i64, &NewDelivery)],
) -> Result<(), StoreError> {
    for chunk in deliveries.chunks(ROWS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO deliveries (id, event_id, route, output, template, state, next_attempt_at, expires_at, created_at, updated_at) ",
        );
        insert.push_values(chunk, |mut row, (event, now, delivery)| {
            row.push_bind(delivery.id.to_string())
                .push_bind(event.to_string())
                .push_bind(delivery.route.clone())
                .push_bind(delivery.output.clone())
                .push_bind(delivery.template.clone())
                .push_bind("pending")
                .push_bind(*now)
                .push_bind(delivery.expires_at.map(millis))
                .push_bind(*now)
                .push_bind(*now);
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
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
    .bind(&rejection.raw_body[..rejection.raw_body.len().min(crate::store::REJECTED_BODY_KEEP)])
    .execute(&mut **tx)
    .await?;
    Ok(())
}
