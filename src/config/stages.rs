//! The configuration as each stage reads it: the stages name what they need as traits, and a
//! loaded [`Config`] provides them, so nothing below `config` depends on how it is read.

use std::time::Duration;

use ipnet::IpNet;

use super::Config;
use crate::delivery::{DeliveryConfig, DeliverySettings};
use crate::desk::DeskConfig;
use crate::ingest::IngestConfig;
use crate::outputs::OutputEntry;
use crate::plugin::{VendorRegistry, VendorSettings};
use crate::render::TemplateSet;
use crate::router::Routes;

impl IngestConfig for Config {
    fn vendors(&self) -> &VendorRegistry {
        &self.vendors
    }

    fn vendor_settings(&self, vendor: &str) -> &VendorSettings {
        Config::vendor_settings(self, vendor)
    }

    fn routes(&self) -> &Routes {
        &self.routes
    }

    fn sends_to(&self, output: &str) -> bool {
        DeliveryConfig::sends_to(self, output)
    }

    fn body_limit(&self) -> usize {
        self.server.body_limit_bytes
    }

    fn read_timeout(&self) -> Duration {
        self.server.read_timeout
    }

    fn trusted_proxies(&self) -> &[IpNet] {
        &self.server.trusted_proxies
    }

    fn dedup_window(&self) -> Duration {
        self.storage.dedup_window
    }
}

impl DeskConfig for Config {
    fn inboxes(&self) -> crate::desk::Named {
        // Only where a route puts buttons: reading a bot's updates takes them from any other
        // program that reads them.
        let offers_buttons = |name: &str| {
            self.routes
                .iter()
                .any(|route| route.enabled && route.targets.iter().any(|t| t.output == name && !t.buttons.is_empty()))
        };
        self.outputs
            .iter()
            .filter(|(name, _)| offers_buttons(name))
            .filter_map(|(name, entry)| {
                entry.output.as_ref().filter(|o| o.inbox().is_some()).map(|o| (name.clone(), o.clone()))
            })
            .collect()
    }

    fn english(&self) -> bool {
        self.templates.english()
    }

    fn public_url(&self) -> Option<&str> {
        self.server.public_url.as_deref()
    }
}

impl DeliveryConfig for Config {
    fn routes(&self) -> &Routes {
        &self.routes
    }

    fn templates(&self) -> &TemplateSet {
        &self.templates
    }

    fn output(&self, name: &str) -> Option<&OutputEntry> {
        self.outputs.get(name)
    }

    fn settings(&self) -> &DeliverySettings {
        &self.delivery
    }
}
