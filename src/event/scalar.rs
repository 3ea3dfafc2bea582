//! Reading the vendors' loosely typed values: forms send every number as text, JSON may not.

use std::borrow::Cow;

use serde_json::Value;

/// A scalar as text (`65` → "65", `true` → "true"); `None` for arrays, objects and null.
pub fn as_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// A number, or a string that holds one (forms send every number as text).
pub fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}
