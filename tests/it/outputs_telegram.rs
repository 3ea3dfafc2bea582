//! The Telegram output against a local Bot API server.

use std::time::Duration;

use switchboard::outputs::{Disposition, Message};
use switchboard::render::Part;
use switchboard::store::DeliveryState;

use crate::delivery::eventually;
use crate::outputs_support::{attempt, build, fixture_event, render};
use crate::support::fake_telegram::{FakeTelegram, Reply};
use crate::support::{Daemon, repo};

const TOKEN: &str = "123456:TEST-token_abc";

fn output(fake: &FakeTelegram, extra: &str) -> std::sync::Arc<dyn switchboard::outputs::Output> {
    build(
        "telegram",
        &format!("token = \"{TOKEN}\"\nchat_id = -1001234567890\napi_url = \"{}\"\n{extra}", fake.api_url()),
    )
    .unwrap()
}

fn telegram(text: &str) -> Message {
    Message::new([(Part::Telegram, text.to_owned())].into_iter().collect(), std::collections::BTreeMap::new())
}

#[tokio::test]
async fn sends_html_to_the_chat_and_topic_without_link_previews() {
    let mut fake = FakeTelegram::start(vec![]).await;
    let output = output(&fake, "message_thread_id = 42\ndisable_notification = true");
    let event = fixture_event("envybox", "call_info_missed_client_2.form");
    let message = render("missed_call", output.as_ref(), &event);
    let receipt = output.send(&message, &attempt(1)).await.unwrap();
    assert_eq!(receipt.remote_id.as_deref(), Some("101"));
    let sent = fake.next().await;
    assert_eq!(sent.token, TOKEN);
    assert_eq!(sent.body["chat_id"], -1001234567890_i64);
    assert_eq!(sent.body["parse_mode"], "HTML");
    assert_eq!(sent.body["message_thread_id"], 42);
    assert_eq!(sent.body["disable_notification"], true);
    assert_eq!(sent.body["link_preview_options"]["is_disabled"], true);
    let text = sent.body["text"].as_str().unwrap();
    assert!(text.starts_with("📞 <b>Пропущенный звонок</b>"), "{text}");
    assert!(text.contains("+7 999 888-77-66") && text.contains("Клиент не взял трубку"), "{text}");
}

#[tokio::test]
async fn long_messages_arrive_in_parts_of_at_most_4096_characters() {
    let mut fake = FakeTelegram::start(vec![]).await;
    let output = output(&fake, "");
    let line = "<b>Сообщение</b> с текстом &amp; смыслом\n";
    let receipt = output.send(&telegram(&line.repeat(300)), &attempt(1)).await.unwrap();
    let mut parts = vec![fake.next().await];
    parts.extend(fake.drain());
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for part in &parts {
        let text = part.body["text"].as_str().unwrap();
        assert!(text.encode_utf16().count() <= 4096);
        assert_eq!(text.matches("<b>").count(), text.matches("</b>").count());
    }
    assert!(receipt.summary.contains(&format!("({} parts)", parts.len())), "{}", receipt.summary);
}

#[tokio::test]
async fn flood_control_is_a_retry_after_telegrams_delay() {
    let fake = FakeTelegram::start(vec![Reply::RetryAfter(3)]).await;
    let error = output(&fake, "").send(&telegram("hi"), &attempt(1)).await.unwrap_err();
    assert_eq!(error.disposition, Disposition::Retry { after: Some(Duration::from_secs(3)) });
    assert_eq!(error.reason.as_str(), "rate_limited");
}

#[tokio::test]
async fn markup_telegram_cannot_parse_is_sent_again_as_plain_text() {
    let mut fake = FakeTelegram::start(vec![Reply::CantParse]).await;
    let receipt = output(&fake, "").send(&telegram("<b>Звонок</b> &amp; <foo>ok"), &attempt(1)).await.unwrap();
    let first = fake.next().await;
    let second = fake.next().await;
    assert_eq!(first.body["parse_mode"], "HTML");
    assert!(second.body.get("parse_mode").is_none(), "{}", second.body);
    assert_eq!(second.body["text"], "Звонок & ok");
    assert!(receipt.summary.contains("plain text"), "{}", receipt.summary);
}

