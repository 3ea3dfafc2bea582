//! Reloading the configuration without a restart: on SIGHUP, on `POST /-/reload`, and when
//! `config.toml`, a plugin or a template changes on disk.
//!
//! A reload compiles the whole new configuration; only if it is valid does it replace the live
//! one, atomically. Otherwise the old one keeps serving, and the failure is logged, counted and
//! shown on `/-/status` and `/readyz`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigErrors};
use crate::metrics;

/// File changes within this window count as one edit: an editor's save is several events.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What `/-/status` shows about the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    pub loaded_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// What asked for the last attempt: `SIGHUP`, `POST /-/reload` or `file change`.
    pub last_trigger: Option<String>,
    /// Every problem of the last failed attempt; empty once a reload succeeds.
    pub last_error: Vec<String>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

/// Reloads the live configuration from where it came from.
#[derive(Clone)]
pub struct Reloader {
    /// The file, or `None` for the embedded default.
    path: Option<PathBuf>,
    live: Arc<ArcSwap<Config>>,
    status: Arc<Mutex<ReloadStatus>>,
    /// Serialises reloads: a file event and a SIGHUP at once still load one at a time.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Reloader {
    pub fn new(path: Option<PathBuf>, live: Arc<ArcSwap<Config>>) -> Self {
        let status = ReloadStatus {
            loaded_at: Utc::now(),
            last_attempt_at: None,
            last_trigger: None,
            last_error: Vec::new(),
            reloads_ok: 0,
            reloads_failed: 0,
        };
        ::metrics::gauge!(metrics::CONFIG_LAST_RELOAD_OK).set(1.0);
        metrics::loaded(status.loaded_at);
        announce(&live.load());
        Self { path, live, status: Arc::new(Mutex::new(status)), gate: Arc::default() }
    }

    /// The live configuration.
    pub fn live(&self) -> &Arc<ArcSwap<Config>> {
        &self.live
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Loads the configuration again and swaps it in if it is valid.
    ///
    /// # Errors
    /// Every problem of the new configuration; the old one stays live.
    pub async fn reload(&self, why: &str) -> Result<(), ConfigErrors> {
        let _one_at_a_time = self.gate.lock().await;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || match &path {
            Some(path) => Config::load(path),
            None => Config::embedded(),
        })
        .await
        .unwrap_or_else(|error| {
            Err(ConfigErrors(vec![crate::config::ConfigIssue {
                file: String::new(),
                line: None,
                key: String::new(),
                message: format!("the reload task failed: {error}"),
            }]))
        });
        let now = Utc::now();
        let mut status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        status.last_attempt_at = Some(now);
        status.last_trigger = Some(why.to_owned());
        match loaded {
            Ok(config) => {
                let old = self.live.load();
                for (key, changed) in [
                    ("server.listen", old.server().listen != config.server().listen),
                    ("storage.url", old.storage().url != config.storage().url),
                ] {
                    if changed {
                        tracing::warn!(message = "A changed setting takes effect only after a restart.", key);
                    }
                }
                announce(&config);
                metrics::loaded(now);
                self.live.store(Arc::new(config));
                status.loaded_at = now;
                status.last_error.clear();
                status.reloads_ok += 1;
                ::metrics::counter!(metrics::CONFIG_RELOADS, "result" => "ok").increment(1);
                ::metrics::gauge!(metrics::CONFIG_LAST_RELOAD_OK).set(1.0);
                tracing::info!(message = "Configuration reloaded.", trigger = why);
                Ok(())
            }
            Err(errors) => {
                status.last_error = errors.0.iter().map(ToString::to_string).collect();
                status.reloads_failed += 1;
                ::metrics::counter!(metrics::CONFIG_RELOADS, "result" => "failed").increment(1);
                ::metrics::gauge!(metrics::CONFIG_LAST_RELOAD_OK).set(0.0);
                tracing::error!(message = "Reload refused; the previous configuration keeps serving.", trigger = why, problems = %errors);
                Err(errors)
            }
        }
    }

