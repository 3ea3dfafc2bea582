//! The answer a vendor gets for an accepted webhook: the plugin's reply, plus per-event additions
//! from the config (Jivo shows `crm_link`, `custom_data`, … to the agent), plus the legacy echo.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::{Echo, ReplyBody, Vendor};
use crate::event::Event;
use crate::render::JsonTemplate;

/// A `[[vendors.<name>.reply]]` entry: JSON merged into the reply for some events.
#[derive(Debug)]
pub struct ReplyAddition {
    /// The vendor's event names it applies to; empty means every event.
    pub events: Vec<String>,
    pub json: JsonTemplate,
}

/// Builds the reply for `event`.
///
/// Additions that fail to render are left out and logged: the event is already stored, and the
/// vendor must still get its 2xx.
pub fn build(vendor: &Vendor, additions: &[ReplyAddition], event: &Event, echo: Echo) -> (StatusCode, ReplyBody) {
    let reply = vendor.reply();
    let applicable: Vec<&ReplyAddition> =
        additions.iter().filter(|a| a.events.is_empty() || a.events.contains(&event.event)).collect();
    let body = match &reply.body {
        ReplyBody::Json(Value::Object(base)) => {
            let mut body = base.clone();
            if !applicable.is_empty() {
                let context = crate::render::RenderContext::of_event(event);
                for addition in applicable {
                    match addition.json.render(&context) {
                        Ok(Value::Object(extra)) => body.extend(extra),
                        Ok(_) => {}
                        Err(error) => tracing::warn!(
                            message = "Reply addition failed to render; replying without it.",
                            vendor = %vendor.name(), event_id = %event.id, %error
                        ),
                    }
                }
            }
            if echo == Echo::Flatten {
                body.insert("data".into(), Value::Array(vec![Value::Object(flatten(&event.payload))]));
            }
            ReplyBody::Json(Value::Object(body))
        }
        other => other.clone(),
    };
    (reply.status, body)
}

/// The posted data flattened to leaf names, each holding the list of its values as text, the
/// shape the old in-house Jivo receiver answered with (`{"city": ["San Francisco"], …}`).
/// Nulls and empty containers have no leaves and are left out.
pub fn flatten(payload: &Value) -> Map<String, Value> {
    fn walk(name: &str, value: &Value, out: &mut Map<String, Value>) {
        match value {
            Value::Object(map) => map.iter().for_each(|(key, child)| walk(key, child, out)),
            Value::Array(items) => items.iter().for_each(|child| walk(name, child, out)),
            Value::Null => {}
            scalar => {
                let text = match scalar {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let slot = out.entry(name.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(values) = slot {
                    values.push(Value::String(text));
                }
            }
        }
    }
    let mut out = Map::new();
    walk("", payload, &mut out);
    out.remove("");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn flatten_collects_leaves_by_name() {
        let payload = json!({
            "event_name": "offline_message",
            "visitor": {"name": "John Smith", "number": 2198, "social": {}},
            "session": {"geoip": {"city": "San Francisco"}, "utm_json": {"source": "google"}},
            "page": {"url": "http://example.com/", "title": "Page title"},
            "tags": [{"title": "a"}, {"title": "b"}],
            "user_token": null,
        });
        assert_eq!(
            Value::Object(flatten(&payload)),
            json!({
                "event_name": ["offline_message"], "name": ["John Smith"], "number": ["2198"],
                "city": ["San Francisco"], "source": ["google"], "url": ["http://example.com/"],
                "title": ["Page title", "a", "b"],
            })
        );
    }
}
