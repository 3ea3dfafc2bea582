//! What vendors get back, legacy paths, and vendor retries.

use serde_json::{Value, json};
use switchboard::store::EventQuery;

use crate::support::{Daemon, repo};

fn fixture(path: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures").join(path)).unwrap()
}

const REPLY_CONFIG: &str = r#"
[[vendors.jivo.reply]]
events = ["chat_accepted", "chat_updated"]
json.crm_link = "https://crm.example.com/search?phone={{contact.phone}}"
json.enable_assign = true
json.custom_data = [{ title = "Город", content = "{{geo.city}}" }]
json.contact_info = { name = "{{contact.name}}" }
"#;

#[tokio::test]
async fn jivo_gets_result_ok() {
    let daemon = Daemon::start(REPLY_CONFIG).await;
    let response =
        daemon.client.post(daemon.url("/hooks/jivo")).body(fixture("jivo/offline_message.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"result": "ok"}));
    daemon.stop().await;
}

#[tokio::test]
async fn chat_accepted_replies_carry_the_configured_additions() {
    let daemon = Daemon::start(REPLY_CONFIG).await;
    for name in ["chat_accepted", "chat_updated"] {
        let response = daemon
            .client
            .post(daemon.url("/hooks/jivo"))
            .body(fixture(&format!("jivo/{name}.json")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({
                "result": "ok",
                "crm_link": "https://crm.example.com/search?phone=+14084987855",
                "enable_assign": true,
                "custom_data": [{"title": "Город", "content": "San Francisco"}],
                "contact_info": {"name": "John Smith"},
            }),
            "{name}"
        );
    }
    daemon.stop().await;
}

#[tokio::test]
async fn legacy_paths_answer_with_the_flattened_data() {
    let daemon = Daemon::start("").await;
    let paths = [
        ("/jivo/webhook_call_event", "call_event.json", "call.finished"),
        ("/jivo/webhook_accepted", "chat_accepted.json", "chat.accepted"),
        ("/jivo/webhook_assigned", "chat_assigned.json", "chat.assigned"),
        ("/jivo/webhook_finished", "chat_finished.json", "chat.finished"),
        ("/jivo/webhook_updated", "chat_updated.json", "chat.updated"),
        ("/jivo/webhook_offline", "offline_message.json", "message.offline"),
    ];
    for (path, file, kind) in paths {
        let response =
            daemon.client.post(daemon.url(path)).body(fixture(&format!("jivo/{file}"))).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let stored = daemon.stored(&response).await;
        assert_eq!(stored.event.kind.as_str(), kind, "{path}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["result"], "ok", "{path}");
        let data = &reply["data"][0];
        let phones = data["phone"].as_array().expect("phones collected in a list");
        assert!(phones.contains(&json!("+14084987855")), "{path}: {reply}");
        assert_eq!(data["city"], json!(["San Francisco"]), "{path}");
    }

    // The shape the old receiver answered for an offline message.
    let response = daemon
        .client
        .post(daemon.url("/jivo/webhook_offline"))
        .body(fixture("jivo/offline_message.json"))
        .send()
        .await
        .unwrap();
    let data = response.json::<Value>().await.unwrap()["data"][0].clone();
    for (key, value) in [
        ("campaign", "campaign_name"),
        ("chats_count", "1"),
        ("country_code", "US"),
        ("email", "email@example.com"),
        ("event_name", "offline_message"),
        ("message", "Message text"),
        ("name", "John Smith"),
        ("number", "2198"),
        ("offline_message_id", "1665399500726"),
        ("source", "google"),
        ("url", "http://example.com/"),
        ("utm", "source=google|medium=cpc|content=banner|campaign=campaign_name"),
        ("widget_id", "3948"),
    ] {
        assert_eq!(data[key], json!([value]), "{key}");
    }
    // Today's payload also has the topic's title; the page's is kept among the values.
    assert!(data["title"].as_array().unwrap().contains(&json!("Page title")));

    // A body that does not name its event takes the path's.
    let response = daemon
        .client
        .post(daemon.url("/jivo/webhook_offline"))
        .body(r#"{"visitor": {"phone": "+79990001122"}, "message": "Перезвоните"}"#)
        .send()
        .await
        .unwrap();
    let stored = daemon.stored(&response).await;
    assert_eq!((stored.event.event.as_str(), stored.event.kind.as_str()), ("offline_message", "message.offline"));
    assert_eq!(stored.event.fields.get("message"), Some(&json!("Перезвоните")));
    daemon.stop().await;
}

#[tokio::test]
async fn a_vendor_retry_is_answered_but_stored_once() {
    let daemon = Daemon::start("").await;
    let body = fixture("envybox/call_info_missed_client_2.form");
    let mut ids = Vec::new();
    for attempt in 0..3 {
        let response = daemon.post_form("envybox", &body).await;
        assert_eq!(response.status(), 200);
        let duplicate = response.headers().get(switchboard::ingest::DUPLICATE_HEADER).is_some();
        assert_eq!(duplicate, attempt > 0, "attempt {attempt}");
        ids.push(response.headers()[switchboard::ingest::EVENT_ID_HEADER].to_str().unwrap().to_owned());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let store = daemon.store().await;
    let events = store.events(&EventQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].duplicates, 2);
    daemon.stop().await;
}
