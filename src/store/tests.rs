//! The store contract: the same tests against SQLite and PostgreSQL.
//!
//! PostgreSQL tests need `TEST_DATABASE_URL` (`.ci/run` sets it); each test works in a schema of
//! its own. Without the variable they say they were skipped, and under `CI=true` they fail.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::*;
use crate::body::BodyEncoding;
use crate::event::{Fields, Kind};

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
        deliveries: Vec::new(),
        planned_at: at,
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
        })
        .collect();
    new
}

async fn appended_events_read_back_whole(store: &dyn Store) {
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
    assert_eq!(stored.routes, ["missed calls"]);
    assert_eq!(stored.duplicates, 0);
}

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

/// Every read gives such a payload back: one event, the operator's list, a claim.
async fn a_payload_kept_as_its_body_reads_back(store: &dyn Store) {
    let (json, form) = (json_event("key:json"), form_event("key:form"));
    let ids = [form.event.id, json.event.id];
    let payloads = [form.event.payload.clone(), json.event.payload.clone()];
    store.append(json).await.unwrap();
    store.append(form).await.unwrap();
    for (id, payload) in ids.iter().zip(&payloads) {
        assert_eq!(&store.event(*id).await.unwrap().unwrap().event.payload, payload);
    }
    let listed = store.events(&EventQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(listed.iter().map(|e| &e.event.payload).collect::<Vec<_>>(), [&payloads[0], &payloads[1]]);
    let mut claimed = store.claim_due(Utc::now(), 10, Duration::from_secs(60)).await.unwrap();
    claimed.sort_by_key(|(_, event)| std::cmp::Reverse(event.id));
    assert_eq!(claimed.iter().map(|(_, event)| &event.payload).collect::<Vec<_>>(), [&payloads[0], &payloads[1]]);
}

/// A sequence is read by its key alone, newest first, no further back than asked, and its events
/// come back whole (here a form's payload, kept as its body).
async fn a_sequence_reads_back_newest_first_within_its_window(store: &dyn Store) {
    let now = Utc::now();
    let mut ids = Vec::new();
    for (minutes_ago, key) in [
        (120, Some("jivo\u{1f}1")),
        (30, Some("jivo\u{1f}1")),
        (20, Some("jivo\u{1f}2")),
        (10, Some("jivo\u{1f}1")),
        (5, None),
    ] {
        let mut new = form_event(&format!("key:seq{minutes_ago}"));
        new.event.received_at = now - TimeDelta::minutes(minutes_ago);
        new.event.id = EventId::new(new.event.received_at);
        new.sequence_key = key.map(str::to_owned);
        ids.push(new.event.id);
        store.append(new).await.unwrap();
    }
    let hour_ago = now - TimeDelta::hours(1);
    let found = store.sequence("jivo\u{1f}1", hour_ago, 100).await.unwrap();
    assert_eq!(found.iter().map(|e| e.event.id).collect::<Vec<_>>(), [ids[3], ids[1]]);
    assert_eq!(found[0].event.payload, json!({"webhooktype": "2", "place": "Краснодар"}));
    assert_eq!(found[0].dedup_key, "key:seq10", "a repeat is recognised by its sequence's keys");
    let stored = store.event(ids[3]).await.unwrap().unwrap();
    assert_eq!(stored.sequence_key.as_deref(), Some("jivo\u{1f}1"));
    assert_eq!(store.event(ids[4]).await.unwrap().unwrap().sequence_key, None);
    let newest = store.sequence("jivo\u{1f}1", hour_ago, 1).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.event.id).collect::<Vec<_>>(), [ids[3]]);
    let all_day = store.sequence("jivo\u{1f}1", now - TimeDelta::days(1), 100).await.unwrap();
    assert_eq!(all_day.len(), 3);
    assert!(store.sequence("jivo\u{1f}3", hour_ago, 100).await.unwrap().is_empty());
}

