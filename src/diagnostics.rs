//! A configuration file's text, and the `ConfigIssue`s that point into it by line and key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// One problem in the configuration: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The file, as the user named it (`config.toml`, `plugins/jivo.toml`).
    pub file: String,
    /// 1-based line, when the problem can be placed on one.
    pub line: Option<usize>,
    /// The dotted key (`outputs.sales_tg.token`), or empty for the file as a whole.
    pub key: String,
    pub message: String,
}

impl ConfigIssue {
    /// Whether `other` is about the same key of the same file, or a key within it.
    pub fn same_key(&self, other: &Self) -> bool {
        self.file == other.file
            && !self.key.is_empty()
            && (other.key == self.key || other.key.starts_with(&format!("{}.", self.key)))
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, " {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one load. The configuration is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(f, "the configuration has {count} problem{}:", if count == 1 { "" } else { "s" })?;
        for issue in &self.0 {
            writeln!(f, "  {issue}")?;
        }
        Ok(())
    }
}

/// The most problems one parse reports: past this, the file is likely not a configuration.
pub const MAX_PROBLEMS: usize = 20;

/// A file's text with the parse's recoveries applied. Every edit overwrites bytes in place
/// (never inserts or removes one), so an offset into it — a span of the recovered parse,
/// which validation turns into lines — is the same offset in the file.
struct Edited {
    text: String,
}

impl Edited {
    fn new(text: &str) -> Self {
        Self { text: text.to_owned() }
    }

    /// `text` with `range` overwritten by `with`: the blanks before the range may be taken
    /// (`key = 5` becomes `key =""`), the rest is blanked, and line breaks stay where they are.
    /// Done on bytes: the whole range becomes ASCII and its ends are character boundaries, so
    /// a value such as `"Продажи"` is overwritten whole. `None` when `with` does not fit on the
    /// range's first line.
    fn overwritten(&self, range: Range<usize>, with: &str) -> Option<String> {
        let mut bytes = self.text.as_bytes().to_vec();
        let mut start = range.start;
        while start > 0 && matches!(bytes[start - 1], b' ' | b'\t') && (range.end - start) < with.len() {
            start -= 1;
        }
        let first_line = bytes[start..range.end].iter().position(|b| *b == b'\n').unwrap_or(range.end - start);
        if first_line < with.len() {
            return None;
        }
        bytes[start..start + with.len()].copy_from_slice(with.as_bytes());
        for byte in &mut bytes[start + with.len()..range.end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
        String::from_utf8(bytes).ok()
    }

    /// Sets the problem of `error` aside so the next parse can go past it; false when it
    /// cannot be.
    fn recover<T: DeserializeOwned>(&mut self, error: &toml::de::Error) -> bool {
        let Some(span) = error.span() else { return false };
        // Only a problem of types or keys: a syntax error leaves nothing to read past.
        let well_formed = |text: &str| text.parse::<toml::Table>().is_ok();
        if !well_formed(&self.text) {
            return false;
        }
        let message = error.message();
        if message.starts_with("unknown field") {
            // The key's line becomes a comment, unless its value runs on past it.
            let start = self.text[..span.start].rfind('\n').map_or(0, |i| i + 1);
            let end = self.text[span.start..].find('\n').map_or(self.text.len(), |i| span.start + i);
            let line = &self.text[start..end];
            let value = line.split_once('=').map_or("", |(_, value)| value.trim());
            let opens = |open: char, close: char| value.matches(open).count() != value.matches(close).count();
            if !line.contains('=') || opens('[', ']') || opens('{', '}') || value.starts_with("\"\"\"") {
                return false;
            }
            // The key's first byte becomes `#`: a bare or quoted key begins with an ASCII one.
            if !line.trim_start().starts_with(|c: char| c.is_ascii()) {
                return false;
            }
            let key = start + (line.len() - line.trim_start().len());
            self.text.replace_range(key..=key, "#");
            return true;
        }
        if message.starts_with("invalid type") || message.starts_with("invalid value") || message.contains("expected") {
            // Whichever value of another type takes the parse past this one.
            for stand_in in ["\"\"", "0", "false", "[]", "{}"] {
                let Some(tried) = self.overwritten(span.clone(), stand_in).filter(|tried| well_formed(tried)) else {
                    continue;
                };
                // Keys are visited in their table's order, not the file's: the next problem
                // may lie above this one. Anywhere but on the stand-in will do.
                let moved_on = match toml::from_str::<T>(&tried) {
                    Ok(_) => true,
                    Err(next) => next.span().is_none_or(|next| next.end < span.start || next.start >= span.end),
                };
                if moved_on {
                    self.text = tried;
                    return true;
                }
            }
        }
        false
    }
}

/// The text of one configuration file, kept to turn byte offsets into lines and keys.
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    path: PathBuf,
    text: String,
}

