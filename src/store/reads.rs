//! The reads both stores share: the operator's views (filtered event lists, how each event's
//! deliveries stand, each output's last answer, the queue), deliveries and their attempts,
//! when the next delivery falls due, and the earlier events of a sequence, which ingest reads. One SQL text serves SQLite and PostgreSQL (both take `$n`
//! parameters and `CAST`), and [`shared_reads!`] writes the Rust around it once for each
//! pool type.

use super::EventQuery;

/// Events matching an [`EventQuery`], newest first; `$9` is the handling of their card (`new`
/// for a routed event nobody pressed on). `$6`/`$7` are LIKE patterns (the search as
/// typed, and its digits alone for a phone number written with separators).
pub(super) const FILTERED_EVENTS: &str = r"
SELECT id, received_at, vendor, event, kind, fields, payload, body_encoding, dedup_key, duplicates, request,
       raw_body, routes, sequence_key, sequence_start
FROM events
WHERE (CAST($1 AS TEXT) IS NULL OR vendor = $1)
  AND (CAST($2 AS TEXT) IS NULL OR kind = $2)
  AND (CAST($3 AS TEXT) IS NULL OR id < $3)
  AND (CAST($4 AS BIGINT) IS NULL OR received_at >= $4)
  AND (CAST($5 AS BIGINT) IS NULL OR received_at < $5)
  AND (CAST($6 AS TEXT) IS NULL OR LOWER(fields) LIKE $6 ESCAPE '\' OR LOWER(fields) LIKE $7 ESCAPE '\')
  AND (CAST($8 AS TEXT) IS NULL
       OR ($8 = 'unrouted' AND routes = '[]')
       OR ($8 = 'pending' AND EXISTS (
            SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state = 'pending'))
       OR ($8 = 'failed' AND EXISTS (
            SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state IN ('dead', 'expired', 'dismissed')))
       OR ($8 = 'delivered' AND routes <> '[]' AND NOT EXISTS (
            SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state NOT IN ('delivered', 'cancelled'))))
  AND (CAST($9 AS TEXT) IS NULL
       OR COALESCE((SELECT h.status FROM handling h WHERE h.card = COALESCE(events.sequence_start, events.id)),
                   CASE WHEN routes <> '[]' THEN 'new' END) = $9)
ORDER BY id DESC LIMIT $10";

/// The events of one sequence received since `$3` (whose ids are at least `$2`), newest
/// first: a range of the partial index `events_by_sequence`.
pub(super) const SEQUENCE_EVENTS: &str = r"
SELECT id, received_at, vendor, event, kind, fields, payload, body_encoding, dedup_key, duplicates, request,
       raw_body, routes, sequence_key, sequence_start
FROM events
WHERE sequence_key = $1 AND id >= $2 AND received_at >= $3
ORDER BY id DESC LIMIT $4";

pub(super) const OUTPUT_LAST_ATTEMPTS: &str = r"
SELECT d.output AS output,
       MAX(CASE WHEN a.outcome = 'delivered' THEN a.started_at END) AS last_success,
       MAX(CASE WHEN a.outcome NOT IN ('delivered', 'cancelled') THEN a.started_at END) AS last_failure,
       MAX(CASE WHEN a.outcome = 'delivered' AND a.action IS NULL THEN a.started_at END) AS last_clean,
       MAX(CASE WHEN a.action IS NOT NULL THEN a.started_at END) AS last_action
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
GROUP BY d.output ORDER BY d.output";

pub(super) const OUTPUT_LAST_FAILURE: &str = r"
SELECT a.detail AS detail
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE d.output = $1 AND a.outcome NOT IN ('delivered', 'cancelled')
ORDER BY a.started_at DESC LIMIT 1";

/// What an output's latest attempt that carried one asked the operator to change.
pub(super) const OUTPUT_LAST_ACTION: &str = r"
SELECT a.action AS action
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE d.output = $1 AND a.action IS NOT NULL
ORDER BY a.started_at DESC LIMIT 1";

pub(super) const QUEUE: &str = r"
SELECT COUNT(CASE WHEN state = 'pending' THEN 1 END) AS pending,
       COUNT(CASE WHEN state = 'pending' AND next_attempt_at <= $1 THEN 1 END) AS due,
       MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest,
       COUNT(CASE WHEN state = 'dead' THEN 1 END) AS dead
FROM deliveries WHERE state IN ('pending', 'dead')";

/// Refused requests, newest first (`$1`: how many), or the one whose id is `$2`; of vendor `$3`
/// and reason `$4` when given.
pub(super) const REJECTIONS: &str = r"
SELECT id, received_at, vendor, status, reason, message, request, raw_body, body_size, reprocessed_at,
       reprocessed_event
FROM rejected_requests
WHERE (CAST($2 AS TEXT) IS NULL OR id = $2) AND (CAST($3 AS TEXT) IS NULL OR vendor = $3)
  AND (CAST($4 AS TEXT) IS NULL OR reason = $4)
ORDER BY id DESC LIMIT $1";

/// What processing a refused request again came to: the event it became (`$3`), or the new
/// status, reason and message it was refused with (`$4`..`$6`, NULL when it was accepted).
pub(super) const REPROCESSED: &str = r"
UPDATE rejected_requests
SET reprocessed_at = $2, reprocessed_event = $3,
    status = COALESCE($4, status), reason = COALESCE($5, reason), message = COALESCE($6, message)
WHERE id = $1";

/// Makes dead, expired or dismissed deliveries pending again, due now (`$1`): one by id (`$2`),
/// or every dead one (of output `$3`). A hand retry starts a fresh life: created_at moves to
/// now, so max_age counts from here; a dismissal is forgotten.
pub(super) const RETRY: &str = r"
UPDATE deliveries SET state = 'pending', next_attempt_at = $1, lease_until = NULL, expires_at = NULL,
       created_at = $1, updated_at = $1, dismissed_at = NULL, dismissed_by = NULL, dismiss_note = NULL
WHERE state IN ('dead', 'expired', 'dismissed') AND (CAST($2 AS TEXT) IS NULL OR id = $2)
  AND (CAST($3 AS TEXT) IS NULL OR output = $3) AND (CAST($2 AS TEXT) IS NOT NULL OR state = 'dead')";

/// Dismisses dead or expired deliveries at `$1`, by `$2`, with note `$3`: one by id (`$4`), or
/// every dead one (of output `$5`), as the Dead letters page lists them.
pub(super) const DISMISS: &str = r"
UPDATE deliveries SET state = 'dismissed', updated_at = $1, dismissed_at = $1, dismissed_by = $2, dismiss_note = $3
WHERE state IN ('dead', 'expired') AND (CAST($4 AS TEXT) IS NULL OR id = $4) AND (CAST($5 AS TEXT) IS NULL OR output = $5)
  AND (CAST($4 AS TEXT) IS NOT NULL OR state = 'dead')";

/// An event's deliveries, as [`super::rows::delivery`] reads them.
pub(super) const EVENT_DELIVERIES: &str = r"
SELECT id, event_id, route, output, template, state, attempts, next_attempt_at, expires_at, created_at, last_error,
       interrupted, redraws, unless_status, dismissed_at, dismissed_by, dismiss_note
FROM deliveries WHERE event_id = $1 ORDER BY id";

/// Deliveries by state and output, newest first.
pub(super) const FILTERED_DELIVERIES: &str = r"
SELECT id, event_id, route, output, template, state, attempts, next_attempt_at, expires_at, created_at, last_error,
       interrupted, redraws, unless_status, dismissed_at, dismissed_by, dismiss_note
FROM deliveries
WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) AND (CAST($2 AS TEXT) IS NULL OR output = $2)
ORDER BY id DESC LIMIT $3";