async fn repeats_within_the_window_are_counted_not_stored(store: &dyn Store) {
    let now = Utc::now();
    let first = store.append(with_deliveries(new_event("envybox", "key:1", now), &["tg"])).await.unwrap();
    let again = store
        .append(with_deliveries(new_event("envybox", "key:1", now + TimeDelta::seconds(30)), &["tg"]))
        .await
        .unwrap();
    assert_eq!(again, Appended::Duplicate(first.id()));
    let other_vendor = store.append(new_event("callkeeper", "key:1", now)).await.unwrap();
    let later = store.append(new_event("envybox", "key:1", now + TimeDelta::minutes(11))).await.unwrap();
    assert!(matches!(other_vendor, Appended::Stored(_)));
    assert!(matches!(later, Appended::Stored(_)));
    assert_eq!(store.event(first.id()).await.unwrap().unwrap().duplicates, 1);
    assert_eq!(store.deliveries(first.id()).await.unwrap().len(), 1, "a duplicate adds no deliveries");
    assert_eq!(store.events(&EventQuery { limit: 10, ..Default::default() }).await.unwrap().len(), 3);
}

/// A reload can widen the window: events from before the old window's start are then found
/// too, not only those seen since.
async fn a_widened_window_reaches_further_back(store: &dyn Store) {
    let start = Utc::now() - TimeDelta::minutes(30);
    let first = store.append(new_event("jivo", "key:wide", start)).await.unwrap();
    let unrelated = store.append(new_event("jivo", "key:other", start + TimeDelta::minutes(20))).await.unwrap();
    assert!(matches!(unrelated, Appended::Stored(_)));
    let mut again = new_event("jivo", "key:wide", start + TimeDelta::minutes(25));
    again.dedup_window = Duration::from_secs(3600);
    assert_eq!(store.append(again).await.unwrap(), Appended::Duplicate(first.id()));
}

/// An event ingest knows to be new is stored though its key is in the window, and its own
/// repeats are then counted on it, not on the earlier event.
async fn an_event_known_to_be_new_is_stored_and_found_by_its_repeats(store: &dyn Store) {
    let now = Utc::now();
    let first = store.append(new_event("jivo", "key:call", now)).await.unwrap();
    let mut second = new_event("jivo", "key:call", now + TimeDelta::minutes(2));
    second.anew = true;
    let second = store.append(second).await.unwrap();
    assert!(matches!(second, Appended::Stored(id) if id != first.id()), "{second:?}");
    let resend = store.append(new_event("jivo", "key:call", now + TimeDelta::minutes(2))).await.unwrap();
    assert_eq!(resend, Appended::Duplicate(second.id()));
    assert_eq!(store.event(first.id()).await.unwrap().unwrap().duplicates, 0);
}

/// Once the original is pruned there is nothing to count a repeat on: it is stored anew.
async fn a_repeat_of_a_pruned_event_is_stored(store: &dyn Store) {
    let now = Utc::now();
    let first = store.append(new_event("envybox", "key:pruned", now)).await.unwrap();
    assert_eq!(store.prune(now + TimeDelta::seconds(1)).await.unwrap(), 1);
    let again = store.append(new_event("envybox", "key:pruned", now + TimeDelta::seconds(2))).await.unwrap();
    assert!(matches!(again, Appended::Stored(id) if id != first.id()), "{again:?}");
}

async fn concurrent_appends_are_all_committed(store: Arc<dyn Store>) {
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

async fn concurrent_repeats_are_stored_once(store: Arc<dyn Store>) {
    let now = Utc::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.append(new_event("jivo", "key:same", now)).await.unwrap() })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        stored += usize::from(matches!(task.await.unwrap(), Appended::Stored(_)));
    }
    assert_eq!(stored, 1);
}

