//! Operator commands on the store: list events, deliveries and refused requests, replay an
//! event through today's routes, retry dead letters, process a refused request again. They work
//! beside a running daemon (which picks new and requeued deliveries up within a second).

use std::fmt::Write;

use anyhow::{Context, bail};
use ulid::Ulid;

use std::sync::Arc;

use arc_swap::ArcSwap;

use serde_json::{Value, json};

use super::{Format, Verdict};
use crate::config::{Config, StorageSettings};
use crate::event::EventId;
use crate::ingest::IngestState;
use crate::store::{self, Appended, DeliveryQuery, DeliveryState, EventQuery, RejectionQuery, Reprocessed, Store};

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

/// `switchboard events`: newest first.
///
/// # Errors
/// The store cannot be read.
pub async fn events(storage: &StorageSettings, query: EventQuery, format: Format) -> anyhow::Result<String> {
    let store = open(storage).await?;
    let events = store.events(&query).await?;
    store.close().await;
    let rows: Vec<(Vec<String>, Value)> = events
        .iter()
        .map(|stored| {
            let event = &stored.event;
            let routes = if stored.routes.is_empty() { "unrouted".to_owned() } else { stored.routes.join(", ") };
            let phone = event.fields.get("contact.phone").and_then(|v| v.as_str()).unwrap_or("-").to_owned();
            let cells = vec![
                event.id.to_string(),
                time(event.received_at),
                event.vendor.clone(),
                event.event.clone(),
                event.kind.to_string(),
                phone,
                routes,
            ];
            let json = json!({
                "id": event.id.to_string(), "received_at": event.received_at, "vendor": event.vendor,
                "event": event.event, "kind": event.kind.to_string(), "fields": event.fields,
                "routes": stored.routes, "duplicates": stored.duplicates,
            });
            (cells, json)
        })
        .collect();
    listing(format, &["ID", "RECEIVED (UTC)", "VENDOR", "EVENT", "KIND", "PHONE", "ROUTES"], &rows, "no events")
}

/// `switchboard deliveries`: newest first, with their last error.
///
/// # Errors
/// The store cannot be read.
pub async fn deliveries(
    storage: &StorageSettings,
    state: Option<DeliveryState>,
    output: Option<String>,
    limit: u32,
    format: Format,
) -> anyhow::Result<String> {
    let store = open(storage).await?;
    let deliveries = store.list_deliveries(&DeliveryQuery { state, output, limit }).await?;
    store.close().await;
    let rows: Vec<(Vec<String>, Value)> = deliveries
        .iter()
        .map(|d| {
            let dismissed = d.dismissal.as_ref().map(|x| {
                let note = x.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
                format!("dismissed by {} at {} UTC{note}", x.by, time(x.at))
            });
            let answer = [d.last_error.clone(), dismissed].into_iter().flatten().collect::<Vec<_>>().join("; ");
            let cells = vec![
                d.id.to_string(),
                d.event_id.to_string(),
                d.state.as_str().to_owned(),
                d.output.clone(),
                d.route.clone(),
                d.attempts.to_string(),
                answer,
            ];
            let json = json!({
                "id": d.id.to_string(), "event_id": d.event_id.to_string(), "state": d.state.as_str(),
                "output": d.output, "route": d.route, "template": d.template, "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at, "created_at": d.created_at, "last_error": d.last_error,
                "dismissal": d.dismissal,
            });
            (cells, json)
        })
        .collect();
    let header = ["ID", "EVENT", "STATE", "OUTPUT", "ROUTE", "ATTEMPTS", "LAST ANSWER"];
    listing(format, &header, &rows, "no deliveries")
}

/// `switchboard replay <event-id>`: the stored event through today's routes, as new deliveries.
///
/// # Errors
/// An unknown event, or the store cannot be written.
pub async fn replay(config: &Config, id: &str, to: &crate::delivery::ReplayTo) -> anyhow::Result<String> {
    let id: EventId = id.parse().map_err(|_| anyhow::anyhow!("`{id}` is not an event id"))?;
    let store = open(config.storage()).await?;
    let Some(stored) = store.event(id).await? else { return Err(Verdict(format!("no event {id}")).into()) };
    let earlier = store.deliveries(id).await?;
    let deliveries = crate::delivery::replay(store.as_ref(), config, &stored, &earlier, to).await?;
    store.close().await;
    Ok(if deliveries.is_empty() && *to == crate::delivery::ReplayTo::NotReached {
        format!(
            "event {id}: it has arrived, or is on its way, wherever today's routes send it; nothing to send (--all or --output to send it again)\n"
        )
    } else if deliveries.is_empty() {
        format!("event {id}: no route takes it to those outputs today; nothing to send\n")
    } else {
        let targets: Vec<String> = deliveries.iter().map(|d| format!("{} → {}", d.route, d.output)).collect();
        format!("event {id}: {} new deliveries ({})\n", deliveries.len(), targets.join(", "))
    })
}

/// `switchboard retry <delivery-id>` or `switchboard retry --dead [--output X]`.
///
/// # Errors
/// A malformed id, nothing to retry for a named delivery, or the store cannot be written.
pub async fn retry(storage: &StorageSettings, id: Option<&str>, output: Option<&str>) -> anyhow::Result<String> {
    let id: Option<Ulid> =
        id.map(|id| id.parse().map_err(|_| anyhow::anyhow!("`{id}` is not a delivery id"))).transpose()?;
    let store = open(storage).await?;
    let count = store.retry(id, output).await?;
    store.close().await;
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
    storage: &StorageSettings,
    id: Option<&str>,
    output: Option<&str>,
    by: crate::store::Dismissal,
) -> anyhow::Result<String> {
    let id: Option<Ulid> =
        id.map(|id| id.parse().map_err(|_| anyhow::anyhow!("`{id}` is not a delivery id"))).transpose()?;
    let store = open(storage).await?;
    let count = store.dismiss(id, output, &by).await?;
    store.close().await;
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
/// The store cannot be read.
pub async fn rejected(storage: &StorageSettings, query: RejectionQuery, format: Format) -> anyhow::Result<String> {
    let store = open(storage).await?;
    let rejections = store.rejections(&query).await?;
    store.close().await;
    let rows: Vec<(Vec<String>, Value)> = rejections
        .iter()
        .map(|r| {
            let reprocess = match (crate::ingest::not_reprocessable(r, None), r.reprocessed) {
                (_, Some(Reprocessed { event: Some(event), .. })) => format!("became event {event}"),
                (Some(why), _) => format!("final: {why}"),
                (None, _) => "switchboard reprocess can retry it".to_owned(),
            };
            let cells = vec![
                r.id.to_string(),
                time(r.received_at),
                r.vendor.clone().unwrap_or_else(|| "-".to_owned()),
                r.status.to_string(),
                r.reason.clone(),
                format!("{}  ({reprocess})", r.message),
            ];
            let json = json!({
                "id": r.id.to_string(), "received_at": r.received_at, "vendor": r.vendor, "status": r.status,
                "reason": r.reason, "message": r.message, "body_size": r.body_size, "reprocess": reprocess,
            });
            (cells, json)
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
