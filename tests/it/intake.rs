//! No lead lost at intake: every sender's format is accepted, stored and routed to a real HTTP
//! receiver — Calltracking's own format (its event in the address), webhooks that name no event,
//! multipart bodies with a file part.

use serde_json::Value;
use switchboard::store::Store;

use crate::support::http_sink::HttpSink;
use crate::support::{Daemon, repo};

/// Missed calls and everything else to one HTTP receiver, with Calltracking behind a secret.
fn config(sink: &HttpSink) -> String {
    format!(
        r#"
[vendors.calltracking]
secret = "ct-s3cret"

[outputs.crm]
type = "http"
url = "{}"

[[route]]
name = "missed calls"
kind = "call.missed"
to = ["crm"]
template = "missed_call"

[[route]]
name = "everything else"
to = ["crm"]
template = "generic"
"#,
        sink.url("/leads")
    )
}

fn fixture(vendor: &str, name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures").join(vendor).join(name)).unwrap()
}

/// The next request the receiver gets, as JSON.
async fn delivered(sink: &mut HttpSink) -> Value {
    serde_json::from_slice(&sink.next().await.body).expect("the CRM gets JSON")
}

#[tokio::test]
async fn calltracking_start_and_end_are_told_apart_by_the_address() {
    let mut sink = HttpSink::start(vec![]).await;
    let daemon = Daemon::start(&config(&sink)).await;

    // *start* as a GET to its own address; the secret is the path's, the event its last segment.
    let query = String::from_utf8(fixture("calltracking", "start_get.query")).unwrap();
    let url = daemon.url(&format!("/hooks/calltracking/ct-s3cret/start?{}", query.trim()));
    let response = daemon.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let start = daemon.stored(&response).await;
    assert_eq!((start.event.event.as_str(), start.event.kind.as_str()), ("call_start", "call.started"));
    assert_eq!(start.request.path, "/hooks/calltracking/***/start", "the secret is not kept");
    let generic = delivered(&mut sink).await;
    assert_eq!(generic["kind"], "call.started");

    // *end* of a missed call, URL-encoded, to the other address: a missed-call alert.
    let response = daemon
        .client
        .post(daemon.url("/hooks/calltracking/ct-s3cret/end"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(fixture("calltracking", "end_missed.form"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["result"], "ok");
    let missed = delivered(&mut sink).await;
    assert_eq!((missed["event"].as_str(), missed["phone"].as_str()), (Some("call.missed"), Some("+79035550101")));

    // The same body at both addresses is two events, not a repeat; `?event=` works as well.
    let body = fixture("calltracking", "end_answered.json");
    for address in ["/hooks/calltracking/ct-s3cret/start", "/hooks/calltracking/ct-s3cret?event=end"] {
        let response = daemon.client.post(daemon.url(address)).body(body.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200, "{address}");
        assert!(!response.headers().contains_key(switchboard::ingest::DUPLICATE_HEADER), "{address}");
    }
    let kinds = [delivered(&mut sink).await["kind"].clone(), delivered(&mut sink).await["kind"].clone()];
    assert_eq!(kinds, ["call.started", "call.finished"]);

    // Without the secret the address is refused, as for every vendor.
    let response = daemon.client.post(daemon.url("/hooks/calltracking/start")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 401);
    daemon.stop().await;
}

#[tokio::test]
async fn a_webhook_that_names_no_event_is_stored_as_unknown_and_routed() {
    let mut sink = HttpSink::start(vec![]).await;
    let daemon = Daemon::start(&config(&sink)).await;
    let jivo = daemon
        .client
        .post(daemon.url("/hooks/jivo"))
        .json(&serde_json::json!({"chat_id": 77, "visitor": {"name": "Анна", "phone": "+79161234567"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(jivo.status(), 200, "Jivo gets its normal answer");
    let stored = daemon.stored(&jivo).await;
    assert_eq!(jivo.json::<Value>().await.unwrap()["result"], "ok");
    assert_eq!((stored.event.event.as_str(), stored.event.kind.as_str()), ("", "unknown"));
    assert_eq!(stored.event.fields.get("contact.phone").and_then(Value::as_str), Some("+79161234567"));
    assert_eq!(stored.routes, ["everything else"]);
    let generic = delivered(&mut sink).await;
    assert_eq!((generic["kind"].as_str(), generic["vendor"].as_str()), (Some("unknown"), Some("jivo")));

    let envybox = daemon.post_form("envybox", "phone=79998887766&name=%D0%9E%D0%BB%D1%8C%D0%B3%D0%B0").await;
    assert_eq!(envybox.status(), 200);
    let stored = daemon.stored(&envybox).await;
    assert_eq!(stored.event.kind.as_str(), "unknown");
    assert_eq!(delivered(&mut sink).await["contact"]["name"], "Ольга");

    // The event page says why it is unknown.
    let page = reqwest::get(daemon.admin_url(&format!("/events/{}", stored.event.id))).await.unwrap();
    let page = page.text().await.unwrap();
    let reason = "id=\"unknown-reason\">the webhook names no event: the payload has no &#x60;webhooktype&#x60; field";
    assert!(page.contains(reason), "{page}");

    // A body that does not decode at all is still refused, and kept.
    let broken = daemon.client.post(daemon.url("/hooks/jivo")).body("{\"chat_id\": ").send().await.unwrap();
    assert_eq!(broken.status(), 400);
    assert_eq!(daemon.store().await.rejections(10).await.unwrap().len(), 1);
    daemon.stop().await;
}

#[tokio::test]
async fn a_multipart_body_with_a_binary_file_part_is_accepted() {
    let mut sink = HttpSink::start(vec![]).await;
    let daemon = Daemon::start(&config(&sink)).await;
    let response = daemon
        .client
        .post(daemon.url("/hooks/calltracking/ct-s3cret/end"))
        .header("content-type", "multipart/form-data; boundary=switchboard-fixture")
        .body(fixture("calltracking", "end_multipart_with_recording.multipart"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let stored = daemon.stored(&response).await;
    assert_eq!(stored.event.kind.as_str(), "call.missed");
    let record = &stored.event.payload["record"];
    assert_eq!((record["file_name"].as_str(), record["size"].as_u64()), (Some("call.mp3"), Some(37)));
    assert_eq!(delivered(&mut sink).await["phone"], "+79057778899");
    daemon.stop().await;
}
