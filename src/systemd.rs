//! The service manager (systemd with `Type=notify`): told when the daemon serves, given a
//! watchdog heartbeat while its runtime runs, and told when it begins to stop. Outside systemd (no
//! `NOTIFY_SOCKET`, no `WATCHDOG_USEC`) every call does nothing.
//!
//! Protocol: <https://www.freedesktop.org/software/systemd/man/sd_notify.html>.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// The daemon serves: both listeners accept, the store is open. `status` is what
/// `systemctl status` shows.
pub fn ready(status: &str) {
    tell(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The daemon is stopping: it finishes what is in flight, then exits.
pub fn stopping() {
    tell(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing what is in flight")]);
}

fn tell(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(message = "Could not tell the service manager how the daemon is.", %error);
    }
}

/// With `WatchdogSec=` set, a heartbeat at half the interval from the async runtime: a daemon
/// whose runtime is wedged (every worker blocked) misses its beats and systemd restarts it.
/// The store's health is left to `/readyz`: a restart cannot bring a database back, and a
/// daemon that keeps running answers 503 and recovers by itself when it returns, where one
/// restarted in a loop would hit the unit's start limit and stay down. Returns at once when
/// the watchdog is off, otherwise at `shutdown`.
pub async fn watchdog(shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else { return };
    let beat = (interval / 2).max(Duration::from_millis(100));
    tracing::info!(message = "The service manager's watchdog is on.", interval_ms = interval.as_millis());
    let mut ticks = tokio::time::interval(beat);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => tell(&[NotifyState::Watchdog]),
        }
    }
}
