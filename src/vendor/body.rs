//! Turning a request body into a JSON payload: JSON as it is, forms as objects.
//!
//! Forms follow what PHP-era senders produce: `a[b]=1` nests, `a[]=1&a[]=2` makes a list, a key
//! repeated without brackets collects its values in a list, and a value that holds a JSON array
//! or object (Envybox's `managers_phones`, `custom_data`) is parsed into it.

use serde::Deserialize;
use serde_json::{Map, Value};

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

/// Nesting deeper than this in a form key (`a[b][c]…`) is kept as a literal key.
const MAX_FORM_DEPTH: usize = 16;

/// A decoded body, and whether it was JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub payload: Value,
    /// The body is the payload's JSON text: parsing the body again gives the payload back.
    pub is_json: bool,
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
    let form = |payload| Decoded { payload, is_json: false };
    if let Some(boundary) = content_type.and_then(multipart_boundary) {
        if format != BodyFormat::Json {
            return parse_multipart(body, &boundary).map(form);
        }
    }
    let json = match format {
        BodyFormat::Json => true,
        BodyFormat::Auto if claims_json => true,
        // A sender that labels JSON as a form (or as nothing) still sent JSON.
        BodyFormat::Form | BodyFormat::Auto => looks_json,
    };
    if json { parse_json(body).map(|payload| Decoded { payload, is_json: true }) } else { parse_form(body).map(form) }
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

/// Decodes an `application/x-www-form-urlencoded` body (or a query string).
///
/// # Errors
/// Bytes that are not UTF-8 once percent-decoded, or no `key=value` pair at all.
pub fn parse_form(body: &[u8]) -> Result<Value, DecodeError> {
    if !body.contains(&b'=') {
        return Err(DecodeError::InvalidForm("no `key=value` pairs".to_owned()));
    }
    Ok(from_pairs(form_pairs(body)?))
}

/// The boundary of a `multipart/form-data` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Reads the text fields of a `multipart/form-data` body (Calltracking can be set to send one);
/// file parts are left out. Fields follow the same rules as a URL-encoded form.
fn parse_multipart(body: &[u8], boundary: &str) -> Result<Value, DecodeError> {
    let invalid = |why: &str| DecodeError::InvalidForm(format!("multipart: {why}"));
    let text = std::str::from_utf8(body).map_err(|_| invalid("a part is not valid UTF-8 text"))?;
    let delimiter = format!("--{boundary}");
    let mut pairs = Vec::new();
    let mut sections = text.split(delimiter.as_str());
    sections.next(); // the preamble before the first boundary
    let mut closed = false;
    for section in sections {
        if section.starts_with("--") {
            closed = true;
            break;
        }
        let section = section.strip_prefix("\r\n").or_else(|| section.strip_prefix('\n')).unwrap_or(section);
        let (headers, value) = section
            .split_once("\r\n\r\n")
            .or_else(|| section.split_once("\n\n"))
            .ok_or_else(|| invalid("a part has no blank line after its headers"))?;
        let disposition = headers
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or_else(|| invalid("a part has no Content-Disposition"))?;
        let parameter = |name: &str| {
            disposition.split(';').find_map(|p| {
                let (key, value) = p.split_once('=')?;
                (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
            })
        };
        if parameter("filename").is_some() {
            continue;
        }
        let name = parameter("name").ok_or_else(|| invalid("a part has no name"))?;
        let value = value.strip_suffix("\r\n").or_else(|| value.strip_suffix('\n')).unwrap_or(value);
        pairs.push((name, value.to_owned()));
    }
    if !closed {
        return Err(invalid("the closing boundary is missing"));
    }
    if pairs.is_empty() {
        return Err(invalid("no fields"));
    }
    Ok(from_pairs(pairs))
}

/// Builds a payload from already decoded pairs (a GET's query string), with the same rules as a
/// form body.
pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    let mut root = Map::new();
    for (key, value) in pairs {
        if !key.is_empty() {
            insert_form_value(&mut root, key, form_value(value));
        }
    }
    Value::Object(root)
}

/// Percent-decodes the pairs, refusing (rather than silently mangling) invalid UTF-8.
fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    split_pairs(body).map(|(key, value)| Ok((decode_component(key)?, decode_component(value)?))).collect()
}

/// A query string's pairs, decoded; invalid UTF-8 is replaced rather than refused, because a
/// query also carries the secret, which must be read to answer 401 rather than 400.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    let lossy = |raw: &[u8]| {
        let plus_as_space: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
        percent_encoding::percent_decode(&plus_as_space).decode_utf8_lossy().into_owned()
    };
    split_pairs(query.as_bytes()).map(|(key, value)| (lossy(key), lossy(value))).collect()
}

fn split_pairs(body: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    body.split(|b| *b == b'&').filter(|pair| !pair.is_empty()).map(|pair| match pair.iter().position(|b| *b == b'=') {
        Some(at) => (&pair[..at], &pair[at + 1..]),
        None => (pair, &[][..]),
    })
}

fn decode_component(raw: &[u8]) -> Result<String, DecodeError> {
    let invalid = |_| DecodeError::InvalidForm("a value is not valid UTF-8".to_owned());
    // Most keys and many values need no decoding: one copy, no intermediate buffers.
    if !raw.iter().any(|b| matches!(b, b'+' | b'%')) {
        return std::str::from_utf8(raw).map(str::to_owned).map_err(invalid);
    }
    let plus_as_space: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_encoding::percent_decode(&plus_as_space).decode_utf8().map(|text| text.into_owned()).map_err(invalid)
}