#[tokio::test]
async fn refusals_that_need_the_operator_are_permanent_and_say_why() {
    let cases = [
        (vec![Reply::Blocked], "auth", "bot was blocked by the user", Some("add it back")),
        (vec![Reply::ChatNotFound], "client_error", "chat not found", None),
        // A group that moved twice in one attempt: the second move is not followed.
        (
            vec![Reply::Migrated(-1009876543210), Reply::Migrated(-1001111111111)],
            "client_error",
            "set chat_id = -1001111111111",
            Some("set chat_id = -1001111111111"),
        ),
    ];
    for (script, reason, detail, action) in cases {
        let fake = FakeTelegram::start(script.clone()).await;
        let error = output(&fake, "").send(&telegram("hi"), &attempt(1)).await.unwrap_err();
        assert_eq!(error.disposition, Disposition::Permanent, "{script:?}");
        assert_eq!(error.reason.as_str(), reason, "{script:?}");
        assert!(error.detail.contains(detail), "{script:?}: {}", error.detail);
        assert_eq!(error.action.is_some(), action.is_some(), "{script:?}: {error:?}");
        if let (Some(expected), Some(said)) = (action, &error.action) {
            assert!(said.contains(expected), "{said}");
        }
        assert!(!error.detail.contains(TOKEN), "the token never appears in an error");
    }
    let fake = FakeTelegram::start(vec![Reply::ServerError]).await;
    let error = output(&fake, "").send(&telegram("hi"), &attempt(1)).await.unwrap_err();
    assert!(error.is_retryable(), "a 500 is retried: {error}");
}

/// A group that became a supergroup: the alert goes to the new chat at once, so do the next
/// ones, and each receipt says which `chat_id` to set.
#[tokio::test]
async fn a_group_that_became_a_supergroup_is_followed_at_once() {
    let mut fake = FakeTelegram::start(vec![Reply::Migrated(-1009876543210)]).await;
    let output = output(&fake, "");
    let receipt = output.send(&telegram("first"), &attempt(1)).await.unwrap();
    let (old, new) = (fake.next().await, fake.next().await);
    assert_eq!(old.body["chat_id"], -1001234567890_i64);
    assert_eq!((new.body["chat_id"].as_i64(), new.body["text"].as_str()), (Some(-1009876543210), Some("first")));
    assert!(receipt.action.as_deref().is_some_and(|a| a.contains("set chat_id = -1009876543210")), "{receipt:?}");
    assert!(receipt.summary.contains("-1009876543210"), "{}", receipt.summary);

    let receipt = output.send(&telegram("second"), &attempt(1)).await.unwrap();
    assert_eq!(fake.next().await.body["chat_id"], -1009876543210_i64, "straight to the new chat");
    assert!(fake.drain().is_empty(), "one request");
    assert!(receipt.action.is_some(), "the config still names the old chat");
}

#[tokio::test]
async fn the_token_never_reaches_an_error_even_when_the_network_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output =
        build("telegram", &format!("token = \"{TOKEN}\"\nchat_id = 1\napi_url = \"http://127.0.0.1:{port}\"")).unwrap();
    let error = output.send(&telegram("hi"), &attempt(1)).await.unwrap_err();
    assert!(error.is_retryable());
    assert!(!format!("{error} {error:?}").contains("TEST-token"), "{error:?}");
}

#[test]
fn bad_settings_are_refused_at_load() {
    let cases = [
        ("token = \"\"\nchat_id = 1", "token is empty"),
        ("token = \"abc\"\nchat_id = 1", "does not look like a bot token"),
        ("token = \"1:a\"\nchat_id = \"sales\"", "chat_id must be a number"),
        ("token = \"1:a\"\nchat_id = 1\napi_url = \"not a url\"", "api_url `not a url` is not a URL"),
        ("token = \"1:a\"\nchat_id = 1\nparse_mode = \"Markdown\"", "unknown field `parse_mode`"),
    ];
    for (table, expected) in cases {
        let error = build("telegram", table).unwrap_err();
        assert!(error.contains(expected), "{table}: {error}");
    }
}

