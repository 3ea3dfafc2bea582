//! The `switchboard` binary itself: `check` and `run`, as a user types them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{KillOnDrop, repo};

fn switchboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
}

#[test]
fn check_accepts_the_shipped_config() {
    let output = switchboard().args(["check", "--config"]).arg(repo().join("config.toml")).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("config.toml: OK"), "{stdout}");
    for vendor in ["jivo", "envybox", "callkeeper"] {
        assert!(stdout.contains(&format!("/hooks/{vendor}")), "{stdout}");
    }
}

#[test]
fn check_lists_every_problem_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(repo().join("plugins/jivo.toml"), plugins.join("jivo.toml")).unwrap();
    std::fs::write(plugins.join("acme.toml"), "event = { field = \"type\" }\n[events]\nlead = { kind = \"lead\" }\n")
        .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[server]\nlisten = \"nowhere\"\n\n[vendors.envybox]\nsecret = \"x\"\n").unwrap();

    let output = switchboard().args(["check", "--config"]).arg(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let config = config.display();
    let acme = plugins.join("acme.toml");
    let acme = acme.display();
    for expected in [
        "the configuration has 3 problems:".to_owned(),
        format!("{config}:2 server.listen: expected an address such as `127.0.0.1:8080`; got `nowhere`"),
        format!("{acme}:3 events.\"lead\".kind: unknown kind `lead`"),
        format!("{config}:4 vendors.envybox: no plugin is called `envybox`; loaded plugins: jivo"),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn check_reports_every_problem_of_a_file_at_once_each_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let text = "\
[server]
listen = \"127.0.0.1:0\"
body_limit_bytes = \"big\"
admin_lisen = \"127.0.0.1:0\"

[outputs.sales_tg]   # Telegram: the bot and its chat
type = \"telegram\"
token = \"123:abc\"
chat_id = \"\"

[[route]]
name = \"calls\"
to = [\"sales_tg\"]
template = \"call\"
";
    std::fs::write(&config, text).unwrap();
    let output = switchboard().args(["check", "--config"]).arg(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let config = config.display();
    for expected in [
        format!("{config}:3 server.body_limit_bytes: invalid type"),
        format!("{config}:4 server.admin_lisen: unknown field `admin_lisen`"),
        "did you mean `admin_listen`?".to_owned(),
        format!("{config}:9 outputs.sales_tg.chat_id:"),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("no output is called"), "no cascade from the refused output:\n{stderr}");
    assert!(!stderr.contains("sales_tg]"), "a header's comment is not part of its key:\n{stderr}");
}

#[test]
fn check_strict_makes_warnings_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    // A vendor without a secret is a warning.
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let plain = switchboard().args(["check", "--config"]).arg(&config).output().unwrap();
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stdout));
    assert!(String::from_utf8_lossy(&plain.stdout).contains("warning: vendor"));
    let strict = switchboard().args(["check", "--strict", "--config"]).arg(&config).output().unwrap();
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("--strict makes them fatal"));
}

#[test]
fn run_serves_webhooks_on_the_embedded_default() {
    // An empty working directory: no config.toml, no plugins/ — the binary's own defaults serve.
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = KillOnDrop(
        switchboard()
            .arg("run")
            .current_dir(dir.path())
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("SWITCHBOARD_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/hooks/jivo");
    let client = reqwest::blocking_free_post(&url);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        match client() {
            Ok(status) => break status,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => {
                let _ = child.kill();
                let mut stderr = String::new();
                let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
                panic!("the daemon never answered: {error}\n{stderr}");
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert!(dir.path().join("data/switchboard.db").is_file(), "the embedded default keeps events under data/");
}

/// A tiny blocking HTTP client over std, so these tests need no runtime.
mod reqwest {
    use std::io::{Read, Write};

    /// GET `path` from `host` and return the body of a 200.
    pub fn get_text(host: &str, path: &str) -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(host)?;
        write!(stream, "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        match response.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_owned()),
            _ => Err(std::io::Error::other(format!("unexpected answer: {response:?}"))),
        }
    }

    pub fn blocking_free_post(url: &str) -> impl Fn() -> std::io::Result<u16> + '_ {
        move || {
            let rest = url.strip_prefix("http://").expect("http URL");
            let (host, path) = rest.split_once('/').expect("URL with a path");
            let mut stream = std::net::TcpStream::connect(host)?;
            let body = r#"{"event_name":"offline_message","message":"hello"}"#;
            write!(
                stream,
                "POST /{path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            response
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("no status line in {response:?}")))
        }
    }
}

