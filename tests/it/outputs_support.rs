//! Building outputs and messages the way the daemon does, for tests that talk to a peer directly.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use switchboard::body;
use switchboard::event::{Event, EventId};
use switchboard::outputs::{self, Attempt, Message, Output, ValidationContext};
use switchboard::plugin::VendorRegistry;
use switchboard::render::{HelperSettings, TemplateSet, TemplateSource};

use crate::support::repo;

pub fn helpers() -> HelperSettings {
    HelperSettings { timezone: chrono_tz::Europe::Moscow, english: false }
}

/// Builds an output of `kind` from the TOML of its table.
pub fn build(kind: &str, table: &str) -> Result<Arc<dyn Output>, String> {
    let table: toml::Table = toml::from_str(table).unwrap();
    let cx = ValidationContext { base: Path::new("."), helpers: helpers(), warnings: Default::default() };
    outputs::validate("test", kind, table, &cx).and_then(|settings| settings.build()).map_err(|error| error.to_string())
}

/// Validates an output's table without building it: what `switchboard check` sees.
pub fn validate(kind: &str, table: &str) -> Result<(), String> {
    let table: toml::Table = toml::from_str(table).unwrap();
    let cx = ValidationContext { base: Path::new("."), helpers: helpers(), warnings: Default::default() };
    outputs::validate("test", kind, table, &cx).map(drop).map_err(|error| error.to_string())
}

/// The event a fixture becomes, received at a fixed time.
pub fn fixture_event(vendor: &str, file: &str) -> Event {
    let (registry, _) = VendorRegistry::load_dir(&repo().join("plugins"));
    let raw = std::fs::read(repo().join("tests/fixtures").join(vendor).join(file)).unwrap();
    let payload = if file.ends_with(".form") {
        body::decode(body::BodyFormat::Form, None, raw.trim_ascii()).unwrap()
    } else {
        body::decode(body::BodyFormat::Json, None, &raw).unwrap()
    };
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 15, 0).unwrap();
    registry.get(vendor).unwrap().interpret(payload, None, &raw, EventId::new(at), at).unwrap().event
}

/// The shipped templates, in Russian.
pub fn templates() -> TemplateSet {
    TemplateSet::load(&TemplateSource { dir: None, language: "ru".into(), helpers: helpers() }).unwrap()
}

/// A shipped template rendered for `output` from `event`.
pub fn render(template: &str, output: &dyn Output, event: &Event) -> Message {
    let set = templates();
    switchboard::delivery::compose(&set, template, output, &switchboard::render::RenderContext::of_event(event))
        .unwrap()
}

/// The same text in every part, for outputs without templated settings.
pub fn text_message(text: &str) -> Message {
    let parts = switchboard::render::Part::ALL.into_iter().map(|part| (part, text.to_owned())).collect();
    Message::new(parts, std::collections::BTreeMap::new())
}

pub fn attempt(number: u32) -> Attempt {
    Attempt { delivery: "01KAZTESTDELIVERY000000001".into(), number }
}
