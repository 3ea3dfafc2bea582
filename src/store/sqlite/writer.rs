//! The one connection that writes: a thread of its own owning a plain SQLite connection, fed
//! through a queue. It takes every command waiting (up to [`MAX_BATCH`]) and commits them in
//! one transaction with prepared statements, so under load many requests share one fsync and
//! no statement costs a hand-off between threads. Nothing is answered before its transaction
//! has committed.
//!
//! Appends and rejections are committed with `synchronous = FULL` (an acknowledged event
//! survives a power cut). A batch of delivery bookkeeping alone — claims, attempt records,
//! deferrals — commits with `NORMAL`: in WAL mode it reaches the log at once, so a crash of the
//! process loses nothing, and the next FULL commit makes it durable; a power cut in between
//! forgets the last claims and outcomes, which means a re-send — at-least-once, which delivery
//! promises anyway. Being the only writer of all of these, the thread never waits for SQLite's
//! lock behind another connection (the rare writes of operators still take it).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use ulid::Ulid;

use super::checkpoint;
use crate::store::rows::to_json;
use crate::store::{Appended, AttemptRecord, NewDelivery, NewEvent, Next, Rejection, StoreError, millis, next_state};

/// Most commands committed in one transaction; bounds the latency a single batch can add.
const MAX_BATCH: usize = 512;
/// Commands waiting beyond this hold their senders back (the ingest handler waits), which
/// bounds memory under a flood.
const QUEUE_DEPTH: usize = 8192;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Append(Box<EncodedEvent>, Reply<Appended>),
    Reject(Box<Rejection>, Reply<()>),
    Finish(Box<Finished>, Reply<()>),
    Defer(Ulid, i64, Reply<()>),
    /// Takes a lease on due deliveries: (now, lease until, at most), all in ms.
    Claim((i64, i64, u32), Reply<Vec<String>>),
    /// Answered once every command queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// An event with its JSON columns serialised by the sender, in parallel on the runtime's
/// workers, so the one writer thread only binds and steps.
struct EncodedEvent {
    id: String,
    received_at: i64,
    vendor: String,
    event: String,
    kind: String,
    fields: String,
    payload: String,
    dedup_key: String,
    /// Arrivals before this are outside the dedup window.
    dedup_since: i64,
    request: String,
    raw_body: bytes::Bytes,
    routes: String,
    deliveries: Vec<NewDelivery>,
}

impl EncodedEvent {
    fn new(new: NewEvent) -> Result<Self, StoreError> {
        let received_at = millis(new.event.received_at);
        let window = i64::try_from(new.dedup_window.as_millis()).unwrap_or(i64::MAX);
        Ok(Self {
            id: new.event.id.to_string(),
            received_at,
            kind: new.event.kind.as_str().to_owned(),
            fields: to_json(&new.event.fields)?,
            payload: to_json(&new.event.payload)?,
            request: to_json(&new.request)?,
            routes: to_json(&new.routes)?,
            vendor: new.event.vendor,
            event: new.event.event,
            dedup_key: new.dedup_key,
            dedup_since: received_at.saturating_sub(window),
            raw_body: new.raw_body,
            deliveries: new.deliveries,
        })
    }
}

struct Finished {
    id: String,
    attempt: AttemptRecord,
    next: Next,
}

/// The queue in front of the writer thread.
pub(super) struct Writer {
    queue: mpsc::Sender<Command>,
}

