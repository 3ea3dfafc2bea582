//! Checkpoints beside the writer, not inside its commits. In WAL mode every commit appends
//! pages to the log, and a checkpoint copies them back into the database file: it reads the
//! log, writes the file and syncs it. Left to SQLite, all of that happens in the commit that
//! crosses 1,000 pages — inside some webhook's acknowledgement, on the one thread that writes
//! (measured: a 5–7 ms fsync of the database file every few hundred commits at 2,000 req/s,
//! which was the whole p99). This thread copies the log back every [`INTERVAL`] with passive
//! checkpoints, which never block the writer, in small steps so that each sync of the file
//! has little to flush: after a commit, at most every [`INTERVAL`], and not at all while the
//! daemon is idle. The writer keeps a far threshold ([`WRITER_THRESHOLD_BYTES`]) of its own:
//! by then nearly everything has been copied here, so its checkpoint is short, and it is what
//! lets the log start again from its beginning under steady writes (a passive checkpoint beside
//! a busy writer never quite catches up with the log's end).

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use rusqlite::Connection;

use crate::store::StoreError;

/// The shortest time between two checkpoints: the p99 of ingest at 2,000 req/s was lowest
/// from 5 to 10 ms here, and rose to 9–11 ms at 50 ms.
const INTERVAL: Duration = Duration::from_millis(10);
/// The log's size before the writer checkpoints by itself (SQLite counts it in pages).
pub(super) const WRITER_THRESHOLD_BYTES: u32 = 32 * 1024 * 1024;

/// Tells the checkpoint thread that the log has grown.
pub(super) struct Nudge(SyncSender<()>);

impl Nudge {
    /// Never waits: a nudge already pending covers this commit too.
    pub(super) fn send(&self) {
        let _ = self.0.try_send(());
    }
}

/// Starts the checkpoint thread; it stops when the [`Nudge`] is dropped.
pub(super) fn start(path: &Path) -> Result<Nudge, StoreError> {
    let connection = Connection::open(path)?;
    let (nudge, nudged) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(&connection, &nudged))
        .map_err(|e| StoreError::Corrupt(format!("cannot start the SQLite checkpoint thread: {e}")))?;
    Ok(Nudge(nudge))
}

fn run(connection: &Connection, nudged: &Receiver<()>) {
    let mut failing = false;
    while nudged.recv().is_ok() {
        match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => failing = false,
            // Said once, not every time; the writer's own checkpoints still bound the log.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(message = "SQLite checkpoint failed; the writer checkpoints by itself until this recovers.", %error);
            }
            Err(_) => {}
        }
        std::thread::sleep(INTERVAL);
    }
}
