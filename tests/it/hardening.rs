//! Tried as an attacker and as a failing disk would: connections that never finish, a page that
//! rebinds its name to the admin listener, a cross-site reload, a full disk, and an operator
//! without the outputs' secrets.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Daemon, repo, switchboard_cli};

/// Whether the server closed `stream` within `within`: a read returns end of file (or an error).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0_u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (hyper's 408, say) before the close: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

async fn offline_message(daemon: &Daemon) -> reqwest::Response {
    let body = std::fs::read(repo().join("tests/fixtures/jivo/offline_message.json")).unwrap();
    daemon.client.post(daemon.url("/hooks/jivo")).body(body).send().await.unwrap()
}

/// Hundreds of connections that dribble half a request line, or send nothing, or stay open
/// after their answer: a webhook is still answered at once, and every one of them is closed
/// once `header_timeout_secs` has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_never_crowd_out_a_webhook() {
    let daemon = Daemon::start("[server]\nheader_timeout_secs = 1\nmax_connections = 400\n").await;
    let mut held = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(daemon.addr).await.unwrap();
        if i % 3 != 0 {
            stream.write_all(b"POST /hooks/jivo HTTP/1.1\r\nHost: x\r\nContent-Ty").await.unwrap();
        }
        held.push(stream);
    }
    // One that finished a request and keeps its connection for the next.
    let mut kept_alive = TcpStream::connect(daemon.addr).await.unwrap();
    kept_alive.write_all(b"GET /hooks/nobody HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = [0_u8; 512];
    assert!(kept_alive.read(&mut answer).await.unwrap() > 0, "the first request is answered");

    let started = Instant::now();
    let response = offline_message(&daemon).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 200);
    // The brief asks for 100 ms; a debug build on a loaded CI machine gets room, and the
    // figure is printed for the record.
    eprintln!("a webhook beside 300 slow connections was answered in {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let health = reqwest::get(daemon.admin_url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    for (i, stream) in held.iter_mut().enumerate() {
        assert!(closed_within(stream, Duration::from_secs(3)).await, "connection {i} was left open");
    }
    assert!(closed_within(&mut kept_alive, Duration::from_secs(3)).await, "an idle keep-alive connection stays");
    daemon.stop().await;
}

/// At `max_connections`, a new connection waits in the backlog until one closes; it is not
/// refused, and it is served once the idle ones time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_cap_waits_for_a_free_one() {
    let daemon = Daemon::start("[server]\nheader_timeout_secs = 1\nmax_connections = 10\n").await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(TcpStream::connect(daemon.addr).await.unwrap());
    }
    // Give the listener a moment to take all ten.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let response = offline_message(&daemon).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(500), "it waited for the idle ones: {:?}", started.elapsed());
    drop(idle);
    daemon.stop().await;
}

