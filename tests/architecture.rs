//! The architecture, and the test that holds the code to it.
//!
//! Dependencies between the top-level modules of `src/` point one way: down the pipeline, from
//! the wiring at the top to the data model at the bottom. [`ALLOWED`] is the whole list of
//! arrows, read as "module may use these"; it has no cycle, and the test below fails when the
//! code uses a module its row does not name (with the file and line), when a row names a module
//! the code no longer uses, or when a module is missing from the table.
//!
//! An arrow is a path through `crate::` (or `$crate::`, or `super::` up to the crate root) in
//! code that is compiled outside tests, read from the files' tokens; comments, strings,
//! `tests.rs` files and `#[cfg(test)]` items, fields and variants do not count: a test may
//! build whatever fixtures it needs. `src/lib.rs` only declares the modules, and a test holds it
//! to that.

// Test code panics on purpose: an unreadable source file is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Every top-level module, with the modules it may use. Layers, from the bottom:
///
/// 1. The data model and leaves that know nothing of ours: `event`, `diagnostics` (file:line
///    issues), `body` (request bodies as JSON), `secret`, `metrics`, `telemetry`, `server` (the
///    accept loop), `systemd` (the service manager's notifications).
/// 2. Pure stages: `condition` (a rule's tests), `render` (templates), `router` (which routes take
///    an event), `plugin` (a vendor's plugin: request → event; its replies are templates).
/// 3. `store` (events and the delivery queue, durable) and `outputs` (a rendered message → a
///    destination), which know nothing of each other.
/// 4. The two drivers: `ingest` (HTTP → plugin → store) and `delivery` (store → router/render →
///    outputs). Each names what it reads of the configuration as a trait.
/// 5. `config`: reads `config.toml` and the plugins into every stage's settings, and provides the
///    drivers' traits.
/// 6. On top, in this order, each free to use those before it: `reload` (swaps the
///    configuration), `inspect` (what the pipeline makes of an event), `admin` (probes,
///    metrics, the dashboard), `cli`, and `app` (the wiring).
const ALLOWED: &[(&str, &[&str])] = &[
    ("event", &[]),
    ("diagnostics", &[]),
    ("body", &[]),
    ("secret", &[]),
    ("metrics", &[]),
    ("telemetry", &[]),
    ("server", &[]),
    ("systemd", &[]),
    ("condition", &["event"]),
    ("render", &["diagnostics", "event"]),
    ("router", &["condition", "event"]),
    ("plugin", &["body", "condition", "diagnostics", "event", "render", "secret"]),
    ("store", &["body", "event", "metrics", "secret"]),
    ("outputs", &["render", "secret"]),
    ("ingest", &["body", "event", "metrics", "plugin", "router", "server", "store"]),
    ("delivery", &["event", "metrics", "outputs", "render", "router", "store"]),
    ("desk", &["event", "metrics", "outputs", "store"]),
    (
        "config",
        &[
            "condition",
            "delivery",
            "desk",
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
            "body", "config", "delivery", "event", "ingest", "inspect", "metrics", "plugin", "reload", "render",
            "secret", "store",
        ],
    ),
    ("cli", &["body", "config", "delivery", "event", "ingest", "inspect", "outputs", "render", "store", "telemetry"]),
    ("app", &["admin", "config", "delivery", "desk", "ingest", "metrics", "reload", "server", "store", "systemd"]),
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
    let text = r#"
        use crate::event::Event;
        use crate::{body, plugin::{Vendor, reply}};
        // crate::admin in a comment
        fn f() { crate::store::open(); super::render::x(); crate :: router::plan(); }
        #[cfg(test)]
        mod tests { use crate::config::Config; }
        struct S { #[cfg(test)] probe: crate::cli::Probe, kept: crate::secret::Secret }
        mod views { super::super::admin::x!(); super::sibling(); self::super::super::reload::y(); }
        const Q: char = '"'; const P: &str = "\\"; fn g() { crate::metrics::m(); } // crate::cli
        macro_rules! m { () => { $crate::telemetry::init() }; }
        const R: &str = r"crate::inspect";
        pub(crate) fn h() {}
    "#;
    let found: BTreeSet<String> = references(text, 1).unwrap().into_iter().map(|(module, _)| module).collect();
    let want: BTreeSet<String> =
        ["event", "body", "plugin", "store", "render", "router", "secret", "admin", "reload", "metrics", "telemetry"]
            .map(String::from)
            .into();
    assert_eq!(found, want);
    // Two modules down, one `super::` is a sibling, not the crate root.
    assert!(references("use super::sibling;", 2).unwrap().is_empty());
    // A line is the path's own.
    assert_eq!(references("\n\nfn f() {\n crate::store::x(); }", 1).unwrap(), [("store".to_owned(), 4)]);
    // An alias of the crate root would hide every path through it.
    assert!(references("use crate as root;", 1).is_err());
    assert!(references("use super as up;", 1).is_err());
}

#[test]
fn the_crate_root_only_declares_modules() {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let code: TokenStream = text.parse().unwrap();
    let tokens: Vec<TokenTree> = code.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        // `#[…]` or `#![…]` attributes (doc comments arrive as `#[doc = "…"]`).
        if is_punct(&tokens[i], '#') {
            i += if tokens.get(i + 1).is_some_and(|t| is_punct(t, '!')) { 3 } else { 2 };
            continue;
        }
        let declaration: Vec<String> = tokens[i..(i + 4).min(tokens.len())].iter().map(ToString::to_string).collect();
        assert!(
            declaration.len() == 4 && declaration[0] == "pub" && declaration[1] == "mod" && declaration[3] == ";",
            "src/lib.rs holds code beside its `pub mod` lines, which the arrow test does not read: {declaration:?}"
        );
        i += 4;
    }
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
        let text = fs::read_to_string(&file).unwrap();
        let references = references(&text, depth).unwrap_or_else(|error| panic!("{}: {error}", relative.display()));
        for (to, line) in references {
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

/// The top-level modules a file names, each with its line: `crate::x`, `$crate::x`,
/// `crate::{x, y::z}`, and `super::x` (or `self::super::x`, `super::{…}`) where `depth` supers
/// reach the crate root; inline `mod name { … }` blocks count as one more level. Read from the
/// file's tokens, so comments and string literals never count, and macro bodies do. Items,
/// fields and variants under `#[cfg(test)]` are left out. An alias of the crate root (`use
/// crate as x`) is an error: paths through it could not be told.
fn references(text: &str, depth: usize) -> Result<Vec<(String, usize)>, String> {
    let tokens: TokenStream = text.parse().map_err(|e| format!("not Rust tokens: {e:?}"))?;
    let mut found = Vec::new();
    scan(tokens, depth, &mut found)?;
    // `self` in a group (`crate::{self, …}`) is no module.
    found.retain(|(name, _)| name != "self");
    Ok(found)
}

fn scan(stream: TokenStream, depth: usize, found: &mut Vec<(String, usize)>) -> Result<(), String> {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        if is_punct(&tokens[i], '#') && tokens.get(i + 1).is_some_and(is_cfg_test) {
            i = end_of_item(&tokens, i + 2);
            continue;
        }
        if is_ident(&tokens[i], "mod")
            && let (Some(TokenTree::Ident(_)), Some(TokenTree::Group(body))) = (tokens.get(i + 1), tokens.get(i + 2))
            && body.delimiter() == Delimiter::Brace
        {
            scan(body.stream(), depth + 1, found)?;
            i += 3;
            continue;
        }
        if let TokenTree::Group(group) = &tokens[i] {
            scan(group.stream(), depth, found)?;
            i += 1;
            continue;
        }
        let after_path_separator = i >= 2 && is_punct(&tokens[i - 1], ':') && is_punct(&tokens[i - 2], ':');
        if let Some(root) = crate_root(&tokens, i, depth).filter(|_| !after_path_separator) {
            match tokens.get(root) {
                Some(TokenTree::Ident(name)) if name == "as" => {
                    return Err(format!("line {}: an alias of the crate root hides paths", line(&tokens[i])));
                }
                Some(TokenTree::Ident(name)) => found.push((name.to_string(), line(&tokens[i]))),
                Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Brace => {
                    // The names at the group's first level: its first, and each after a comma.
                    let inner: Vec<TokenTree> = group.stream().into_iter().collect();
                    for (at, token) in inner.iter().enumerate() {
                        if let TokenTree::Ident(name) = token
                            && (at == 0 || is_punct(&inner[at - 1], ','))
                        {
                            found.push((name.to_string(), line(token)));
                        }
                    }
                }
                _ => {}
            }
            i = root + 1;
            continue;
        }
        i += 1;
    }
    Ok(())
}

/// Where the path starting at `i` continues after reaching the crate root (`crate::`,
/// `$crate::`, or enough `super::`), if it does; `crate as`/`super as` stop before `as`.
fn crate_root(tokens: &[TokenTree], i: usize, depth: usize) -> Option<usize> {
    let separator = |at: usize| {
        tokens.get(at).is_some_and(|t| is_punct(t, ':')) && tokens.get(at + 1).is_some_and(|t| is_punct(t, ':'))
    };
    let is_as = |at: usize| tokens.get(at).is_some_and(|t| is_ident(t, "as"));
    let mut at = i;
    if is_punct(&tokens[at], '$') {
        at += 1;
    }
    if tokens.get(at).is_some_and(|t| is_ident(t, "crate")) {
        return if separator(at + 1) { Some(at + 3) } else { is_as(at + 1).then_some(at + 1) };
    }
    if is_ident(&tokens[i], "self") && separator(i + 1) && tokens.get(i + 3).is_some_and(|t| is_ident(t, "super")) {
        at = i + 3;
    }
    let mut climbs = 0;
    while tokens.get(at).is_some_and(|t| is_ident(t, "super")) {
        if separator(at + 1) {
            climbs += 1;
            at += 3;
        } else if is_as(at + 1) && climbs + 1 >= depth {
            return Some(at + 1);
        } else {
            return None;
        }
    }
    (climbs > 0 && climbs >= depth).then_some(at)
}

/// After `#[cfg(test)]` (and any further attributes): past the item, field or variant it
/// guards, which ends at a `;` or `,` or with a `{ … }` body at its own level.
fn end_of_item(tokens: &[TokenTree], mut i: usize) -> usize {
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Punct(p) if p.as_char() == '#' => i += 2,
            TokenTree::Punct(p) if matches!(p.as_char(), ';' | ',') => return i + 1,
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => {
                // A `{ … }` body ends the item, unless a `;` closes it (`const X: T = S { … };`).
                return if tokens.get(i + 1).is_some_and(|t| is_punct(t, ';')) { i + 2 } else { i + 1 };
            }
            _ => i += 1,
        }
    }
    i
}

fn is_cfg_test(token: &TokenTree) -> bool {
    matches!(token, TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket
        && g.stream().to_string().replace(' ', "") == "cfg(test)")
}

fn is_punct(token: &TokenTree, c: char) -> bool {
    matches!(token, TokenTree::Punct(p) if p.as_char() == c)
}

fn is_ident(token: &TokenTree, name: &str) -> bool {
    matches!(token, TokenTree::Ident(ident) if ident == name)
}

fn line(token: &TokenTree) -> usize {
    token.span().start().line
}