impl Source {
    /// Reads a file.
    ///
    /// # Errors
    /// The file cannot be read, as an issue naming it.
    pub fn read(path: &Path) -> Result<Self, ConfigIssue> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self { name, path: path.to_owned(), text }),
            Err(error) => Err(ConfigIssue {
                file: name,
                line: None,
                key: String::new(),
                message: format!("cannot read: {error}"),
            }),
        }
    }

    /// A file compiled into the binary (the embedded default).
    pub fn embedded(name: &str, text: &str) -> Self {
        Self { name: format!("<embedded {name}>"), path: PathBuf::from(name), text: text.to_owned() }
    }

    /// Whether this is a file compiled into the binary.
    pub fn is_embedded(&self) -> bool {
        self.name.starts_with("<embedded ")
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A fingerprint of the text (the first 48 bits of its SHA-256): what
    /// `switchboard_config_hash` shows, so an operator sees which instances run the same file.
    pub fn fingerprint(&self) -> u64 {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.text.as_bytes());
        digest[..6].iter().fold(0, |hash, byte| (hash << 8) | u64::from(*byte))
    }

    /// The path on disk (for embedded sources, the name it would have).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses the whole file into `T`, reporting every problem rather than the first.
    ///
    /// serde stops at the first type error or unknown key. To find the rest, the parse recovers
    /// as a compiler does: the value that failed is swapped for one of another type, or the
    /// line with an unknown key is set aside, and the text parsed again — up to
    /// [`MAX_PROBLEMS`] times. A syntax error, a missing key or a line that cannot be set aside
    /// alone (a value that runs over several lines) ends the search.
    ///
    /// # Errors
    /// Every syntax or type error found, each placed on its line and key.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Vec<ConfigIssue>> {
        match self.parse_recovering() {
            (Some(value), issues) if issues.is_empty() => Ok(value),
            (_, issues) => Err(issues),
        }
    }

    /// [`Source::parse`], keeping what the text read as once its problems were set aside (when
    /// every one could be), so that validation can look for the problems beyond them in the
    /// same pass. A value set aside is a stand-in: a later problem of the same key repeats the
    /// first, and [`ConfigIssue::same_key`] finds it.
    pub fn parse_recovering<T: DeserializeOwned>(&self) -> (Option<T>, Vec<ConfigIssue>) {
        let mut edited = Edited::new(&self.text);
        let mut issues: Vec<ConfigIssue> = Vec::new();
        let in_file_order = |mut issues: Vec<ConfigIssue>| {
            issues.sort_by_key(|issue| issue.line);
            issues
        };
        loop {
            let error = match toml::from_str::<T>(&edited.text) {
                Ok(value) => return (Some(value), in_file_order(issues)),
                Err(error) => error,
            };
            let span = error.span();
            let key = span.as_ref().map(|s| self.key_at(s.start)).unwrap_or_default();
            let issue = self.issue(span, key, error.message().trim());
            // A recovery that lands on the same problem again has not moved on.
            if issues.last() == Some(&issue) || issues.len() >= MAX_PROBLEMS {
                return (None, in_file_order(issues));
            }
            issues.push(issue);
            if !edited.recover::<T>(&error) {
                return (None, in_file_order(issues));
            }
        }
    }

    /// An issue at `span` (a byte range from `toml::Spanned`); `message` is a sentence or an
    /// error that says what is wrong.
    pub fn issue(&self, span: Option<Range<usize>>, key: impl Into<String>, message: impl fmt::Display) -> ConfigIssue {
        let key = key.into();
        let line = span.map(|span| self.line_of(self.key_line(span, &key)));
        ConfigIssue { file: self.name.clone(), line, key, message: suggest(&message.to_string()) }
    }

    /// Where the key itself is written within `span` (a table's span covers its header and
    /// every key): the line of `name =` for the key's last part, else the span's start.
    fn key_line(&self, span: Range<usize>, key: &str) -> usize {
        let name = key.rsplit('.').next().unwrap_or_default().trim_matches('"');
        let start = span.start.min(self.text.len());
        // A `[table]` is spanned by its header alone: its keys run to the next header.
        let end = if self.text[start..].starts_with('[') {
            self.text[start..].find("\n[").map_or(self.text.len(), |next| start + next)
        } else {
            span.end.min(self.text.len())
        };
        let within = self.text.get(start..end).unwrap_or_default();
        if name.is_empty() || !within.contains('\n') {
            return span.start;
        }
        let mut offset = span.start;
        for line in within.split_inclusive('\n') {
            let written = line.trim_start().split_once('=').map(|(k, _)| k.trim().trim_matches(['"', '\'']));
            if written == Some(name) {
                return offset;
            }
            offset += line.len();
        }
        span.start
    }

    fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset].iter().filter(|b| **b == b'\n').count() + 1
    }

    /// Best-effort dotted key for an offset: the nearest `[table]` header above it plus the key
    /// written on its line. Only used to make parse errors easier to find.
    fn key_at(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[line_start..].lines().next().unwrap_or_default();
        let key = line
            .split_once('=')
            .map(|(key, _)| key.trim().trim_matches(['"', '\'']).to_owned())
            .filter(|key| !key.starts_with('['))
            .unwrap_or_default();
        // `[outputs.sales_tg]   # a comment`: the name is what the brackets hold. The Nth
        // `[[route]]` is `route[N-1]`, as validation names it.
        let above = &self.text[..line_start];
        let name_of = |line: &str| line.trim_start_matches('[').split(']').next().unwrap_or_default().trim().to_owned();
        let header = above.lines().rev().map(str::trim).find(|l| l.starts_with('[')).map(|line| {
            let name = name_of(line);
            if line.starts_with("[[") {
                let index = above.lines().map(str::trim).filter(|l| l.starts_with("[[") && name_of(l) == name).count();
                format!("{name}[{}]", index.saturating_sub(1))
            } else {
                name
            }
        });
        match (header, key.is_empty()) {
            (Some(header), false) => format!("{header}.{key}"),
            (Some(header), true) => header,
            (None, _) => key,
        }
    }
}

