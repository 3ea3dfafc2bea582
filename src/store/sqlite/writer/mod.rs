//! The one connection that writes: a thread of its own owning a plain SQLite connection, fed
//! through a queue. It takes every command waiting (up to [`MAX_BATCH`]) and commits them in
//! one transaction with prepared statements, so under load many requests share one fsync and
//! no statement costs a hand-off between threads. Nothing is answered before its transaction
//! has committed.
//!
//! Appends, rejections and replays are committed with `synchronous = FULL` (an acknowledged
//! event, or an operator's replay, survives a power cut). A batch of delivery bookkeeping alone — claims, attempt records,
//! deferrals — commits with `NORMAL`: in WAL mode it reaches the log at once, so a crash of the
//! process loses nothing, and the next FULL commit makes it durable; a power cut in between
//! forgets the last claims and outcomes, which means a re-send — at-least-once, which delivery
//! promises anyway. Being the only writer of all of these, the thread never waits for SQLite's
//! lock behind another connection (the rare writes of operators still take it).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};
use ulid::Ulid;

use super::checkpoint;
use super::dedup::DedupWindow;
use super::statements::{self, Claimed, EncodedEvent, Finished, Replayed};
use crate::event::EventId;
use crate::store::rows::to_json;
use crate::store::{Appended, AttemptRecord, NewDelivery, NewEvent, Next, Rejection, StoreError, millis};

/// What a readiness probe writes after a failed write: as much as a sizeable webhook.
const PROBE_BYTES: i64 = 64 * 1024;
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
    /// An output answers again: its deliveries waiting out a retry step are due at (ms).
    PullForward(String, i64, Reply<u64>),
    /// A replay: the event's new route list and the deliveries it makes.
    AddDeliveries(Box<Replayed>, Reply<()>),
    /// Takes a lease on due deliveries: (now, lease until, at most), all in ms.
    Claim((i64, i64, u32), Reply<Claimed>),
    /// Answered once every command queued before it is committed.
    Flush(oneshot::Sender<()>),
    /// A durable write of [`PROBE_BYTES`], for readiness to learn whether writing works again.
    Probe(Reply<()>),
}

/// Why the last commit failed for a reason of the storage itself (a full disk, an I/O error, a
/// read-only file); `None` once a commit succeeds. Readiness reads it.
type Health = Arc<Mutex<Option<String>>>;

/// The queue in front of the writer thread.
pub(super) struct Writer {
    queue: mpsc::Sender<Command>,
    health: Health,
}

impl Writer {
    /// Opens the writing connection to an existing, migrated database and starts its thread.
    pub(super) fn start(path: &Path, rejected_keep: u32) -> Result<Self, StoreError> {
        let connection = open_connection(path)?;
        let checkpoints = checkpoint::start(path)?;
        let (queue, commands) = mpsc::channel(QUEUE_DEPTH);
        let health = Health::default();
        let thread = WriterThread {
            connection,
            rejected_keep,
            synchronous_full: true,
            checkpoints,
            window: DedupWindow::new(),
            health: health.clone(),
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || thread.run(commands))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { queue, health })
    }

    /// Why the last commit failed, if the storage itself failed it and nothing has committed
    /// since.
    pub(super) fn failing(&self) -> Option<String> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Commits a small durable write: succeeding, it clears [`Writer::failing`].
    pub(super) async fn probe(&self) -> Result<(), StoreError> {
        self.call(Command::Probe).await
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

    pub(super) async fn pull_forward(&self, output: &str, now: i64) -> Result<u64, StoreError> {
        let output = output.to_owned();
        self.call(|reply| Command::PullForward(output, now, reply)).await
    }

    pub(super) async fn add_deliveries(
        &self,
        event: EventId,
        routes: &[String],
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        let replayed = Box::new(Replayed {
            event_id: event.to_string(),
            routes: to_json(&routes)?,
            at: millis(chrono::Utc::now()),
            deliveries: deliveries.to_vec(),
        });
        self.call(|reply| Command::AddDeliveries(replayed, reply)).await
    }

    /// Leases up to `limit` deliveries due at `now` until `until` (ms); their rows and their events'.
    pub(super) async fn claim(&self, now: i64, until: i64, limit: u32) -> Result<Claimed, StoreError> {
        self.call(|reply| Command::Claim((now, until, limit), reply)).await
    }

    /// False once the thread has stopped (it only stops if it panicked, or with the store).
    pub(super) fn is_running(&self) -> bool {
        !self.queue.is_closed()
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

/// The writing connection, set up for the writer thread.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "foreign_keys", true)?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    // Plans that do not depend on bound values. Otherwise SQLite (built with STAT4) marks a
    // statement whose LIMIT or range takes a parameter to be compiled again whenever that
    // value changes — the claim, whose limit is the number of free slots, was re-prepared on
    // nearly every call (`sqlite3Reprepare`, ~5% of this thread while a queue drained).
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // Checkpoints mostly run beside this thread (see `checkpoint`), not in its commits.
    let page_size: u32 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
    connection.pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_THRESHOLD_BYTES / page_size.max(512))?;
    Ok(connection)
}

