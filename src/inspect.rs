//! What the pipeline makes of one event, with nothing sent: every route's verdict (and the
//! condition that failed) and the exact message each output gets. `switchboard test` prints it;
//! the dashboard shows it beside what really happened.

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::event::Event;
use crate::render::RenderContext;
use crate::router::Outcome;

/// One route's verdict on an event.
#[derive(Debug, Clone, Serialize)]
pub struct RouteVerdict {
    pub route: String,
    /// `matched`, `not matched`, `disabled` or `not reached`.
    pub outcome: &'static str,
    pub reason: Option<String>,
}

impl RouteVerdict {
    pub fn matched(&self) -> bool {
        self.outcome == "matched"
    }
}

/// A message as one output would get it.
#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub route: String,
    pub output: String,
    #[serde(rename = "type")]
    pub output_type: String,
    pub template: String,
    /// `{part: text}`, or `{"error": …}` / `{"skipped": …}` when there is nothing to show.
    pub message: Value,
}

/// Every route's verdict on `event` under `config`, agreeing with what ingest decides.
pub fn verdicts(config: &Config, event: &Event) -> Vec<RouteVerdict> {
    config
        .routes()
        .explain(event)
        .into_iter()
        .map(|verdict| {
            let (outcome, reason) = match verdict.outcome {
                Outcome::Matched => ("matched", None),
                Outcome::NotMatched(why) => ("not matched", Some(why)),
                Outcome::Disabled => ("disabled", None),
                Outcome::NotReached => ("not reached", Some("an earlier route matched without `continue`".to_owned())),
            };
            RouteVerdict { route: verdict.route, outcome, reason }
        })
        .collect()
}

/// The messages the matching routes would send for `event`.
pub fn messages(config: &Config, event: &Event) -> Vec<Rendered> {
    let context = crate::render::RenderContext::of_event(event);
    let mut messages = Vec::new();
    for decision in config.routes().decide(event) {
        for target in &decision.targets {
            messages.push(render(config, &decision.route, &target.output, &target.template, &context));
        }
    }
    messages
}

/// One (route, output, template) rendered for an event's context.
pub fn render(config: &Config, route: &str, output: &str, template: &str, context: &RenderContext) -> Rendered {
    let (output_type, message) = match config.outputs().get(output) {
        None => (String::new(), json!({ "error": format!("output `{output}` is no longer configured") })),
        Some(entry) => {
            let message = match &entry.output {
                None => json!({ "skipped": "the output is switched off (enabled = false)" }),
                Some(sender) => {
                    match crate::delivery::compose(config.templates(), template, sender.as_ref(), context) {
                        Ok(message) => {
                            Value::Object(message.parts().map(|(part, text)| (part.to_string(), json!(text))).collect())
                        }
                        Err(error) => json!({ "error": error.to_string() }),
                    }
                }
            };
            (entry.kind.to_string(), message)
        }
    };
    Rendered { route: route.to_owned(), output: output.to_owned(), output_type, template: template.to_owned(), message }
}
