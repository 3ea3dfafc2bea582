//! Template helpers: `phone`, `datetime`, `duration`, `default`, `truncate`, `json`, `upper`,
//! `lower`, `join` (plus handlebars' own `eq`, `ne`, `gt`, `lt`, `and`, `or`, `not`, …).
//!
//! Every helper returns a value rather than writing text, so the engine escapes it the way the
//! output needs, and helpers nest: `{{default (phone contact.phone) "—"}}`. A missing argument
//! renders empty; a helper never fails a render because a vendor left a field out.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, ScopedJson};
use serde_json::Value;

use crate::event::{as_number, as_text};

/// Handlebars' own helpers, always available.
pub const BUILTIN_HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not",
    "len",
];

/// Settings the helpers take from `[templates]`.
#[derive(Debug, Clone, Copy)]
pub struct HelperSettings {
    /// Zone for `datetime` when the template names none.
    pub timezone: Tz,
    /// `ru` or `en`: words in `duration`.
    pub english: bool,
}

/// Arguments are borrowed from the context: `{{json this}}` must not copy the whole event first.
type HelperFn = fn(&[&Value], &BTreeMap<&str, &Value>, &HelperSettings) -> Value;

/// The helpers Switchboard adds, by name.
pub const HELPERS: &[(&str, HelperFn)] = &[
    ("phone", phone),
    ("datetime", datetime),
    ("duration", duration),
    ("default", default),
    ("truncate", truncate),
    ("json", json),
    ("upper", |args, _, _| text(args.first().copied()).to_uppercase().into()),
    ("lower", |args, _, _| text(args.first().copied()).to_lowercase().into()),
    ("join", join),
];

/// Registers every helper of [`HELPERS`] on a registry.
pub fn register(registry: &mut Handlebars<'static>, settings: HelperSettings) {
    for (name, function) in HELPERS {
        registry.register_helper(name, Box::new(ValueHelper { function: *function, settings }));
    }
}

struct ValueHelper {
    function: HelperFn,
    settings: HelperSettings,
}

impl HelperDef for ValueHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args: Vec<&Value> = helper.params().iter().map(|p| p.value()).collect();
        let hash: BTreeMap<&str, &Value> = helper.hash().iter().map(|(k, v)| (*k, v.value())).collect();
        Ok(ScopedJson::Derived((self.function)(&args, &hash, &self.settings)))
    }
}

fn text(value: Option<&Value>) -> String {
    value.and_then(as_text).map(|t| t.into_owned()).unwrap_or_default()
}

fn present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

/// `{{default value "fallback"}}`: the value when present and not empty, else the fallback.
fn default(args: &[&Value], _: &BTreeMap<&str, &Value>, _: &HelperSettings) -> Value {
    match args {
        [value, ..] if present(value) => (*value).clone(),
        [_, fallback, ..] => (*fallback).clone(),
        _ => Value::String(String::new()),
    }
}

/// `{{truncate text 200}}` (or `suffix="…"`): at most that many characters, the suffix included.
fn truncate(args: &[&Value], hash: &BTreeMap<&str, &Value>, _: &HelperSettings) -> Value {
    let text = text(args.first().copied());
    let limit = args.get(1).copied().and_then(as_number).map_or(100, |n| n.max(0.0) as usize);
    let suffix = hash.get("suffix").copied().and_then(as_text).map_or_else(|| "…".to_owned(), |s| s.into_owned());
    if text.chars().count() <= limit {
        return text.into();
    }
    let keep = limit.saturating_sub(suffix.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&suffix);
    out.into()
}

/// `{{json value}}`: the value as JSON text. In a JSON body use `{{{json value}}}` so the JSON
/// is not escaped again as a string.
fn json(args: &[&Value], hash: &BTreeMap<&str, &Value>, _: &HelperSettings) -> Value {
    let value = args.first().copied().unwrap_or(&Value::Null);
    let pretty = hash.get("pretty").copied().is_some_and(|v| v.as_bool() == Some(true));
    let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
    text.unwrap_or_default().into()
}

/// `{{join list ", "}}`: list items as text, joined.
fn join(args: &[&Value], _: &BTreeMap<&str, &Value>, _: &HelperSettings) -> Value {
    let separator = args.get(1).copied().and_then(as_text).map_or_else(|| ", ".to_owned(), |s| s.into_owned());
    match args.first().copied() {
        Some(Value::Array(items)) => {
            items.iter().filter_map(as_text).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(&separator).into()
        }
        other => text(other).into(),
    }
}

