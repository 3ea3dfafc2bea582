//! A Jivo call classified by what came before it: the `end` of a call that no agent answered
//! is a missed call, routed as one, though Jivo sends it as any other `end`.

use serde_json::{Value, json};

use switchboard::event::EventId;
use switchboard::store::postgres::PostgresStore;
use switchboard::store::{Lifecycle, StoredEvent, Views};

use crate::delivery::{CONFIG, eventually};
use crate::support::http_sink::HttpSink;
use crate::support::{Daemon, PgSchema, copy_of_plugins, repo};

/// Jivo's own call_event example, for chat `chat`, with this status, from `+1408498785<caller>`.
/// (Jivo's call events carry no time or call id: two calls from one number in one chat send the
/// same bodies; `a_visitor_who_calls_again_gets_each_call_alerted_as_it_went` tells them apart.)
pub fn call_event(chat: u64, status: &str, caller: u8) -> Value {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/jivo/call_event.json")).unwrap();
    let mut body: Value = serde_json::from_str(&text).unwrap();
    body["chat_id"] = json!(chat);
    body["call"] = json!({"type": "incoming", "phone": format!("+1408498785{caller}"), "status": status});
    body
}

/// Posts the call's events in order; returns the last one's stored kind and routes.
async fn post_call(daemon: &Daemon, chat: u64, caller: u8, statuses: &[&str]) -> (String, Vec<String>) {
    let stored = post_events(daemon, chat, caller, statuses).await;
    let last = stored.last().expect("at least one event");
    (last.event.kind.to_string(), last.routes.clone())
}

