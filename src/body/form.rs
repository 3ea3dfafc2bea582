//! URL-encoded forms (and query strings) as JSON objects.
//!
//! Forms follow what PHP-era senders produce: `a[b]=1` nests, `a[]=1&a[]=2` makes a list, a key
//! repeated without brackets collects its values in a list, and a value that holds a JSON array
//! or object (Envybox's `managers_phones`, `custom_data`) is parsed into it.

use serde_json::{Map, Value};

use super::DecodeError;

/// Nesting deeper than this in a form key (`a[b][c]…`) is kept as a literal key.
const MAX_FORM_DEPTH: usize = 16;

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
    let lossy = |raw: &[u8]| String::from_utf8_lossy(&unescape(raw)).into_owned();
    split_pairs(query.as_bytes()).map(|(key, value)| (lossy(key), lossy(value))).collect()
}

fn split_pairs(body: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    body.split(|b| *b == b'&').filter(|pair| !pair.is_empty()).map(|pair| match pair.iter().position(|b| *b == b'=') {
        Some(at) => (&pair[..at], &pair[at + 1..]),
        None => (pair, &[][..]),
    })
}

fn decode_component(raw: &[u8]) -> Result<String, DecodeError> {
    let invalid = || DecodeError::InvalidForm("a value is not valid UTF-8".to_owned());
    // Most keys and many values need no decoding: one copy, no intermediate buffers.
    if !raw.iter().any(|b| matches!(b, b'+' | b'%')) {
        return std::str::from_utf8(raw).map(str::to_owned).map_err(|_| invalid());
    }
    String::from_utf8(unescape(raw)).map_err(|_| invalid())
}

/// `+` as a space and `%XX` as its byte, in one pass into one buffer; a `%` without two hex
/// digits after it stays as it is. (The `percent-encoding` crate decodes through an iterator,
/// byte by byte, after `+` has been replaced in a copy; Envybox's forms are mostly escapes.)
fn unescape(raw: &[u8]) -> Vec<u8> {
    let hex = |byte: Option<&u8>| byte.and_then(|b| char::from(*b).to_digit(16)).map(|d| d as u8);
    let mut decoded = Vec::with_capacity(raw.len());
    let mut at = 0;
    while let Some(&byte) = raw.get(at) {
        at += 1;
        match byte {
            b'+' => decoded.push(b' '),
            b'%' => match (hex(raw.get(at)), hex(raw.get(at + 1))) {
                (Some(high), Some(low)) => {
                    decoded.push(high << 4 | low);
                    at += 2;
                }
                _ => decoded.push(b'%'),
            },
            _ => decoded.push(byte),
        }
    }
    decoded
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
    fn unescaping_agrees_with_the_percent_encoding_crate() {
        let cases: [&[u8]; 9] =
            [b"", b"plain", b"a+b", b"%2B+%2b", b"%", b"%4", b"%4g%zz%", b"100%25%", b"%D0%9A%d0%bb+%F0%9F%98%80"];
        for raw in cases {
            let plus_as_space: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
            let expected: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
            assert_eq!(unescape(raw), expected, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn query_strings_are_decoded_lossily() {
        let expected = [("phone2", "+7999"), ("hook_event", "Call is over"), ("flag", ""), ("token", "\u{fffd}ab")];
        assert_eq!(
            query_pairs("phone2=%2B7999&hook_event=Call+is+over&flag&token=%FFab"),
            expected.map(|(key, value)| (key.to_owned(), value.to_owned()))
        );
    }

    #[test]
    fn percent_decoding_handles_truncated_escapes() {
        assert_eq!(parse_form(b"a=100%&b=%4").unwrap(), json!({"a": "100%", "b": "%4"}));
        assert_eq!(parse_form(b"a=%41%42").unwrap(), json!({"a": "AB"}));
    }
}
