use std::borrow::Cow;

use serde_json::{Value, json};

use super::*;

/// Facts for tests: `vendor`/`event`/`kind` and canonical fields come from `fields`, payload paths
/// from `payload`.
struct Sample {
    fields: Value,
    payload: Value,
}

impl Facts for Sample {
    fn lookup(&self, field: &FieldRef) -> Option<Cow<'_, Value>> {
        let found = match field {
            FieldRef::Vendor => self.fields.get("vendor"),
            FieldRef::Event => self.fields.get("event"),
            FieldRef::Kind => self.fields.get("kind"),
            FieldRef::Field(name) => self.fields.get(*name),
            FieldRef::Payload(path) => path.get(&self.payload),
            FieldRef::Seen(name) => self.fields.get(format!("seen.{name}")),
        };
        found.map(Cow::Borrowed)
    }
}

fn sample() -> Sample {
    Sample {
        fields: json!({
            "vendor": "envybox", "event": "call_info", "kind": "call.finished",
            "contact.phone": "+79998887766", "call.duration_s": 0, "call.outcome": "",
            "seen.answered": false,
        }),
        payload: json!({
            "call_state": "Клиент не взял трубку", "call_duration": "0", "visitor_id": "662654972",
            "tags": ["new", "vip"], "managers_phones": [{"phone": "79999999999"}], "nothing": null,
        }),
    }
}

fn when(text: &str, scope: Scope) -> Result<Condition, ConditionError> {
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("when = {text}")).unwrap()["when"].clone();
    Condition::parse(&value, scope, "when")
}

#[test]
fn each_operator_decides_as_documented() {
    let facts = sample();
    let table: &[(&str, bool)] = &[
        (r#"{ event = "call_info" }"#, true),
        (r#"{ event = "call_started" }"#, false),
        (r#"{ call_state = { not = "Состоялся разговор" } }"#, true),
        (r#"{ call_state = { ne = "Клиент не взял трубку" } }"#, false),
        (r#"{ event = ["call_started", "call_info"] }"#, true),
        (r#"{ event = { in = ["a", "b"] } }"#, false),
        (r#"{ event = { not_in = ["a", "b"] } }"#, true),
        (r#"{ "contact.phone" = { regex = '^\+7999' } }"#, true),
        (r#"{ "contact.phone" = { regex = '^8' } }"#, false),
        (r#"{ kind = { glob = "call.*" } }"#, true),
        (r#"{ kind = { glob = "chat.*" } }"#, false),
        (r#"{ "contact.phone" = { exists = true } }"#, true),
        (r#"{ "contact.email" = { exists = false } }"#, true),
        (r#"{ "call.outcome" = { exists = false } }"#, true),
        (r#"{ nothing = { exists = false } }"#, true),
        (r#"{ "call.duration_s" = { "<" = 1 } }"#, true),
        (r#"{ "call.duration_s" = { lte = 0 } }"#, true),
        (r#"{ "call.duration_s" = { gt = 0 } }"#, false),
        (r#"{ call_duration = { ">=" = 0, "<" = 0.5 } }"#, true),
        (r#"{ call_duration = 0 }"#, true),
        (r#"{ visitor_id = 662654972 }"#, true),
        (r#"{ "payload.visitor_id" = "662654972" }"#, true),
        (r#"{ tags = "vip" }"#, true),
        (r#"{ "managers_phones.0.phone" = "79999999999" }"#, true),
        (r#"{ call_state = { gt = 1 } }"#, false),
        (r#"{ missing = { lt = 1 } }"#, false),
        (r#"{ missing = { ne = "x" } }"#, true),
        (r#"{ all = [ { event = "call_info" }, { kind = "call.finished" } ] }"#, true),
        (r#"{ any = [ { event = "nope" }, { kind = "call.finished" } ] }"#, true),
        (r#"{ any = [] }"#, false),
        (r#"{ all = [] }"#, true),
        (r#"{ not = { event = "call_info" } }"#, false),
        (r#"{ event = "call_info", kind = "call.missed" }"#, false),
        // `seen`: known false is not absent, and a flag never recalled is absent.
        (r#"{ "seen.answered" = false }"#, true),
        (r#"{ "seen.answered" = true }"#, false),
        (r#"{ "seen.answered" = { exists = true } }"#, true),
        (r#"{ "seen.transferred" = false }"#, false),
        (r#"{ "seen.transferred" = { exists = false } }"#, true),
    ];
    for (text, expected) in table {
        let condition = when(text, Scope::Plugin).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(condition.matches(&facts), *expected, "{text}");
        assert_eq!(condition.explain(&facts).is_ok(), *expected, "explain disagrees on {text}");
    }
}

#[test]
fn explain_names_the_failing_test() {
    let condition = when(r#"{ event = "call_info", "call.duration_s" = { gt = 10 } }"#, Scope::Route).unwrap();
    assert_eq!(condition.explain(&sample()).unwrap_err().0, "call.duration_s is `0`, wanted > 10");
    let condition = when(r#"{ "contact.email" = "a@b" }"#, Scope::Route).unwrap();
    assert_eq!(condition.explain(&sample()).unwrap_err().0, "contact.email is absent, wanted `a@b`");
}

#[test]
fn compile_errors_name_the_key_and_the_accepted_set() {
    let cases: &[(&str, Scope, &str)] = &[
        (
            r#"{ event = { nott = "x" } }"#,
            Scope::Plugin,
            "when.event.nott: unknown operator `nott`; expected one of eq, ne (or not),",
        ),
        (r#"{ event = { regex = "(" } }"#, Scope::Plugin, "when.event.regex: invalid regex"),
        (
            r#"{ call_state = "x" }"#,
            Scope::Route,
            "when.call_state: unknown field `call_state`; expected vendor, event, kind,",
        ),
        (r#"{ any = { event = "x" } }"#, Scope::Plugin, "when.any: expected a list of tables, found table"),
        (
            r#"{ "call.duration_s" = { gt = "ten" } }"#,
            Scope::Route,
            "when.call.duration_s.gt: expected a number, found string",
        ),
        (r#"{ event = { exists = "yes" } }"#, Scope::Route, "when.event.exists: expected true or false"),
        (r#""x""#, Scope::Route, "when: expected a table of conditions, found string"),
        // Only a plugin knows what its sequences have seen.
        (r#"{ "seen.answered" = false }"#, Scope::Route, "when.seen.answered: unknown field `seen.answered`"),
        (
            r#"{ "seen.Agent-Answered" = false }"#,
            Scope::Plugin,
            "when.seen.Agent-Answered: `Agent-Answered` is not a name",
        ),
    ];
    for (text, scope, expected) in cases {
        let error = when(text, *scope).expect_err(text).to_string();
        assert!(error.starts_with(expected), "{text}: got {error}");
    }
}

#[test]
fn glob_matches_whole_strings() {
    let cases = [
        ("crm.deal.*", "crm.deal.created", true),
        ("crm.deal.*", "crm.task.created", false),
        ("*.missed", "call.missed", true),
        ("call.?issed", "call.missed", true),
        ("call", "call.missed", false),
        ("*", "", true),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        // Non-ASCII text: `?` is one character, not one byte.
        ("?нна", "Анна", true),
        ("*дар", "Краснодар", true),
        ("Крас?", "Краснодар", false),
        ("Анна", "Анна", true),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(Glob::new(pattern).matches(text), expected, "{pattern} ~ {text}");
    }
}