async fn status_for_host(daemon: &Daemon, host: String) -> u16 {
    daemon.client.get(daemon.admin_url("/status")).header("host", host).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_admin_listener_answers_only_its_own_host_names() {
    let daemon = Daemon::start("[server]\nadmin_hosts = [\"switchboard.internal\"]\n").await;
    let port = daemon.admin_addr.port();
    let get = |host: String| status_for_host(&daemon, host);
    assert_eq!(get(format!("evil.example:{port}")).await, 421, "a page that rebound its name to 127.0.0.1");
    assert_eq!(get(format!("localhost:{port}")).await, 200);
    assert_eq!(get(format!("127.0.0.1:{port}")).await, 200);
    assert_eq!(get("switchboard.internal".to_owned()).await, 200, "a name from server.admin_hosts");
    let forged = daemon
        .client
        .post(daemon.admin_url("/-/reload"))
        .header("host", format!("evil.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 421);
    // Probes and metrics hold no secret: a scraper may call the daemon by a service name.
    for probe in ["/healthz", "/metrics"] {
        let response = daemon.client.get(daemon.admin_url(probe)).header("host", "switchboard-svc:8081").send().await;
        assert_eq!(response.unwrap().status(), 200, "{probe}");
    }
    daemon.stop().await;
}

#[tokio::test]
async fn a_reload_from_another_site_is_refused() {
    let daemon = Daemon::start("").await;
    let cross_site = daemon
        .client
        .post(daemon.admin_url("/-/reload"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let by_script = daemon.client.post(daemon.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(by_script.status(), 200, "curl sends no Origin");
    daemon.stop().await;
}

/// Reading the store needs only `[storage]`: an output whose `${VAR}` is unset stops `check` and
/// `run`, not `events`, `deliveries`, `rejected` or `retry`.
#[tokio::test]
async fn reading_the_store_needs_no_output_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[outputs.sales_tg]\ntype = \"telegram\"\ntoken = \"${SWITCHBOARD_TEST_UNSET_TOKEN}\"\nchat_id = \"-100\"\n",
    )
    .unwrap();
    // No database yet: an error, never an empty one made on the spot.
    let (code, text) = switchboard_cli(&config, &["events"]).await;
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no database at") && text.contains("switchboard.db"), "{text}");
    assert!(!dir.path().join("data/switchboard.db").exists(), "nothing was created");
    let database = dir.path().join("data/switchboard.db");
    std::fs::create_dir_all(database.parent().unwrap()).unwrap();
    let store = switchboard::store::sqlite::SqliteStore::open(&database, 10).await.unwrap();
    switchboard::store::Lifecycle::close(&store).await;
    for args in [&["events"][..], &["deliveries", "--state", "dead"], &["rejected"], &["retry", "--dead"]] {
        let (code, text) = switchboard_cli(&config, args).await;
        assert_eq!(code, Some(0), "{args:?}: {text}");
    }
    let (code, text) = switchboard_cli(&config, &["check"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("SWITCHBOARD_TEST_UNSET_TOKEN"), "{text}");
}

/// A full disk: every webhook gets 503 and readiness says so; once space is freed, readiness
/// recovers by itself (no webhook needs to arrive first) and webhooks are stored again. The
/// database lives on a small tmpfs the test mounts, which needs root; elsewhere it says it was
/// skipped, and under CI it fails rather than skip.
#[tokio::test]
async fn readiness_follows_whether_the_store_can_write() {
    let mount = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(mount.path())
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to mount a tmpfs (it runs as root)");
        eprintln!("skipped: mounting a tmpfs for a full disk needs root");
        return;
    }
    let database = mount.path().join("switchboard.db");
    let daemon = Daemon::start(&format!("[storage]\nurl = \"sqlite://{}\"\n", database.display())).await;
    assert_eq!(offline_message(&daemon).await.status(), 200);
    let ready = |daemon: &Daemon| {
        let url = daemon.admin_url("/readyz");
        async move {
            let response = reqwest::get(url).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(ready(&daemon).await.0, 200);

    // Fill the disk, then post until a webhook is refused: the log may still have room for one.
    let filler = mount.path().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut file, &[0_u8; 64 * 1024]).is_ok() {}
    drop(file);
    let mut refused = false;
    for i in 0..50 {
        let body = format!(r#"{{"event_name": "offline_message", "message": "{i} {}"}}"#, "x".repeat(8000));
        let response = daemon.client.post(daemon.url("/hooks/jivo")).body(body).send().await.unwrap();
        if response.status() == 503 {
            refused = true;
            break;
        }
    }
    assert!(refused, "a webhook is refused with 503 once the disk is full");
    // Past the delivery workers' idle poll: their claims, which write nothing, do not make the
    // store look healthy.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = ready(&daemon).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("full"), "{body}");

    std::fs::remove_file(&filler).unwrap();
    let (status, body) = ready(&daemon).await;
    assert_eq!(status, 200, "readiness recovers once writes succeed: {body}");
    assert_eq!(offline_message(&daemon).await.status(), 200);
    daemon.stop().await;
    // Lazily: a thread of the stopped store may still hold a file for a moment.
    let _ = std::process::Command::new("umount").arg("-l").arg(mount.path()).status();
}

/// Refusals of the request's form answer as every refusal does, with a JSON body that says
/// what is wrong, and are kept; those hyper makes itself (conflicting lengths, more than 100
/// headers) have hyper's bare answer but are kept all the same.
#[tokio::test]
async fn refusals_of_the_request_line_and_headers_say_why_and_are_kept() {
    let daemon = Daemon::start("").await;
    let long =
        daemon.client.get(daemon.url(&format!("/hooks/callkeeper?x={}", "y".repeat(9000)))).send().await.unwrap();
    assert_eq!(long.status(), 414);
    let body: serde_json::Value = long.json().await.unwrap();
    assert_eq!(body["error"], "uri_too_long", "{body}");

    let large = daemon.client.post(daemon.url("/hooks/jivo")).header("x-large", "z".repeat(40_000)).body("{}");
    let large = large.send().await.unwrap();
    assert_eq!(large.status(), 431);
    assert_eq!(large.json::<serde_json::Value>().await.unwrap()["error"], "headers_too_large");

    let mut stream = TcpStream::connect(daemon.addr).await.unwrap();
    stream
        .write_all(b"POST /hooks/jivo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"), "{}", String::from_utf8_lossy(&answer));

    let mut many = daemon.client.post(daemon.url("/hooks/jivo")).body("{}");
    for i in 0..120 {
        many = many.header(format!("x-extra-{i}"), "1");
    }
    assert_eq!(many.send().await.unwrap().status(), 431);

    let store = daemon.store().await;
    crate::delivery::eventually("the four refusals are kept", || async {
        store.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap().len() == 4
    })
    .await;
    let kept = store.rejections(&switchboard::store::RejectionQuery::latest(10)).await.unwrap();
    let large = kept.iter().find(|r| r.reason == "headers_too_large").unwrap();
    let shown = large.request.headers.iter().find(|(name, _)| name == "x-large").map(|(_, v)| v.as_str());
    assert_eq!(shown, Some("(40000 bytes)"), "the oversized head is not kept whole");
    let mut reasons: Vec<String> = kept.into_iter().map(|r| r.reason).collect();
    reasons.sort();
    assert_eq!(reasons, ["headers_too_large", "malformed_request", "request_too_large", "uri_too_long"]);
    daemon.stop().await;
}

/// The real binary with 64 file descriptors: a flood of idle connections runs it out of them.
/// It keeps serving the connections it has, pauses accepting instead of failing, and once the
/// idle ones time out a webhook and `/healthz` are answered again.
#[tokio::test]
async fn out_of_file_descriptors_the_daemon_pauses_accepting_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let port = |_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (hooks, admin) = (port(()), port(()));
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{hooks}\"\nadmin_listen = \"127.0.0.1:{admin}\"\nheader_timeout_secs = 1\n\
             [paths]\nplugins = \"{}\"\n",
            repo().join("plugins").display()
        ),
    )
    .unwrap();
    let command = format!("ulimit -n 64 && exec '{}' run --config config.toml", env!("CARGO_BIN_EXE_switchboard"));
    let mut daemon = crate::support::KillOnDrop(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let health = format!("http://127.0.0.1:{admin}/healthz");
    crate::delivery::eventually("the daemon starts", || async { client.get(&health).send().await.is_ok() }).await;

    // More connections than descriptors: the kernel takes them, the daemon cannot accept them all.
    let mut flood = Vec::new();
    for _ in 0..120 {
        flood.push(TcpStream::connect(("127.0.0.1", hooks)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon survived running out of descriptors");

    // The idle ones time out and close; the backlog drains; a webhook is answered.
    let body = std::fs::read(repo().join("tests/fixtures/jivo/offline_message.json")).unwrap();
    let url = format!("http://127.0.0.1:{hooks}/hooks/jivo");
    crate::delivery::eventually("a webhook is answered again", || async {
        client.post(&url).body(body.clone()).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(client.get(&health).send().await.unwrap().status(), 200);
    drop(flood);
}
