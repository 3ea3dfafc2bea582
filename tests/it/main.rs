//! End-to-end tests: one binary, real daemons on 127.0.0.1, real HTTP.

// Test code panics on purpose: an unexpected `Err` is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

// Every fixture in tests/fixtures/<vendor>/ posted over HTTP, checked against its golden event.
mod ingest_fixtures;
// No lead lost at intake: Calltracking's own format, webhooks naming no event, multipart files.
mod intake;
// Every way a request can be refused: the answer, and the rejection kept for the operator.
mod ingest_rejections;
// A call's end classified by the events of the call before it.
mod call_sequences;
// What vendors get back: plugin replies, config additions, legacy paths; duplicates.
mod ingest_replies;
// From webhook to delivered message: deliveries, attempts, retries, dead letters.
mod delivery;
// Reloading without a restart; the admin listener's health, status and metrics.
mod reload;
// Outputs against real peers: an HTTP receiver, a Bot API server, an SMTP server.
mod outputs_email;
mod outputs_http;
mod outputs_support;
mod outputs_telegram;
mod telegram_cards;
mod telegram_desk;
// SIGKILL in the middle of a burst: nothing acknowledged is lost.
mod crash;
// Three instances on one PostgreSQL database, one killed mid-run.
mod scale_out;
// Hand retries, replays, ttl, and the retry schedule through an outage.
mod operations;
// Slow and idle connections, a rebound host name, a cross-site reload, a full disk.
mod hardening;
// The admin listener: metrics after known traffic, readiness, the token, secrets kept out of logs.
mod admin;
// The dashboard in headless Chromium: find, inspect, retry, replay, test events.
mod dashboard;
// The binary: `check` and `run` as a user types them.
mod cli;
// Every shipped template against its golden rendering, per destination escaping.
mod templates_golden;