/// A message about an unknown key or value that lists the expected ones (serde's "unknown
/// field `lisen`, expected one of `listen`, …"), with the nearest of them suggested.
fn suggest(message: &str) -> String {
    let Some((head, expected)) = message.split_once(", expected one of ").or_else(|| message.split_once(", expected "))
    else {
        return message.to_owned();
    };
    let Some(given) = head.split('`').nth(1) else { return message.to_owned() };
    let nearest = expected
        .split(',')
        .filter_map(|candidate| candidate.trim().split('`').nth(1))
        .map(|candidate| (strsim::jaro_winkler(given, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match nearest {
        Some((_, candidate)) if !message.contains("did you mean") => format!("{message} — did you mean `{candidate}`?"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Server {
        listen: String,
        body_limit_bytes: u64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct File {
        server: Server,
    }

    #[test]
    fn type_errors_name_file_line_and_key() {
        let source =
            Source::embedded("config.toml", "# comment\n[server]\nlisten = \"x\"\nbody_limit_bytes = \"big\"\n");
        let issues = source.parse::<File>().unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].file, "<embedded config.toml>");
        assert_eq!(issues[0].line, Some(4));
        assert_eq!(issues[0].key, "server.body_limit_bytes");
        assert!(issues[0].message.contains("invalid type"), "{}", issues[0].message);
    }

    #[test]
    fn unknown_keys_are_named_with_the_nearest_known_one() {
        let source = Source::embedded("c.toml", "[server]\nlisten = \"x\"\nbody_limit_bytes = 1\nlisen = 3\n");
        let issues = source.parse::<File>().unwrap_err();
        assert_eq!((issues[0].line, issues[0].key.as_str()), (Some(4), "server.lisen"));
        assert!(issues[0].message.contains("unknown field `lisen`"), "{}", issues[0].message);
        assert!(issues[0].message.ends_with("did you mean `listen`?"), "{}", issues[0].message);
        let far = suggest("unknown field `colour`, expected one of `listen`, `body_limit_bytes`");
        assert!(!far.contains("did you mean"), "only a near one is suggested: {far}");
    }

    #[test]
    fn every_problem_of_a_file_is_reported_in_one_pass_on_its_own_line() {
        let text = "[server]   # the listener\nlisen = \"x\"\nlisten = 5\nbody_limit_bytes = \"big\"\n";
        let issues = Source::embedded("c.toml", text).parse::<File>().unwrap_err();
        let found: Vec<(Option<usize>, &str)> = issues.iter().map(|i| (i.line, i.key.as_str())).collect();
        assert_eq!(
            found,
            [(Some(2), "server.lisen"), (Some(3), "server.listen"), (Some(4), "server.body_limit_bytes")],
            "{issues:#?}"
        );
        // A syntax error still ends the search at once.
        let broken = Source::embedded("c.toml", "[server\nlisten = 5\n").parse::<File>().unwrap_err();
        assert_eq!(broken.len(), 1, "{broken:?}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Routes {
        route: Vec<Route>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Route {
        name: String,
        topic: Option<i32>,
    }

    #[test]
    fn a_value_in_cyrillic_of_the_wrong_type_is_set_aside_whole() {
        let text = "[[route]]\nname = \"a\"\n\n[[route]]\nname = \"b\"\ntopic = \"Продажи 🙂\"\ntopik = 1\n";
        let issues = Source::embedded("c.toml", text).parse::<Routes>().unwrap_err();
        let found: Vec<(Option<usize>, &str)> = issues.iter().map(|i| (i.line, i.key.as_str())).collect();
        // Named as validation names them: the second route is route[1].
        assert_eq!(found, [(Some(6), "route[1].topic"), (Some(7), "route[1].topik")], "{issues:#?}");
    }

    #[test]
    fn a_syntax_error_is_not_recovered_from() {
        let issues = Source::embedded("c.toml", "[server]\nlisten = \"x\"\nbody_limit_bytes = 1 2\n")
            .parse::<File>()
            .unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:#?}");
    }

    #[test]
    fn a_problem_found_on_a_table_is_placed_on_its_key() {
        let source =
            Source::embedded("c.toml", "[outputs.tg]   # Telegram: set chat_id\ntype = \"telegram\"\nchat_id = 5\n");
        let table = 0..source.text.len();
        let issue = source.issue(Some(table), "outputs.tg.chat_id", "must be text");
        assert_eq!(issue.line, Some(3));
        assert_eq!(source.key_at(source.text.find("chat_id = 5").unwrap()), "outputs.tg.chat_id");
    }
}
