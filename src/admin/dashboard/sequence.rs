//! The event page's view of the sequence an event belongs to (a Jivo call's `call_event`s):
//! every event of it the store holds, and what the earlier ones showed — the answer to "why is
//! this `end` a missed call?".

use serde_json::{Value, json};

use super::clock::Clock;
use crate::config::Config;
use crate::plugin::{RECALL_LIMIT, Seen};
use crate::store::{Store, StoreError, StoredEvent};

/// The section's data, or `null` for an event in no sequence.
pub(super) async fn section(
    store: &dyn Store,
    config: &Config,
    stored: &StoredEvent,
    clock: Clock,
) -> Result<Value, StoreError> {
    let Some(key) = &stored.sequence_key else {
        return Ok(Value::Null);
    };
    let event = &stored.event;
    // The plugin as loaded now; without it (removed, or its [sequence] gone) the events are
    // still listed, from a day before this one.
    let vendor = config.vendors().get(&event.vendor);
    let sequence = vendor.and_then(|vendor| vendor.sequence(event));
    let since = sequence.as_ref().map_or(event.received_at - chrono::TimeDelta::days(1), |s| s.since);
    let stored_events = store.sequence(key, since, RECALL_LIMIT).await?;
    let events: Vec<_> = stored_events.iter().map(|stored| &stored.event).collect();
    let seen = match (vendor, &sequence) {
        (Some(vendor), Some(sequence)) => vendor.recall(sequence, events.iter().copied().filter(|e| e.id < event.id)),
        _ => Seen::Unknown,
    };
    let flags: Vec<Value> = match &seen {
        Seen::Known(flags) => flags.iter().map(|(name, seen)| json!({"name": name, "seen": seen})).collect(),
        Seen::Unknown => Vec::new(),
    };
    let rows: Vec<Value> = events
        .iter()
        .rev()
        .map(|e| {
            json!({
                "id": e.id.to_string(), "time": clock.time(e.received_at), "event": e.event, "kind": e.kind.as_str(),
                "current": e.id == event.id,
            })
        })
        .collect();
    Ok(json!({
        "key": key.replace('\u{1f}', " · "),
        "events": rows,
        "known": matches!(seen, Seen::Known(_)),
        "grouped": sequence.is_some(),
        "begins": sequence.is_some_and(|s| s.begins),
        "flags": flags,
    }))
}
