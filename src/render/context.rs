//! The object templates see: an event's canonical fields and envelope, wrapped once.

use crate::event::handling::{CardEvent, Handling, Status};
use std::sync::Arc;

use serde_json::Value;

use crate::event::Event;

/// An event's template context, wrapped once. Handlebars re-serialises a plain value on every
/// render (a deep copy of the whole payload per template part); this hands it over as is.
/// Cloning is cheap: a message keeps it for the templates its output renders at send time.
#[derive(Debug, Clone)]
pub struct RenderContext(pub(super) Arc<handlebars::Context>);

impl RenderContext {
    /// The object templates see: the canonical fields at the top level (`contact.phone`), plus
    /// `id`, `received_at`, `vendor`, `event`, `kind`, `payload`, and `fields`: the canonical
    /// fields as a list of `{name, value}` for templates that list them all. Consumes the event,
    /// so a delivery does not copy its payload; [`RenderContext::of_event`] is for callers that keep it.
    pub fn from_event(event: Event) -> Self {
        Self::of_card(event, None, &[])
    }

    /// [`RenderContext::from_event`] for a Telegram card, with its handling (who took the call,
    /// who called back) as `handling`: `status` (`new`, `taken`, `done`), `taken_by.name`,
    /// `taken_at`, `done_by.name`, `done_at`, `no_answers`, `last_no_answer_at`; and the call so
    /// far as `card`: `started_at` (its first event's arrival), `status` (`new` until someone
    /// presses), and `events` (`event`, `kind`, `received_at` of each, oldest first, up to this
    /// one).
    pub fn of_card(event: Event, handling: Option<&Handling>, events: &[CardEvent]) -> Self {
        let card = serde_json::json!({
            "started_at": events.first().map_or(event.received_at, |first| first.received_at).to_rfc3339(),
            "status": handling.map_or(Status::New, |h| h.status).as_str(),
            "events": events.iter().map(|e| serde_json::json!({
                "id": e.id.to_string(), "event": e.event, "kind": e.kind, "received_at": e.received_at.to_rfc3339(),
            })).collect::<Vec<_>>(),
        });
        let mut root = event.fields.to_nested();
        let list = event.fields.iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})).collect();
        root.insert("fields".into(), Value::Array(list));
        root.insert("id".into(), Value::String(event.id.to_string()));
        root.insert("received_at".into(), Value::String(event.received_at.to_rfc3339()));
        root.insert("vendor".into(), Value::String(event.vendor));
        root.insert("event".into(), Value::String(event.event));
        root.insert("kind".into(), Value::String(event.kind.to_string()));
        root.insert("payload".into(), event.payload);
        if let Some(handling) = handling.and_then(|h| serde_json::to_value(h).ok()) {
            root.insert("handling".into(), handling);
        }
        // Only for a card read from the store: a plain render (an HTTP body that lists the whole
        // context) is not changed by it.
        if !events.is_empty() {
            root.insert("card".into(), card);
        }
        Self::new(Value::Object(root))
    }

    /// [`RenderContext::from_event`] of a copy.
    pub fn of_event(event: &Event) -> Self {
        Self::from_event(event.clone())
    }

    pub fn new(value: Value) -> Self {
        Self(Arc::new(handlebars::Context::from(value)))
    }

    /// The context as JSON.
    pub fn value(&self) -> &Value {
        self.0.data()
    }
}

impl Default for RenderContext {
    fn default() -> Self {
        Self::new(Value::Null)
    }
}

impl PartialEq for RenderContext {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl From<Value> for RenderContext {
    fn from(value: Value) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::event::{EventId, Fields, Kind};

    #[test]
    fn a_card_context_carries_the_call_so_far_and_a_plain_one_does_not() {
        let started = Utc.with_ymd_and_hms(2026, 11, 23, 9, 15, 0).unwrap();
        let at = started + TimeDelta::seconds(40);
        let event = Event {
            id: EventId::new(at),
            received_at: at,
            vendor: "jivo".into(),
            event: "call_event".into(),
            kind: Kind::parse("call.missed").unwrap(),
            fields: Fields::default(),
            payload: json!({}),
        };
        let first = CardEvent {
            id: EventId::new(started),
            event: "call_event".into(),
            kind: "call.started".into(),
            received_at: started,
        };
        let this = CardEvent { id: event.id, event: "call_event".into(), kind: "call.missed".into(), received_at: at };
        let context = RenderContext::of_card(event.clone(), None, &[first, this]);
        let card = &context.value()["card"];
        assert_eq!(card["started_at"], started.to_rfc3339());
        assert_eq!(card["status"], "new");
        assert_eq!(card["events"][0]["kind"], "call.started");
        assert!(
            RenderContext::from_event(event).value().get("card").is_none(),
            "an HTTP body listing the context is unchanged"
        );
    }
}
