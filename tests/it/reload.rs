//! Reloading without a restart: a changed file takes effect; a broken one is refused and the
//! previous configuration keeps serving; `/-/reload`, `/-/status`, `/readyz` and `/metrics` say so.

use serde_json::Value;

use crate::delivery::eventually;
use crate::support::{Daemon, repo};

fn config(route_to: &str) -> String {
    format!(
        r#"
[outputs.first]
type = "log"
file = "first.log"

[outputs.second]
type = "log"
file = "second.log"

[[route]]
name = "offline messages"
kind = "message.offline"
to = ["{route_to}"]
template = "offline_message"
"#
    )
}

async fn post_offline(daemon: &Daemon) -> switchboard::event::EventId {
    // A new message each time: the same body twice would be taken for a vendor retry.
    static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut body: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/jivo/offline_message.json")).unwrap(),
    )
    .unwrap();
    body["offline_message_id"] = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).into();
    let body = body.to_string();
    let response = daemon.client.post(daemon.url("/hooks/jivo")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    daemon.stored(&response).await.event.id
}

async fn output_of(daemon: &Daemon, event: switchboard::event::EventId) -> String {
    daemon.store().await.deliveries(event).await.unwrap()[0].output.clone()
}

#[tokio::test]
async fn an_edited_config_file_is_picked_up_and_a_broken_one_refused() {
    let daemon = Daemon::start(&config("first")).await;
    let event = post_offline(&daemon).await;
    assert_eq!(output_of(&daemon, event).await, "first");

    // Edit the file: the watcher reloads it.
    std::fs::write(daemon.config_path(), format!("{}{}", Daemon::config_prelude(), config("second"))).unwrap();
    eventually("the edited route is used", || async {
        let event = post_offline(&daemon).await;
        output_of(&daemon, event).await == "second"
    })
    .await;

    // Break the file: the old configuration keeps serving, and the failure is visible.
    std::fs::write(
        daemon.config_path(),
        format!("{}{}\n[[route]]\nname = \"oops\"\nto = [\"nowhere\"]\n", Daemon::config_prelude(), config("first")),
    )
    .unwrap();
    let client = &daemon.client;
    eventually("the failed reload is reported", || async {
        let status: Value = client.get(daemon.admin_url("/-/status")).send().await.unwrap().json().await.unwrap();
        status["config"]["reload"]["reloads_failed"].as_u64() >= Some(1)
    })
    .await;
    let event = post_offline(&daemon).await;
    assert_eq!(output_of(&daemon, event).await, "second", "the previous configuration still routes");

    let ready: Value = client.get(daemon.admin_url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true);
    let error = ready["config"]["last_reload_error"][0].as_str().unwrap();
    assert!(error.contains("no output is called `nowhere`"), "{error}");

    let response = client.post(daemon.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(body["problems"][0].as_str().unwrap().contains("route[1].to"), "{body}");

    let metrics = client.get(daemon.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("switchboard_config_reloads_total{result=\"failed\"}"), "{metrics}");
    assert!(metrics.contains("switchboard_config_last_reload_successful 0"), "{metrics}");

    // Fix it, and ask for the reload explicitly.
    std::fs::write(daemon.config_path(), format!("{}{}", Daemon::config_prelude(), config("first"))).unwrap();
    let response = client.post(daemon.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let event = post_offline(&daemon).await;
    assert_eq!(output_of(&daemon, event).await, "first");
    daemon.stop().await;
}

#[tokio::test]
async fn health_status_and_metrics_answer() {
    let daemon = Daemon::start(&config("first")).await;
    assert_eq!(daemon.client.get(daemon.admin_url("/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    post_offline(&daemon).await;
    let metrics = daemon.client.get(daemon.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("switchboard_webhooks_received_total{vendor=\"jivo\",outcome=\"stored\"}"), "{metrics}");
    assert!(metrics.contains("switchboard_events_stored_total{vendor=\"jivo\",kind=\"message.offline\"}"), "{metrics}");
    let status: Value = daemon.client.get(daemon.admin_url("/-/status")).send().await.unwrap().json().await.unwrap();
    let jivo = status["vendors"].as_array().unwrap().iter().find(|v| v["name"] == "jivo").unwrap();
    assert_eq!(jivo["hook_path"], "/hooks/jivo");
    assert_eq!(jivo["legacy_paths"].as_array().unwrap().len(), 6);
    daemon.stop().await;
}
