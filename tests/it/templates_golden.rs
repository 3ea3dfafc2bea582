//! Every shipped template, rendered from every vendor fixture it applies to, in both languages,
//! with the escaping each destination uses; compared with `tests/golden/templates/<lang>/<name>.txt`.
//! `UPDATE_GOLDEN=1 cargo test` rewrites them; review the diff.
//!
//! Beyond the goldens, properties that must hold whatever the wording: a JSON body parses as
//! JSON, and hostile values (`<b>`, `&`, quotes) never reach Telegram or HTML unescaped.

use std::fmt::Write;
use std::path::Path;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use switchboard::body;
use switchboard::event::{Event, EventId};
use switchboard::plugin::VendorRegistry;
use switchboard::render::{Escape, HelperSettings, Part, TemplateSet, TemplateSource};

use crate::support::repo;

/// Which template serves which kinds (as the shipped config routes them).
const TEMPLATE_KINDS: &[(&str, &[&str])] = &[
    ("call", &["call.started", "call.answered", "call.missed", "call.finished", "callback.requested"]),
    ("missed_call", &["call.missed"]),
    ("call_finished", &["call.finished"]),
    ("callback_requested", &["callback.requested"]),
    ("offline_message", &["message.offline"]),
    ("reminder", &["call.missed", "callback.requested"]),
    ("chat", &["chat.accepted", "chat.updated", "chat.finished"]),
    ("chat_finished", &["chat.finished"]),
    ("lead", &["form.submitted"]),
    ("crm_deal", &["crm.deal.created", "crm.deal.updated", "crm.deal.deleted"]),
    ("crm_task", &["crm.task.created", "crm.task.completed", "crm.task.fired"]),
];

/// The escaping each part gets from the output that sends it.
fn escape_for(part: Part) -> Escape {
    match part {
        Part::Telegram => Escape::TelegramHtml,
        Part::Html => Escape::Html,
        Part::Body => Escape::JsonString,
        Part::Subject | Part::Text | Part::Buttons => Escape::Plain,
    }
}

fn fixture_events() -> Vec<(String, Event)> {
    let (registry, issues) = VendorRegistry::load_dir(&repo().join("plugins"));
    assert!(issues.is_empty());
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 15, 0).unwrap();
    let mut events = Vec::new();
    for vendor in ["jivo", "envybox", "callkeeper"] {
        let dir = repo().join("tests/fixtures").join(vendor);
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files.iter().filter(|p| !p.to_string_lossy().ends_with(".event.json")) {
            if file.file_name().unwrap().to_string_lossy().contains("huge") {
                continue; // 2,500 messages make an unreadable golden; the size is tested elsewhere
            }
            let raw = std::fs::read(file).unwrap();
            let plugin = registry.get(vendor).unwrap();
            let payload = match file.extension().and_then(|e| e.to_str()) {
                Some("query") => body::from_pairs(body::query_pairs(String::from_utf8(raw.clone()).unwrap().trim())),
                Some("form") => body::decode(body::BodyFormat::Form, None, raw.trim_ascii()).unwrap(),
                Some("multipart") => body::decode(
                    body::BodyFormat::Auto,
                    Some("multipart/form-data; boundary=switchboard-fixture"),
                    &raw,
                )
                .unwrap(),
                _ => body::decode(body::BodyFormat::Json, None, &raw).unwrap(),
            };
            let id: EventId = "01KAZ00000000000000000TEST".parse().unwrap();
            let event = plugin.interpret(payload, None, &raw, id, at).unwrap().event;
            events.push((format!("{vendor}/{}", file.file_name().unwrap().to_string_lossy()), event));
        }
    }
    events.push(("hostile".to_owned(), hostile_event()));
    events
}

fn hostile_event() -> Event {
    let mut fields = switchboard::event::Fields::default();
    fields.set("contact.name", json!("<b>Bold</b> & \"Quoted\" 'Name' 🙂"));
    fields.set("contact.phone", json!("+7 (999) 888-77-66"));
    fields.set("contact.email", json!("a&b@example.com"));
    fields.set("message", json!(format!("<script>alert(1)</script>\n{}", "Длинное сообщение. ".repeat(270))));
    fields.set("page.url", json!("https://example.com/?a=1&b=<2>"));
    fields.set("call.outcome", json!("Оператор \"занят\""));
    Event {
        id: "01KAZ00000000000000000TEST".parse().unwrap(),
        received_at: Utc.with_ymd_and_hms(2026, 11, 23, 9, 15, 0).unwrap(),
        vendor: "jivo".into(),
        event: "offline_message".into(),
        kind: switchboard::event::Kind::parse("message.offline").unwrap(),
        fields,
        payload: json!({"title": "<i>deal</i>", "deal_id": 7, "chat": {"messages": [{"message": "<b>hi</b>", "timestamp": 1665396476, "type": "visitor"}]}}),
    }
}

