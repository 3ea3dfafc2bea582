//! The writer thread driven directly: batches that fail alone, rollbacks that leave no trace.

use chrono::Utc;

use super::*;
use crate::store::sqlite::SqliteStore;
use crate::store::{Views, tests::new_event};

/// A store, and a writer thread's state on a connection of its own, driven by the test.
async fn beside_a_store(dir: &tempfile::TempDir) -> (SqliteStore, WriterThread) {
    let path = dir.path().join("w.db");
    let store = SqliteStore::open(&path, 10).await.unwrap();
    let connection = Connection::open(&path).unwrap();
    connection.pragma_update(None, "foreign_keys", true).unwrap();
    let checkpoints = checkpoint::start(&path).unwrap();
    let window = DedupWindow::new();
    let thread = WriterThread {
        connection,
        rejected_keep: 10,
        synchronous_full: false,
        checkpoints,
        window,
        health: Health::default(),
    };
    (store, thread)
}

impl WriterThread {
    fn write_and_answer(&mut self, batch: Vec<Command>) {
        let outcomes = self.write(&batch);
        answer(batch.into_iter(), outcomes);
    }
}

/// The claim is compiled once, whatever limit and times it is called with (see
/// `open_connection`): without the planner's stability guarantee every new limit compiled it
/// again.
#[tokio::test]
async fn the_claim_is_not_compiled_again_for_new_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let _store = SqliteStore::open(&path, 10).await.unwrap();
    let mut connection = open_connection(&path).unwrap();
    for (now, limit) in [(1, 1), (2, 7), (3, 32), (4, 2)] {
        let tx = connection.transaction().unwrap();
        statements::claim(&tx, now, now + 60_000, limit).unwrap();
        tx.commit().unwrap();
    }
    let claim = connection.prepare_cached(statements::CLAIM).unwrap();
    assert_eq!(claim.get_status(rusqlite::StatementStatus::RePrepare), 0);
}

/// A replay whose event is gone breaks a foreign key; the webhook batched with it is still
/// stored and answered.
#[tokio::test]
async fn a_bad_command_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut thread) = beside_a_store(&dir).await;

    let gone = Replayed {
        event_id: EventId::new(Utc::now()).to_string(),
        routes: "[\"r\"]".into(),
        at: 0,
        deliveries: vec![NewDelivery {
            id: crate::event::monotonic_ulid(Utc::now()),
            route: "r".into(),
            output: "o".into(),
            template: "t".into(),
            expires_at: None,
            redraws: None,
            not_before: None,
            unless: None,
        }],
    };
    let new = new_event("envybox", "key:alone", Utc::now());
    let id = new.event.id;
    let (replayed, replay_answer) = oneshot::channel();
    let (appended, append_answer) = oneshot::channel();
    let batch = vec![
        Command::AddDeliveries(Box::new(gone), replayed),
        Command::Append(Box::new(EncodedEvent::new(new).unwrap()), appended),
    ];
    thread.write_and_answer(batch);

    assert!(replay_answer.await.unwrap().is_err(), "the replay of a missing event fails");
    assert_eq!(append_answer.await.unwrap().unwrap(), Appended::Stored(id));
    assert!(store.event(id).await.unwrap().is_some(), "the webhook beside it is stored");
}

/// A batch that rolls back leaves nothing in the dedup window: the retry of an event that
/// was never stored is stored, not taken for a repeat of it.
#[tokio::test]
async fn a_rolled_back_append_is_not_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut thread) = beside_a_store(&dir).await;

    let first = new_event("jivo", "key:first", Utc::now());
    // Same id, another key: its insert breaks the primary key, so the batch rolls back and
    // each command is retried alone; only the first is stored.
    let mut clash = new_event("jivo", "key:clash", Utc::now());
    clash.event.id = first.event.id;
    let (first_reply, first_answer) = oneshot::channel();
    let (clash_reply, clash_answer) = oneshot::channel();
    let batch = vec![
        Command::Append(Box::new(EncodedEvent::new(first.clone()).unwrap()), first_reply),
        Command::Append(Box::new(EncodedEvent::new(clash).unwrap()), clash_reply),
    ];
    thread.write_and_answer(batch);
    assert_eq!(first_answer.await.unwrap().unwrap(), Appended::Stored(first.event.id));
    assert!(clash_answer.await.unwrap().is_err());
    assert_eq!(thread.window.len(), 1);

    let retry = new_event("jivo", "key:clash", Utc::now());
    let retry_id = retry.event.id;
    let (reply, retried) = oneshot::channel();
    let batch = vec![Command::Append(Box::new(EncodedEvent::new(retry).unwrap()), reply)];
    thread.write_and_answer(batch);
    assert_eq!(retried.await.unwrap().unwrap(), Appended::Stored(retry_id));
    assert!(store.event(retry_id).await.unwrap().is_some());
}
