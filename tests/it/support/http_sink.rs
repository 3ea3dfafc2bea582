//! `HttpSink`: a real HTTP receiver on 127.0.0.1 that records every request and answers with
//! scripted statuses (then 200 once the script runs out).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A scripted answer: status, optional `Retry-After`, body.
#[derive(Debug, Clone)]
pub struct Answer(pub u16, pub Option<&'static str>, pub &'static str);

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: mpsc::UnboundedSender<Received>,
}

pub struct HttpSink {
    pub addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl HttpSink {
    pub async fn start(script: Vec<Answer>) -> Self {
        Self::start_on(0, script).await
    }

    /// On a given port (0: any), for tests where the receiver comes up late.
    pub async fn start_on(port: u16, script: Vec<Answer>) -> Self {
        let (seen, received) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let shared = Shared { script: script.clone(), seen };
        let app = Router::new().fallback(record).with_state(shared);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, received, script }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request, waiting at most 20 s.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(20), self.received.recv())
            .await
            .expect("a request arrives within 20 s")
            .expect("the sink is running")
    }

    /// Answers still unused.
    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

async fn record(State(shared): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let _ = shared.seen.send(Received { method, uri, headers, body });
    let answer = shared.script.lock().unwrap().pop_front().unwrap_or(Answer(200, None, "{\"ok\":true}"));
    let mut response = (StatusCode::from_u16(answer.0).unwrap(), answer.2).into_response();
    if let Some(after) = answer.1 {
        response.headers_mut().insert("retry-after", after.parse().unwrap());
    }
    response
}
