//! Stored records as JSON, in the one shape the admin API (`/api/v1/…`) answers and the command
//! line prints with `-o json`, so a script reads the same fields either way.

use serde_json::{Value, json};

use super::{Delivery, Rejection, StoredEvent};

impl StoredEvent {
    /// `id`, `received_at`, `vendor`, `event`, `kind`, `fields`, `routes`, `duplicates`.
    pub fn summary(&self) -> Value {
        let event = &self.event;
        json!({
            "id": event.id.to_string(), "received_at": event.received_at, "vendor": event.vendor,
            "event": event.event, "kind": event.kind.to_string(), "fields": event.fields,
            "routes": self.routes, "duplicates": self.duplicates,
        })
    }
}

impl Delivery {
    /// `id`, `event_id`, `state`, `output`, `route`, `template`, `attempts`, `next_attempt_at`,
    /// `created_at`, `last_error`, `dismissal` (`by`, `at`, `note`, or null).
    pub fn summary(&self) -> Value {
        json!({
            "id": self.id.to_string(), "event_id": self.event_id.to_string(), "state": self.state.as_str(),
            "output": self.output, "route": self.route, "template": self.template, "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at, "created_at": self.created_at, "last_error": self.last_error,
            "dismissal": self.dismissal,
        })
    }
}

impl Rejection {
    /// `id`, `received_at`, `vendor`, `status`, `reason`, `message`, `body_size`,
    /// `reprocessed_event` (the event it became when processed again, or null).
    pub fn summary(&self) -> Value {
        json!({
            "id": self.id.to_string(), "received_at": self.received_at, "vendor": self.vendor, "status": self.status,
            "reason": self.reason, "message": self.message, "body_size": self.body_size,
            "reprocessed_event": self.reprocessed.and_then(|r| r.event).map(|id| id.to_string()),
        })
    }
}
