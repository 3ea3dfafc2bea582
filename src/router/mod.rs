//! The router: which routes an event matches, and so which outputs hear about it.
//!
//! Stage 3 of the pipeline (… → plugin → **router** → store → …). `[[route]]` tables compile
//! once into [`Routes`]; [`Routes::plan`] is then a pure function of the event and the time:
//! the routes that take it, and one delivery per (route, output) for the store. Routes are
//! tried in order; the first that matches wins, unless it says `continue = true`. An event that
//! matches nothing is still stored, and shown as unrouted.

mod schedule;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use schedule::{Schedule, ScheduleError};

use crate::condition::{Condition, Facts, FieldRef, Glob};
use crate::event::Event;
use crate::event::handling::{Action, Status};

/// One destination of a route: an output and the template rendered for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub output: String,
    pub template: String,
    /// What a later event of the same sequence (a call, a chat) does with the message an
    /// earlier one left at this output.
    pub card: CardMode,
    /// The action buttons its cards offer (the route's `buttons`).
    pub buttons: Vec<Action>,
    /// The forum topic its messages go to, in place of the output's `message_thread_id`.
    pub topic: Option<i32>,
}

/// How the events of one sequence share a message at an output that can continue one
/// (Telegram): the route's `card`, or `cards.<output>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardMode {
    /// One live message: later events edit it in place.
    #[default]
    Edit,
    /// Later events send a new message that replies to the first.
    Reply,
    /// Every event sends its own message.
    New,
}

impl CardMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edit => "edit",
            Self::Reply => "reply",
            Self::New => "new",
        }
    }
}

/// A compiled `[[route]]`.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub enabled: bool,
    pub vendor: Vec<Glob>,
    pub event: Vec<Glob>,
    pub kind: Vec<Glob>,
    pub when: Option<Condition>,
    pub schedule: Option<Schedule>,
    pub targets: Vec<Target>,
    pub continue_matching: bool,
    /// Past this age a delivery is expired rather than sent late.
    pub ttl: Option<std::time::Duration>,
    /// Reminders planned with the event, sent later unless the card is handled by then.
    pub escalations: Vec<Escalation>,
    /// While this schedule applies, messages go without a sound (Telegram's
    /// `disable_notification`): the night, a weekend.
    pub silent: Option<Schedule>,
}

/// A route's `escalate` entry: `after` the event, unless its card reached `unless`, a reminder
/// goes to `outputs` (replying to the card where one is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub after: std::time::Duration,
    pub unless: Status,
    pub outputs: Vec<String>,
    pub template: String,
}

/// The routes of one configuration, in order.
#[derive(Debug, Default)]
pub struct Routes(Vec<Route>);

/// A route that matched, with where the event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub route: String,
    pub targets: Vec<Target>,
    pub ttl: Option<std::time::Duration>,
    pub escalations: Vec<Escalation>,
}

/// One delivery a route asks for. Past `expires_at` (the route's ttl, counted from when the plan
/// was made) it is expired rather than sent late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub route: String,
    pub output: String,
    pub template: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Due this long after the plan: an escalation.
    pub after: Option<std::time::Duration>,
    /// An escalation is not sent if the card reached this status by then.
    pub unless: Option<Status>,
}

/// What routing makes of an event: the routes that took it, and the deliveries they ask for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub routes: Vec<String>,
    pub deliveries: Vec<Planned>,
}

/// Why each route did or did not take an event, for `switchboard test` and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub route: String,
    pub outcome: Outcome,
}

/// What a route made of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Matched,
    /// Not matched, and why.
    NotMatched(String),
    Disabled,
    /// Not tried: an earlier route matched without `continue`.
    NotReached,
}

impl Routes {
    pub fn new(routes: Vec<Route>) -> Self {
        Self(routes)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.0.iter()
    }

