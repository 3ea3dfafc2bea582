//! `Vendor::normalize`: a verified request in, one [`Event`] out. Pure: no I/O, no clock.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::sequence::{Seen, SequenceRef};
use super::{Vendor, body};
use crate::condition::{Facts, FieldRef, as_text};
use crate::event::{Event, EventId, Fields, Kind};
use crate::ingest::request::{InboundRequest, Verified};

/// An event and the key that recognises the vendor's retries of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub event: Event,
    pub dedup_key: String,
    /// The raw body is the payload's whole record, read this way: a store can keep the two as one.
    pub payload_from_body: Option<body::BodyEncoding>,
    /// The plugin's `[sequence]` this event belongs to. Its kind was decided without knowing what
    /// came before it: ingest recalls that and has the plugin [`Vendor::reclassify`] it.
    pub sequence: Option<SequenceRef>,
}

/// Why a request could not become an event. Each becomes a 400 that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error(transparent)]
    Body(#[from] body::DecodeError),
    #[error("the payload has no `{field}` field, which names the event")]
    MissingEvent { field: String },
    #[error("`{field}` must be a string or number naming the event, found {found}")]
    EventNotScalar { field: String, found: &'static str },
}

impl NormalizeError {
    /// A stable, low-cardinality code for responses, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Body(error) => error.code(),
            Self::MissingEvent { .. } => "missing_event",
            Self::EventNotScalar { .. } => "invalid_event",
        }
    }
}

impl Vendor {
    /// Decodes the request and interprets it. `legacy_event` is the event a legacy path implies.
    ///
    /// # Errors
    /// An unreadable body, or a payload that does not say which event it is.
    pub fn normalize(
        &self,
        request: &InboundRequest<Verified>,
        legacy_event: Option<&str>,
        id: EventId,
        received_at: DateTime<Utc>,
    ) -> Result<Normalized, NormalizeError> {
        let decoded = if request.method() == axum::http::Method::GET {
            let payload = body::from_pairs(request.query().iter().filter(|(key, _)| key != "token").cloned());
            body::Decoded { payload, rereadable: None }
        } else {
            body::decode_body(self.format, request.content_type(), request.body())?
        };
        let normalized = self.interpret(decoded.payload, legacy_event, request.body(), id, received_at)?;
        Ok(Normalized { payload_from_body: decoded.rereadable, ..normalized })
    }

    /// Builds the event from an already decoded payload: event name and kind, canonical fields,
    /// classification (with nothing known of earlier events), dedup key and the sequence it
    /// belongs to. `raw` is the body as received, hashed when the plugin's
    /// dedup paths are absent. Only [`Vendor::normalize`] knows how a payload was read, so the
    /// result never claims `payload_from_body`.
    ///
    /// # Errors
    /// A payload that does not say which event it is.
    pub fn interpret(
        &self,
        payload: Value,
        legacy_event: Option<&str>,
        raw: &[u8],
        id: EventId,
        received_at: DateTime<Utc>,
    ) -> Result<Normalized, NormalizeError> {
        let view = self.alias_view(&payload);
        let value = match self.event_field.get(&view) {
            None | Some(Value::Null) => legacy_event.or(self.event_default.as_deref()).map(str::to_owned),
            Some(Value::String(s)) if s.trim().is_empty() => {
                legacy_event.or(self.event_default.as_deref()).map(str::to_owned)
            }
            Some(found) => Some(
                as_text(found)
                    .ok_or_else(|| NormalizeError::EventNotScalar {
                        field: self.event_field.to_string(),
                        found: json_type(found),
                    })?
                    .trim()
                    .to_owned(),
            ),
        };
        let value = value.ok_or_else(|| NormalizeError::MissingEvent { field: self.event_field.to_string() })?;
        let (event_name, base_kind) = match self.events.get(&value) {
            Some(def) => (def.name.clone(), def.kind.clone()),
            None => (value, Kind::unknown()),
        };
        let (kind, fields) = self.classify(&event_name, base_kind, &view, &Seen::Unknown);
        let draft = Draft {
            vendor: &self.name,
            event: &event_name,
            kind: &kind,
            fields: &fields,
            payload: &view,
            seen: &Seen::Unknown,
        };
        let sequence = self.sequence_of(&draft, received_at);
        let dedup_key = self.dedup_key(&view, raw);
        drop(view);
        Ok(Normalized {
            event: Event { id, received_at, vendor: self.name.clone(), event: event_name, kind, fields, payload },
            dedup_key,
            payload_from_body: None,
            sequence,
        })
    }

