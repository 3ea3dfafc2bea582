//! The condition language shared by vendor plugins (`[[classify]] when = {…}`) and routes
//! (`when = {…}`): one parser, one evaluator, so a rule means the same thing wherever it is written.
//!
//! ```toml
//! when = { event = "call_info", call_state = { not = "Состоялся разговор" } }
//! when = { any = [ { "call.duration_s" = 0 }, { "call.outcome" = "missed" } ] }
//! when = { "contact.phone" = { regex = '^\+?7' }, "call.duration_s" = { ">=" = 30 } }
//! ```
//! A table's entries must all hold. A scalar means "equals", a list "one of", and a table of
//! operators tests one field with each of them. Numbers that arrive as strings compare as numbers.

use std::borrow::Cow;
use std::fmt;

use regex::Regex;
use serde_json::Value;

use crate::event::{Path, as_number, as_text, fields};

mod glob;
pub use glob::Glob;

/// What a condition key refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef {
    Vendor,
    /// The vendor's own event name.
    Event,
    Kind,
    /// A canonical field (`contact.phone`).
    Field(&'static str),
    /// A path into the payload (`payload.visitor.phone`, or a bare path inside a plugin).
    Payload(Path),
    /// What the earlier events of the event's sequence showed (`seen.agent_answered`): `true` or
    /// `false` once the sequence's start is stored, absent while it is not. Plugins only.
    Seen(String),
}

/// How a bare name (neither `vendor`/`event`/`kind`, a canonical field nor `payload.…`) resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Inside a vendor plugin bare names are payload paths: the plugin speaks the vendor's language.
    Plugin,
    /// Inside a route a bare name must be canonical, so routes stay vendor-neutral.
    Route,
}

/// Why a key names no field a condition can test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error(transparent)]
    Path(#[from] crate::event::path::PathError),
    #[error("`{0}` is not a name for `seen`; use a-z, 0-9 and `_`")]
    SeenName(String),
    #[error("unknown field `{0}`; expected vendor, event, kind, a canonical field ({names}) or payload.<path>", names = fields::field_names().collect::<Vec<_>>().join(", "))]
    Unknown(String),
}

impl FieldRef {
    /// Resolves a condition key.
    ///
    /// # Errors
    /// An invalid path, or (in [`Scope::Route`]) a name that is not canonical.
    pub fn parse(key: &str, scope: Scope) -> Result<Self, FieldError> {
        match key {
            "vendor" => return Ok(Self::Vendor),
            "event" => return Ok(Self::Event),
            "kind" => return Ok(Self::Kind),
            _ => {}
        }
        if let Some(name) = fields::field_names().find(|name| *name == key) {
            return Ok(Self::Field(name));
        }
        if let Some(rest) = key.strip_prefix("payload.") {
            return Ok(Path::parse(rest).map(Self::Payload)?);
        }
        if let (Scope::Plugin, Some(name)) = (scope, key.strip_prefix("seen.")) {
            return check_seen_name(name).map(|()| Self::Seen(name.to_owned()));
        }
        match scope {
            Scope::Plugin => Ok(Path::parse(key).map(Self::Payload)?),
            Scope::Route => Err(FieldError::Unknown(key.to_owned())),
        }
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vendor => f.write_str("vendor"),
            Self::Event => f.write_str("event"),
            Self::Kind => f.write_str("kind"),
            Self::Field(name) => f.write_str(name),
            Self::Payload(path) => write!(f, "payload.{path}"),
            Self::Seen(name) => write!(f, "seen.{name}"),
        }
    }
}

/// Whether `name` can name a `seen` flag of a plugin's `[sequence]`.
///
/// # Errors
/// What is wrong with it, for the configuration error.
pub fn check_seen_name(name: &str) -> Result<(), FieldError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        Ok(())
    } else {
        Err(FieldError::SeenName(name.to_owned()))
    }
}

/// Why a condition does not hold, in a sentence naming the first test that fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// Anything a condition can be evaluated against: an event, or one being built by a plugin.
pub trait Facts {
    /// The value a field refers to, if present.
    fn lookup(&self, field: &FieldRef) -> Option<Cow<'_, Value>>;
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test { field: FieldRef, test: Test },
}

/// A test on one field's value.
#[derive(Debug, Clone)]
pub enum Test {
    Eq(Value),
    Ne(Value),
    OneOf(Vec<Value>),
    NoneOf(Vec<Value>),
    Regex(Regex),
    Glob(Glob),
    /// `exists = true`: present, not null and not an empty string. `exists = false`: the opposite.
    Exists(bool),
    Compare(Comparison, f64),
}

/// A numeric comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition that could not be compiled: the key path inside the `when` table and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConditionError {
    pub key: String,
    pub message: String,
}

const OPERATORS: &str = "eq, ne (or not), in, not_in, regex, glob, exists, lt (<), lte (<=), gt (>), gte (>=)";

impl Condition {
    /// A condition that always holds.
    pub fn always() -> Self {
        Self::All(Vec::new())
    }

