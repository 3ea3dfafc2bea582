//! Every refusal: the status and JSON answer the sender gets, and the rejection kept (with the
//! request, secrets masked) for the operator.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::Daemon;

const CONFIG: &str =
    "[server]\nbody_limit_bytes = 4096\nread_timeout_secs = 1\n\n[vendors.envybox]\nsecret = \"s3cret-envybox\"\n";

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.expect("refusals are JSON"))
}

#[tokio::test]
async fn malformed_bodies_get_400_naming_the_problem_and_are_kept() {
    let daemon = Daemon::start(CONFIG).await;
    let cases: &[(&str, &str, &[u8], &str, &str)] = &[
        (
            "jivo",
            "application/json",
            b"{\"event_name\": \"offline_message\",",
            "invalid_json",
            "invalid JSON at line 1, column 33: EOF while parsing a value",
        ),
        ("jivo", "application/json", b"   ", "empty_body", "the request body is empty"),
        ("callkeeper", "application/x-www-form-urlencoded", b"hook_event=%FF%FE", "invalid_form", "invalid form body"),
        ("callkeeper", "text/plain", b"no pairs at all", "invalid_form", "invalid form body: no `key=value` pairs"),
    ];
    for (vendor, content_type, body, code, message) in cases {
        let response = daemon
            .client
            .post(daemon.url(&format!("/hooks/{vendor}")))
            .header("content-type", *content_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let (status, json) = answer(response).await;
        assert_eq!(status, 400, "{code}");
        assert_eq!(json["result"], "error");
        assert_eq!(json["error"], *code);
        assert!(json["message"].as_str().unwrap().starts_with(message), "{code}: {json}");
    }
    let kept = daemon.store().await.rejections(&switchboard::store::RejectionQuery::latest(100)).await.unwrap();
    assert_eq!(kept.len(), cases.len());
    let newest = &kept[0];
    assert_eq!((newest.status, newest.reason.as_str()), (400, "invalid_form"));
    assert_eq!(newest.raw_body.as_ref(), b"no pairs at all");
    assert!(newest.request.headers.iter().any(|(k, v)| k == "content-type" && v == "text/plain"));
    let oldest = kept.last().unwrap();
    assert_eq!(oldest.raw_body.as_ref(), b"{\"event_name\": \"offline_message\",");
    daemon.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_declared_or_streamed() {
    let daemon = Daemon::start(CONFIG).await;
    let big = format!("{{\"event_name\":\"offline_message\",\"message\":\"{}\"}}", "x".repeat(5000));
    let response = daemon.client.post(daemon.url("/hooks/jivo")).body(big.clone()).send().await.unwrap();
    let (status, json) = answer(response).await;
    assert_eq!((status, json["error"].as_str()), (413, Some("body_too_large")));

    // No Content-Length: the limit is enforced while reading.
    let chunks: Vec<Result<String, std::io::Error>> =
        big.as_bytes().chunks(1000).map(|c| Ok(String::from_utf8(c.to_vec()).unwrap())).collect();
    let stream = reqwest::Body::wrap_stream(futures_stream(chunks));
    let response = daemon.client.post(daemon.url("/hooks/jivo")).body(stream).send().await.unwrap();
    let (status, json) = answer(response).await;
    assert_eq!((status, json["error"].as_str()), (413, Some("body_too_large")));

    let kept = daemon.store().await.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap();
    assert_eq!(kept.iter().filter(|r| r.reason == "body_too_large").count(), 2);
    daemon.stop().await;
}

/// A minimal stream over ready items, so the test needs no extra crate.
fn futures_stream(
    items: Vec<Result<String, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<String, std::io::Error>> {
    struct Ready(std::vec::IntoIter<Result<String, std::io::Error>>);
    impl futures_core::Stream for Ready {
        type Item = Result<String, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Ready(items.into_iter())
}

#[tokio::test]
async fn secrets_are_required_when_configured_and_never_kept() {
    let daemon = Daemon::start(CONFIG).await;
    let body = "webhooktype=7&phone=79998887766&call_id=1";
    let post = |path: &str| {
        daemon
            .client
            .post(daemon.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let (status, json) = answer(post("/hooks/envybox").await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (401, Some("missing_secret")));
    let (status, json) = answer(post("/hooks/envybox/wrong-secret").await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (401, Some("bad_secret")));
    let (status, json) = answer(post("/hooks/envybox?token=s3cret-envybo").await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (401, Some("bad_secret")));
    assert_eq!(post("/hooks/envybox/s3cret-envybox").await.unwrap().status(), 200);
    assert_eq!(post("/hooks/envybox?token=s3cret-envybox").await.unwrap().status(), 200);
    // A vendor without a secret stays open.
    let open =
        daemon.client.post(daemon.url("/hooks/jivo")).body(r#"{"event_name":"chat_updated"}"#).send().await.unwrap();
    assert_eq!(open.status(), 200);

    let kept = daemon.store().await.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap();
    assert_eq!(kept.len(), 3);
    let text = format!("{kept:?}");
    assert!(
        !text.contains("wrong-secret") && !text.contains("s3cret-envybo"),
        "secrets leaked into rejections: {text}"
    );
    assert!(kept.iter().any(|r| r.request.path == "/hooks/envybox/***"));
    assert!(kept.iter().any(|r| r.request.query == "token=***"));
    daemon.stop().await;
}

#[tokio::test]
async fn unknown_vendors_methods_and_paths_are_refused() {
    let daemon = Daemon::start(CONFIG).await;
    let (status, json) = answer(daemon.client.post(daemon.url("/hooks/acme")).body("{}").send().await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (404, Some("unknown_vendor")));
    assert_eq!(json["message"], "no vendor plugin is called `acme`");
    let (status, json) = answer(daemon.client.get(daemon.url("/hooks/jivo?event_name=x")).send().await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (405, Some("method_not_allowed")));
    let (status, json) = answer(daemon.client.post(daemon.url("/wp-login.php")).send().await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (404, Some("not_found")));
    let kept = daemon.store().await.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap();
    let reasons: Vec<&str> = kept.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["method_not_allowed", "unknown_vendor"], "paths outside /hooks are not logged as rejections");
    daemon.stop().await;
}

#[tokio::test]
async fn slow_clients_time_out_with_408() {
    let daemon = Daemon::start(CONFIG).await;
    let mut stream = tokio::net::TcpStream::connect(daemon.addr).await.unwrap();
    stream
        .write_all(b"POST /hooks/jivo HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"event_name\":")
        .await
        .unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 1024];
        loop {
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            response.extend_from_slice(&buffer[..n]);
            if n == 0 || response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the daemon answered a stalled upload");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("read_timeout"), "{text}");
    let kept = daemon.store().await.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap();
    assert_eq!(kept[0].raw_body.as_ref(), b"{\"event_name\":", "what arrived is kept");
    daemon.stop().await;
}

#[tokio::test]
async fn random_bodies_never_get_a_5xx() {
    let daemon = Daemon::start(CONFIG).await;
    // A fixed-seed generator: the same bodies on every run, so a failure reproduces.
    let mut state: u64 = 0x5eed_1234_abcd_0001;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: &[u8] =
        b"{}[]\":,=&%+ 0123456789abcdefxyz_event_namewebhooktypehook_eventCall is over\xd0\x9a\xff\x00\n";
    for i in 0..300 {
        let len = (next() % 300) as usize;
        let body: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        let vendor = ["jivo", "envybox/s3cret-envybox", "callkeeper"][i % 3];
        let content_type =
            ["application/json", "application/x-www-form-urlencoded", "text/plain"][(next() % 3) as usize];
        let response = daemon
            .client
            .post(daemon.url(&format!("/hooks/{vendor}")))
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().as_u16() < 500,
            "{vendor} answered {} to {:?}",
            response.status(),
            String::from_utf8_lossy(&body)
        );
    }
    daemon.stop().await;
}

/// `allow_from` admits only the vendor's addresses; behind a trusted proxy the sender is the one
/// its `X-Forwarded-For` names, and nobody else's header is believed.
#[tokio::test]
async fn senders_outside_allow_from_get_403_and_are_kept() {
    let daemon = Daemon::start(
        "[server]\ntrusted_proxies = [\"127.0.0.2\"]\n\
         [vendors.jivo]\nallow_from = [\"185.22.64.0/22\", \"2a02:6b8::/32\"]\n\
         [vendors.envybox]\nallow_from = [\"127.0.0.1\"]\n",
    )
    .await;
    let offline = std::fs::read(crate::support::repo().join("tests/fixtures/jivo/offline_message.json")).unwrap();
    let post = |forwarded: Option<&'static str>| {
        let mut request = daemon
            .client
            .post(daemon.url("/hooks/jivo"))
            .header("content-type", "application/json")
            .body(offline.clone());
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        request.send()
    };
    // From 127.0.0.1, which is not a trusted proxy: its X-Forwarded-For is ignored.
    let (status, json) = answer(post(Some("185.22.65.10")).await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (403, Some("source_not_allowed")), "{json}");
    assert!(json["message"].as_str().unwrap().ends_with("this one came from 127.0.0.1"), "{json}");
    let kept = daemon.store().await.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap();
    assert_eq!(
        (kept[0].status, kept[0].reason.as_str(), kept[0].vendor.as_deref()),
        (403, "source_not_allowed", Some("jivo"))
    );

    // Through the trusted proxy (a client bound to 127.0.0.2): the sender is the right-most
    // address it did not add itself; what the client wrote before it does not count.
    let proxy =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let via_proxy = |forwarded: &'static str| {
        proxy
            .post(daemon.url("/hooks/jivo"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", forwarded)
            .body(offline.clone())
            .send()
    };
    assert_eq!(via_proxy("9.9.9.9, 185.22.65.10").await.unwrap().status(), 200);
    let (status, json) = answer(via_proxy("185.22.65.10, 9.9.9.9").await.unwrap()).await;
    assert_eq!(status, 403, "{json}");
    assert!(json["message"].as_str().unwrap().ends_with("came from 9.9.9.9"), "{json}");

    let envybox =
        std::fs::read_to_string(crate::support::repo().join("tests/fixtures/envybox/callback_ordered_1.form")).unwrap();
    assert_eq!(daemon.post_form("envybox", &envybox).await.status(), 200, "127.0.0.1 is in envybox's allow_from");
    daemon.stop().await;
}