/// `{{phone number}}` → `+79998887766` (E.164); `{{phone number "national"}}` →
/// `8 (999) 888-77-66`; `"international"` → `+7 999 888-77-66`. A Russian number written
/// with a leading 8 or without a country code is read as +7. Text that is not a phone number
/// is returned as it came.
fn phone(args: &[&Value], hash: &BTreeMap<&str, &Value>, _: &HelperSettings) -> Value {
    let raw = text(args.first().copied());
    let style = args.get(1).copied().or_else(|| hash.get("format").copied()).and_then(as_text).map(|s| s.into_owned());
    match normalise_phone(&raw) {
        Some(e164) => format_phone(&e164, style.as_deref().unwrap_or("e164")).into(),
        None => raw.into(),
    }
}

/// Digits of a phone number in E.164, or `None` when the text is not one.
pub fn normalise_phone(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    let plus = trimmed.starts_with('+');
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let digits = match (plus, digits.len()) {
        (true, 8..=15) => digits,
        (false, 11) if digits.starts_with('8') => format!("7{}", &digits[1..]),
        (false, 11) if digits.starts_with('7') => digits,
        (false, 10) if digits.starts_with('9') => format!("7{digits}"),
        (false, 8..=15) => digits,
        _ => return None,
    };
    Some(format!("+{digits}"))
}

/// A phone number as people write it (`+7 916 123-45-67`), or `None` when the text is not one:
/// what the dashboard shows beside the value the vendor sent.
pub fn readable_phone(raw: &str) -> Option<String> {
    normalise_phone(raw).map(|e164| format_phone(&e164, "international"))
}

fn format_phone(e164: &str, style: &str) -> String {
    let digits = &e164[1..];
    match (style, digits.len(), digits.as_bytes().first()) {
        ("national", 11, Some(b'7')) => {
            format!("8 ({}) {}-{}-{}", &digits[1..4], &digits[4..7], &digits[7..9], &digits[9..])
        }
        ("international", 11, Some(b'7')) => {
            format!("+7 {} {}-{}-{}", &digits[1..4], &digits[4..7], &digits[7..9], &digits[9..])
        }
        ("national", 11, Some(b'1')) => format!("({}) {}-{}", &digits[1..4], &digits[4..7], &digits[7..]),
        ("international", 11, Some(b'1')) => format!("+1 {} {}-{}", &digits[1..4], &digits[4..7], &digits[7..]),
        _ => e164.to_owned(),
    }
}

/// `{{datetime value}}` (`format="%d.%m.%Y %H:%M"`, `tz="Europe/Moscow"`): reads Unix seconds
/// (or milliseconds), RFC 3339, and the vendors' `YYYY-MM-DD HH:MM:SS` (taken as UTC unless
/// `source_tz=` names its zone: Envybox sends local time). Unreadable input is returned as is.
fn datetime(args: &[&Value], hash: &BTreeMap<&str, &Value>, settings: &HelperSettings) -> Value {
    let Some(value) = args.first().copied().filter(|v| present(v)) else { return Value::String(String::new()) };
    let zone = |key: &str| hash.get(key).copied().and_then(as_text).and_then(|name| name.parse::<Tz>().ok());
    let tz = zone("tz").unwrap_or(settings.timezone);
    let format = args
        .get(1)
        .copied()
        .or_else(|| hash.get("format").copied())
        .and_then(as_text)
        .map_or_else(|| "%d.%m.%Y %H:%M".to_owned(), |s| s.into_owned());
    match parse_instant(value, zone("source_tz")) {
        Some(instant) => {
            use std::fmt::Write;
            let mut out = String::new();
            // An invalid format string makes chrono's Display fail; show the instant instead.
            match write!(out, "{}", instant.with_timezone(&tz).format(&format)) {
                Ok(()) => out.into(),
                Err(_) => instant.with_timezone(&tz).to_rfc3339().into(),
            }
        }
        None => value.clone(),
    }
}

/// Reads an instant from the shapes vendors send.
pub fn parse_instant(value: &Value, source_tz: Option<Tz>) -> Option<DateTime<Utc>> {
    if let Some(number) = as_number(value) {
        let number = number as i64;
        // Ten digits are seconds until the year 2286; thirteen are milliseconds.
        return if number.abs() >= 100_000_000_000 {
            DateTime::from_timestamp_millis(number)
        } else {
            DateTime::from_timestamp(number, 0)
        };
    }
    let text = as_text(value)?;
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    match source_tz {
        Some(tz) => tz.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc)),
        None => Some(Utc.from_utc_datetime(&naive)),
    }
}