/// A form value that holds a JSON array or object becomes that structure.
fn form_value(raw: String) -> Value {
    let trimmed = raw.trim();
    if (trimmed.starts_with('[') && trimmed.ends_with(']')) || (trimmed.starts_with('{') && trimmed.ends_with('}')) {
        if let Ok(parsed) = serde_json::from_str::<Value>(trimmed) {
            return parsed;
        }
    }
    Value::String(raw)
}

/// Splits `a[b][]` into `["a", "b", ""]`; a key with unbalanced or too many brackets stays whole.
fn key_segments(key: &str) -> Vec<&str> {
    let Some(open) = key.find('[') else { return vec![key] };
    if open == 0 || !key.ends_with(']') {
        return vec![key];
    }
    let mut segments = vec![&key[..open]];
    let mut rest = &key[open..];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else { return vec![key] };
        segments.push(&inner[..close]);
        rest = &inner[close + 1..];
        if segments.len() > MAX_FORM_DEPTH {
            return vec![key];
        }
    }
    if rest.is_empty() { segments } else { vec![key] }
}

fn insert_form_value(root: &mut Map<String, Value>, key: String, value: Value) {
    if !key.contains('[') {
        insert_flat(root, key, value);
        return;
    }
    let segments = key_segments(&key);
    let (first, rest) = segments.split_first().expect("key_segments returns at least the key itself");
    if rest.is_empty() {
        insert_flat(root, (*first).to_owned(), value);
        return;
    }
    let slot = root.entry((*first).to_owned()).or_insert(Value::Null);
    insert_nested(slot, rest, value);
}

/// `a=1&a=2`: keeps both rather than silently keeping one.
fn insert_flat(root: &mut Map<String, Value>, key: String, value: Value) {
    match root.entry(key) {
        serde_json::map::Entry::Vacant(slot) => {
            slot.insert(value);
        }
        serde_json::map::Entry::Occupied(mut slot) => match slot.get_mut() {
            Value::Array(items) => items.push(value),
            existing => {
                let previous = existing.take();
                *existing = Value::Array(vec![previous, value]);
            }
        },
    }
}

fn insert_nested(slot: &mut Value, segments: &[&str], value: Value) {
    let Some((segment, rest)) = segments.split_first() else {
        *slot = value;
        return;
    };
    if segment.is_empty() {
        // `a[]=…` appends.
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        let Value::Array(items) = slot else { return };
        if rest.is_empty() {
            items.push(value);
        } else {
            let mut child = Value::Null;
            insert_nested(&mut child, rest, value);
            items.push(child);
        }
        return;
    }
    if !slot.is_object() {
        // A scalar and a nested key under one name: the structure wins, as in PHP.
        *slot = Value::Object(Map::new());
    }
    let Value::Object(map) = slot else { return };
    let child = map.entry((*segment).to_owned()).or_insert(Value::Null);
    insert_nested(child, rest, value);
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
    fn raw_utf8_in_forms_is_accepted() {
        let value = parse_form("place=Краснодар, Краснодарский край&x=1".as_bytes()).unwrap();
        assert_eq!(value["place"], "Краснодар, Краснодарский край");
    }

    #[test]
    fn bracket_keys_nest_and_repeat() {
        let value = parse_form(b"visit_info[current][utm_source]=google&tags[]=a&tags[]=b&r=1&r=2&x[0][y]=z").unwrap();
        assert_eq!(value["visit_info"], json!({"current": {"utm_source": "google"}}));
        assert_eq!(value["tags"], json!(["a", "b"]));
        assert_eq!(value["r"], json!(["1", "2"]));
        assert_eq!(value["x"], json!({"0": {"y": "z"}}));
    }

    #[test]
    fn malformed_keys_stay_literal() {
        let value = parse_form(b"a[b=1&[c]=2&d]=3&e[f]g=4").unwrap();
        assert_eq!(value, json!({"a[b": "1", "[c]": "2", "d]": "3", "e[f]g": "4"}));
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
    fn multipart_text_fields_become_the_payload() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"hook_event\"\r\n\r\nCall is over\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"city\"\r\n\r\nКазань\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"visit_info[current][utm_source]\"\r\n\r\nyandex\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"log\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nignored\r\n\
                    --XyZ--\r\n";
        let value = decode(BodyFormat::Auto, Some("multipart/form-data; boundary=XyZ"), body.as_bytes()).unwrap();
        assert_eq!(
            value,
            json!({"hook_event": "Call is over", "city": "Казань", "visit_info": {"current": {"utm_source": "yandex"}}})
        );
        let unclosed = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n";
        let error =
            decode(BodyFormat::Auto, Some("multipart/form-data; boundary=\"XyZ\""), unclosed.as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), "invalid form body: multipart: the closing boundary is missing");
        let nameless = "--XyZ\r\nContent-Disposition: form-data\r\n\r\n1\r\n--XyZ--";
        assert!(decode(BodyFormat::Form, Some("multipart/form-data; boundary=XyZ"), nameless.as_bytes()).is_err());
    }

    #[test]
    fn bad_bodies_are_named() {
        assert_eq!(decode(BodyFormat::Auto, None, b"  \n"), Err(DecodeError::Empty));
        let error = decode(BodyFormat::Json, None, b"{\"a\": }").unwrap_err();
        assert_eq!(error.to_string(), "invalid JSON at line 1, column 7: expected value");
        assert_eq!(decode(BodyFormat::Form, None, b"just words").unwrap_err().code(), "invalid_form");
        assert_eq!(decode(BodyFormat::Form, None, b"a=%FF%FE").unwrap_err().code(), "invalid_form");
    }

    #[test]
    fn percent_decoding_handles_truncated_escapes() {
        assert_eq!(parse_form(b"a=100%&b=%4").unwrap(), json!({"a": "100%", "b": "%4"}));
        assert_eq!(parse_form(b"a=%41%42").unwrap(), json!({"a": "AB"}));
    }
}
