//! The `switchboard` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use switchboard::app::{self, Listeners};
use switchboard::cli::remote::Remote;
use switchboard::cli::{CheckArgs, Cli, Command, ConfigArgs, health, ops, send, test};
use switchboard::config::Config;
use switchboard::store::{DeliveryQuery, EventQuery};
use switchboard::telemetry;
use tokio_util::sync::CancellationToken;

/// mimalloc rather than glibc's malloc: a request allocates and frees across the runtime's
/// threads, which glibc's arenas handle poorly (~14% of ingest's samples; see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    if let Command::Check(args) = &cli.command {
        // Validation reads files and makes no client: no runtime to start.
        return check(args);
    }
    let runtime = match tokio::runtime::Runtime::new().context("starting the async runtime") {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    // Outputs hold connection pools that start and stop tasks on the runtime (lettre's SMTP
    // pool spawns one when built and when dropped), so a configuration is loaded, used and
    // dropped inside it: `execute` returns before the runtime goes.
    let _inside = runtime.enter();
    execute(cli.command, &runtime)
}

fn execute(command: Command, runtime: &tokio::runtime::Runtime) -> ExitCode {
    match command {
        Command::Check(args) => check(&args),
        Command::Test(args) => {
            let Some(config) = load(&args.config) else { return ExitCode::from(2) };
            match test::report(&config, &args.vendor, &args.payload, args.event.as_deref(), args.at) {
                Ok(report) if args.json => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    test::print(&report);
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::Send(args) => {
            let Some(config) = load(&args.config) else { return ExitCode::from(2) };
            let sent = runtime.block_on(send::send(&config, &args.output, &args.text, &args.template));
            match sent {
                Ok(outcome) => {
                    println!("{}", outcome.line);
                    if outcome.delivered { ExitCode::SUCCESS } else { ExitCode::FAILURE }
                }
                Err(error) => fail(&error),
            }
        }
        Command::Events(args) => {
            let mut storage = None;
            let reader = match reader(args.daemon.url.as_deref(), &args.config, &mut storage) {
                Ok(reader) => reader,
                Err(code) => return code,
            };
            let query = EventQuery {
                vendor: args.vendor,
                kind: args.kind,
                status: args.status,
                search: args.search,
                limit: args.limit,
                ..Default::default()
            };
            print_or_fail(runtime.block_on(ops::events(&reader, query, args.format)))
        }
        Command::Deliveries(args) => {
            let mut storage = None;
            let reader = match reader(args.daemon.url.as_deref(), &args.config, &mut storage) {
                Ok(reader) => reader,
                Err(code) => return code,
            };
            let query = DeliveryQuery { state: args.state, output: args.output, limit: args.limit };
            print_or_fail(runtime.block_on(ops::deliveries(&reader, query, args.format)))
        }
        Command::Replay(args) => {
            let to = args.to();
            let config;
            let target = match &args.daemon.url {
                Some(url) => match Remote::new(url) {
                    Ok(remote) => ops::Replaying::Api(remote),
                    Err(error) => return fail(&error),
                },
                None => {
                    let Some(loaded) = load(&args.config) else { return ExitCode::from(2) };
                    config = loaded;
                    ops::Replaying::Store(&config)
                }
            };
            print_or_fail(runtime.block_on(ops::replay(target, &args.event_id, &to)))
        }
        Command::Retry(args) => {
            let mut storage = None;
            let reader = match reader(args.daemon.url.as_deref(), &args.config, &mut storage) {
                Ok(reader) => reader,
                Err(code) => return code,
            };
            let retried = ops::retry(&reader, args.delivery_id.as_deref(), args.output.as_deref());
            print_or_fail(runtime.block_on(retried))
        }
        Command::Dismiss(args) => {
            let mut storage = None;
            let reader = match reader(args.daemon.url.as_deref(), &args.config, &mut storage) {
                Ok(reader) => reader,
                Err(code) => return code,
            };
            let user = std::env::var("USER").ok();
            let by =
                switchboard::store::Dismissal::now(args.by.as_deref().or(user.as_deref()), args.note.as_deref(), "cli");
            let dismissed = ops::dismiss(&reader, args.delivery_id.as_deref(), args.output.as_deref(), by);
            print_or_fail(runtime.block_on(dismissed))
        }
        Command::Rejected(args) => {
            let mut storage = None;
            let reader = match reader(args.daemon.url.as_deref(), &args.config, &mut storage) {
                Ok(reader) => reader,
                Err(code) => return code,
            };
            let query =
                switchboard::store::RejectionQuery { vendor: args.vendor, reason: args.reason, limit: args.limit };
            print_or_fail(runtime.block_on(ops::rejected(&reader, query, args.format)))
        }
        Command::Health(args) => {
            let Some(config) = args.config.validate().map_err(|errors| eprint!("{errors}")).ok() else {
                return ExitCode::from(2);
            };
            let server = &config.server();
            let Some(url) = args.url.clone().or_else(|| health::readiness_url(server)) else {
                eprintln!("error: the admin listener is off (admin_listen = \"\"); give --url");
                return ExitCode::from(2);
            };
            let (ready, said) = runtime.block_on(health::probe(&url, server));
            println!("{said}");
            if ready { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Command::Reprocess(args) => {
            let Some(config) = load(&args.config) else { return ExitCode::from(2) };
            print_or_fail(runtime.block_on(ops::reprocess(config, &args.rejection_id)))
        }
        Command::Run(args) => {
            let Some(config) = load(&args) else { return ExitCode::from(2) };
            match runtime.block_on(run(config, args.path())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&error),
            }
        }
    }
}

/// `switchboard check`: the configuration validated, and what it sets up.
fn check(args: &CheckArgs) -> ExitCode {
    let Some(config) = args.config.validate().map_err(|errors| eprint!("{errors}")).ok() else {
        return ExitCode::FAILURE;
    };
    println!("{}: OK", config.origin());
    for vendor in config.vendors().iter() {
        println!("  vendor {:<12} /hooks/{}", vendor.name(), vendor.name());
    }
    for (name, entry) in config.outputs() {
        let state = if entry.settings.is_some() { "on" } else { "off (enabled = false)" };
        println!("  output {name:<12} {} {state}", entry.kind);
    }
    println!("  routes {}, templates {}", config.routes().iter().count(), config.templates().names().count());
    for warning in config.warnings() {
        println!("  warning: {warning}");
    }
    if args.strict && !config.warnings().is_empty() {
        eprintln!("error: {} warning(s), and --strict makes them fatal", config.warnings().len());
        return ExitCode::FAILURE;
    }
    // What outputs said the operator must change, as the database remembers it: read from a
    // local file only, never by connecting (a PostgreSQL store's are on the Status page).
    if let switchboard::store::StorageUrl::Sqlite(path) = &config.storage().url {
        match switchboard::store::sqlite::operator_actions(path) {
            Ok(actions) => {
                for (output, action) in actions {
                    println!("  output {output} needs you: {action}");
                }
            }
            Err(error) => println!("  note: could not read what outputs asked of you from {}: {error}", path.display()),
        }
    }
    ExitCode::SUCCESS
}

/// The configuration, validated and built, or `None` after printing every problem in it.
fn load(args: &ConfigArgs) -> Option<Config> {
    args.load().map_err(|errors| eprint!("{errors}")).ok()
}

/// Where a store command reads and acts: the daemon at `url`, else the database the
/// configuration names (its `[storage]`, kept in `slot`). Exits 2 when neither can be had.
fn reader<'a>(
    url: Option<&str>,
    config: &ConfigArgs,
    slot: &'a mut Option<switchboard::config::StorageSettings>,
) -> Result<ops::Reader<'a>, ExitCode> {
    if let Some(url) = url {
        return Remote::new(url).map(ops::Reader::Api).map_err(|error| fail(&error));
    }
    let storage = load_storage(config).ok_or(ExitCode::from(2))?;
    Ok(ops::Reader::Store(slot.insert(storage)))
}

/// Only `[storage]`: commands that read or requeue what is stored need no output's secrets.
fn load_storage(args: &ConfigArgs) -> Option<switchboard::config::StorageSettings> {
    args.load_storage().map_err(|errors| eprint!("{errors}")).ok()
}

fn print_or_fail(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error),
    }
}

/// Exits 1 when the command found the thing it was asked about not as asked (nothing to retry,
/// a request refused again), 2 when it could not run (a usage mistake, no database, a store or
/// a network failing).
fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    if error.downcast_ref::<switchboard::cli::Verdict>().is_some() { ExitCode::FAILURE } else { ExitCode::from(2) }
}

async fn run(config: Config, path: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    app::run(config, path, listeners, shutdown).await
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
    switchboard::systemd::stopping();
    shutdown.cancel();
}
