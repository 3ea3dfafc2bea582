//! `Vendor::normalize`: a verified request in, one [`Event`] out. Pure: no I/O, no clock.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::sequence::{Seen, SequenceRef};
use super::{Vendor, body};
use crate::condition::{Facts, FieldRef};
use crate::event::as_text;
use crate::event::{Event, EventId, Fields, Kind};
use crate::plugin::request::{InboundRequest, Verified};

/// An event and the key that recognises the vendor's retries of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub event: Event,
    pub dedup_key: String,
    /// The plugin's own dedup window (`dedup_window_secs`), if it sets one.
    pub dedup_window: Option<std::time::Duration>,
    /// The raw body is the payload's whole record, read this way: a store can keep the two as one.
    pub payload_from_body: Option<body::BodyEncoding>,
    /// The plugin's `[sequence]` this event belongs to. Its kind was decided without knowing what
    /// came before it: ingest recalls that and has the plugin [`Vendor::reclassify`] it.
    pub sequence: Option<SequenceRef>,
}

/// Why a request could not become an event. Each becomes a 400 that says so. A plugin whose
/// `event.required` is false (the default) never refuses a webhook for its event: one that names
/// none is stored as kind `unknown`, and [`Vendor::unknown_reason`] says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error(transparent)]
    Body(#[from] body::DecodeError),
    #[error("the webhook names no event: {sources}")]
    MissingEvent { sources: String },
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

/// Where an event's name came from, which decides whether the dedup key must carry it.
enum Named {
    /// The body names it: the body (or its dedup values) already tells events apart.
    Body(String),
    /// The URL, a legacy path or the plugin's default names it: two events may share a body.
    Elsewhere(String),
    /// Nothing names it (or the body's value is not a name): stored as `unknown`, unless the
    /// plugin requires an event.
    Nowhere(NormalizeError),
}

impl Vendor {
    /// Decodes the request and interprets it. `path_event` is the URL segment after the secret
    /// (read only when the plugin takes its event from the path); `legacy_event` is the event a
    /// legacy path implies.
    ///
    /// # Errors
    /// An unreadable body, or (with `event.required`) a payload that does not say which event it is.
    pub fn normalize(
        &self,
        request: &InboundRequest<Verified>,
        path_event: Option<&str>,
        legacy_event: Option<&str>,
        id: EventId,
        received_at: DateTime<Utc>,
    ) -> Result<Normalized, NormalizeError> {
        let (decoded, raw) = if request.method() == axum::http::Method::GET {
            let payload = body::from_pairs(request.query().iter().filter(|(key, _)| key != "token").cloned());
            // The body is empty: the query is what tells one GET webhook from another.
            let raw = Cow::Owned(serde_json::to_vec(&payload).unwrap_or_default());
            (body::Decoded { payload, rereadable: None }, raw)
        } else {
            (
                body::decode_body(self.format, request.content_type(), request.body())?,
                Cow::Borrowed(&request.body()[..]),
            )
        };
        let from_url = self
            .event_source
            .query
            .as_deref()
            .and_then(|name| request.query().iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()))
            .or(path_event.filter(|_| self.event_source.path))
            .filter(|value| !value.trim().is_empty());
        let normalized = self.interpret(decoded.payload, from_url.or(legacy_event), &raw, id, received_at)?;
        Ok(Normalized { payload_from_body: decoded.rereadable, ..normalized })
    }

    /// Builds the event from an already decoded payload: event name and kind, canonical fields,
    /// classification (with nothing known of earlier events), dedup key and the sequence it
    /// belongs to. `implied_event` is what the request's URL or a legacy path names, used when
    /// the body names no event. `raw` is the body as received, hashed when the plugin's
    /// dedup paths are absent. Only [`Vendor::normalize`] knows how a payload was read, so the
    /// result never claims `payload_from_body`.
    ///
    /// # Errors
    /// With `event.required`, a payload that does not say which event it is.
    pub fn interpret(
        &self,
        payload: Value,
        implied_event: Option<&str>,
        raw: &[u8],
        id: EventId,
        received_at: DateTime<Utc>,
    ) -> Result<Normalized, NormalizeError> {
        let view = self.alias_view(&payload);
        let (value, named_elsewhere) = match self.name_event(&view, implied_event) {
            Named::Body(value) => (Some(value), false),
            Named::Elsewhere(value) => (Some(value), true),
            Named::Nowhere(error) if self.event_source.required => return Err(error),
            Named::Nowhere(_) => (None, false),
        };
        let (event_name, base_kind) = match value.as_ref().and_then(|value| self.events.get(value)) {
            Some(def) => (def.name.clone(), def.kind.clone()),
            None => (value.unwrap_or_default(), Kind::unknown()),
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
        let mut dedup_key = self.dedup_key(&view, raw);
        if named_elsewhere {
            // Calltracking's *start* and *end* can carry the same body to two addresses.
            dedup_key.push_str("\u{1f}event=");
            dedup_key.push_str(&event_name);
        }
        drop(view);
        Ok(Normalized {
            event: Event { id, received_at, vendor: self.name.clone(), event: event_name, kind, fields, payload },
            dedup_key,
            dedup_window: self.dedup_window,
            payload_from_body: None,
            sequence,
        })
    }

    /// The event value the body names, else the one the URL or a legacy path implies, else the
    /// plugin's default.
    fn name_event(&self, view: &Value, implied: Option<&str>) -> Named {
        let elsewhere =
            || implied.or(self.event_source.default.as_deref()).map(|v| Named::Elsewhere(v.trim().to_owned()));
        let Some(field) = &self.event_source.field else {
            return elsewhere().unwrap_or_else(|| Named::Nowhere(self.missing_event()));
        };
        match field.get(view) {
            None | Some(Value::Null) => elsewhere().unwrap_or_else(|| Named::Nowhere(self.missing_event())),
            Some(Value::String(s)) if s.trim().is_empty() => {
                elsewhere().unwrap_or_else(|| Named::Nowhere(self.missing_event()))
            }
            Some(found) => match as_text(found) {
                Some(text) => Named::Body(text.trim().to_owned()),
                None => {
                    Named::Nowhere(NormalizeError::EventNotScalar { field: field.to_string(), found: json_type(found) })
                }
            },
        }
    }

    fn missing_event(&self) -> NormalizeError {
        let source = &self.event_source;
        let mut sources = Vec::new();
        if let Some(field) = &source.field {
            sources.push(format!("the payload has no `{field}` field"));
        }
        if let Some(query) = &source.query {
            sources.push(format!("the URL has no `{query}` parameter"));
        }
        if source.path {
            sources.push(format!("the URL does not end in the event (`/hooks/{}/<secret>/<event>`)", self.name));
        }
        NormalizeError::MissingEvent { sources: sources.join(", and ") }
    }

    /// Why an event of this plugin is of kind `unknown`, when the plugin can tell: it named no
    /// event, or one the plugin's `[events]` do not list. `None` for an event of another kind, or
    /// one a `[[classify]]` rule made `unknown`.
    pub fn unknown_reason(&self, event: &Event) -> Option<String> {
        if event.kind != Kind::unknown() {
            return None;
        }
        if event.event.is_empty() {
            let view = self.alias_view(&event.payload);
            return match self.name_event(&view, None) {
                Named::Nowhere(error) => Some(error.to_string()),
                // The URL named one that is gone now, or the plugin has changed since.
                Named::Body(_) | Named::Elsewhere(_) => Some("the webhook named no event".to_owned()),
            };
        }
        if self.events.values().any(|def| def.name == event.event) {
            return None;
        }
        Some(format!("`{}` is not one of the events this plugin lists in `[events]`", event.event))
    }

    /// The canonical fields read from the payload, then the `[[classify]]` rules applied in
    /// order to the kind the event's name gave (`base`): each rule that holds may change the
    /// kind and set fields, and later rules see what earlier ones did.
    pub(super) fn classify(&self, event_name: &str, base: Kind, view: &Value, seen: &Seen) -> (Kind, Fields) {
        let mut kind = base;
        let mut fields = Fields::default();
        for (field, paths) in &self.fields {
            // A canonical field holds one value: a list or an object (a multipart file's
            // description) is not it, and the next path is tried.
            let scalar = |v: &&Value| is_present(v) && !v.is_object() && !v.is_array();
            if let Some(found) = paths.iter().filter_map(|p| p.get(view)).find(scalar) {
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