#[test]
fn test_shows_the_event_each_route_and_the_rendered_message() {
    let output = switchboard()
        .current_dir(repo())
        .args([
            "test",
            "envybox",
            "tests/fixtures/envybox/call_info_operator_busy_2.form",
            "--json",
            "--at",
            "2026-11-23T09:15:00Z",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["event"]["kind"], "call.missed");
    assert_eq!(report["event"]["fields"]["call.outcome"], "Оператор был занят");
    let routes = report["routes"].as_array().unwrap();
    assert_eq!(routes[0]["route"], "missed calls");
    assert_eq!(routes[0]["outcome"], "matched");
    assert_eq!(routes[1]["outcome"], "not reached");
    let messages = report["messages"].as_array().unwrap();
    let telegram = messages.iter().find(|m| m["output"] == "sales_tg").unwrap();
    assert_eq!(telegram["message"]["skipped"], "the output is switched off (enabled = false)");
    let message = messages.iter().find(|m| m["output"] == "log").unwrap();
    assert_eq!(message["template"], "missed_call");
    let text = message["message"]["text"].as_str().unwrap();
    assert!(text.contains("+7 999 888-77-66") && text.contains("Оператор был занят"), "{text}");

    // A route that fails says which condition did.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\nplugins = \"{}\"\n[outputs.log]\ntype = \"log\"\n[[route]]\nname = \"long calls\"\nwhen = {{ \"call.duration_s\" = {{ gt = 60 }} }}\nto = [\"log\"]\ntemplate = \"generic\"\n",
            repo().join("plugins").display()
        ),
    )
    .unwrap();
    let output = switchboard()
        .args(["test", "--config"])
        .arg(&config)
        .args(["envybox"])
        .arg(repo().join("tests/fixtures/envybox/call_info_operator_busy_2.form"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("· long calls — not matched: call.duration_s is `0`, wanted > 60"), "{stdout}");
    assert!(stdout.contains("No route matched: the event would be stored as unrouted."), "{stdout}");
    assert!(stdout.contains("Nothing was sent."), "{stdout}");
}

#[test]
fn test_says_when_the_kind_depends_on_earlier_events() {
    let output = switchboard()
        .current_dir(repo())
        .args(["test", "jivo", "tests/fixtures/jivo/call_event.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("kind    call.finished"), "{stdout}");
    assert!(stdout.contains("Part of the sequence jivo · 2853 · 4398."), "{stdout}");
    let offline = switchboard()
        .current_dir(repo())
        .args(["test", "jivo", "tests/fixtures/jivo/offline_message.json", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert!(report["event"]["sequence"].is_null(), "{report}");
}

#[test]
fn sighup_reloads_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let port = |_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (hooks, admin) = (port(()), port(()));
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{hooks}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n[paths]\nplugins = \"{}\"\n",
            repo().join("plugins").display()
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(
        switchboard().arg("run").current_dir(dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    );
    let status = |child: &mut std::process::Child| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = reqwest::get_text(&format!("127.0.0.1:{admin}"), "/-/status") {
                return serde_json::from_str(&text).unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("no admin listener");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(status(&mut child)["config"]["reload"]["reloads_ok"], 0);
    let killed = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let reloaded = loop {
        let now = status(&mut child);
        if now["config"]["reload"]["reloads_ok"] == 1 || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(reloaded["config"]["reload"]["reloads_ok"], 1, "{reloaded}");
    assert_eq!(reloaded["config"]["reload"]["last_trigger"], "SIGHUP");
}

/// The shipped systemd unit passes `systemd-analyze verify`, with its paths pointed at this
/// build (verify checks that the programs it names exist).
#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo().join("deploy/switchboard.service")).unwrap();
    let env_file = dir.path().join("switchboard.env");
    std::fs::copy(repo().join("deploy/switchboard.env"), &env_file).unwrap();
    let unit = unit
        .replace("/usr/local/bin/switchboard", env!("CARGO_BIN_EXE_switchboard"))
        .replace("/etc/switchboard/switchboard.env", env_file.to_str().unwrap());
    let path = dir.path().join("switchboard.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}

/// The example environment file names only variables the shipped config.toml reads.
#[test]
fn the_example_environment_matches_the_shipped_config() {
    let config = std::fs::read_to_string(repo().join("config.toml")).unwrap();
    let env = std::fs::read_to_string(repo().join("deploy/switchboard.env")).unwrap();
    let set_by_unit = ["SWITCHBOARD_CONFIG", "RUST_LOG"];
    for line in env.lines().map(|l| l.trim_start_matches('#')).filter(|l| l.contains('=') && !l.starts_with(' ')) {
        let name = line.split('=').next().unwrap();
        assert!(
            set_by_unit.contains(&name) || config.contains(&format!("${{{name}")),
            "deploy/switchboard.env sets {name}, which config.toml does not read"
        );
    }
}

#[test]
fn test_takes_the_event_an_address_names_and_reads_multipart_files() {
    let output = switchboard()
        .current_dir(repo())
        .args(["test", "calltracking", "tests/fixtures/calltracking/end_multipart_with_recording.multipart"])
        .args(["--event", "end", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["event"]["kind"], "call.missed", "{report}");
    // Without the address's event the plugin cannot tell, and says why.
    let output = switchboard()
        .current_dir(repo())
        .args(["test", "calltracking", "tests/fixtures/calltracking/end_answered.json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(unknown: the webhook names no event: the URL has no `event` parameter"), "{stdout}");
}
