//! Vendor plugins: `plugins/<vendor>.toml` files that teach Switchboard a vendor's webhooks.
//!
//! Stage 2 of the pipeline (ingest → **plugin** → router → store → …). A plugin is data: [`spec`] reads the
//! file as written, [`compile`] checks it once and builds a [`Vendor`], and
//! [`Vendor::normalize`] is then a pure function from a verified request to an [`Event`]; an event
//! of a plugin's sequence is classified once more with what its earlier events showed
//! ([`Vendor::recall`], [`Vendor::reclassify`]), which ingest reads from the store. A plugin
//! that does not compile is a configuration error with file and line, never a runtime surprise.
//!
//! [`Event`]: crate::event::Event

mod compile;
mod normalize;
pub mod reply;
pub mod request;
mod sequence;
mod settings;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::path::Path as FsPath;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::condition::Condition;
use crate::diagnostics::{ConfigIssue, Source};
use crate::event::{EventId, Kind, Path};

use crate::body;
pub use crate::body::{BodyFormat, DecodeError};
pub use normalize::{NormalizeError, Normalized};
pub use sequence::{RECALL_LIMIT, Repeat, Seen, SequenceRef};
pub use settings::VendorSettings;
pub use spec::Echo;

/// The plugins shipped in `plugins/`, compiled into the binary for the embedded default.
pub const EMBEDDED_PLUGINS: &[(&str, &str)] = &[
    ("callkeeper", include_str!("../../plugins/callkeeper.toml")),
    ("calltracking", include_str!("../../plugins/calltracking.toml")),
    ("envybox", include_str!("../../plugins/envybox.toml")),
    ("jivo", include_str!("../../plugins/jivo.toml")),
];

/// A compiled plugin.
#[derive(Debug)]
pub struct Vendor {
    name: String,
    title: String,
    format: BodyFormat,
    methods: Vec<Method>,
    event_source: EventSource,
    dedup: Vec<Path>,
    dedup_window: Option<std::time::Duration>,
    reply: Reply,
    aliases: Vec<(Path, Vec<Path>)>,
    events: HashMap<String, EventDef>,
    fields: Vec<(&'static str, Vec<Path>)>,
    sequences: Vec<sequence::Sequence>,
    classify: Vec<Rule>,
    legacy_paths: Vec<LegacyPath>,
    samples: Vec<Sample>,
}

/// An example webhook from the plugin's `[[sample]]`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub content_type: String,
    /// The event its address names (`[[sample]] event`), for plugins that read it from the URL.
    pub url_event: Option<String>,
    body: String,
}

impl Sample {
    /// The body to post, with `$UNIQUE` made fresh.
    pub fn body(&self) -> String {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let millis = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
        let unique = millis * 1000 + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000;
        self.body.replace("$UNIQUE", &unique.to_string())
    }
}

/// What the vendor gets back for an accepted webhook.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: ReplyBody,
}

/// The body of [`Reply`].
#[derive(Debug, Clone)]
pub enum ReplyBody {
    Empty,
    Json(Value),
    Text(String),
}

/// Where a plugin reads the event's name: the compiled `event = { … }`.
#[derive(Debug)]
struct EventSource {
    field: Option<Path>,
    query: Option<String>,
    path: bool,
    default: Option<String>,
    required: bool,
}

#[derive(Debug)]
struct EventDef {
    name: String,
    kind: Kind,
}

#[derive(Debug)]
struct Rule {
    when: Condition,
    kind: Option<Kind>,
    set: Vec<(&'static str, Value)>,
}

/// A path outside `/hooks/` that also reaches this vendor.
#[derive(Debug, Clone)]
pub struct LegacyPath {
    pub path: String,
    pub event: Option<String>,
    pub echo: Echo,
}

impl Vendor {
    /// The plugin's name, which is also its URL segment: `/hooks/<name>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A human title (`Envybox / CallbackKiller`).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Whether the URL's segment after the secret names the event (`event.path`).
    pub fn takes_event_from_path(&self) -> bool {
        self.event_source.path
    }

