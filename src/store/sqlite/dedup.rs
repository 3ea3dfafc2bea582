//! The SQLite store's dedup window, held in memory by the writer thread.
//!
//! A vendor's retry must be recognised within `storage.dedup_window_secs` (ten minutes by
//! default). An index on `(vendor, dedup_key)` answered that, but its keys are hashes: every
//! new event landed on a random leaf of the index, so every commit wrote one more page per
//! event to the log and the checkpoint copied it again — about 40% of the pages a webhook cost.
//! The writer is the only thread that appends events, so it can keep the window itself: the
//! events of the last minutes by a hash of their key, filled from the table (a range of ids,
//! read as a range of arrival times) when the daemon starts, and from each committed batch
//! afterwards.
//!
//! A hash is only a candidate: it is confirmed against the stored row (vendor and key) before
//! an event is called a repeat, so a collision can never swallow a new event. The window holds
//! at most [`MAX_ENTRIES`]; under a flood longer than that, the oldest are forgotten first and a
//! late retry of one of them is stored again — a second alert, never a lost one.

use std::collections::VecDeque;
use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, RandomState};

use crate::event::{EventId, ID_DRIFT_MILLIS};
use crate::store::StoreError;
use crate::store::rows::corrupt;
use rusqlite::{Connection, OptionalExtension, params};

/// At most this many events in the window: about 85 bytes each with the tables' spare room, so
/// ~20 MiB at the bound, which ten minutes of traffic reach only above ~400 events/s.
pub(super) const MAX_ENTRIES: usize = 250_000;

/// The events stored within the window, by a hash of (vendor, dedup key).
pub(super) struct DedupWindow {
    hasher: RandomState,
    latest: HashMap<u64, Seen>,
    /// Arrival order, to forget the oldest first.
    arrivals: VecDeque<(i64, u64)>,
    /// Every event stored at or after this (ms) is in `latest`, unless the bound cut it.
    covered_from: i64,
    warned_full: bool,
}

#[derive(Clone, Copy)]
struct Seen {
    id: EventId,
    at: i64,
}

