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

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
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
