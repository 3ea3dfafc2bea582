//! Operator commands on the store: list events, deliveries and refused requests, replay an
//! event through today's routes, retry dead letters, process a refused request again. They work
//! beside a running daemon (which picks new and requeued deliveries up within a second).

use std::fmt::Write;

use anyhow::{Context, bail};
use ulid::Ulid;

use std::sync::Arc;

use arc_swap::ArcSwap;

use serde_json::{Value, json};

use super::remote::Remote;
use super::{Format, Verdict};
use crate::config::{Config, StorageSettings};
use crate::event::EventId;
use crate::ingest::IngestState;
use crate::store::{self, Appended, DeliveryQuery, EventQuery, RejectionQuery, Store};

/// Opens the daemon's store. An SQLite file that is not there is an error: a command that
/// created an empty database would answer "no events" about the wrong file.
async fn open(storage: &StorageSettings) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    if let store::StorageUrl::Sqlite(path) = &storage.url {
        if !path.exists() {
            bail!(
                "no database at {}: is this the daemon's configuration? (the daemon creates it when it first starts)",
                path.display()
            );
        }
    }
    store::open(&storage.url, storage.rejected_keep).await.context("opening the store")
}

/// `rows` as a JSON array, or as aligned columns under `header`.
fn listing(format: Format, header: &[&str], rows: &[(Vec<String>, Value)], none: &str) -> anyhow::Result<String> {
    if format == Format::Json {
        let values: Vec<&Value> = rows.iter().map(|(_, json)| json).collect();
        return Ok(serde_json::to_string_pretty(&values)? + "\n");
    }
    if rows.is_empty() {
        return Ok(format!("{none}\n"));
    }
    // Every column as wide as its widest cell, but the last, which runs on.
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for (cells, _) in rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> std::fmt::Result {
        let cells: Vec<&str> = cells.collect();
        for (index, cell) in cells.iter().enumerate() {
            if index + 1 == cells.len() {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<width$}  ", width = widths[index])?;
            }
        }
        Ok(())
    };
    line(&mut header.iter().copied())?;
    for (cells, _) in rows {
        line(&mut cells.iter().map(String::as_str))?;
    }
    Ok(out)
}

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Where a command reads and acts: the database the configuration names, or the running
/// daemon's admin API (`--url`).
pub enum Reader<'a> {
    Store(&'a StorageSettings),
    Api(Remote),
}

