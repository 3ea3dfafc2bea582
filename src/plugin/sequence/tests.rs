//! The sequence rules against the shipped Jivo plugin: what a call's earlier events showed, whether
//! a repeat is a resend or a new call, and how a broken `[sequence]` is reported.

use chrono::{TimeDelta, Utc};
use serde_json::json;

use super::*;
use crate::diagnostics::Source;
use crate::event::EventId;
use crate::plugin::{Normalized, VendorRegistry};

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
        (TimeDelta::hours(-6) - TimeDelta::seconds(5)..TimeDelta::hours(-6) + TimeDelta::seconds(5)).contains(&within)
    );
    assert!(call(&jivo, json!(null), "end", 0).sequence.is_none(), "no chat id, no sequence");
    let offline = json!({"event_name": "offline_message", "widget_id": "2853", "chat_id": 1, "message": "hi"});
    let now = Utc::now();
    assert!(jivo.interpret(offline, None, b"{}", EventId::new(now), now).unwrap().sequence.is_none());
}

/// A Jivo chat event of chat `chat`.
fn chat(jivo: &Vendor, event: &str, chat: u64) -> Normalized {
    let payload = json!({"event_name": event, "widget_id": "2853", "chat_id": chat, "visitor": {"name": "Анна"}});
    let now = Utc::now();
    jivo.interpret(payload, None, b"{}", EventId::new(now), now).unwrap()
}

#[test]
fn a_chat_is_a_sequence_of_its_own_beside_the_calls_of_the_same_chat() {
    let jivo = jivo();
    let accepted = chat(&jivo, "chat_accepted", 4398).sequence.expect("a chat is a sequence");
    assert_eq!(accepted.key, "jivo/chat\u{1f}2853\u{1f}4398");
    assert!(accepted.begins);
    let finished = chat(&jivo, "chat_finished", 4398).sequence.unwrap();
    assert_eq!(finished.key, accepted.key);
    assert!(!finished.begins);
    let call = call(&jivo, json!(4398), "start", 0).sequence.unwrap();
    assert_ne!(call.key, accepted.key, "a call in a chat is not the chat");
    // What a chat saw is its own: no call flag is known to it.
    assert_eq!(jivo.recall(&accepted, &[]), Seen::Known(BTreeMap::new()));
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
    let sequence = events[0].sequence.as_ref().unwrap();
    jivo.repeat(sequence, at, "key:repeated", &keyed)
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
    let sequence = start.sequence.as_ref().unwrap();
    assert_eq!(jivo.repeat(sequence, Utc::now(), "key:new", &[(&start.event, "key:start")]), Repeat::Unseen);
    assert_eq!(jivo.repeat(sequence, Utc::now(), "key:new", &[]), Repeat::Unseen);
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
        (&good.replace("[\"chat\"]", "[]"), "{}", ":9 sequence.key: name at least one payload path"),
        (&good.replace("[\"chat\"]", "[\"a..b\"]"), "{}", ":9 sequence.key:"),
        (&format!("{good}within_secs = 0\n"), "{}", ":12 sequence.within_secs: must be greater than 0"),
        (
            &good.replace("status = \"start\"", "\"seen.answered\" = true"),
            "{}",
            ":10 sequence.begins: a sequence's own conditions cannot test `seen`",
        ),
        (
            &good.replace("answered =", "Answered ="),
            "{}",
            ":7 sequence.seen.Answered: `Answered` is not a name for `seen`",
        ),
        (&good.replace("begins", "starts"), "{}", "unknown field `starts`"),
        (&format!("{good}ends = {{ status = {{ nope = 1 }} }}\n"), "{}", ":7 sequence.ends"),
        (&good.replace("[sequence]", "[sequences.Chat]"), "{}", ":7 sequences.Chat: a sequence's name is lowercase"),
        (
            &good.replace("[sequence]", "[sequences.chat]").replace("[\"chat\"]", "[]"),
            "{}",
            ":9 sequences.chat.key: name at least one payload path",
        ),
    ];
    for (sequence, when, expected) in cases {
        let shown = compile_errors(sequence, when);
        assert!(shown.contains(expected), "expected `{expected}` in:\n{shown}");
    }
}

#[test]
fn a_named_sequence_lends_its_seen_flags_to_classify() {
    let text = "event = { field = \"event_name\" }\n\n[[classify]]\nwhen = { \"seen.answered\" = false }\nkind = \"call.missed\"\n\n\
                [sequences.call]\nwhen = { event = \"call\" }\nkey = [\"chat\"]\nbegins = { status = \"start\" }\nseen = { answered = { status = \"up\" } }\n";
    let source = Source::embedded("plugins/calls.toml", text);
    let vendor = super::super::compile::compile(&source).expect("a named sequence is a sequence");
    let now = Utc::now();
    let start = json!({"event_name": "call", "chat": 5, "status": "start"});
    let start = vendor.interpret(start, None, b"{}", EventId::new(now), now).unwrap();
    assert_eq!(start.sequence.as_ref().unwrap().key, "calls/call\u{1f}5");
    let end = json!({"event_name": "call", "chat": 5, "status": "end"});
    let mut end = vendor.interpret(end, None, b"{}", EventId::new(now), now).unwrap();
    let seen = vendor.recall(end.sequence.as_ref().unwrap(), [&start.event]);
    vendor.reclassify(&mut end.event, &seen);
    assert_eq!(end.event.kind.to_string(), "call.missed");
}
