//! Turning a request body into a JSON payload: JSON as it is, forms ([`form`]) as objects.

mod form;
mod multipart;

use serde::Deserialize;
use serde_json::Value;

pub use form::{from_pairs, parse_form, query_pairs};

/// How a plugin's bodies are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// JSON only; anything else is refused.
    Json,
    /// A form, or a JSON object sent under a form content type.
    Form,
    /// Decided by the content type, then by the body itself when the sender's label is wrong.
    #[default]
    Auto,
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the request body is empty")]
    Empty,
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson { line: usize, column: usize, message: String },
    #[error("invalid form body: {0}")]
    InvalidForm(String),
}

impl DecodeError {
    /// A stable, low-cardinality code for responses, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_body",
            Self::InvalidJson { .. } => "invalid_json",
            Self::InvalidForm(_) => "invalid_form",
        }
    }
}

/// A decoded body, and whether decoding it again gives the payload back.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub payload: Value,
    /// How the payload is had again from the body; None when it cannot be (a multipart body,
    /// whose file parts were left out).
    pub rereadable: Option<BodyEncoding>,
}

/// How a body that is its payload's whole record was read. A store keeps such a payload once, as
/// the body, and reads it back with [`BodyEncoding::decode`]: what that gives for a stored body
/// must not change (a new way of reading is a new variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// The body is the payload's JSON text.
    Json,
    /// The body is a URL-encoded form, decoded by [`parse_form`].
    Form,
}

impl BodyEncoding {
    /// The name a store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Form => "form",
        }
    }

    /// The encoding a store's name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Self::Json),
            "form" => Some(Self::Form),
            _ => None,
        }
    }

    /// The payload of a body read this way.
    ///
    /// # Errors
    /// A body that does not decode this way.
    pub fn decode(self, body: &[u8]) -> Result<Value, DecodeError> {
        match self {
            Self::Json => parse_json(body),
            Self::Form => parse_form(body),
        }
    }
}

/// Decodes a body of the given format. `content_type` is the request's header, if any.
///
/// # Errors
/// An empty body, JSON that does not parse, or a form that is not UTF-8 or has no `key=value`.
pub fn decode(format: BodyFormat, content_type: Option<&str>, body: &[u8]) -> Result<Value, DecodeError> {
    decode_body(format, content_type, body).map(|decoded| decoded.payload)
}

/// [`decode`], saying which way the body was read.
///
/// # Errors
/// As [`decode`].
pub fn decode_body(format: BodyFormat, content_type: Option<&str>, body: &[u8]) -> Result<Decoded, DecodeError> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Err(DecodeError::Empty);
    }
    let claims_json = content_type.is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("application/json") || ct.contains("+json") || ct.starts_with("text/json")
    });
    let looks_json = matches!(trimmed[0], b'{' | b'[');
    if let Some(boundary) = content_type.and_then(multipart::boundary) {
        if format != BodyFormat::Json {
            return multipart::parse(body, &boundary).map(|payload| Decoded { payload, rereadable: None });
        }
    }
    let json = match format {
        BodyFormat::Json => true,
        BodyFormat::Auto if claims_json => true,
        // A sender that labels JSON as a form (or as nothing) still sent JSON.
        BodyFormat::Form | BodyFormat::Auto => looks_json,
    };
    let encoding = if json { BodyEncoding::Json } else { BodyEncoding::Form };
    encoding.decode(body).map(|payload| Decoded { payload, rereadable: Some(encoding) })
}

fn parse_json(body: &[u8]) -> Result<Value, DecodeError> {
    serde_json::from_slice(body).map_err(|e| DecodeError::InvalidJson {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })
}

/// serde_json appends " at line X column Y"; the error already carries both.
fn strip_position(message: &str) -> String {
    message.find(" at line ").map_or(message, |at| &message[..at]).to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envybox_form_with_cyrillic_and_json_values() {
        let body = "webhooktype=2&call_state=%D0%9A%D0%BB%D0%B8%D0%B5%D0%BD%D1%82+%D0%BD%D0%B5+%D0%B2%D0%B7%D1%8F%D0%BB\
                    &managers_phones=%5B%7B%22manager_name%22%3A%22%22%2C%22phone%22%3A%2279999999999%22%7D%5D&custom_data=%5B%5D&name=";
        let value = decode(BodyFormat::Form, Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap();
        assert_eq!(value["webhooktype"], "2");
        assert_eq!(value["call_state"], "Клиент не взял");
        assert_eq!(value["managers_phones"], json!([{"manager_name": "", "phone": "79999999999"}]));
        assert_eq!(value["custom_data"], json!([]));
        assert_eq!(value["name"], "");
    }

    #[test]
    fn content_type_and_sniffing_decide_auto() {
        let json = br#"{"hook_event":"Call is over"}"#;
        let form = b"hook_event=Call+is+over";
        assert_eq!(decode(BodyFormat::Auto, Some("application/json"), json).unwrap()["hook_event"], "Call is over");
        assert_eq!(
            decode(BodyFormat::Auto, Some("application/x-www-form-urlencoded"), json).unwrap()["hook_event"],
            "Call is over"
        );
        assert_eq!(decode(BodyFormat::Auto, None, form).unwrap()["hook_event"], "Call is over");
        assert_eq!(decode(BodyFormat::Auto, Some("text/plain"), form).unwrap()["hook_event"], "Call is over");
        assert!(matches!(
            decode(BodyFormat::Auto, Some("application/json"), form),
            Err(DecodeError::InvalidJson { .. })
        ));
        assert!(matches!(decode(BodyFormat::Json, None, form), Err(DecodeError::InvalidJson { .. })));
    }

    #[test]
    fn bad_bodies_are_named() {
        assert_eq!(decode(BodyFormat::Auto, None, b"  \n"), Err(DecodeError::Empty));
        let error = decode(BodyFormat::Json, None, b"{\"a\": }").unwrap_err();
        assert_eq!(error.to_string(), "invalid JSON at line 1, column 7: expected value");
        assert_eq!(decode(BodyFormat::Form, None, b"just words").unwrap_err().code(), "invalid_form");
        assert_eq!(decode(BodyFormat::Form, None, b"a=%FF%FE").unwrap_err().code(), "invalid_form");
    }
}
