//! `Path`: a dotted path into a JSON payload (`visitor.phone`, `managers_phones.0.phone`).

use std::fmt;

use serde_json::Value;

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    /// A numeric segment: an index into an array, or a key of an object (`"0"`).
    Index(usize),
}

/// A parsed payload path. Segments are separated by dots; `a[0]` is accepted as `a.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    segments: Vec<Segment>,
}

/// Why a path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path `{path}`: {reason}")]
pub struct PathError {
    path: String,
    reason: &'static str,
}

impl Path {
    /// Parses `a.b.0.c` (or `a.b[0].c`).
    ///
    /// # Errors
    /// An empty path or an empty segment (`a..b`, `.a`) is an error.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let error = |reason| PathError { path: text.to_owned(), reason };
        if text.trim().is_empty() {
            return Err(error("the path is empty"));
        }
        let normalised = text.replace('[', ".").replace(']', "");
        let segments = normalised
            .split('.')
            .map(|part| {
                if part.is_empty() {
                    Err(error("a segment is empty; write segments separated by single dots"))
                } else if let Ok(index) = part.parse::<usize>() {
                    Ok(Segment::Index(index))
                } else {
                    Ok(Segment::Key(part.to_owned()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { text: text.to_owned(), segments })
    }

    /// The value at this path, if every step exists.
    pub fn get<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.segments.iter().try_fold(root, |value, segment| match (segment, value) {
            (Segment::Key(key), Value::Object(map)) => map.get(key),
            (Segment::Index(index), Value::Array(items)) => items.get(*index),
            (Segment::Index(index), Value::Object(map)) => map.get(&index.to_string()),
            _ => None,
        })
    }

    /// Writes `value` at this path, creating objects on the way. Used for key aliases; a path
    /// through an array or a scalar is left alone (aliases name object keys).
    pub fn set(&self, root: &mut Value, value: Value) {
        let Some((last, parents)) = self.segments.split_last() else { return };
        let mut node = root;
        for segment in parents {
            let key = segment_key(segment);
            let Value::Object(map) = node else { return };
            node = map.entry(key).or_insert_with(|| Value::Object(Default::default()));
        }
        if let Value::Object(map) = node {
            map.insert(segment_key(last), value);
        }
    }

    /// The path as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn segment_key(segment: &Segment) -> String {
    match segment {
        Segment::Key(key) => key.clone(),
        Segment::Index(index) => index.to_string(),
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_nested_objects_and_arrays() {
        let payload = json!({"visitor": {"phone": "+7"}, "list": [{"phone": "1"}, {"phone": "2"}]});
        let get = |p: &str| Path::parse(p).unwrap().get(&payload).cloned();
        assert_eq!(get("visitor.phone"), Some(json!("+7")));
        assert_eq!(get("list.1.phone"), Some(json!("2")));
        assert_eq!(get("list[0].phone"), Some(json!("1")));
        assert_eq!(get("visitor.name"), None);
        assert_eq!(get("visitor.phone.deeper"), None);
    }

    #[test]
    fn rejects_empty_segments() {
        assert!(Path::parse("").is_err());
        assert!(Path::parse("a..b").is_err());
        assert!(Path::parse(".a").is_err());
    }

    #[test]
    fn set_creates_missing_objects() {
        let mut payload = json!({"a": 1});
        Path::parse("b.c").unwrap().set(&mut payload, json!("x"));
        assert_eq!(payload, json!({"a": 1, "b": {"c": "x"}}));
    }
}
