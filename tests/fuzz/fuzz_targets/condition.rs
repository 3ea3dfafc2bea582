//! The condition language: any TOML `when` table, parsed in both scopes and evaluated.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use switchboard::condition::{Condition, Scope};
use switchboard::router::EventFacts;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(document) = text.parse::<toml::Table>() else { return };
    let Some(when) = document.get("when") else { return };
    let event = common::sample_event();
    for scope in [Scope::Route, Scope::Plugin] {
        if let Ok(condition) = Condition::parse(when, scope, "when") {
            let facts = EventFacts(&event);
            let matched = condition.matches(&facts);
            // `explain` must agree with `matches`: it is what the dashboard shows.
            assert_eq!(matched, condition.explain(&facts).is_ok(), "{text}");
        }
    }
});
