//! Validating `[outputs.<name>]`, apart from building it: [`validate`] checks a table and
//! compiles its templates without creating a client or a pool, so `switchboard check` and a
//! reload find every mistake first; [`OutputSettings::build`] then makes the clients.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use super::{Need, Output, email, http, log, telegram};
use crate::render::HelperSettings;

/// Output types a `[outputs.<name>]` table may name.
pub const KNOWN_TYPES: &[&str] = &["telegram", "email", "http", "log"];

/// A setting of `[outputs.<name>]` that is wrong, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    /// The key at fault (`url`, `chat_id`), when one is: the configuration names it.
    pub key: Option<&'static str>,
    pub message: String,
}

impl SettingsError {
    /// A mistake in `key`.
    pub fn at(key: &'static str, message: impl Into<String>) -> Self {
        Self { key: Some(key), message: message.into() }
    }

    /// A mistake in how settings combine, or in the table as a whole.
    pub fn table(message: impl Into<String>) -> Self {
        Self { key: None, message: message.into() }
    }
}

/// What validating an output may use.
#[derive(Debug)]
pub struct ValidationContext<'a> {
    /// The configuration file's folder, for relative paths.
    pub base: &'a Path,
    pub helpers: HelperSettings,
    /// Settings that work but deserve a look (a password sent in clear), for `check` and the log.
    pub warnings: RefCell<Vec<String>>,
}

impl ValidationContext<'_> {
    /// Notes a setting that works but deserves a look.
    pub fn warn(&self, warning: String) {
        self.warnings.borrow_mut().push(warning);
    }
}

/// An output's settings, checked and compiled: everything but its clients.
pub trait OutputSettings: Send + Sync + std::fmt::Debug {
    /// `telegram` | `email` | `http` | `log`.
    fn kind(&self) -> &'static str;
    /// The template parts the output will send, and their escaping.
    fn plan(&self) -> &[Need];
    /// Makes the clients and pools (no network call). Lettre's SMTP pool starts its tasks on
    /// the runtime it is dropped in, so the caller is inside one.
    ///
    /// # Errors
    /// A client the platform cannot make (its TLS backend, say).
    fn build(self: Box<Self>) -> Result<Arc<dyn Output>, SettingsError>;
}

/// Checks an output's table (without `type` and `enabled`) and compiles its templates. Reads
/// files it names (a CA certificate); creates no client.
///
/// # Errors
/// An unknown type or invalid settings, with the key at fault when there is one.
pub fn validate(
    name: &str,
    kind: &str,
    table: toml::Table,
    cx: &ValidationContext<'_>,
) -> Result<Box<dyn OutputSettings>, SettingsError> {
    fn settings<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, SettingsError> {
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| SettingsError::table(e.message().trim()))
    }
    match kind {
        "log" => Ok(Box::new(log::Settings::validate(name, settings(table)?, cx.base))),
        "http" => Ok(Box::new(http::Settings::validate(settings(table)?, cx)?)),
        "telegram" => Ok(Box::new(telegram::Settings::validate(settings(table)?)?)),
        "email" => Ok(Box::new(email::Settings::validate(settings(table)?, cx)?)),
        other => Err(SettingsError::at(
            "type",
            format!("unknown output type `{other}`; expected one of: {}", KNOWN_TYPES.join(", ")),
        )),
    }
}

/// Whether a template's parts satisfy an output's required needs; the missing part if not.
pub fn missing_part(available: &[crate::render::Part], plan: &[Need]) -> Option<crate::render::Part> {
    plan.iter()
        .filter(|need| need.required)
        .find(|need| !std::iter::once(need.part).chain(need.fallbacks.iter().copied()).any(|p| available.contains(&p)))
        .map(|need| need.part)
}
