//! What only the SQLite file shows: how a row is kept, and what a migration does to old files.

use chrono::Utc;
use sqlx::Row;

use super::{MIGRATOR, SqliteStore};
use crate::store::tests::{form_event, json_event, new_event};
use crate::store::{EventLog, Lifecycle, Queue, Views};

async fn payload_columns(path: &std::path::Path, id: &str) -> (Option<String>, Option<String>) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let row =
        sqlx::query("SELECT payload, body_encoding FROM events WHERE id = ?").bind(id).fetch_one(&pool).await.unwrap();
    (row.get("payload"), row.get("body_encoding"))
}

/// A JSON or form body is written once: the payload column stays empty and the body, with how
/// to read it, stands for it. A payload its body does not give back is kept.
#[tokio::test]
async fn a_payload_is_not_written_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = SqliteStore::open(&path, 10).await.unwrap();
    let (json, form, kept) =
        (json_event("key:json"), form_event("key:form"), new_event("envybox", "key:kept", Utc::now()));
    let ids = [json.event.id, form.event.id, kept.event.id].map(|id| id.to_string());
    for new in [json, form, kept] {
        store.append(new).await.unwrap();
    }
    store.close().await;
    assert_eq!(payload_columns(&path, &ids[0]).await, (None, Some("json".to_owned())));
    assert_eq!(payload_columns(&path, &ids[1]).await, (None, Some("form".to_owned())));
    let (payload, encoding) = payload_columns(&path, &ids[2]).await;
    assert!(payload.is_some_and(|text| text.contains("webhooktype")) && encoding.is_none());
}

/// A file from before migration 4 (`payload` NOT NULL) is rebuilt: its events, their
/// deliveries and the cascade between them survive, and JSON payloads are then kept once.
#[tokio::test]
async fn an_older_file_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(old).await.unwrap();
    MIGRATOR.run_to(3, &pool).await.unwrap();
    sqlx::query(
        "INSERT INTO events (id, received_at, vendor, event, kind, fields, payload, dedup_key, request, raw_body, routes)
         VALUES ('01HZZZ0000000000000000000A', 1, 'envybox', 'call_info', 'call.missed', '{}', '{\"a\":1}', 'k',
                 '{\"method\":\"POST\",\"path\":\"/\",\"query\":\"\",\"headers\":[],\"remote_addr\":null}', x'613d31', '[\"r\"]');
         INSERT INTO deliveries (id, event_id, route, output, template, state, next_attempt_at, created_at, updated_at)
         VALUES ('01HZZZ0000000000000000000B', '01HZZZ0000000000000000000A', 'r', 'tg', 't', 'delivered', 1, 1, 1);",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = SqliteStore::open(&path, 10).await.unwrap();
    let id = "01HZZZ0000000000000000000A".parse().unwrap();
    let stored = store.event(id).await.unwrap().expect("the old event is still there");
    assert_eq!(stored.event.payload, serde_json::json!({"a": 1}));
    assert_eq!(stored.routes, ["r"]);
    assert_eq!(store.deliveries(id).await.unwrap().len(), 1, "its delivery still points at it");
    let mut json = json_event("key:after");
    json.deliveries.clear();
    let json_id = json.event.id.to_string();
    store.append(json).await.unwrap();
    assert_eq!(payload_columns(&path, &json_id).await.0, None, "the rebuilt column takes NULL");
    assert_eq!(store.prune(Utc::now()).await.unwrap(), 2, "old and new events are pruned alike");
    assert!(store.deliveries(id).await.unwrap().is_empty(), "deleting an event still deletes its deliveries");
}

/// Before migration 6 only JSON bodies stood for their payloads: such a row, with no
/// `body_encoding`, still reads back as its body's JSON.
#[tokio::test]
async fn a_payload_kept_as_its_body_before_body_encoding_reads_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(old).await.unwrap();
    MIGRATOR.run_to(5, &pool).await.unwrap();
    sqlx::query(
        "INSERT INTO events (id, received_at, vendor, event, kind, fields, payload, dedup_key, request, raw_body, routes)
         VALUES ('01HZZZ0000000000000000000A', 1, 'jivo', 'chat_finished', 'chat.finished', '{}', NULL, 'k',
                 '{\"method\":\"POST\",\"path\":\"/\",\"query\":\"\",\"headers\":[],\"remote_addr\":null}',
                 CAST('{\"chat_id\": 7}' AS BLOB), '[]')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = SqliteStore::open(&path, 10).await.unwrap();
    let stored = store.event("01HZZZ0000000000000000000A".parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.event.payload, serde_json::json!({"chat_id": 7}));
}

/// A daemon killed while it held deliveries: at the next start they are released at once and
/// counted as interrupted — each may have reached its destination before the kill.
#[tokio::test]
async fn deliveries_held_at_a_crash_are_released_and_counted_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let now = Utc::now();
    {
        let store = SqliteStore::open(&path, 10).await.unwrap();
        let new = crate::store::tests::with_deliveries(new_event("jivo", "key:held", now), &["tg", "mail"]);
        store.append(new).await.unwrap();
        let held = store.claim_due(now, 1, std::time::Duration::from_secs(600)).await.unwrap();
        assert_eq!(held.len(), 1);
        store.close().await;
    }
    let store = SqliteStore::open(&path, 10).await.unwrap();
    assert_eq!(store.recover().await.unwrap(), 1);
    let mut due = store.claim_due(now, 10, std::time::Duration::from_secs(60)).await.unwrap();
    due.sort_by_key(|(delivery, _)| delivery.interrupted);
    assert_eq!(due.iter().map(|(d, _)| d.interrupted).collect::<Vec<_>>(), [0, 1]);
}