    /// Whether the vendor sends webhooks with this method.
    pub fn accepts(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// The reply for accepted webhooks, before per-event additions from the config.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }

    /// The event names this plugin knows, sorted, each once.
    pub fn event_names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.events.values().map(|def| def.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter()
    }

    /// The event values the plugin lists in `[events]` (what a vendor sends, before renaming),
    /// sorted.
    pub fn event_values(&self) -> impl Iterator<Item = &str> {
        let mut values: Vec<&str> = self.events.keys().map(String::as_str).collect();
        values.sort_unstable();
        values.into_iter()
    }

    /// The plugin's example webhooks.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// What the plugin makes of a sample, as ingest would.
    ///
    /// # Errors
    /// The body does not decode, or the plugin refuses it.
    pub fn try_sample(&self, sample: &Sample) -> Result<Normalized, NormalizeError> {
        let raw = sample.body();
        let payload = body::decode(self.format, Some(&sample.content_type), raw.as_bytes())?;
        let now = chrono::Utc::now();
        self.interpret(payload, sample.url_event.as_deref(), raw.as_bytes(), EventId::new(now), now)
    }

    /// The webhook address (path and query, after the host) a sample is posted to, given the
    /// vendor's secret: its event in the path or the query when the plugin reads it there.
    pub fn sample_uri(&self, sample: &Sample, secret: Option<&str>) -> String {
        let encode =
            |text: &str| percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string();
        let mut uri = format!("/hooks/{}", self.name);
        if let Some(secret) = secret {
            uri = format!("{uri}/{}", encode(secret));
        }
        match (&sample.url_event, &self.event_source) {
            (Some(event), source) if source.path => format!("{uri}/{}", encode(event)),
            (Some(event), EventSource { query: Some(query), .. }) => {
                format!("{uri}?{}={}", encode(query), encode(event))
            }
            _ => uri,
        }
    }

    /// The plugin's legacy paths.
    pub fn legacy_paths(&self) -> &[LegacyPath] {
        &self.legacy_paths
    }
}

/// Every loaded plugin, by name, plus the legacy paths that lead to them.
#[derive(Debug, Default)]
pub struct VendorRegistry {
    vendors: BTreeMap<String, Arc<Vendor>>,
    legacy: HashMap<String, (String, LegacyPath)>,
    /// Plugin files that did not compile, by name: not "unknown", just broken.
    broken: Vec<String>,
}

impl VendorRegistry {
    /// The plugin called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Vendor>> {
        self.vendors.get(name)
    }

    /// The plugin and legacy entry that own an exact request path.
    pub fn legacy(&self, path: &str) -> Option<(&Arc<Vendor>, &LegacyPath)> {
        let (vendor, legacy) = self.legacy.get(path)?;
        Some((self.vendors.get(vendor)?, legacy))
    }

    /// Whether a plugin file of this name exists but did not compile.
    pub fn is_broken(&self, name: &str) -> bool {
        self.broken.iter().any(|broken| broken == name)
    }

    /// All plugins in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Vendor>> {
        self.vendors.values()
    }

    /// Compiles every `*.toml` in `dir`, collecting every problem rather than stopping at one.
    /// The plugins that compiled are returned even when others did not, so that the rest of the
    /// configuration can still be checked against them.
    pub fn load_dir(dir: &FsPath) -> (Self, Vec<ConfigIssue>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => {
                let issue = ConfigIssue {
                    file: dir.display().to_string(),
                    line: None,
                    key: String::new(),
                    message: format!("cannot read the plugin directory: {error}"),
                };
                return (Self::default(), vec![issue]);
            }
        };
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        paths.sort();
        let mut sources = Vec::with_capacity(paths.len());
        let mut issues = Vec::new();
        for path in paths {
            match Source::read(&path) {
                Ok(source) => sources.push(source),
                Err(issue) => issues.push(issue),
            }
        }
        Self::from_sources(&sources, issues)
    }

    /// Compiles the plugins built into the binary. Issues arise only if a shipped plugin is
    /// broken, which the test suite rules out.
    pub fn embedded() -> (Self, Vec<ConfigIssue>) {
        let sources: Vec<Source> = EMBEDDED_PLUGINS
            .iter()
            .map(|(name, text)| Source::embedded(&format!("plugins/{name}.toml"), text))
            .collect();
        Self::from_sources(&sources, Vec::new())
    }

    fn from_sources(sources: &[Source], mut issues: Vec<ConfigIssue>) -> (Self, Vec<ConfigIssue>) {
        let mut registry = Self::default();
        for source in sources {
            let vendor = match compile::compile(source) {
                Ok(vendor) => vendor,
                Err(mut found) => {
                    issues.append(&mut found);
                    if let Some(stem) = source.path().file_stem().and_then(|s| s.to_str()) {
                        registry.broken.push(stem.to_owned());
                    }
                    continue;
                }
            };
            for legacy in &vendor.legacy_paths {
                if let Some((owner, _)) = registry.legacy.get(&legacy.path) {
                    issues.push(source.issue(
                        None,
                        "legacy_path",
                        format!("path `{}` is already claimed by plugin `{owner}`", legacy.path),
                    ));
                } else {
                    registry.legacy.insert(legacy.path.clone(), (vendor.name.clone(), legacy.clone()));
                }
            }
            registry.vendors.insert(vendor.name.clone(), Arc::new(vendor));
        }
        (registry, issues)
    }
}

#[cfg(test)]
mod tests;