    /// Compiles a `when` table. `key` names where it stands, for error messages.
    ///
    /// # Errors
    /// The first problem found, with the key path that holds it.
    pub fn parse(value: &toml::Value, scope: Scope, key: &str) -> Result<Self, ConditionError> {
        let error = |k: &str, message: String| ConditionError { key: k.to_owned(), message };
        let toml::Value::Table(table) = value else {
            return Err(error(key, format!("expected a table of conditions, found {}", value.type_str())));
        };
        let mut all = Vec::with_capacity(table.len());
        for (name, value) in table {
            let here = format!("{key}.{name}");
            let condition = match name.as_str() {
                "all" | "any" => {
                    let toml::Value::Array(items) = value else {
                        return Err(error(&here, format!("expected a list of tables, found {}", value.type_str())));
                    };
                    let parts = items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| Self::parse(item, scope, &format!("{here}[{i}]")))
                        .collect::<Result<Vec<_>, _>>()?;
                    if name == "all" { Self::All(parts) } else { Self::Any(parts) }
                }
                "not" => Self::Not(Box::new(Self::parse(value, scope, &here)?)),
                field => {
                    let field = FieldRef::parse(field, scope).map_err(|m| error(&here, m.to_string()))?;
                    parse_tests(field, value, &here)?
                }
            };
            all.push(condition);
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Self::All(all) })
    }

    /// Whether the condition holds.
    pub fn matches(&self, facts: &dyn Facts) -> bool {
        match self {
            Self::All(parts) => parts.iter().all(|c| c.matches(facts)),
            Self::Any(parts) => parts.iter().any(|c| c.matches(facts)),
            Self::Not(inner) => !inner.matches(facts),
            Self::Test { field, test } => test.holds(facts.lookup(field).as_deref()),
        }
    }

    /// Like [`Condition::matches`], but says which part failed: for `switchboard test` and the
    /// dashboard, where "why didn't this route match?" is the question.
    ///
    /// # Errors
    /// The first test that does not hold.
    pub fn explain(&self, facts: &dyn Facts) -> Result<(), Mismatch> {
        match self {
            Self::All(parts) => parts.iter().try_for_each(|c| c.explain(facts)),
            Self::Any(parts) if parts.is_empty() => Err(Mismatch("`any` has no alternatives".to_owned())),
            Self::Any(parts) => {
                let mut reasons = Vec::new();
                for part in parts {
                    match part.explain(facts) {
                        Ok(()) => return Ok(()),
                        Err(reason) => reasons.push(reason.0),
                    }
                }
                Err(Mismatch(format!("none of `any` holds ({})", reasons.join("; "))))
            }
            Self::Not(inner) => match inner.explain(facts) {
                Ok(()) => Err(Mismatch(format!("`not` failed: {}", inner.describe()))),
                Err(_) => Ok(()),
            },
            Self::Test { field, test } => {
                let found = facts.lookup(field);
                if test.holds(found.as_deref()) {
                    Ok(())
                } else {
                    let found = match found.as_deref() {
                        None | Some(Value::Null) => "absent".to_owned(),
                        Some(value) => format!("`{}`", display_value(value)),
                    };
                    Err(Mismatch(format!("{field} is {found}, wanted {test}")))
                }
            }
        }
    }

    /// Every field the condition tests, in order (a field tested twice is listed twice).
    pub fn fields(&self) -> Vec<&FieldRef> {
        match self {
            Self::All(parts) | Self::Any(parts) => parts.iter().flat_map(Self::fields).collect(),
            Self::Not(inner) => inner.fields(),
            Self::Test { field, .. } => vec![field],
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::All(parts) => parts.iter().map(Self::describe).collect::<Vec<_>>().join(" and "),
            Self::Any(parts) => parts.iter().map(Self::describe).collect::<Vec<_>>().join(" or "),
            Self::Not(inner) => format!("not ({})", inner.describe()),
            Self::Test { field, test } => format!("{field} {test}"),
        }
    }
}

