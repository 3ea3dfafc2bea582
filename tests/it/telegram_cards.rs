//! One live Telegram card per call: the first event of a call sends a message, later ones edit
//! it in place, across a restart; a card that can no longer be edited is continued by a reply.

use serde_json::Value;

use switchboard::store::DeliveryState;

use crate::call_sequences::call_event;
use crate::delivery::eventually;
use crate::support::fake_telegram::{FakeTelegram, Reply, Sent};
use crate::support::{Daemon, repo};

const TOKEN: &str = "123456:card-test-token";

fn config(fake: &FakeTelegram, card: &str) -> String {
    format!(
        r#"
[delivery]
retry_schedule_secs = [1]

[outputs.desk]
type = "telegram"
token = "{TOKEN}"
chat_id = -1001234567890
api_url = "{}"
min_interval_ms = 10

[[route]]
name = "calls"
kind = ["call.started", "call.answered", "call.missed", "call.finished", "callback.requested"]
to = ["desk"]
template = "call"
{card}
"#,
        fake.api_url()
    )
}

async fn post_jivo(daemon: &Daemon, body: &Value) -> switchboard::event::EventId {
    let response = daemon.client.post(daemon.url("/hooks/jivo")).json(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    daemon.stored(&response).await.event.id
}

async fn delivered(daemon: &Daemon, event: switchboard::event::EventId) -> String {
    let store = daemon.store().await;
    eventually("delivered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Delivered })
        .await;
    let delivery = store.deliveries(event).await.unwrap()[0].id;
    store.attempts(delivery).await.unwrap().last().unwrap().detail.clone()
}

fn text(sent: &Sent) -> &str {
    sent.body["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_jivo_call_is_one_card_edited_as_it_goes_even_across_a_restart() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let daemon = Daemon::start(&config(&fake, "")).await;
    let start = post_jivo(&daemon, &call_event(301, "start", 1)).await;
    let first = fake.next().await;
    assert_eq!((first.method.as_str(), first.body["chat_id"].as_i64()), ("sendMessage", Some(-1001234567890)));
    assert!(text(&first).contains("Входящий звонок"), "{}", text(&first));
    assert!(delivered(&daemon, start).await.starts_with("message 101 sent"));

    // The message id is in the database: a restarted daemon edits the same card.
    let daemon = daemon.restart().await;
    let end = post_jivo(&daemon, &call_event(301, "end", 1)).await;
    let edit = fake.next().await;
    assert_eq!(edit.method, "editMessageText");
    assert_eq!((edit.body["message_id"].as_i64(), edit.body["chat_id"].as_i64()), (Some(101), Some(-1001234567890)));
    assert!(text(&edit).contains("Пропущенный звонок"), "{}", text(&edit));
    assert_eq!(delivered(&daemon, end).await, "message 101 edited");

    // The visitor calls again in the same chat (from another phone, or Jivo would take the
    // same body within seconds for a resend): a new call, a new card.
    post_jivo(&daemon, &call_event(301, "start", 2)).await;
    let again = fake.next().await;
    assert_eq!(again.method, "sendMessage", "{again:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn an_envybox_call_back_request_that_is_then_missed_is_one_card() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let daemon = Daemon::start(&config(&fake, "")).await;
    let form = |name: &str| {
        let text = std::fs::read_to_string(repo().join("tests/fixtures/envybox").join(name)).unwrap();
        regex_lite_replace(&text, "call_id=", "call_id=7700001&")
    };
    let ordered = daemon.post_form("envybox", &form("callback_ordered_1.form")).await;
    assert_eq!(ordered.status(), 200);
    let first = fake.next().await;
    assert!(text(&first).contains("Заказ обратного звонка"), "{}", text(&first));
    // Posted at once: the miss waits for the request's card rather than make a second one.
    let missed = daemon.post_form("envybox", &form("call_info_missed_client_2.form")).await;
    let missed = daemon.stored(&missed).await;
    assert_eq!(missed.event.kind.as_str(), "call.missed");
    let edit = fake.next().await;
    assert_eq!((edit.method.as_str(), edit.body["message_id"].as_i64()), ("editMessageText", Some(101)));
    assert!(text(&edit).contains("Пропущенный звонок") && text(&edit).contains("Ольга"), "{}", text(&edit));
    daemon.stop().await;
}

#[tokio::test]
async fn a_jivo_chat_is_one_card_from_its_acceptance_to_its_end() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let routes = r#"
[[route]]
name = "chats"
kind = "chat.*"
to = ["desk"]
template = "chat"
"#;
    let config =
        config(&fake, "").replace("[[route]]\nname = \"calls\"", &format!("{routes}\n[[route]]\nname = \"calls\""));
    let daemon = Daemon::start(&config).await;
    let fixture = |name: &str, chat: u64| {
        let text = std::fs::read_to_string(repo().join("tests/fixtures/jivo").join(name)).unwrap();
        let mut body: Value = serde_json::from_str(&text).unwrap();
        body["chat_id"] = chat.into();
        body
    };
    post_jivo(&daemon, &fixture("chat_accepted.json", 8801)).await;
    let first = fake.next().await;
    assert_eq!(first.method, "sendMessage");
    assert!(text(&first).contains("Идёт чат"), "{}", text(&first));
    // A call in the same chat is a card of its own, not an edit of the chat's.
    post_jivo(&daemon, &call_event(8801, "start", 1)).await;
    let call = fake.next().await;
    assert_eq!(call.method, "sendMessage", "{call:?}");
    let updated = post_jivo(&daemon, &fixture("chat_updated.json", 8801)).await;
    let edit = fake.next().await;
    assert_eq!((edit.method.as_str(), edit.body["message_id"].as_i64()), ("editMessageText", Some(101)));
    assert!(text(&edit).contains("посетитель оставил данные"), "{}", text(&edit));
    assert_eq!(delivered(&daemon, updated).await, "message 101 edited");
    post_jivo(&daemon, &fixture("chat_finished.json", 8801)).await;
    let finished = fake.next().await;
    assert_eq!((finished.method.as_str(), finished.body["message_id"].as_i64()), ("editMessageText", Some(101)));
    assert!(
        text(&finished).contains("Чат завершён") && text(&finished).contains("Сообщений: 2"),
        "{}",
        text(&finished)
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_card_that_cannot_be_edited_is_continued_by_a_reply() {
    let mut fake = FakeTelegram::start(vec![Reply::Ok, Reply::EditNotFound]).await;
    let daemon = Daemon::start(&config(&fake, "")).await;
    // Both at once: the end waits for the start's message, then finds it deleted.
    post_jivo(&daemon, &call_event(302, "start", 2)).await;
    let end = post_jivo(&daemon, &call_event(302, "end", 2)).await;
    let sent: Vec<Sent> = vec![fake.next().await, fake.next().await, fake.next().await];
    let methods: Vec<&str> = sent.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["sendMessage", "editMessageText", "sendMessage"]);
    assert_eq!(sent[2].body["reply_parameters"]["message_id"].as_i64(), Some(101), "{:?}", sent[2].body);
    assert_eq!(sent[2].body["reply_parameters"]["allow_sending_without_reply"], true);
    let detail = delivered(&daemon, end).await;
    assert!(detail.starts_with("message 102 sent in reply to message 101: it could not be edited"), "{detail}");

    // The reply is the card now: the next event of the call edits it.
    post_jivo(&daemon, &call_event(302, "agent_connected", 2)).await;
    let next = fake.next().await;
    assert_eq!((next.method.as_str(), next.body["message_id"].as_i64()), ("editMessageText", Some(102)));
    daemon.stop().await;
}

#[tokio::test]
async fn a_route_that_wants_a_message_per_event_or_replies_gets_them() {
    for (card, expected) in [("card = \"new\"", None), ("card = \"reply\"", Some(101))] {
        let mut fake = FakeTelegram::start(Vec::new()).await;
        let daemon = Daemon::start(&config(&fake, card)).await;
        post_jivo(&daemon, &call_event(303, "start", 3)).await;
        fake.next().await;
        post_jivo(&daemon, &call_event(303, "end", 3)).await;
        let second = fake.next().await;
        assert_eq!(second.method, "sendMessage", "{card}");
        assert_eq!(second.body["reply_parameters"]["message_id"].as_i64(), expected, "{card}");
        daemon.stop().await;
    }
}

#[tokio::test]
async fn a_card_that_goes_on_in_replies_keeps_one_set_of_live_buttons() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let daemon = Daemon::start(&config(&fake, "card = \"reply\"\nbuttons = [\"take\", \"done\"]")).await;
    // Rows: the page link, and the actions.
    let keys = |sent: &Sent| sent.body["reply_markup"]["inline_keyboard"].as_array().map_or(0, Vec::len);
    post_jivo(&daemon, &call_event(306, "start", 6)).await;
    let first = fake.next().await;
    assert_eq!((first.method.as_str(), keys(&first)), ("sendMessage", 2), "{:?}", first.body);
    for (status, replied, had_them) in [("agent_connected", 101, 101), ("end", 101, 102)] {
        post_jivo(&daemon, &call_event(306, status, 6)).await;
        let reply = fake.next().await;
        assert_eq!((reply.method.as_str(), keys(&reply)), ("sendMessage", 2), "{:?}", reply.body);
        assert_eq!(reply.body["reply_parameters"]["message_id"].as_i64(), Some(replied));
        // The message that had the buttons loses them: pressing a stale «Беру» is not possible.
        let retired = fake.next().await;
        assert_eq!(retired.method, "editMessageReplyMarkup", "{retired:?}");
        assert_eq!(retired.body["message_id"].as_i64(), Some(had_them));
        assert_eq!(retired.body["chat_id"].as_i64(), Some(-1001234567890));
        assert_eq!(keys(&retired), 0, "{:?}", retired.body);
    }
    daemon.stop().await;
}

/// `text` with the value after `key` (up to the next `&`) replaced by `with`.
fn regex_lite_replace(text: &str, key: &str, with: &str) -> String {
    let at = text.find(key).expect("the key is in the form");
    let end = text[at..].find('&').map_or(text.len(), |e| at + e + 1);
    format!("{}{with}{}", &text[..at], &text[end..])
}

#[tokio::test]
async fn a_route_sends_to_its_topic_and_without_a_sound_in_its_quiet_hours() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let quiet = "topic = 7\nsilent = { timezone = \"Europe/Moscow\", hours = [\"00:00-24:00\"] }";
    let daemon = Daemon::start(&config(&fake, quiet)).await;
    post_jivo(&daemon, &call_event(304, "start", 4)).await;
    let sent = fake.next().await;
    assert_eq!(sent.body["message_thread_id"].as_i64(), Some(7), "{:?}", sent.body);
    assert_eq!(sent.body["disable_notification"], true);
    daemon.stop().await;

    let daemon = Daemon::start(&config(&fake, "")).await;
    post_jivo(&daemon, &call_event(305, "start", 5)).await;
    let sent = fake.next().await;
    assert_eq!(sent.body["message_thread_id"], Value::Null, "no topic unless a route or the output names one");
    assert_ne!(sent.body["disable_notification"], true, "outside quiet hours, a sound");
    daemon.stop().await;
}
