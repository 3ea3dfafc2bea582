//! No lead lost at intake: every sender's format is accepted, stored and routed to a real HTTP
//! receiver — Calltracking's own format (its event in the address), webhooks that name no event,
//! multipart bodies with a file part.

use serde_json::Value;

use crate::support::http_sink::HttpSink;
use crate::support::{Daemon, copy_of_plugins, repo, switchboard_cli};

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

    // The Status page gives the two addresses to paste; its test event posts to the *end* one.
    let status = reqwest::get(daemon.admin_url("/status")).await.unwrap().text().await.unwrap();
    assert!(status.contains("/hooks/calltracking/&lt;secret&gt;</summary>"), "{status}");
    assert!(status.contains("ending in <code>/end</code>, <code>/start</code>"), "{status}");
    let sample = dashboard_client()
        .post(daemon.admin_url("/test-event"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("sample", "calltracking/0")])
        .send()
        .await
        .unwrap();
    let location = sample.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/events/"), "{location}");
    assert_eq!(delivered(&mut sink).await["event"], "call.missed", "the sample is a missed tracking call");

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
    assert_eq!(
        daemon.store().await.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap().len(),
        1
    );
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

/// A reqwest client that does not follow redirects, posting as the dashboard's own pages do.
fn dashboard_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Presses "Process again" for rejection `id`; returns where the dashboard sends the browser.
async fn process_again(daemon: &Daemon, id: ulid::Ulid) -> String {
    let url = daemon.admin_url(&format!("/rejected/{id}/reprocess"));
    let response = dashboard_client().post(url).header("sec-fetch-site", "same-origin").send().await.unwrap();
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// A request refused for a reason the operator can fix is processed again once it is fixed:
/// an unknown vendor, whose plugin is then added. Refused again, it says why and stays kept;
/// refused for its secret, it is never processed again.
#[tokio::test]
async fn a_refused_request_is_processed_again_once_its_cause_is_fixed() {
    let mut sink = HttpSink::start(vec![]).await;
    let plugins = copy_of_plugins(|text| text);
    let daemon = Daemon::start_with_plugins(plugins.path(), &config(&sink)).await;
    let lead = r#"{"type": "lead", "name": "Ирина", "phone": "+79161112233"}"#;
    let refused = daemon.client.post(daemon.url("/hooks/acme")).body(lead).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    let bad_secret = daemon.client.post(daemon.url("/hooks/calltracking/wrong/end")).body(lead).send().await.unwrap();
    assert_eq!(bad_secret.status(), 401);
    let store = daemon.store().await;
    let kept = store.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap();
    let (secret_refusal, acme) = (&kept[0], &kept[1]);
    assert_eq!((acme.reason.as_str(), acme.raw_body.as_ref()), ("unknown_vendor", lead.as_bytes()));

    // Not fixed yet: refused again, for the same reason, and still kept.
    let back = process_again(&daemon, acme.id).await;
    assert!(back.starts_with("/rejected?notice=") && back.contains("refused%20again"), "{back}");
    let again = store.rejection(acme.id).await.unwrap().unwrap();
    assert!(again.reprocessed.is_some_and(|r| r.event.is_none()), "{again:?}");
    assert_eq!(again.reason, "unknown_vendor");

    // The plugin is added; the kept request becomes an event and is routed like a webhook.
    let plugin = "event = { field = \"type\" }\n[events]\nlead = { kind = \"form.submitted\" }\n[fields]\n\
                  \"contact.name\" = [\"name\"]\n\"contact.phone\" = [\"phone\"]\n";
    std::fs::write(plugins.path().join("acme.toml"), plugin).unwrap();
    let reload = daemon.client.post(daemon.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(reload.status(), 200, "{:?}", reload.text().await);
    let back = process_again(&daemon, acme.id).await;
    let event_id: switchboard::event::EventId =
        back.trim_start_matches("/events/").split('?').next().unwrap().parse().unwrap();
    let stored = store.event(event_id).await.unwrap().unwrap();
    assert_eq!((stored.event.vendor.as_str(), stored.event.kind.as_str()), ("acme", "form.submitted"));
    assert_eq!(stored.event.received_at, acme.received_at, "it keeps the time it first arrived");
    let delivered = delivered(&mut sink).await;
    assert_eq!(
        (delivered["kind"].as_str(), delivered["contact"]["name"].as_str()),
        (Some("form.submitted"), Some("Ирина"))
    );
    let processed = store.rejection(acme.id).await.unwrap().unwrap();
    assert_eq!(processed.reprocessed.and_then(|r| r.event), Some(event_id), "the request records what it became");
    let page = reqwest::get(daemon.admin_url("/rejected")).await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("/events/{event_id}")), "{page}");

    // Refused for its secret: no button, and the action refuses it.
    assert!(!page.contains(&format!("/rejected/{}/reprocess", secret_refusal.id)));
    let back = process_again(&daemon, secret_refusal.id).await;
    assert!(back.contains("cannot%20be%20processed%20again"), "{back}");
    assert!(store.rejection(secret_refusal.id).await.unwrap().unwrap().reprocessed.is_none());
    daemon.stop().await;
}

