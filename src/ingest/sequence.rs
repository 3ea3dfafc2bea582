//! The part of ingest that lets an event of a vendor's `[sequence]` (a Jivo call's
//! `call_event`s) be classified by what came before it: one at a time per sequence, so that the
//! `end` of a call reads an `agent_connected` that arrived a moment earlier, stored — in this
//! process by [`SequenceTurns`], across instances sharing a PostgreSQL store by its lock
//! ([`EventLog::lock_sequence`]).

use std::hash::{BuildHasher, RandomState};

use tokio::sync::{Mutex, MutexGuard};

use crate::event::EventId;
use crate::plugin::{Normalized, RECALL_LIMIT, Repeat, Vendor};
use crate::store::{EventLog, SequenceLock, StoreError};

/// How many sequences can be taken in parallel; two sequences that share a stripe merely wait
/// for each other. Such events are a few per call, so contention is not a concern.
const STRIPES: usize = 64;

/// Turns per sequence key, striped: ingest holds one from reading a sequence until the event is
/// stored. They order the events of a sequence within this process, so that only one of them at
/// a time waits for the store's lock, which orders them across instances.
#[derive(Debug)]
pub struct SequenceTurns {
    stripes: Vec<Mutex<()>>,
    hasher: RandomState,
}

impl Default for SequenceTurns {
    fn default() -> Self {
        Self { stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(), hasher: RandomState::new() }
    }
}

impl SequenceTurns {
    /// Waits for `key`'s turn; it lasts while the guard lives.
    async fn take(&self, key: &str) -> MutexGuard<'_, ()> {
        let stripe = usize::try_from(self.hasher.hash_one(key) % STRIPES as u64).unwrap_or_default();
        self.stripes[stripe].lock().await
    }
}

/// The sequence is this event's until it is dropped: hold it until the event is stored.
pub(super) struct Turn<'t> {
    _here: MutexGuard<'t, ()>,
    _everywhere: SequenceLock,
}

/// What an event of a sequence learnt from the sequence's earlier events.
pub(super) struct Recalled<'t> {
    /// The sequence is this event's until the turn is dropped.
    pub(super) turn: Option<Turn<'t>>,
    /// An earlier event of the sequence has its dedup key, but the sequence has moved on since:
    /// this is the same thing happening again (a visitor's second call), not a resend.
    pub(super) anew: bool,
    /// The event that began this run of the sequence: the event itself when it begins one or
    /// none of the run is stored, otherwise what the latest earlier event named.
    pub(super) start: Option<EventId>,
}

/// Classifies `normalized` again with what its sequence's earlier events showed, if it belongs
/// to one, tells whether it repeats one of them, and returns the sequence's turn. The event gets
/// its id anew once its turn has come.
///
/// # Errors
/// The store could not lock or read the sequence: the vendor is asked to send the event again
/// rather than have it classified without its history.
pub(super) async fn recall<'t>(
    turns: &'t SequenceTurns,
    store: &dyn EventLog,
    vendor: &Vendor,
    normalized: &mut Normalized,
) -> Result<Recalled<'t>, StoreError> {
    let Some(sequence) = &normalized.sequence else {
        return Ok(Recalled { turn: None, anew: false, start: None });
    };
    let here = turns.take(&sequence.key).await;
    let everywhere = store.lock_sequence(&sequence.key).await?;
    // A fresh id, greater than every id this process gave before: the events of a sequence are
    // then stored in the order of their ids, the order the next one's recall reads them in.
    normalized.event.id = EventId::new(normalized.event.received_at);
    // Read even for an event that begins the sequence: it may be a resend of the one that began it.
    let mut earlier = store.sequence(&sequence.key, sequence.since, RECALL_LIMIT).await?;
    // Only what came before it: a refused request processed again keeps its old arrival time.
    earlier.retain(|stored| stored.event.id < normalized.event.id);
    let keyed: Vec<_> = earlier.iter().map(|stored| (&stored.event, stored.dedup_key.as_str())).collect();
    let repeat = vendor.repeat(sequence, normalized.event.received_at, &normalized.dedup_key, &keyed);
    let seen = vendor.recall(sequence, earlier.iter().map(|stored| &stored.event));
    vendor.reclassify(&mut normalized.event, &seen);
    let own = normalized.event.id;
    let start =
        if sequence.begins { own } else { earlier.first().and_then(|stored| stored.sequence_start).unwrap_or(own) };
    Ok(Recalled {
        turn: Some(Turn { _here: here, _everywhere: everywhere }),
        anew: repeat == Repeat::Anew,
        start: Some(start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_waits_for_its_own_turn_only() {
        let turns = SequenceTurns::default();
        let held = turns.take("jivo\u{1f}1").await;
        // Another key in the same stripe would wait too; find one that is not.
        let other = (0..1000)
            .map(|n| format!("jivo\u{1f}other{n}"))
            .find(|k| {
                turns.hasher.hash_one(k) % STRIPES as u64 != turns.hasher.hash_one("jivo\u{1f}1") % STRIPES as u64
            })
            .unwrap();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), turns.take(&other)).await.is_ok());
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), turns.take("jivo\u{1f}1")).await.is_err());
        drop(held);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), turns.take("jivo\u{1f}1")).await.is_ok());
    }
}
