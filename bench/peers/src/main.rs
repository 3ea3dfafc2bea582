//! `bench-peer`: the local servers Switchboard's benchmarks and soak test run against.
//!
//! - `baseline`: the ceiling for any webhook receiver on this machine — parse the body (JSON,
//!   or a form) and answer 200, nothing kept.
//! - `durable`: the ceiling for any receiver that keeps what it acknowledges — `baseline`, then
//!   the body appended to `--log FILE` and answered once the file is synced, with group commit
//!   ([`durable`]).
//! - `receiver`: an HTTP output's destination; counts requests and distinct `Idempotency-Key`s
//!   (a repeat is a duplicate delivery); `--flap UP,DOWN` answers 503 for DOWN seconds after
//!   every UP seconds.
//! - `telegram`: a Bot API server; counts messages and the distinct event ids in their text;
//!   `--storm EVERY,FOR` answers 429 (`retry_after` 2) for FOR seconds every EVERY seconds.
//! - `load`: not a server but a fixed-rate, open-loop load generator ([`load`]).
//!
//! `GET /stats` answers with the counts as JSON (`durable`: its syncs, see [`durable`]).

mod durable;
mod load;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Counts {
    requests: u64,
    accepted: u64,
    refused: u64,
    keys: HashSet<String>,
}

#[derive(Clone)]
struct Peer {
    counts: Arc<Mutex<Counts>>,
    started: Instant,
    /// (period, bad part) in seconds: the first `period - bad` of each period are good.
    schedule: Option<(u64, u64)>,
}

impl Peer {
    fn in_bad_phase(&self) -> bool {
        self.schedule.is_some_and(|(period, bad)| {
            let second = self.started.elapsed().as_secs() % period;
            second >= period - bad
        })
    }

    fn stats(&self) -> Value {
        let counts = self.counts.lock().unwrap();
        json!({
            "requests": counts.requests,
            "accepted": counts.accepted,
            "refused": counts.refused,
            "distinct": counts.keys.len(),
            "duplicates": counts.accepted.saturating_sub(counts.keys.len() as u64),
        })
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or_default();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let listen: SocketAddr = flag("--listen").unwrap_or_else(|| "127.0.0.1:0".into()).parse().expect("--listen ADDR");
    let pair = |text: String| -> (u64, u64) {
        let (a, b) = text.split_once(',').expect("two numbers: A,B");
        (a.parse().expect("a number"), b.parse().expect("a number"))
    };
    if mode == "load" {
        let number = |name: &str, default: u64| flag(name).map_or(default, |v| v.parse().expect("a number"));
        let payload = flag("--payload").expect("--payload FILE");
        let load = load::Load {
            url: flag("--url").expect("--url URL").parse().expect("--url: a URL"),
            body: std::fs::read_to_string(&payload).expect("--payload: a readable file"),
            content_type: flag("--content-type").unwrap_or_else(|| "application/json".into()),
            rate: u32::try_from(number("--rate", 2000)).expect("--rate: a rate"),
            duration: std::time::Duration::from_secs(number("--duration", 10)),
            connections: usize::try_from(number("--connections", 64)).expect("--connections"),
            id_base: number("--id-base", 0),
        };
        println!("{}", load::run(load).await);
        return;
    }
    let peer = Peer { counts: Arc::default(), started: Instant::now(), schedule: None };
    let app = match mode {
        "baseline" => Router::new().route("/healthz", get(|| async { "ok" })).fallback(post(baseline)),
        "durable" => {
            let log = durable::Log::open(&flag("--log").expect("--log FILE")).expect("--log: a writable file");
            Router::new()
                .route("/healthz", get(|| async { "ok" }))
                .route("/stats", get(|State(log): State<durable::Log>| async move { Json(log.stats()) }))
                .fallback(post(durable))
                .with_state(log)
        }
        "receiver" => {
            let schedule = flag("--flap").map(pair).map(|(up, down)| (up + down, down));
            Router::new().route("/stats", get(stats)).fallback(post(receiver)).with_state(Peer { schedule, ..peer })
        }
        "telegram" => {
            let schedule = flag("--storm").map(pair);
            Router::new()
                .route("/stats", get(stats))
                .route("/{bot}/{method}", post(telegram))
                .with_state(Peer { schedule, ..peer })
        }
        _ => {
            eprintln!(
                "usage: bench-peer baseline|receiver|telegram --listen ADDR [--flap UP,DOWN] [--storm EVERY,FOR]\n       \
                 bench-peer durable --listen ADDR --log FILE\n       \
                 bench-peer load --url URL --payload FILE [--content-type T] [--rate N] [--duration S] [--connections N] [--id-base N]"
            );
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    println!("{mode} listening on {}", listener.local_addr().expect("address"));
    axum::serve(listener, app).await.expect("serve");
}

/// Parses what a vendor would send and answers as Switchboard does, keeping nothing.
async fn baseline(headers: HeaderMap, body: Bytes) -> Response {
    match parse(&headers, &body) {
        Ok(()) => Json(json!({"result": "ok"})).into_response(),
        Err(refusal) => (StatusCode::BAD_REQUEST, refusal).into_response(),
    }
}

/// As `baseline`, and the body is on disk before the answer.
async fn durable(State(log): State<durable::Log>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = parse(&headers, &body) {
        return (StatusCode::BAD_REQUEST, refusal).into_response();
    }
    match log.append(body).await {
        Ok(()) => Json(json!({"result": "ok"})).into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

fn parse(headers: &HeaderMap, body: &Bytes) -> Result<(), &'static str> {
    let form = headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form"));
    let fields = if form {
        form_urlencoded::parse(body).count()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map.len(),
            _ => return Err("invalid JSON"),
        }
    };
    std::hint::black_box(fields);
    Ok(())
}

async fn stats(State(peer): State<Peer>) -> Json<Value> {
    Json(peer.stats())
}

async fn receiver(State(peer): State<Peer>, headers: HeaderMap) -> Response {
    let mut counts = peer.counts.lock().unwrap();
    counts.requests += 1;
    if peer.in_bad_phase() {
        counts.refused += 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "flapping: down").into_response();
    }
    counts.accepted += 1;
    if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        counts.keys.insert(key.to_owned());
    }
    Json(json!({"ok": true})).into_response()
}

async fn telegram(State(peer): State<Peer>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut counts = peer.counts.lock().unwrap();
    counts.requests += 1;
    if peer.in_bad_phase() {
        counts.refused += 1;
        let error = json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 2", "parameters": {"retry_after": 2}});
        return (StatusCode::TOO_MANY_REQUESTS, Json(error)).into_response();
    }
    counts.accepted += 1;
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    // The soak's template puts the event id on the message's first line.
    counts.keys.insert(text.lines().next().unwrap_or_default().to_owned());
    let message_id = counts.accepted;
    drop(counts);
    let chat_id = body["chat_id"].as_i64().unwrap_or(-100);
    Json(json!({"ok": true, "result": {
        "message_id": message_id, "date": 1_700_000_000,
        "chat": {"id": chat_id, "type": "supergroup", "title": "Sales"},
        "from": {"id": 1, "is_bot": true, "first_name": "Switchboard", "username": "switchboard_bot"},
        "text": text,
    }}))
    .into_response()
}
