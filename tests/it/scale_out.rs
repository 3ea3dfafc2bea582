//! Three daemons share one PostgreSQL database behind a (simulated) load balancer; one is
//! killed mid-run. Every acknowledged webhook is delivered, and a delivery is sent twice only
//! when the dead instance's lease expired mid-attempt.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use crate::support::http_sink::HttpSink;
use crate::support::{KillOnDrop, PgSchema, repo};

const EVENTS: usize = 900;
const INSTANCES: usize = 3;
const CONCURRENCY_PER_INSTANCE: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_the_queue_and_survive_losing_one() {
    let Some(schema) = PgSchema::fresh("sb_scale", "the scale-out test").await else { return };
    let storage = schema.url();

    let mut sink = HttpSink::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..INSTANCES)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
        .collect();
    let mut instances = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let path = dir.path().join(format!("config{i}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"
[server]
listen = "127.0.0.1:{port}"
admin_listen = ""
[storage]
url = "{storage}"
[paths]
plugins = "{plugins}"
[delivery]
retry_schedule_secs = [1]
lease_secs = 3
concurrency = {CONCURRENCY_PER_INSTANCE}
[outputs.receiver]
type = "http"
url = "{url}"
[[route]]
name = "all"
to = ["receiver"]
template = "generic"
"#,
                plugins = repo().join("plugins").display(),
                url = sink.url("/in")
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        instances.push(KillOnDrop(child));
    }
    let instances = Arc::new(Mutex::new(instances));

    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (instances, acknowledged) = (instances.clone(), acknowledged.clone());
        tokio::spawn(async move {
            while acknowledged.load(Ordering::Relaxed) < EVENTS / 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut instances = instances.lock().await;
            instances[1].kill().unwrap();
            instances[1].wait().unwrap();
        })
    };
    // The "load balancer": round robin over instances, skipping one that refuses connections.
    let senders: Vec<_> = (0..24)
        .map(|_| {
            let (client, ports, next, acknowledged) =
                (client.clone(), ports.clone(), next.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= EVENTS {
                        return ids;
                    }
                    let body = format!(r#"{{"event_name":"offline_message","offline_message_id":{n}}}"#);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    for attempt in 0.. {
                        let port = ports[(n + attempt) % INSTANCES];
                        let url = format!("http://127.0.0.1:{port}/hooks/jivo");
                        match client.post(&url).body(body.clone()).send().await {
                            Ok(response) if response.status().is_success() => {
                                ids.push(response.headers()["x-switchboard-event-id"].to_str().unwrap().to_owned());
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            other => {
                                assert!(Instant::now() < deadline, "webhook {n} never acknowledged: {other:?}");
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let mut acknowledged_ids = Vec::new();
    for sender in senders {
        acknowledged_ids.extend(sender.await.unwrap());
    }
    killer.await.unwrap();

    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged_ids.iter().any(|id| !seen.contains_key(id)) {
        assert!(Instant::now() < deadline, "acknowledged events never arrived");
        let request = sink.next().await;
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        *seen.entry(body["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    // Give a lost lease time to expire and any resend to arrive, then count.
    tokio::time::sleep(Duration::from_secs(4)).await;
    while let Ok(request) = tokio::time::timeout(Duration::from_millis(200), sink.next()).await {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        *seen.entry(body["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for child in instances.lock().await.iter_mut() {
        child.kill().ok();
    }
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "scale-out test: {INSTANCES} instances on PostgreSQL, {} webhooks acknowledged, one instance killed; \
         all delivered, {duplicates} sent twice (leases of the killed instance expiring mid-attempt)",
        acknowledged_ids.len()
    );
    assert_eq!(acknowledged_ids.len(), EVENTS);
    // Only what the killed instance had in flight can be sent twice.
    assert!(duplicates <= CONCURRENCY_PER_INSTANCE, "{duplicates} duplicates is more than one instance had in flight");
    schema.drop().await;
}