pub(super) const DELIVERY_ATTEMPTS: &str = r"
SELECT number, started_at, duration_ms, outcome, reason, detail, action, remote_id, message FROM attempts
WHERE delivery_id = $1
ORDER BY number";

/// When the first delivery no one holds falls due. Walks the (state, next_attempt_at) index
/// and stops at the first row not under a live lease: a MIN over every pending row, asked after
/// each claim that finds nothing, was most of delivery's CPU with a backlog.
pub(super) const NEXT_DUE: &str = r"
SELECT next_attempt_at FROM deliveries
WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < $1)
ORDER BY next_attempt_at LIMIT 1";

/// The LIKE patterns for a search: the text as typed, and (for something that looks like a
/// phone number) its digits alone, so `+7 (916) 123-45-67` finds `79161234567`.
pub(super) fn search_patterns(query: &EventQuery) -> (Option<String>, Option<String>) {
    let Some(text) = query.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return (None, None);
    };
    let like = |text: &str| {
        let escaped = text.to_lowercase().replace('\\', r"\\").replace('%', r"\%").replace('_', r"\_");
        format!("%{escaped}%")
    };
    let phone_like = text.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let digits = if phone_like && digits.len() >= 3 { like(&digits) } else { like(text) };
    (Some(like(text)), Some(digits))
}