/// Posts the call's events in order; returns them as stored.
async fn post_events(daemon: &Daemon, chat: u64, caller: u8, statuses: &[&str]) -> Vec<StoredEvent> {
    let mut stored = Vec::new();
    for status in statuses {
        let body = call_event(chat, status, caller);
        let response = daemon.client.post(daemon.url("/hooks/jivo")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{status}");
        stored.push(daemon.stored(&response).await);
    }
    stored
}

#[tokio::test]
async fn an_end_with_no_agent_since_its_start_is_a_missed_call() {
    let daemon = Daemon::start(CONFIG).await;
    let missed = post_call(&daemon, 101, 1, &["start", "end"]).await;
    assert_eq!(missed, ("call.missed".to_owned(), vec!["missed calls".to_owned()]));
    let answered = post_call(&daemon, 102, 2, &["start", "agent_connected", "end"]).await;
    assert_eq!(answered, ("call.finished".to_owned(), Vec::new()));
    // A second call in the same chat starts afresh: the first one's answer does not count.
    let again = post_call(&daemon, 102, 3, &["start", "end"]).await;
    assert_eq!(again.0, "call.missed");
    // Chat 101's start is another chat's: an end whose own start was never received is left as
    // Jivo described it, not guessed at.
    let unknown = post_call(&daemon, 103, 4, &["end"]).await;
    assert_eq!(unknown, ("call.finished".to_owned(), Vec::new()));

    let log = daemon.dir().join("alerts.log");
    eventually("both missed calls are delivered", || async {
        std::fs::read_to_string(&log).is_ok_and(|text| text.matches("Пропущенный звонок").count() >= 2)
    })
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn events_of_one_call_sent_at_once_are_each_classified_after_the_other() {
    let daemon = Daemon::start(CONFIG).await;
    let post = |chat: u64, status: &'static str| {
        daemon.client.post(daemon.url("/hooks/jivo")).json(&call_event(chat, status, 5)).send()
    };
    // The agent answers and the call ends in the same instant. Whichever is stored first, the
    // other must read it: an `end` stored after the answer is a finished call, one stored
    // before it a missed one. A sequence's events are stored in the order of their ids.
    for chat in 201..221 {
        post_call(&daemon, chat, 5, &["start"]).await;
        let (answer, end) = tokio::join!(post(chat, "agent_connected"), post(chat, "end"));
        let (answer, end) = (daemon.stored(&answer.unwrap()).await, daemon.stored(&end.unwrap()).await);
        let expected = if answer.event.id < end.event.id { "call.finished" } else { "call.missed" };
        assert_eq!(end.event.kind.as_str(), expected, "chat {chat}: answer {} end {}", answer.event.id, end.event.id);
    }
    daemon.stop().await;
}

/// Posts one call_event; returns its stored event and whether it was answered as a repeat.
async fn post_status(daemon: &Daemon, chat: u64, status: &str) -> (StoredEvent, bool) {
    let response =
        daemon.client.post(daemon.url("/hooks/jivo")).json(&call_event(chat, status, 9)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{status}");
    let duplicate = response.headers().contains_key(switchboard::ingest::DUPLICATE_HEADER);
    (daemon.stored(&response).await, duplicate)
}

/// The same visitor calls twice in one chat, well within the dedup window: Jivo sends the same
/// bodies both times. Each call is its own event and gets the alert it should; Jivo resending
/// an event is still stored once. The plugin's resend allowance is cut to a second for the test.
#[tokio::test]
async fn a_visitor_who_calls_again_gets_each_call_alerted_as_it_went() {
    let plugins = copy_of_plugins(|text| text.replace("resends_within_secs = 10", "resends_within_secs = 1"));
    // Missed calls to the sales team's CRM, a real HTTP receiver.
    let mut crm = HttpSink::start(vec![]).await;
    let config = format!(
        "[outputs.crm]\ntype = \"http\"\nurl = \"{}\"\n[[route]]\nname = \"missed calls\"\nkind = \"call.missed\"\n\
         to = [\"crm\"]\ntemplate = \"missed_call\"\n",
        crm.url("/missed")
    );
    let daemon = Daemon::start_with_plugins(plugins.path(), &config).await;
    let call = |chat: u64, statuses: &'static [&'static str]| {
        let daemon = &daemon;
        async move {
            let mut last = None;
            for status in statuses {
                let (stored, duplicate) = post_status(daemon, chat, status).await;
                assert!(!duplicate, "chat {chat}: a {status} of a new call was taken for a resend");
                last = Some(stored);
            }
            last.unwrap().event.kind.to_string()
        }
    };
    // The first calls; then, past the resend allowance, each visitor calls again.
    assert_eq!(call(501, &["start", "end"]).await, "call.missed");
    assert_eq!(call(502, &["start", "agent_connected", "end"]).await, "call.finished");
    assert_eq!(call(503, &["start", "end"]).await, "call.missed");
    post_status(&daemon, 504, "start").await;
    let (first_end, resent) = (post_status(&daemon, 504, "end").await, post_status(&daemon, 504, "end").await);
    assert!(!first_end.1 && resent.1, "an end Jivo sends twice within seconds is stored once");
    assert_eq!(resent.0.event.id, first_end.0.event.id);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(call(501, &["start", "end"]).await, "call.missed", "missed, then missed again");
    assert_eq!(call(502, &["start", "end"]).await, "call.missed", "answered, then missed");
    assert_eq!(call(503, &["start", "agent_connected", "end"]).await, "call.finished", "missed, then answered");
    // A late resend of an end that nothing has followed is still Jivo repeating itself.
    let (late, duplicate) = post_status(&daemon, 504, "end").await;
    assert!(duplicate && late.event.id == first_end.0.event.id, "a late resend of the last end is a repeat");

    // Exactly one alert per missed call: 501 twice, 502 once, 503 once, 504 once.
    let mut alerts = Vec::new();
    for _ in 0..5 {
        let body: Value = serde_json::from_slice(&crm.next().await.body).unwrap();
        assert_eq!(body["event"], "call.missed", "{body}");
        alerts.push(body["id"].as_str().unwrap().to_owned());
    }
    alerts.sort();
    alerts.dedup();
    assert_eq!(alerts.len(), 5, "five missed calls, five alerts, each its own event");
    let store = daemon.store().await;
    let query = switchboard::store::DeliveryQuery { limit: 100, ..Default::default() };
    assert_eq!(store.list_deliveries(&query).await.unwrap().len(), 5, "and nothing more");
    daemon.stop().await;
}

#[tokio::test]
async fn the_event_page_shows_the_call_and_what_its_earlier_events_showed() {
    let daemon = Daemon::start(CONFIG).await;
    let page = |id: String| {
        let url = daemon.admin_url(&format!("/events/{id}"));
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let call = post_events(&daemon, 301, 6, &["start", "client_connected", "end"]).await;
    let end = page(call[2].event.id.to_string()).await;
    assert!(end.contains("Its sequence") && end.contains("jivo · 2853 · 301"), "{end}");
    assert!(end.contains("agent_answered: no"), "{end}");
    for stored in &call {
        assert!(end.contains(&format!("/events/{}", stored.event.id)), "{} is listed", stored.event.event);
    }
    assert_eq!(end.matches("(this one)").count(), 1);
    assert!(page(call[0].event.id.to_string()).await.contains("This event begins the sequence."));

    let lone = post_events(&daemon, 302, 6, &["end"]).await;
    assert!(page(lone[0].event.id.to_string()).await.contains("What the earlier ones showed is unknown"));
    let offline = daemon
        .client
        .post(daemon.url("/hooks/jivo"))
        .json(&json!({"event_name": "offline_message", "chat_id": 301, "widget_id": "2853", "message": "hi"}))
        .send()
        .await
        .unwrap();
    let offline = daemon.stored(&offline).await;
    assert!(!page(offline.event.id.to_string()).await.contains("Its sequence"));
    daemon.stop().await;
}

/// Two instances on one PostgreSQL database, each taking one of a call's events at the same
/// instant: the store's lock orders them as the process's own turns do within one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_sharing_postgres_take_a_calls_events_in_turn() {
    let Some(schema) = PgSchema::fresh("sb_calls", "the two-instance call test").await else { return };
    let storage = schema.url();
    let config = format!("[storage]\nurl = \"{storage}\"\n");
    let (first, second) = (Daemon::start(&config).await, Daemon::start(&config).await);
    let store = PostgresStore::open(storage.parse().unwrap(), 100).await.unwrap();
    let post = |daemon: &Daemon, chat: u64, status: &'static str| {
        daemon.client.post(daemon.url("/hooks/jivo")).json(&call_event(chat, status, 7)).send()
    };
    let stored = |response: reqwest::Response| {
        let store = &store;
        async move {
            assert_eq!(response.status(), 200);
            let id: EventId =
                response.headers()[switchboard::ingest::EVENT_ID_HEADER].to_str().unwrap().parse().unwrap();
            store.event(id).await.unwrap().unwrap().event
        }
    };
    for chat in 401..421 {
        stored(post(&first, chat, "start").await.unwrap()).await;
        let (answer, end) = tokio::join!(post(&first, chat, "agent_connected"), post(&second, chat, "end"));
        let (answer, end) = (stored(answer.unwrap()).await, stored(end.unwrap()).await);
        // Both instances live in this test's process, so their ids come from one clock and
        // counter, in the order the events took the lock.
        let expected = if answer.id < end.id { "call.finished" } else { "call.missed" };
        assert_eq!(end.kind.as_str(), expected, "chat {chat}: answer {} end {}", answer.id, end.id);
    }
    first.stop().await;
    second.stop().await;
    store.close().await;
    schema.drop().await;
}