async fn events_filter_and_page_newest_first(store: &dyn Store) {
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

/// The dashboard's questions: which events failed, whose phone is this, how do outputs fare,
/// how deep is the queue.
async fn operator_views_filter_count_and_summarise(store: &dyn Store) {
    let now = Utc::now();
    let attempt = |outcome: &str, detail: &str| AttemptRecord {
        number: 1,
        started_at: now,
        duration: Duration::from_millis(5),
        outcome: outcome.into(),
        reason: None,
        detail: detail.into(),
    };
    let delivered = with_deliveries(new_event("envybox", "v:1", now - TimeDelta::seconds(30)), &["tg"]);
    let failed = with_deliveries(new_event("envybox", "v:2", now - TimeDelta::seconds(20)), &["tg", "mail"]);
    let mut unrouted = new_event("jivo", "v:3", now - TimeDelta::seconds(10));
    unrouted.routes.clear();
    unrouted.event.fields.set("contact.phone", json!("+7 (916) 123-45-67"));
    unrouted.event.fields.set("contact.email", json!("Ivan@Example.com"));
    let pending = with_deliveries(new_event("jivo", "v:4", now), &["http"]);
    let ids = [delivered.event.id, failed.event.id, unrouted.event.id, pending.event.id];
    for new in [delivered, failed, unrouted, pending] {
        store.append(new).await.unwrap();
    }
    let claimed = store.claim_due(now, 10, Duration::from_secs(60)).await.unwrap();
    for (delivery, event) in &claimed {
        let (outcome, next) = match (event.id == ids[1], delivery.output.as_str()) {
            (true, "mail") => (attempt("dead", "550 mailbox unavailable"), Next::Dead),
            (_, "http") => (attempt("retry", "503"), Next::RetryAt(now + TimeDelta::seconds(60))),
            _ => (attempt("delivered", "message 7"), Next::Delivered),
        };
        store.finish_attempt(delivery.id, outcome, next).await.unwrap();
    }

    let find = |status: Option<EventStatus>, search: Option<&str>| {
        let query = EventQuery { status, search: search.map(str::to_owned), limit: 10, ..Default::default() };
        async move { store.events(&query).await.unwrap().iter().map(|s| s.event.id).collect::<Vec<_>>() }
    };
    assert_eq!(find(Some(EventStatus::Delivered), None).await, [ids[0]]);
    assert_eq!(find(Some(EventStatus::Failed), None).await, [ids[1]]);
    assert_eq!(find(Some(EventStatus::Unrouted), None).await, [ids[2]]);
    assert_eq!(find(Some(EventStatus::Pending), None).await, [ids[3]]);
    assert_eq!(find(None, Some("ivan@example")).await, [ids[2]], "email, case-insensitively");
    assert_eq!(find(None, Some("(916) 123")).await, [ids[2]], "a phone number as written");
    assert_eq!(find(None, Some("79998887766")).await, [ids[3], ids[1], ids[0]], "a phone number's digits");
    assert!(find(None, Some("100%")).await.is_empty(), "LIKE wildcards are literal");
    let window = EventQuery {
        since: Some(now - TimeDelta::seconds(25)),
        until: Some(now - TimeDelta::seconds(5)),
        limit: 10,
        ..Default::default()
    };
    let in_window: Vec<_> = store.events(&window).await.unwrap().iter().map(|s| s.event.id).collect();
    assert_eq!(in_window, [ids[2], ids[1]]);

    let counts = store.delivery_counts(&ids).await.unwrap();
    assert_eq!(counts[&ids[1]], DeliveryCounts { delivered: 1, dead: 1, ..Default::default() });
    assert_eq!(counts[&ids[1]].status(true), EventStatus::Failed);
    assert!(!counts.contains_key(&ids[2]), "an unrouted event has no deliveries");
    assert_eq!(counts[&ids[3]].status(true), EventStatus::Pending);

    let health = store.output_health().await.unwrap();
    let mail = health.iter().find(|h| h.output == "mail").unwrap();
    assert_eq!((mail.last_success_at, mail.last_failure.as_deref()), (None, Some("550 mailbox unavailable")));
    let tg = health.iter().find(|h| h.output == "tg").unwrap();
    assert!(tg.last_success_at.is_some() && tg.last_failure_at.is_none());

    let queue = store.queue_stats(now).await.unwrap();
    assert_eq!((queue.pending, queue.due, queue.dead), (1, 0, 1));
    assert_eq!(queue.oldest_pending_at.map(|t| t.timestamp_millis()), Some(now.timestamp_millis()));
    assert_eq!(store.queue_stats(now + TimeDelta::seconds(61)).await.unwrap().due, 1);
}

async fn rejections_are_kept_up_to_the_bound(store: &dyn Store) {
    for i in 0..5u16 {
        let at = Utc::now();
        store
            .reject(Rejection {
                id: crate::event::monotonic_ulid(at),
                received_at: at,
                vendor: Some("jivo".into()),
                status: 400 + i,
                reason: "invalid_json".into(),
                message: "invalid JSON".into(),
                request: RequestRecord::default(),
                raw_body: Bytes::from(vec![b'x'; REJECTED_BODY_KEEP]),
                body_size: REJECTED_BODY_KEEP as u64 + 10,
                reprocessed: None,
            })
            .await
            .unwrap();
    }
    let kept = store.rejections(100).await.unwrap();
    assert_eq!(kept.iter().map(|r| r.status).collect::<Vec<_>>(), [404, 403, 402], "newest three kept");
    assert_eq!(kept[0].raw_body.len(), REJECTED_BODY_KEEP);
    assert!(!kept[0].body_is_whole(), "the body was cut: {} of {} bytes", REJECTED_BODY_KEEP, kept[0].body_size);

    // Processed again: refused for a new reason, then accepted; the request stays kept.
    let id = kept[1].id;
    let at = Utc::now();
    let refused = ReprocessOutcome::Refused { status: 404, reason: "unknown_vendor".into(), message: "no".into() };
    store.reprocessed(id, at, refused).await.unwrap();
    let again = store.rejection(id).await.unwrap().unwrap();
    assert_eq!((again.status, again.reason.as_str(), again.message.as_str()), (404, "unknown_vendor", "no"));
    assert_eq!(again.reprocessed.map(|r| (r.at.timestamp_millis(), r.event)), Some((at.timestamp_millis(), None)));
    let event = EventId::new(at);
    store.reprocessed(id, at, ReprocessOutcome::Accepted(event)).await.unwrap();
    let accepted = store.rejection(id).await.unwrap().unwrap();
    assert_eq!(accepted.reprocessed.and_then(|r| r.event), Some(event));
    assert_eq!(accepted.reason, "unknown_vendor", "the last refusal's reason stays beside the event");
    assert!(store.rejection(crate::event::monotonic_ulid(Utc::now())).await.unwrap().is_none());
}

async fn deliveries_are_claimed_once_and_moved_on(store: &dyn Store) {
    let now = Utc::now();
    let new = with_deliveries(new_event("envybox", "key:d", now), &["tg", "mail"]);
    let (event, payload, fields) = (new.event.id, new.event.payload.clone(), new.event.fields.clone());
    store.append(new).await.unwrap();
    let claimed = store.claim_due(now, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // Each delivery gets the whole event, the one that takes the decoded row and the copy alike.
    for (_, claimed_event) in &claimed {
        assert_eq!((claimed_event.id, &claimed_event.payload, &claimed_event.fields), (event, &payload, &fields));
    }
    assert!(
        store.claim_due(now, 10, Duration::from_secs(60)).await.unwrap().is_empty(),
        "leased rows are not claimed twice"
    );
    assert_eq!(store.next_due().await.unwrap(), None, "held deliveries are not due");

    let attempt = |number, outcome: &str| AttemptRecord {
        number,
        started_at: now,
        duration: Duration::from_millis(12),
        outcome: outcome.into(),
        reason: (outcome != "delivered").then(|| "server_error".into()),
        detail: format!("attempt {number}"),
    };
    // Claim order is not part of the contract; pick them by output.
    let id_of = |output: &str| claimed.iter().find(|(d, _)| d.output == output).unwrap().0.id;
    let (tg, mail) = (id_of("tg"), id_of("mail"));
    store.finish_attempt(tg, attempt(1, "delivered"), Next::Delivered).await.unwrap();
    let retry_at = now + TimeDelta::seconds(30);
    store.finish_attempt(mail, attempt(1, "retry"), Next::RetryAt(retry_at)).await.unwrap();
    assert_eq!(store.next_due().await.unwrap().map(|t| t.timestamp_millis()), Some(retry_at.timestamp_millis()));
    assert!(store.claim_due(now + TimeDelta::seconds(29), 10, Duration::from_secs(60)).await.unwrap().is_empty());
    let again = store.claim_due(retry_at, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].0.id, again[0].0.attempts), (mail, 1));
    store.finish_attempt(mail, attempt(2, "dead"), Next::Dead).await.unwrap();

    let deliveries = store.deliveries(event).await.unwrap();
    let mut states: Vec<(String, DeliveryState, Option<String>)> =
        deliveries.iter().map(|d| (d.output.clone(), d.state, d.last_error.clone())).collect();
    states.sort_by(|a, b| b.0.cmp(&a.0));
    assert_eq!(
        states,
        [
            ("tg".to_owned(), DeliveryState::Delivered, None),
            ("mail".to_owned(), DeliveryState::Dead, Some("attempt 2".to_owned()))
        ]
    );
    let attempts = store.attempts(mail).await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(), ["retry", "dead"]);
    assert_eq!(attempts[0].duration, Duration::from_millis(12));
    assert_eq!(store.next_due().await.unwrap(), None);
}

