//! Validating `[templates]`, `[outputs.*]` and `[[route]]`, and building what they describe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::{RawRoute, RawSchedule, RawTemplates};
use super::{ConfigIssue, Env, ExpandError, Source, expand};
use crate::condition::{Condition, Glob, Scope};
use crate::event::Kind;
use crate::outputs::{self, OutputEntry, OutputSettings};
use crate::plugin::VendorRegistry;
use crate::render::{HelperSettings, TemplateSet, TemplateSource};
use crate::router::{Route, Routes, Schedule, Target};

/// Default for `templates.language`.
pub const DEFAULT_LANGUAGE: &str = "ru";
/// Languages of the shipped template sets.
pub const LANGUAGES: &[&str] = &["ru", "en"];

pub(super) fn templates(
    source: &Source,
    env: &Env<'_>,
    raw: &RawTemplates,
    base: &Path,
    issues: &mut Vec<ConfigIssue>,
) -> Option<(TemplateSet, HelperSettings, Option<PathBuf>)> {
    let language = raw.language.as_ref().map_or(DEFAULT_LANGUAGE.to_owned(), |l| l.get_ref().clone());
    if !LANGUAGES.contains(&language.as_str()) {
        issues.push(source.issue(
            raw.language.as_ref().map(Spanned::span),
            "templates.language",
            format!("unknown language `{language}`; expected one of {}", LANGUAGES.join(", ")),
        ));
    }
    let timezone = match &raw.timezone {
        None => chrono_tz::UTC,
        Some(tz) => tz.get_ref().parse().unwrap_or_else(|_| {
            issues.push(source.issue(
                Some(tz.span()),
                "templates.timezone",
                format!("unknown time zone `{}`; expected a name such as Europe/Moscow", tz.get_ref()),
            ));
            chrono_tz::UTC
        }),
    };
    let dir = match &raw.dir {
        Some(dir) => match expand(dir.get_ref(), env) {
            Ok(text) => {
                let path = base.join(text);
                if path.is_dir() {
                    Some(path)
                } else if source.is_embedded() {
                    // The embedded default in an empty folder: the built-in templates serve.
                    None
                } else {
                    let message = format!("`{}` is not a folder", path.display());
                    issues.push(source.issue(Some(dir.span()), "templates.dir", message));
                    None
                }
            }
            Err(message) => {
                issues.push(source.issue(Some(dir.span()), "templates.dir", message));
                None
            }
        },
        None => Some(base.join("templates")).filter(|p| p.is_dir()),
    };
    let helpers = HelperSettings { timezone, english: language == "en" };
    match TemplateSet::load(&TemplateSource { dir: dir.clone(), language, helpers }) {
        Ok(set) => Some((set, helpers, dir)),
        Err(mut found) => {
            issues.append(&mut found);
            None
        }
    }
}

/// Helper settings when the templates could not be loaded (the load already reported why).
pub(super) fn default_helpers() -> HelperSettings {
    HelperSettings { timezone: chrono_tz::UTC, english: false }
}

/// An `[outputs.<name>]` that passed validation; its clients are made by [`ValidatedOutput::build`].
#[derive(Debug)]
pub struct ValidatedOutput {
    pub kind: String,
    /// `None` when it is switched off (`enabled = false`): it is neither checked nor built.
    pub settings: Option<Box<dyn OutputSettings>>,
    pub max_in_flight: usize,
    /// Where its table is, for an issue found when it is built.
    at: ConfigIssue,
}

impl ValidatedOutput {
    /// The output with its clients.
    ///
    /// # Errors
    /// A client the platform cannot make, placed at the output's table.
    pub fn build(self) -> Result<OutputEntry, Box<ConfigIssue>> {
        let output = self
            .settings
            .map(|settings| {
                settings.build().map_err(|error| {
                    let key = error.key.map_or_else(|| self.at.key.clone(), |key| format!("{}.{key}", self.at.key));
                    Box::new(ConfigIssue { key, message: error.message, ..self.at.clone() })
                })
            })
            .transpose()?;
        Ok(OutputEntry { kind: self.kind, output, max_in_flight: self.max_in_flight })
    }
}

