//! The template set: `templates/**/*.hbs` compiled once per configuration load.
//!
//! One file is one message, with a part per destination, separated by comment lines:
//! ```text
//! {{!-- part: telegram --}}
//! 📞 <b>Пропущенный звонок</b> {{phone contact.phone "national"}}
//! {{!-- part: subject --}}
//! Пропущенный звонок: {{phone contact.phone}}
//! {{!-- part: text --}}
//! …
//! ```
//! A file without markers is one `text` part. Each part is compiled once per [`Escape`], so the
//! same template renders correctly into Telegram HTML, an HTML email and a JSON body.
//! Lookup order for a name: `<dir>/<name>.hbs`, `<dir>/<language>/<name>.hbs`, then the
//! shipped set built into the binary. Partials live in `partials/` beside them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use handlebars::template::{Parameter, Template, TemplateElement};

use super::escape::Escape;
use super::helpers::{self, BUILTIN_HELPERS, HELPERS, HelperSettings};
use super::{RenderContext, RenderError};
use crate::diagnostics::ConfigIssue;

/// One part of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Telegram,
    Subject,
    Text,
    Html,
    Body,
    /// Link buttons under a Telegram card, one a line: `label | url`; a line whose URL is
    /// empty (the value does not exist for this event) is left out.
    Buttons,
}

impl Part {
    pub const ALL: [Part; 6] = [Part::Telegram, Part::Subject, Part::Text, Part::Html, Part::Body, Part::Buttons];

    pub fn name(self) -> &'static str {
        match self {
            Self::Telegram => "telegram",
            Self::Subject => "subject",
            Self::Text => "text",
            Self::Html => "html",
            Self::Body => "body",
            Self::Buttons => "buttons",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|part| part.name() == name)
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The templates shipped with Switchboard, built into the binary: (language, name, text).
pub const EMBEDDED_TEMPLATES: &[(&str, &str, &str)] = &include!("embedded_list.rs");

/// Where templates come from (`[templates]`).
#[derive(Debug, Clone)]
pub struct TemplateSource {
    /// The user's folder; `None` when it does not exist (only the built-in set is used).
    pub dir: Option<PathBuf>,
    pub language: String,
    pub helpers: HelperSettings,
}

/// Every template, compiled.
pub struct TemplateSet {
    /// name → (where it came from, its parts)
    templates: BTreeMap<String, (String, Vec<Part>)>,
    registries: Vec<(Escape, Handlebars<'static>)>,
    /// Whether they speak English (`templates.language = "en"`), for words Switchboard adds
    /// itself, such as a card's button labels.
    english: bool,
}

impl fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateSet").field("templates", &self.templates).finish_non_exhaustive()
    }
}

impl TemplateSet {
    /// Loads and compiles every template, reporting every problem.
    ///
    /// # Errors
    /// Unreadable files, syntax errors, unknown parts and unknown helpers, each with its file.
    pub fn load(source: &TemplateSource) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        // name → (origin, text); later inserts win, so read in reverse precedence.
        let mut files: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut partials: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (language, name, text) in EMBEDDED_TEMPLATES {
            if *language == source.language {
                let origin = format!("<embedded templates/{language}/{name}.hbs>");
                files.insert((*name).to_owned(), (origin, (*text).to_owned()));
            }
        }
        if let Some(dir) = &source.dir {
            for folder in [dir.join(&source.language), dir.to_path_buf()] {
                read_folder(&folder, &mut files, &mut issues);
                read_folder(&folder.join("partials"), &mut partials, &mut issues);
            }
        }

        let mut registries: Vec<(Escape, Handlebars<'static>)> = Escape::ALL
            .into_iter()
            .map(|escape| {
                let mut registry = Handlebars::new();
                registry.register_escape_fn(escape.function());
                helpers::register(&mut registry, source.helpers);
                (escape, registry)
            })
            .collect();

        for (name, (origin, text)) in &partials {
            for (_, registry) in &mut registries {
                if let Err(error) = registry.register_partial(name, text) {
                    issues.push(issue(origin, format!("partial `{name}`: {error}")));
                    break;
                }
            }
        }

        let mut templates = BTreeMap::new();
        for (name, (origin, text)) in &files {
            let parts = match split_parts(text) {
                Ok(parts) => parts,
                Err(message) => {
                    issues.push(issue(origin, message.to_string()));
                    continue;
                }
            };
            let mut compiled_parts = Vec::with_capacity(parts.len());
            for (part, body, first_line) in parts {
                let compiled = match Template::compile(&body) {
                    Ok(compiled) => compiled,
                    Err(error) => {
                        // Placed on the file's own line, not the part's.
                        let line = error.pos().map(|(line, _)| first_line + line.saturating_sub(1));
                        let at = error.pos().map_or_else(String::new, |(_, column)| format!(" (column {column})"));
                        issues.push(ConfigIssue {
                            line,
                            key: format!("part {part}"),
                            ..issue(origin, format!("{}{at}", error.reason()))
                        });
                        continue;
                    }
                };
                let mut unknown = Vec::new();
                unknown_helpers(&compiled.elements, &mut unknown);
                for helper in unknown {
                    issues.push(issue(
                        origin,
                        format!(
                            "part `{part}` uses the helper `{helper}`, which does not exist; helpers: {}",
                            known_helpers().join(", ")
                        ),
                    ));
                }
                for (_, registry) in &mut registries {
                    registry.register_template(&key(name, part), compiled.clone());
                }
                compiled_parts.push(part);
            }
            templates.insert(name.clone(), (origin.clone(), compiled_parts));
        }
        let english = source.helpers.english;
        if issues.is_empty() { Ok(Self { templates, registries, english }) } else { Err(issues) }
    }