/// What a command produced, sent once the batch has committed.
enum Done {
    Appended(Appended),
    Claimed(Claimed),
    Counted(u64),
    Nothing,
}

struct WriterThread {
    connection: Connection,
    rejected_keep: u32,
    synchronous_full: bool,
    /// Told after every commit; dropped with this thread, which stops the checkpoint thread.
    checkpoints: checkpoint::Nudge,
    /// The events of the dedup window: only this thread appends, so only it needs to know.
    window: DedupWindow,
    health: Health,
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
            let outcomes = self.write(&batch);
            self.checkpoints.send();
            answer(batch.drain(..), outcomes);
        }
    }

    /// The batch in one transaction; if that fails, each command in a transaction of its own,
    /// so that one bad command (a replay of an event pruned meanwhile, say) fails alone rather
    /// than with the webhooks that happened to share its batch.
    fn write(&mut self, batch: &[Command]) -> Vec<Result<Done, StoreError>> {
        let outcomes = self.write_batch(batch);
        let storage_failure =
            outcomes.iter().find_map(|outcome| outcome.as_ref().err().filter(|e| e.is_storage_failure()));
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        // Only a durable write that committed says writing works again: a claim that matched
        // nothing, or a flush, commits without touching a page, on a full disk too.
        let wrote = batch.iter().zip(&outcomes).any(|(command, outcome)| outcome.is_ok() && is_durable(command));
        match storage_failure {
            Some(error) => *health = Some(error.to_string()),
            None if wrote => *health = None,
            None => {}
        }
        outcomes
    }

    fn write_batch(&mut self, batch: &[Command]) -> Vec<Result<Done, StoreError>> {
        match self.commit(batch) {
            Ok(done) => done.into_iter().map(Ok).collect(),
            Err(error) if batch.len() > 1 => {
                tracing::warn!(message = "A batch of store writes failed; writing its commands one by one.", %error, commands = batch.len());
                batch.iter().map(|command| self.write_one(command)).collect()
            }
            Err(error) => {
                tracing::error!(message = "Store write failed; its request is answered with an error.", %error);
                vec![Err(error)]
            }
        }
    }

    fn write_one(&mut self, command: &Command) -> Result<Done, StoreError> {
        let mut done = self.commit(std::slice::from_ref(command)).inspect_err(|error| {
            tracing::error!(message = "Store write failed; its request is answered with an error.", %error);
        })?;
        done.pop().ok_or_else(|| StoreError::Corrupt("the writer lost track of a command".into()))
    }

    /// One transaction for the whole batch; one [`Done`] per command, in order.
    fn commit(&mut self, batch: &[Command]) -> Result<Vec<Done>, StoreError> {
        let writes = batch.iter().filter(|command| !matches!(command, Command::Flush(_))).count();
        if writes == 0 {
            return Ok(batch.iter().map(|_| Done::Nothing).collect());
        }
        let started = Instant::now();
        let durable = batch.iter().any(is_durable);
        if durable != self.synchronous_full {
            self.connection.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })?;
            self.synchronous_full = durable;
        }
        let since = batch.iter().filter_map(|command| match command {
            Command::Append(new, _) => Some(new.dedup_since),
            _ => None,
        });
        if let Some(since) = since.min() {
            self.window.cover(&self.connection, since)?;
        }
        // IMMEDIATE takes the write lock up front: the rows the dedup window points to cannot
        // be pruned between its lookups and the inserts that rely on them.
        let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut appender = statements::Appender::new(batch.len());
        let mut done = Vec::with_capacity(batch.len());
        let mut rejected = false;
        for command in batch {
            done.push(match command {
                Command::Append(new, _) => Done::Appended(appender.append(&tx, new, &self.window)?),
                Command::Reject(rejection, _) => {
                    statements::insert_rejection(&tx, rejection)?;
                    rejected = true;
                    Done::Nothing
                }
                Command::Finish(finished, _) => {
                    statements::finish(&tx, finished)?;
                    Done::Nothing
                }
                Command::Defer(id, at, _) => {
                    statements::defer(&tx, *id, *at)?;
                    Done::Nothing
                }
                Command::PullForward(output, now, _) => Done::Counted(statements::pull_forward(&tx, output, *now)?),
                Command::AddDeliveries(replayed, _) => {
                    statements::replay(&tx, replayed)?;
                    Done::Nothing
                }
                Command::Claim((now, until, limit), _) => Done::Claimed(statements::claim(&tx, *now, *until, *limit)?),
                Command::Flush(_) => Done::Nothing,
                Command::Probe(_) => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO write_probe (id, at, space) VALUES (1, ?1, zeroblob(?2))",
                    )?
                    .execute([millis(chrono::Utc::now()), PROBE_BYTES])?;
                    Done::Nothing
                }
            });
        }
        if rejected {
            statements::trim_rejections(&tx, self.rejected_keep)?;
        }
        // Its statements go back to the cache before the transaction ends.
        let stored = appender.into_stored();
        tx.commit()?;
        crate::metrics::record_commit(writes, started.elapsed());
        // Only now: a batch that rolled back must leave no trace in the window.
        for (key, id, at) in stored {
            self.window.remember(key, id, at);
        }
        Ok(done)
    }
}

