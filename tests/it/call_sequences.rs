//! A Jivo call classified by what came before it: the `end` of a call that no agent answered
//! is a missed call, routed as one, though Jivo sends it as any other `end`.

use serde_json::{Value, json};

use crate::delivery::eventually;
use crate::support::{Daemon, repo};

const CONFIG: &str = r#"
[outputs.alerts]
type = "log"
file = "alerts.log"

[[route]]
name = "missed calls"
kind = "call.missed"
to = ["alerts"]
template = "missed_call"
"#;

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
    let mut last = None;
    for status in statuses {
        let body = call_event(chat, status, caller);
        let response = daemon.client.post(daemon.url("/hooks/jivo")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{status}");
        last = Some(daemon.stored(&response).await);
    }
    let stored = last.expect("at least one event");
    (stored.event.kind.to_string(), stored.routes)
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
