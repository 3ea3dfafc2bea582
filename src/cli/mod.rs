//! The command line: `switchboard run | check | test | send`, and the operator's commands on
//! the store ([`ops`]).

pub mod health;
pub mod ops;
pub mod remote;
pub mod send;
pub mod test;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigErrors};
use crate::telemetry::LogFormat;

/// Self-hosted webhook-to-notification router.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run(ConfigArgs),
    /// Validate the configuration and plugins, listing every problem; exits 1 if there are any.
    Check(CheckArgs),
    /// Show what a webhook would become: the event, each route's verdict and the rendered
    /// messages. Nothing is stored or sent.
    Test(TestArgs),
    /// Send a test message through one configured output and print the outcome.
    Send(SendArgs),
    /// List stored events, newest first.
    Events(EventsArgs),
    /// List deliveries, newest first (`--state dead` for the dead letters).
    Deliveries(DeliveriesArgs),
    /// Run a stored event through today's routes again.
    Replay(ReplayArgs),
    /// Requeue a dead (or expired, or dismissed) delivery, or every dead one with `--dead`.
    Retry(RetryArgs),
    /// Dismiss a dead (or expired) delivery, or every dead one with `--dead`: seen, and nothing
    /// is to be sent. It leaves `switchboard_dead_letters` and stays listed as dismissed.
    Dismiss(DismissArgs),
    /// List refused requests, newest first, with whether each can be processed again.
    Rejected(RejectedArgs),
    /// Process a refused request again through today's plugins and routes, once what refused
    /// it is fixed; exits 1 if it is refused again (the new reason is kept on it).
    Reprocess(ReprocessArgs),
    /// Ask the running daemon's `/readyz` whether it is ready: exits 0 if so, 1 if not or if
    /// nothing answers (a container's health check).
    Health(HealthArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Warnings (a vendor without a secret, an open endpoint) fail the check too: exit 1.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The readiness URL; by default the configured admin listener's `/readyz`.
    #[arg(long)]
    pub url: Option<String>,
}

/// Where the store commands act: the running daemon, when its URL is given.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The running daemon's admin listener (`http://127.0.0.1:8081`): ask it rather than
    /// open the database. The admin token comes from `SWITCHBOARD_ADMIN_TOKEN`.
    #[arg(long, env = "SWITCHBOARD_URL")]
    pub url: Option<String>,
}

/// How a listing prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns under a header row.
    #[default]
    Table,
    /// One JSON array, for scripts (`jq`).
    Json,
}

/// What a command found that is not as asked — nothing to retry, a request refused again —
/// rather than a failure to run: the binary exits 1 for it, 2 for everything else.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Verdict(pub String);

#[derive(Debug, Args)]
pub struct RejectedArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Only those addressed to this vendor.
    #[arg(long)]
    pub vendor: Option<String>,
    /// Only those refused for this reason (`bad_secret`, `invalid_json`, …).
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub format: Format,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct ReprocessArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The refused request's id, as `switchboard rejected` lists it.
    pub rejection_id: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[arg(long)]
    pub vendor: Option<String>,
    #[arg(long)]
    pub kind: Option<String>,
    /// unrouted, pending, delivered or failed.
    #[arg(long, value_parser = parse_event_status)]
    pub status: Option<crate::store::EventStatus>,
    /// A phone number, email address or name the event's fields contain.
    #[arg(long)]
    pub search: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub format: Format,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

