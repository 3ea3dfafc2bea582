//! The event log: appends, repeats within the dedup window, sequences, refused requests.

use super::*;

pub(super) async fn appended_events_read_back_whole(store: &dyn Store) {
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

/// Every read gives such a payload back: one event, the operator's list, a claim.
pub(super) async fn a_payload_kept_as_its_body_reads_back(store: &dyn Store) {
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
pub(super) async fn a_sequence_reads_back_newest_first_within_its_window(store: &dyn Store) {
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

pub(super) async fn repeats_within_the_window_are_counted_not_stored(store: &dyn Store) {
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
pub(super) async fn a_widened_window_reaches_further_back(store: &dyn Store) {
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
pub(super) async fn an_event_known_to_be_new_is_stored_and_found_by_its_repeats(store: &dyn Store) {
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
pub(super) async fn a_repeat_of_a_pruned_event_is_stored(store: &dyn Store) {
    let now = Utc::now();
    let first = store.append(new_event("envybox", "key:pruned", now)).await.unwrap();
    assert_eq!(store.prune(now + TimeDelta::seconds(1)).await.unwrap(), 1);
    let again = store.append(new_event("envybox", "key:pruned", now + TimeDelta::seconds(2))).await.unwrap();
    assert!(matches!(again, Appended::Stored(id) if id != first.id()), "{again:?}");
}

pub(super) async fn concurrent_appends_are_all_committed(store: Arc<dyn Store>) {
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

pub(super) async fn concurrent_repeats_are_stored_once(store: Arc<dyn Store>) {
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

pub(super) async fn rejections_are_kept_up_to_the_bound(store: &dyn Store) {
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
    let kept = store.rejections(&RejectionQuery::latest(100)).await.unwrap();
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
    // Filtered by reason and vendor, as the Rejected page and `switchboard rejected` ask.
    let by = |vendor: Option<&str>, reason: Option<&str>| RejectionQuery {
        vendor: vendor.map(str::to_owned),
        reason: reason.map(str::to_owned),
        limit: 100,
    };
    let unknown = store.rejections(&by(None, Some("unknown_vendor"))).await.unwrap();
    assert_eq!(unknown.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    assert_eq!(store.rejections(&by(Some("jivo"), Some("invalid_json"))).await.unwrap().len(), 2);
    assert!(store.rejections(&by(Some("envybox"), None)).await.unwrap().is_empty());
    assert_eq!(again.reprocessed.map(|r| (r.at.timestamp_millis(), r.event)), Some((at.timestamp_millis(), None)));
    let event = EventId::new(at);
    store.reprocessed(id, at, ReprocessOutcome::Accepted(event)).await.unwrap();
    let accepted = store.rejection(id).await.unwrap().unwrap();
    assert_eq!(accepted.reprocessed.and_then(|r| r.event), Some(event));
    assert_eq!(accepted.reason, "unknown_vendor", "the last refusal's reason stays beside the event");
    assert!(store.rejection(crate::event::monotonic_ulid(Utc::now())).await.unwrap().is_none());
}
