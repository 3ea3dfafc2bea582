//! # Switchboard
//!
//! One daemon that takes every vendor's webhooks in, keeps them safe, routes them, renders
//! them and delivers them, and shows the operator what happened.
//!
//! ## Layout: where a request is at any moment
//! ```text
//! POST /hooks/{vendor}      ingest      read within limits, verify the secret       src/ingest/
//!        │
//!        ▼
//! plugins/{vendor}.toml     plugin      body (json | form) ──► Event                 src/plugin/, src/body/
//!        │                              kinds, canonical fields, classify rules      src/condition/
//!        │                              (a call's end: its earlier events, read back)
//!        ▼
//! [[route]] in config.toml  router      which routes take it, so which deliveries    src/router/
//!        ▼
//! store.append(event)       store       event + its deliveries durable before 2xx    src/store/
//!        ▼
//! workers claim due work    delivery    lease, attempt, retry schedule, dead letter  src/delivery/
//!        ▼
//! templates/*.hbs           render      one message per destination's escaping       src/render/
//!        ▼
//! telegram | email | http   outputs     one small trait; errors say if retryable     src/outputs/
//! ```
//! Presses on a Telegram card's buttons come back through the bot's updates to the [`desk`],
//! which records who took the call and has the card redrawn.
//! Dependencies point one way, down this pipeline; `tests/architecture.rs` holds the table of
//! allowed arrows and fails on any other.
//! - [`event`]: the normalised event model (kinds, canonical fields, payload paths);
//!   [`diagnostics`]: issues with file and line; [`body`]: request bodies as JSON.
//! - [`config`]: `config.toml` and plugins, validated into an immutable `Config` that provides
//!   each stage's settings; [`reload`] swaps it without a restart.
//! - [`admin`]: probes, `/metrics` and the dashboard; [`inspect`]: what the pipeline makes of
//!   an event, for the dashboard and `switchboard test`.
//! - [`app`]: wiring and graceful shutdown; [`server`]: the listeners' accept loop;
//!   [`systemd`]: readiness and the watchdog for the service manager; [`cli`]: the command line.

pub mod admin;
pub mod app;
pub mod body;
pub mod cli;
pub mod condition;
pub mod config;
pub mod delivery;
pub mod desk;
pub mod diagnostics;
pub mod event;
pub mod ingest;
pub mod inspect;
pub mod metrics;
pub mod outputs;
pub mod plugin;
pub mod reload;
pub mod render;
pub mod router;
pub mod secret;
pub mod server;
pub mod store;
pub mod systemd;
pub mod telemetry;