fn parse_event_status(text: &str) -> Result<crate::store::EventStatus, String> {
    crate::store::EventStatus::parse(text).ok_or_else(|| "expected unrouted, pending, delivered or failed".to_owned())
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// pending, delivered, dead, expired, cancelled or dismissed.
    #[arg(long, value_parser = parse_state)]
    pub state: Option<crate::store::DeliveryState>,
    #[arg(long)]
    pub output: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub format: Format,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

fn parse_state(text: &str) -> Result<crate::store::DeliveryState, String> {
    crate::store::DeliveryState::parse(text)
        .map_err(|_| "expected pending, delivered, dead, expired, cancelled or dismissed".to_owned())
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    pub event_id: String,
    /// Send it again to every output today's routes give it, even where it arrived.
    #[arg(long, conflicts_with = "output")]
    pub all: bool,
    /// Send it again to this output only (repeatable). Without `--all` or `--output`, it goes
    /// only where it has not arrived.
    #[arg(long)]
    pub output: Vec<String>,
}

impl ReplayArgs {
    /// Where the replay goes.
    pub fn to(&self) -> crate::delivery::ReplayTo {
        match (self.all, self.output.is_empty()) {
            (true, _) => crate::delivery::ReplayTo::All,
            (false, false) => crate::delivery::ReplayTo::Outputs(self.output.clone()),
            (false, true) => crate::delivery::ReplayTo::NotReached,
        }
    }
}

#[derive(Debug, Args)]
pub struct DismissArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// The delivery to dismiss.
    #[arg(required_unless_present = "dead", conflicts_with = "dead")]
    pub delivery_id: Option<String>,
    /// Dismiss every dead delivery.
    #[arg(long)]
    pub dead: bool,
    /// With `--dead`: only this output's.
    #[arg(long, requires = "dead")]
    pub output: Option<String>,
    /// Who dismisses it (default: `$USER`).
    #[arg(long)]
    pub by: Option<String>,
    /// Why nothing is to be sent.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// The delivery to requeue.
    #[arg(required_unless_present = "dead", conflicts_with = "dead")]
    pub delivery_id: Option<String>,
    /// Requeue every dead delivery.
    #[arg(long)]
    pub dead: bool,
    /// With `--dead`: only this output's.
    #[arg(long, requires = "dead")]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The output's name (`[outputs.<name>]`).
    pub output: String,
    /// The message text.
    #[arg(long, default_value = "Switchboard test message: if you can read this, the output works.")]
    pub text: String,
    /// The template to render it with.
    #[arg(long, default_value = "generic")]
    pub template: String,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The vendor plugin to parse the payload with (`jivo`, `envybox`, …).
    pub vendor: String,
    /// A payload file: `.json`, `.form` (URL-encoded), `.query` (a GET query string),
    /// `.multipart` (a multipart/form-data body), or any other name to let the content decide.
    pub payload: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Pretend the webhook arrives at this time (RFC 3339), for route schedules.
    #[arg(long)]
    pub at: Option<DateTime<Utc>>,
    /// The event the webhook's address names, for a plugin that reads it from the URL
    /// (Calltracking: `start` or `end`).
    #[arg(long)]
    pub event: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file. Without it, `config.toml` in the working directory is used if it
    /// exists, and the configuration built into the binary otherwise.
    #[arg(long, short, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// Loads the configuration these arguments name.
    ///
    /// # Errors
    /// Every problem found in it.
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        self.validate()?.build()
    }

    /// Validates the configuration these arguments name, without making any client.
    ///
    /// # Errors
    /// Every problem found in it.
    pub fn validate(&self) -> Result<crate::config::Validated, ConfigErrors> {
        match self.path() {
            Some(path) => Config::validate(&path),
            None => Config::validate_embedded(),
        }
    }

    /// Only its `[storage]`, for commands that read (or requeue) what is stored.
    ///
    /// # Errors
    /// The file cannot be read or parsed, or `[storage]` is wrong.
    pub fn load_storage(&self) -> Result<crate::config::StorageSettings, ConfigErrors> {
        crate::config::StorageSettings::load(self.path().as_deref())
    }

    /// The file the configuration comes from; `None` for the embedded default.
    pub fn path(&self) -> Option<PathBuf> {
        match &self.config {
            Some(path) => Some(path.clone()),
            None if Path::new("config.toml").is_file() => Some(PathBuf::from("config.toml")),
            None => None,
        }
    }
}