pub(super) fn outputs(
    source: &Source,
    env: &Env<'_>,
    raw: &BTreeMap<String, Spanned<toml::Table>>,
    base: &Path,
    helpers: HelperSettings,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, ValidatedOutput> {
    let mut built = BTreeMap::new();
    for (name, table) in raw {
        let key = format!("outputs.{name}");
        let span = Some(table.span());
        let mut table = table.get_ref().clone();
        let kind = match table.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            Some(_) | None => {
                issues.push(source.issue(
                    span.clone(),
                    format!("{key}.type"),
                    format!("every output needs a `type`; expected one of: {}", outputs::KNOWN_TYPES.join(", ")),
                ));
                continue;
            }
        };
        let enabled = match table.remove("enabled") {
            None => true,
            Some(value) => match switch(&value, env) {
                Ok(enabled) => enabled,
                Err(message) => {
                    issues.push(source.issue(span.clone(), format!("{key}.enabled"), message));
                    continue;
                }
            },
        };
        let max_in_flight = match table.remove("max_in_flight") {
            None => outputs::DEFAULT_MAX_IN_FLIGHT,
            Some(toml::Value::Integer(n)) if n > 0 => usize::try_from(n).unwrap_or(outputs::DEFAULT_MAX_IN_FLIGHT),
            Some(other) => {
                issues.push(source.issue(
                    span.clone(),
                    format!("{key}.max_in_flight"),
                    format!("expected a whole number above 0, found {other}"),
                ));
                continue;
            }
        };
        if !outputs::KNOWN_TYPES.contains(&kind.as_str()) {
            issues.push(source.issue(
                span.clone(),
                format!("{key}.type"),
                format!("unknown output type `{kind}`; expected one of: {}", outputs::KNOWN_TYPES.join(", ")),
            ));
            continue;
        }
        let at = source.issue(span.clone(), key.clone(), "");
        if !enabled {
            // A switched-off output is not checked: its token may well be unset.
            built.insert(name.clone(), ValidatedOutput { kind: kind.clone(), settings: None, max_in_flight, at });
            continue;
        }
        let table = match expand_table(table, env) {
            Ok(table) => table,
            Err(message) => {
                issues.push(source.issue(span.clone(), key, message));
                continue;
            }
        };
        let cx = outputs::ValidationContext { base, helpers, warnings: Default::default() };
        let settings = outputs::validate(name, &kind, table, &cx);
        warnings.extend(cx.warnings.take().into_iter().map(|warning| format!("{key}: {warning}")));
        match settings {
            Ok(settings) => {
                built.insert(name.clone(), ValidatedOutput { kind, settings: Some(settings), max_in_flight, at });
            }
            Err(error) => {
                let key = error.key.map_or(key.clone(), |field| format!("{key}.{field}"));
                issues.push(source.issue(span.clone(), key, error.message));
            }
        }
    }
    built
}

/// Expands `${VAR}` in every string of an output's table.
fn expand_table(table: toml::Table, env: &Env<'_>) -> Result<toml::Table, ExpandError> {
    fn walk(value: toml::Value, env: &Env<'_>) -> Result<toml::Value, ExpandError> {
        Ok(match value {
            toml::Value::String(text) => toml::Value::String(expand(&text, env)?),
            toml::Value::Array(items) => {
                toml::Value::Array(items.into_iter().map(|v| walk(v, env)).collect::<Result<_, _>>()?)
            }
            toml::Value::Table(table) => toml::Value::Table(
                table.into_iter().map(|(k, v)| Ok((k, walk(v, env)?))).collect::<Result<_, ExpandError>>()?,
            ),
            other => other,
        })
    }
    table.into_iter().map(|(k, v)| Ok((k, walk(v, env)?))).collect()
}

/// Why a value is not a setting of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ValueError {
    #[error(transparent)]
    Expand(#[from] ExpandError),
    #[error("expected true or false (or a variable that expands to one); got `{0}`")]
    NotASwitch(String),
    #[error("expected {expected}, found {found}")]
    Type { expected: &'static str, found: &'static str },
}

/// Reads an on/off setting: a boolean, or a string (after `${VAR}` expansion) such as
/// `"${TELEGRAM_BOT_TOKEN:+true}"`, where empty means off.
pub(super) fn switch(value: &toml::Value, env: &Env<'_>) -> Result<bool, ValueError> {
    match value {
        toml::Value::Boolean(b) => Ok(*b),
        toml::Value::String(text) => match expand(text, env)?.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" | "off" => Ok(false),
            "true" | "1" | "yes" | "on" => Ok(true),
            other => Err(ValueError::NotASwitch(other.to_owned())),
        },
        other => Err(ValueError::Type { expected: "true or false", found: other.type_str() }),
    }
}

