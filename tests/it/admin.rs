//! The admin listener as a monitoring system and an operator see it: `/metrics` after known
//! traffic, `/readyz` when the database goes away and comes back, the admin token, and logs
//! that never print a secret.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::delivery::eventually;
use crate::support::fake_telegram::{FakeTelegram, Reply};
use crate::support::http_sink::{Answer, HttpSink};
use crate::support::{Daemon, KillOnDrop, PgSchema, repo};

fn fixture(path: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures").join(path)).unwrap().trim_end().to_owned()
}

/// The value of one series in Prometheus text, if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic() {
    // Output and route names of this test alone: the recorder is shared by every test in the
    // process, so only these series have exact expected values.
    let sink = HttpSink::start(vec![Answer(422, None, "rejected by the CRM")]).await;
    let daemon = Daemon::start(&format!(
        r#"
[outputs.metrics_probe]
type = "http"
url = "{url}"

[[route]]
name = "metrics probe"
vendor = "envybox"
to = ["metrics_probe"]
template = "generic"
"#,
        url = sink.url("/in")
    ))
    .await;
    let metrics =
        || async { daemon.client.get(daemon.admin_url("/metrics")).send().await.unwrap().text().await.unwrap() };
    let before = metrics().await;
    // Before any traffic: the series alerts look for are there, at zero, for this daemon's
    // output; the build and when its configuration was loaded.
    for outcome in ["delivered", "retry", "dead"] {
        let series = format!(
            r#"switchboard_delivery_attempts_total{{output="metrics_probe",output_type="http",outcome="{outcome}"}}"#
        );
        assert_eq!(sample(&before, &series), Some(0.0), "{series} in\n{before}");
    }
    assert!(
        sample(&before, r#"switchboard_webhooks_received_total{vendor="calltracking",outcome="stored"}"#).is_some()
    );
    let build = format!(r#"switchboard_build_info{{version="{}",revision="#, env!("CARGO_PKG_VERSION"));
    assert!(before.lines().any(|line| line.starts_with(&build) && line.ends_with(" 1")), "{before}");
    let loaded = sample(&before, "switchboard_config_last_reload_success_timestamp_seconds").unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - loaded).abs() < 120.0, "loaded {loaded}, now {now}");
    assert!(sample(&before, "switchboard_config_hash").is_some_and(|hash| hash > 0.0), "{before}");
    // The process, as every Prometheus client names it.
    assert!(sample(&before, "process_resident_memory_bytes").is_some_and(|rss| rss > 1e6), "{before}");
    assert!(sample(&before, "process_open_fds").is_some_and(|fds| fds > 0.0), "{before}");
    let stored = |text: &str| sample(text, r#"switchboard_webhooks_received_total{vendor="envybox",outcome="stored"}"#);
    let answered = |text: &str, status: &str| {
        let series =
            format!(r#"switchboard_ingest_request_duration_seconds_count{{vendor="envybox",status="{status}"}}"#);
        sample(text, &series).unwrap_or(0.0)
    };

    let first = fixture("envybox/callback_ordered_1.form");
    let second = fixture("envybox/call_info_missed_client_2.form");
    daemon.post_form("envybox", &first).await;
    daemon.post_form("envybox", &first).await; // the vendor retrying: a duplicate
    daemon.post_form("envybox", &second).await;
    let refused = daemon.post_form("envybox", "").await;
    assert_eq!(refused.status(), 400);
    let stray = daemon.client.post(daemon.url("/hooks/no-such-vendor-x1")).body("a=1").send().await.unwrap();
    assert_eq!(stray.status(), 404);

    eventually("both deliveries attempted", || async {
        let text = metrics().await;
        sample(
            &text,
            r#"switchboard_delivery_attempts_total{output="metrics_probe",output_type="http",outcome="delivered"}"#,
        ) == Some(1.0)
            && sample(
                &text,
                r#"switchboard_delivery_attempts_total{output="metrics_probe",output_type="http",outcome="dead"}"#,
            ) == Some(1.0)
    })
    .await;
    let after = metrics().await;
    assert!(stored(&after).unwrap() - stored(&before).unwrap_or(0.0) >= 2.0, "{after}");
    assert!(after.contains(r#"switchboard_webhooks_received_total{vendor="envybox",outcome="duplicate"}"#), "{after}");
    assert!(after.contains(r#"switchboard_webhooks_received_total{vendor="envybox",outcome="empty_body"}"#), "{after}");
    assert!(after.contains(r#"switchboard_events_stored_total{vendor="envybox",kind="call.missed"}"#));
    assert_eq!(sample(&after, r#"switchboard_routes_matched_total{route="metrics probe"}"#), Some(2.0), "{after}");
    assert_eq!(
        sample(
            &after,
            r#"switchboard_delivery_failures_total{output="metrics_probe",output_type="http",reason="client_error"}"#
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(sample(&after, r#"switchboard_delivery_duration_seconds_count{output="metrics_probe"}"#), Some(2.0));
    // How long webhooks took to answer, by vendor and status: three 200s and a 400 here.
    assert!(answered(&after, "200") - answered(&before, "200") >= 3.0, "{after}");
    assert!(answered(&after, "400") - answered(&before, "400") >= 1.0, "{after}");
    assert!(
        after.contains(
            r#"switchboard_ingest_request_duration_seconds_bucket{vendor="envybox",status="200",le="0.0005"}"#
        )
    );
    // A path no plugin serves is not a series of its own.
    assert!(!after.contains("no-such-vendor-x1"), "{after}");
    assert!(after.contains(r#"switchboard_ingest_request_duration_seconds_count{vendor="unknown",status="404"}"#));
    assert!(after.contains("# TYPE switchboard_delivery_duration_seconds histogram"));
    // The store's commits: each of this daemon's four webhooks (two events, a repeat, a refusal)
    // was answered after its commit and before the next was sent, so they took four commits at
    // least — more with the delivery bookkeeping and other tests' daemons meanwhile.
    let commits = |text: &str| sample(text, "switchboard_store_commit_writes_count").unwrap_or(0.0);
    let written = |text: &str| sample(text, "switchboard_store_commit_writes_sum").unwrap_or(0.0);
    assert!(commits(&after) - commits(&before) >= 4.0, "{after}");
    assert!(written(&after) - written(&before) >= 4.0, "four webhooks, each a write: {after}");
    assert!(written(&after) >= commits(&after), "a commit holds at least one write: {after}");
    // Buckets sized for what they measure: sub-millisecond commits, batches up to 512.
    assert!(after.contains(r#"switchboard_store_commit_duration_seconds_bucket{le="0.0005"}"#), "{after}");
    assert!(after.contains(r#"switchboard_store_commit_writes_bucket{le="512"}"#), "{after}");
    // Queue gauges are read from this daemon's store at the scrape (another test's scrape
    // may set them in between, so look until one of ours shows them).
    eventually("the queue gauges show the dead letter", || async {
        let text = metrics().await;
        sample(&text, "switchboard_dead_letters") == Some(1.0)
            && sample(&text, "switchboard_queue_depth") == Some(0.0)
            && sample(&text, "switchboard_queue_oldest_age_seconds") == Some(0.0)
    })
    .await;
    daemon.stop().await;
}

/// A TCP relay to PostgreSQL that the test can cut and restore: the database "goes away".
struct Relay {
    port: u16,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                held.lock().unwrap().push(relay);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { port, tasks }
    }

    /// Closes the listener and every relayed connection.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_database_is_unreachable() {
    let Some(schema) = PgSchema::fresh("sb_ready", "the readiness test").await else { return };
    let schema = schema.name;
    let relay = Relay::start(0).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/test?options=-c%20search_path%3D{schema}", relay.port);
    let daemon = Daemon::start(&format!("[storage]\nurl = \"{url}\"\n")).await;
    let ready = || async {
        let response = daemon.client.get(daemon.admin_url("/readyz")).send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap())
    };
    eventually("ready on a reachable database", || async { ready().await.0 == 200 }).await;

    relay.cut();
    let started = std::time::Instant::now();
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_ne!(body["store"], "ok");
    assert!(started.elapsed() < Duration::from_secs(5), "a probe gets its answer in time");
    assert_eq!(
        daemon.client.get(daemon.admin_url("/healthz")).send().await.unwrap().status(),
        200,
        "alive all the same"
    );

    let _back = Relay::start(relay.port).await;
    eventually("ready again once the database is back", || async { ready().await.0 == 200 }).await;
    daemon.stop().await;
}

#[tokio::test]
async fn the_admin_token_is_asked_for_as_bearer_or_basic_auth() {
    let daemon = Daemon::start("[server]\nadmin_token = \"let-me-in\"\n").await;
    let bare = daemon.client.get(daemon.admin_url("/")).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    assert!(bare.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic "), "so a browser asks");
    let bearer = daemon.client.get(daemon.admin_url("/metrics")).bearer_auth("let-me-in").send().await.unwrap();
    assert_eq!(bearer.status(), 200);
    let basic =
        daemon.client.get(daemon.admin_url("/status")).basic_auth("ops", Some("let-me-in")).send().await.unwrap();
    assert_eq!(basic.status(), 200);
    let wrong = daemon.client.get(daemon.admin_url("/status")).basic_auth("ops", Some("guess")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    // A form on another site cannot make the operator's browser act.
    let forged = daemon
        .client
        .post(daemon.admin_url("/dead/retry"))
        .basic_auth("ops", Some("let-me-in"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    daemon.stop().await;
}

/// Every secret the configuration holds, or a sender presents, stays out of the logs: the
/// binary at debug level, JSON format, with failing outputs that put their errors in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_print_secrets() {
    const SECRETS: &[&str] = &[
        "vendor-secret-7Q2",
        "query-token-9Z4",
        "wrong-guess-5K1",
        "admin-token-3M8",
        "123456:TELEGRAM-bot-token-X1",
        "smtp-password-P6",
        "crm-bearer-H3",
        "whsec_c2lnbmluZy1zZWNyZXQtUzk=",
    ];
    let telegram = FakeTelegram::start(vec![Reply::ServerError, Reply::Blocked]).await;
    let crm = HttpSink::start(vec![Answer(500, None, "upstream down")]).await;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hooks = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{prelude}
[server]
listen = "127.0.0.1:{hooks}"
admin_listen = "127.0.0.1:{admin}"
admin_token = "{admin_token}"

[vendors.envybox]
secret = "{vendor_secret}"
[vendors.jivo]
secret = "{query_token}"

[delivery]
retry_schedule_secs = [1]

[outputs.tg]
type = "telegram"
token = "{bot_token}"
chat_id = 42
api_url = "{api_url}"
min_interval_ms = 10

[outputs.mail]
type = "email"
host = "127.0.0.1"
port = {closed_port}
security = "none"
username = "ops"
password = "{smtp_password}"
from = "bot@example.com"
to = ["sales@example.com"]

[outputs.crm]
type = "http"
url = "{crm_url}"
headers = {{ Authorization = "Bearer {crm_bearer}" }}
signing_secret = "{signing}"

[[route]]
name = "everything"
to = ["tg", "mail", "crm"]
template = "generic"
"#,
        prelude = Daemon::config_prelude(),
        admin_token = SECRETS[3],
        vendor_secret = SECRETS[0],
        query_token = SECRETS[1],
        bot_token = SECRETS[4],
        api_url = telegram.api_url(),
        smtp_password = SECRETS[5],
        crm_url = crm.url("/in"),
        crm_bearer = SECRETS[6],
        signing = SECRETS[7],
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let log_path = dir.path().join("stdout.log");
    let log_path_err = dir.path().join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(dir.path().join("config.toml"))
        .env("RUST_LOG", "debug")
        // A file, not a pipe: debug logging would fill a pipe nobody reads until the end.
        .stdout(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&log_path_err).unwrap()))
        .spawn()
        .unwrap();
    let daemon = KillOnDrop(child);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{hooks}");
    let mut daemon = daemon;
    let started = eventually_or_exit(&mut daemon, &log_path_err, || async {
        client.get(format!("http://127.0.0.1:{admin}/healthz")).send().await.is_ok()
    });
    started.await;

    let form = fixture("envybox/callback_ordered_1.form");
    let post = |path: String, body: String, kind: &'static str| {
        let client = client.clone();
        async move { client.post(path).header("content-type", kind).body(body).send().await.unwrap().status().as_u16() }
    };
    let form_type = "application/x-www-form-urlencoded";
    assert_eq!(post(format!("{base}/hooks/envybox/{}", SECRETS[0]), form.clone(), form_type).await, 200);
    assert_eq!(post(format!("{base}/hooks/envybox/{}", SECRETS[2]), form.clone(), form_type).await, 401);
    let jivo = fixture("jivo/offline_message.json");
    assert_eq!(post(format!("{base}/hooks/jivo?token={}", SECRETS[1]), jivo, "application/json").await, 200);
    let admin_url = format!("http://127.0.0.1:{admin}");
    let with_token = client.get(format!("{admin_url}/status")).bearer_auth(SECRETS[3]).send().await.unwrap();
    assert_eq!(with_token.status(), 200);
    assert_eq!(client.get(format!("{admin_url}/status")).bearer_auth(SECRETS[2]).send().await.unwrap().status(), 401);
    // Let every output fail at least once (and Telegram twice) so their errors are logged.
    let dead = || async {
        let text =
            client.get(format!("{admin_url}/metrics")).bearer_auth(SECRETS[3]).send().await.unwrap().text().await;
        text.unwrap().lines().any(|l| {
            l.starts_with(
                "switchboard_delivery_attempts_total{output=\"tg\",output_type=\"telegram\",outcome=\"dead\"}",
            )
        })
    };
    eventually("Telegram's second answer dead-letters it", dead).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    drop(daemon);
    let log = std::fs::read_to_string(&log_path).unwrap() + &std::fs::read_to_string(&log_path_err).unwrap();
    assert!(log.lines().count() > 20, "the daemon logged: {log}");
    for secret in SECRETS {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
    // The key of the signing secret, once decoded, is not printed either.
    assert!(!log.contains("signing-secret-S9"));

    // JSON lines, with the event id on the request span and on every delivery attempt.
    let lines: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(lines.len() * 10 >= log.lines().count() * 9, "the log is JSON lines");
    let attempts: Vec<&Value> = lines.iter().filter(|l| l["span"]["name"] == "deliver").collect();
    assert!(!attempts.is_empty() && attempts.iter().all(|l| l["span"]["event_id"].is_string()), "{attempts:?}");
    assert!(attempts.iter().all(|l| l["span"]["delivery_id"].is_string()));
    let stored = lines.iter().find(|l| l["span"]["name"] == "ingest" && l["message"] == "Event stored.");
    assert!(stored.is_some_and(|l| l["span"]["event_id"].is_string()), "an ingest line carries the event id");
}

/// Waits (up to 20 s) for `ready`, failing at once with the daemon's output if it exits.
async fn eventually_or_exit<F, Fut>(daemon: &mut KillOnDrop, log: &std::path::Path, ready: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !ready().await {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            panic!("the daemon exited ({status}); its log: {}", log.display());
        }
        assert!(std::time::Instant::now() < deadline, "the daemon did not start within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Container and Kubernetes probes carry no token: with `open_probes` they are answered, and
/// nothing else is. `switchboard health` is the probe a distroless image can run.
#[tokio::test]
async fn probes_can_be_left_open_and_health_says_whether_the_daemon_is_ready() {
    let daemon = Daemon::start("[server]\nadmin_token = \"let-me-in\"\nopen_probes = true\n").await;
    for open in ["/healthz", "/readyz"] {
        assert_eq!(daemon.client.get(daemon.admin_url(open)).send().await.unwrap().status(), 200, "{open}");
    }
    for closed in ["/metrics", "/status", "/-/status"] {
        assert_eq!(daemon.client.get(daemon.admin_url(closed)).send().await.unwrap().status(), 401, "{closed}");
    }
    let url = daemon.admin_url("/readyz");
    let (code, said) = crate::support::switchboard_cli(&daemon.config_path(), &["health", "--url", &url]).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("200"), "{said}");
    // The daemon's folder goes with it: the check runs on a copy of its configuration.
    let kept = tempfile::tempdir().unwrap();
    let config = kept.path().join("config.toml");
    std::fs::copy(daemon.config_path(), &config).unwrap();
    daemon.stop().await;
    let (code, said) = crate::support::switchboard_cli(&config, &["health", "--url", &url]).await;
    assert_eq!(code, Some(1), "nothing answers: unhealthy: {said}");
    assert!(said.contains("no answer"), "{said}");

    // Without open probes the token is sent for them.
    let daemon = Daemon::start("[server]\nadmin_token = \"let-me-in\"\n").await;
    assert_eq!(daemon.client.get(daemon.admin_url("/readyz")).send().await.unwrap().status(), 401);
    let url = daemon.admin_url("/readyz");
    let (code, said) = crate::support::switchboard_cli(&daemon.config_path(), &["health", "--url", &url]).await;
    assert_eq!(code, Some(0), "the configured token is used: {said}");
    daemon.stop().await;
}
