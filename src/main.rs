//! The `switchboard` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use switchboard::app::{self, Listeners};
use switchboard::cli::{Cli, Command};
use switchboard::telemetry;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Check(args) => match args.load() {
            Ok(config) => {
                println!("{}: OK", config.origin);
                for vendor in config.vendors.iter() {
                    println!("  vendor {:<12} /hooks/{}", vendor.name(), vendor.name());
                }
                for warning in &config.warnings {
                    println!("  warning: {warning}");
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprint!("{errors}");
                ExitCode::FAILURE
            }
        },
        Command::Test(args) => {
            let config = match args.config.load() {
                Ok(config) => config,
                Err(errors) => {
                    eprint!("{errors}");
                    return ExitCode::from(2);
                }
            };
            match switchboard::cli::test::report(&config, &args.vendor, &args.payload, args.at) {
                Ok(report) if args.json => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    switchboard::cli::test::print(&report);
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => {
            let config = match args.load() {
                Ok(config) => config,
                Err(errors) => {
                    eprint!("{errors}");
                    return ExitCode::from(2);
                }
            };
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run(config: switchboard::config::Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let listeners = Listeners::bind(&config).await?;
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        app::run(config, listeners, shutdown).await
    })
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(message = "Cannot listen for SIGTERM.", %error);
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!(message = "Shutting down: no new requests; finishing those in flight.");
    shutdown.cancel();
}