    /// The canonical fields read from the payload, then the `[[classify]]` rules applied in
    /// order to the kind the event's name gave (`base`): each rule that holds may change the
    /// kind and set fields, and later rules see what earlier ones did.
    pub(super) fn classify(&self, event_name: &str, base: Kind, view: &Value, seen: &Seen) -> (Kind, Fields) {
        let mut kind = base;
        let mut fields = Fields::default();
        for (field, paths) in &self.fields {
            if let Some(found) = paths.iter().filter_map(|p| p.get(view)).find(|v| is_present(v)) {
                fields.set(field, found.clone());
            }
        }
        for rule in &self.classify {
            let draft =
                Draft { vendor: &self.name, event: event_name, kind: &kind, fields: &fields, payload: view, seen };
            if rule.when.matches(&draft) {
                if let Some(new_kind) = &rule.kind {
                    kind = new_kind.clone();
                }
                for (field, value) in &rule.set {
                    fields.set(field, value.clone());
                }
            }
        }
        (kind, fields)
    }

    /// The payload as the plugin reads it: aliased keys copied to the names the plugin uses.
    /// The stored payload stays as the vendor sent it.
    pub(super) fn alias_view<'p>(&self, payload: &'p Value) -> Cow<'p, Value> {
        let missing: Vec<_> = self
            .aliases
            .iter()
            .filter(|(target, _)| target.get(payload).is_none_or(|v| !is_present(v)))
            .filter_map(|(target, alternatives)| {
                alternatives.iter().find_map(|a| a.get(payload).filter(|v| is_present(v))).map(|v| (target, v.clone()))
            })
            .collect();
        if missing.is_empty() {
            return Cow::Borrowed(payload);
        }
        let mut view = payload.clone();
        for (target, value) in missing {
            target.set(&mut view, value);
        }
        Cow::Owned(view)
    }

    fn dedup_key(&self, view: &Value, raw: &[u8]) -> String {
        let values: Option<Vec<String>> = if self.dedup.is_empty() {
            None
        } else {
            self.dedup
                .iter()
                .map(|path| path.get(view).filter(|v| is_present(v)).and_then(as_text).map(Cow::into_owned))
                .collect()
        };
        match values {
            Some(values) => format!("key:{}", values.join("\u{1f}")),
            None => body_digest_key(raw),
        }
    }
}

/// `sha256:` and the body's digest in lower-case hex: the dedup key of a plugin that names no
/// fields for one. Written into one string (a `format!` per byte was ~1% of ingest's CPU).
fn body_digest_key(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = String::with_capacity("sha256:".len() + 64);
    key.push_str("sha256:");
    for byte in Sha256::digest(raw) {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    key
}

/// An event as a plugin's conditions see it: under construction, or stored earlier.
pub(super) struct Draft<'a> {
    pub(super) vendor: &'a str,
    pub(super) event: &'a str,
    pub(super) kind: &'a Kind,
    pub(super) fields: &'a Fields,
    /// The payload as the plugin reads it (aliases applied).
    pub(super) payload: &'a Value,
    pub(super) seen: &'a Seen,
}

impl<'a> Draft<'a> {
    /// A finished event, read through the plugin's eyes.
    pub(super) fn of(event: &'a Event, view: &'a Value, seen: &'a Seen) -> Self {
        Self {
            vendor: &event.vendor,
            event: &event.event,
            kind: &event.kind,
            fields: &event.fields,
            payload: view,
            seen,
        }
    }
}

impl Facts for Draft<'_> {
    fn lookup(&self, field: &FieldRef) -> Option<Cow<'_, Value>> {
        match field {
            FieldRef::Vendor => Some(Cow::Owned(Value::String(self.vendor.to_owned()))),
            FieldRef::Event => Some(Cow::Owned(Value::String(self.event.to_owned()))),
            FieldRef::Kind => Some(Cow::Owned(Value::String(self.kind.to_string()))),
            FieldRef::Field(name) => self.fields.get(name).map(Cow::Borrowed),
            FieldRef::Payload(path) => path.get(self.payload).map(Cow::Borrowed),
            FieldRef::Seen(name) => self.seen.get(name).map(Cow::Owned),
        }
    }
}

/// Null, empty strings and empty containers count as "not sent": a form's `name=` says nothing.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => true,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_body_digest_key_is_the_sha256_in_lower_case_hex() {
        // FIPS 180-2's example for "abc".
        assert_eq!(
            super::body_digest_key(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
