//! The desk in Telegram: a card's action buttons, pressed by the team, recorded on the call,
//! shown on the card and answered; presses that cannot count are answered, never crash.

use serde_json::Value;

use switchboard::event::handling::Status;

use crate::call_sequences::call_event;
use crate::support::Daemon;
use crate::support::fake_telegram::{FakeTelegram, Sent, User};

const TOKEN: &str = "123456:desk-test-token";
const CHAT: i64 = -1001234567890;
const OLGA: User = User { id: 501, first_name: "Ольга" };
const IVAN: User = User { id: 502, first_name: "Иван" };

fn config(fake: &FakeTelegram) -> String {
    format!(
        r#"
[outputs.desk]
type = "telegram"
token = "{TOKEN}"
chat_id = {CHAT}
api_url = "{}"
min_interval_ms = 10

[[route]]
name = "calls"
kind = ["call.started", "call.answered", "call.missed", "call.finished", "callback.requested"]
to = ["desk"]
template = "call"
buttons = ["take", "done", "no_answer"]
"#,
        fake.api_url()
    )
}

fn text(sent: &Sent) -> &str {
    sent.body["text"].as_str().unwrap_or_default()
}

/// The labels and data of the card's action buttons (the keyboard's last row).
fn actions(sent: &Sent) -> Vec<(String, String)> {
    let rows = sent.body["reply_markup"]["inline_keyboard"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter(|button| button.get("callback_data").is_some())
        .map(|b| (b["text"].as_str().unwrap().to_owned(), b["callback_data"].as_str().unwrap().to_owned()))
        .collect()
}

fn data_of(sent: &Sent, label: &str) -> String {
    actions(sent).into_iter().find(|(l, _)| l.contains(label)).unwrap_or_else(|| panic!("no {label}: {sent:?}")).1
}

/// The next call that is not a press's answer, and the answers before it.
async fn answered(fake: &mut FakeTelegram) -> String {
    let sent = fake.next().await;
    assert_eq!(sent.method, "answerCallbackQuery", "{sent:?}");
    sent.body["text"].as_str().unwrap_or_default().to_owned()
}

async fn post(daemon: &Daemon, body: &Value) {
    let response = daemon.client.post(daemon.url("/hooks/jivo")).json(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_take_is_recorded_and_shown_a_second_is_told_who_has_it_and_done_closes_the_card() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let daemon = Daemon::start(&config(&fake)).await;
    post(&daemon, &call_event(401, "start", 1)).await;
    post(&daemon, &call_event(401, "end", 1)).await;
    let card = fake.next().await;
    assert_eq!(card.method, "sendMessage");
    let labels: Vec<String> = actions(&card).into_iter().map(|(label, _)| label).collect();
    assert_eq!(labels, ["🙋 Беру", "✅ Перезвонил", "📵 Не дозвонился"]);
    let missed = fake.next().await;
    assert_eq!((missed.method.as_str(), missed.body["message_id"].as_i64()), ("editMessageText", Some(101)));
    assert!(text(&missed).contains("Пропущенный звонок"));

    // Olga takes it: recorded, answered, and the card shows her.
    fake.press(CHAT, 101, OLGA, &data_of(&missed, "Беру"));
    assert_eq!(answered(&mut fake).await, "Звонок ваш");
    let redrawn = fake.next().await;
    assert_eq!((redrawn.method.as_str(), redrawn.body["message_id"].as_i64()), ("editMessageText", Some(101)));
    assert!(text(&redrawn).contains("Взял(а): Ольга"), "{}", text(&redrawn));
    assert!(text(&redrawn).contains("Пропущенный звонок"), "the card keeps the call: {}", text(&redrawn));
    assert_eq!(actions(&redrawn).len(), 3, "still open: the buttons stay");

    // Ivan is too late.
    fake.press(CHAT, 101, IVAN, &data_of(&redrawn, "Беру"));
    assert_eq!(answered(&mut fake).await, "Уже взял(а): Ольга");

    // Olga calls back: done, and the card has no buttons left.
    fake.press(CHAT, 101, OLGA, &data_of(&redrawn, "Перезвонил"));
    assert_eq!(answered(&mut fake).await, "Отмечено: перезвонили");
    let closed = fake.next().await;
    assert_eq!(closed.method, "editMessageText", "{closed:?}");
    assert!(text(&closed).contains("Перезвонил(а): Ольга"), "{}", text(&closed));
    assert!(actions(&closed).is_empty(), "a done card offers nothing: {:?}", closed.body["reply_markup"]);

    let store = daemon.store().await;
    let query = switchboard::store::EventQuery { limit: 10, ..Default::default() };
    let events = store.events(&query).await.unwrap();
    let start = events.iter().min_by_key(|e| e.event.id).unwrap().event.id;
    let handling = store.handling(start).await.unwrap().expect("the call's handling");
    assert_eq!(handling.status, Status::Done);
    assert_eq!(handling.taken_by.map(|p| (p.id, p.name)), Some((OLGA.id, "Ольга".to_owned())));
    let page = daemon.client.get(daemon.admin_url(&format!("/events/{start}"))).send().await.unwrap();
    let page = page.text().await.unwrap();
    let shown = page.split("id=\"handling\"").nth(1).expect("the event page shows the handling");
    assert!(shown.contains("done") && shown.contains("Ольга"), "{shown}");
    let listed = daemon.client.get(daemon.admin_url("/?handling=done")).send().await.unwrap().text().await.unwrap();
    assert_eq!(listed.matches("class=\"event-row\"").count(), 2, "the call's two events, filtered by their card");
    let none = daemon.client.get(daemon.admin_url("/?handling=taken")).send().await.unwrap().text().await.unwrap();
    assert_eq!(none.matches("class=\"event-row\"").count(), 0);

    let metrics = daemon.client.get(daemon.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    // The recorder is the test process's: other tests' presses count too.
    let sample = |series: &str| -> f64 {
        metrics.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok()).unwrap_or_default()
    };
    for series in [
        r#"switchboard_desk_presses_total{action="take",outcome="applied"}"#,
        r#"switchboard_desk_presses_total{action="take",outcome="refused"}"#,
        r#"switchboard_desk_presses_total{action="done",outcome="applied"}"#,
        "switchboard_desk_time_to_done_seconds_count",
    ] {
        assert!(sample(series) >= 1.0, "{series} in\n{metrics}");
    }
    daemon.stop().await;
}

#[tokio::test]
async fn presses_that_cannot_count_are_answered_clearly() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let daemon = Daemon::start(&config(&fake)).await;
    post(&daemon, &call_event(402, "start", 2)).await;
    let card = fake.next().await;
    let take = data_of(&card, "Беру");

    // A button of no event Switchboard keeps, one that is not Switchboard's, and the card's own
    // button pressed in another chat (a forwarded copy).
    let gone = format!("sb1:take:{}", switchboard::event::EventId::new(chrono::Utc::now()));
    fake.press(CHAT, 101, OLGA, &gone);
    assert_eq!(answered(&mut fake).await, "Карточка больше не ведётся: её событие удалено");
    fake.press(CHAT, 101, OLGA, "vote:yes");
    assert_eq!(answered(&mut fake).await, "Эта кнопка устарела: у карточки её больше нет");
    fake.press(-100999, 101, OLGA, &take);
    assert_eq!(answered(&mut fake).await, "Эта карточка не из чата, который ведёт Switchboard");
    // The card itself still works.
    fake.press(CHAT, 101, IVAN, &take);
    assert_eq!(answered(&mut fake).await, "Звонок ваш");
    let redrawn = fake.next().await;
    assert_eq!(redrawn.method, "editMessageText");
    assert!(text(&redrawn).contains("Взял(а): Иван"), "{}", text(&redrawn));
    daemon.stop().await;
}

fn escalating(fake: &FakeTelegram) -> String {
    config(fake).replace(
        r#"buttons = ["take", "done", "no_answer"]"#,
        r#"buttons = ["take", "done", "no_answer"]
escalate = [{ after = "2s", unless = "taken" }]"#,
    )
}

#[tokio::test]
async fn a_call_nobody_takes_is_escalated_as_a_reply_to_its_card() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let daemon = Daemon::start(&escalating(&fake)).await;
    post(&daemon, &call_event(411, "start", 1)).await;
    let card = fake.next().await;
    assert_eq!(card.method, "sendMessage");
    let reminder = fake.next().await;
    let waited = reminder.at.duration_since(card.at);
    assert!(waited.as_millis() >= 1900, "sent {waited:?} after the card, not 2 s");
    assert_eq!(reminder.method, "sendMessage", "a new message, so the chat hears it");
    assert_eq!(reminder.body["reply_parameters"]["message_id"].as_i64(), Some(101), "replying to the card");
    assert!(text(&reminder).contains("Напоминание"), "{}", text(&reminder));
    daemon.stop().await;
}

