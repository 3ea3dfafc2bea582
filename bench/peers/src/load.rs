//! `bench-peer load`: an open-loop load generator at a fixed rate, for the latency figures.
//!
//! wrk (4.x, Debian's) only has closed loops: a connection sends its next request when the
//! last answer came, so a slow server is sent less and its latency looks better than it is.
//! Here request `i` is due at `start + i / rate` whatever happened before; it waits for a free
//! connection if none is, and its latency counts from when it was released (as wrk2 counts
//! from when it was due), so queueing behind a slow answer is part of the figure. Every body gets a fresh id in place of
//! `__ID__`, so a receiver that deduplicates stores every request.
//!
//! Prints one JSON object: sent, ok (2xx), non_2xx, errors, the achieved rate, and latency
//! percentiles in milliseconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

pub struct Load {
    pub url: hyper::Uri,
    pub body: String,
    pub content_type: String,
    pub rate: u32,
    pub duration: Duration,
    pub connections: usize,
    pub id_base: u64,
}

/// What one request came to: its latency from when it was released, and its status (0: failed).
type Outcome = (Duration, u16);

pub async fn run(load: Load) -> serde_json::Value {
    let (prefix, suffix) = load.body.trim_end().split_once("__ID__").expect("the payload has no __ID__");
    let (prefix, suffix) = (Arc::<str>::from(prefix), Arc::<str>::from(suffix));
    let total = u64::from(load.rate) * load.duration.as_secs();
    // The queue holds due requests; it is as long as the run so that the schedule never waits
    // for the server.
    let (due, queue) = mpsc::unbounded_channel::<(u64, Instant)>();
    let queue = Arc::new(Mutex::new(queue));
    let (done, mut outcomes) = mpsc::unbounded_channel::<Outcome>();
    let mut connections = Vec::new();
    for _ in 0..load.connections {
        let (queue, done) = (queue.clone(), done.clone());
        let (url, content_type) = (load.url.clone(), load.content_type.clone());
        let (prefix, suffix, id_base) = (prefix.clone(), suffix.clone(), load.id_base);
        connections.push(tokio::spawn(async move {
            let mut sender = None;
            loop {
                let Some((i, released)) = queue.lock().await.recv().await else { break };
                let body = format!("{prefix}{}{suffix}", id_base + i);
                let status = send(&mut sender, &url, &content_type, body).await;
                let _ = done.send((released.elapsed(), status));
            }
        }));
    }
    drop(done);
    let start = Instant::now();
    let interval = Duration::from_secs(1) / load.rate;
    for i in 0..total {
        let due_at = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due_at.into()).await;
        // Timed from now rather than `due_at`: tokio's timer is coarse (about a millisecond),
        // and its lateness is ours, not the server's. Waiting for a free connection counts.
        let _ = due.send((i, Instant::now()));
    }
    drop(due);
    let mut results = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    while let Some(outcome) = outcomes.recv().await {
        results.push(outcome);
    }
    let elapsed = start.elapsed();
    summarise(&mut results, elapsed)
}

/// Sends one request on the connection, opening it first if there is none (or it broke).
async fn send(
    sender: &mut Option<http1::SendRequest<Full<Bytes>>>,
    url: &hyper::Uri,
    content_type: &str,
    body: String,
) -> u16 {
    for _ in 0..2 {
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            *sender = connect(url).await;
        }
        let Some(open) = sender.as_mut() else { return 0 };
        if open.ready().await.is_err() {
            *sender = None;
            continue;
        }
        let request = hyper::Request::post(url.clone())
            .header("host", url.authority().map_or("localhost", |a| a.as_str()))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body.clone())))
            .expect("a valid request");
        match open.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read to the end, or the connection cannot carry the next request.
                if response.into_body().collect().await.is_err() {
                    *sender = None;
                }
                return status;
            }
            Err(_) => *sender = None,
        }
    }
    0
}

async fn connect(url: &hyper::Uri) -> Option<http1::SendRequest<Full<Bytes>>> {
    let address = format!("{}:{}", url.host()?, url.port_u16().unwrap_or(80));
    let stream = TcpStream::connect(address).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

fn summarise(results: &mut [Outcome], elapsed: Duration) -> serde_json::Value {
    results.sort_unstable_by_key(|(latency, _)| *latency);
    let percentile = |p: f64| {
        let index = ((results.len() as f64 * p).ceil() as usize).clamp(1, results.len().max(1)) - 1;
        results.get(index).map_or(0.0, |(latency, _)| latency.as_secs_f64() * 1000.0)
    };
    let ok = results.iter().filter(|(_, status)| (200..300).contains(status)).count();
    let errors = results.iter().filter(|(_, status)| *status == 0).count();
    json!({
        "sent": results.len(),
        "ok": ok,
        "non_2xx": results.len() - ok - errors,
        "errors": errors,
        "rate": results.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(0.50),
        "p90_ms": percentile(0.90),
        "p99_ms": percentile(0.99),
        "p999_ms": percentile(0.999),
        "max_ms": percentile(1.0),
    })
}
