//! The object templates see: an event's canonical fields and envelope, wrapped once.

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
        Self::of_card(event, None)
    }

    /// [`RenderContext::from_event`] for a Telegram card, with its handling (who took the call,
    /// who called back) as `handling`: `status` (`new`, `taken`, `done`), `taken_by.name`,
    /// `taken_at`, `done_by.name`, `done_at`, `no_answers`, `last_no_answer_at`.
    pub fn of_card(event: Event, handling: Option<&crate::event::handling::Handling>) -> Self {
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