#[tokio::test]
async fn a_taken_call_is_not_escalated_even_across_a_restart() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let daemon = Daemon::start(&escalating(&fake)).await;
    post(&daemon, &call_event(412, "start", 2)).await;
    let card = fake.next().await;
    fake.press(CHAT, 101, OLGA, &data_of(&card, "Беру"));
    assert_eq!(answered(&mut fake).await, "Звонок ваш");
    assert_eq!(fake.next().await.method, "editMessageText", "the card shows who took it");
    // The timer is a delivery in the database: a restart neither loses nor fires it.
    let daemon = daemon.restart().await;
    let store = daemon.store().await;
    let query = switchboard::store::EventQuery { limit: 10, ..Default::default() };
    let event = store.events(&query).await.unwrap()[0].event.id;
    crate::delivery::eventually("the escalation is cancelled", || async {
        store.deliveries(event).await.unwrap().iter().any(|d| d.state == switchboard::store::DeliveryState::Cancelled)
    })
    .await;
    let cancelled = store.deliveries(event).await.unwrap().into_iter().find(|d| d.unless.is_some()).unwrap();
    let attempts = store.attempts(cancelled.id).await.unwrap();
    assert!(attempts[0].detail.starts_with("cancelled: the call was taken by Ольга"), "{}", attempts[0].detail);
    let sent = fake.drain();
    assert!(sent.iter().all(|s| !text(s).contains("Напоминание")), "no reminder: {sent:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn with_a_public_url_telegram_pushes_presses_to_the_listener() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let pushed = format!("[server]\npublic_url = \"https://hooks.example.com/\"\n{}", config(&fake));
    let daemon = Daemon::start(&pushed).await;
    post(&daemon, &call_event(421, "start", 1)).await;
    let card = fake.next().await;
    crate::delivery::eventually("the bot's webhook is set", || async { !fake.webhook().is_null() }).await;
    let webhook = fake.webhook();
    assert_eq!(webhook["url"], "https://hooks.example.com/telegram/123456", "{webhook}");
    assert_eq!(webhook["allowed_updates"], serde_json::json!(["callback_query"]));
    let secret = webhook["secret_token"].as_str().unwrap().to_owned();
    assert!(!secret.contains("desk-test-token"), "the token never leaves in the secret");

    let update = fake.update(CHAT, 101, OLGA, &data_of(&card, "Беру"));
    let post_update = |secret: &str| {
        daemon
            .client
            .post(daemon.url("/telegram/123456"))
            .header("x-telegram-bot-api-secret-token", secret)
            .json(&update)
            .send()
    };
    assert_eq!(post_update("guess").await.unwrap().status(), 401, "only Telegram knows the secret");
    assert_eq!(post_update(&secret).await.unwrap().status(), 200);
    assert_eq!(answered(&mut fake).await, "Звонок ваш");
    let redrawn = fake.next().await;
    assert!(text(&redrawn).contains("Взял(а): Ольга"), "{}", text(&redrawn));

    // No route puts buttons on the bot's cards any more: Telegram is told to stop pushing.
    let without_buttons = pushed.replace("buttons = [\"take\", \"done\", \"no_answer\"]", "");
    std::fs::write(daemon.config_path(), format!("{}{without_buttons}", Daemon::config_prelude())).unwrap();
    crate::delivery::eventually("the bot's webhook is removed", || async { fake.webhook().is_null() }).await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_call_of_several_events_is_reminded_once_and_its_card_is_not_taken_for_the_reminder() {
    let mut fake = FakeTelegram::start(Vec::new()).await;
    let daemon = Daemon::start(&escalating(&fake)).await;
    post(&daemon, &call_event(431, "start", 1)).await;
    post(&daemon, &call_event(431, "end", 1)).await;
    let (card, missed) = (fake.next().await, fake.next().await);
    assert_eq!((card.method.as_str(), missed.method.as_str()), ("sendMessage", "editMessageText"));
    let reminder = fake.next().await;
    assert!(text(&reminder).contains("Напоминание"), "{}", text(&reminder));
    let store = daemon.store().await;
    let query = switchboard::store::EventQuery { limit: 10, ..Default::default() };
    let events: Vec<_> = store.events(&query).await.unwrap().iter().map(|e| e.event.id).collect();
    crate::delivery::eventually("the second event's reminder is settled", || async {
        let mut states = Vec::new();
        for event in &events {
            for delivery in store.deliveries(*event).await.unwrap() {
                if delivery.unless.is_some() {
                    states.push(delivery.state);
                }
            }
        }
        states.len() == 2 && !states.contains(&switchboard::store::DeliveryState::Pending)
    })
    .await;
    // The card is still the card: a later event edits it, not the reminder.
    post(&daemon, &call_event(431, "agent_connected", 1)).await;
    let later = fake.next().await;
    assert_eq!((later.method.as_str(), later.body["message_id"].as_i64()), ("editMessageText", Some(101)), "{later:?}");
    assert!(fake.drain().iter().all(|s| !text(s).contains("Напоминание")), "one reminder per call");
    daemon.stop().await;
}
