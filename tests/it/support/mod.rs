//! A real daemon on 127.0.0.1, started in-process for each test, and the real peers its
//! outputs talk to.

pub mod browser;
pub mod fake_telegram;
pub mod http_sink;
pub mod smtp_peer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchboard::app::{self, Listeners};
use switchboard::config::Config;
use switchboard::event::EventId;
use switchboard::store::sqlite::SqliteStore;
use switchboard::store::{Store, StoredEvent};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A PostgreSQL schema of one test's own, made afresh in `TEST_DATABASE_URL`'s database.
pub struct PgSchema {
    pub name: String,
    /// `TEST_DATABASE_URL` as given.
    pub base_url: String,
}

impl PgSchema {
    /// Drops and creates schema `name`. `None`, having said the test (`what`) was skipped, when
    /// `TEST_DATABASE_URL` is unset; under `CI=true` that fails the test instead.
    pub async fn fresh(name: &str, what: &str) -> Option<Self> {
        let Ok(base_url) = std::env::var("TEST_DATABASE_URL") else {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but TEST_DATABASE_URL is unset");
            eprintln!("skipped: set TEST_DATABASE_URL to run {what}");
            return None;
        };
        let name = format!("{name}_{}", std::process::id());
        let options: sqlx::postgres::PgConnectOptions = base_url.parse().unwrap();
        let mut connection = sqlx::ConnectOptions::connect(&options).await.unwrap();
        for statement in [format!("DROP SCHEMA IF EXISTS {name} CASCADE"), format!("CREATE SCHEMA {name}")] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut connection).await.unwrap();
        }
        Some(Self { name, base_url })
    }

    /// Drops the schema and all it holds, once the test is done with it. A failure is only
    /// reported: the next run of the test drops it first anyway.
    pub async fn drop(self) {
        let options: sqlx::postgres::PgConnectOptions = self.base_url.parse().unwrap();
        let statement = format!("DROP SCHEMA {} CASCADE", self.name);
        let dropped = async {
            let mut connection = sqlx::ConnectOptions::connect(&options).await?;
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut connection).await
        };
        if let Err(error) = dropped.await {
            eprintln!("schema {} was not dropped: {error}", self.name);
        }
    }

    /// The database URL with this schema as the search path: a `storage.url`.
    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-c%20search_path%3D{}", self.base_url, self.name)
    }
}

/// A child process (a daemon started from the binary) that is killed when dropped, so a test
/// that fails leaves no daemon running.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The repository root, where `plugins/` and `tests/fixtures/` live.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the `switchboard` binary with `args` and `--config <config>` without blocking the
/// runtime (a test's daemon may share its thread); returns the exit code and stdout + stderr.
pub async fn switchboard_cli(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

/// A copy of the shipped plugins, each file's text passed through `edit`, for a daemon started
/// with [`Daemon::start_with_plugins`]: a test can shorten a plugin's setting, or add a plugin.
pub fn copy_of_plugins(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let plugins = tempfile::tempdir().expect("temporary directory");
    for entry in std::fs::read_dir(repo().join("plugins")).expect("the shipped plugins") {
        let path = entry.expect("a plugin file").path();
        let text = std::fs::read_to_string(&path).expect("a plugin's text");
        std::fs::write(plugins.path().join(path.file_name().expect("a file name")), edit(text)).expect("write");
    }
    plugins
}

/// A running daemon with its own temporary directory and database.
pub struct Daemon {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub client: reqwest::Client,
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    /// Starts a daemon whose `config.toml` is `extra` plus the shipped plugins and a temporary
    /// database.
    pub async fn start(extra: &str) -> Self {
        Self::start_with_plugins(&repo().join("plugins"), extra).await
    }

    /// [`Daemon::start`] with the plugins of `plugins` (a test's edited copy of the shipped ones).
    pub async fn start_with_plugins(plugins: &Path, extra: &str) -> Self {
        // Through the test writer, so a daemon's log shows only when its test fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temporary directory");
        let config_path = dir.path().join("config.toml");
        let text = format!("[paths]\nplugins = \"{}\"\n\n{extra}\n", plugins.display());
        std::fs::write(&config_path, text).expect("write config");
        Self::launch(dir).await
    }

    /// Stops the daemon and starts it again on the same folder (its config and database), as
    /// a restart of the service would, on new ports.
    pub async fn restart(self) -> Self {
        self.shutdown.cancel();
        self.task.await.expect("daemon task").expect("daemon ran cleanly");
        Self::launch(self.dir).await
    }

    async fn launch(dir: tempfile::TempDir) -> Self {
        let config_path = dir.path().join("config.toml");
        let config = Config::load(&config_path).unwrap_or_else(|errors| panic!("test config is valid: {errors}"));
        let hooks = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = hooks.local_addr().expect("local address");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin_addr = admin.local_addr().expect("local address");
        let shutdown = CancellationToken::new();
        let listeners = Listeners { hooks, admin: Some(admin) };
        let task = tokio::spawn(app::run(config, Some(config_path), listeners, shutdown.clone()));
        Self { addr, admin_addr, client: reqwest::Client::new(), dir, shutdown, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// The configuration file the daemon reads (and reloads).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// The text the daemon's config file starts with (plugins from the repository).
    pub fn config_prelude() -> String {
        format!("[paths]\nplugins = \"{}\"\n\n", repo().join("plugins").display())
    }

    /// Opens the daemon's database to look at what it stored.
    pub async fn store(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.database(), 1000).await.expect("open the daemon's database"))
    }

    /// The daemon's folder (its config, database and any files its outputs write).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("data/switchboard.db")
    }

    /// Posts a form body to `/hooks/{vendor}` as a vendor does.
    pub async fn post_form(&self, vendor: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/hooks/{vendor}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.trim_end().to_owned())
            .send()
            .await
            .unwrap()
    }

    /// The stored event a response names in its event-id header.
    pub async fn stored(&self, response: &reqwest::Response) -> StoredEvent {
        let id: EventId = response
            .headers()
            .get(switchboard::ingest::EVENT_ID_HEADER)
            .expect("an accepted webhook names its event")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        self.store().await.event(id).await.unwrap().expect("the acknowledged event is stored")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("daemon task").expect("daemon ran cleanly");
    }
}