async fn an_expired_lease_is_taken_over(store: &dyn Store) {
    let now = Utc::now();
    store.append(with_deliveries(new_event("envybox", "key:l", now), &["tg"])).await.unwrap();
    let first = store.claim_due(now, 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.len(), 1);
    // The worker that held it died: after the lease another claims it.
    assert!(store.claim_due(now + TimeDelta::seconds(4), 10, Duration::from_secs(5)).await.unwrap().is_empty());
    let taken = store.claim_due(now + TimeDelta::seconds(6), 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].0.id, first[0].0.id);
    assert_eq!((first[0].0.interrupted, taken[0].0.interrupted), (0, 1), "the dead worker's attempt may have sent it");
    let finished = AttemptRecord {
        number: 1,
        started_at: now,
        duration: Duration::from_millis(5),
        outcome: "retry".into(),
        reason: Some("network".into()),
        detail: "connection reset".into(),
    };
    store.finish_attempt(taken[0].0.id, finished, Next::RetryAt(now + TimeDelta::seconds(7))).await.unwrap();
    let again = store.claim_due(now + TimeDelta::seconds(8), 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(again[0].0.interrupted, 1, "a finished attempt released its lease: not counted");
}

async fn concurrent_claimers_never_share_a_delivery(store: Arc<dyn Store>) {
    let now = Utc::now();
    for i in 0..60 {
        store.append(with_deliveries(new_event("envybox", &format!("key:c{i}"), now), &["tg"])).await.unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = store.claim_due(now, 7, Duration::from_secs(60)).await.unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed.into_iter().map(|(d, _)| d.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!((total, all.len()), (60, 60), "every delivery claimed exactly once");
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

async fn operators_can_retry_replay_and_prune(store: &dyn Store) {
    let old = Utc::now() - TimeDelta::days(40);
    let new = with_deliveries(new_event("envybox", "key:o", old), &["tg", "mail"]);
    let event = new.event.id;
    store.append(new).await.unwrap();
    let claimed = store.claim_due(Utc::now(), 10, Duration::from_secs(60)).await.unwrap();
    let record = |outcome: &str| AttemptRecord {
        number: 1,
        started_at: Utc::now(),
        duration: Duration::ZERO,
        outcome: outcome.into(),
        reason: None,
        detail: outcome.into(),
    };
    let dead = claimed.iter().find(|(d, _)| d.output == "tg").unwrap().0.id;
    let done = claimed.iter().find(|(d, _)| d.output == "mail").unwrap().0.id;
    store.finish_attempt(dead, record("dead"), Next::Dead).await.unwrap();
    store.finish_attempt(done, record("delivered"), Next::Delivered).await.unwrap();

    let dead_ones = store
        .list_deliveries(&DeliveryQuery { state: Some(DeliveryState::Dead), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(dead_ones.iter().map(|d| d.id).collect::<Vec<_>>(), [dead]);
    assert_eq!(store.retry(Some(done), None).await.unwrap(), 0, "a delivered one is not retried");
    assert_eq!(store.retry(None, Some("mail")).await.unwrap(), 0, "no dead mail");
    assert_eq!(store.retry(None, Some("tg")).await.unwrap(), 1);
    let again = store.claim_due(Utc::now(), 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].0.id, again[0].0.state), (dead, DeliveryState::Pending));
    store.finish_attempt(dead, AttemptRecord { number: 2, ..record("delivered") }, Next::Delivered).await.unwrap();

    // Replay: the stored event gets new deliveries through today's routes.
    let replayed = NewDelivery {
        id: crate::event::monotonic_ulid(Utc::now()),
        route: "replay".into(),
        output: "log".into(),
        template: "generic".into(),
        expires_at: None,
    };
    store.add_deliveries(event, &["replay".into()], std::slice::from_ref(&replayed)).await.unwrap();
    assert_eq!(store.event(event).await.unwrap().unwrap().routes, ["replay"]);
    assert_eq!(store.deliveries(event).await.unwrap().len(), 3);

    // Retention: an old event with a pending delivery stays; once nothing is pending it goes.
    assert_eq!(store.prune(Utc::now() - TimeDelta::days(30)).await.unwrap(), 0);
    let pending = store.claim_due(Utc::now(), 10, Duration::from_secs(60)).await.unwrap();
    store.finish_attempt(pending[0].0.id, record("delivered"), Next::Delivered).await.unwrap();
    let recent = store.append(new_event("envybox", "key:recent", Utc::now())).await.unwrap();
    assert_eq!(store.prune(Utc::now() - TimeDelta::days(30)).await.unwrap(), 1);
    assert!(store.event(event).await.unwrap().is_none());
    assert!(store.attempts(dead).await.unwrap().is_empty(), "attempts go with their event");
    assert!(store.event(recent.id()).await.unwrap().is_some());
}

macro_rules! contract {
    ($($name:ident: $arg:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_dir, store) = super::sqlite().await;
                    super::$name(contract!(@arg $arg store)).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(store) = super::postgres().await else { return };
                    super::$name(contract!(@arg $arg store)).await;
                }
            )*
        }
    };
    (@arg shared $store:ident) => { $store.clone() };
    (@arg borrowed $store:ident) => { $store.as_ref() };
}

contract! {
    appended_events_read_back_whole: borrowed,
    a_payload_kept_as_its_body_reads_back: borrowed,
    a_sequence_reads_back_newest_first_within_its_window: borrowed,
    repeats_within_the_window_are_counted_not_stored: borrowed,
    a_widened_window_reaches_further_back: borrowed,
    a_repeat_of_a_pruned_event_is_stored: borrowed,
    an_event_known_to_be_new_is_stored_and_found_by_its_repeats: borrowed,
    concurrent_appends_are_all_committed: shared,
    concurrent_repeats_are_stored_once: shared,
    events_filter_and_page_newest_first: borrowed,
    rejections_are_kept_up_to_the_bound: borrowed,
    deliveries_are_claimed_once_and_moved_on: borrowed,
    an_expired_lease_is_taken_over: borrowed,
    concurrent_claimers_never_share_a_delivery: shared,
    operators_can_retry_replay_and_prune: borrowed,
    operator_views_filter_count_and_summarise: borrowed,
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
