//! Each fixture `tests/fixtures/<vendor>/<case>.{json,form,query,multipart}` is sent to a running
//! daemon (`.query` as a GET; `.multipart` with the boundary `switchboard-fixture`) and the
//! stored event is compared with `<case>.event.json`: vendor, event, kind and canonical fields.
//! Calltracking's body names no event: its fixtures are posted to `/hooks/calltracking/<event>`,
//! the event being the file name's first word (`end_missed.form` → `end`). `UPDATE_GOLDEN=1 cargo test` rewrites the goldens; review the diff.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Daemon, repo};

#[tokio::test]
async fn every_fixture_becomes_its_golden_event() {
    let daemon = Daemon::start("").await;
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    let mut failures = Vec::new();
    for vendor in ["jivo", "envybox", "callkeeper", "calltracking"] {
        let dir = repo().join("tests/fixtures").join(vendor);
        let mut cases: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        cases.sort();
        for case in cases.iter().filter(|p| !p.to_string_lossy().ends_with(".event.json")) {
            let found = post_fixture(&daemon, vendor, case).await;
            let golden = case.with_extension("event.json");
            if update {
                std::fs::write(&golden, serde_json::to_string_pretty(&found).unwrap() + "\n").unwrap();
            }
            let expected: Value = match std::fs::read_to_string(&golden) {
                Ok(text) => serde_json::from_str(&text).unwrap(),
                Err(_) => {
                    failures.push(format!("{}: no golden file (run with UPDATE_GOLDEN=1)", case.display()));
                    continue;
                }
            };
            if found != expected {
                failures.push(format!(
                    "{}:\n  expected {}\n  found    {}",
                    case.display(),
                    serde_json::to_string(&expected).unwrap(),
                    serde_json::to_string(&found).unwrap()
                ));
            }
            checked += 1;
        }
    }
    daemon.stop().await;
    assert!(failures.is_empty(), "{} of {checked} fixtures differ:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 50, "only {checked} fixtures were found");
}

async fn post_fixture(daemon: &Daemon, vendor: &str, case: &Path) -> Value {
    let body = std::fs::read(case).unwrap();
    let stem = case.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let url = match vendor {
        "calltracking" => daemon.url(&format!("/hooks/{vendor}/{}", stem.split('_').next().unwrap_or_default())),
        _ => daemon.url(&format!("/hooks/{vendor}")),
    };
    let request = match case.extension().and_then(|e| e.to_str()) {
        Some("json") => daemon.client.post(&url).header("content-type", "application/json").body(body),
        Some("form") => daemon
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(String::from_utf8(body).unwrap().trim_end().to_owned()),
        Some("query") => daemon.client.get(format!("{url}?{}", String::from_utf8(body).unwrap().trim_end())),
        Some("multipart") => daemon
            .client
            .post(&url)
            .header("content-type", "multipart/form-data; boundary=switchboard-fixture")
            .body(body),
        other => panic!("{}: unknown fixture type {other:?}", case.display()),
    };
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{}: {}", case.display(), response.text().await.unwrap());
    // Every fixture is its own event: a duplicate here means two fixtures share a dedup key
    // and the golden would record the other one's event.
    assert!(
        response.headers().get(switchboard::ingest::DUPLICATE_HEADER).is_none(),
        "{} was taken for a repeat of another fixture; give it its own call id",
        case.display()
    );
    let stored = daemon.stored(&response).await;
    assert_eq!(response.json::<Value>().await.unwrap()["result"], "ok", "{}", case.display());
    json!({
        "vendor": stored.event.vendor,
        "event": stored.event.event,
        "kind": stored.event.kind,
        "fields": stored.event.fields,
    })
}

#[tokio::test]
async fn the_stored_event_keeps_the_whole_payload_and_request() {
    let daemon = Daemon::start("").await;
    let body = std::fs::read_to_string(repo().join("tests/fixtures/envybox/call_info_missed_client_2.form")).unwrap();
    let response = daemon
        .client
        .post(daemon.url("/hooks/envybox?utm=1"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.trim_end().to_owned())
        .send()
        .await
        .unwrap();
    let stored = daemon.stored(&response).await;
    assert_eq!(stored.event.payload["managers_phones"], json!([{"manager_name": "", "phone": "79999999999"}]));
    assert_eq!(stored.event.payload["custom_data"], json!([]));
    assert_eq!(stored.event.payload["place"], "Краснодар, Краснодарский край");
    assert_eq!(stored.raw_body, body.trim_end().as_bytes());
    assert_eq!((stored.request.method.as_str(), stored.request.path.as_str()), ("POST", "/hooks/envybox"));
    assert_eq!(stored.request.query, "utm=1");
    assert!(stored.request.remote_addr.as_deref().is_some_and(|a| a.starts_with("127.0.0.1:")));
    daemon.stop().await;
}
