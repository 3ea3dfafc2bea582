//! The `log` output: writes the rendered message to the daemon's log, or appends it to a file.
//! Needs no account, so the embedded default shows alerts happening on a fresh machine.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{Attempt, DeliveryError, Message, Need, Output, OutputSettings, Reason, Receipt, SettingsError};
use crate::render::{Escape, Part};

/// `[outputs.<name>]` with `type = "log"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Append messages to this file (relative to the config file) instead of the log.
    pub file: Option<String>,
}

const PLAN: &[Need] =
    &[Need { part: Part::Text, fallbacks: &[Part::Telegram, Part::Subject], escape: Escape::Plain, required: true }];

/// The validated settings: where messages go.
#[derive(Debug, Clone)]
pub struct Settings {
    name: String,
    file: Option<PathBuf>,
}

impl Settings {
    pub fn validate(name: &str, config: Config, base: &std::path::Path) -> Self {
        Self { name: name.to_owned(), file: config.file.map(|f| base.join(f)) }
    }
}

impl OutputSettings for Settings {
    fn kind(&self) -> &'static str {
        "log"
    }

    fn plan(&self) -> &[Need] {
        PLAN
    }

    fn build(self: Box<Self>) -> Result<Arc<dyn Output>, SettingsError> {
        Ok(Arc::new(LogOutput { name: self.name, file: self.file }))
    }
}

/// The built output.
#[derive(Debug)]
pub struct LogOutput {
    name: String,
    file: Option<PathBuf>,
}

/// The message's non-empty lines, joined by ` | `.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" | ")
}

#[async_trait]
impl Output for LogOutput {
    fn kind(&self) -> &'static str {
        "log"
    }

    fn plan(&self) -> &[Need] {
        PLAN
    }

    async fn send(&self, message: &Message, attempt: &Attempt) -> Result<Receipt, DeliveryError> {
        let text = message.get(Part::Text).unwrap_or_default();
        match &self.file {
            None => {
                // One log line per alert, in text and JSON logs alike: a message's own line
                // breaks would split it into lines a log shipper reads as several records.
                tracing::info!(message = "Alert.", output = %self.name, delivery_id = %attempt.delivery, text = %one_line(text));
            }
            Some(path) => {
                let line = format!("--- {} {}\n{text}\n", chrono::Utc::now().to_rfc3339(), attempt.delivery);
                let write = async {
                    if let Some(dir) = path.parent() {
                        tokio::fs::create_dir_all(dir).await?;
                    }
                    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?;
                    file.write_all(line.as_bytes()).await?;
                    file.flush().await
                };
                write.await.map_err(|e| DeliveryError::retry(Reason::Network, format!("{}: {e}", path.display())))?;
            }
        }
        Ok(Receipt { remote_id: None, summary: format!("{} characters logged", text.chars().count()), action: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_one_log_line() {
        let text = "Пропущенный звонок\n\nТелефон: +7 916 123-45-67  \r\nИмя: Анна\n";
        assert_eq!(one_line(text), "Пропущенный звонок | Телефон: +7 916 123-45-67 | Имя: Анна");
    }
}
