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

    /// Parses the whole file into `T`.
    ///
    /// # Errors
    /// A syntax or type error, placed on its line and key.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigIssue> {
        toml::from_str(&self.text).map_err(|error| {
            let span = error.span();
            let key = span.as_ref().map(|s| self.key_at(s.start)).unwrap_or_default();
            self.issue(span, key, error.message().trim().to_owned())
        })
    }

    /// An issue at `span` (a byte range from `toml::Spanned`); `message` is a sentence or an
    /// error that says what is wrong.
    pub fn issue(&self, span: Option<Range<usize>>, key: impl Into<String>, message: impl fmt::Display) -> ConfigIssue {
        ConfigIssue {
            file: self.name.clone(),
            line: span.map(|s| self.line_of(s.start)),
            key: key.into(),
            message: message.to_string(),
        }
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
        let header = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(['[', ']']).trim().to_owned());
        match (header, key.is_empty()) {
            (Some(header), false) => format!("{header}.{key}"),
            (Some(header), true) => header,
            (None, _) => key,
        }
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
        let issue = source.parse::<File>().unwrap_err();
        assert_eq!(issue.file, "<embedded config.toml>");
        assert_eq!(issue.line, Some(4));
        assert_eq!(issue.key, "server.body_limit_bytes");
        assert!(issue.message.contains("invalid type"), "{}", issue.message);
    }

    #[test]
    fn unknown_keys_are_named() {
        let source = Source::embedded("c.toml", "[server]\nlisten = \"x\"\nbody_limit_bytes = 1\nlisen = 3\n");
        let issue = source.parse::<File>().unwrap_err();
        assert_eq!((issue.line, issue.key.as_str()), (Some(4), "server.lisen"));
        assert!(issue.message.contains("unknown field `lisen`"), "{}", issue.message);
    }
}
