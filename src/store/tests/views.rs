//! The operator's views: filters, paging, counts, output health, the queue.

use super::*;

pub(super) async fn events_filter_and_page_newest_first(store: &dyn Store) {
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
pub(super) async fn operator_views_filter_count_and_summarise(store: &dyn Store) {
    let now = Utc::now();
    let attempt = |outcome: &str, detail: &str| AttemptRecord {
        number: 1,
        started_at: now,
        duration: Duration::from_millis(5),
        outcome: outcome.into(),
        reason: None,
        detail: detail.into(),
        action: None,
        remote_id: None,
        sent: None,
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

/// An output's call for the operator stays on the Status page through later failures and
/// deliveries that repeat it, and goes when one delivers without it.
pub(super) async fn an_operator_action_is_shown_until_a_clean_delivery(store: &dyn Store) {
    let now = Utc::now();
    let attempt = |at: i64, outcome: &str, action: Option<&str>| AttemptRecord {
        number: 1,
        started_at: now + TimeDelta::seconds(at),
        duration: Duration::from_millis(5),
        outcome: outcome.into(),
        reason: None,
        detail: outcome.into(),
        action: action.map(str::to_owned),
        remote_id: None,
        sent: None,
    };
    let steps = [
        (attempt(0, "dead", Some("add the bot back")), Next::Dead),
        (attempt(1, "dead", None), Next::Dead),
        (attempt(2, "delivered", Some("set chat_id = -100")), Next::Delivered),
        (attempt(3, "delivered", None), Next::Delivered),
    ];
    let (mut shown, mut first) = (Vec::new(), None);
    for (i, (record, next)) in steps.into_iter().enumerate() {
        store.append(with_deliveries(new_event("jivo", &format!("a:{i}"), now), &["tg"])).await.unwrap();
        let claimed = store.claim_due(now + TimeDelta::seconds(10), 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        first.get_or_insert(claimed[0].0.id);
        store.finish_attempt(claimed[0].0.id, record, next).await.unwrap();
        let health = store.output_health().await.unwrap();
        shown.push(health.iter().find(|h| h.output == "tg").unwrap().action.clone());
    }
    let shown: Vec<_> = shown.iter().map(Option::as_deref).collect();
    assert_eq!(
        shown,
        [Some("add the bot back"), Some("add the bot back"), Some("set chat_id = -100"), None],
        "a plain failure keeps the call, a delivery that repeats one replaces it, a clean one clears it"
    );
    let attempts = store.attempts(first.unwrap()).await.unwrap();
    assert_eq!(attempts[0].action.as_deref(), Some("add the bot back"), "the attempt keeps its action");
}