/// The same from the command line, beside the running daemon: `rejected` lists the refusal with
/// its id, `reprocess` turns it into an event once the plugin exists, and a second time says it
/// already did (exit 1).
#[tokio::test]
async fn the_command_line_lists_and_processes_refused_requests_again() {
    let plugins = copy_of_plugins(|text| text);
    let daemon = Daemon::start_with_plugins(plugins.path(), "").await;
    let refused = daemon.client.post(daemon.url("/hooks/acme")).body(r#"{"type": "lead"}"#).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    let config = daemon.config_path();
    std::fs::write(
        plugins.path().join("acme.toml"),
        "event = { field = \"type\" }\n[events]\nlead = { kind = \"form.submitted\" }\n",
    )
    .unwrap();

    let (code, listed) = switchboard_cli(&config, &["rejected"]).await;
    assert_eq!(code, Some(0), "{listed}");
    assert!(listed.contains("unknown_vendor") && listed.contains("switchboard reprocess can retry it"), "{listed}");
    // Under the header row, the newest first.
    let id = listed.lines().nth(1).and_then(|line| line.split_whitespace().next()).unwrap().to_owned();
    let (code, done) = switchboard_cli(&config, &["reprocess", &id]).await;
    assert_eq!(code, Some(0), "{done}");
    assert!(done.contains(&format!("request {id} processed again: event ")), "{done}");
    let (code, again) = switchboard_cli(&config, &["reprocess", &id]).await;
    assert_eq!(code, Some(1), "{again}");
    assert!(again.contains("it was processed again already and became an event"), "{again}");

    let query = switchboard::store::EventQuery { limit: 10, ..Default::default() };
    let events = daemon.store().await.events(&query).await.unwrap();
    assert_eq!(events.iter().map(|e| e.event.kind.as_str()).collect::<Vec<_>>(), ["form.submitted"]);
    daemon.stop().await;
}

/// The main case: the plugin could not read a request whose secret matched (here a form posted
/// to a JSON-only plugin); once the plugin is fixed, the request is processed again, its whole
/// body having been kept. A request refused before its secret was checked, for a vendor that now
/// has one, is not: it could be anyone's.
#[tokio::test]
async fn a_request_the_plugin_could_not_read_is_processed_again_after_the_fix() {
    let mut sink = HttpSink::start(vec![]).await;
    let plugins = copy_of_plugins(|text| text);
    let acme = "format = \"json\"\nevent = { field = \"type\" }\n[events]\nlead = { kind = \"form.submitted\" }\n\
                [fields]\n\"contact.name\" = [\"name\"]\n";
    std::fs::write(plugins.path().join("acme.toml"), acme).unwrap();
    let config = format!("{}\n[vendors.acme]\nsecret = \"acme-s3cret\"\n", config(&sink));
    let daemon = Daemon::start_with_plugins(plugins.path(), &config).await;
    let form = format!("type=lead&name=%D0%98%D1%80%D0%B8%D0%BD%D0%B0&note={}", "x".repeat(70_000));
    let refused = daemon
        .client
        .post(daemon.url("/hooks/acme/acme-s3cret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let stranger = daemon.client.post(daemon.url("/hooks/crm/x")).body("type=lead").send().await.unwrap();
    assert_eq!(stranger.status(), 404);
    // An event in the path of a vendor that does not read it there.
    let extra = daemon.client.post(daemon.url("/hooks/jivo/a/b")).body("{}").send().await.unwrap();
    assert_eq!(extra.status(), 404);
    assert_eq!(extra.json::<Value>().await.unwrap()["error"], "event_not_in_path");
    let store = daemon.store().await;
    let kept = store.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap();
    let unreadable = kept.iter().find(|r| r.vendor.as_deref() == Some("acme")).unwrap();
    assert_eq!(unreadable.request.path, "/hooks/acme/***");
    assert_eq!(unreadable.raw_body.len(), form.len(), "a proven sender's body is kept whole");

    std::fs::write(plugins.path().join("acme.toml"), acme.replace("format = \"json\"", "format = \"auto\"")).unwrap();
    let crm = "event = { field = \"type\" }\n[events]\nlead = { kind = \"form.submitted\" }\n";
    std::fs::write(plugins.path().join("crm.toml"), crm).unwrap();
    let with_secret = format!("{config}\n[vendors.crm]\nsecret = \"crm-s3cret\"\n");
    std::fs::write(daemon.config_path(), format!("[paths]\nplugins = \"{}\"\n{with_secret}", plugins.path().display()))
        .unwrap();
    let reload = daemon.client.post(daemon.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(reload.status(), 200, "{:?}", reload.text().await);

    let back = process_again(&daemon, unreadable.id).await;
    assert!(back.starts_with("/events/"), "{back}");
    let delivered = delivered(&mut sink).await;
    assert_eq!(delivered["contact"]["name"], "Ирина");

    let forged = kept.iter().find(|r| r.vendor.as_deref() == Some("crm")).unwrap();
    let back = process_again(&daemon, forged.id).await;
    assert!(back.contains("now%20requires%20one"), "{back}");
    assert!(store.rejection(forged.id).await.unwrap().unwrap().reprocessed.is_none());
    daemon.stop().await;
}
