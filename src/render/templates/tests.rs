use std::path::Path;

use serde_json::json;

use super::*;

fn settings() -> HelperSettings {
    HelperSettings { timezone: chrono_tz::Europe::Moscow, english: false }
}

fn load_dir(dir: Option<&Path>, language: &str) -> Result<TemplateSet, Vec<ConfigIssue>> {
    TemplateSet::load(&TemplateSource {
        dir: dir.map(Path::to_path_buf),
        language: language.into(),
        helpers: settings(),
    })
}

#[test]
fn the_embedded_list_is_exactly_the_templates_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut on_disk = Vec::new();
    for language in ["en", "ru"] {
        for entry in std::fs::read_dir(root.join(language)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            on_disk.push((language.to_owned(), path.file_stem().unwrap().to_str().unwrap().to_owned(), text));
        }
    }
    on_disk.sort();
    let mut embedded: Vec<(String, String, String)> =
        EMBEDDED_TEMPLATES.iter().map(|(l, n, t)| ((*l).into(), (*n).into(), (*t).into())).collect();
    embedded.sort();
    assert_eq!(embedded, on_disk, "src/render/templates/embedded_list.rs is out of date with templates/");
}

#[test]
fn both_shipped_sets_compile_with_the_same_templates_and_parts() {
    let ru = load_dir(None, "ru").unwrap_or_else(|e| panic!("{e:#?}"));
    let en = load_dir(None, "en").unwrap_or_else(|e| panic!("{e:#?}"));
    let names: Vec<&str> = ru.names().collect();
    assert_eq!(names, en.names().collect::<Vec<_>>());
    for name in names {
        assert_eq!(ru.parts(name), en.parts(name), "{name}");
        assert!(ru.parts(name).contains(&Part::Text), "{name} has a text part");
    }
}

#[test]
fn parts_split_at_markers_and_a_plain_file_is_text() {
    let parts =
        split_parts("{{!-- about --}}\n{{!-- part: telegram --}}\n<b>hi</b>\n{{!--part:subject--}}\nSubj\n").unwrap();
    assert_eq!(parts, vec![(Part::Telegram, "<b>hi</b>\n".to_owned(), 3), (Part::Subject, "Subj\n".to_owned(), 5)]);
    assert_eq!(split_parts("just {{text}}\n").unwrap(), vec![(Part::Text, "just {{text}}\n".to_owned(), 1)]);
    assert_eq!(
        split_parts("{{!-- part: sms --}}\n").unwrap_err().to_string(),
        "unknown part `sms`; expected one of telegram, subject, text, html, body, buttons"
    );
    assert_eq!(
        split_parts("{{!-- part: text --}}\na\n{{!-- part: text --}}\nb\n").unwrap_err().to_string(),
        "part `text` appears twice"
    );
}

#[test]
fn user_templates_override_and_add_and_problems_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("missed_call.hbs"), "MINE {{contact.phone}}").unwrap();
    std::fs::write(dir.path().join("custom.hbs"), "{{!-- part: telegram --}}\n{{upper contact.name}}").unwrap();
    std::fs::create_dir(dir.path().join("partials")).unwrap();
    std::fs::write(dir.path().join("partials/sig.hbs"), "— {{vendor}}").unwrap();
    std::fs::write(dir.path().join("signed.hbs"), "hello {{> sig}}").unwrap();
    let set = load_dir(Some(dir.path()), "ru").unwrap_or_else(|e| panic!("{e:#?}"));
    let context = json!({"contact": {"phone": "+7", "name": "анна"}, "vendor": "jivo"}).into();
    assert_eq!(set.render("missed_call", Part::Text, Escape::Plain, &context).unwrap(), "MINE +7");
    assert_eq!(set.render("custom", Part::Telegram, Escape::TelegramHtml, &context).unwrap(), "АННА");
    assert_eq!(set.render("signed", Part::Text, Escape::Plain, &context).unwrap(), "hello — jivo");
    assert!(set.contains("lead"), "shipped templates stay available");

    std::fs::write(dir.path().join("broken.hbs"), "{{!-- part: text --}}\nfine\n{{/if}} stray\n").unwrap();
    std::fs::write(dir.path().join("helpless.hbs"), "{{fancy contact.phone}} {{#each (sorted list)}}{{/each}}")
        .unwrap();
    let issues = load_dir(Some(dir.path()), "ru").unwrap_err();
    let messages: Vec<String> = issues.iter().map(ToString::to_string).collect();
    let helpless = dir.path().join("helpless.hbs").display().to_string();
    // On the file's own line: the part begins on line 2, the stray closing tag is on line 3.
    let broken = dir.path().join("broken.hbs").display().to_string();
    assert!(messages.iter().any(|m| m.starts_with(&format!("{broken}:3 part text: "))), "{messages:#?}");
    assert!(
        messages.iter().any(|m| m.starts_with(&helpless) && m.contains("helper `fancy`, which does not exist")),
        "{messages:#?}"
    );
    assert!(messages.iter().any(|m| m.contains("helper `sorted`")), "{messages:#?}");
}

#[test]
fn values_are_escaped_for_the_destination_and_triple_braces_stay_raw() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.hbs"), "{{message}}|{{{message}}}").unwrap();
    let set = load_dir(Some(dir.path()), "ru").unwrap();
    let context = json!({"message": "<b>\"A&B\"</b>"}).into();
    let render = |escape| set.render("t", Part::Text, escape, &context).unwrap();
    assert_eq!(render(Escape::TelegramHtml), "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;|<b>\"A&B\"</b>");
    assert_eq!(render(Escape::JsonString), "<b>\\\"A&B\\\"</b>|<b>\"A&B\"</b>");
    assert_eq!(render(Escape::Plain), "<b>\"A&B\"</b>|<b>\"A&B\"</b>");
}

#[test]
fn missing_fields_render_empty_and_never_fail() {
    let set = load_dir(None, "ru").unwrap();
    for name in set.names().map(str::to_owned).collect::<Vec<_>>() {
        for part in set.parts(&name).to_vec() {
            let rendered = set.render(&name, part, Escape::Plain, &json!({}).into());
            assert!(rendered.is_ok(), "{name}#{part}: {rendered:?}");
        }
    }
}
