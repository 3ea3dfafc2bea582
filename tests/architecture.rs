//! The architecture, and the test that holds the code to it.
//!
//! Dependencies between the top-level modules of `src/` point one way: down the pipeline, from
//! the wiring at the top to the data model at the bottom. [`ALLOWED`] is the whole list of
//! arrows, read as "module may use these"; it has no cycle, and the test below fails when the
//! code uses a module its row does not name (with the file and line), when a row names a module
//! the code no longer uses, or when a module is missing from the table.
//!
//! An arrow is a path through `crate::` (or `super::` up to the crate root) in code that is
//! compiled outside tests; comments, `tests.rs` files and `#[cfg(test)]` items do not count:
//! a test may build whatever fixtures it needs.

// Test code panics on purpose: an unreadable source file is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every top-level module, with the modules it may use. Layers, from the bottom:
///
/// 1. The data model and leaves that know nothing of ours: `event`, `diagnostics` (file:line
///    issues), `body` (request bodies as JSON), `secret`, `metrics`, `telemetry`, `server` (the
///    accept loop).
/// 2. Pure stages: `condition` (a rule's tests), `render` (templates), `router` (which routes take
///    an event), `plugin` (a vendor's plugin: request → event; its replies are templates).
/// 3. `store` (events and the delivery queue, durable) and `outputs` (a rendered message → a
///    destination), which know nothing of each other.
/// 4. The two drivers: `ingest` (HTTP → plugin → store) and `delivery` (store → router/render →
///    outputs). Each names what it reads of the configuration as a trait.
/// 5. `config`: reads `config.toml` and the plugins into every stage's settings, and provides the
///    drivers' traits.
/// 6. On top: `reload` (swaps the configuration), `inspect` (what the pipeline makes of an
///    event), `admin` (probes, metrics, the dashboard), `cli`, and `app` (the wiring).
const ALLOWED: &[(&str, &[&str])] = &[
    ("event", &[]),
    ("diagnostics", &[]),
    ("body", &[]),
    ("secret", &[]),
    ("metrics", &[]),
    ("telemetry", &[]),
    ("server", &[]),
    ("condition", &["event"]),
    ("render", &["diagnostics", "event"]),
    ("router", &["condition", "event"]),
    ("plugin", &["body", "condition", "diagnostics", "event", "render", "secret"]),
    ("store", &["body", "event", "metrics", "secret"]),
    ("outputs", &["render", "secret"]),
    ("ingest", &["body", "event", "metrics", "plugin", "router", "server", "store"]),
    ("delivery", &["event", "metrics", "outputs", "render", "router", "store"]),
    (
        "config",
        &[
            "condition",
            "delivery",
            "diagnostics",
            "event",
            "ingest",
            "outputs",
            "plugin",
            "render",
            "router",
            "secret",
            "store",
        ],
    ),
    ("reload", &["config", "metrics"]),
    ("inspect", &["config", "delivery", "event", "render", "router"]),
    (
        "admin",
        &[
            "config", "delivery", "event", "ingest", "inspect", "metrics", "plugin", "reload", "render", "secret",
            "store",
        ],
    ),
    ("cli", &["body", "config", "delivery", "event", "ingest", "inspect", "outputs", "render", "store", "telemetry"]),
    ("app", &["admin", "config", "delivery", "ingest", "metrics", "reload", "server", "store"]),
];

/// Where one module uses another.
#[derive(Debug)]
struct Use {
    file: PathBuf,
    line: usize,
}

#[test]
fn modules_depend_only_on_the_modules_their_row_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, BTreeSet<&str>> =
        ALLOWED.iter().map(|(module, uses)| (*module, uses.iter().copied().collect())).collect();
    let found = arrows(&src);

    let mut problems = Vec::new();
    for module in top_level_modules(&src) {
        if !allowed.contains_key(module.as_str()) {
            problems.push(format!("src/{module} is not in the table: add its row to ALLOWED"));
        }
    }
    for ((from, to), uses) in &found {
        if !allowed.get(from.as_str()).is_some_and(|row| row.contains(to.as_str())) {
            let at: Vec<String> = uses.iter().map(|u| format!("{}:{}", u.file.display(), u.line)).collect();
            problems.push(format!("{from} → {to} is not allowed ({})", at.join(", ")));
        }
    }
    for (from, row) in &allowed {
        for to in row {
            if !found.contains_key(&((*from).to_owned(), (*to).to_owned())) {
                problems.push(format!("{from} → {to} is in the table but not in the code: take it out"));
            }
        }
    }
    assert!(problems.is_empty(), "the architecture does not hold:\n  {}", problems.join("\n  "));
}