/// A record's text field, or `-`.
fn text(record: &Value, key: &str) -> String {
    match &record[key] {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// A record's RFC 3339 time as `2026-11-21 14:05:00` (UTC).
fn when(record: &Value, key: &str) -> String {
    record[key]
        .as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map_or_else(|| text(record, key), |at| time(at.with_timezone(&chrono::Utc)))
}

/// Query parameters from the filters that are set.
fn params(pairs: &[(&'static str, Option<String>)]) -> Vec<(&'static str, String)> {
    pairs.iter().filter_map(|(name, value)| value.clone().map(|value| (*name, value))).collect()
}

/// `switchboard events`: newest first.
///
/// # Errors
/// The store or the daemon cannot be read.
pub async fn events(reader: &Reader<'_>, query: EventQuery, format: Format) -> anyhow::Result<String> {
    let records = match reader {
        Reader::Store(storage) => {
            let store = open(storage).await?;
            let events = store.events(&query).await?;
            store.close().await;
            events.iter().map(crate::store::StoredEvent::summary).collect()
        }
        Reader::Api(remote) => {
            let status = query.status.map(|s| s.as_str().to_owned());
            let filters = params(&[
                ("vendor", query.vendor),
                ("kind", query.kind),
                ("status", status),
                ("search", query.search),
                ("limit", Some(query.limit.to_string())),
            ]);
            remote.list("events", &filters).await?
        }
    };
    let rows: Vec<(Vec<String>, Value)> = records
        .into_iter()
        .map(|record| {
            let routes = record["routes"].as_array().map_or_else(Vec::new, |routes| {
                routes.iter().filter_map(Value::as_str).map(str::to_owned).collect::<Vec<_>>()
            });
            let routes = if routes.is_empty() { "unrouted".to_owned() } else { routes.join(", ") };
            let phone = record["fields"]["contact.phone"].as_str().unwrap_or("-").to_owned();
            let cells = vec![
                text(&record, "id"),
                when(&record, "received_at"),
                text(&record, "vendor"),
                text(&record, "event"),
                text(&record, "kind"),
                phone,
                routes,
            ];
            (cells, record)
        })
        .collect();
    listing(format, &["ID", "RECEIVED (UTC)", "VENDOR", "EVENT", "KIND", "PHONE", "ROUTES"], &rows, "no events")
}

/// `switchboard deliveries`: newest first, with their last error.
///
/// # Errors
/// The store or the daemon cannot be read.
pub async fn deliveries(reader: &Reader<'_>, query: DeliveryQuery, format: Format) -> anyhow::Result<String> {
    let records = match reader {
        Reader::Store(storage) => {
            let store = open(storage).await?;
            let deliveries = store.list_deliveries(&query).await?;
            store.close().await;
            deliveries.iter().map(crate::store::Delivery::summary).collect()
        }
        Reader::Api(remote) => {
            let filters = params(&[
                ("state", query.state.map(|s| s.as_str().to_owned())),
                ("output", query.output),
                ("limit", Some(query.limit.to_string())),
            ]);
            remote.list("deliveries", &filters).await?
        }
    };
    let rows: Vec<(Vec<String>, Value)> = records
        .into_iter()
        .map(|record| {
            let dismissal = &record["dismissal"];
            let dismissed = dismissal.is_object().then(|| {
                let note = dismissal["note"].as_str().map(|n| format!(": {n}")).unwrap_or_default();
                format!("dismissed by {} at {} UTC{note}", text(dismissal, "by"), when(dismissal, "at"))
            });
            let answer = [record["last_error"].as_str().map(str::to_owned), dismissed]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            let cells = vec![
                text(&record, "id"),
                text(&record, "event_id"),
                text(&record, "state"),
                text(&record, "output"),
                text(&record, "route"),
                text(&record, "attempts"),
                answer,
            ];
            (cells, record)
        })
        .collect();
    let header = ["ID", "EVENT", "STATE", "OUTPUT", "ROUTE", "ATTEMPTS", "LAST ANSWER"];
    listing(format, &header, &rows, "no deliveries")
}

/// `switchboard replay <event-id>`: the stored event through today's routes, as new deliveries.
///
/// # Errors
/// An unknown event, or the store cannot be written.
pub async fn replay(target: Replaying<'_>, id: &str, to: &crate::delivery::ReplayTo) -> anyhow::Result<String> {
    let id: EventId = id.parse().map_err(|_| anyhow::anyhow!("`{id}` is not an event id"))?;
    let targets: Vec<String> = match target {
        Replaying::Store(config) => {
            let store = open(config.storage()).await?;
            let Some(stored) = store.event(id).await? else { return Err(Verdict(format!("no event {id}")).into()) };
            let earlier = store.deliveries(id).await?;
            let deliveries = crate::delivery::replay(store.as_ref(), config, &stored, &earlier, to).await;
            store.close().await;
            deliveries?.iter().map(|d| format!("{} → {}", d.route, d.output)).collect()
        }
        Replaying::Api(remote) => {
            let body = match to {
                crate::delivery::ReplayTo::NotReached => json!({}),
                crate::delivery::ReplayTo::All => json!({ "all": true }),
                crate::delivery::ReplayTo::Outputs(outputs) => json!({ "outputs": outputs }),
            };
            let answer = remote.act(&format!("events/{id}/replay"), &body).await?;
            let planned = answer["deliveries"].as_array().cloned().unwrap_or_default();
            planned.iter().map(|d| format!("{} → {}", text(d, "route"), text(d, "output"))).collect()
        }
    };
    Ok(if targets.is_empty() && *to == crate::delivery::ReplayTo::NotReached {
        format!(
            "event {id}: it has arrived, or is on its way, wherever today's routes send it; nothing to send (--all or --output to send it again)\n"
        )
    } else if targets.is_empty() {
        format!("event {id}: no route takes it to those outputs today; nothing to send\n")
    } else {
        format!("event {id}: {} new deliveries ({})\n", targets.len(), targets.join(", "))
    })
}

/// Where a replay happens: through the configuration's own store and routes, or by the running
/// daemon (`--url`).
pub enum Replaying<'a> {
    Store(&'a Config),
    Api(Remote),
}

/// `switchboard retry <delivery-id>` or `switchboard retry --dead [--output X]`.
///
/// # Errors
/// A malformed id, nothing to retry for a named delivery, or the store cannot be written.
pub async fn retry(reader: &Reader<'_>, id: Option<&str>, output: Option<&str>) -> anyhow::Result<String> {
    let id: Option<Ulid> =
        id.map(|id| id.parse().map_err(|_| anyhow::anyhow!("`{id}` is not a delivery id"))).transpose()?;
    let count = match reader {
        Reader::Store(storage) => {
            let store = open(storage).await?;
            let count = store.retry(id, output).await;
            store.close().await;
            count?
        }
        Reader::Api(remote) => {
            let (path, body) = match id {
                Some(id) => (format!("deliveries/{id}/retry"), json!({})),
                None => ("deliveries/retry".to_owned(), json!({ "output": output })),
            };
            remote.act(&path, &body).await?["count"].as_u64().unwrap_or_default()
        }
    };
    match (id, count) {
        (Some(id), 0) => {
            Err(Verdict(format!("delivery {id} is not dead or expired (or does not exist); nothing to retry")).into())
        }
        (Some(id), _) => Ok(format!("delivery {id} requeued\n")),
        (None, count) => Ok(format!("{count} dead deliveries requeued\n")),
    }
}

/// `switchboard dismiss <delivery-id>` or `switchboard dismiss --dead [--output X]`.
///
/// # Errors
/// A malformed id, nothing to dismiss for a named delivery, or the store cannot be written.
pub async fn dismiss(
    reader: &Reader<'_>,
    id: Option<&str>,
    output: Option<&str>,
    by: crate::store::Dismissal,
) -> anyhow::Result<String> {
    let id: Option<Ulid> =
        id.map(|id| id.parse().map_err(|_| anyhow::anyhow!("`{id}` is not a delivery id"))).transpose()?;
    let count = match reader {
        Reader::Store(storage) => {
            let store = open(storage).await?;
            let count = store.dismiss(id, output, &by).await;
            store.close().await;
            count?
        }
        Reader::Api(remote) => {
            let (path, body) = match id {
                Some(id) => (format!("deliveries/{id}/dismiss"), json!({ "by": by.by, "note": by.note })),
                None => ("deliveries/dismiss".to_owned(), json!({ "output": output, "by": by.by, "note": by.note })),
            };
            remote.act(&path, &body).await?["count"].as_u64().unwrap_or_default()
        }
    };
    match (id, count) {
        (Some(id), 0) => {
            Err(Verdict(format!("delivery {id} is not dead or expired (or does not exist); nothing to dismiss")).into())
        }
        (Some(id), _) => Ok(format!("delivery {id} dismissed by {}\n", by.by)),
        (None, count) => Ok(format!("{count} dead deliveries dismissed by {}\n", by.by)),
    }
}

/// `switchboard rejected`: refused requests, newest first.
///
/// # Errors
/// The store or the daemon cannot be read.
pub async fn rejected(reader: &Reader<'_>, query: RejectionQuery, format: Format) -> anyhow::Result<String> {
    let records = match reader {
        Reader::Store(storage) => {
            let store = open(storage).await?;
            let rejections = store.rejections(&query).await?;
            store.close().await;
            rejections.iter().map(|r| crate::ingest::rejection_summary(r, None)).collect()
        }
        Reader::Api(remote) => {
            let filters =
                params(&[("vendor", query.vendor), ("reason", query.reason), ("limit", Some(query.limit.to_string()))]);
            remote.list("rejected", &filters).await?
        }
    };
    let rows: Vec<(Vec<String>, Value)> = records
        .into_iter()
        .map(|record| {
            let cells = vec![
                text(&record, "id"),
                when(&record, "received_at"),
                text(&record, "vendor"),
                text(&record, "status"),
                text(&record, "reason"),
                format!("{}  ({})", text(&record, "message"), text(&record, "reprocess")),
            ];
            (cells, record)
        })
        .collect();
    let header = ["ID", "RECEIVED (UTC)", "VENDOR", "STATUS", "REASON", "MESSAGE"];
    listing(format, &header, &rows, "no refused requests")
}

/// `switchboard reprocess <rejection-id>`: the kept request through today's plugins and routes.
///
/// # Errors
/// A malformed or unknown id, a request that cannot be processed again or is refused again, or
/// the store failed.
pub async fn reprocess(config: Config, id: &str) -> anyhow::Result<String> {
    let id: Ulid = id.parse().map_err(|_| anyhow::anyhow!("`{id}` is not a rejection id"))?;
    let store = open(config.storage()).await?;
    let state = IngestState {
        config: Arc::new(ArcSwap::from_pointee(config)),
        store: store.clone(),
        wake: crate::store::Wake::default(),
        sequences: Arc::default(),
    };
    let outcome = crate::ingest::reprocess(&state, id).await;
    store.close().await;
    let outcome = outcome.map_err(|error| match error {
        crate::ingest::ReprocessError::Store(error) => anyhow::Error::new(error).context("the store failed"),
        refused => Verdict(format!("request {id}: {refused}")).into(),
    });
    match outcome? {
        Appended::Stored(event) => Ok(format!("request {id} processed again: event {event}\n")),
        Appended::Duplicate(event) => Ok(format!("request {id} repeats event {event}, which is kept\n")),
    }
}
