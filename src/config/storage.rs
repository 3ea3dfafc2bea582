//! `[storage]`: where events are kept and for how long. Loaded alone by the commands that only
//! read or requeue what is stored, so they need none of the outputs' secrets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw;
use super::values::{Env, positive, process_env, storage_url};
use super::{
    ConfigErrors, ConfigIssue, DEFAULT_DEDUP_WINDOW_SECS, DEFAULT_REJECTED_KEEP, EMBEDDED_CONFIG, Source, StorageUrl,
};

/// `[storage]`.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub url: StorageUrl,
    pub dedup_window: Duration,
    pub rejected_keep: u32,
    /// Events (and their deliveries and attempts) older than this, with nothing pending, are
    /// deleted.
    pub retention: Duration,
}

impl StorageSettings {
    /// `[storage]` of the file at `path` (the embedded default without one), and nothing else:
    /// for commands that only read or requeue what is stored, so that an output's unset
    /// `${VAR}` (a bot token) does not stop an operator reading dead letters.
    ///
    /// # Errors
    /// The file cannot be read or parsed, or `[storage]` is wrong; with file, line and key.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigErrors> {
        let (source, base) = match path {
            Some(path) => (
                Source::read(path).map_err(|issue| ConfigErrors(vec![issue]))?,
                path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            ),
            None => (Source::embedded("config.toml", EMBEDDED_CONFIG), PathBuf::from(".")),
        };
        let raw: raw::RawConfig = source.parse().map_err(ConfigErrors)?;
        let mut issues = Vec::new();
        let settings = Self::from_raw(&source, &process_env, &raw.storage, &base, &mut issues);
        if issues.is_empty() { Ok(settings) } else { Err(ConfigErrors(issues)) }
    }

    pub(super) fn from_raw(
        source: &Source,
        env: &Env<'_>,
        raw: &raw::RawStorage,
        base: &Path,
        issues: &mut Vec<ConfigIssue>,
    ) -> Self {
        Self {
            url: storage_url(source, env, raw.url.as_ref(), base, issues),
            dedup_window: Duration::from_secs(
                raw.dedup_window_secs.as_ref().map_or(DEFAULT_DEDUP_WINDOW_SECS, |v| *v.get_ref()),
            ),
            rejected_keep: raw.rejected_keep.as_ref().map_or(DEFAULT_REJECTED_KEEP, |v| *v.get_ref()),
            retention: Duration::from_secs(
                86_400 * positive(source, raw.retention_days.as_ref(), "storage.retention_days", 30, issues),
            ),
        }
    }
}
