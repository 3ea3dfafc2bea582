//! Metric names, described once; every metric the daemon records is named here.
//!
//! Prometheus text is served at `/metrics` on the admin listener. Label values come from closed
//! sets (vendor and output names from the config, kinds, outcome codes), never from payloads.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Up to the writers' largest batch, 512.
const COMMIT_WRITES_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// A call back comes minutes to hours after the call: 1 min … 1 day.
const TIME_TO_DONE_BUCKETS: [f64; 10] = [60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0];

/// A webhook is answered once its event is committed: well under a millisecond to seconds on a
/// disk that struggles.
const INGEST_SECONDS_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A commit takes a fraction of a millisecond on a local disk; the default buckets start at 5 ms.
const COMMIT_SECONDS_BUCKETS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// Webhooks received, by vendor and outcome (`stored`, `duplicate`, or the refusal's code).
pub const WEBHOOKS_RECEIVED: &str = "switchboard_webhooks_received_total";
/// From a webhook's arrival to its answer, by vendor (`unknown` for a path no plugin serves)
/// and HTTP status.
pub const INGEST_DURATION: &str = "switchboard_ingest_request_duration_seconds";
/// Events stored, by vendor and kind.
pub const EVENTS_STORED: &str = "switchboard_events_stored_total";
/// Routes that took an event, by route (`unrouted` when none did).
pub const ROUTES_MATCHED: &str = "switchboard_routes_matched_total";
/// Delivery attempts, by output, its type (`output_type`: `telegram`, `email`, `http`, `log`)
/// and outcome (`delivered`, `retry`, `dead`, `expired`, `cancelled`).
pub const DELIVERY_ATTEMPTS: &str = "switchboard_delivery_attempts_total";
/// Failed attempts by output, its type and reason (`network`, `rate_limited`, …).
pub const DELIVERY_FAILURES: &str = "switchboard_delivery_failures_total";
/// 1 while an output's last word was that the operator must change something (the bot was
/// removed from the chat, a password is refused): every later alert to it will fail too.
pub const OUTPUT_NEEDS_OPERATOR: &str = "switchboard_output_needs_operator";
/// Presses on cards' buttons, by action and outcome (`applied`, `refused`, …).
pub const DESK_PRESSES: &str = "switchboard_desk_presses_total";
/// From a call's first event to «Перезвонил»: how long a lead waited for a call back.
pub const TIME_TO_DONE: &str = "switchboard_desk_time_to_done_seconds";
/// How long one attempt took, by output.
pub const DELIVERY_DURATION: &str = "switchboard_delivery_duration_seconds";
/// Deliveries waiting to be sent (due now or waiting for a retry), read from the store at
/// each scrape: every instance on a shared PostgreSQL reports the same queue.
pub const QUEUE_DEPTH: &str = "switchboard_queue_depth";
/// Of those, the ones already due: a backlog that grows here means workers cannot keep up.
pub const QUEUE_DUE: &str = "switchboard_queue_due";
/// Age of the oldest pending delivery, in seconds (0 when none is pending).
pub const QUEUE_OLDEST_AGE: &str = "switchboard_queue_oldest_age_seconds";
/// Dead letters waiting for an operator.
pub const DEAD_LETTERS: &str = "switchboard_dead_letters";
/// Writes committed in one transaction (events, rejections, delivery bookkeeping): under load
/// many webhooks share a commit and its sync to disk, and this says how many.
pub const STORE_COMMIT_WRITES: &str = "switchboard_store_commit_writes";
/// How long one commit of the store took, its sync to disk included: a webhook's
/// acknowledgement waits for one, so a disk that slows down shows here first. (SQLite's commits
/// of delivery bookkeeping alone do not wait for the disk; they are counted too.)
pub const STORE_COMMIT_DURATION: &str = "switchboard_store_commit_duration_seconds";
/// Configuration reloads, by result (`ok`, `failed`).
pub const CONFIG_RELOADS: &str = "switchboard_config_reloads_total";
/// 1 when the last reload attempt succeeded, 0 when the running config is older than the files.
pub const CONFIG_LAST_RELOAD_OK: &str = "switchboard_config_last_reload_successful";
/// When the configuration serving now was loaded (Unix seconds): at start-up or by a reload.
pub const CONFIG_LAST_RELOAD_SUCCESS: &str = "switchboard_config_last_reload_success_timestamp_seconds";
/// The first 48 bits of the SHA-256 of the configuration file serving now: instances that
/// show the same value run the same file.
pub const CONFIG_HASH: &str = "switchboard_config_hash";
/// Always 1, labelled with the build: `version` and `revision` (`SWITCHBOARD_REVISION` at build
/// time, as the Dockerfile and release builds set it; `unknown` otherwise).
pub const BUILD_INFO: &str = "switchboard_build_info";

/// One commit of `writes` writes that took `took`; recorded by both stores' writers.
pub fn record_commit(writes: usize, took: std::time::Duration) {
    #[allow(clippy::cast_precision_loss)] // at most 512
    metrics::histogram!(STORE_COMMIT_WRITES).record(writes as f64);
    metrics::histogram!(STORE_COMMIT_DURATION).record(took.as_secs_f64());
}