    /// Whether a template of this name exists.
    /// Whether the templates speak English rather than Russian.
    pub fn english(&self) -> bool {
        self.english
    }

    pub fn contains(&self, name: &str) -> bool {
        self.templates.contains_key(name)
    }

    /// The parts a template has.
    pub fn parts(&self, name: &str) -> &[Part] {
        self.templates.get(name).map_or(&[], |(_, parts)| parts.as_slice())
    }

    /// Template names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Renders one part with the given escaping, trimmed; a subject is folded onto one line.
    /// Missing values render empty.
    ///
    /// # Errors
    /// The template or part does not exist, or a helper fails.
    pub fn render(
        &self,
        name: &str,
        part: Part,
        escape: Escape,
        context: &RenderContext,
    ) -> Result<String, RenderError> {
        let registry = self
            .registries
            .iter()
            .find(|(e, _)| *e == escape)
            .map(|(_, registry)| registry)
            .expect("one registry is built per Escape variant");
        registry
            .render_with_context(&key(name, part), &context.0)
            .map(|text| match part {
                // A subject is one line whatever the values hold (and a newline in a mail
                // header would be an injection).
                Part::Subject => text.split_whitespace().collect::<Vec<_>>().join(" "),
                _ => text.trim().to_owned(),
            })
            .map_err(|e| RenderError { template: format!("{name}#{part}"), message: e.to_string() })
    }
}

fn key(name: &str, part: Part) -> String {
    format!("{name}#{part}")
}

fn issue(origin: &str, message: String) -> ConfigIssue {
    ConfigIssue { file: origin.to_owned(), line: None, key: String::new(), message }
}

fn known_helpers() -> Vec<&'static str> {
    let mut names: Vec<&str> = BUILTIN_HELPERS.iter().copied().chain(HELPERS.iter().map(|(n, _)| *n)).collect();
    names.sort_unstable();
    names
}

fn read_folder(dir: &Path, into: &mut BTreeMap<String, (String, String)>, issues: &mut Vec<ConfigIssue>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "hbs")) {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                into.insert(name.to_owned(), (path.display().to_string(), text));
            }
            Err(error) => issues.push(issue(&path.display().to_string(), format!("cannot read: {error}"))),
        }
    }
}

/// Why a template file's part markers are wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PartsError {
    #[error("unknown part `{0}`; expected one of {names}", names = Part::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("part `{0}` appears twice")]
    Twice(String),
}

/// Splits a file at `{{!-- part: <name> --}}` lines: each part, its text, and the file's line
/// its text begins on.
fn split_parts(text: &str) -> Result<Vec<(Part, String, usize)>, PartsError> {
    let mut parts: Vec<(Part, String, usize)> = Vec::new();
    let mut current: Option<(Part, String, usize)> = None;
    let mut preamble = String::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        let marker = trimmed
            .strip_prefix("{{!--")
            .and_then(|rest| rest.strip_suffix("--}}"))
            .map(str::trim)
            .and_then(|inner| inner.strip_prefix("part:"))
            .map(str::trim);
        if let Some(name) = marker {
            let part = Part::parse(name).ok_or_else(|| PartsError::Unknown(name.to_owned()))?;
            if parts.iter().any(|(p, ..)| *p == part) || current.as_ref().is_some_and(|(p, ..)| *p == part) {
                return Err(PartsError::Twice(name.to_owned()));
            }
            parts.extend(current.take());
            current = Some((part, String::new(), index + 2));
        } else if let Some((_, body, _)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        } else {
            preamble.push_str(line);
            preamble.push('\n');
        }
    }
    parts.extend(current);
    if parts.is_empty() {
        parts.push((Part::Text, preamble, 1));
    }
    Ok(parts)
}

/// Helper names a template calls that are not registered.
fn unknown_helpers(elements: &[TemplateElement], unknown: &mut Vec<String>) {
    let known = known_helpers();
    let check_name = |name: &Parameter, unknown: &mut Vec<String>| {
        let name = match name {
            Parameter::Name(name) => name.clone(),
            Parameter::Path(handlebars::Path::Relative((_, raw)) | handlebars::Path::Local((_, _, raw))) => raw.clone(),
            _ => return,
        };
        if !known.contains(&name.as_str()) && !unknown.contains(&name) {
            unknown.push(name);
        }
    };
    for element in elements {
        match element {
            TemplateElement::HelperBlock(helper) => {
                check_name(&helper.name, unknown);
                check_params(&helper.params, unknown);
                for inner in [&helper.template, &helper.inverse].into_iter().flatten() {
                    unknown_helpers(&inner.elements, unknown);
                }
            }
            TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                if !helper.params.is_empty() || !helper.hash.is_empty() {
                    check_name(&helper.name, unknown);
                }
                check_params(&helper.params, unknown);
            }
            _ => {}
        }
    }
}

fn check_params(params: &[Parameter], unknown: &mut Vec<String>) {
    for param in params {
        if let Parameter::Subexpression(sub) = param {
            unknown_helpers(std::slice::from_ref(sub.as_element()), unknown);
        }
    }
}

#[cfg(test)]
mod tests;