impl DedupWindow {
    /// Empty, covering nothing: the first append loads the table's recent events.
    pub(super) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            latest: HashMap::new(),
            arrivals: VecDeque::new(),
            covered_from: i64::MAX,
            warned_full: false,
        }
    }

    pub(super) fn key(&self, vendor: &str, dedup_key: &str) -> u64 {
        self.hasher.hash_one((vendor, dedup_key))
    }

    /// Makes the window hold every event stored since `since` (ms): forgets older ones, and
    /// reads from the table what it does not hold yet (at start, or when a reload widened the
    /// window).
    pub(super) fn cover(&mut self, connection: &Connection, since: i64) -> Result<(), StoreError> {
        while let Some(&(at, key)) = self.arrivals.front().filter(|(at, _)| *at < since) {
            self.arrivals.pop_front();
            if let Entry::Occupied(entry) = self.latest.entry(key)
                && entry.get().at == at
            {
                entry.remove();
            }
        }
        if since >= self.covered_from {
            self.covered_from = since;
            return Ok(());
        }
        // Newest first, each in front of the ones already held, so arrival order is kept and a
        // key seen twice keeps its latest event. The time range is found as a range of ids (the
        // primary key; there is no index on `received_at`) — often a few milliseconds at the
        // window's old edge, when a batch carries a webhook received a little before the
        // previous batch's.
        let mut recent = connection.prepare_cached(
            "SELECT id, received_at, vendor, dedup_key FROM events
             WHERE id >= ?1 AND id < ?2 AND received_at >= ?3 AND received_at < ?4 ORDER BY id DESC",
        )?;
        let first_id = |millis: i64| EventId::first_at_millis(millis).to_string();
        let ids_until = first_id(self.covered_from.saturating_add(ID_DRIFT_MILLIS + 1));
        let mut rows = recent.query(params![first_id(since), ids_until, since, self.covered_from])?;
        let mut loaded = 0usize;
        while let Some(row) = rows.next()? {
            if self.latest.len() >= MAX_ENTRIES {
                self.warn_full();
                break;
            }
            let id: String = row.get(0)?;
            let at: i64 = row.get(1)?;
            let vendor = row.get_ref(2)?.as_str().map_err(|e| corrupt("vendor", e))?;
            let key = self.key(vendor, row.get_ref(3)?.as_str().map_err(|e| corrupt("dedup key", e))?);
            if let Entry::Vacant(entry) = self.latest.entry(key) {
                entry.insert(Seen { id: id.parse().map_err(|e| corrupt("event id", e))?, at });
                self.arrivals.push_front((at, key));
                loaded += 1;
            }
        }
        if loaded > 0 {
            tracing::debug!(message = "Dedup window filled from the store.", events = loaded);
        }
        self.covered_from = since;
        Ok(())
    }

    /// The stored event that `vendor`'s `dedup_key` repeats, if it arrived since `since` and
    /// is still in the table; checked against the row, not trusted to the hash.
    pub(super) fn original(
        &self,
        connection: &Connection,
        key: u64,
        since: i64,
        vendor: &str,
        dedup_key: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(seen) = self.latest.get(&key).filter(|seen| seen.at >= since) else {
            return Ok(None);
        };
        let id = seen.id.to_string();
        let confirmed = connection
            .prepare_cached("SELECT 1 FROM events WHERE id = ?1 AND vendor = ?2 AND dedup_key = ?3")?
            .query_row(params![id, vendor, dedup_key], |_| Ok(()))
            .optional()?;
        Ok(confirmed.map(|()| id))
    }

    /// Records an event whose batch has committed.
    pub(super) fn remember(&mut self, key: u64, id: EventId, at: i64) {
        while self.latest.len() >= MAX_ENTRIES {
            self.warn_full();
            let Some((oldest_at, oldest)) = self.arrivals.pop_front() else { break };
            if let Entry::Occupied(entry) = self.latest.entry(oldest)
                && entry.get().at == oldest_at
            {
                entry.remove();
            }
        }
        self.latest.insert(key, Seen { id, at });
        self.arrivals.push_back((at, key));
    }

    fn warn_full(&mut self) {
        if !self.warned_full {
            self.warned_full = true;
            tracing::warn!(
                message = "The dedup window is full; the oldest events in it are forgotten first, so a late retry of one is stored again.",
                bound = MAX_ENTRIES
            );
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.latest.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Appended, EventLog, Lifecycle, tests::new_event};

    async fn store_with(events: &[(&str, &str)]) -> (tempfile::TempDir, Connection, Vec<EventId>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let store = SqliteStore::open(&path, 10).await.unwrap();
        let mut ids = Vec::new();
        for (vendor, key) in events {
            let appended = store.append(new_event(vendor, key, Utc::now())).await.unwrap();
            assert!(matches!(appended, Appended::Stored(_)));
            ids.push(appended.id());
        }
        store.close().await;
        (dir, Connection::open(path).unwrap(), ids)
    }

    /// Two keys that share a hash must not make one event a repeat of the other: the row
    /// decides. (A real collision cannot be forced; the window is pointed at the wrong row.)
    #[tokio::test]
    async fn a_hash_is_only_a_candidate() {
        let (_dir, connection, ids) = store_with(&[("jivo", "key:a"), ("jivo", "key:b")]).await;
        let mut window = DedupWindow::new();
        window.cover(&connection, 0).unwrap();
        let key_a = window.key("jivo", "key:a");
        assert_eq!(window.original(&connection, key_a, 0, "jivo", "key:a").unwrap(), Some(ids[0].to_string()));
        window.remember(key_a, ids[1], millis_now());
        assert_eq!(window.original(&connection, key_a, 0, "jivo", "key:a").unwrap(), None);
        // The same key from another vendor is another event, whatever the hash points at.
        let other_vendor = window.key("envybox", "key:b");
        window.remember(other_vendor, ids[1], millis_now());
        assert_eq!(window.original(&connection, other_vendor, 0, "envybox", "key:b").unwrap(), None);
    }

    #[tokio::test]
    async fn the_window_forgets_what_falls_out_of_it() {
        let (_dir, connection, _) = store_with(&[("jivo", "key:a")]).await;
        let mut window = DedupWindow::new();
        window.cover(&connection, 0).unwrap();
        assert_eq!(window.len(), 1, "filled from the table");
        let key = window.key("jivo", "key:a");
        window.cover(&connection, millis_now() + 1).unwrap();
        assert_eq!(window.len(), 0);
        assert_eq!(window.original(&connection, key, 0, "jivo", "key:a").unwrap(), None);
        // Widening again reads the table again.
        window.cover(&connection, 0).unwrap();
        assert_eq!(window.len(), 1);
    }

    #[test]
    fn the_window_is_bounded_oldest_out_first() {
        let mut window = DedupWindow::new();
        window.covered_from = 0;
        let id = EventId::new(Utc::now());
        for i in 0..=MAX_ENTRIES {
            window.remember(window.key("jivo", &format!("key:{i}")), id, i64::try_from(i).unwrap());
        }
        assert_eq!(window.len(), MAX_ENTRIES);
        assert!(!window.latest.contains_key(&window.key("jivo", "key:0")), "the oldest went first");
        assert!(window.latest.contains_key(&window.key("jivo", &format!("key:{MAX_ENTRIES}"))));
    }

    fn millis_now() -> i64 {
        crate::store::millis(Utc::now())
    }
}
