//! Reading single settings: addresses, numbers, the storage URL, plugins, `[delivery]`, each
//! with `${VAR}` expansion and an issue naming the key when the value is wrong.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw;
use super::{ConfigIssue, Source, StorageUrl, expand};
use crate::delivery::{DeliverySettings, RetryPolicy};
use crate::plugin::VendorRegistry;
use crate::secret::Secret;

pub(super) fn delivery_settings(
    source: &Source,
    raw: &raw::RawDelivery,
    issues: &mut Vec<ConfigIssue>,
) -> DeliverySettings {
    let mut settings = DeliverySettings::default();
    if let Some(schedule) = &raw.retry_schedule_secs {
        if schedule.get_ref().is_empty() || schedule.get_ref().contains(&0) {
            issues.push(source.issue(
                Some(schedule.span()),
                "delivery.retry_schedule_secs",
                "expected a list of waits in seconds, each above 0, such as [5, 30, 120, 600, 1800, 3600]",
            ));
        }
    }
    let schedule = raw
        .retry_schedule_secs
        .as_ref()
        .map_or_else(|| crate::delivery::policy::DEFAULT_SCHEDULE_SECS.to_vec(), |s| s.get_ref().clone());
    let max_age = positive(
        source,
        raw.max_age_secs.as_ref(),
        "delivery.max_age_secs",
        crate::delivery::policy::DEFAULT_MAX_AGE_SECS,
        issues,
    );
    settings.policy =
        RetryPolicy::new(schedule.into_iter().map(Duration::from_secs).collect(), Duration::from_secs(max_age));
    settings.concurrency =
        usize::try_from(positive(source, raw.concurrency.as_ref(), "delivery.concurrency", 16, issues)).unwrap_or(16);
    if let Some(grace) = raw.shutdown_grace_secs {
        settings.shutdown_grace = Duration::from_secs(grace);
    }
    settings.lease = Duration::from_secs(positive(
        source,
        raw.lease_secs.as_ref(),
        "delivery.lease_secs",
        crate::delivery::LEASE.as_secs(),
        issues,
    ));
    settings
}

/// Looks up an environment variable by name.
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The process environment; an empty variable counts as unset, so `${TOKEN:-}` behaves the same
/// for `TOKEN=` and no `TOKEN`.
pub(super) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

pub(super) fn span_of<T>(value: Option<&Spanned<T>>) -> Option<Range<usize>> {
    value.map(Spanned::span)
}

pub(super) fn expanded(
    source: &Source,
    env: &Env<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
    default: &str,
    issues: &mut Vec<ConfigIssue>,
) -> String {
    match value {
        None => default.to_owned(),
        Some(value) => expand(value.get_ref(), env).unwrap_or_else(|message| {
            issues.push(source.issue(Some(value.span()), key, message));
            default.to_owned()
        }),
    }
}

pub(super) fn socket_addr(
    source: &Source,
    env: &Env<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
    default: &str,
    issues: &mut Vec<ConfigIssue>,
) -> SocketAddr {
    let text = expanded(source, env, value, key, default, issues);
    text.parse().unwrap_or_else(|_| {
        issues.push(source.issue(
            span_of(value),
            key,
            format!("expected an address such as `{default}`; got `{text}`"),
        ));
        default.parse().expect("default listen addresses are valid socket addresses")
    })
}

pub(super) fn positive(
    source: &Source,
    value: Option<&Spanned<u64>>,
    key: &str,
    default: u64,
    issues: &mut Vec<ConfigIssue>,
) -> u64 {
    match value {
        Some(value) if *value.get_ref() == 0 => {
            issues.push(source.issue(Some(value.span()), key, "must be greater than 0"));
            default
        }
        Some(value) => *value.get_ref(),
        None => default,
    }
}

pub(super) fn storage_url(
    source: &Source,
    env: &Env<'_>,
    value: Option<&Spanned<String>>,
    base: &Path,
    issues: &mut Vec<ConfigIssue>,
) -> StorageUrl {
    const DEFAULT: &str = "sqlite://data/switchboard.db";
    let text = expanded(source, env, value, "storage.url", DEFAULT, issues);
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        if let Err(error) = text.parse::<sqlx::postgres::PgConnectOptions>() {
            issues.push(source.issue(span_of(value), "storage.url", format!("not a valid PostgreSQL URL: {error}")));
        }
        return StorageUrl::Postgres(Secret::new(text));
    }
    match text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")) {
        Some(path) if !path.is_empty() => StorageUrl::Sqlite(base.join(path)),
        _ => {
            issues.push(source.issue(
                span_of(value),
                "storage.url",
                format!("expected a database URL such as `{DEFAULT}` or `postgres://user:pass@host/db`; got `{text}`"),
            ));
            StorageUrl::Sqlite(base.join("data/switchboard.db"))
        }
    }
}

/// Plugins from `paths.plugins` (default `plugins/` beside the config). When the folder does not
/// exist and the user did not name it (or runs the embedded default), the plugins built into
/// the binary serve, so a lone binary still works.
pub(super) fn load_plugins(
    source: &Source,
    env: &Env<'_>,
    value: Option<&Spanned<String>>,
    base: &Path,
    issues: &mut Vec<ConfigIssue>,
) -> (VendorRegistry, Option<PathBuf>) {
    let dir = base.join(expanded(source, env, value, "paths.plugins", "plugins", issues));
    let ((registry, mut found), dir) = if (value.is_none() || source.is_embedded()) && !dir.is_dir() {
        (VendorRegistry::embedded(), None)
    } else {
        (VendorRegistry::load_dir(&dir), Some(dir))
    };
    issues.append(&mut found);
    (registry, dir)
}

/// A whole number above 0 and at most `max`, or the default.
pub(super) fn at_most(
    source: &Source,
    value: Option<&Spanned<u64>>,
    key: &str,
    default: u64,
    max: u64,
    issues: &mut Vec<ConfigIssue>,
) -> u64 {
    let chosen = positive(source, value, key, default, issues);
    if chosen > max {
        issues.push(source.issue(value.map(Spanned::span), key, format!("must be at most {max}")));
        return default;
    }
    chosen
}

/// `server.admin_hosts`: plain host names, lower case, without a trailing dot. A port, a scheme
/// or a wildcard would never match a `Host` and lock the operator out, so they are refused.
pub(super) fn admin_hosts(
    source: &Source,
    value: Option<&Spanned<Vec<String>>>,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<String> {
    let Some(hosts) = value else { return Vec::new() };
    let mut names = Vec::new();
    for host in hosts.get_ref() {
        let name = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.contains([':', '/', '*', ' ']) {
            let message = format!("`{host}` is not a plain host name (no port, scheme or wildcard)");
            issues.push(source.issue(Some(hosts.span()), "server.admin_hosts", message));
        } else {
            names.push(name);
        }
    }
    names
}
