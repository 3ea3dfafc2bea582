//! From webhook to delivered message: deliveries are created with the event, attempted, and
//! every attempt recorded.

use std::time::Duration;

use switchboard::store::DeliveryState;

use crate::support::{Daemon, repo};

/// Missed calls, whatever the vendor, written to `alerts.log` by a log output.
pub const CONFIG: &str = r#"
[outputs.alerts]
type = "log"
file = "alerts.log"

[[route]]
name = "missed calls"
kind = "call.missed"
to = ["alerts"]
template = "missed_call"
"#;

/// Waits (bounded) until `check` holds; the delivery worker runs on its own schedule.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_routed_event_is_delivered_and_its_attempt_recorded() {
    let daemon = Daemon::start(CONFIG).await;
    let body = std::fs::read_to_string(repo().join("tests/fixtures/envybox/call_info_operator_busy_2.form")).unwrap();
    let response = daemon.post_form("envybox", &body).await;
    let stored = daemon.stored(&response).await;
    assert_eq!(stored.routes, ["missed calls"]);
    let store = daemon.store().await;
    let deliveries = store.deliveries(stored.event.id).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!((deliveries[0].output.as_str(), deliveries[0].template.as_str()), ("alerts", "missed_call"));

    let log = daemon.dir().join("alerts.log");
    eventually("the message is written", || async {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Оператор был занят"))
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Пропущенный звонок") && text.contains("+7 999 888-77-66"), "{text}");
    assert!(text.contains(&deliveries[0].id.to_string()), "the delivery id is logged with the message");

    eventually("the delivery is marked delivered", || async {
        store.deliveries(stored.event.id).await.unwrap()[0].state == DeliveryState::Delivered
    })
    .await;
    let attempts = store.attempts(deliveries[0].id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].number, attempts[0].outcome.as_str()), (1, "delivered"));
    daemon.stop().await;
}

#[tokio::test]
async fn an_event_no_route_takes_is_stored_as_unrouted() {
    let daemon = Daemon::start(CONFIG).await;
    let response =
        daemon.client.post(daemon.url("/hooks/jivo")).body(r#"{"event_name":"chat_updated"}"#).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let stored = daemon.stored(&response).await;
    assert!(stored.routes.is_empty());
    assert!(daemon.store().await.deliveries(stored.event.id).await.unwrap().is_empty());
    daemon.stop().await;
}