    /// The routes that take `event`; empty when it is unrouted. Schedules are judged at the
    /// time the event was received, so a replay routes as the original did.
    /// The routes that take `event`, and one delivery per (route, output) planned at `at`, for
    /// the outputs `sends` says can send: one switched off has nothing to send with.
    pub fn plan(&self, event: &Event, at: DateTime<Utc>, sends: impl Fn(&str) -> bool) -> Plan {
        let decisions = self.decide(event);
        let mut deliveries = Vec::new();
        for decision in &decisions {
            let expires_at = decision.ttl.and_then(|ttl| chrono::TimeDelta::from_std(ttl).ok()).map(|ttl| at + ttl);
            for target in &decision.targets {
                if sends(&target.output) {
                    deliveries.push(Planned {
                        route: decision.route.clone(),
                        output: target.output.clone(),
                        template: target.template.clone(),
                        expires_at,
                        after: None,
                        unless: None,
                    });
                } else {
                    tracing::debug!(message = "Output is switched off; no delivery.", route = %decision.route, output = %target.output);
                }
            }
            for escalation in &decision.escalations {
                for output in escalation.outputs.iter().filter(|output| sends(output)) {
                    deliveries.push(Planned {
                        route: decision.route.clone(),
                        output: output.clone(),
                        template: escalation.template.clone(),
                        expires_at: None,
                        after: Some(escalation.after),
                        unless: Some(escalation.unless),
                    });
                }
            }
        }
        Plan { routes: decisions.into_iter().map(|d| d.route).collect(), deliveries }
    }

    pub fn decide(&self, event: &Event) -> Vec<Decision> {
        let facts = EventFacts(event);
        let mut decisions = Vec::new();
        for route in self.0.iter().filter(|r| r.enabled) {
            if route.mismatch(event, &facts, false).is_none() {
                decisions.push(Decision {
                    route: route.name.clone(),
                    targets: route.targets.clone(),
                    ttl: route.ttl,
                    escalations: route.escalations.clone(),
                });
                if !route.continue_matching {
                    break;
                }
            }
        }
        decisions
    }

    /// Every route's verdict on `event`, agreeing with [`Routes::decide`].
    pub fn explain(&self, event: &Event) -> Vec<Verdict> {
        let facts = EventFacts(event);
        let mut stopped = false;
        self.0
            .iter()
            .map(|route| {
                let outcome = if stopped {
                    Outcome::NotReached
                } else if !route.enabled {
                    Outcome::Disabled
                } else if let Some(reason) = route.mismatch(event, &facts, true) {
                    Outcome::NotMatched(reason)
                } else {
                    stopped = !route.continue_matching;
                    Outcome::Matched
                };
                Verdict { route: route.name.clone(), outcome }
            })
            .collect()
    }
}

impl Route {
    /// `None` when the route takes the event; otherwise why not (a sentence only when asked,
    /// so the hot path allocates nothing).
    fn mismatch(&self, event: &Event, facts: &EventFacts<'_>, explain: bool) -> Option<String> {
        let reason = |text: &dyn Fn() -> String| Some(if explain { text() } else { String::new() });
        let globs = |globs: &[Glob]| globs.iter().map(Glob::as_str).collect::<Vec<_>>().join(", ");
        if !matches_any(&self.vendor, &event.vendor) {
            return reason(&|| format!("vendor is `{}`, wanted {}", event.vendor, globs(&self.vendor)));
        }
        if !matches_any(&self.event, &event.event) {
            return reason(&|| format!("event is `{}`, wanted {}", event.event, globs(&self.event)));
        }
        if !matches_any(&self.kind, event.kind.as_str()) {
            return reason(&|| format!("kind is `{}`, wanted {}", event.kind, globs(&self.kind)));
        }
        if let Some(when) = &self.when {
            if explain {
                if let Err(why) = when.explain(facts) {
                    return Some(why.0);
                }
            } else if !when.matches(facts) {
                return Some(String::new());
            }
        }
        if let Some(schedule) = &self.schedule {
            if !schedule.applies(event.received_at) {
                return reason(&|| format!("received outside the schedule ({})", schedule.describe()));
            }
        }
        None
    }
}

fn matches_any(globs: &[Glob], value: &str) -> bool {
    globs.is_empty() || globs.iter().any(|glob| glob.matches(value))
}

/// An event as conditions see it.
pub struct EventFacts<'a>(pub &'a Event);

impl Facts for EventFacts<'_> {
    fn lookup(&self, field: &FieldRef) -> Option<Cow<'_, Value>> {
        let event = self.0;
        match field {
            FieldRef::Vendor => Some(Cow::Owned(Value::String(event.vendor.clone()))),
            FieldRef::Event => Some(Cow::Owned(Value::String(event.event.clone()))),
            FieldRef::Kind => Some(Cow::Owned(Value::String(event.kind.to_string()))),
            FieldRef::Field(name) => event.fields.get(name).map(Cow::Borrowed),
            FieldRef::Payload(path) => path.get(&event.payload).map(Cow::Borrowed),
            // Plugins only: a route cannot name one.
            FieldRef::Seen(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
