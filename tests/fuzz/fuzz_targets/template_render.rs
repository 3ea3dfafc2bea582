//! Any template file: compiled like a user's `templates/<name>.hbs`, then each part rendered in
//! every escaping against a real event. Syntax errors are reported; nothing panics.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchboard::render::{Escape, HelperSettings, Part, TemplateSet, TemplateSource};

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    std::fs::write(dir().path().join("fuzz.hbs"), text).expect("write the template");
    let source =
        TemplateSource { dir: Some(dir().path().to_owned()), language: "en".into(), helpers: HelperSettings { timezone: chrono_tz::UTC, english: true } };
    let Ok(templates) = TemplateSet::load(&source) else { return };
    let context = switchboard::render::RenderContext::of_event(&common::sample_event());
    for part in Part::ALL {
        for escape in Escape::ALL {
            let _ = templates.render("fuzz", part, escape, &context);
        }
    }
});
