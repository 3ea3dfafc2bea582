//! The dashboard's page templates, compiled once into one handlebars registry. Handlebars
//! HTML-escapes every `{{value}}`, so a payload's markup shows as text; only the layout takes
//! the already rendered page body with `{{{body}}}`.

use std::sync::OnceLock;

use handlebars::Handlebars;
use serde_json::{Value, json};

const PAGES: &[(&str, &str)] = &[
    ("layout", include_str!("pages/layout.hbs")),
    ("events", include_str!("pages/events.hbs")),
    ("event", include_str!("pages/event.hbs")),
    ("dead", include_str!("pages/dead.hbs")),
    ("rejected", include_str!("pages/rejected.hbs")),
    ("status", include_str!("pages/status.hbs")),
    ("error", include_str!("pages/error.hbs")),
];

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(false);
        for (name, text) in PAGES {
            // The templates are part of the binary and a unit test renders each one.
            registry.register_template_string(name, *text).expect("dashboard templates compile");
        }
        registry
    })
}

/// A whole page: `page`'s template with `data`, inside the layout. `active` names the
/// navigation entry to highlight.
pub(super) fn render_page(page: &str, title: &str, active: &str, data: &Value) -> String {
    let registry = registry();
    let body = registry.render(page, data).unwrap_or_else(|error| {
        tracing::error!(message = "A dashboard page failed to render.", page, %error);
        format!("<p class=\"error\">This page failed to render: {}</p>", html_escape(&error.to_string()))
    });
    let notice = data.get("notice").cloned().unwrap_or(Value::Null);
    let zone = data.get("zone").and_then(Value::as_str).unwrap_or("UTC");
    let layout = json!({
        "title": title, "active": active, "body": body, "notice": notice, "version": env!("CARGO_PKG_VERSION"),
        "zone": zone,
    });
    registry.render("layout", &layout).unwrap_or(body)
}

fn html_escape(text: &str) -> String {
    handlebars::html_escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_and_escapes_what_it_shows() {
        for (page, _) in PAGES.iter().filter(|(name, _)| *name != "layout") {
            let html = render_page(page, "<b>title</b>", page, &json!({ "notice": "<script>x</script>" }));
            assert!(html.contains("<title>&lt;b&gt;title&lt;/b&gt; · Switchboard</title>"), "{page}: {html}");
            assert!(html.contains("&lt;script&gt;x&lt;/script&gt;") && !html.contains("<script>x"), "{page}");
        }
    }

    #[test]
    fn the_event_page_says_what_its_sequence_showed() {
        let flags = json!([{"name": "agent_answered", "seen": false}]);
        let cases = [
            (json!({"grouped": true, "begins": false, "known": true, "flags": flags}), "agent_answered: no"),
            (json!({"grouped": true, "begins": false, "known": false}), "is unknown"),
            (
                json!({"grouped": true, "begins": true, "known": true, "flags": flags}),
                "This event begins the sequence.",
            ),
            (json!({"grouped": false}), "no longer puts it in a sequence"),
        ];
        for (mut sequence, expected) in cases {
            sequence["key"] = json!("jivo · 2853 · 4398");
            sequence["events"] =
                json!([{"id": "01X", "time": "t", "event": "call_event", "kind": "call.missed", "current": true}]);
            let html = render_page("event", "e", "events", &json!({ "sequence": sequence }));
            assert!(html.contains(expected) && html.contains("jivo · 2853 · 4398"), "{expected}: {html}");
        }
        assert!(!render_page("event", "e", "events", &json!({})).contains("Its sequence"));
    }
}