#[test]
fn every_shipped_template_renders_as_its_golden() {
    let events = fixture_events();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for language in ["ru", "en"] {
        let helpers = HelperSettings { timezone: chrono_tz::Europe::Moscow, english: language == "en" };
        let set = TemplateSet::load(&TemplateSource { dir: None, language: language.into(), helpers }).unwrap();
        let mut names: Vec<&str> = set.names().collect();
        names.sort_unstable();
        for name in names {
            let kinds: &[&str] = TEMPLATE_KINDS.iter().find(|(t, _)| *t == name).map_or(&[], |(_, k)| *k);
            let mut golden = String::new();
            let mut rendered_any = false;
            for (label, event) in &events {
                // The generic template is shown with one event per vendor, the others with the
                // events they serve; the hostile event goes through every template.
                let applies = if name == "generic" {
                    ["jivo/unknown_event.json", "envybox/unknown_type.form", "callkeeper/call_processing.json"]
                        .contains(&label.as_str())
                } else {
                    kinds.contains(&event.kind.as_str())
                };
                if !applies && label != "hostile" {
                    continue;
                }
                rendered_any = true;
                let context = switchboard::render::RenderContext::of_event(event);
                for part in set.parts(name).to_vec() {
                    let escape = escape_for(part);
                    let text = set.render(name, part, escape, &context).unwrap_or_else(|e| panic!("{e}"));
                    check_properties(name, label, part, &text, &mut failures);
                    writeln!(golden, "=== {label} · {part}\n{text}\n").unwrap();
                }
            }
            assert!(rendered_any, "{language}/{name} was rendered from no fixture");
            let path = repo().join("tests/golden/templates").join(language).join(format!("{name}.txt"));
            compare(&path, &golden, update, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check_properties(name: &str, label: &str, part: Part, text: &str, failures: &mut Vec<String>) {
    let here = format!("{name} · {label} · {part}");
    match part {
        Part::Body => {
            if let Err(error) = serde_json::from_str::<Value>(text) {
                failures.push(format!("{here}: the body is not JSON ({error}):\n{text}"));
            }
        }
        Part::Telegram | Part::Html => {
            for raw in ["<b>Bold</b>", "<script>", "<i>deal</i>", "<b>hi</b>", "b=<2>"] {
                if text.contains(raw) {
                    failures.push(format!("{here}: `{raw}` reached the output unescaped"));
                }
            }
        }
        Part::Subject => {
            if text.contains('\n') {
                failures.push(format!("{here}: a subject must be one line: {text:?}"));
            }
        }
        Part::Text => {}
        Part::Buttons => {
            for line in text.lines().filter(|line| !line.trim().is_empty()) {
                let url = line.split_once('|').map(|(_, url)| url.trim());
                if !url.is_some_and(|url| url.is_empty() || url.starts_with("http")) {
                    failures.push(format!("{here}: a button line is `label | url`: {line:?}"));
                }
            }
        }
    }
    if text.contains("{{") {
        failures.push(format!("{here}: an unrendered expression remains"));
    }
}

fn compare(path: &Path, rendered: &str, update: bool, failures: &mut Vec<String>) {
    if update {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, rendered).unwrap();
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == rendered => {}
        Ok(expected) => {
            let line = expected.lines().zip(rendered.lines()).position(|(a, b)| a != b).unwrap_or(0);
            failures.push(format!(
                "{} differs from line {}:\n  expected: {:?}\n  rendered: {:?}",
                path.display(),
                line + 1,
                expected.lines().nth(line),
                rendered.lines().nth(line)
            ));
        }
        Err(_) => failures.push(format!("{}: no golden file (run with UPDATE_GOLDEN=1)", path.display())),
    }
}

/// A card as the team moves it along: taken, tried, called back. Rendered from the envybox
/// missed-call fixture with the handling the desk records; docs/telegram.md shows these.
#[test]
fn cards_show_who_took_the_call_and_who_called_back() {
    use switchboard::event::handling::{CardEvent, Handling, Person, Status};
    let (_, event) = fixture_events()
        .into_iter()
        .find(|(label, _)| label == "envybox/call_info_missed_client_2.form")
        .expect("the fixture");
    let started = event.received_at - chrono::TimeDelta::minutes(2);
    let first = CardEvent {
        id: EventId::new(started),
        event: "callback_ordered".into(),
        kind: "callback.requested".into(),
        received_at: started,
    };
    let this = CardEvent {
        id: event.id,
        event: event.event.clone(),
        kind: event.kind.to_string(),
        received_at: event.received_at,
    };
    let olga = Person { id: 1, name: "Ольга".into() };
    let at = |minutes| Some(event.received_at + chrono::TimeDelta::minutes(minutes));
    let taken = Handling {
        card: first.id,
        status: Status::Taken,
        taken_by: Some(olga.clone()),
        taken_at: at(3),
        done_by: None,
        done_at: None,
        no_answers: 1,
        last_no_answer_at: at(5),
    };
    let done = Handling { status: Status::Done, done_by: Some(olga), done_at: at(9), ..taken.clone() };
    for (language, taken_line, tried_line, done_line, started_line) in [
        (
            "ru",
            "🙋 <b>Взял(а): Ольга</b>, 12:18",
            "📵 Не дозвонились: 1, последний раз в 12:20",
            "☑️ <b>Перезвонил(а): Ольга</b>, 12:24",
            "🕒 23.11.2026 12:13",
        ),
        (
            "en",
            "🙋 <b>Taken by Ольга</b>, 12:18",
            "📵 No answer: 1, last at 12:20",
            "☑️ <b>Called back by Ольга</b>, 12:24",
            "🕒 23.11.2026 12:13",
        ),
    ] {
        let helpers = HelperSettings { timezone: chrono_tz::Europe::Moscow, english: language == "en" };
        let set = TemplateSet::load(&TemplateSource { dir: None, language: language.into(), helpers }).unwrap();
        let render = |handling: &Handling| {
            let context = switchboard::render::RenderContext::of_card(
                event.clone(),
                Some(handling),
                &[first.clone(), this.clone()],
            );
            set.render("call", Part::Telegram, Escape::TelegramHtml, &context).unwrap()
        };
        let (on_taken, on_done) = (render(&taken), render(&done));
        assert!(on_taken.contains(taken_line) && on_taken.contains(tried_line), "{language}:\n{on_taken}");
        assert!(on_taken.contains(started_line), "dated from the call's start: {language}:\n{on_taken}");
        assert!(on_done.contains(done_line) && !on_done.contains(taken_line), "{language}:\n{on_done}");
    }
}
