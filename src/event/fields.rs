//! The canonical field names every vendor plugin maps its payload onto.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a canonical field's value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    /// Whole numbers: a string such as `"65"` from a form is stored as the number 65.
    Integer,
}

/// Every canonical field, in the order documentation lists them.
pub const CANONICAL_FIELDS: &[(&str, FieldType)] = &[
    ("contact.name", FieldType::Text),
    ("contact.phone", FieldType::Text),
    ("contact.email", FieldType::Text),
    ("message", FieldType::Text),
    ("call.id", FieldType::Text),
    ("call.duration_s", FieldType::Integer),
    ("call.record_url", FieldType::Text),
    ("call.outcome", FieldType::Text),
    ("agent.name", FieldType::Text),
    ("agent.phone", FieldType::Text),
    ("agent.email", FieldType::Text),
    ("page.url", FieldType::Text),
    ("page.title", FieldType::Text),
    ("site", FieldType::Text),
    ("geo.city", FieldType::Text),
    ("geo.region", FieldType::Text),
    ("geo.country", FieldType::Text),
    ("utm.source", FieldType::Text),
    ("utm.medium", FieldType::Text),
    ("utm.campaign", FieldType::Text),
    ("utm.content", FieldType::Text),
    ("utm.term", FieldType::Text),
    ("chat.id", FieldType::Text),
    ("client.id", FieldType::Text),
    ("visitor.id", FieldType::Text),
];

/// The type of a canonical field, or `None` for a name that is not canonical.
pub fn field_type(name: &str) -> Option<FieldType> {
    CANONICAL_FIELDS.iter().find(|(known, _)| *known == name).map(|(_, ty)| *ty)
}

/// The canonical field names, for "expected one of" messages.
pub fn field_names() -> impl Iterator<Item = &'static str> {
    CANONICAL_FIELDS.iter().map(|(name, _)| *name)
}

/// An event's canonical fields: name → value. Absent fields are simply missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fields(BTreeMap<String, Value>);

impl Fields {
    /// The value of a canonical field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// Sets a field, converting it to the field's canonical type. A value that cannot take that
    /// type (`"abc"` for a duration) is kept as it came rather than lost.
    pub fn set(&mut self, name: &str, value: Value) {
        let value = match (field_type(name), &value) {
            (Some(FieldType::Integer), Value::String(text)) => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| text.trim().parse::<f64>().map(|f| Value::from(f.round() as i64)))
                .unwrap_or(value),
            (Some(FieldType::Text), Value::Number(number)) => Value::String(number.to_string()),
            _ => value,
        };
        self.0.insert(name.to_owned(), value);
    }

    /// Iterates over the fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// The fields as a nested object (`contact.phone` → `{"contact": {"phone": …}}`), the shape
    /// templates and conditions read.
    pub fn to_nested(&self) -> serde_json::Map<String, Value> {
        let mut root = serde_json::Map::new();
        for (name, value) in &self.0 {
            let mut node = &mut root;
            let mut parts = name.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    node.insert(part.to_owned(), value.clone());
                } else {
                    let child = node.entry(part.to_owned()).or_insert_with(|| Value::Object(Default::default()));
                    if !child.is_object() {
                        *child = Value::Object(Default::default());
                    }
                    let Value::Object(map) = child else { unreachable!("replaced by an object above") };
                    node = map;
                }
            }
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn integer_fields_accept_numeric_strings() {
        let mut fields = Fields::default();
        fields.set("call.duration_s", json!("65"));
        fields.set("contact.phone", json!(79998887766_u64));
        assert_eq!(fields.get("call.duration_s"), Some(&json!(65)));
        assert_eq!(fields.get("contact.phone"), Some(&json!("79998887766")));
    }

    #[test]
    fn unparseable_numbers_are_kept_as_sent() {
        let mut fields = Fields::default();
        fields.set("call.duration_s", json!("about a minute"));
        assert_eq!(fields.get("call.duration_s"), Some(&json!("about a minute")));
    }

    #[test]
    fn nests_dotted_names() {
        let mut fields = Fields::default();
        fields.set("contact.phone", json!("+7"));
        fields.set("contact.name", json!("Иван"));
        fields.set("message", json!("hi"));
        assert_eq!(
            Value::Object(fields.to_nested()),
            json!({"contact": {"phone": "+7", "name": "Иван"}, "message": "hi"})
        );
    }
}
