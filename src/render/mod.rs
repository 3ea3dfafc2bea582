//! Rendering handlebars templates against an event's context.
//!
//! Stage 6 of the pipeline (… → delivery → **render** → outputs). [`TemplateSet`] holds the
//! message templates of `templates/` (one file per message, one part per destination), each
//! compiled once per [`Escape`] so values are escaped the way the destination needs.
//! [`JsonTemplate`] renders a JSON shape whose strings are templates (vendor replies, HTTP
//! headers). Missing values render empty; a template never crashes the daemon.

mod context;
mod escape;
pub mod helpers;
mod templates;

use handlebars::Handlebars;

pub use context::RenderContext;
pub use escape::Escape;
pub use helpers::HelperSettings;
use serde_json::{Map, Value};
pub use templates::{EMBEDDED_TEMPLATES, Part, TemplateSet, TemplateSource};

/// Why a template could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

/// A JSON value whose string leaves may hold handlebars expressions.
#[derive(Debug)]
pub struct JsonTemplate {
    root: Node,
    registry: Handlebars<'static>,
}

#[derive(Debug)]
enum Node {
    Literal(Value),
    Template(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl JsonTemplate {
    /// Compiles every string leaf of `shape`, with the template helpers. `escape` applies to
    /// values inserted with `{{ }}`: [`Escape::Plain`] when the result is serialised as JSON
    /// (which escapes what JSON needs), [`Escape::Form`] for URLs.
    ///
    /// # Errors
    /// The first leaf that is not a valid template, named by its JSON pointer.
    pub fn compile(shape: &Value, escape: Escape, helpers: HelperSettings) -> Result<Self, RenderError> {
        let mut registry = Handlebars::new();
        registry.register_escape_fn(escape.function());
        helpers::register(&mut registry, helpers);
        let root = compile_node(shape, "", &mut registry)?;
        Ok(Self { root, registry })
    }

    /// Renders against `context` (an event's: [`RenderContext::from_event`]).
    ///
    /// # Errors
    /// A helper failing at render time.
    pub fn render(&self, context: &RenderContext) -> Result<Value, RenderError> {
        render_node(&self.root, &self.registry, context)
    }

    /// What every render gives when the shape is a single leaf with no `{{ }}` in it: a caller
    /// can then check or prepare it once instead of per event.
    pub fn literal(&self) -> Option<&Value> {
        match &self.root {
            Node::Literal(value) => Some(value),
            _ => None,
        }
    }
}

fn compile_node(value: &Value, pointer: &str, registry: &mut Handlebars<'static>) -> Result<Node, RenderError> {
    Ok(match value {
        Value::String(text) if text.contains("{{") => {
            let name = if pointer.is_empty() { "/".to_owned() } else { pointer.to_owned() };
            registry
                .register_template_string(&name, text)
                .map_err(|e| RenderError { template: name.clone(), message: e.to_string() })?;
            Node::Template(name)
        }
        Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| compile_node(item, &format!("{pointer}/{i}"), registry))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Node::Object(
            map.iter()
                .map(|(key, item)| Ok((key.clone(), compile_node(item, &format!("{pointer}/{key}"), registry)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => Node::Literal(other.clone()),
    })
}

fn render_node(node: &Node, registry: &Handlebars<'static>, context: &RenderContext) -> Result<Value, RenderError> {
    Ok(match node {
        Node::Literal(value) => value.clone(),
        Node::Template(name) => Value::String(
            registry
                .render_with_context(name, &context.0)
                .map_err(|e| RenderError { template: name.clone(), message: e.to_string() })?,
        ),
        Node::Array(items) => {
            Value::Array(items.iter().map(|item| render_node(item, registry, context)).collect::<Result<_, _>>()?)
        }
        Node::Object(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, item) in entries {
                map.insert(key.clone(), render_node(item, registry, context)?);
            }
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings() -> HelperSettings {
        HelperSettings { timezone: chrono_tz::UTC, english: false }
    }

    #[test]
    fn only_a_leaf_without_placeholders_is_literal() {
        let compile = |shape: Value| JsonTemplate::compile(&shape, Escape::Form, settings()).unwrap();
        assert_eq!(compile(json!("https://crm.example.com/in")).literal(), Some(&json!("https://crm.example.com/in")));
        assert_eq!(compile(json!("https://crm.example.com/{{vendor}}")).literal(), None);
        assert_eq!(compile(json!({"to": "x"})).literal(), None, "an object is rebuilt per render");
    }

    #[test]
    fn urls_get_their_values_percent_encoded() {
        let template = JsonTemplate::compile(
            &json!("https://crm.example.com/find?phone={{contact.phone}}"),
            Escape::Form,
            settings(),
        )
        .unwrap();
        let rendered = template.render(&json!({"contact": {"phone": "+7 999&x=1"}}).into()).unwrap();
        assert_eq!(rendered, json!("https://crm.example.com/find?phone=%2B7%20999%26x%3D1"));
    }

    #[test]
    fn renders_string_leaves_and_keeps_the_rest() {
        let template = JsonTemplate::compile(
            &json!({
                "crm_link": "https://crm.example.com/?phone={{contact.phone}}",
                "enable_assign": true,
                "custom_data": [{"title": "Город", "content": "{{geo.city}}"}],
                "missing": "[{{nothing.here}}]",
            }),
            Escape::Plain,
            settings(),
        )
        .unwrap();
        let rendered =
            template.render(&json!({"contact": {"phone": "+7 <999>"}, "geo": {"city": "Краснодар"}}).into()).unwrap();
        assert_eq!(
            rendered,
            json!({
                "crm_link": "https://crm.example.com/?phone=+7 <999>",
                "enable_assign": true,
                "custom_data": [{"title": "Город", "content": "Краснодар"}],
                "missing": "[]",
            })
        );
    }

    #[test]
    fn invalid_templates_are_named_by_pointer() {
        let error = JsonTemplate::compile(&json!({"a": [{"b": "{{#if x}}"}]}), Escape::Plain, settings()).unwrap_err();
        assert_eq!(error.template, "/a/0/b");
    }
}
