//! Sequences: events of one vendor that belong together, so that classifying one can ask what
//! came before it.
//!
//! Jivo's `call` object carries no id of its own, and it sends no `error` for a call that simply
//! rang out: the `end` of a call no agent answered looks like any other `end`. A plugin's
//! `[sequence]` says which events form one (`key`: the chat's ids), which event starts a new one
//! (`begins`: the call's `start`) and what to remember of the earlier ones (`seen.agent_answered`:
//! an `agent_connected`). Ingest reads the sequence's earlier events from the store
//! ([`crate::store::EventLog::sequence`]) and [`Vendor::recall`] turns them into [`Seen`], which
//! `[[classify]]` rules test as `seen.<name>`.
//!
//! What was seen is only known once the sequence's beginning is stored: a call whose `start`
//! Switchboard never received (it was down, or just installed) has every `seen.*` absent, so
//! a rule written as `"seen.agent_answered" = false` leaves such a call as it was.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Vendor;
use super::compile::IssueSink;
use super::normalize::Draft;
use super::spec::SequenceSpec;
use crate::condition::{Condition, FieldRef, Scope, check_seen_name};
use crate::event::as_text;
use crate::event::{Event, Path};

/// How far back earlier events are looked for when the plugin does not say: a day.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(24 * 60 * 60);
/// The most earlier events one recall reads: a sequence is a handful of events, so a key that
/// matches more has lost its beginning long ago, and reading further would not find it cheaply.
pub const RECALL_LIMIT: u32 = 100;

/// A plugin's compiled `[sequence]` or one of its `[sequences.<name>]`.
#[derive(Debug)]
pub(super) struct Sequence {
    /// What the store finds its events by, before the key's values: the vendor's name for
    /// `[sequence]`, `<vendor>/<name>` for a named one, so that a chat and a call of the same
    /// chat id are two sequences.
    prefix: String,
    when: Condition,
    key: Vec<Path>,
    begins: Condition,
    ends: Option<Condition>,
    resends_within: Duration,
    within: Duration,
    seen: Vec<(String, Condition)>,
}

/// What a webhook is whose dedup key an earlier event of its sequence already has. Jivo's call
/// events carry no call id and no time, so a visitor who calls twice in one chat sends the same
/// bodies twice: only the sequence can tell the second call from Jivo resending the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// No earlier event of its sequence has its key: the store looks for a repeat as it does
    /// for any event.
    Unseen,
    /// The vendor sending that event again: the store recognises it as a duplicate.
    Resend,
    /// The same thing happening again — the sequence began anew or ended since that event: a new
    /// event, stored without looking for a repeat (its own resends still find it by its key).
    Anew,
}

/// The sequence an event belongs to, and what ingest must read to classify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceRef {
    /// The vendor (and the sequence's name) and the key's values: what the store finds the
    /// sequence's events by.
    pub key: String,
    /// Which of the plugin's sequences.
    which: usize,
    /// The event starts a sequence: nothing before it belongs to it, so nothing is read.
    pub begins: bool,
    /// Earlier events received before this are not looked for.
    pub since: DateTime<Utc>,
}

/// What the earlier events of a sequence showed: each `seen` name of the plugin, true when one
/// of them matched its condition. `Unknown` while the sequence's beginning is not in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seen {
    #[default]
    Unknown,
    Known(BTreeMap<String, bool>),
}

impl Seen {
    /// `seen.<name>` as conditions see it: absent while unknown.
    pub fn get(&self, name: &str) -> Option<Value> {
        match self {
            Self::Unknown => None,
            Self::Known(flags) => flags.get(name).map(|flag| Value::Bool(*flag)),
        }
    }
}

impl Sequence {
    /// The names `[[classify]]` may test as `seen.<name>`.
    pub(super) fn seen_names(&self) -> impl Iterator<Item = &str> {
        self.seen.iter().map(|(name, _)| name.as_str())
    }
}

impl Vendor {
    /// The sequence an event belongs to: the first of the plugin's (`[sequence]`, then
    /// `[sequences.*]` by name) that the event is of, if the payload holds every value of its key.
    pub(super) fn sequence_of(&self, draft: &Draft<'_>, received_at: DateTime<Utc>) -> Option<SequenceRef> {
        let (which, sequence) = self.sequences.iter().enumerate().find(|(_, s)| s.when.matches(draft))?;
        let mut key = sequence.prefix.clone();
        for path in &sequence.key {
            let value = path.get(draft.payload).and_then(as_text).filter(|v| !v.trim().is_empty())?;
            key.push('\u{1f}');
            key.push_str(value.trim());
        }
        let within = chrono::TimeDelta::from_std(sequence.within).unwrap_or(chrono::TimeDelta::MAX);
        Some(SequenceRef {
            key,
            which,
            begins: sequence.begins.matches(draft),
            since: received_at.checked_sub_signed(within).unwrap_or(DateTime::<Utc>::MIN_UTC),
        })
    }

    /// The sequence a finished (stored) event belongs to, as the plugin reads it now.
    pub fn sequence(&self, event: &Event) -> Option<SequenceRef> {
        let view = self.alias_view(&event.payload);
        self.sequence_of(&Draft::of(event, &view, &Seen::Unknown), event.received_at)
    }

