//! Shared by the targets: the shipped plugins, a vendor body through its plugin, an event.

// Each target uses part of this module.
#![allow(dead_code)]

use std::sync::OnceLock;

use switchboard::event::{Event, EventId};
use switchboard::body::{self, BodyFormat};
use switchboard::plugin::VendorRegistry;

pub fn vendors() -> &'static VendorRegistry {
    static VENDORS: OnceLock<VendorRegistry> = OnceLock::new();
    VENDORS.get_or_init(|| {
        let (registry, issues) = VendorRegistry::embedded();
        assert!(issues.is_empty(), "{issues:?}");
        registry
    })
}

/// What ingest does with a body: decode it as the vendor's format says (for the content type
/// the first byte picks), then let the plugin interpret it. Errors are fine; panics are not.
pub fn ingest(vendor: &str, format: BodyFormat, data: &[u8]) -> Option<Event> {
    let (selector, raw) = data.split_first()?;
    let content_type = match selector % 4 {
        0 => Some("application/json"),
        1 => Some("application/x-www-form-urlencoded"),
        2 => Some("multipart/form-data; boundary=xYzZY"),
        _ => None,
    };
    let plugin = vendors().get(vendor)?;
    let payload = body::decode(format, content_type, raw).ok()?;
    let now = chrono_now();
    let normalized = plugin.interpret(payload, None, raw, EventId::new(now), now).ok()?;
    // What every later stage reads of it must be well-formed too.
    let context = switchboard::render::RenderContext::of_event(&normalized.event);
    assert!(context.value().is_object());
    Some(normalized.event)
}

pub fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(1_763_700_000_000).expect("a valid time")
}

/// A realistic event for the targets that need one.
pub fn sample_event() -> Event {
    let vendor = vendors().get("jivo").expect("jivo ships");
    vendor.try_sample(&vendor.samples()[0]).expect("the shipped sample reads").event
}