#[tokio::test]
async fn a_missed_call_reaches_the_chat_through_the_daemon() {
    let mut fake = FakeTelegram::start(vec![Reply::RetryAfter(1)]).await;
    let config = format!(
        r#"
[delivery]
retry_schedule_secs = [1]

[outputs.sales_tg]
type = "telegram"
token = "{TOKEN}"
chat_id = "@sales_alerts"
api_url = "{}"

[[route]]
name = "missed calls"
kind = "call.missed"
to = ["sales_tg"]
template = "missed_call"
"#,
        fake.api_url()
    );
    let daemon = Daemon::start(&config).await;
    let body = std::fs::read_to_string(repo().join("tests/fixtures/jivo/call_event_error_missed.json")).unwrap();
    let response = daemon.client.post(daemon.url("/hooks/jivo")).body(body).send().await.unwrap();
    let event = daemon.stored(&response).await.event.id;
    let first = fake.next().await;
    let second = fake.next().await;
    assert_eq!(first.body["chat_id"], "@sales_alerts");
    assert_eq!(first.body["text"], second.body["text"]);
    let store = daemon.store().await;
    eventually("delivered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Delivered })
        .await;
    let attempts = store.attempts(store.deliveries(event).await.unwrap()[0].id).await.unwrap();
    assert_eq!(attempts[0].reason.as_deref(), Some("rate_limited"));
    assert!(attempts[1].detail.starts_with("message 101 sent"), "{}", attempts[1].detail);
    daemon.stop().await;
}

#[tokio::test]
async fn a_burst_for_one_chat_is_paced_and_a_429_storm_honoured() {
    const ALERTS: usize = 100;
    const INTERVAL_MS: u128 = 50;
    // Ten go through, then Telegram says "slow down" three times in a row.
    let mut script = vec![Reply::Ok; 10];
    script.extend([Reply::RetryAfter(1), Reply::RetryAfter(1), Reply::RetryAfter(1)]);
    let mut fake = FakeTelegram::start(script).await;
    let config = format!(
        r#"
[delivery]
retry_schedule_secs = [1]
concurrency = 16

[outputs.tg]
type = "telegram"
token = "{TOKEN}"
chat_id = 4242
api_url = "{}"
min_interval_ms = {INTERVAL_MS}

[[route]]
name = "offline"
kind = "message.offline"
to = ["tg"]
template = "offline_message"
"#,
        fake.api_url()
    );
    let daemon = Daemon::start(&config).await;
    for n in 0..ALERTS {
        let body = format!(r#"{{"event_name":"offline_message","offline_message_id":{n},"message":"Сообщение {n}"}}"#);
        let response = daemon.client.post(daemon.url("/hooks/jivo")).body(body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let mut sent = Vec::new();
    while sent.iter().filter(|s: &&crate::support::fake_telegram::Sent| !s.limited).count() < ALERTS {
        sent.push(fake.next().await);
    }
    let delivered: std::collections::HashSet<String> =
        sent.iter().filter(|s| !s.limited).map(|s| s.body["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(delivered.len(), ALERTS, "every alert arrived once");
    assert_eq!(sent.iter().filter(|s| s.limited).count(), 3);
    // Sends start on the chat's pace; on a busy machine their arrival jitters by a few ms, so
    // the rate is judged over ten messages, and one pair only loosely.
    for window in sent.windows(10) {
        let span = window[9].at.duration_since(window[0].at).as_millis();
        assert!(span + 50 >= 9 * INTERVAL_MS, "ten messages within {span} ms");
    }
    for pair in sent.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at).as_millis();
        assert!(gap + 30 >= INTERVAL_MS, "two messages {gap} ms apart");
        // After "retry after 1 s", nothing to that chat for a second.
        if pair[0].limited {
            assert!(gap + 30 >= 1000, "sent {gap} ms after a 429 asking for 1 s");
        }
    }
    let total = sent.last().unwrap().at.duration_since(sent[0].at);
    eprintln!(
        "pacing: {ALERTS} alerts to one chat in {:.1} s at ≥{INTERVAL_MS} ms apart, 3 × 429 honoured",
        total.as_secs_f64()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn send_reports_what_happened_to_a_test_message() {
    let mut fake = FakeTelegram::start(vec![Reply::Ok, Reply::Blocked]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "{}[outputs.tg]\ntype = \"telegram\"\ntoken = \"{TOKEN}\"\nchat_id = 42\napi_url = \"{}\"\n",
            Daemon::config_prelude(),
            fake.api_url()
        ),
    )
    .unwrap();
    let send = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["send", "tg", "--text", "Проверка <связи>", "--config"])
            .arg(&config)
            .output()
    };
    let output = send().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("delivered through `tg` (telegram): message 101 sent"), "{stdout}");
    let text = fake.next().await.body["text"].as_str().unwrap().to_owned();
    assert!(text.contains("Проверка &lt;связи&gt;"), "rendered and escaped: {text}");

    let output = send().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("failed through `tg` (telegram): auth — permanent, fix the configuration"), "{stdout}");
    assert!(stdout.contains("bot was blocked by the user"), "{stdout}");
}

/// Flood control names its wait: the retry comes after it (within a second), not at the retry
/// schedule's next step, however many times in a row Telegram asks.
#[tokio::test]
async fn flood_waits_in_a_row_are_each_kept_to_the_second() {
    let mut fake = FakeTelegram::start(vec![Reply::RetryAfter(1), Reply::RetryAfter(1), Reply::RetryAfter(1)]).await;
    let config = format!(
        r#"
[delivery]
retry_schedule_secs = [60]

[outputs.tg]
type = "telegram"
token = "{TOKEN}"
chat_id = 4242
api_url = "{}"

[[route]]
name = "missed calls"
kind = "call.missed"
to = ["tg"]
template = "missed_call"
"#,
        fake.api_url()
    );
    let daemon = Daemon::start(&config).await;
    let body = std::fs::read_to_string(repo().join("tests/fixtures/jivo/call_event_error_missed.json")).unwrap();
    let response = daemon.client.post(daemon.url("/hooks/jivo")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut sent = vec![fake.next().await];
    while sent.last().unwrap().limited {
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), fake.next())
            .await
            .expect("retried within seconds, not at the schedule's 60 s");
        sent.push(next);
    }
    assert_eq!(sent.len(), 4, "three flood waits, then the message");
    for pair in sent.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at).as_millis();
        assert!((970..2000).contains(&gap), "retried {gap} ms after a 429 asking for 1 s");
    }
    daemon.stop().await;
}

