//! A route's `escalate`: reminders when nobody handles a card in time, compiled and checked.

use std::collections::BTreeMap;

use super::raw::RawRoute;
use super::routes::ValidatedOutput;
use crate::event::handling::Status;
use crate::render::TemplateSet;
use crate::router::Escalation;

/// The longest an escalation may wait: a reminder is about a call, not a calendar.
const LONGEST_ESCALATION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// The template reminders use unless an `escalate` entry names one.
const REMINDER_TEMPLATE: &str = "reminder";

/// A route's `escalate` entries, compiled; each problem is reported under its index.
pub(super) fn escalations(
    route: &RawRoute,
    (outputs, broken): (&BTreeMap<String, ValidatedOutput>, &[&str]),
    templates: Option<&TemplateSet>,
    issue: &mut impl FnMut(&str, String),
) -> Vec<Escalation> {
    let mut compiled = Vec::new();
    for (index, raw) in route.escalate.iter().enumerate() {
        let key = format!("escalate[{index}]");
        let after = match parse_after(&raw.after) {
            Ok(after) => after,
            Err(message) => {
                issue(&format!("{key}.after"), message);
                continue;
            }
        };
        let to = raw.to.clone().unwrap_or_else(|| route.to.clone());
        if to.is_empty() {
            issue(&format!("{key}.to"), "an escalation needs at least one output".to_owned());
        }
        for output in to.iter().filter(|output| !outputs.contains_key(*output) && !broken.contains(&output.as_str())) {
            let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
            issue(
                &format!("{key}.to"),
                format!("no output is called `{output}`; configured outputs: {}", known.join(", ")),
            );
        }
        let template = raw.template.clone().unwrap_or_else(|| REMINDER_TEMPLATE.to_owned());
        if let Some(templates) = templates.filter(|t| !t.contains(&template)) {
            let names = templates.names().collect::<Vec<_>>().join(", ");
            issue(&format!("{key}.template"), format!("no template is called `{template}`; templates: {names}"));
        }
        let unless = raw.unless.unwrap_or(Status::Taken);
        if unless == Status::New {
            issue(&format!("{key}.unless"), "must be `taken` or `done`: every card starts `new`".to_owned());
        }
        compiled.push(Escalation { after, unless, outputs: to, template });
    }
    compiled
}

/// `"90s"`, `"10m"`, `"2h"`, `"1d"`: a whole number and its unit.
fn parse_after(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<u64>().ok().filter(|n| *n > 0 && seconds > 0).and_then(|n| n.checked_mul(seconds)) {
        Some(total) if total <= LONGEST_ESCALATION.as_secs() => Ok(std::time::Duration::from_secs(total)),
        Some(_) => Err(format!("`{text}` is longer than the 30 days a reminder can wait")),
        None => Err(format!("`{text}` is not a wait such as \"90s\", \"10m\", \"2h\" or \"1d\"")),
    }
}