/// `{{duration seconds}}` → `1 мин 05 с` (or `1m 05s` with the English set, or `lang="en"`).
fn duration(args: &[&Value], hash: &BTreeMap<&str, &Value>, settings: &HelperSettings) -> Value {
    let Some(total) = args.first().copied().and_then(as_number).filter(|n| *n >= 0.0) else {
        return Value::String(text(args.first().copied()));
    };
    let english = hash.get("lang").copied().and_then(as_text).map_or(settings.english, |lang| lang == "en");
    let total = total.round() as u64;
    let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60);
    let (h, m, s) = if english { ("h", "m", "s") } else { (" ч", " мин", " с") };
    let text = match (hours, minutes) {
        (0, 0) => format!("{seconds}{s}"),
        (0, _) => format!("{minutes}{m} {seconds:02}{s}"),
        _ => format!("{hours}{h} {minutes:02}{m} {seconds:02}{s}"),
    };
    text.into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings() -> HelperSettings {
        HelperSettings { timezone: chrono_tz::Europe::Moscow, english: false }
    }

    fn call(function: HelperFn, args: &[Value], hash: &[(&str, Value)]) -> Value {
        let args: Vec<&Value> = args.iter().collect();
        let hash: BTreeMap<&str, &Value> = hash.iter().map(|(k, v)| (*k, v)).collect();
        function(&args, &hash, &settings())
    }

    #[test]
    fn phone_formats() {
        let cases = [
            ("79998887766", "e164", "+79998887766"),
            ("89998887766", "e164", "+79998887766"),
            ("+7 (999) 888-77-66", "national", "8 (999) 888-77-66"),
            ("9998887766", "international", "+7 999 888-77-66"),
            ("+14084987855", "national", "(408) 498-7855"),
            ("+14084987855", "e164", "+14084987855"),
            ("+442071838750", "national", "+442071838750"),
            ("не указан", "e164", "не указан"),
            ("", "e164", ""),
        ];
        for (input, style, expected) in cases {
            assert_eq!(call(phone, &[json!(input), json!(style)], &[]), json!(expected), "{input} {style}");
        }
        assert_eq!(call(phone, &[json!(79998887766_u64)], &[]), json!("+79998887766"));
        assert_eq!(call(phone, &[Value::Null], &[]), json!(""));
    }

    #[test]
    fn datetime_reads_every_vendor_shape() {
        let cases = [
            (json!(1665396476), "10.10.2022 13:07"),
            (json!("1665396476"), "10.10.2022 13:07"),
            (json!(1665396476000_i64), "10.10.2022 13:07"),
            (json!("2022-10-10T10:07:56Z"), "10.10.2022 13:07"),
            (json!("2022-10-10 10:07:56"), "10.10.2022 13:07"),
        ];
        for (input, expected) in cases {
            assert_eq!(call(datetime, std::slice::from_ref(&input), &[]), json!(expected), "{input}");
        }
        assert_eq!(
            call(
                datetime,
                &[json!("2021-03-02 10:36:14")],
                &[("source_tz", json!("Europe/Moscow")), ("tz", json!("UTC"))]
            ),
            json!("02.03.2021 07:36")
        );
        assert_eq!(call(datetime, &[json!(0), json!("%Y")], &[]), json!("1970"));
        assert_eq!(call(datetime, &[json!("someday")], &[]), json!("someday"));
        assert_eq!(call(datetime, &[Value::Null], &[]), json!(""));
    }

    #[test]
    fn duration_in_both_languages() {
        assert_eq!(call(duration, &[json!(65)], &[]), json!("1 мин 05 с"));
        assert_eq!(call(duration, &[json!("65")], &[("lang", json!("en"))]), json!("1m 05s"));
        assert_eq!(call(duration, &[json!(45)], &[]), json!("45 с"));
        assert_eq!(call(duration, &[json!(3725)], &[("lang", json!("en"))]), json!("1h 02m 05s"));
        assert_eq!(call(duration, &[Value::Null], &[]), json!(""));
    }

    #[test]
    fn text_helpers() {
        assert_eq!(call(default, &[json!(""), json!("—")], &[]), json!("—"));
        assert_eq!(call(default, &[json!("x"), json!("—")], &[]), json!("x"));
        assert_eq!(call(truncate, &[json!("абвгдежз"), json!(5)], &[]), json!("абвг…"));
        assert_eq!(call(truncate, &[json!("short"), json!(10)], &[]), json!("short"));
        assert_eq!(call(join, &[json!(["a", 1, "", "b"]), json!(" / ")], &[]), json!("a / 1 / b"));
        assert_eq!(call(json, &[json!({"a": [1]})], &[]), json!("{\"a\":[1]}"));
    }
}