impl Writer {
    /// Opens the writing connection to an existing, migrated database and starts its thread.
    pub(super) fn start(path: &Path, rejected_keep: u32) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints mostly run beside this thread (see `checkpoint`), not in its commits.
        connection.pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_THRESHOLD_PAGES)?;
        let checkpoints = checkpoint::start(path)?;
        let (queue, commands) = mpsc::channel(QUEUE_DEPTH);
        let thread = WriterThread { connection, rejected_keep, synchronous_full: true, checkpoints };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || thread.run(commands))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { queue })
    }

    pub(super) async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        let encoded = Box::new(EncodedEvent::new(event)?);
        self.call(|reply| Command::Append(encoded, reply)).await
    }

    pub(super) async fn reject(&self, rejection: Rejection) -> Result<(), StoreError> {
        self.call(|reply| Command::Reject(Box::new(rejection), reply)).await
    }

    pub(super) async fn finish_attempt(&self, id: Ulid, attempt: AttemptRecord, next: Next) -> Result<(), StoreError> {
        let finished = Box::new(Finished { id: id.to_string(), attempt, next });
        self.call(|reply| Command::Finish(finished, reply)).await
    }

    pub(super) async fn defer(&self, id: Ulid, at: i64) -> Result<(), StoreError> {
        self.call(|reply| Command::Defer(id, at, reply)).await
    }

    /// Leases up to `limit` deliveries due at `now` until `until` (ms); their ids.
    pub(super) async fn claim(&self, now: i64, until: i64, limit: u32) -> Result<Vec<String>, StoreError> {
        self.call(|reply| Command::Claim((now, until, limit), reply)).await
    }

    /// Waits until everything queued so far is committed.
    pub(super) async fn flush(&self) {
        let (reply, done) = oneshot::channel();
        if self.queue.send(Command::Flush(reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(command(reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// What a command produced, sent once the batch has committed.
enum Done {
    Appended(Appended),
    Claimed(Vec<String>),
    Nothing,
}

struct WriterThread {
    connection: Connection,
    rejected_keep: u32,
    synchronous_full: bool,
    /// Told after every commit; dropped with this thread, which stops the checkpoint thread.
    checkpoints: checkpoint::Nudge,
}

impl WriterThread {
    fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = queue.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            let outcome = self.commit(&batch);
            if outcome.is_ok() {
                self.checkpoints.send();
            }
            if let Err(error) = &outcome {
                tracing::error!(message = "Store write failed; the batch's requests are answered with an error.", %error, commands = batch.len());
            }
            answer(batch.drain(..), outcome);
        }
    }

    /// One transaction for the whole batch; one [`Done`] per command, in order.
    fn commit(&mut self, batch: &[Command]) -> Result<Vec<Done>, StoreError> {
        if batch.iter().all(|command| matches!(command, Command::Flush(_))) {
            return Ok(batch.iter().map(|_| Done::Nothing).collect());
        }
        let durable = batch.iter().any(|command| matches!(command, Command::Append(..) | Command::Reject(..)));
        if durable != self.synchronous_full {
            self.connection.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })?;
            self.synchronous_full = durable;
        }
        // IMMEDIATE takes the write lock up front, so the dedup lookups below see everything
        // committed before the inserts that rely on them.
        let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Events of this batch by (vendor, dedup key): a repeat inside the batch is a duplicate
        // of the first even though it is not in the table yet.
        let mut in_batch: HashMap<(&str, &str), (&str, i64)> = HashMap::new();
        let mut done = Vec::with_capacity(batch.len());
        let mut rejected = false;
        for command in batch {
            done.push(match command {
                Command::Append(new, _) => Done::Appended(append(&tx, new, &mut in_batch)?),
                Command::Reject(rejection, _) => {
                    insert_rejection(&tx, rejection)?;
                    rejected = true;
                    Done::Nothing
                }
                Command::Finish(finished, _) => {
                    finish(&tx, finished)?;
                    Done::Nothing
                }
                Command::Defer(id, at, _) => {
                    tx.prepare_cached(
                        "UPDATE deliveries SET next_attempt_at = ?1, lease_until = NULL WHERE id = ?2 AND state = 'pending'",
                    )?
                    .execute(params![at, id.to_string()])?;
                    Done::Nothing
                }
                Command::Claim((now, until, limit), _) => {
                    // One statement claims: no other command runs in between, so two
                    // claimers can never take the same row.
                    let mut claim = tx.prepare_cached(
                        "UPDATE deliveries SET lease_until = ?1, updated_at = ?2
                         WHERE id IN (
                             SELECT id FROM deliveries
                             WHERE state = 'pending' AND next_attempt_at <= ?2 AND (lease_until IS NULL OR lease_until < ?2)
                             ORDER BY next_attempt_at LIMIT ?3)
                         RETURNING id",
                    )?;
                    let ids = claim.query_map(params![until, now, limit], |row| row.get(0))?;
                    Done::Claimed(ids.collect::<Result<_, _>>()?)
                }
                Command::Flush(_) => Done::Nothing,
            });
        }
        if rejected {
            tx.prepare_cached(
                "DELETE FROM rejected_requests
                 WHERE id <= (SELECT id FROM rejected_requests ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            )?
            .execute([i64::from(self.rejected_keep)])?;
        }
        tx.commit()?;
        Ok(done)
    }
}

/// Stores the event unless the vendor sent it before within its dedup window (earlier in this
/// batch or already stored): then the repeat is counted on the original.
fn append<'a>(
    tx: &rusqlite::Transaction<'_>,
    new: &'a EncodedEvent,
    in_batch: &mut HashMap<(&'a str, &'a str), (&'a str, i64)>,
) -> Result<Appended, StoreError> {
    let key = (new.vendor.as_str(), new.dedup_key.as_str());
    let original = match in_batch.get(&key) {
        Some((id, at)) if *at >= new.dedup_since => Some((*id).to_owned()),
        _ => tx
            .prepare_cached(
                "SELECT id FROM events WHERE vendor = ?1 AND dedup_key = ?2 AND received_at >= ?3
                 ORDER BY received_at LIMIT 1",
            )?
            .query_row(params![new.vendor, new.dedup_key, new.dedup_since], |row| row.get::<_, String>(0))
            .optional()?,
    };
    if let Some(original) = original {
        tx.prepare_cached("UPDATE events SET duplicates = duplicates + 1 WHERE id = ?1")?.execute([&original])?;
        let id = original.parse().map_err(|e| crate::store::rows::corrupt("event id", e))?;
        return Ok(Appended::Duplicate(id));
    }
    tx.prepare_cached(
        "INSERT INTO events (id, received_at, vendor, event, kind, fields, payload, dedup_key, request, raw_body, routes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        new.id,
        new.received_at,
        new.vendor,
        new.event,
        new.kind,
        new.fields,
        new.payload,
        new.dedup_key,
        new.request,
        &new.raw_body[..],
        new.routes,
    ])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (id, event_id, route, output, template, state, next_attempt_at, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?6, ?6)",
    )?;
    for delivery in &new.deliveries {
        insert.execute(params![
            delivery.id.to_string(),
            new.id,
            delivery.route,
            delivery.output,
            delivery.template,
            new.received_at,
            delivery.expires_at.map(millis),
        ])?;
    }
    in_batch.insert(key, (new.id.as_str(), new.received_at));
    let id = new.id.parse().map_err(|e| crate::store::rows::corrupt("event id", e))?;
    Ok(Appended::Stored(id))
}