    /// What the earlier events of `sequence` showed. `earlier` is what the store holds of it,
    /// newest first; the walk stops at the event that began it. Without that event what was
    /// seen is [`Seen::Unknown`]: the sequence may have begun before Switchboard heard of it.
    pub fn recall<'e>(&self, sequence: &SequenceRef, earlier: impl IntoIterator<Item = &'e Event>) -> Seen {
        let Some(spec) = self.sequences.get(sequence.which) else {
            return Seen::Unknown;
        };
        let mut flags: BTreeMap<String, bool> = spec.seen.iter().map(|(name, _)| (name.clone(), false)).collect();
        if sequence.begins {
            return Seen::Known(flags);
        }
        for event in earlier {
            let view = self.alias_view(&event.payload);
            let facts = Draft::of(event, &view, &Seen::Unknown);
            for (name, condition) in &spec.seen {
                if condition.matches(&facts) {
                    flags.insert(name.clone(), true);
                }
            }
            if spec.begins.matches(&facts) {
                return Seen::Known(flags);
            }
        }
        Seen::Unknown
    }

    /// Whether an event with `dedup_key`, received at `received_at`, repeats an earlier event of
    /// its sequence, and if so as what. `earlier` is the sequence's stored events with their
    /// dedup keys, newest first. A repeat is a resend when it comes within the plugin's
    /// `resends_within_secs` of that event, or when nothing since has begun or ended the
    /// sequence; otherwise the sequence has moved on and the repeat is new.
    pub fn repeat(
        &self,
        sequence: &SequenceRef,
        received_at: DateTime<Utc>,
        dedup_key: &str,
        earlier: &[(&Event, &str)],
    ) -> Repeat {
        let Some(spec) = self.sequences.get(sequence.which) else {
            return Repeat::Unseen;
        };
        let Some(at) = earlier.iter().position(|(_, key)| *key == dedup_key) else {
            return Repeat::Unseen;
        };
        let original = earlier[at].0;
        let since = received_at.signed_duration_since(original.received_at);
        if since.to_std().is_ok_and(|since| since <= spec.resends_within) || since < chrono::TimeDelta::zero() {
            return Repeat::Resend;
        }
        let moved_on = earlier[..at].iter().any(|(event, _)| {
            let view = self.alias_view(&event.payload);
            let facts = Draft::of(event, &view, &Seen::Unknown);
            spec.begins.matches(&facts) || spec.ends.as_ref().is_some_and(|ends| ends.matches(&facts))
        });
        if moved_on { Repeat::Anew } else { Repeat::Resend }
    }

    /// Classifies `event` again, now that what its sequence saw is known: the kind and the
    /// canonical fields are rebuilt from its payload as [`Vendor::interpret`] built them.
    pub fn reclassify(&self, event: &mut Event, seen: &Seen) {
        let base = self.events.values().find(|def| def.name == event.event).map(|def| def.kind.clone());
        let view = self.alias_view(&event.payload);
        let (kind, fields) = self.classify(&event.event, base.unwrap_or_else(crate::event::Kind::unknown), &view, seen);
        drop(view);
        event.kind = kind;
        event.fields = fields;
    }
}

/// Compiles `[sequence]` (`name` none) or `[sequences.<name>]` of the plugin `vendor`,
/// reporting every problem in it.
pub(super) fn compile(
    vendor: &str,
    name: Option<&str>,
    spec: &SequenceSpec,
    span: Range<usize>,
    issue: &mut IssueSink<'_>,
) -> Option<Sequence> {
    let mut ok = true;
    let table = name.map_or_else(|| "sequence".to_owned(), |name| format!("sequences.{name}"));
    let prefix = match name {
        None => vendor.to_owned(),
        Some(name) if is_sequence_name(name) => format!("{vendor}/{name}"),
        Some(_) => {
            issue(span.clone(), table.clone(), "a sequence's name is lowercase letters, digits and `_`".into());
            ok = false;
            String::new()
        }
    };
    let condition = |value: &toml::Value, key: &str, issue: &mut IssueSink<'_>| {
        let parsed = Condition::parse(value, Scope::Plugin, key).map_err(|e| issue(span.clone(), e.key, e.message));
        let parsed = parsed.ok()?;
        if parsed.fields().iter().any(|field| matches!(field, FieldRef::Seen(_))) {
            issue(span.clone(), key.to_owned(), "a sequence's own conditions cannot test `seen`".into());
            return None;
        }
        Some(parsed)
    };
    let when = condition(&spec.when, &format!("{table}.when"), issue);
    let begins = condition(&spec.begins, &format!("{table}.begins"), issue);
    let ends = match &spec.ends {
        None => None,
        Some(value) => {
            let parsed = condition(value, &format!("{table}.ends"), issue);
            ok &= parsed.is_some();
            parsed
        }
    };
    let mut seen = Vec::with_capacity(spec.seen.len());
    for (name, value) in &spec.seen {
        let key = format!("{table}.seen.{name}");
        if let Err(message) = check_seen_name(name) {
            issue(span.clone(), key, message.to_string());
            ok = false;
        } else if let Some(parsed) = condition(value, &key, issue) {
            seen.push((name.clone(), parsed));
        } else {
            ok = false;
        }
    }
    if spec.key.is_empty() {
        issue(span.clone(), format!("{table}.key"), "name at least one payload path that identifies a sequence".into());
        ok = false;
    }
    let key: Vec<Path> =
        spec.key.iter().filter_map(|p| super::compile::path(p, span.clone(), &format!("{table}.key"), issue)).collect();
    if key.len() != spec.key.len() {
        ok = false;
    }
    let within = match spec.within_secs {
        Some(0) => {
            issue(span, format!("{table}.within_secs"), "must be greater than 0".into());
            ok = false;
            DEFAULT_WITHIN
        }
        Some(secs) => Duration::from_secs(secs),
        None => DEFAULT_WITHIN,
    };
    let resends_within = Duration::from_secs(spec.resends_within_secs.unwrap_or(0));
    match (when, begins) {
        (Some(when), Some(begins)) if ok => {
            Some(Sequence { prefix, when, key, begins, ends, resends_within, within, seen })
        }
        _ => None,
    }
}

/// A name that can stand in a stored key and a TOML table header without quoting.
fn is_sequence_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests;
