//! The store contract: the same tests against SQLite and PostgreSQL.
//!
//! PostgreSQL tests need `TEST_DATABASE_URL` (`.ci/run` sets it); each test works in a schema of
//! its own. Without the variable they say they were skipped, and under `CI=true` they fail.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::*;
use crate::body::BodyEncoding;
use crate::event::{Event, EventId, Fields, Kind};

pub(super) fn new_event(vendor: &str, dedup_key: &str, at: DateTime<Utc>) -> NewEvent {
    let mut fields = Fields::default();
    fields.set("contact.phone", json!("+79998887766"));
    NewEvent {
        event: Event {
            id: EventId::new(at),
            received_at: at,
            vendor: vendor.to_owned(),
            event: "call_info".to_owned(),
            kind: Kind::parse("call.missed").unwrap(),
            fields,
            payload: json!({"webhooktype": "2", "place": "Краснодар"}),
        },
        dedup_key: dedup_key.to_owned(),
        dedup_window: Duration::from_secs(600),
        anew: false,
        request: RequestRecord { method: "POST".into(), path: "/hooks/envybox".into(), ..Default::default() },
        raw_body: Bytes::from_static(b"webhooktype=2"),
        payload_from_body: None,
        routes: vec!["missed calls".into()],
        sequence_key: None,
        sequence_start: None,
        deliveries: Vec::new(),
        planned_at: at,
    }
}

/// The first attempt of a delivery, finished with `outcome` (its detail too).
pub(super) fn attempt_record(outcome: &str) -> AttemptRecord {
    AttemptRecord {
        number: 1,
        started_at: Utc::now(),
        duration: Duration::ZERO,
        outcome: outcome.into(),
        reason: None,
        detail: outcome.into(),
        action: None,
        remote_id: None,
        sent: None,
    }
}

pub(super) fn with_deliveries(mut new: NewEvent, outputs: &[&str]) -> NewEvent {
    new.deliveries = outputs
        .iter()
        .map(|output| NewDelivery {
            id: crate::event::monotonic_ulid(new.event.received_at),
            route: "missed calls".into(),
            output: (*output).into(),
            template: "missed_call".into(),
            expires_at: None,
            redraws: None,
            not_before: None,
            unless: None,
        })
        .collect();
    new
}

mod desk;
mod log;
mod queue;
mod views;

/// An event as a JSON webhook makes it: the payload is the body parsed, so it is kept once.
pub(super) fn json_event(dedup_key: &str) -> NewEvent {
    let mut new = with_deliveries(new_event("jivo", dedup_key, Utc::now()), &["tg"]);
    // As a vendor sends it: spaced out, keys in its own order.
    new.raw_body =
        Bytes::from_static(b"{ \"event_name\": \"chat_finished\",\n  \"chat_id\": 7, \"place\": \"\xd0\x9a\" }");
    new.event.payload = json!({"event_name": "chat_finished", "chat_id": 7, "place": "К"});
    new.payload_from_body = Some(BodyEncoding::Json);
    new
}

/// An event as a form webhook makes it: the payload is the form decoded, so it is kept once too.
pub(super) fn form_event(dedup_key: &str) -> NewEvent {
    let mut new = with_deliveries(new_event("envybox", dedup_key, Utc::now()), &["tg"]);
    new.raw_body = Bytes::from_static(b"webhooktype=2&place=%D0%9A%D1%80%D0%B0%D1%81%D0%BD%D0%BE%D0%B4%D0%B0%D1%80");
    new.event.payload = json!({"webhooktype": "2", "place": "Краснодар"});
    new.payload_from_body = Some(BodyEncoding::Form);
    new
}

/// A fresh SQLite store in a temporary folder.
async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nested/dir/test.db"), 3).await.unwrap();
    (dir, Arc::new(store))
}

/// A PostgreSQL store in a schema of its own, or `None` when no server is configured.
pub(crate) async fn postgres() -> Option<Arc<dyn Store>> {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but TEST_DATABASE_URL is unset: .ci/run must set it"
        );
        eprintln!("skipped: set TEST_DATABASE_URL to run the PostgreSQL store tests");
        return None;
    };
    let schema = format!("sb_test_{}", crate::event::monotonic_ulid(Utc::now()).to_string().to_lowercase());
    let admin: sqlx::postgres::PgConnectOptions = url.parse().expect("TEST_DATABASE_URL is a PostgreSQL URL");
    let mut connection = sqlx::ConnectOptions::connect(&admin).await.expect("PostgreSQL is reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut connection).await.unwrap();
    let options = admin.options([("search_path", schema.as_str())]);
    Some(Arc::new(PostgresStore::open(options, 3).await.expect("the store opens")))
}

