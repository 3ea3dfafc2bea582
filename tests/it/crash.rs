//! The real binary, killed with SIGKILL in the middle of a burst of webhooks: every webhook it
//! acknowledged must still be delivered after a restart. Duplicates (at least once) are
//! counted and reported, not hidden.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use crate::support::http_sink::HttpSink;
use crate::support::{KillOnDrop, repo};

const EVENTS: usize = 2000;
const CONCURRENCY: usize = 32;

fn start(dir: &std::path::Path) -> KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_webhook_is_delivered_across_a_sigkill() {
    let mut sink = HttpSink::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
admin_listen = ""
[paths]
plugins = "{plugins}"
[delivery]
retry_schedule_secs = [1]
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
    let daemon = Arc::new(Mutex::new(start(dir.path())));

    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let url = format!("http://127.0.0.1:{port}/hooks/jivo");
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    // The killer: SIGKILL once a quarter of the burst is acknowledged, then start again.
    let killer = {
        let (daemon, acknowledged, dir) = (daemon.clone(), acknowledged.clone(), dir.path().to_path_buf());
        tokio::spawn(async move {
            while acknowledged.load(Ordering::Relaxed) < EVENTS / 4 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut child = daemon.lock().await;
            child.kill().unwrap(); // SIGKILL: no shutdown, no flush
            child.wait().unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            *child = start(&dir);
        })
    };

    // Vendors: each posts its webhooks and, like a real vendor, retries until it gets a 2xx.
    let senders: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, next, acknowledged, refused) =
                (client.clone(), url.clone(), next.clone(), acknowledged.clone(), refused.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= EVENTS {
                        return ids;
                    }
                    let body = format!(
                        r#"{{"event_name":"offline_message","offline_message_id":{n},"message":"crash test {n}"}}"#
                    );
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        match client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await
                        {
                            Ok(response) if response.status().is_success() => {
                                let id = response.headers()["x-switchboard-event-id"].to_str().unwrap().to_owned();
                                ids.push((n, id));
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            _ if Instant::now() < deadline => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            other => panic!("webhook {n} never acknowledged: {other:?}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut acknowledged_ids: HashMap<String, usize> = HashMap::new();
    for sender in senders {
        for (n, id) in sender.await.unwrap() {
            acknowledged_ids.insert(id, n);
        }
    }
    killer.await.unwrap();
    let ingest_secs = started.elapsed().as_secs_f64();

    // The receiver must see every acknowledged event; count repeats.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while acknowledged_ids.keys().any(|id| !seen.contains_key(id)) {
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events never arrived",
            acknowledged_ids.keys().filter(|id| !seen.contains_key(*id)).count(),
            acknowledged_ids.len()
        );
        let request = sink.next().await;
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        *seen.entry(body["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    daemon.lock().await.kill().ok();

    let vendors_messages: HashSet<usize> = acknowledged_ids.values().copied().collect();
    let duplicates: usize = seen.values().map(|count| count - 1).sum();
    let refused = refused.load(Ordering::Relaxed);
    eprintln!(
        "crash test: {EVENTS} webhooks, {} acknowledged events ({} distinct vendor messages) in {ingest_secs:.1} s, \
         {refused} requests failed while the daemon was down and were retried; all delivered; \
         {duplicates} duplicate deliveries (at least once, around the kill), each marked interrupted",
        acknowledged_ids.len(),
        vendors_messages.len()
    );
    assert!(refused > 0, "the kill did not land in the middle of the burst");

    // Every duplicate went to a delivery the restart knew was in flight at the kill.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("data/switchboard.db").display()))
        .await
        .unwrap();
    for (event, count) in seen.iter().filter(|(_, count)| **count > 1) {
        let interrupted: i64 = sqlx::query_scalar("SELECT interrupted FROM deliveries WHERE event_id = ?")
            .bind(event)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(
            interrupted > 0,
            "event {event} was delivered {count} times, but its delivery is not marked interrupted"
        );
    }
    assert_eq!(vendors_messages.len(), EVENTS, "every vendor message was eventually acknowledged");
    assert!(acknowledged_ids.keys().all(|id| seen.contains_key(id)));
}
