//! What an operator does when an alert did not arrive, and what the delivery stage does through
//! an outage: hand retries of dead letters, replays, ttl expiry, and the retry schedule.

use std::process::Command;
use std::time::Duration;

use switchboard::store::DeliveryState;

use crate::delivery::eventually;
use crate::support::http_sink::{Answer, HttpSink};
use crate::support::{Daemon, repo};

fn switchboard(daemon: &Daemon, args: &[&str]) -> (bool, String) {
    let (code, text) = switchboard_exit(daemon, args);
    (code == Some(0), text)
}

/// The command's exit code and what it printed.
fn switchboard_exit(daemon: &Daemon, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .arg("--config")
        .arg(daemon.config_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

fn http_route(url: &str, extra: &str) -> String {
    format!(
        r#"
[delivery]
retry_schedule_secs = [1, 2]

[outputs.crm]
type = "http"
url = "{url}"

[[route]]
name = "leads"
kind = "form.submitted"
to = ["crm"]
template = "lead"
{extra}
"#
    )
}

async fn post_lead(daemon: &Daemon, n: u32) -> switchboard::event::EventId {
    let body = std::fs::read_to_string(repo().join("tests/fixtures/envybox/quiz_form_19.form")).unwrap();
    let body = format!("{}&n={n}", body.trim_end());
    let response = daemon.post_form("envybox", &body).await;
    daemon.stored(&response).await.event.id
}

#[tokio::test]
async fn a_dead_letter_is_retried_by_hand_from_the_cli() {
    let mut sink = HttpSink::start(vec![Answer(422, None, "phone is required")]).await;
    let daemon = Daemon::start(&http_route(&sink.url("/leads"), "")).await;
    let event = post_lead(&daemon, 1).await;
    sink.next().await;
    let store = daemon.store().await;
    eventually("dead-lettered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Dead })
        .await;
    let id = store.deliveries(event).await.unwrap()[0].id.to_string();

    let (ok, listed) = switchboard(&daemon, &["deliveries", "--state", "dead"]);
    assert!(ok && listed.contains(&id) && listed.contains("HTTP 422: phone is required"), "{listed}");
    let header = listed.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("STATE") && header.contains("LAST ANSWER"), "{listed}");
    // For scripts: one JSON array.
    let (ok, json) = switchboard(&daemon, &["deliveries", "--state", "dead", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert!(ok && json[0]["id"] == id.as_str() && json[0]["last_error"] == "HTTP 422: phone is required", "{json}");
    let (ok, json) = switchboard(&daemon, &["events", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert!(ok && json[0]["id"] == event.to_string().as_str() && json[0]["kind"] == "form.submitted", "{json}");
    let (ok, text) = switchboard(&daemon, &["retry", &id]);
    assert!(ok && text.contains("requeued"), "{text}");
    sink.next().await;
    eventually("delivered on the hand retry", || async {
        store.deliveries(event).await.unwrap()[0].state == DeliveryState::Delivered
    })
    .await;
    // Exit codes: 1 for what was asked about not being as asked, 2 for a command that cannot run.
    let (code, text) = switchboard_exit(&daemon, &["retry", &id]);
    assert!(code == Some(1) && text.contains("not dead or expired"), "{code:?} {text}");
    let (code, text) = switchboard_exit(&daemon, &["retry", "not-an-id"]);
    assert!(code == Some(2) && text.contains("is not a delivery id"), "{code:?} {text}");
    let (code, text) = switchboard_exit(&daemon, &["retry", "--output", "crm"]);
    assert_eq!(code, Some(2), "a usage mistake: {text}");
    let (ok, text) = switchboard(&daemon, &["retry", "--dead", "--output", "crm"]);
    assert!(ok && text.contains("0 dead deliveries requeued"), "{text}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_dead_letter_is_dismissed_from_the_cli_with_who_and_why() {
    let mut sink = HttpSink::start(vec![Answer(422, None, "phone is required")]).await;
    let daemon = Daemon::start(&http_route(&sink.url("/leads"), "")).await;
    let event = post_lead(&daemon, 2).await;
    sink.next().await;
    let store = daemon.store().await;
    eventually("dead-lettered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Dead })
        .await;
    let id = store.deliveries(event).await.unwrap()[0].id.to_string();

    let (ok, text) = switchboard(&daemon, &["dismiss", &id, "--by", "Ольга", "--note", "a test lead"]);
    assert!(ok && text.contains("dismissed by Ольга"), "{text}");
    let (ok, text) = switchboard(&daemon, &["dismiss", &id]);
    assert!(!ok && text.contains("nothing to dismiss"), "{text}");
    let (ok, listed) = switchboard(&daemon, &["deliveries", "--state", "dismissed"]);
    assert!(
        ok && listed.contains(&id) && listed.contains("dismissed by Ольга") && listed.contains("a test lead"),
        "{listed}"
    );
    let (ok, text) = switchboard(&daemon, &["dismiss", "--dead"]);
    assert!(ok && text.contains("0 dead deliveries dismissed"), "{text}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_stored_event_is_replayed_through_todays_routes() {
    let daemon = Daemon::start("[outputs.log]\ntype = \"log\"\nfile = \"alerts.log\"\n").await;
    let response = daemon
        .client
        .post(daemon.url("/hooks/jivo"))
        .body(r#"{"event_name":"chat_updated","visitor":{"name":"Ира"}}"#)
        .send()
        .await
        .unwrap();
    let event = daemon.stored(&response).await.event;
    assert!(daemon.store().await.deliveries(event.id).await.unwrap().is_empty(), "unrouted at first");
    let (ok, listed) = switchboard(&daemon, &["events", "--vendor", "jivo"]);
    assert!(ok && listed.contains(&event.id.to_string()) && listed.contains("unrouted"), "{listed}");

    std::fs::write(
        daemon.config_path(),
        format!("{}[outputs.log]\ntype = \"log\"\nfile = \"alerts.log\"\n[[route]]\nname = \"chats\"\nkind = \"chat.*\"\nto = [\"log\"]\ntemplate = \"generic\"\n", Daemon::config_prelude()),
    )
    .unwrap();
    let (ok, text) = switchboard(&daemon, &["replay", &event.id.to_string()]);
    assert!(ok && text.contains("1 new deliveries (chats → log)"), "{text}");
    let log = daemon.dir().join("alerts.log");
    eventually("the replayed event is sent", || async {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("chat_updated"))
    })
    .await;
    assert_eq!(daemon.store().await.event(event.id).await.unwrap().unwrap().routes, ["chats"]);
    // Again: it has arrived, so nothing goes unless asked for.
    eventually("the replay is delivered", || async {
        daemon.store().await.deliveries(event.id).await.unwrap()[0].state == DeliveryState::Delivered
    })
    .await;
    let (ok, text) = switchboard(&daemon, &["replay", &event.id.to_string()]);
    assert!(ok && text.contains("nothing to send"), "{text}");
    let (ok, text) = switchboard(&daemon, &["replay", &event.id.to_string(), "--output", "log"]);
    assert!(ok && text.contains("1 new deliveries (chats → log)"), "{text}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_delivery_past_its_ttl_is_expired_not_sent_late() {
    // Down for longer than the route's ttl: the first retry (1 s ± 20%) may still fall inside it.
    let mut sink = HttpSink::start(vec![Answer(503, None, "down"), Answer(503, None, "down")]).await;
    let daemon = Daemon::start(&http_route(&sink.url("/leads"), "ttl_secs = 1")).await;
    let event = post_lead(&daemon, 2).await;
    sink.next().await;
    let store = daemon.store().await;
    eventually("expired", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Expired }).await;
    let delivery = &store.deliveries(event).await.unwrap()[0];
    let outcomes: Vec<String> = store.attempts(delivery.id).await.unwrap().into_iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes.last().map(String::as_str), Some("expired"), "{outcomes:?}");
    assert!(outcomes[..outcomes.len() - 1].iter().all(|o| o == "retry"), "{outcomes:?}");
    // One request per attempt before the expiry (the first was read above), then none.
    for _ in 1..outcomes.len() - 1 {
        sink.next().await;
    }
    assert!(tokio::time::timeout(Duration::from_millis(500), sink.next()).await.is_err(), "nothing was sent late");
    daemon.stop().await;
}

#[tokio::test]
async fn after_an_outage_everything_arrives_and_retries_follow_the_schedule_until_it_answers() {
    // The receiver answers 503 twice, then is gone (connections refused), then comes back.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let flaky = HttpSink::start(vec![]).await;
    let daemon = Daemon::start(&http_route(&format!("http://127.0.0.1:{port}/leads"), "")).await;
    drop(flaky);
    let mut events = Vec::new();
    for n in 0..5 {
        events.push(post_lead(&daemon, 100 + n).await);
    }
    // Down for the first two attempts of each (1 s, then 2 s later).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut sink =
        HttpSink::start_on(port, vec![Answer(503, None, "warming up"), Answer(503, None, "warming up")]).await;
    let store = daemon.store().await;
    for event in &events {
        eventually("delivered after the outage", || async {
            store.deliveries(*event).await.unwrap()[0].state == DeliveryState::Delivered
        })
        .await;
    }
    let mut received = 0;
    while tokio::time::timeout(Duration::from_millis(200), sink.next()).await.is_ok() {
        received += 1;
    }
    assert_eq!(received, events.len() + 2, "every lead arrived, after the two 503s");

    for event in &events {
        let attempts = store.attempts(store.deliveries(*event).await.unwrap()[0].id).await.unwrap();
        assert!(attempts.len() >= 3, "{attempts:?}");
        assert_eq!(attempts.last().unwrap().outcome, "delivered");
        assert!(attempts[..attempts.len() - 1].iter().all(|a| a.outcome == "retry"));
        assert_eq!(attempts[0].reason.as_deref(), Some("network"), "the receiver refused connections");
        // Waits follow the schedule (1 s, then 2 s repeating) while the receiver is down: never
        // sooner than the step less its 20% jitter; later only by the worker's polling and a busy
        // test machine. The delivering attempt is exempt: once the receiver answers, every
        // delivery still waiting for it is pulled forward.
        let failed = &attempts[..attempts.len() - 1];
        for (index, pair) in failed.windows(2).enumerate() {
            let gap = (pair[1].started_at - pair[0].started_at).num_milliseconds();
            let step = if index == 0 { 1000 } else { 2000 };
            assert!(
                gap >= step * 8 / 10 - 50 && gap <= step * 12 / 10 + 3000,
                "attempt gap {gap} ms for a {step} ms step: {attempts:?}"
            );
        }
    }
    daemon.stop().await;
}

/// One access line a webhook at the default level, the secret in its path masked; and a
/// `RUST_LOG=debug` that lifts Switchboard's own lines leaves the SQL driver's per-query lines
/// out.
#[tokio::test]
async fn each_webhook_gets_an_access_line_without_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"\"\n[paths]\nplugins = \"{}\"\n\
             [vendors.jivo]\nsecret = \"s3cret-in-path\"\n[outputs.log]\ntype = \"log\"\n\
             [[route]]\nname = \"all\"\nto = [\"log\"]\ntemplate = \"offline_message\"\n",
            repo().join("plugins").display()
        ),
    )
    .unwrap();
    for (run, rust_log) in [None, Some("debug")].into_iter().enumerate() {
        let log = dir.path().join("stderr.log");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.args(["run", "--config"]).arg(dir.path().join("config.toml")).env_remove("RUST_LOG");
        if let Some(level) = rust_log {
            command.env("RUST_LOG", level);
        }
        let child =
            command.stdout(std::process::Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        let _daemon = crate::support::KillOnDrop(child);
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/hooks/jivo/s3cret-in-path");
        // A new message each run: the same one again would be a duplicate, and not sent.
        let body = format!(r#"{{"event_name":"offline_message","offline_message_id":{run},"message":"hi"}}"#);
        eventually("the daemon answers", || async {
            client.post(&url).body(body.clone()).send().await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        eventually("the access line is written", || async {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("/hooks/jivo/***"))
        })
        .await;
        let text = std::fs::read_to_string(&log).unwrap();
        let line = text.lines().find(|line| line.contains("/hooks/jivo/***")).unwrap();
        assert!(line.contains("status=200") && line.contains("vendor=jivo") && line.contains("POST"), "{line}");
        assert!(!text.contains("s3cret-in-path"), "the secret never reaches the log:\n{text}");
        assert!(!text.contains("sqlx::query"), "no per-query lines with RUST_LOG={rust_log:?}:\n{text}");
        // The log output: the alert, several lines long, is one log line.
        eventually("the alert is logged", || async {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("Alert."))
        })
        .await;
        let text = std::fs::read_to_string(&log).unwrap();
        let alert = text.lines().find(|line| line.contains("Alert.")).unwrap();
        assert!(alert.contains(" | ") && alert.contains("hi"), "{alert}");
    }
}

/// Under systemd with `Type=notify`: the daemon says it is ready once it serves, beats the
/// watchdog while its store answers, and says it is stopping on SIGTERM — over the datagram
/// socket systemd names in `NOTIFY_SOCKET`, here one the test listens on.
#[cfg(unix)]
#[tokio::test]
async fn the_service_manager_hears_ready_heartbeats_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"\"\n[paths]\nplugins = \"{}\"\n",
            repo().join("plugins").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--config"])
        .arg(dir.path().join("config.toml"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _daemon = crate::support::KillOnDrop(child);
    let next = || async {
        let mut buffer = vec![0u8; 4096];
        let len = tokio::time::timeout(Duration::from_secs(15), socket.recv(&mut buffer))
            .await
            .expect("the daemon tells the service manager within 15 s")
            .unwrap();
        String::from_utf8_lossy(&buffer[..len]).into_owned()
    };
    let mut said = Vec::new();
    while !said.iter().any(|m: &String| m.contains("READY=1")) {
        said.push(next().await);
    }
    let ready = said.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(ready.contains(&format!("STATUS=serving webhooks on 127.0.0.1:{port}")), "{ready}");
    // It serves by then.
    let answer = reqwest::get(format!("http://127.0.0.1:{port}/hooks/jivo")).await.unwrap();
    assert_eq!(answer.status(), 405, "a GET to a POST hook: the listener answers");
    // Heartbeats at half the 400 ms interval.
    let mut beats = 0;
    while beats < 2 {
        if next().await.contains("WATCHDOG=1") {
            beats += 1;
        }
    }
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    loop {
        if next().await.contains("STOPPING=1") {
            break;
        }
    }
}

/// With `--url`, the commands ask the running daemon's admin API, with the admin token from
/// `SWITCHBOARD_ADMIN_TOKEN`, and never open the database (here there is none where the
/// configuration they are given points).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_talk_to_the_running_daemon_given_its_url() {
    let mut sink = HttpSink::start(vec![Answer(422, None, "phone is required")]).await;
    let token = "admin-t0ken-for-the-cli";
    let daemon =
        Daemon::start(&format!("[server]\nadmin_token = \"{token}\"\n{}", http_route(&sink.url("/leads"), ""))).await;
    let event = post_lead(&daemon, 3).await;
    sink.next().await;
    let store = daemon.store().await;
    eventually("dead-lettered", || async { store.deliveries(event).await.unwrap()[0].state == DeliveryState::Dead })
        .await;
    let id = store.deliveries(event).await.unwrap()[0].id.to_string();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("config.toml"), "").unwrap();
    let url = daemon.admin_url("");
    let cli = |args: &[&str], with_token: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.args(args).arg("--config").arg(elsewhere.path().join("config.toml")).env("SWITCHBOARD_URL", &url);
        if with_token {
            command.env("SWITCHBOARD_ADMIN_TOKEN", token);
        } else {
            command.env_remove("SWITCHBOARD_ADMIN_TOKEN");
        }
        let output = command.output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    };

    let (code, text) = cli(&["deliveries", "--state", "dead"], false);
    assert!(code == Some(2) && text.contains("refused the admin token"), "{code:?} {text}");
    let (code, listed) = cli(&["deliveries", "--state", "dead"], true);
    assert!(code == Some(0) && listed.contains(&id) && listed.contains("phone is required"), "{listed}");
    let (code, json) = cli(&["events", "-o", "json"], true);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert!(code == Some(0) && json[0]["id"] == event.to_string().as_str(), "{json}");
    let (code, text) = cli(&["retry", &id], true);
    assert!(code == Some(0) && text.contains("requeued"), "{text}");
    sink.next().await;
    eventually("delivered on the retry", || async {
        store.deliveries(event).await.unwrap()[0].state == DeliveryState::Delivered
    })
    .await;
    let (code, text) = cli(&["dismiss", &id], true);
    assert!(code == Some(1) && text.contains("nothing to dismiss"), "{code:?} {text}");
    let (code, text) = cli(&["replay", &event.to_string()], true);
    assert!(code == Some(0) && text.contains("nothing to send"), "{text}");
    let (code, text) = cli(&["replay", &event.to_string(), "--all"], true);
    assert!(code == Some(0) && text.contains("1 new deliveries (leads → crm)"), "{text}");
    sink.next().await;
    let (code, text) = cli(&["rejected"], true);
    assert!(code == Some(0) && text.contains("no refused requests"), "{text}");
    assert!(!elsewhere.path().join("data").exists(), "no database was opened or made");
    drop(sink);
    daemon.stop().await;
    let (code, text) = cli(&["events"], true);
    assert!(code == Some(2) && text.contains("nothing answers at"), "{code:?} {text}");
}
