//! Logging: human-readable by default, JSON for log collectors; level from `RUST_LOG`.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Appended to every log filter.
const QUIET_HANDLEBARS: &str = "handlebars=warn";

/// What is logged when `RUST_LOG` says nothing: `info`, with the SQL driver's per-query lines
/// left out.
const DEFAULTS: &str = "info,sqlx=warn";

/// The filter: the defaults, then `RUST_LOG`'s directives over them, so `RUST_LOG=debug` turns
/// Switchboard's debug on without every SQL query, and `RUST_LOG=sqlx=info` still can.
fn filter(user: Option<&str>) -> EnvFilter {
    let mut directives = DEFAULTS.to_owned();
    if let Some(user) = user.map(str::trim).filter(|u| !u.is_empty()) {
        directives.push(',');
        directives.push_str(user);
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|error| {
        eprintln!("RUST_LOG `{}` is not a log filter ({error}); logging at the defaults", user.unwrap_or_default());
        EnvFilter::new(DEFAULTS)
    })
}

/// Installs the global subscriber: the defaults, with `RUST_LOG` added to them.
pub fn init(format: LogFormat) {
    let filter = filter(std::env::var(EnvFilter::DEFAULT_ENV).ok().as_deref());
    // Handlebars logs each render's whole context at debug: payloads (personal data) and, for
    // the dashboard's status page, hook URLs with their secrets. Never, whatever RUST_LOG says.
    let filter = filter.add_directive(QUIET_HANDLEBARS.parse().expect("a valid directive"));
    // Colours only for a person at a terminal: under systemd or Docker the escape codes would end
    // up in the journal as text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (a second call in tests) is fine.
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_adds_to_the_defaults() {
        // A bare level lifts Switchboard's own lines; the SQL driver's stay at warn.
        let printed = filter(Some("debug")).to_string();
        assert!(printed.contains("sqlx=warn") && printed.contains("debug"), "{printed}");
        let enabled = |user: Option<&str>, target_debug: fn() -> bool| {
            use tracing_subscriber::layer::SubscriberExt as _;
            let subscriber = tracing_subscriber::registry().with(filter(user));
            tracing::subscriber::with_default(subscriber, target_debug)
        };
        let ours = || tracing::enabled!(target: "switchboard::delivery", tracing::Level::DEBUG);
        let sql = || tracing::enabled!(target: "sqlx::query", tracing::Level::INFO);
        assert!(enabled(Some("debug"), ours) && !enabled(Some("debug"), sql), "debug, without every query");
        assert!(!enabled(None, ours) && !enabled(None, sql));
        let sql = filter(Some("sqlx=info")).to_string();
        assert!(sql.contains("sqlx=info"), "a user's own directive for a target wins: {sql}");
        assert_eq!(filter(None).to_string(), filter(Some("  ")).to_string());
        assert!(filter(Some("not a [ filter")).to_string().contains("sqlx=warn"), "a bad RUST_LOG falls back");
    }
}