#[test]
fn the_table_has_no_cycle() {
    let rows: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    // Depth-first, with the path so far: a module met again on its own path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        rows: &BTreeMap<&'a str, &'a [&'a str]>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(start) = path.iter().position(|m| *m == module) {
            panic!("cycle: {} → {module}", path[start..].join(" → "));
        }
        if !done.insert(module) {
            return;
        }
        path.push(module);
        for next in rows.get(module).copied().unwrap_or_default() {
            visit(next, rows, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in rows.keys() {
        visit(module, &rows, &mut Vec::new(), &mut done);
    }
    for (module, uses) in &rows {
        assert!(!uses.contains(module), "{module} lists itself");
        for used in *uses {
            assert!(rows.contains_key(used), "{module} uses {used}, which has no row");
        }
    }
}

#[test]
fn the_scanner_sees_every_form_of_path() {
    let text = "use crate::event::Event;\nuse crate::{body, plugin::{Vendor, reply}};\n\
                // crate::admin in a comment\nfn f() { crate::store::open(); super::render::x(); }\n\
                #[cfg(test)]\nmod tests { use crate::config::Config; }\n\
                mod views { super::super::admin::x!(); super::sibling(); }\nlet quote = '\"'; // crate::cli\n";
    let found: BTreeSet<String> = references(&strip(text), 1).into_iter().map(|(module, _)| module).collect();
    let want: BTreeSet<String> = ["event", "body", "plugin", "store", "render", "admin"].map(String::from).into();
    assert_eq!(found, want);
    // Two modules down, one `super::` is a sibling, not the crate root.
    assert!(references("use super::sibling;", 2).is_empty());
}

fn top_level_modules(src: &Path) -> BTreeSet<String> {
    fs::read_dir(src)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            if path.is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs").filter(|stem| !matches!(*stem, "lib" | "main")).map(str::to_owned)
            }
        })
        .collect()
}

/// Every arrow between two top-level modules, with where it is used.
fn arrows(src: &Path) -> BTreeMap<(String, String), Vec<Use>> {
    let mut found: BTreeMap<(String, String), Vec<Use>> = BTreeMap::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).unwrap().to_path_buf();
        let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let from = parts[0].trim_end_matches(".rs").to_owned();
        if matches!(from.as_str(), "lib" | "main") || parts.iter().any(|p| p == "tests.rs" || p == "tests") {
            continue;
        }
        // How many `super::` reach the crate root: src/a.rs and src/a/mod.rs are one down,
        // src/a/b.rs two.
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
        let text = strip(&fs::read_to_string(&file).unwrap());
        for (to, line) in references(&text, depth) {
            if to != from {
                found.entry((from.clone(), to)).or_default().push(Use { file: relative.clone(), line });
            }
        }
    }
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The text with comments and `#[cfg(test)]` items blanked out, newlines kept so lines count.
fn strip(text: &str) -> String {
    let mut out: Vec<char> = text.chars().collect();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    // Line comments (doc comments too); a `//` inside a string literal is rare enough in this
    // code that losing the rest of such a line cannot hide a path.
    let mut i = 0;
    let mut in_string = false;
    while i < out.len() {
        match out[i] {
            // A quote opens or closes a string unless escaped or a char literal (`'"'`).
            '"' if i == 0 || (out[i - 1] != '\\' && !(out[i - 1] == '\'' && out.get(i + 1) == Some(&'\''))) => {
                in_string = !in_string;
            }
            '/' if !in_string && out.get(i + 1) == Some(&'/') => {
                let end = out[i..].iter().position(|c| *c == '\n').map_or(out.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // `#[cfg(test)]` and the item after it: to its `;`, or through its braces.
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= out.len() {
        if out[i..i + marker.len()] != marker[..] {
            i += 1;
            continue;
        }
        let mut j = i + marker.len();
        while j < out.len() && out[j] != ';' && out[j] != '{' {
            j += 1;
        }
        if j < out.len() && out[j] == '{' {
            let mut depth = 0;
            while j < out.len() {
                match out[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        let end = (j + 1).min(out.len());
        blank(&mut out, i, end);
        i = end;
    }
    out.into_iter().collect()
}

/// The spans of inline `mod name { … }` blocks.
fn inline_modules(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for (at, _) in text.match_indices("mod ") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + 4..];
        let name_len = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').count();
        if name_len == 0 || !rest[name_len..].trim_start().starts_with('{') {
            continue;
        }
        let open = at + 4 + name_len + rest[name_len..].find('{').unwrap_or(0);
        let mut level = 0;
        for (offset, c) in text[open..].char_indices() {
            match c {
                '{' => level += 1,
                '}' => {
                    level -= 1;
                    if level == 0 {
                        spans.push((open, open + offset));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    spans
}

/// The top-level modules a file's text names, each with its line: `crate::x`, `crate::{x, y::z}`,
/// and `super::x` (or `super::{…}`) where `depth` supers reach the crate root.
fn references(text: &str, depth: usize) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut roots = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let before = text[..at].chars().next_back();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            roots.push(at + "crate::".len());
        }
    }
    // `super::` climbs one module; inline `mod name { … }` blocks are modules too.
    let inline = inline_modules(text);
    for (at, _) in text.match_indices("super::") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let climbs = text[at..].len() - text[at..].trim_start_matches("super::").len();
        let climbs = climbs / "super::".len();
        let nesting = depth + inline.iter().filter(|(open, close)| *open < at && at < *close).count();
        if climbs >= nesting {
            roots.push(at + climbs * "super::".len());
        }
    }
    for start in roots {
        let rest = &text[start..];
        if let Some(group) = rest.strip_prefix('{') {
            // The names at the group's first level: before `::`, `,` or the closing brace.
            let mut level = 0;
            let mut name = String::new();
            let mut expecting_name = true;
            for c in group.chars() {
                if level == 0 && expecting_name && (c.is_alphanumeric() || c == '_') {
                    name.push(c);
                    continue;
                }
                if level == 0 && !name.is_empty() {
                    found.push((std::mem::take(&mut name), line_of(start)));
                    expecting_name = false;
                }
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => break,
                    '}' => level -= 1,
                    ',' if level == 0 => expecting_name = true,
                    _ => {}
                }
            }
            if !name.is_empty() {
                found.push((name, line_of(start)));
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.push((name, line_of(start)));
            }
        }
    }
    // `self` in a group (`crate::{self, …}`) is no module.
    found.retain(|(name, _)| name != "self");
    found
}
