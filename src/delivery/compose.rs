//! Composing: everything an output sends of one event, rendered before it is handed over —
//! the template's parts the output asks for, and the output's templated settings.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::outputs::{Message, Output};
use crate::render::{RenderContext, RenderError, TemplateSet};

/// The message `output` sends of the event whose context this is, from template `template`.
///
/// # Errors
/// A part the output requires is missing from the template, or a part or a templated setting
/// fails to render: a permanent failure, since the next attempt would render the same.
pub fn compose(
    templates: &TemplateSet,
    template: &str,
    output: &dyn Output,
    context: &RenderContext,
) -> Result<Message, RenderError> {
    let available = templates.parts(template);
    let mut parts = BTreeMap::new();
    for need in output.plan() {
        let chosen = std::iter::once(need.part).chain(need.fallbacks.iter().copied()).find(|p| available.contains(p));
        match chosen {
            Some(part) => {
                parts.insert(need.part, templates.render(template, part, need.escape, context)?);
            }
            None if need.required => {
                return Err(RenderError {
                    template: template.to_owned(),
                    message: format!("has no `{}` part, which a {} output needs", need.part, output.kind()),
                });
            }
            None => {}
        }
    }
    Ok(Message::new(parts, settings(output, context, template)?))
}

fn settings(
    output: &dyn Output,
    context: &RenderContext,
    template: &str,
) -> Result<BTreeMap<&'static str, Value>, RenderError> {
    let mut settings = BTreeMap::new();
    for templated in output.templated() {
        match templated.template.render(context) {
            Ok(value) => {
                settings.insert(templated.setting, value);
            }
            Err(error) if templated.required => {
                return Err(RenderError {
                    template: template.to_owned(),
                    message: format!("the {} output's `{}` setting: {error}", output.kind(), templated.setting),
                });
            }
            Err(error) => tracing::debug!(
                message = "An optional setting did not render; left out.", setting = templated.setting, %error
            ),
        }
    }
    Ok(settings)
}