fn parse_tests(field: FieldRef, value: &toml::Value, key: &str) -> Result<Condition, ConditionError> {
    let error = |k: &str, message: String| ConditionError { key: k.to_owned(), message };
    let test = match value {
        toml::Value::Array(items) => Test::OneOf(scalars(items, key)?),
        toml::Value::Table(ops) => {
            let mut tests = Vec::with_capacity(ops.len());
            for (op, operand) in ops {
                let here = format!("{key}.{op}");
                let number = || {
                    operand
                        .as_float()
                        .or_else(|| operand.as_integer().map(|i| i as f64))
                        .ok_or_else(|| error(&here, format!("expected a number, found {}", operand.type_str())))
                };
                let string = || {
                    operand
                        .as_str()
                        .ok_or_else(|| error(&here, format!("expected a string, found {}", operand.type_str())))
                };
                let test = match op.as_str() {
                    "eq" => Test::Eq(scalar(operand, &here)?),
                    "ne" | "not" => Test::Ne(scalar(operand, &here)?),
                    "in" | "one_of" => match operand {
                        toml::Value::Array(items) => Test::OneOf(scalars(items, &here)?),
                        _ => return Err(error(&here, "expected a list of values".to_owned())),
                    },
                    "not_in" | "none_of" => match operand {
                        toml::Value::Array(items) => Test::NoneOf(scalars(items, &here)?),
                        _ => return Err(error(&here, "expected a list of values".to_owned())),
                    },
                    "regex" | "matches" => {
                        Test::Regex(Regex::new(string()?).map_err(|e| error(&here, format!("invalid regex: {e}")))?)
                    }
                    "glob" => Test::Glob(Glob::new(string()?)),
                    "exists" => Test::Exists(
                        operand.as_bool().ok_or_else(|| error(&here, "expected true or false".to_owned()))?,
                    ),
                    "lt" | "<" => Test::Compare(Comparison::Lt, number()?),
                    "lte" | "<=" => Test::Compare(Comparison::Le, number()?),
                    "gt" | ">" => Test::Compare(Comparison::Gt, number()?),
                    "gte" | ">=" => Test::Compare(Comparison::Ge, number()?),
                    other => {
                        return Err(error(&here, format!("unknown operator `{other}`; expected one of {OPERATORS}")));
                    }
                };
                tests.push(Condition::Test { field: field.clone(), test });
            }
            return Ok(if tests.len() == 1 { tests.remove(0) } else { Condition::All(tests) });
        }
        other => Test::Eq(scalar(other, key)?),
    };
    Ok(Condition::Test { field, test })
}

fn scalar(value: &toml::Value, key: &str) -> Result<Value, ConditionError> {
    match value {
        toml::Value::String(s) => Ok(Value::String(s.clone())),
        toml::Value::Integer(i) => Ok(Value::from(*i)),
        toml::Value::Float(f) => Ok(Value::from(*f)),
        toml::Value::Boolean(b) => Ok(Value::Bool(*b)),
        other => Err(ConditionError {
            key: key.to_owned(),
            message: format!("expected a string, number or boolean, found {}", other.type_str()),
        }),
    }
}

fn scalars(items: &[toml::Value], key: &str) -> Result<Vec<Value>, ConditionError> {
    items.iter().enumerate().map(|(i, item)| scalar(item, &format!("{key}[{i}]"))).collect()
}

impl Test {
    /// Whether the test holds for a field's value (`None` when the field is absent).
    pub fn holds(&self, found: Option<&Value>) -> bool {
        let present = found.filter(|v| !v.is_null());
        match self {
            Self::Eq(want) => present.is_some_and(|v| loose_eq(v, want)),
            Self::Ne(want) => !present.is_some_and(|v| loose_eq(v, want)),
            Self::OneOf(wants) => present.is_some_and(|v| wants.iter().any(|w| loose_eq(v, w))),
            Self::NoneOf(wants) => !present.is_some_and(|v| wants.iter().any(|w| loose_eq(v, w))),
            Self::Regex(regex) => present.and_then(as_text).is_some_and(|t| regex.is_match(&t)),
            Self::Glob(glob) => present.and_then(as_text).is_some_and(|t| glob.matches(&t)),
            Self::Exists(want) => {
                let exists = present.is_some_and(|v| !matches!(v, Value::String(s) if s.is_empty()));
                exists == *want
            }
            Self::Compare(op, limit) => present.and_then(as_number).is_some_and(|n| match op {
                Comparison::Lt => n < *limit,
                Comparison::Le => n <= *limit,
                Comparison::Gt => n > *limit,
                Comparison::Ge => n >= *limit,
            }),
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |values: &[Value]| values.iter().map(display_value).collect::<Vec<_>>().join(", ");
        match self {
            Self::Eq(v) => write!(f, "`{}`", display_value(v)),
            Self::Ne(v) => write!(f, "not `{}`", display_value(v)),
            Self::OneOf(vs) => write!(f, "one of [{}]", list(vs)),
            Self::NoneOf(vs) => write!(f, "none of [{}]", list(vs)),
            Self::Regex(r) => write!(f, "a match for /{r}/"),
            Self::Glob(g) => write!(f, "a match for `{}`", g.as_str()),
            Self::Exists(true) => f.write_str("present"),
            Self::Exists(false) => f.write_str("absent"),
            Self::Compare(op, n) => {
                let op = match op {
                    Comparison::Lt => "<",
                    Comparison::Le => "<=",
                    Comparison::Gt => ">",
                    Comparison::Ge => ">=",
                };
                write!(f, "{op} {n}")
            }
        }
    }
}

fn display_value(value: &Value) -> String {
    as_text(value).map_or_else(|| value.to_string(), Cow::into_owned)
}

/// Equality that forgives the vendors' loose typing: `"2198"` equals `2198`, and a list equals a
/// value when any element does (`tags = "vip"` holds for `["new", "vip"]`).
fn loose_eq(found: &Value, want: &Value) -> bool {
    if let Value::Array(items) = found {
        return items.iter().any(|item| loose_eq(item, want));
    }
    if let (Some(a), Some(b)) = (as_number(found), as_number(want)) {
        return a == b;
    }
    match (as_text(found), as_text(want)) {
        (Some(a), Some(b)) => a == b,
        _ => found == want,
    }
}

#[cfg(test)]
mod tests;
