//! The smallest receiver that keeps what it acknowledges: bodies appended to one file by one
//! thread, which takes every body waiting, writes them with one `write`, syncs the file's data
//! once (group commit) and only then answers them all. No index, no pages, no row format —
//! whatever Switchboard's store costs beyond this is its own; what this costs is the disk's.
//! `GET /stats` counts the syncs, the bodies they covered and the time they took, which
//! `bench/run.py` sets beside Switchboard's `switchboard_store_commit_*` metrics.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::oneshot;

type Waiting = (Bytes, oneshot::Sender<io::Result<()>>);

#[derive(Clone)]
pub struct Log {
    queue: mpsc::Sender<Waiting>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    syncs: AtomicU64,
    bodies: AtomicU64,
    nanos: AtomicU64,
}

impl Log {
    pub fn open(path: &str) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (queue, waiting) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let counted = Arc::clone(&counts);
        std::thread::Builder::new().name("durable-log".into()).spawn(move || run(file, &waiting, &counted))?;
        Ok(Self { queue, counts })
    }

    /// Syncs so far, the bodies they made durable, and the seconds spent writing and syncing.
    pub fn stats(&self) -> Value {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let seconds = count(&self.counts.nanos) as f64 / 1e9;
        json!({"syncs": count(&self.counts.syncs), "bodies": count(&self.counts.bodies), "seconds": seconds})
    }

    /// Returns once `body` is synced to the disk.
    pub async fn append(&self, body: Bytes) -> io::Result<()> {
        let (reply, synced) = oneshot::channel();
        self.queue.send((body, reply)).map_err(|_| io::Error::other("the log thread stopped"))?;
        synced.await.map_err(|_| io::Error::other("the log thread stopped"))?
    }
}

fn run(mut file: File, waiting: &mpsc::Receiver<Waiting>, counts: &Counts) {
    let mut buffer = Vec::new();
    while let Ok(first) = waiting.recv() {
        let mut group = vec![first];
        group.extend(waiting.try_iter());
        buffer.clear();
        for (body, _) in &group {
            buffer.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
            buffer.extend_from_slice(body);
        }
        let started = Instant::now();
        let written = file.write_all(&buffer).and_then(|()| file.sync_data());
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        counts.syncs.fetch_add(1, Ordering::Relaxed);
        counts.bodies.fetch_add(group.len() as u64, Ordering::Relaxed);
        counts.nanos.fetch_add(took, Ordering::Relaxed);
        for (_, reply) in group {
            let _ = reply.send(written.as_ref().map(|_| ()).map_err(|e| io::Error::new(e.kind(), e.to_string())));
        }
    }
}
