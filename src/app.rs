//! Wiring the stages together: open the store, serve ingest, shut down cleanly.
//!
//! [`run`] takes already bound listeners and a cancellation token, so tests start a real daemon
//! on `127.0.0.1:0` and stop it without signals.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::delivery;
use crate::desk;
use crate::ingest::{self, IngestState};
use crate::reload::Reloader;
use crate::store::Wake;
use crate::{server, store};

/// The sockets the daemon serves, bound by the caller.
pub struct Listeners {
    /// Vendors' webhooks (`server.listen`).
    pub hooks: TcpListener,
    /// Health, metrics, reload and the dashboard (`server.admin_listen`), when on.
    pub admin: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses the configuration names.
    ///
    /// # Errors
    /// An address is in use or not available.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let hooks = TcpListener::bind(config.server().listen)
            .await
            .with_context(|| format!("cannot listen on {} (server.listen)", config.server().listen))?;
        let admin = match config.server().admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (server.admin_listen)"))?,
            ),
            None => None,
        };
        Ok(Self { hooks, admin })
    }
}

/// Runs the daemon until `shutdown` is cancelled, then stops accepting, lets requests in flight
/// finish and closes the store. `config_path` is where reloads read from (`None`: the embedded
/// default).
///
/// # Errors
/// The store cannot be opened, or serving fails.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    crate::metrics::handle();
    for warning in config.warnings() {
        tracing::warn!(message = "Configuration warning.", detail = %warning);
    }
    let store = store::open(&config.storage().url, config.storage().rejected_keep)
        .await
        .with_context(|| format!("cannot open the store at {:?}", config.storage().url))?;
    match store.recover().await {
        Ok(0) => {}
        Ok(count) => tracing::warn!(message = "Deliveries interrupted by the last shutdown resume now.", count),
        Err(error) => {
            tracing::warn!(message = "Could not release leases of the last run; they resume when they expire.", %error)
        }
    }
    let hooks_addr = listeners.hooks.local_addr()?;
    tracing::info!(
        message = "Switchboard is ready.",
        config = %config.origin(),
        listen = %hooks_addr,
        vendors = %config.vendors().iter().map(|v| v.name()).collect::<Vec<_>>().join(","),
    );
    // Read once: a listener's limits take effect at the next start.
    let limits = server::Limits {
        header_timeout: config.server().header_timeout,
        max_connections: config.server().max_connections,
        drain: config.delivery().shutdown_grace,
    };
    let config = Arc::new(ArcSwap::from_pointee(config));
    let reloader = Reloader::new(config_path, config.clone());
    tokio::spawn(reloader.clone().on_sighup(shutdown.clone()));
    tokio::spawn(reloader.clone().on_file_change(shutdown.clone()));
    let wake = Wake::default();
    let state =
        IngestState { config: config.clone(), store: store.clone(), wake: wake.clone(), sequences: Arc::default() };
    if let Some(admin) = listeners.admin {
        let addr = admin.local_addr()?;
        let app = admin::router(AdminState {
            reloader: reloader.clone(),
            store: store.clone(),
            ingest: state.clone(),
            hooks_addr,
        });
        tokio::spawn(server::serve(admin, app, limits, "admin", None, shutdown.clone()));
        tracing::info!(message = "Admin listener ready.", listen = %addr);
    }
    tokio::spawn(prune_periodically(store.clone(), config.clone(), shutdown.clone()));
    tokio::spawn(crate::systemd::watchdog(shutdown.clone()));
    crate::systemd::ready(&format!("serving webhooks on {hooks_addr}"));
    tokio::spawn(desk::run(store.clone(), config.clone(), shutdown.clone()));
    let workers = tokio::spawn(delivery::run(store.clone(), config.clone(), wake, shutdown.clone()));
    let malformed = ingest::malformed_reporter(store.clone());
    let hooks = ingest::router(state).merge(desk::router(store.clone(), config.clone()));
    server::serve(listeners.hooks, hooks, limits, "webhooks", Some(malformed), shutdown.clone()).await;
    // Ingest has stopped; let attempts in flight finish before the store closes.
    shutdown.cancel();
    if let Err(error) = workers.await {
        tracing::error!(message = "The delivery task failed.", %error);
    }
    store.close().await;
    tracing::info!(message = "Switchboard stopped.");
    Ok(())
}

/// Deletes what is older than `storage.retention_days` (and has nothing pending), hourly.
async fn prune_periodically(
    store: Arc<dyn crate::store::Store>,
    config: Arc<ArcSwap<Config>>,
    shutdown: CancellationToken,
) {
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = hourly.tick() => {}
        }
        let retention =
            chrono::TimeDelta::from_std(config.load().storage().retention).unwrap_or(chrono::TimeDelta::MAX);
        match store.prune(chrono::Utc::now() - retention).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(message = "Old events pruned.", count),
            Err(error) => tracing::warn!(message = "Pruning old events failed; will try again in an hour.", %error),
        }
    }
}
