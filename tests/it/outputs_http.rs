//! The HTTP output against a real HTTP receiver.

use serde_json::Value;
use switchboard::store::DeliveryState;

use crate::delivery::eventually;
use crate::outputs_support::{attempt, build, fixture_event, render};
use crate::support::http_sink::{Answer, HttpSink};
use crate::support::{Daemon, repo};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn posts_the_rendered_body_signed_with_an_idempotency_key() {
    let mut sink = HttpSink::start(vec![]).await;
    let output = build(
        "http",
        &format!(
            r#"
            url = "{}/api/leads?phone={{{{phone contact.phone}}}}&src={{{{vendor}}}}"
            headers = {{ Authorization = "Bearer t0k", "X-Visitor" = "{{{{contact.name}}}}" }}
            signing_secret = "{SECRET}"
            "#,
            sink.url("")
        ),
    )
    .unwrap();
    let event = fixture_event("envybox", "quiz_form_19.form");
    let message = render("lead", output.as_ref(), &event);
    let receipt = output.send(&message, &attempt(1)).await.unwrap();
    assert_eq!(receipt.summary, "HTTP 200");

    let request = sink.next().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.to_string(), "/api/leads?phone=%2B79998887766&src=envybox", "values are percent-encoded");
    // Header values are bytes; a Cyrillic name goes out as UTF-8.
    let header = |name: &str| request.headers.get(name).map(|v| String::from_utf8(v.as_bytes().to_vec()).unwrap());
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(header("authorization").as_deref(), Some("Bearer t0k"));
    assert_eq!(header("x-visitor").as_deref(), Some("Мария"));
    assert_eq!(header("idempotency-key").as_deref(), Some("01KAZTESTDELIVERY000000001"));
    assert_eq!(header("webhook-id").as_deref(), Some("01KAZTESTDELIVERY000000001"));

    // Verified with the Standard Webhooks reference library, not with our own code.
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    verifier.verify(&request.body, &request.headers).expect("the signature verifies");
    let mut tampered = request.body.to_vec();
    tampered[0] = b' ';
    assert!(verifier.verify(&tampered, &request.headers).is_err(), "a changed body does not verify");

    let body: Value = serde_json::from_slice(&request.body).expect("the body is JSON");
    assert_eq!(body["name"], "Мария");
    assert_eq!(body["phone"], "+79998887766");
    assert_eq!(body["vendor"], "envybox");
}

#[tokio::test]
async fn a_refused_connection_is_retried_as_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = build("http", &format!("url = \"http://127.0.0.1:{port}/x\"\nformat = \"text\"")).unwrap();
    let message = crate::outputs_support::text_message("hello");
    let error = output.send(&message, &attempt(1)).await.unwrap_err();
    assert!(error.is_retryable());
    assert_eq!(error.reason.as_str(), "network");
    assert!(!error.detail.contains(&port.to_string()), "no URL in the detail: {}", error.detail);
}

#[test]
fn bad_settings_are_refused_at_load() {
    let cases = [
        ("url = \"ftp://x\"", "url must start with http:// or https://"),
        ("url = \"http://exa mple.com/?token=s3cret\"", "url is not a valid URL: invalid international domain name"),
        ("url = \"http://x\"\nmethod = \"P OST\"", "method `P OST` is not an HTTP method"),
        ("url = \"http://x\"\nheaders = { \"Bad Header\" = \"1\" }", "`Bad Header` is not a valid header name"),
        (
            "url = \"http://x\"\nsigning_secret = \"whsec_%%%\"",
            "signing_secret: the part after `whsec_` must be base64",
        ),
        ("url = \"http://x\"\nformat = \"xml\"", "unknown variant `xml`"),
        ("url = \"http://x\"\nsuccess_status = [999]", "`999` is not an HTTP status"),
    ];
    for (table, expected) in cases {
        let error = build("http", table).unwrap_err();
        assert!(error.contains(expected), "{table}: {error}");
        assert!(!error.contains("s3cret"), "a refused url is not quoted back: {error}");
    }
}

fn daemon_config(sink: &HttpSink) -> String {
    format!(
        r#"
[delivery]
retry_schedule_secs = [1]

[outputs.crm]
type = "http"
url = "{}/leads"

[[route]]
name = "leads to the CRM"
kind = "form.submitted"
to = ["crm"]
template = "lead"
"#,
        sink.url("")
    )
}

async fn post_lead(daemon: &Daemon) -> switchboard::event::EventId {
    let body = std::fs::read_to_string(repo().join("tests/fixtures/envybox/quiz_form_19.form")).unwrap();
    let response = daemon.post_form("envybox", &body).await;
    daemon.stored(&response).await.event.id
}