macro_rules! contract {
    ($($role:ident::$name:ident: $arg:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_dir, store) = super::sqlite().await;
                    super::$role::$name(contract!(@arg $arg store)).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(store) = super::postgres().await else { return };
                    super::$role::$name(contract!(@arg $arg store)).await;
                }
            )*
        }
    };
    (@arg shared $store:ident) => { $store.clone() };
    (@arg borrowed $store:ident) => { $store.as_ref() };
}

contract! {
    log::appended_events_read_back_whole: borrowed,
    log::a_payload_kept_as_its_body_reads_back: borrowed,
    log::a_sequence_reads_back_newest_first_within_its_window: borrowed,
    log::repeats_within_the_window_are_counted_not_stored: borrowed,
    log::a_widened_window_reaches_further_back: borrowed,
    log::a_repeat_of_a_pruned_event_is_stored: borrowed,
    log::an_event_known_to_be_new_is_stored_and_found_by_its_repeats: borrowed,
    log::concurrent_appends_are_all_committed: shared,
    log::concurrent_repeats_are_stored_once: shared,
    views::events_filter_and_page_newest_first: borrowed,
    log::rejections_are_kept_up_to_the_bound: borrowed,
    queue::deliveries_are_claimed_once_and_moved_on: borrowed,
    queue::an_expired_lease_is_taken_over: borrowed,
    queue::concurrent_claimers_never_share_a_delivery: shared,
    queue::operators_can_retry_replay_and_prune: borrowed,
    queue::a_dismissed_dead_letter_is_kept_with_who_and_why_until_retried: borrowed,
    queue::waiting_deliveries_are_pulled_forward_for_their_output: borrowed,
    queue::a_run_of_a_sequence_reads_back_as_one_card: borrowed,
    queue::an_escalation_waits_for_its_time_and_a_cancelled_one_is_settled: borrowed,
    views::operator_views_filter_count_and_summarise: borrowed,
    views::an_operator_action_is_shown_until_a_clean_delivery: borrowed,
    desk::presses_apply_in_order_and_the_first_take_wins: borrowed,
}

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let new = new_event("envybox", "key:1", Utc::now());
    {
        let store = SqliteStore::open(&path, 10).await.unwrap();
        store.append(new.clone()).await.unwrap();
        store.close().await;
    }
    let store = SqliteStore::open(&path, 10).await.unwrap();
    assert!(store.event(new.event.id).await.unwrap().is_some());
    store.ping().await.unwrap();
    // The dedup window lives in the writer's memory; a new one is filled from the table.
    let mut retry = new_event("envybox", "key:1", Utc::now());
    retry.event.received_at = new.event.received_at + TimeDelta::seconds(5);
    assert_eq!(store.append(retry).await.unwrap(), Appended::Duplicate(new.event.id));
}

/// The checkpoint thread copies the log back into the database file soon after commits, long
/// before the writer's own threshold (`WRITER_THRESHOLD_BYTES`) would: the file grows while
/// the daemon is still far below it.
#[tokio::test]
async fn sqlite_log_is_checkpointed_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open(&path, 10).await.unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let mut new = new_event("jivo", "key", Utc::now());
    // About 800 KiB: far below the writer's threshold of 32 MiB.
    new.raw_body = Bytes::from(vec![b'x'; 4096]);
    for i in 0..200 {
        let mut event = new.clone();
        event.event.id = EventId::new(Utc::now());
        event.dedup_key = format!("key:{i}");
        store.append(event).await.unwrap();
    }
    let grown = async {
        while std::fs::metadata(&path).unwrap().len() < before + 200 * 4096 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), grown)
        .await
        .expect("the database file took the appended pages from the log");
}

#[test]
fn transient_failures_are_told_from_lasting_ones() {
    let sqlite = |code| StoreError::from(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None));
    assert!(sqlite(rusqlite::ffi::SQLITE_BUSY).is_transient());
    assert!(sqlite(rusqlite::ffi::SQLITE_FULL).is_transient());
    assert!(!sqlite(rusqlite::ffi::SQLITE_CONSTRAINT).is_transient());
    assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_transient());
    assert!(!StoreError::from(sqlx::Error::RowNotFound).is_transient());
    assert!(StoreError::Closed.is_transient());
    assert!(!StoreError::Corrupt("a row".into()).is_transient());
}

#[test]
fn postgres_codes_worth_a_retry_are_told_from_lasting_ones() {
    for code in ["08006", "53100", "53300", "57P01", "57P03", "57014", "40001", "40P01", "55P03", "25006", "58030"] {
        assert!(super::is_transient_sqlstate(code), "{code}");
    }
    for code in ["53400", "57P04", "40002", "23505", "42P01", "22P02"] {
        assert!(!super::is_transient_sqlstate(code), "{code}");
    }
}
