//! Sequences: events of one vendor that belong together, so that classifying one can ask what
//! came before it.
//!
//! Jivo's `call` object carries no id of its own, and it sends no `error` for a call that simply
//! rang out: the `end` of a call no agent answered looks like any other `end`. A plugin's
//! `[sequence]` says which events form one (`key`: the chat's ids), which event starts a new one
//! (`begins`: the call's `start`) and what to remember of the earlier ones (`seen.agent_answered`:
//! an `agent_connected`). Ingest reads the sequence's earlier events from the store
//! ([`crate::store::Store::sequence`]) and [`Vendor::recall`] turns them into [`Seen`], which
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
use crate::condition::{Condition, FieldRef, Scope, as_text, check_seen_name};
use crate::event::{Event, Path};

/// How far back earlier events are looked for when the plugin does not say: a day.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(24 * 60 * 60);
/// The most earlier events one recall reads: a sequence is a handful of events, so a key that
/// matches more has lost its beginning long ago, and reading further would not find it cheaply.
pub const RECALL_LIMIT: u32 = 100;

/// A plugin's compiled `[sequence]`.
#[derive(Debug)]
pub(super) struct Sequence {
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
    /// The vendor and the key's values: what the store finds the sequence's events by.
    pub key: String,
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
    /// The sequence an event belongs to, if the plugin has one, the event is of it, and the
    /// payload holds every value of its key.
    pub(super) fn sequence_of(&self, draft: &Draft<'_>, received_at: DateTime<Utc>) -> Option<SequenceRef> {
        let sequence = self.sequence.as_ref()?;
        if !sequence.when.matches(draft) {
            return None;
        }
        let mut key = self.name.clone();
        for path in &sequence.key {
            let value = path.get(draft.payload).and_then(as_text).filter(|v| !v.trim().is_empty())?;
            key.push('\u{1f}');
            key.push_str(value.trim());
        }
        let within = chrono::TimeDelta::from_std(sequence.within).unwrap_or(chrono::TimeDelta::MAX);
        Some(SequenceRef {
            key,
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
        let Some(spec) = self.sequence.as_ref() else {
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
    pub fn repeat(&self, received_at: DateTime<Utc>, dedup_key: &str, earlier: &[(&Event, &str)]) -> Repeat {
        let Some(spec) = self.sequence.as_ref() else {
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

/// Compiles `[sequence]`, reporting every problem in it.
pub(super) fn compile(spec: &SequenceSpec, span: Range<usize>, issue: &mut IssueSink<'_>) -> Option<Sequence> {
    let mut ok = true;
    let condition = |value: &toml::Value, key: &str, issue: &mut IssueSink<'_>| {
        let parsed = Condition::parse(value, Scope::Plugin, key).map_err(|e| issue(span.clone(), e.key, e.message));
        let parsed = parsed.ok()?;
        if parsed.fields().iter().any(|field| matches!(field, FieldRef::Seen(_))) {
            issue(span.clone(), key.to_owned(), "a sequence's own conditions cannot test `seen`".into());
            return None;
        }
        Some(parsed)
    };
    let when = condition(&spec.when, "sequence.when", issue);
    let begins = condition(&spec.begins, "sequence.begins", issue);
    let ends = match &spec.ends {
        None => None,
        Some(value) => {
            let parsed = condition(value, "sequence.ends", issue);
            ok &= parsed.is_some();
            parsed
        }
    };
    let mut seen = Vec::with_capacity(spec.seen.len());
    for (name, value) in &spec.seen {
        let key = format!("sequence.seen.{name}");
        if let Err(message) = check_seen_name(name) {
            issue(span.clone(), key, message);
            ok = false;
        } else if let Some(parsed) = condition(value, &key, issue) {
            seen.push((name.clone(), parsed));
        } else {
            ok = false;
        }
    }
    if spec.key.is_empty() {
        issue(span.clone(), "sequence.key".into(), "name at least one payload path that identifies a sequence".into());
        ok = false;
    }
    let key: Vec<Path> =
        spec.key.iter().filter_map(|p| super::compile::path(p, span.clone(), "sequence.key", issue)).collect();
    if key.len() != spec.key.len() {
        ok = false;
    }
    let within = match spec.within_secs {
        Some(0) => {
            issue(span, "sequence.within_secs".into(), "must be greater than 0".into());
            ok = false;
            DEFAULT_WITHIN
        }
        Some(secs) => Duration::from_secs(secs),
        None => DEFAULT_WITHIN,
    };
    let resends_within = Duration::from_secs(spec.resends_within_secs.unwrap_or(0));
    match (when, begins) {
        (Some(when), Some(begins)) if ok => Some(Sequence { when, key, begins, ends, resends_within, within, seen }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};
    use serde_json::json;

    use super::*;
    use crate::config::Source;
    use crate::event::EventId;
    use crate::vendor::{Normalized, VendorRegistry};

    fn jivo() -> std::sync::Arc<Vendor> {
        let (registry, issues) = VendorRegistry::embedded();
        assert!(issues.is_empty(), "{issues:#?}");
        registry.get("jivo").unwrap().clone()
    }

    /// A Jivo call_event of chat `chat` with this status, received `minutes_ago`.
    fn call(jivo: &Vendor, chat: serde_json::Value, status: &str, minutes_ago: i64) -> Normalized {
        let payload = json!({
            "event_name": "call_event", "widget_id": "2853", "chat_id": chat,
            "call": {"type": "incoming", "phone": "+14084987855", "status": status},
        });
        let at = Utc::now() - TimeDelta::minutes(minutes_ago);
        jivo.interpret(payload, None, b"{}", EventId::new(at), at).unwrap()
    }

    /// The `end` of chat 7 classified after `earlier` (oldest first, as they arrived).
    fn end_after(earlier: &[&str]) -> (String, Option<serde_json::Value>) {
        let jivo = jivo();
        let stored: Vec<Event> = earlier
            .iter()
            .enumerate()
            .rev()
            .map(|(i, status)| call(&jivo, json!(7), status, 10 - i as i64).event)
            .collect();
        let mut end = call(&jivo, json!(7), "end", 0);
        let sequence = end.sequence.clone().expect("a call_event with a chat belongs to a sequence");
        let seen = jivo.recall(&sequence, &stored);
        jivo.reclassify(&mut end.event, &seen);
        (end.event.kind.to_string(), end.event.fields.get("call.outcome").cloned())
    }

    #[test]
    fn an_end_is_missed_only_when_its_start_is_known_and_no_agent_answered() {
        let finished = ("call.finished".to_owned(), Some(json!("finished")));
        let missed = ("call.missed".to_owned(), Some(json!("missed")));
        assert_eq!(end_after(&["start"]), missed);
        assert_eq!(end_after(&["start", "client_connected"]), missed, "only an agent answers a call");
        assert_eq!(end_after(&["start", "agent_connected"]), finished);
        assert_eq!(end_after(&["start", "agent_connected", "client_connected"]), finished);
        // The walk stops at the start of this call: an earlier call's answer does not count.
        assert_eq!(end_after(&["start", "agent_connected", "end", "start"]), missed);
        // Without the start, nothing is known: the call stays as Jivo described it.
        assert_eq!(end_after(&[]), finished);
        assert_eq!(end_after(&["client_connected"]), finished);
    }

    #[test]
    fn a_sequence_is_keyed_by_vendor_widget_and_chat_whatever_their_type() {
        let jivo = jivo();
        let by_number = call(&jivo, json!(4398), "agent_connected", 0).sequence.unwrap();
        let by_text = call(&jivo, json!(" 4398"), "end", 0).sequence.unwrap();
        assert_eq!(by_number.key, by_text.key);
        assert_eq!(by_number.key, "jivo\u{1f}2853\u{1f}4398");
        assert!(!by_number.begins && call(&jivo, json!(4398), "start", 0).sequence.unwrap().begins);
        let within = by_text.since.signed_duration_since(Utc::now());
        assert!(
            (TimeDelta::hours(-6) - TimeDelta::seconds(5)..TimeDelta::hours(-6) + TimeDelta::seconds(5))
                .contains(&within)
        );
        assert!(call(&jivo, json!(null), "end", 0).sequence.is_none(), "no chat id, no sequence");
        let offline = json!({"event_name": "offline_message", "widget_id": "2853", "chat_id": 1, "message": "hi"});
        let now = Utc::now();
        assert!(jivo.interpret(offline, None, b"{}", EventId::new(now), now).unwrap().sequence.is_none());
    }

    #[test]
    fn a_start_knows_it_has_seen_nothing_yet() {
        let jivo = jivo();
        let start = call(&jivo, json!(1), "start", 0);
        let seen = jivo.recall(start.sequence.as_ref().unwrap(), &[]);
        assert_eq!(seen, Seen::Known([("agent_answered".to_owned(), false)].into()));
        assert_eq!(seen.get("agent_answered"), Some(json!(false)));
        assert_eq!(Seen::Unknown.get("agent_answered"), None);
    }

    /// What a repeat of the event at `index` of `history` (statuses, oldest first, a minute
    /// apart, the last a minute ago) is when it arrives `minutes_later` than now.
    fn repeat_of(jivo: &Vendor, history: &[&str], index: usize, minutes_later: i64) -> Repeat {
        let events: Vec<Normalized> = history
            .iter()
            .enumerate()
            .map(|(i, status)| call(jivo, json!(7), status, (history.len() - i) as i64))
            .collect();
        let key_of = |status: &str| if status == history[index] { "key:repeated" } else { "key:other" };
        let keyed: Vec<(&Event, &str)> =
            events.iter().zip(history).rev().map(|(n, status)| (&n.event, key_of(status))).collect();
        let at = Utc::now() + TimeDelta::minutes(minutes_later);
        jivo.repeat(at, "key:repeated", &keyed)
    }

    #[test]
    fn a_repeat_is_a_new_event_once_its_call_has_ended_or_another_begun() {
        let jivo = jivo();
        // The second call's start: the first call ended since its own start.
        assert_eq!(repeat_of(&jivo, &["start", "end"], 0, 0), Repeat::Anew);
        assert_eq!(repeat_of(&jivo, &["start", "agent_connected", "error"], 0, 0), Repeat::Anew);
        // The second call's end: a start has begun another call since the first call's end.
        assert_eq!(repeat_of(&jivo, &["start", "end", "start"], 1, 0), Repeat::Anew);
        // Jivo resending: the call is still going on, or nothing followed the end.
        assert_eq!(repeat_of(&jivo, &["start", "agent_connected"], 0, 0), Repeat::Resend);
        assert_eq!(repeat_of(&jivo, &["start", "end"], 1, 0), Repeat::Resend);
        // Within `resends_within_secs` of the original a repeat is always a resend.
        assert_eq!(repeat_of(&jivo, &["end", "start"], 0, -2), Repeat::Resend);
        assert_eq!(repeat_of(&jivo, &["start"], 0, -1), Repeat::Resend);
    }

    #[test]
    fn an_event_whose_key_the_sequence_has_not_seen_is_left_to_the_store() {
        let jivo = jivo();
        let start = call(&jivo, json!(7), "start", 1);
        assert_eq!(jivo.repeat(Utc::now(), "key:new", &[(&start.event, "key:start")]), Repeat::Unseen);
        assert_eq!(jivo.repeat(Utc::now(), "key:new", &[]), Repeat::Unseen);
    }

    fn compile_errors(sequence: &str, classify_when: &str) -> String {
        let text = format!(
            "event = {{ field = \"event_name\" }}\n\n[[classify]]\nwhen = {classify_when}\nkind = \"call.missed\"\n\n{sequence}"
        );
        let source = Source::embedded("plugins/calls.toml", &text);
        let issues = super::super::compile::compile(&source).expect_err("the plugin is broken");
        issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn a_broken_sequence_is_reported_with_its_line_and_key() {
        let good = "[sequence]\nwhen = { event = \"call\" }\nkey = [\"chat\"]\nbegins = { status = \"start\" }\nseen = { answered = { status = \"up\" } }\n";
        let cases = [
            (
                "",
                r#"{ "seen.answered" = false }"#,
                ":3 classify[0].when.seen.answered: `seen.answered` needs a `[sequence]`",
            ),
            (
                good,
                r#"{ "seen.transferred" = true }"#,
                ":3 classify[0].when.seen.transferred: `seen.transferred` is not one of `[sequence.seen]`: answered",
            ),
            (&good.replace("[\"chat\"]", "[]"), "{}", ":7 sequence.key: name at least one payload path"),
            (&good.replace("[\"chat\"]", "[\"a..b\"]"), "{}", ":7 sequence.key:"),
            (&format!("{good}within_secs = 0\n"), "{}", ":7 sequence.within_secs: must be greater than 0"),
            (
                &good.replace("status = \"start\"", "\"seen.answered\" = true"),
                "{}",
                ":7 sequence.begins: a sequence's own conditions cannot test `seen`",
            ),
            (
                &good.replace("answered =", "Answered ="),
                "{}",
                ":7 sequence.seen.Answered: `Answered` is not a name for `seen`",
            ),
            (&good.replace("begins", "starts"), "{}", "unknown field `starts`"),
            (&format!("{good}ends = {{ status = {{ nope = 1 }} }}\n"), "{}", ":7 sequence.ends"),
        ];
        for (sequence, when, expected) in cases {
            let shown = compile_errors(sequence, when);
            assert!(shown.contains(expected), "expected `{expected}` in:\n{shown}");
        }
    }
}