/// Deliveries to `$2` waiting out a retry step, due at `$1` instead ([`crate::store::Queue::pull_forward`]).
pub(super) const PULL_FORWARD: &str = r"
UPDATE deliveries SET next_attempt_at = $1, updated_at = $1
WHERE output = $2 AND state = 'pending' AND attempts > 0 AND next_attempt_at > $1
  AND (lease_until IS NULL OR lease_until < $1)";

/// The deliveries to `$2` of the events of `$1`'s card — its run of a sequence through the
/// partial index `events_by_sequence_start`, or `$1` alone — oldest first.
pub(super) const CARD: &str = r"
SELECT d.id AS id, d.state AS state, d.remote_id AS remote_id, d.next_attempt_at AS next_attempt_at,
       d.event_id AS event_id, d.route AS route, d.template AS template, d.unless_status AS unless_status
FROM deliveries d
WHERE d.event_id IN (
        SELECT e.id FROM events e
        WHERE e.sequence_start = (SELECT COALESCE(me.sequence_start, me.id) FROM events me WHERE me.id = $1)
        UNION SELECT CAST($1 AS TEXT))
  AND d.output = $2
ORDER BY d.id";

/// Whether `$1` belongs to a sequence, and the handling of its card (the event that began its
/// call, or the event itself) if anyone pressed on it.
pub(super) const CARD_HANDLING: &str = r"
SELECT CAST(CASE WHEN e.sequence_key IS NULL THEN 0 ELSE 1 END AS BIGINT) AS in_sequence,
       h.card AS card, h.status AS status, h.taken_by_id AS taken_by_id, h.taken_by AS taken_by,
       h.taken_at AS taken_at, h.done_by_id AS done_by_id, h.done_by AS done_by, h.done_at AS done_at,
       h.no_answers AS no_answers, h.last_no_answer_at AS last_no_answer_at
FROM events e LEFT JOIN handling h ON h.card = COALESCE(e.sequence_start, e.id)
WHERE e.id = $1";

/// The events of `$1`'s card up to `$1`, newest first (the latest 50): its run of a sequence,
/// or itself.
pub(super) const CARD_EVENTS: &str = r"
SELECT id, event, kind, received_at FROM events
WHERE sequence_start = (SELECT COALESCE(me.sequence_start, me.id) FROM events me WHERE me.id = $1) AND id <= $1
UNION SELECT id, event, kind, received_at FROM events WHERE id = $1
ORDER BY id DESC LIMIT 50";

/// One event with its request.
pub(super) const EVENT: &str = r"
SELECT id, received_at, vendor, event, kind, fields, payload, body_encoding, dedup_key, duplicates, request,
       raw_body, routes, sequence_key, sequence_start
FROM events WHERE id = $1";

