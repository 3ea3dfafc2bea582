//! The listeners' connections: accepted up to a cap, served by hyper over HTTP/1.1 with a
//! deadline for each request's headers, and drained on shutdown.
//!
//! `axum::serve` holds a connection for as long as its client likes: a client that opens one and
//! dribbles a request line (or sends nothing) keeps a file descriptor forever, and a few hundred
//! of them leave none for webhooks or `/healthz`. Here every connection must send a request's
//! headers within `server.header_timeout_secs` of opening or of its last answer (hyper's header
//! read timeout, which also bounds an idle keep-alive connection), at most
//! `server.max_connections` are served at once — the rest wait in the kernel's backlog, as Go's
//! `netutil.LimitListener` makes them — and running out of descriptors pauses accepting
//! instead of failing the listener, while the connections already open are served.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight before it drops their connections.
    pub drain: Duration,
}

/// Told of a request hyper refused before any handler saw it (a malformed request line or
/// header, conflicting lengths, a head over 400 KiB), with the peer: hyper answers those itself,
/// with an empty body, so this is the only place that learns of them.
pub type OnMalformed = Arc<dyn Fn(SocketAddr, &hyper::Error) + Send + Sync>;

/// How long accepting pauses when the process is out of file descriptors.
const DESCRIPTORS_BACKOFF: Duration = Duration::from_millis(100);
/// The least time between two log lines about the same trouble on one listener.
const QUIET: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown`, then waits for the requests in flight (idle
/// connections are closed at once). `name` says which listener in log lines. Every request
/// carries the peer's address as [`ConnectInfo`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    name: &'static str,
    on_malformed: Option<OnMalformed>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // hyper's own limit of 100 headers stays: raising it makes hyper allocate the larger
        // header array on every request (measured: a few µs of a webhook's ~60).
        .keep_alive(true);
    let mut full = Warning::default();
    let mut out_of_descriptors = Warning::default();
    let mut failing = Warning::default();
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                full.say(|| {
                    tracing::warn!(
                        message = "Connection limit reached; new connections wait until one closes.",
                        listener = name,
                        max_connections = limits.max_connections,
                    );
                });
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if is_out_of_descriptors(&error) {
                        out_of_descriptors.say(|| {
                            tracing::error!(
                                message = "Out of file descriptors; accepting pauses while open connections are served.",
                                listener = name, %error,
                            );
                        });
                        tokio::time::sleep(DESCRIPTORS_BACKOFF).await;
                    } else if !concerns_one_connection(&error) {
                        // Memory or buffers short, a policy refusing: pause rather than spin.
                        failing.say(|| tracing::error!(message = "Accepting a connection failed.", listener = name, %error));
                        tokio::time::sleep(DESCRIPTORS_BACKOFF).await;
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(serve_connection(connection, permit, peer, name, on_malformed.clone()));
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(message = "Requests still in flight at shutdown were cut off.", listener = name);
    }
}

async fn serve_connection(
    connection: impl Future<Output = Result<(), hyper::Error>>,
    permit: OwnedSemaphorePermit,
    peer: SocketAddr,
    name: &'static str,
    on_malformed: Option<OnMalformed>,
) {
    if let Err(error) = connection.await {
        match &on_malformed {
            Some(report) if error.is_parse() => report(peer, &error),
            // A client that gave up, or was too slow with its headers: its business, not an alarm.
            _ => tracing::debug!(message = "Connection closed with an error.", listener = name, %peer, %error),
        }
    }
    drop(permit);
}

/// A client that went away before it was accepted: nothing to do about it.
fn concerns_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    // EMFILE (the process's limit) and ENFILE (the system's), on Linux and the BSDs.
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// Says something at most once per [`QUIET`].
#[derive(Default)]
struct Warning {
    last: Option<Instant>,
}

impl Warning {
    fn say(&mut self, log: impl FnOnce()) {
        if self.last.is_none_or(|last| last.elapsed() >= QUIET) {
            self.last = Some(Instant::now());
            log();
        }
    }
}