#[tokio::test]
async fn retries_temporary_failures_then_delivers_with_one_idempotency_key() {
    let mut sink = HttpSink::start(vec![Answer(503, None, "maintenance"), Answer(429, Some("1"), "slow down")]).await;
    let daemon = Daemon::start(&daemon_config(&sink)).await;
    let event = post_lead(&daemon).await;
    let keys: Vec<String> = [sink.next().await, sink.next().await, sink.next().await]
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert_eq!(sink.remaining(), 0);

    let store = daemon.store().await;
    eventually("delivered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Delivered })
        .await;
    let delivery = &store.deliveries(event).await.unwrap()[0];
    assert_eq!(keys[0], delivery.id.to_string());
    let attempts = store.attempts(delivery.id).await.unwrap();
    let summary: Vec<(String, Option<String>)> =
        attempts.iter().map(|a| (a.outcome.clone(), a.reason.clone())).collect();
    assert_eq!(
        summary,
        [
            ("retry".to_owned(), Some("server_error".to_owned())),
            ("retry".to_owned(), Some("rate_limited".to_owned())),
            ("delivered".to_owned(), None)
        ]
    );
    assert!(attempts[0].detail.contains("HTTP 503: maintenance"));
    // One-second schedule with ±20% jitter; the 429's hint asks for one second too.
    let gap = (attempts[1].started_at - attempts[0].started_at).num_milliseconds();
    assert!((700..5000).contains(&gap), "retried after {gap} ms");
    daemon.stop().await;
}

#[tokio::test]
async fn a_permanent_refusal_is_dead_lettered_with_the_answer() {
    let mut sink = HttpSink::start(vec![Answer(422, None, "{\"error\":\"phone is required\"}")]).await;
    let daemon = Daemon::start(&daemon_config(&sink)).await;
    let event = post_lead(&daemon).await;
    sink.next().await;
    let store = daemon.store().await;
    eventually("dead-lettered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Dead })
        .await;
    let delivery = &store.deliveries(event).await.unwrap()[0];
    assert_eq!(delivery.attempts, 1, "a 422 is not retried");
    assert_eq!(delivery.last_error.as_deref(), Some("HTTP 422: {\"error\":\"phone is required\"}"));
    daemon.stop().await;
}

/// Delivery renders an output's templated settings with its message, so a header that cannot
/// render is a template error before anything is sent, not a request without its headers.
#[tokio::test]
async fn a_header_that_cannot_render_fails_before_anything_is_sent() {
    let output = build(
        "http",
        r#"
        url = "http://127.0.0.1:9/api/leads"
        headers = { Authorization = "Bearer t0k", "X-Phone" = "{{no_such_helper contact.phone}}" }
        "#,
    )
    .unwrap();
    let event = fixture_event("envybox", "quiz_form_19.form");
    let set = crate::outputs_support::templates();
    let context = switchboard::render::RenderContext::of_event(&event);
    let error = switchboard::delivery::compose(&set, "lead", output.as_ref(), &context).unwrap_err();
    assert!(error.message.contains("the http output's `headers` setting"), "{error}");
    assert!(error.message.contains("no_such_helper"), "{error}");

    // A message that was not composed for it is refused too, rather than sent without headers.
    let error = output.send(&crate::outputs_support::text_message("{}"), &attempt(1)).await.unwrap_err();
    assert!(!error.is_retryable());
    assert_eq!(error.reason.as_str(), "template");
}

/// A destination that answers again has its deliveries waiting out a retry step sent at once:
/// an outage costs its own length, not the schedule's next step (here a minute).
#[tokio::test]
async fn a_destination_that_answers_again_gets_its_waiting_deliveries_at_once() {
    let mut sink = HttpSink::start(vec![Answer(503, None, "maintenance")]).await;
    let config = daemon_config(&sink).replace("retry_schedule_secs = [1]", "retry_schedule_secs = [60]");
    let daemon = Daemon::start(&config).await;
    let first = post_lead(&daemon).await;
    sink.next().await;
    let store = daemon.store().await;
    eventually("the first waits out its retry step", || async {
        store.deliveries(first).await.unwrap()[0].attempts == 1
    })
    .await;
    // Another lead: the CRM answers it, so it is up again.
    let body = std::fs::read_to_string(repo().join("tests/fixtures/envybox/generator_form_4.form")).unwrap();
    let second = daemon.stored(&daemon.post_form("envybox", &body).await).await.event.id;
    eventually("both delivered within seconds", || async {
        let delivered = |id| {
            let store = store.clone();
            async move { store.deliveries(id).await.unwrap()[0].state == DeliveryState::Delivered }
        };
        delivered(second).await && delivered(first).await
    })
    .await;
    let attempts = store.attempts(store.deliveries(first).await.unwrap()[0].id).await.unwrap();
    let gap = (attempts[1].started_at - attempts[0].started_at).num_seconds();
    assert!(gap < 15, "retried {gap} s after the outage, not at the schedule's 60 s");
    daemon.stop().await;
}
