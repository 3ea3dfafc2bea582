//! `switchboard send <output>`: one test message through a configured output, and the outcome.
//! The first thing to run after adding a bot token or an SMTP password.

use anyhow::{Context, bail};
use chrono::Utc;
use serde_json::json;

use crate::config::Config;
use crate::event::{Event, EventId, Fields, Kind};
use crate::outputs::Attempt;

/// What happened, in one line for a person.
#[derive(Debug)]
pub struct Outcome {
    pub delivered: bool,
    pub line: String,
}

/// Sends a test message rendered from `template` with `text` as its message.
///
/// # Errors
/// An unknown or switched-off output, or a template it cannot use.
pub async fn send(config: &Config, output: &str, text: &str, template: &str) -> anyhow::Result<Outcome> {
    let entry = config.outputs().get(output).with_context(|| {
        let known: Vec<&str> = config.outputs().keys().map(String::as_str).collect();
        format!("no output is called `{output}`; configured outputs: {}", known.join(", "))
    })?;
    let Some(sender) = &entry.output else {
        bail!("output `{output}` is switched off (its `enabled` is false): set the variables it needs first");
    };
    let now = Utc::now();
    let mut fields = Fields::default();
    fields.set("message", json!(text));
    let event = Event {
        id: EventId::new(now),
        received_at: now,
        vendor: "switchboard".into(),
        event: "test".into(),
        kind: Kind::parse("custom.test").expect("a valid custom kind"),
        fields,
        payload: json!({ "message": text }),
    };
    let message = crate::delivery::compose(
        config.templates(),
        template,
        sender.as_ref(),
        &crate::render::RenderContext::of_event(&event),
    )
    .with_context(|| format!("template `{template}` cannot be rendered for output `{output}`"))?;
    let attempt = Attempt { delivery: format!("test-{}", event.id), number: 1 };
    Ok(match sender.send(&message, &attempt).await {
        Ok(receipt) => Outcome {
            delivered: true,
            line: format!("delivered through `{output}` ({}): {}", entry.kind, receipt.summary),
        },
        Err(error) => Outcome {
            delivered: false,
            line: format!(
                "failed through `{output}` ({}): {} — {}",
                entry.kind,
                error.reason,
                if error.is_retryable() {
                    "temporary, the daemon would retry"
                } else {
                    "permanent, fix the configuration"
                }
            ) + &format!("\n  {}", error.detail),
        },
    })
}
