//! What ingest reads of the running configuration, as a trait the configuration implements:
//! ingest depends on the plugins, the routes and the store, never on how `config.toml` is read.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::event::Event;
use crate::plugin::{VendorRegistry, VendorSettings};
use crate::router::{Plan, Routes};

/// One snapshot of the configuration, as ingest reads it.
pub trait IngestConfig: Send + Sync {
    fn vendors(&self) -> &VendorRegistry;
    /// `[vendors.<name>]`, or the defaults when there is none.
    fn vendor_settings(&self, vendor: &str) -> &VendorSettings;
    fn routes(&self) -> &Routes;
    /// Whether `output` is configured and switched on, so a delivery to it can be sent.
    fn sends_to(&self, output: &str) -> bool;
    /// `server.body_limit_bytes`.
    fn body_limit(&self) -> usize;
    /// `server.read_timeout_secs`: the whole body within this.
    fn read_timeout(&self) -> Duration;
    /// `server.trusted_proxies`: whose `X-Forwarded-For` names the sender.
    fn trusted_proxies(&self) -> &[IpNet];
    /// `storage.dedup_window_secs`, for plugins that do not set their own.
    fn dedup_window(&self) -> Duration;

    /// The routes that take `event` and the deliveries they ask for, planned at `at`.
    fn plan(&self, event: &Event, at: DateTime<Utc>) -> Plan {
        self.routes().plan(event, at, |output| self.sends_to(output))
    }
}

/// The live configuration: a reload swaps the snapshot whole, and a request reads the one
/// current when it arrived from start to end.
pub trait LiveConfig: Send + Sync {
    fn current(&self) -> Arc<dyn IngestConfig>;
}

impl<C: IngestConfig + 'static> LiveConfig for ArcSwap<C> {
    fn current(&self) -> Arc<dyn IngestConfig> {
        self.load_full()
    }
}
