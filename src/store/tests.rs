//! The store contract, run against SQLite.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;

use super::sqlite::SqliteStore;
use super::*;
use crate::event::{Fields, Kind};

fn new_event(vendor: &str, dedup_key: &str, at: DateTime<Utc>) -> NewEvent {
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
        request: RequestRecord { method: "POST".into(), path: "/hooks/envybox".into(), ..Default::default() },
        raw_body: Bytes::from_static(b"webhooktype=2"),
        routes: Vec::new(),
        deliveries: Vec::new(),
    }
}

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nested/dir/test.db"), 3).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn appended_events_read_back_whole() {
    let (_dir, store) = open().await;
    let new = new_event("envybox", "key:1", Utc::now());
    let id = new.event.id;
    assert_eq!(store.append(new.clone()).await.unwrap(), Appended::Stored(id));
    let stored = store.event(id).await.unwrap().expect("stored");
    assert_eq!(stored.event.id, id);
    assert_eq!(stored.event.received_at.timestamp_millis(), new.event.received_at.timestamp_millis());
    assert_eq!((stored.event.vendor.as_str(), stored.event.kind.as_str()), ("envybox", "call.missed"));
    assert_eq!(stored.event.fields, new.event.fields);
    assert_eq!(stored.event.payload, new.event.payload);
    assert_eq!(stored.request, new.request);
    assert_eq!(stored.raw_body, new.raw_body);
    assert_eq!(stored.duplicates, 0);
}

#[tokio::test]
async fn repeats_within_the_window_are_counted_not_stored() {
    let (_dir, store) = open().await;
    let now = Utc::now();
    let first = store.append(new_event("envybox", "key:1", now)).await.unwrap();
    let again = store.append(new_event("envybox", "key:1", now + TimeDelta::seconds(30))).await.unwrap();
    assert_eq!(again, Appended::Duplicate(first.id()));
    // Same key from another vendor, or after the window, is a new event.
    let other_vendor = store.append(new_event("callkeeper", "key:1", now)).await.unwrap();
    let later = store.append(new_event("envybox", "key:1", now + TimeDelta::minutes(11))).await.unwrap();
    assert!(matches!(other_vendor, Appended::Stored(_)));
    assert!(matches!(later, Appended::Stored(_)));
    assert_eq!(store.event(first.id()).await.unwrap().unwrap().duplicates, 1);
    assert_eq!(store.events(&EventQuery { limit: 10, ..Default::default() }).await.unwrap().len(), 3);
}

#[tokio::test]
async fn concurrent_appends_are_all_committed() {
    let (_dir, store) = open().await;
    let store = std::sync::Arc::new(store);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.append(new_event("envybox", &format!("key:{i}"), Utc::now())).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(task.await.unwrap().unwrap(), Appended::Stored(_)));
    }
    let all = store.events(&EventQuery { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 200);
}

#[tokio::test]
async fn events_filter_and_page_newest_first() {
    let (_dir, store) = open().await;
    let base = Utc::now();
    for i in 0..5 {
        let vendor = if i % 2 == 0 { "envybox" } else { "jivo" };
        store.append(new_event(vendor, &format!("k{i}"), base + TimeDelta::seconds(i))).await.unwrap();
    }
    let envybox =
        store.events(&EventQuery { vendor: Some("envybox".into()), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(envybox.len(), 3);
    assert!(envybox.windows(2).all(|w| w[0].event.id > w[1].event.id));
    let page =
        store.events(&EventQuery { before: Some(envybox[0].event.id), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(page.len(), 4);
}

#[tokio::test]
async fn rejections_are_kept_up_to_the_bound() {
    let (_dir, store) = open().await;
    for i in 0..5u16 {
        let at = Utc::now() + TimeDelta::milliseconds(i64::from(i));
        store
            .reject(Rejection {
                id: Ulid::from_datetime(at.into()),
                received_at: at,
                vendor: Some("jivo".into()),
                status: 400 + i,
                reason: "invalid_json".into(),
                message: "invalid JSON".into(),
                request: RequestRecord::default(),
                raw_body: Bytes::from(vec![b'x'; REJECTED_BODY_KEEP + 10]),
            })
            .await
            .unwrap();
    }
    let kept = store.rejections(100).await.unwrap();
    assert_eq!(kept.iter().map(|r| r.status).collect::<Vec<_>>(), [404, 403, 402], "newest three kept");
    assert_eq!(kept[0].raw_body.len(), REJECTED_BODY_KEEP);
}

#[tokio::test]
async fn data_survives_reopening() {
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
}