/// A bot removed from its chat fails every later alert too: the Status page says what to do
/// above everything else, a gauge says so to alerting, and a clean delivery clears both.
#[tokio::test]
async fn a_bot_removed_from_the_chat_is_flagged_until_it_delivers_again() {
    let mut fake = FakeTelegram::start(vec![Reply::Blocked]).await;
    let config = format!(
        r#"
[outputs.sales_tg]
type = "telegram"
token = "{TOKEN}"
chat_id = 4242
api_url = "{}"

[[route]]
name = "offline"
kind = "message.offline"
to = ["sales_tg"]
template = "offline_message"
"#,
        fake.api_url()
    );
    let daemon = Daemon::start(&config).await;
    let gauge = r#"switchboard_output_needs_operator{output="sales_tg"}"#;
    let read = |path: &'static str| async {
        daemon.client.get(daemon.admin_url(path)).send().await.unwrap().text().await.unwrap()
    };
    let offline =
        |n: u32| format!(r#"{{"event_name":"offline_message","offline_message_id":{n},"message":"Перезвоните"}}"#);
    let response = daemon.client.post(daemon.url("/hooks/jivo")).body(offline(1)).send().await.unwrap();
    let event = daemon.stored(&response).await.event.id;
    fake.next().await;
    let store = daemon.store().await;
    eventually("dead-lettered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Dead })
        .await;
    let status = read("/status").await;
    let banner = status.split("id=\"needs-operator\"").nth(1).expect("a banner on the Status page");
    assert!(banner.contains("sales_tg") && banner.contains("add it back"), "{banner}");
    assert!(read("/metrics").await.lines().any(|line| line == format!("{gauge} 1")));
    let (code, checked) = crate::support::switchboard_cli(&daemon.config_path(), &["check"]).await;
    assert_eq!(code, Some(0), "{checked}");
    assert!(checked.contains("output sales_tg needs you: the bot cannot post to this chat"), "{checked}");

    let response = daemon.client.post(daemon.url("/hooks/jivo")).body(offline(2)).send().await.unwrap();
    let event = daemon.stored(&response).await.event.id;
    fake.next().await;
    eventually("delivered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Delivered })
        .await;
    assert!(!read("/status").await.contains("needs-operator"), "cleared by a clean delivery");
    let (_, checked) = crate::support::switchboard_cli(&daemon.config_path(), &["check"]).await;
    assert!(!checked.contains("needs you"), "{checked}");
    assert!(read("/metrics").await.lines().any(|line| line == format!("{gauge} 0")));
    daemon.stop().await;
}