pub(super) fn routes(
    source: &Source,
    env: &Env<'_>,
    raw: &[Spanned<RawRoute>],
    vendors: &VendorRegistry,
    (outputs, broken): (&BTreeMap<String, ValidatedOutput>, &[&str]),
    templates: Option<&TemplateSet>,
    issues: &mut Vec<ConfigIssue>,
) -> Routes {
    let mut compiled = Vec::with_capacity(raw.len());
    let mut names: Vec<&str> = Vec::new();
    for (index, spanned) in raw.iter().enumerate() {
        let route = spanned.get_ref();
        let key = format!("route[{index}]");
        let mut issue = |what: &str, message: String| {
            let key = if what.is_empty() { key.clone() } else { format!("{key}.{what}") };
            issues.push(source.issue(Some(spanned.span()), key, format!("(route `{}`) {message}", route.name)));
        };
        if names.contains(&route.name.as_str()) {
            issue("name", format!("another route is already called `{}`; names must be unique", route.name));
        }
        names.push(&route.name);

        let enabled = route.enabled.as_ref().map_or(Ok(true), |v| switch(v, env)).unwrap_or_else(|m| {
            issue("enabled", m.to_string());
            true
        });
        let vendor = globs(route.vendor.as_ref()).unwrap_or_else(|m| {
            issue("vendor", m.to_string());
            Vec::new()
        });
        for glob in vendor.iter().filter(|g| g.is_literal()) {
            if vendors.get(glob.as_str()).is_none() {
                let known: Vec<&str> = vendors.iter().map(|v| v.name()).collect();
                issue(
                    "vendor",
                    format!("no plugin is called `{}`; loaded plugins: {}", glob.as_str(), known.join(", ")),
                );
            }
        }
        let event = globs(route.event.as_ref()).unwrap_or_else(|m| {
            issue("event", m.to_string());
            Vec::new()
        });
        let kind = globs(route.kind.as_ref()).unwrap_or_else(|m| {
            issue("kind", m.to_string());
            Vec::new()
        });
        for glob in kind.iter().filter(|g| g.is_literal()) {
            if let Err(error) = Kind::parse(glob.as_str()) {
                issue("kind", error.to_string());
            }
        }
        let when = match route.when.as_ref().map(|w| Condition::parse(w, Scope::Route, &format!("{key}.when"))) {
            None => None,
            Some(Ok(condition)) => Some(condition),
            Some(Err(error)) => {
                issues.push(source.issue(
                    Some(spanned.span()),
                    error.key,
                    format!("(route `{}`) {}", route.name, error.message),
                ));
                None
            }
        };
        let mut issue = |what: &str, message: String| {
            issues.push(source.issue(
                Some(spanned.span()),
                format!("{key}.{what}"),
                format!("(route `{}`) {message}", route.name),
            ));
        };
        // `schedule` decides whether the route takes an event; `silent` whether its messages
        // make a sound. One syntax for both.
        let mut schedule_of = |what: &str, raw: Option<&RawSchedule>| {
            let raw = raw?;
            let timezone = raw.timezone.as_deref().unwrap_or("UTC");
            Schedule::new(timezone, &raw.days, &raw.hours, raw.outside).map_err(|m| issue(what, m.to_string())).ok()
        };
        let schedule = schedule_of("schedule", route.schedule.as_ref());
        let silent = schedule_of("silent", route.silent.as_ref());
        if route.ttl_secs == Some(0) {
            issue("ttl_secs", "must be greater than 0; leave it out for no limit".to_owned());
        }
        if route.to.is_empty() {
            issue("to", "a route needs at least one output in `to`".to_owned());
        }
        for output in route.templates.keys() {
            if !route.to.contains(output) {
                issue("templates", format!("`{output}` is not one of this route's outputs ({})", route.to.join(", ")));
            }
        }
        for output in route.topics.keys() {
            if !route.to.contains(output) {
                issue("topics", format!("`{output}` is not one of this route's outputs ({})", route.to.join(", ")));
            }
        }
        for output in route.cards.keys() {
            if !route.to.contains(output) {
                issue("cards", format!("`{output}` is not one of this route's outputs ({})", route.to.join(", ")));
            }
        }
        let mut targets = Vec::with_capacity(route.to.len());
        for output in &route.to {
            let Some(entry) = outputs.get(output) else {
                if !broken.contains(&output.as_str()) {
                    let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
                    issue("to", format!("no output is called `{output}`; configured outputs: {}", known.join(", ")));
                }
                continue;
            };
            let Some(template) = route.templates.get(output).or(route.template.as_ref()) else {
                issue("template", format!("no template for output `{output}`; set `template` or `templates.{output}`"));
                continue;
            };
            if let Some(templates) = templates {
                if !templates.contains(template) {
                    issue(
                        "template",
                        format!(
                            "no template is called `{template}`; templates: {}",
                            templates.names().collect::<Vec<_>>().join(", ")
                        ),
                    );
                } else if let Some(settings) = &entry.settings {
                    if let Some(part) = outputs::missing_part(templates.parts(template), settings.plan()) {
                        issue(
                            "template",
                            format!(
                                "template `{template}` has no `{part}` part, which the {} output `{output}` needs",
                                entry.kind
                            ),
                        );
                    }
                }
            }
            let card = route.cards.get(output).copied().or(route.card).unwrap_or_default();
            targets.push(Target {
                output: output.clone(),
                template: template.clone(),
                card,
                buttons: route.buttons.clone(),
                topic: route.topics.get(output).copied().or(route.topic),
            });
        }
        compiled.push(Route {
            name: route.name.clone(),
            enabled,
            vendor,
            event,
            kind,
            when,
            schedule,
            targets,
            continue_matching: route.continue_matching,
            ttl: route.ttl_secs.map(std::time::Duration::from_secs),
            escalations: super::escalations::escalations(route, (outputs, broken), templates, &mut issue),
            silent,
        });
    }
    Routes::new(compiled)
}

/// A route's `vendor`, `event` or `kind`: a value or a list of values, each a glob.
fn globs(value: Option<&toml::Value>) -> Result<Vec<Glob>, ValueError> {
    match value {
        None => Ok(Vec::new()),
        Some(toml::Value::String(text)) => Ok(vec![Glob::new(text)]),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(Glob::new).ok_or(ValueError::Type { expected: "strings", found: item.type_str() })
            })
            .collect(),
        Some(other) => Err(ValueError::Type { expected: "a string or a list of strings", found: other.type_str() }),
    }
}