/// Puts every series an alert may look for on `/metrics` at zero, for each vendor and output
/// (name, type) the configuration knows: `rate()` and absence alerts then work before the
/// first webhook. Called at start-up and after each reload; a series already counting keeps
/// its count.
pub fn known<'a>(vendors: impl Iterator<Item = &'a str>, outputs: impl Iterator<Item = (&'a str, &'a str)>) {
    for vendor in vendors {
        metrics::counter!(WEBHOOKS_RECEIVED, "vendor" => vendor.to_owned(), "outcome" => "stored").increment(0);
    }
    for (output, kind) in outputs {
        for outcome in ["delivered", "retry", "dead"] {
            metrics::counter!(
                DELIVERY_ATTEMPTS, "output" => output.to_owned(), "output_type" => kind.to_owned(), "outcome" => outcome
            )
            .increment(0);
        }
    }
}

/// The configuration serving now has this [`crate::diagnostics::Source::fingerprint`].
pub fn fingerprint(hash: u64) {
    #[allow(clippy::cast_precision_loss)] // 48 bits: exact in an f64
    metrics::gauge!(CONFIG_HASH).set(hash as f64);
}

/// The process's CPU time, memory and file descriptors (`process_*`, as every Prometheus
/// client library names them), read at each scrape.
pub fn collect_process() {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR
        .get_or_init(|| {
            let collector = metrics_process::Collector::default();
            collector.describe();
            collector
        })
        .collect();
}

/// The configuration serving now was loaded at `at`.
pub fn loaded(at: chrono::DateTime<chrono::Utc>) {
    #[allow(clippy::cast_precision_loss)] // Unix seconds fit an f64's mantissa for ages to come
    metrics::gauge!(CONFIG_LAST_RELOAD_SUCCESS).set(at.timestamp_millis() as f64 / 1000.0);
}

/// The process-wide recorder's handle, installed on first use (several daemons in one test
/// process share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(STORE_COMMIT_WRITES.into()), &COMMIT_WRITES_BUCKETS))
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(STORE_COMMIT_DURATION.into()), &COMMIT_SECONDS_BUCKETS)
            })
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(TIME_TO_DONE.into()), &TIME_TO_DONE_BUCKETS))
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(INGEST_DURATION.into()), &INGEST_SECONDS_BUCKETS))
            .expect("the bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first, in which case ours records
        // nothing and /metrics shows what it has.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(WEBHOOKS_RECEIVED, "Webhooks received, by vendor and outcome.");
    metrics::describe_histogram!(
        INGEST_DURATION,
        metrics::Unit::Seconds,
        "From a webhook's arrival to its answer, by vendor and HTTP status."
    );
    metrics::describe_counter!(EVENTS_STORED, "Events stored, by vendor and canonical kind.");
    metrics::describe_counter!(ROUTES_MATCHED, "Routes that took an event.");
    metrics::describe_counter!(DELIVERY_ATTEMPTS, "Delivery attempts, by output and outcome.");
    metrics::describe_counter!(DELIVERY_FAILURES, "Failed delivery attempts, by output and reason.");
    metrics::describe_gauge!(
        OUTPUT_NEEDS_OPERATOR,
        "1 while an output needs the operator to change something before it can deliver again."
    );
    metrics::describe_counter!(DESK_PRESSES, "Presses on cards' buttons, by action and outcome.");
    metrics::describe_histogram!(
        TIME_TO_DONE,
        metrics::Unit::Seconds,
        "From a call's first event to the press that marks it called back."
    );
    metrics::describe_histogram!(DELIVERY_DURATION, metrics::Unit::Seconds, "Duration of one delivery attempt.");
    metrics::describe_gauge!(QUEUE_DEPTH, "Deliveries waiting to be sent.");
    metrics::describe_gauge!(QUEUE_DUE, "Pending deliveries that are due now.");
    metrics::describe_gauge!(QUEUE_OLDEST_AGE, metrics::Unit::Seconds, "Age of the oldest pending delivery.");
    metrics::describe_gauge!(DEAD_LETTERS, "Dead-lettered deliveries.");
    metrics::describe_histogram!(STORE_COMMIT_WRITES, "Writes committed together in one transaction.");
    metrics::describe_histogram!(
        STORE_COMMIT_DURATION,
        metrics::Unit::Seconds,
        "Duration of one commit of the store, its sync to disk included."
    );
    metrics::describe_counter!(CONFIG_RELOADS, "Configuration reloads, by result.");
    metrics::describe_gauge!(CONFIG_LAST_RELOAD_OK, "Whether the last configuration reload succeeded.");
    metrics::describe_gauge!(
        CONFIG_LAST_RELOAD_SUCCESS,
        metrics::Unit::Seconds,
        "When the serving configuration was loaded."
    );
    metrics::describe_gauge!(CONFIG_HASH, "A fingerprint of the configuration file serving now.");
    metrics::describe_gauge!(BUILD_INFO, "The build: version and revision labels; always 1.");
    let revision = option_env!("SWITCHBOARD_REVISION").unwrap_or("unknown");
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "revision" => revision).set(1.0);
}