fn insert_rejection(tx: &rusqlite::Transaction<'_>, rejection: &Rejection) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO rejected_requests (id, received_at, vendor, status, reason, message, request, raw_body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        rejection.id.to_string(),
        millis(rejection.received_at),
        rejection.vendor,
        rejection.status,
        rejection.reason,
        rejection.message,
        to_json(&rejection.request)?,
        &rejection.raw_body[..rejection.raw_body.len().min(crate::store::REJECTED_BODY_KEEP)],
    ])?;
    Ok(())
}

fn finish(tx: &rusqlite::Transaction<'_>, finished: &Finished) -> Result<(), StoreError> {
    let Finished { id, attempt, next } = finished;
    let (state, next_at, error) = next_state(attempt, *next);
    tx.prepare_cached(
        "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, outcome, reason, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        attempt.number,
        millis(attempt.started_at),
        i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX),
        attempt.outcome,
        attempt.reason,
        attempt.detail,
    ])?;
    tx.prepare_cached(
        "UPDATE deliveries SET state = ?1, attempts = ?2, next_attempt_at = COALESCE(?3, next_attempt_at),
             lease_until = NULL, updated_at = ?4, last_error = ?5
         WHERE id = ?6",
    )?
    .execute(params![state.as_str(), attempt.number, next_at, millis(chrono::Utc::now()), error, id])?;
    Ok(())
}

/// Sends each command its result: what it produced, or the batch's error.
fn answer(batch: impl Iterator<Item = Command>, outcome: Result<Vec<Done>, StoreError>) {
    let mut results = outcome.as_ref().ok().map(|done| done.iter());
    for command in batch {
        let result = match (&outcome, results.as_mut().and_then(Iterator::next)) {
            (Ok(_), Some(done)) => Ok(done),
            (Err(error), _) => Err(error.clone()),
            (Ok(_), None) => Err(StoreError::Corrupt("the writer lost track of a command".into())),
        };
        match command {
            Command::Append(_, reply) => {
                let _ = reply.send(result.and_then(|done| match done {
                    Done::Appended(appended) => Ok(*appended),
                    _ => Err(StoreError::Corrupt("an append produced no result".into())),
                }));
            }
            Command::Claim(_, reply) => {
                let _ = reply.send(result.and_then(|done| match done {
                    Done::Claimed(ids) => Ok(ids.clone()),
                    _ => Err(StoreError::Corrupt("a claim produced no result".into())),
                }));
            }
            Command::Reject(_, reply) | Command::Finish(_, reply) | Command::Defer(_, _, reply) => {
                let _ = reply.send(result.map(|_| ()));
            }
            Command::Flush(reply) => {
                let _ = reply.send(());
            }
        }
    }
}
