//! A Jivo call classified by what came before it: the `end` of a call that no agent answered
//! is a missed call, routed as one, though Jivo sends it as any other `end`.

use serde_json::{Value, json};

use switchboard::event::EventId;
use switchboard::store::postgres::PostgresStore;
use switchboard::store::{Store, StoredEvent};

use crate::delivery::{CONFIG, eventually};
use crate::support::{Daemon, PgSchema, repo};

/// Jivo's own call_event example, for chat `chat`, with this status, from `+1408498785<caller>`.
/// (Jivo's call events carry no time or call id: two calls from one number in one chat within
/// the dedup window would be taken for Jivo repeating itself.)
fn call_event(chat: u64, status: &str, caller: u8) -> Value {
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