/// Whether a command is committed with `synchronous = FULL`: what acknowledges a webhook, keeps
/// a refusal, replays an event, or probes the disk for readiness.
fn is_durable(command: &Command) -> bool {
    matches!(command, Command::Append(..) | Command::Reject(..) | Command::AddDeliveries(..) | Command::Probe(_))
}

/// Sends each command its result: what it produced, or its error.
fn answer(batch: impl Iterator<Item = Command>, outcomes: Vec<Result<Done, StoreError>>) {
    let mut outcomes = outcomes.into_iter();
    for command in batch {
        let result =
            outcomes.next().unwrap_or_else(|| Err(StoreError::Corrupt("the writer lost track of a command".into())));
        match command {
            Command::Append(_, reply) => {
                let _ = reply.send(result.and_then(|done| match done {
                    Done::Appended(appended) => Ok(appended),
                    _ => Err(StoreError::Corrupt("an append produced no result".into())),
                }));
            }
            Command::Claim(_, reply) => {
                let _ = reply.send(result.and_then(|done| match done {
                    Done::Claimed(claimed) => Ok(claimed),
                    _ => Err(StoreError::Corrupt("a claim produced no result".into())),
                }));
            }
            Command::PullForward(_, _, reply) => {
                let _ = reply.send(result.map(|done| match done {
                    Done::Counted(count) => count,
                    _ => 0,
                }));
            }
            Command::Reject(_, reply)
            | Command::Finish(_, reply)
            | Command::Defer(_, _, reply)
            | Command::AddDeliveries(_, reply)
            | Command::Probe(reply) => {
                let _ = reply.send(result.map(|_| ()));
            }
            Command::Flush(reply) => {
                let _ = reply.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests;
