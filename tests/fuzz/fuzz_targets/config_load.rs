//! Any `config.toml`: loaded with the shipped plugins and templates. Every problem must come
//! back as a listed issue, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use switchboard::config::{Config, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let source = Source::embedded("config.toml", text);
    let env = |name: &str| (name == "FUZZ_SET").then(|| "value".to_owned());
    if let Err(errors) = Config::from_source_with_env(&source, Path::new("/nonexistent"), &env) {
        assert!(!errors.0.is_empty(), "a refused config names at least one problem");
        let _ = errors.to_string();
    }
});
