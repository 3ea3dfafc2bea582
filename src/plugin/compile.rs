//! Checking a [`VendorSpec`] once and building the [`Vendor`] that serves requests.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use std::ops::Range;

use super::spec::VendorSpec;
use super::{EventDef, LegacyPath, Reply, ReplyBody, Rule, Sample, Vendor};
use crate::body::BodyFormat;
use crate::condition::{Condition, FieldRef, Scope};
use crate::diagnostics::{ConfigIssue, Source};
use crate::event::{Kind, Path, fields};

/// Compiles one plugin file, reporting every problem in it.
pub(super) fn compile(source: &Source) -> Result<Vendor, Vec<ConfigIssue>> {
    let spec: VendorSpec = source.parse()?;
    let mut issues = Vec::new();
    let mut issue = |span: Range<usize>, key: String, message: String| {
        issues.push(source.issue(Some(span), key, message));
    };

    let stem = source.path().file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
    let name = match &spec.name {
        Some(name) if name.get_ref() != &stem => {
            issue(
                name.span(),
                "name".into(),
                format!("the name `{}` must match the file name `{stem}.toml`", name.get_ref()),
            );
            stem
        }
        _ => stem,
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        issue(
            0..0,
            "name".into(),
            format!("plugin name `{name}` must use only a-z, 0-9, `_` and `-`; rename the file"),
        );
    }

    let mut methods = Vec::new();
    for method in spec.methods.get_ref() {
        match method.to_ascii_uppercase().as_str() {
            "POST" => methods.push(Method::POST),
            "GET" => methods.push(Method::GET),
            "PUT" => methods.push(Method::PUT),
            other => issue(
                spec.methods.span(),
                "methods".into(),
                format!("unsupported method `{other}`; expected POST, GET or PUT"),
            ),
        }
    }

    let event_spec = spec.event.get_ref();
    let event_field = event_spec.field.as_ref().map(|field| path(field, spec.event.span(), "event.field", &mut issue));
    if event_spec.field.is_none() && event_spec.query.is_none() && !event_spec.path && event_spec.default.is_none() {
        issue(
            spec.event.span(),
            "event".into(),
            "say where the event's name is: `field` (the body), `query` (a URL parameter), `path = true` (the URL's \
             last segment) or a `default`"
                .into(),
        );
    }
    if event_spec.query.as_deref().is_some_and(|q| q.is_empty() || q == "token") {
        issue(spec.event.span(), "event.query".into(), "name a query parameter other than `token`".into());
    }
    let dedup: Vec<Path> = spec
        .dedup
        .iter()
        .flat_map(|d| d.get_ref().iter().filter_map(|p| path(p, d.span(), "dedup", &mut issue)).collect::<Vec<_>>())
        .collect();

    let dedup_window = match &spec.dedup_window_secs {
        Some(secs) if *secs.get_ref() == 0 => {
            issue(secs.span(), "dedup_window_secs".into(), "must be greater than 0".into());
            None
        }
        Some(secs) => Some(std::time::Duration::from_secs(*secs.get_ref())),
        None => None,
    };

    let aliases = spec
        .aliases
        .iter()
        .filter_map(|(target, alternatives)| {
            let key = format!("aliases.{target}");
            let target = path(target, alternatives.span(), &key, &mut issue)?;
            let alternatives =
                alternatives.get_ref().iter().filter_map(|a| path(a, alternatives.span(), &key, &mut issue)).collect();
            Some((target, alternatives))
        })
        .collect();

    let mut events = HashMap::with_capacity(spec.events.len());
    for (value, def) in &spec.events {
        let key = format!("events.\"{value}\"");
        match Kind::parse(&def.get_ref().kind) {
            Ok(kind) => {
                let name = def.get_ref().name.clone().unwrap_or_else(|| value.clone());
                events.insert(value.trim().to_owned(), EventDef { name, kind });
            }
            Err(error) => issue(def.span(), format!("{key}.kind"), error.to_string()),
        }
    }

    let mut mapped_fields = Vec::with_capacity(spec.fields.len());
    for (field, sources) in &spec.fields {
        let key = format!("fields.\"{field}\"");
        let Some(canonical) = canonical_field(field) else {
            issue(sources.span(), key, unknown_field_message(field));
            continue;
        };
        let paths = sources.get_ref().iter().filter_map(|p| path(p, sources.span(), &key, &mut issue)).collect();
        mapped_fields.push((canonical, paths));
    }

    let name_of_vendor = name.clone();
    let unnamed = spec.sequence.as_ref().map(|seq| (None, seq));
    let named = spec.sequences.iter().map(|(name, seq)| (Some(name.as_str()), seq));
    let sequences: Vec<_> = unnamed
        .into_iter()
        .chain(named)
        .filter_map(|(name, seq)| {
            super::sequence::compile(&name_of_vendor, name, seq.get_ref(), seq.span(), &mut issue)
        })
        .collect();
    let seen_names: Vec<&str> = sequences.iter().flat_map(super::sequence::Sequence::seen_names).collect();

    let mut classify = Vec::with_capacity(spec.classify.len());
    for (index, rule) in spec.classify.iter().enumerate() {
        let key = format!("classify[{index}]");
        let when = match Condition::parse(&rule.get_ref().when, Scope::Plugin, &format!("{key}.when")) {
            Ok(when) => when,
            Err(error) => {
                issue(rule.span(), error.key, error.message);
                continue;
            }
        };
        for field in when.fields() {
            if let FieldRef::Seen(name) = field {
                if !seen_names.contains(&name.as_str()) {
                    let message = if spec.sequence.is_none() && spec.sequences.is_empty() {
                        format!("`seen.{name}` needs a `[sequence]` with `seen.{name}` in this plugin")
                    } else {
                        format!("`seen.{name}` is not one of `[sequence.seen]`: {}", seen_names.join(", "))
                    };
                    issue(rule.span(), format!("{key}.when.seen.{name}"), message);
                }
            }
        }
        let kind = rule.get_ref().kind.as_deref().and_then(|kind| {
            Kind::parse(kind).map_err(|e| issue(rule.span(), format!("{key}.kind"), e.to_string())).ok()
        });
        let mut set = Vec::new();
        for (field, value) in &rule.get_ref().set {
            let Some(canonical) = canonical_field(field) else {
                issue(rule.span(), format!("{key}.set.\"{field}\""), unknown_field_message(field));
                continue;
            };
            match toml_scalar(value) {
                Some(value) => set.push((canonical, value)),
                None => {
                    issue(rule.span(), format!("{key}.set.\"{field}\""), "expected a string, number or boolean".into())
                }
            }
        }
        if kind.is_none() && set.is_empty() && rule.get_ref().kind.is_none() {
            issue(rule.span(), key, "a rule needs `kind`, `set` or both; this one changes nothing".into());
        }
        classify.push(Rule { when, kind, set });
    }

    let reply = compile_reply(&spec, &mut issue);

    let mut legacy_paths = Vec::with_capacity(spec.legacy_path.len());
    for (index, legacy) in spec.legacy_path.iter().enumerate() {
        let path = &legacy.get_ref().path;
        if !path.starts_with('/') || path.starts_with("/hooks/") || path.starts_with("/-/") {
            issue(
                legacy.span(),
                format!("legacy_path[{index}].path"),
                format!("`{path}` must start with `/` and lie outside `/hooks/` and `/-/`"),
            );
            continue;
        }
        legacy_paths.push(LegacyPath {
            path: path.clone(),
            event: legacy.get_ref().event.clone(),
            echo: legacy.get_ref().echo,
        });
    }

    let samples: Vec<Sample> = spec
        .sample
        .iter()
        .map(|sample| {
            let sample_spec = sample.get_ref();
            let content_type = sample_spec.content_type.clone().unwrap_or_else(|| match spec.format {
                BodyFormat::Form => "application/x-www-form-urlencoded".to_owned(),
                _ => "application/json".to_owned(),
            });
            Sample {
                name: sample_spec.name.clone(),
                content_type,
                url_event: sample_spec.event.clone(),
                body: sample_spec.body.clone(),
            }
        })
        .collect();

    for (index, sample) in spec.sample.iter().enumerate() {
        if sample.get_ref().event.is_some() && !event_spec.path && event_spec.query.is_none() {
            issue(
                sample.span(),
                format!("sample[{index}].event"),
                "the plugin reads no event from the URL (`event.path` or `event.query`)".into(),
            );
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let vendor = Vendor {
        title: spec.title.clone().unwrap_or_else(|| name.clone()),
        name,
        format: spec.format,
        methods,
        event_source: super::EventSource {
            field: event_field.map(|field| field.expect("an invalid event path was reported as an issue above")),
            query: event_spec.query.clone(),
            path: event_spec.path,
            default: event_spec.default.clone(),
            required: event_spec.required,
        },
        dedup,
        dedup_window,
        reply,
        aliases,
        events,
        fields: mapped_fields,
        sequences,
        classify,
        legacy_paths,
        samples,
    };
    // A sample the plugin cannot read would only fail when someone presses the button.
    for (index, sample) in vendor.samples.iter().enumerate() {
        if let Err(error) = vendor.try_sample(sample) {
            let message = format!("the plugin cannot read it: {error}");
            issues.push(source.issue(Some(spec.sample[index].span()), format!("sample[{index}]"), message));
        }
    }
    if issues.is_empty() { Ok(vendor) } else { Err(issues) }
}

pub(super) type IssueSink<'a> = dyn FnMut(Range<usize>, String, String) + 'a;

pub(super) fn path(text: &str, span: Range<usize>, key: &str, issue: &mut IssueSink<'_>) -> Option<Path> {
    Path::parse(text).map_err(|e| issue(span, key.to_owned(), e.to_string())).ok()
}

fn compile_reply(spec: &VendorSpec, issue: &mut IssueSink<'_>) -> Reply {
    let Some(reply) = &spec.reply else {
        return Reply { status: StatusCode::OK, body: ReplyBody::Empty };
    };
    let status =
        StatusCode::from_u16(reply.get_ref().status).ok().filter(StatusCode::is_success).unwrap_or_else(|| {
            issue(reply.span(), "reply.status".into(), format!("`{}` is not a 2xx status", reply.get_ref().status));
            StatusCode::OK
        });
    let body = match (&reply.get_ref().json, &reply.get_ref().text) {
        (Some(_), Some(_)) => {
            issue(reply.span(), "reply".into(), "set `json` or `text`, not both".into());
            ReplyBody::Empty
        }
        (Some(json), None) => match serde_json::to_value(json) {
            Ok(value @ Value::Object(_)) => ReplyBody::Json(value),
            _ => {
                issue(reply.span(), "reply.json".into(), "expected a table, such as `{ result = \"ok\" }`".into());
                ReplyBody::Empty
            }
        },
        (None, Some(text)) => ReplyBody::Text(text.clone()),
        (None, None) => ReplyBody::Empty,
    };
    Reply { status, body }
}

fn canonical_field(name: &str) -> Option<&'static str> {
    fields::field_names().find(|known| *known == name)
}

fn unknown_field_message(name: &str) -> String {
    format!(
        "`{name}` is not a canonical field; expected one of {}",
        fields::field_names().collect::<Vec<_>>().join(", ")
    )
}

fn toml_scalar(value: &toml::Value) -> Option<Value> {
    match value {
        toml::Value::String(s) => Some(Value::String(s.clone())),
        toml::Value::Integer(i) => Some(Value::from(*i)),
        toml::Value::Float(f) => Some(Value::from(*f)),
        toml::Value::Boolean(b) => Some(Value::Bool(*b)),
        _ => None,
    }
}