/// Writes the shared reads for one sqlx pool type, and the [`Views`](crate::store::Views) of
/// the store that holds such a pool in its field `pool`; `$ids` is the SQL that turns `$1`, a
/// JSON array of event ids, into a set.
macro_rules! shared_reads {
    ($store:ty, $pool:ty, ids_from_json = $ids:literal) => {
        #[async_trait::async_trait]
        impl crate::store::Views for $store {
            async fn event(&self, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
                let row = sqlx::query(reads::EVENT).bind(id.to_string()).fetch_optional(&self.pool).await?;
                row.map(|row| rows::stored_event(&row)).transpose()
            }

            async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
                events(&self.pool, query).await
            }

            async fn rejections(&self, query: &crate::store::RejectionQuery) -> Result<Vec<Rejection>, StoreError> {
                rejections(&self.pool, query, None).await
            }

            async fn deliveries(&self, event: EventId) -> Result<Vec<Delivery>, StoreError> {
                deliveries(&self.pool, event).await
            }

            async fn attempts(&self, id: ulid::Ulid) -> Result<Vec<AttemptRecord>, StoreError> {
                attempts(&self.pool, id).await
            }

            async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
                list_deliveries(&self.pool, query).await
            }

            async fn delivery_counts(
                &self,
                events: &[EventId],
            ) -> Result<HashMap<EventId, DeliveryCounts>, StoreError> {
                delivery_counts(&self.pool, events).await
            }

            async fn output_health(&self) -> Result<Vec<OutputHealth>, StoreError> {
                output_health(&self.pool).await
            }

            async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
                queue_stats(&self.pool, now).await
            }
        }

        use std::collections::HashMap;

        use chrono::{DateTime, Utc};

        use crate::event::EventId;
        use crate::store::reads;
        use crate::store::rows::{self, Columns, to_json};
        use crate::store::{
            AttemptRecord, Delivery, DeliveryCounts, DeliveryQuery, EventQuery, OutputHealth, QueueStats, Rejection,
            ReprocessOutcome, StoreError, StoredEvent,
        };

        pub(super) async fn rejections(
            pool: &$pool,
            query: &crate::store::RejectionQuery,
            id: Option<ulid::Ulid>,
        ) -> Result<Vec<Rejection>, StoreError> {
            let rows = sqlx::query(reads::REJECTIONS)
                .bind(i64::from(query.limit))
                .bind(id.map(|id| id.to_string()))
                .bind(query.vendor.as_deref())
                .bind(query.reason.as_deref())
                .fetch_all(pool)
                .await?;
            rows.iter().map(rows::rejection).collect()
        }

        pub(super) async fn reprocessed(
            pool: &$pool,
            id: ulid::Ulid,
            at: DateTime<Utc>,
            outcome: ReprocessOutcome,
        ) -> Result<(), StoreError> {
            let (event, status, reason, message) = match outcome {
                ReprocessOutcome::Accepted(event) => (Some(event.to_string()), None, None, None),
                ReprocessOutcome::Refused { status, reason, message } => {
                    (None, Some(i64::from(status)), Some(reason), Some(message))
                }
            };
            sqlx::query(reads::REPROCESSED)
                .bind(id.to_string())
                .bind(crate::store::millis(at))
                .bind(event)
                .bind(status)
                .bind(reason)
                .bind(message)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(super) async fn retry(
            pool: &$pool,
            delivery: Option<ulid::Ulid>,
            output: Option<&str>,
        ) -> Result<u64, StoreError> {
            let done = sqlx::query(reads::RETRY)
                .bind(crate::store::millis(chrono::Utc::now()))
                .bind(delivery.map(|id| id.to_string()))
                .bind(output)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        }

        pub(super) async fn dismiss(
            pool: &$pool,
            delivery: Option<ulid::Ulid>,
            output: Option<&str>,
            by: &crate::store::Dismissal,
        ) -> Result<u64, StoreError> {
            let done = sqlx::query(reads::DISMISS)
                .bind(crate::store::millis(by.at))
                .bind(&by.by)
                .bind(by.note.as_deref())
                .bind(delivery.map(|id| id.to_string()))
                .bind(output)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        }

        pub(super) async fn events(pool: &$pool, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
            let (search, digits) = reads::search_patterns(query);
            let rows = sqlx::query(reads::FILTERED_EVENTS)
                .bind(query.vendor.as_deref())
                .bind(query.kind.as_deref())
                .bind(query.before.map(|id| id.to_string()))
                .bind(query.since.map(crate::store::millis))
                .bind(query.until.map(crate::store::millis))
                .bind(search)
                .bind(digits)
                .bind(query.status.map(crate::store::EventStatus::as_str))
                .bind(query.handling.map(crate::event::handling::Status::as_str))
                .bind(i64::from(query.limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(rows::stored_event).collect()
        }

        pub(super) async fn sequence(
            pool: &$pool,
            key: &str,
            since: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<crate::store::StoredEvent>, StoreError> {
            let since = crate::store::millis(since);
            let rows = sqlx::query(reads::SEQUENCE_EVENTS)
                .bind(key)
                .bind(EventId::first_at_millis(since).to_string())
                .bind(since)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(rows::stored_event).collect()
        }

        pub(super) async fn delivery_counts(
            pool: &$pool,
            events: &[EventId],
        ) -> Result<HashMap<EventId, DeliveryCounts>, StoreError> {
            let ids: Vec<String> = events.iter().map(ToString::to_string).collect();
            let rows = sqlx::query(concat!(
                "SELECT event_id, state, COUNT(*) AS n FROM deliveries WHERE event_id IN (",
                $ids,
                ") GROUP BY event_id, state"
            ))
            .bind(to_json(&ids)?)
            .fetch_all(pool)
            .await?;
            let mut counts: HashMap<EventId, DeliveryCounts> = HashMap::new();
            for row in &rows {
                let id: EventId = row.text("event_id")?.parse().map_err(|e| rows::corrupt("event id", e))?;
                let n = u32::try_from(row.int("n")?).unwrap_or(u32::MAX);
                let entry = counts.entry(id).or_default();
                match crate::store::DeliveryState::parse(&row.text("state")?)? {
                    crate::store::DeliveryState::Pending => entry.pending = n,
                    crate::store::DeliveryState::Delivered => entry.delivered = n,
                    crate::store::DeliveryState::Dead => entry.dead = n,
                    crate::store::DeliveryState::Expired => entry.expired = n,
                    crate::store::DeliveryState::Cancelled => entry.cancelled = n,
                    crate::store::DeliveryState::Dismissed => entry.dismissed = n,
                }
            }
            Ok(counts)
        }

        pub(super) async fn output_health(pool: &$pool) -> Result<Vec<OutputHealth>, StoreError> {
            let rows = sqlx::query(reads::OUTPUT_LAST_ATTEMPTS).fetch_all(pool).await?;
            let mut health = Vec::with_capacity(rows.len());
            for row in &rows {
                let output = row.text("output")?;
                let last_failure_at = row.maybe_int("last_failure")?.map(crate::store::from_millis);
                let last_failure = match last_failure_at {
                    None => None,
                    Some(_) => sqlx::query(reads::OUTPUT_LAST_FAILURE)
                        .bind(&output)
                        .fetch_optional(pool)
                        .await?
                        .map(|row| row.text("detail"))
                        .transpose()?,
                };
                // Until an attempt delivers without one: the operator has fixed it.
                let (last_action, last_clean) = (row.maybe_int("last_action")?, row.maybe_int("last_clean")?);
                let action = match last_action {
                    Some(at) if last_clean.is_none_or(|clean| clean < at) => sqlx::query(reads::OUTPUT_LAST_ACTION)
                        .bind(&output)
                        .fetch_optional(pool)
                        .await?
                        .map(|row| row.text("action"))
                        .transpose()?,
                    _ => None,
                };
                health.push(OutputHealth {
                    last_success_at: row.maybe_int("last_success")?.map(crate::store::from_millis),
                    last_failure_at,
                    last_failure,
                    action,
                    output,
                });
            }
            Ok(health)
        }

        pub(super) async fn deliveries(pool: &$pool, event: EventId) -> Result<Vec<Delivery>, StoreError> {
            let rows = sqlx::query(reads::EVENT_DELIVERIES).bind(event.to_string()).fetch_all(pool).await?;
            rows.iter().map(rows::delivery).collect()
        }

        pub(super) async fn list_deliveries(pool: &$pool, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
            let rows = sqlx::query(reads::FILTERED_DELIVERIES)
                .bind(query.state.map(crate::store::DeliveryState::as_str))
                .bind(query.output.as_deref())
                .bind(i64::from(query.limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(rows::delivery).collect()
        }

        pub(super) async fn attempts(pool: &$pool, delivery: ulid::Ulid) -> Result<Vec<AttemptRecord>, StoreError> {
            let rows = sqlx::query(reads::DELIVERY_ATTEMPTS).bind(delivery.to_string()).fetch_all(pool).await?;
            rows.iter().map(rows::attempt).collect()
        }

        pub(super) async fn card(
            pool: &$pool,
            event: EventId,
            output: &str,
        ) -> Result<crate::store::CardState, StoreError> {
            let rows = sqlx::query(reads::CARD).bind(event.to_string()).bind(output).fetch_all(pool).await?;
            let row = sqlx::query(reads::CARD_HANDLING).bind(event.to_string()).fetch_optional(pool).await?;
            let (in_sequence, handling) = match &row {
                Some(row) if row.maybe_text("card")?.is_some() => {
                    (row.int("in_sequence")? != 0, Some(rows::handling(row)?))
                }
                Some(row) => (row.int("in_sequence")? != 0, None),
                None => (false, None),
            };
            let deliveries = rows
                .iter()
                .map(|row| {
                    Ok(crate::store::CardDelivery {
                        id: row.text("id")?.parse().map_err(|e| StoreError::Corrupt(format!("delivery id: {e}")))?,
                        state: crate::store::DeliveryState::parse(&row.text("state")?)?,
                        remote_id: row.maybe_text("remote_id")?,
                        next_attempt_at: crate::store::from_millis(row.int("next_attempt_at")?),
                        event_id: rows::event_id(&row.text("event_id")?)?,
                        route: row.text("route")?,
                        template: row.text("template")?,
                        reminder: row.maybe_text("unless_status")?.is_some(),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            let events = sqlx::query(reads::CARD_EVENTS)
                .bind(event.to_string())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(crate::event::handling::CardEvent {
                        id: rows::event_id(&row.text("id")?)?,
                        event: row.text("event")?,
                        kind: row.text("kind")?,
                        received_at: crate::store::from_millis(row.int("received_at")?),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let events = events.into_iter().rev().collect();
            Ok(crate::store::CardState { deliveries, handling, in_sequence, events })
        }

        pub(super) async fn next_due(pool: &$pool, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
            let next: Option<i64> =
                sqlx::query_scalar(reads::NEXT_DUE).bind(crate::store::millis(now)).fetch_optional(pool).await?;
            Ok(next.map(crate::store::from_millis))
        }

        pub(super) async fn queue_stats(pool: &$pool, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
            let row = sqlx::query(reads::QUEUE).bind(crate::store::millis(now)).fetch_one(pool).await?;
            let count = |column: &str| -> Result<u64, StoreError> {
                Ok(u64::try_from(row.maybe_int(column)?.unwrap_or_default()).unwrap_or_default())
            };
            Ok(QueueStats {
                pending: count("pending")?,
                due: count("due")?,
                oldest_pending_at: row.maybe_int("oldest")?.map(crate::store::from_millis),
                dead: count("dead")?,
            })
        }
    };
}

pub(super) use shared_reads;

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(search: &str) -> (Option<String>, Option<String>) {
        search_patterns(&EventQuery { search: Some(search.to_owned()), ..Default::default() })
    }

    #[test]
    fn phone_numbers_are_searched_by_their_digits_too() {
        assert_eq!(patterns("+7 (916) 123-45-67").1.as_deref(), Some("%79161234567%"));
        assert_eq!(
            patterns("Ivan@Example.com"),
            (Some("%ivan@example.com%".into()), Some("%ivan@example.com%".into()))
        );
    }

    #[test]
    fn like_wildcards_in_a_search_are_literal() {
        assert_eq!(patterns("50%_off").0.as_deref(), Some(r"%50\%\_off%"));
        assert_eq!(patterns("   "), (None, None));
    }
}
