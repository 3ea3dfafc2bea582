//! The smallest receiver that keeps what it acknowledges: bodies appended to one file by one
//! thread, which takes every body waiting, writes them with one `write`, syncs the file's data
//! once (group commit) and only then answers them all. No index, no pages, no row format —
//! whatever Switchboard's store costs beyond this is its own; what this costs is the disk's.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::mpsc;

use axum::body::Bytes;
use tokio::sync::oneshot;

type Waiting = (Bytes, oneshot::Sender<io::Result<()>>);

#[derive(Clone)]
pub struct Log {
    queue: mpsc::Sender<Waiting>,
}

impl Log {
    pub fn open(path: &str) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (queue, waiting) = mpsc::channel();
        std::thread::Builder::new().name("durable-log".into()).spawn(move || run(file, &waiting))?;
        Ok(Self { queue })
    }

    /// Returns once `body` is synced to the disk.
    pub async fn append(&self, body: Bytes) -> io::Result<()> {
        let (reply, synced) = oneshot::channel();
        self.queue.send((body, reply)).map_err(|_| io::Error::other("the log thread stopped"))?;
        synced.await.map_err(|_| io::Error::other("the log thread stopped"))?
    }
}

fn run(mut file: File, waiting: &mpsc::Receiver<Waiting>) {
    let mut buffer = Vec::new();
    while let Ok(first) = waiting.recv() {
        let mut group = vec![first];
        group.extend(waiting.try_iter());
        buffer.clear();
        for (body, _) in &group {
            buffer.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
            buffer.extend_from_slice(body);
        }
        let written = file.write_all(&buffer).and_then(|()| file.sync_data());
        for (_, reply) in group {
            let _ = reply.send(written.as_ref().map(|_| ()).map_err(|e| io::Error::new(e.kind(), e.to_string())));
        }
    }
}
