//! # Switchboard
//!
//! One daemon that takes every vendor's webhooks in, keeps them safe, and (as the pipeline grows)
//! routes, renders and delivers them.
//!
//! ## Layout: where a request is at any moment
//! ```text
//! POST /hooks/{vendor}      ingest      read within limits, verify the secret       src/ingest/
//!        │
//!        ▼
//! plugins/{vendor}.toml     vendor      body (json | form) ──► Event                 src/vendor/
//!        │                              kinds, canonical fields, classify rules      src/condition.rs
//!        ▼
//! store.append(event)       store       durable before the 2xx; duplicates collapse  src/store/
//! ```
//! - [`event`]: the normalised event model (kinds, canonical fields, payload paths).
//! - [`config`]: `config.toml` and plugins, validated into an immutable `Config`.
//! - [`render`]: handlebars templates over an event (vendor replies today).
//! - [`app`]: wiring and graceful shutdown; [`cli`]: the command line.

pub mod admin;
pub mod app;
pub mod cli;
pub mod condition;
pub mod config;
pub mod delivery;
pub mod event;
pub mod ingest;
pub mod inspect;
pub mod metrics;
pub mod outputs;
pub mod reload;
pub mod render;
pub mod router;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod vendor;
