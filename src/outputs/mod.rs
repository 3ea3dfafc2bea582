//! Outputs: where rendered messages go (Telegram, email, HTTP, the log).
//!
//! Stage 7 of the pipeline (… → delivery → **outputs**). Each output is configured as
//! `[outputs.<name>]` with a `type`, validated when the configuration loads and built once. An
//! output makes one attempt and classifies its result ([`DeliveryError`]); retrying and
//! scheduling belong to the delivery stage alone, and so does rendering: an output declares the
//! template parts it needs ([`Output::plan`]) and its settings that are templates
//! ([`Output::templated`]), and receives them finished in a [`Message`].

pub mod email;
mod error;
pub mod http;
pub mod log;
pub mod telegram;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use error::{DETAIL_LIMIT, DeliveryError, Disposition, Reason};

use serde_json::Value;

use crate::render::{Escape, JsonTemplate, Part};

/// Output types a `[outputs.<name>]` table may name.
pub const KNOWN_TYPES: &[&str] = &["telegram", "email", "http", "log"];

/// A part an output needs from a template, and how to escape it.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub part: Part,
    /// Parts used instead, in order, when the template lacks `part`.
    pub fallbacks: &'static [Part],
    pub escape: Escape,
    /// Whether a template without it (or a fallback) cannot serve this output.
    pub required: bool,
}

/// What an output sends, finished: the template parts it asked for ([`Output::plan`]) and its
/// templated settings ([`Output::templated`]), rendered for one event before the output sees it.
/// An output renders nothing itself, so a template that fails is a clear failure before any send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    parts: BTreeMap<Part, String>,
    settings: BTreeMap<&'static str, Value>,
}

impl Message {
    pub fn new(parts: BTreeMap<Part, String>, settings: BTreeMap<&'static str, Value>) -> Self {
        Self { parts, settings }
    }

    /// A templated setting, rendered: [`Templated::setting`] names it.
    pub fn setting(&self, name: &str) -> Option<&Value> {
        self.settings.get(name)
    }

    pub fn get(&self, part: Part) -> Option<&str> {
        self.parts.get(&part).map(String::as_str)
    }

    pub fn parts(&self) -> impl Iterator<Item = (Part, &str)> {
        self.parts.iter().map(|(part, text)| (*part, text.as_str()))
    }
}

/// Which attempt this is, for logs and idempotency keys.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Stable across retries: the idempotency key.
    pub delivery: String,
    pub number: u32,
}

/// What a successful attempt leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The destination's id for the message (Telegram message id, SMTP queue id), if any.
    pub remote_id: Option<String>,
    pub summary: String,
}

/// A pacing bucket and the least interval between two sends in it: delivery sends no faster
/// than an output's buckets allow, so bursts queue instead of failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    pub key: String,
    pub interval: Duration,
    /// One send at a time: the bucket stays closed until the send in flight has its answer, so
    /// a "slow down" reaches the next send before it leaves (and messages keep their order).
    pub exclusive: bool,
}

/// A setting of an output that is a template (an HTTP URL and headers, an email's `reply_to`):
/// rendered for each event with the message's parts, and handed over in [`Message::setting`].
pub struct Templated {
    pub setting: &'static str,
    pub template: JsonTemplate,
}

impl std::fmt::Debug for Templated {
    // The template may hold a token (an `Authorization` header): only its name is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templated").field("setting", &self.setting).finish_non_exhaustive()
    }
}

/// A configured destination, built once per configuration load.
#[async_trait]
pub trait Output: Send + Sync + std::fmt::Debug + 'static {
    /// `telegram` | `email` | `http` | `log`.
    fn kind(&self) -> &'static str;
    /// The template parts this output sends, and their escaping.
    fn plan(&self) -> &[Need];
    /// The settings that are templates, rendered per event into the [`Message`]; none by default.
    fn templated(&self) -> &[Templated] {
        &[]
    }
    /// One attempt. Never retries or sleeps: the delivery stage owns time.
    async fn send(&self, message: &Message, attempt: &Attempt) -> Result<Receipt, DeliveryError>;
    /// The pacing buckets a message counts against; none by default.
    fn pacing(&self) -> &[Pace] {
        &[]
    }
}

/// A configured output; `output` is `None` when it is switched off (`enabled = false`).
#[derive(Debug, Clone)]
pub struct OutputEntry {
    pub kind: String,
    pub output: Option<Arc<dyn Output>>,
    /// Attempts to this output in flight at once (`max_in_flight`), so one slow destination
    /// cannot take every worker.
    pub max_in_flight: usize,
}

/// Default for an output's `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// What building an output may use.
#[derive(Debug)]
pub struct BuildContext<'a> {
    /// The configuration file's folder, for relative paths.
    pub base: &'a std::path::Path,
    pub helpers: crate::render::HelperSettings,
    /// Settings that work but deserve a look (a password sent in clear), for `check` and the log.
    pub warnings: std::cell::RefCell<Vec<String>>,
}

impl BuildContext<'_> {
    /// Notes a setting that works but deserves a look.
    pub fn warn(&self, warning: String) {
        self.warnings.borrow_mut().push(warning);
    }
}

/// Builds an output from its table (without `type` and `enabled`). Creates clients; makes no
/// network calls.
///
/// # Errors
/// An unknown type or invalid settings, as a message for the table's line.
pub fn build(name: &str, kind: &str, table: toml::Table, cx: &BuildContext<'_>) -> Result<Arc<dyn Output>, String> {
    fn settings<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| e.message().trim().to_owned())
    }
    match kind {
        "log" => Ok(Arc::new(log::LogOutput::new(name, settings(table)?, cx.base))),
        "http" => Ok(Arc::new(http::HttpOutput::new(settings(table)?, cx)?)),
        "telegram" => Ok(Arc::new(telegram::TelegramOutput::new(settings(table)?)?)),
        "email" => Ok(Arc::new(email::EmailOutput::new(settings(table)?, cx)?)),
        other => Err(format!("unknown output type `{other}`; expected one of: {}", KNOWN_TYPES.join(", "))),
    }
}

/// An error with its causes (`error sending request: connection refused`), each cause once.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether `template`'s parts satisfy `output`'s required needs; the missing part if not.
pub fn missing_part(available: &[Part], output: &dyn Output) -> Option<Part> {
    output
        .plan()
        .iter()
        .filter(|need| need.required)
        .find(|need| !std::iter::once(need.part).chain(need.fallbacks.iter().copied()).any(|p| available.contains(&p)))
        .map(|need| need.part)
}
