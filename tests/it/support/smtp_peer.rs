//! `SmtpPeer`: a real SMTP server (Python's aiosmtpd, `tests/peers/smtp_peer.py`) on 127.0.0.1
//! with STARTTLS on a self-signed certificate made here, and AUTH. `.ci/run` installs aiosmtpd;
//! on a developer's machine without it the tests say they were skipped, and under CI they fail.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::repo;

pub struct SmtpPeer {
    pub port: u16,
    /// The PEM of the server's certificate, for the client's `ca_file`.
    pub ca_file: PathBuf,
    outdir: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SmtpPeer {
    /// Starts the server, or `None` (with a message) when aiosmtpd is missing outside CI.
    pub fn start() -> Option<Self> {
        let available =
            Command::new("python3").args(["-c", "import aiosmtpd"]).output().is_ok_and(|o| o.status.success());
        if !available {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but python3 with aiosmtpd is missing: .ci/run must install it"
            );
            eprintln!("skipped: the SMTP peer needs python3 with aiosmtpd (pip install aiosmtpd)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let outdir = dir.path().join("mail");
        std::fs::create_dir(&outdir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("python3")
            .arg(repo().join("tests/peers/smtp_peer.py"))
            .arg(port.to_string())
            .arg(&cert)
            .arg(&key)
            .arg(&outdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "READY", "the SMTP peer did not start");
        Some(Self { port, ca_file: cert, outdir, child, _dir: dir })
    }

    /// The `n`-th message accepted (1-based), raw, waiting at most 20 s.
    pub fn message(&self, n: usize) -> Vec<u8> {
        let path = self.outdir.join(format!("{n}.eml"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(bytes) = std::fs::read(&path) {
                return bytes;
            }
            assert!(Instant::now() < deadline, "message {n} did not arrive");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many messages were accepted so far.
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.outdir).map_or(0, |d| {
            d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count()
        })
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
