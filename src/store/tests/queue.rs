//! The delivery queue: claims under a lease, take-overs, retries, replays and pruning.

use super::*;

pub(super) async fn deliveries_are_claimed_once_and_moved_on(store: &dyn Store) {
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
        action: None,
        remote_id: None,
        sent: None,
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

pub(super) async fn an_expired_lease_is_taken_over(store: &dyn Store) {
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
        action: None,
        remote_id: None,
        sent: Some(r#"{"telegram":"❌ Пропущенный звонок"}"#.into()),
    };
    store.finish_attempt(taken[0].0.id, finished.clone(), Next::RetryAt(now + TimeDelta::seconds(7))).await.unwrap();
    let again = store.claim_due(now + TimeDelta::seconds(8), 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(again[0].0.interrupted, 1, "a finished attempt released its lease: not counted");
    // The message it sent is kept with it, as sent.
    assert_eq!(store.attempts(taken[0].0.id).await.unwrap()[0].sent, finished.sent);
}

pub(super) async fn concurrent_claimers_never_share_a_delivery(store: Arc<dyn Store>) {
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

pub(super) async fn operators_can_retry_replay_and_prune(store: &dyn Store) {
    let old = Utc::now() - TimeDelta::days(40);
    let new = with_deliveries(new_event("envybox", "key:o", old), &["tg", "mail"]);
    let event = new.event.id;
    store.append(new).await.unwrap();
    let claimed = store.claim_due(Utc::now(), 10, Duration::from_secs(60)).await.unwrap();
    let record = attempt_record;
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
        redraws: None,
        not_before: None,
        unless: None,
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

/// An output answering again: its deliveries that wait out a retry step are due now; those of
/// other outputs, those held by a worker and those never tried are left as they are.
pub(super) async fn waiting_deliveries_are_pulled_forward_for_their_output(store: &dyn Store) {
    let now = Utc::now();
    let new = with_deliveries(new_event("envybox", "key:pull", now), &["mail", "crm"]);
    store.append(new).await.unwrap();
    let claimed = store.claim_due(now, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let later = now + TimeDelta::hours(1);
    for (delivery, _) in &claimed {
        let record = AttemptRecord {
            number: 1,
            started_at: now,
            duration: Duration::ZERO,
            outcome: "retry".into(),
            reason: Some("server_error".into()),
            detail: "HTTP 503".into(),
            action: None,
            remote_id: None,
            sent: None,
        };
        store.finish_attempt(delivery.id, record, Next::RetryAt(later)).await.unwrap();
    }
    assert_eq!(store.pull_forward("mail", now).await.unwrap(), 1);
    assert_eq!(store.pull_forward("mail", now).await.unwrap(), 0, "already due");
    let due = store.claim_due(now, 10, Duration::from_secs(60)).await.unwrap();
    let outputs: Vec<&str> = due.iter().map(|(d, _)| d.output.as_str()).collect();
    assert_eq!(outputs, ["mail"]);
    assert_eq!(store.pull_forward("mail", now).await.unwrap(), 0, "held by a worker");
}

/// A call's card: the deliveries to one output of the events that share a run of a sequence,
/// with the message id each attempt left, read back from any connection.
pub(super) async fn a_run_of_a_sequence_reads_back_as_one_card(store: &dyn Store) {
    let now = Utc::now();
    let mut ids = Vec::new();
    let mut start = None;
    // A call (start, then end), another call of the same chat, and an event of no sequence.
    for (i, begins) in [(0, true), (1, false), (2, true), (3, false)] {
        // A millisecond apart: ids of one millisecond are ordered only while no other test
        // takes one in between (the generator is shared), and the card reads them by id.
        let at = now + TimeDelta::milliseconds(i);
        let mut new = with_deliveries(new_event("jivo", &format!("c:{i}"), at), &["tg", "mail"]);
        new.sequence_key = Some("jivo\u{1f}1".into());
        if begins || start.is_none() {
            start = Some(new.event.id);
        }
        new.sequence_start = start;
        ids.push(new.event.id);
        store.append(new).await.unwrap();
    }
    store.append(with_deliveries(new_event("jivo", "c:loose", now), &["tg"])).await.unwrap();
    let claimed = store.claim_due(now + TimeDelta::seconds(1), 20, Duration::from_secs(60)).await.unwrap();
    let tg_of = |event| claimed.iter().find(|(d, e)| e.id == event && d.output == "tg").unwrap().0.id;
    let record = |remote_id: Option<&str>| AttemptRecord {
        number: 1,
        started_at: now,
        duration: Duration::from_millis(3),
        outcome: "delivered".into(),
        reason: None,
        detail: "sent".into(),
        action: None,
        remote_id: remote_id.map(str::to_owned),
        sent: None,
    };
    store.finish_attempt(tg_of(ids[0]), record(Some("101")), Next::Delivered).await.unwrap();

    let events: Vec<_> = store.card(ids[1], "tg").await.unwrap().events.iter().map(|e| e.id).collect();
    assert_eq!(events, [ids[0], ids[1]], "the call so far, oldest first");
    let card = store.card(ids[1], "tg").await.unwrap().deliveries;
    assert_eq!(card.iter().map(|d| d.id).collect::<Vec<_>>(), [tg_of(ids[0]), tg_of(ids[1])], "this call's, in order");
    assert_eq!(card[0].remote_id.as_deref(), Some("101"));
    assert_eq!((card[1].state, card[1].remote_id.as_deref()), (DeliveryState::Pending, None));
    assert_eq!(store.card(ids[3], "tg").await.unwrap().deliveries.len(), 2, "the second call has a card of its own");
    let loose = claimed.iter().find(|(_, e)| !ids.contains(&e.id)).unwrap();
    let alone = store.card(loose.1.id, "tg").await.unwrap().deliveries;
    assert_eq!(alone.iter().map(|d| d.id).collect::<Vec<_>>(), [loose.0.id], "an event of no sequence is its own card");

    store.finish_attempt(tg_of(ids[1]), record(Some("102")), Next::Delivered).await.unwrap();
    assert_eq!(store.card(ids[0], "tg").await.unwrap().deliveries[1].remote_id.as_deref(), Some("102"));
    let attempts = store.attempts(tg_of(ids[1])).await.unwrap();
    assert_eq!(attempts[0].remote_id.as_deref(), Some("102"), "the attempt keeps the message id");
}

/// An escalation: due only later, carries its `unless`, and when cancelled counts as neither
/// failed nor pending.
pub(super) async fn an_escalation_waits_for_its_time_and_a_cancelled_one_is_settled(store: &dyn Store) {
    let now = Utc::now();
    let mut new = with_deliveries(new_event("jivo", "esc:1", now), &["tg", "tg"]);
    new.deliveries[1].not_before = Some(now + TimeDelta::seconds(600));
    new.deliveries[1].unless = Some(crate::event::handling::Status::Taken);
    let event = new.event.id;
    store.append(new).await.unwrap();
    let first = store.claim_due(now, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(first.len(), 1, "the reminder is not due yet");
    assert_eq!(first[0].0.unless, None);
    let record = |outcome: &str| AttemptRecord { started_at: now, ..attempt_record(outcome) };
    store.finish_attempt(first[0].0.id, record("delivered"), Next::Delivered).await.unwrap();
    let later = store.claim_due(now + TimeDelta::seconds(601), 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].0.unless, Some(crate::event::handling::Status::Taken));
    store.finish_attempt(later[0].0.id, record("cancelled"), Next::Cancelled).await.unwrap();
    let counts = store.delivery_counts(&[event]).await.unwrap();
    assert_eq!(counts[&event].cancelled, 1);
    assert_eq!(counts[&event].status(true), EventStatus::Delivered);
    let delivered = EventQuery { status: Some(EventStatus::Delivered), limit: 10, ..Default::default() };
    assert_eq!(store.events(&delivered).await.unwrap().len(), 1, "a cancelled reminder is not a failure");
}

pub(super) async fn a_dismissed_dead_letter_is_kept_with_who_and_why_until_retried(store: &dyn Store) {
    let new = with_deliveries(new_event("envybox", "key:dismiss", Utc::now()), &["tg", "mail", "crm"]);
    let event = new.event.id;
    store.append(new).await.unwrap();
    let claimed = store.claim_due(Utc::now(), 10, Duration::from_secs(60)).await.unwrap();
    let id_of = |output: &str| claimed.iter().find(|(d, _)| d.output == output).unwrap().0.id;
    let (tg, mail, crm) = (id_of("tg"), id_of("mail"), id_of("crm"));
    let record = attempt_record;
    store.finish_attempt(tg, record("dead"), Next::Dead).await.unwrap();
    store.finish_attempt(mail, record("dead"), Next::Dead).await.unwrap();
    store.finish_attempt(crm, record("delivered"), Next::Delivered).await.unwrap();
    assert_eq!(store.queue_stats(Utc::now()).await.unwrap().dead, 2);

    let olga = Dismissal { by: "Ольга".into(), at: Utc::now(), note: Some("the chat was deleted".into()) };
    assert_eq!(store.dismiss(Some(crm), None, &olga).await.unwrap(), 0, "a delivered one is not dismissed");
    assert_eq!(store.dismiss(Some(tg), None, &olga).await.unwrap(), 1);
    assert_eq!(store.dismiss(Some(tg), None, &olga).await.unwrap(), 0, "once");
    assert_eq!(store.queue_stats(Utc::now()).await.unwrap().dead, 1, "a dismissed one waits for nobody");
    let listed = store
        .list_deliveries(&DeliveryQuery { state: Some(DeliveryState::Dismissed), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [tg]);
    let dismissal = listed[0].dismissal.clone().expect("who dismissed it is kept");
    assert_eq!((dismissal.by.as_str(), dismissal.note.as_deref()), ("Ольга", Some("the chat was deleted")));
    assert!((dismissal.at - olga.at).num_milliseconds().abs() <= 1);
    let counts = store.delivery_counts(&[event]).await.unwrap()[&event];
    assert_eq!((counts.dead, counts.dismissed, counts.status(true)), (1, 1, EventStatus::Failed));

    // Every one of an output at once, with no note; the other output's stays.
    let all = Dismissal { by: "ops".into(), at: Utc::now(), note: None };
    assert_eq!(store.dismiss(None, Some("crm"), &all).await.unwrap(), 0);
    assert_eq!(store.dismiss(None, Some("mail"), &all).await.unwrap(), 1);
    assert_eq!(store.queue_stats(Utc::now()).await.unwrap().dead, 0);
    // A bulk retry is for dead letters; a dismissed one is retried by its id, and forgets it was.
    assert_eq!(store.retry(None, None).await.unwrap(), 0);
    assert_eq!(store.retry(Some(tg), None).await.unwrap(), 1);
    let retried = store.deliveries(event).await.unwrap().into_iter().find(|d| d.id == tg).unwrap();
    assert_eq!((retried.state, retried.dismissal), (DeliveryState::Pending, None));
}
