//! Operator commands on the store: list events, deliveries and refused requests, replay an
//! event through today's routes, retry dead letters, process a refused request again. They work
//! beside a running daemon (which picks new and requeued deliveries up within a second).

use std::fmt::Write;

use anyhow::{Context, bail};
use ulid::Ulid;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, StorageSettings};
use crate::event::EventId;
use crate::ingest::IngestState;
use crate::store::{self, Appended, DeliveryQuery, DeliveryState, EventQuery, Reprocessed, Store};

async fn open(storage: &StorageSettings) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    store::open(&storage.url, storage.rejected_keep).await.context("opening the store")
}

/// `switchboard events`: newest first.
///
/// # Errors
/// The store cannot be read.
pub async fn events(storage: &StorageSettings, query: EventQuery) -> anyhow::Result<String> {
    let store = open(storage).await?;
    let events = store.events(&query).await?;
    let mut out = String::new();
    for stored in &events {
        let event = &stored.event;
        let routes = if stored.routes.is_empty() { "unrouted".to_owned() } else { stored.routes.join(", ") };
        let phone = event.fields.get("contact.phone").and_then(|v| v.as_str()).unwrap_or("");
        writeln!(
            out,
            "{}  {}  {:<10} {:<22} {:<20} {:<14} {}",
            event.id,
            event.received_at.format("%Y-%m-%d %H:%M:%S"),
            event.vendor,
            event.event,
            event.kind,
            phone,
            routes
        )?;
    }
    if events.is_empty() {
        out.push_str("no events\n");
    }
    store.close().await;
    Ok(out)
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
) -> anyhow::Result<String> {
    let store = open(storage).await?;
    let deliveries = store.list_deliveries(&DeliveryQuery { state, output, limit }).await?;
    let mut out = String::new();
    for d in &deliveries {
        writeln!(
            out,
            "{}  event {}  {:<10} {:<14} {:<24} attempts {}{}{}",
            d.id,
            d.event_id,
            d.state.as_str(),
            d.output,
            d.route,
            d.attempts,
            d.last_error.as_deref().map(|e| format!("  last error: {e}")).unwrap_or_default(),
            d.dismissal
                .as_ref()
                .map(|x| format!(
                    "  dismissed by {} at {}{}",
                    x.by,
                    x.at.format("%Y-%m-%d %H:%M:%S UTC"),
                    x.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()
                ))
                .unwrap_or_default()
        )?;
    }
    if deliveries.is_empty() {
        out.push_str("no deliveries\n");
    }
    store.close().await;
    Ok(out)
}

/// `switchboard replay <event-id>`: the stored event through today's routes, as new deliveries.
///
/// # Errors
/// An unknown event, or the store cannot be written.
pub async fn replay(config: &Config, id: &str) -> anyhow::Result<String> {
    let id: EventId = id.parse().map_err(|_| anyhow::anyhow!("`{id}` is not an event id"))?;
    let store = open(config.storage()).await?;
    let Some(stored) = store.event(id).await? else { bail!("no event {id}") };
    let deliveries = crate::delivery::replay(store.as_ref(), config, &stored).await?;
    store.close().await;
    Ok(if deliveries.is_empty() {
        format!("event {id}: no route takes it today; nothing to send\n")
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
        (Some(id), 0) => bail!("delivery {id} is not dead or expired (or does not exist); nothing to retry"),
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
        (Some(id), 0) => bail!("delivery {id} is not dead or expired (or does not exist); nothing to dismiss"),
        (Some(id), _) => Ok(format!("delivery {id} dismissed by {}\n", by.by)),
        (None, count) => Ok(format!("{count} dead deliveries dismissed by {}\n", by.by)),
    }
}

/// `switchboard rejected`: refused requests, newest first.
///
/// # Errors
/// The store cannot be read.
pub async fn rejected(storage: &StorageSettings, limit: u32) -> anyhow::Result<String> {
    let store = open(storage).await?;
    let rejections = store.rejections(limit).await?;
    let mut out = String::new();
    for r in &rejections {
        let reprocess = match (crate::ingest::not_reprocessable(r, None), r.reprocessed) {
            (_, Some(Reprocessed { event: Some(event), .. })) => format!("became event {event}"),
            (Some(why), _) => format!("final: {why}"),
            (None, _) => "switchboard reprocess can retry it".to_owned(),
        };
        writeln!(
            out,
            "{}  {}  {:<12} {} {:<16} {}  ({reprocess})",
            r.id,
            r.received_at.format("%Y-%m-%d %H:%M:%S"),
            r.vendor.as_deref().unwrap_or("-"),
            r.status,
            r.reason,
            r.message,
        )?;
    }
    if rejections.is_empty() {
        out.push_str("no refused requests\n");
    }
    store.close().await;
    Ok(out)
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
    match outcome? {
        Appended::Stored(event) => Ok(format!("request {id} processed again: event {event}\n")),
        Appended::Duplicate(event) => Ok(format!("request {id} repeats event {event}, which is kept\n")),
    }
}