    /// Reloads on SIGHUP until `shutdown`.
    pub async fn on_sighup(self, shutdown: CancellationToken) {
        #[cfg(unix)]
        {
            let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                tracing::warn!(message = "Cannot listen for SIGHUP; reload with POST /-/reload instead.");
                return;
            };
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = hangup.recv() => { let _ = self.reload("SIGHUP").await; }
                }
            }
        }
        #[cfg(not(unix))]
        shutdown.cancelled().await;
    }

    /// Reloads when the files the configuration was built from change, until `shutdown`.
    pub async fn on_file_change(self, shutdown: CancellationToken) {
        let Some(config_path) = self.path.clone() else { return };
        let (changed, mut changes) = mpsc::unbounded_channel();
        let watched = watched_paths(&config_path, &self.live.load());
        let filter = watched.clone();
        let mut watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                // Reading the files (as a reload does) is an access event; only changes count,
                // or every reload would trigger the next.
                let changes_content = matches!(
                    event.kind,
                    notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_)
                );
                if changes_content && event.paths.iter().any(|p| relevant(p, &filter)) {
                    let _ = changed.send(());
                }
            }
        }) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(message = "Cannot watch the configuration files; reload with SIGHUP or POST /-/reload.", %error);
                return;
            }
        };
        for (path, mode) in &watched.roots {
            if let Err(error) = watcher.watch(path, *mode) {
                tracing::warn!(message = "Cannot watch a folder.", path = %path.display(), %error);
            }
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                event = changes.recv() => {
                    if event.is_none() { return; }
                    // Wait for the edit to settle, swallowing the burst of events it causes.
                    loop {
                        match tokio::time::timeout(DEBOUNCE, changes.recv()).await {
                            Ok(Some(())) => continue,
                            Ok(None) => return,
                            Err(_) => break,
                        }
                    }
                    let _ = self.reload("file change").await;
                }
            }
        }
    }
}

/// Folders to watch, and which files in them matter.
#[derive(Debug, Clone)]
struct Watched {
    roots: Vec<(PathBuf, RecursiveMode)>,
    config_file: PathBuf,
    plugins: Option<PathBuf>,
    templates: Option<PathBuf>,
}

fn watched_paths(config_path: &Path, config: &Config) -> Watched {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let config_file = canonical(config_path);
    let folder = config_file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    // The folder, not the file: editors replace a file by renaming a new one over it.
    let mut roots = vec![(folder, RecursiveMode::NonRecursive)];
    let plugins = config.plugins_dir().map(canonical);
    let templates = config.templates_dir().map(canonical);
    if let Some(dir) = &plugins {
        roots.push((dir.clone(), RecursiveMode::NonRecursive));
    }
    if let Some(dir) = &templates {
        roots.push((dir.clone(), RecursiveMode::Recursive));
    }
    Watched { roots, config_file, plugins, templates }
}

/// Only the config file, plugin files and templates count: the database may live beside them
/// and changes with every event.
fn relevant(path: &Path, watched: &Watched) -> bool {
    let has = |ext: &str| path.extension().is_some_and(|e| e == ext);
    path.file_name() == watched.config_file.file_name() && path.parent() == watched.config_file.parent()
        || watched.plugins.as_ref().is_some_and(|dir| path.starts_with(dir) && has("toml"))
        || watched.templates.as_ref().is_some_and(|dir| path.starts_with(dir) && has("hbs"))
}

/// The configuration's vendors and outputs on `/metrics` at zero, and its fingerprint.
fn announce(config: &Config) {
    metrics::known(
        config.vendors().iter().map(|vendor| vendor.name()),
        config.outputs().iter().map(|(name, entry)| (name.as_str(), entry.kind.as_str())),
    );
    metrics::fingerprint(config.fingerprint());
}
