//! Group commit for PostgreSQL: one writer task takes every append and rejection waiting in
//! its queue (up to [`MAX_BATCH`]) and commits them in one transaction. Under load many
//! requests share one flush; no request is answered before its transaction has committed.
//! (SQLite has a writer thread of its own, `sqlite::writer`, which also takes delivery
//! bookkeeping: there one connection must do every write.)

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{Appended, NewEvent, Rejection, StoreError};

/// Most jobs committed in one transaction; bounds the latency a single batch can add.
const MAX_BATCH: usize = 512;
/// Requests waiting for the writer beyond this are held back (the ingest handler waits), which
/// bounds memory under a flood.
const QUEUE_DEPTH: usize = 8192;

pub(super) enum Job {
    Append(Box<NewEvent>, oneshot::Sender<Result<Appended, StoreError>>),
    Reject(Box<Rejection>, oneshot::Sender<Result<(), StoreError>>),
    /// Answered once every job queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// How one database writes a batch: one transaction, one result per job (`None` for jobs
/// other than appends).
#[async_trait]
pub(super) trait Batch: Send + Sync + 'static {
    async fn write(&self, jobs: &[Job]) -> Result<Vec<Option<Appended>>, StoreError>;
}

/// The queue in front of the writer task.
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task.
    pub(super) fn start(batch: impl Batch) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(batch, jobs));
        Self { queue }
    }

    pub(super) async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job::Append(Box::new(event), reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(super) async fn reject(&self, rejection: Rejection) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job::Reject(Box::new(rejection), reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Waits until everything queued so far is committed.
    pub(super) async fn flush(&self) {
        let (reply, done) = oneshot::channel();
        if self.queue.send(Job::Flush(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}

async fn run(batch: impl Batch, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let writes = jobs.iter().filter(|job| !matches!(job, Job::Flush(_))).count();
        let outcome = if writes == 0 {
            Ok(jobs.iter().map(|_| None).collect())
        } else {
            let started = std::time::Instant::now();
            let written = batch.write(&jobs).await;
            if written.is_ok() {
                crate::metrics::record_commit(writes, started.elapsed());
            }
            written
        };
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
                Job::Append(_, reply) => {
                    let result = result.and_then(|done| {
                        done.ok_or_else(|| StoreError::Corrupt("an append produced no result".into()))
                    });
                    let _ = reply.send(result);
                }
                Job::Reject(_, reply) => {
                    let _ = reply.send(result.map(|_| ()));
                }
                Job::Flush(reply) => {
                    let _ = reply.send(());
                }
            }
        }
    }
}
