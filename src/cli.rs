//! The command line: `switchboard run | check`.

use std::path::{Path, PathBuf};

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
    Check(ConfigArgs),
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
        match &self.config {
            Some(path) => Config::load(path),
            None if Path::new("config.toml").is_file() => Config::load(Path::new("config.toml")),
            None => Config::embedded(),
        }
    }
}
