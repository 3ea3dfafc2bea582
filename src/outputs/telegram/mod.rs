//! The `telegram` output: a bot sends HTML messages to a user, group, channel or forum topic
//! through the Bot API (teloxide), at `api_url` when a self-hosted Bot API server (or a test's
//! fake) stands in for api.telegram.org.
//!
//! Long messages are split ([`split`]); if Telegram cannot parse the markup, the message goes
//! once more as plain text rather than be lost. Flood limits (`retry_after`) and server errors
//! are retried. A group that became a supergroup (`migrate_to_chat_id`) is followed at once:
//! the message goes to the new chat, later ones too, and every receipt asks the operator to
//! set the new `chat_id` (the Bot API answers the old id with the new one for as long as it is
//! used, so a restart costs one extra request, not an alert). A blocked or removed bot and an
//! unknown chat need the operator: the error says what to change.
//!
//! Bot API errors: <https://core.telegram.org/bots/api#responseparameters>.

mod card;
mod classify;
mod inbox;
mod keyboard;
mod send;
pub mod split;

pub use classify::classify;
use send::{Extras, no_link_preview};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use teloxide::Bot;
use teloxide::types::{ChatId, MessageId, Recipient, ThreadId};

use super::{Attempt, Continuation, DeliveryError, Message, Need, Output, OutputSettings, Receipt, SettingsError};
use crate::outputs::Pace;
use crate::render::{Escape, Part};
use crate::secret::Secret;

/// `[outputs.<name>]` with `type = "telegram"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The bot's token from @BotFather; use `${TELEGRAM_BOT_TOKEN}`.
    pub token: Secret,
    /// A numeric id (`-1001234567890` for a supergroup or channel) or `@channelname`.
    pub chat_id: toml::Value,
    /// A forum topic in a supergroup.
    pub message_thread_id: Option<i32>,
    #[serde(default)]
    pub disable_notification: bool,
    /// Show link previews (off by default: alerts are read at a glance).
    #[serde(default)]
    pub link_preview: bool,
    /// Bot API server; `https://api.telegram.org` unless you run your own.
    pub api_url: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Least time between two messages to this chat. Telegram allows about one a second to a
    /// chat and 20 a minute to a group, so the default is 1000 for a user and 3000 for a
    /// group or channel.
    pub min_interval_ms: Option<u64>,
}

fn default_timeout() -> u64 {
    15
}

const PLAN: &[Need] = &[
    Need { part: Part::Telegram, fallbacks: &[Part::Text], escape: Escape::TelegramHtml, required: true },
    Need { part: Part::Buttons, fallbacks: &[], escape: Escape::Plain, required: false },
];

/// How long one request for presses waits for one to arrive (`getUpdates`' `timeout`).
pub const POLL_WAIT: Duration = Duration::from_secs(25);

/// The built output. Not `Debug` by derive: teloxide's `Bot` prints its token.
pub struct TelegramOutput {
    bot: Bot,
    /// The same bot on a client that waits out a long poll for presses ([`inbox`]).
    poll_bot: Bot,
    /// The Bot API and the bot's id (the token's public half): outputs with the same one read
    /// their presses from one stream.
    source: String,
    /// The next update to ask for: every one before it was read.
    offset: Mutex<i32>,
    /// The token's public half, which names the bot in the push path.
    bot_id: String,
    /// For the push secret derived from it.
    token: Secret,
    chat: Recipient,
    /// Where the configured group went when it became a supergroup, once Telegram said so.
    moved_to: Mutex<Option<ChatId>>,
    thread: Option<ThreadId>,
    disable_notification: bool,
    link_preview: bool,
    pacing: Vec<Pace>,
}

impl std::fmt::Debug for TelegramOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramOutput").field("chat", &self.chat).field("thread", &self.thread).finish_non_exhaustive()
    }
}

/// Telegram's limit for one bot across all chats: about 30 messages a second.
const BOT_INTERVAL: Duration = Duration::from_millis(34);

/// The validated settings.
#[derive(Debug)]
pub struct Settings {
    token: Secret,
    chat: Recipient,
    thread: Option<ThreadId>,
    disable_notification: bool,
    link_preview: bool,
    api_url: Option<reqwest::Url>,
    timeout: Duration,
    pacing: Vec<Pace>,
}

impl Settings {
    /// Checks the token's shape, the chat id and the API URL.
    ///
    /// # Errors
    /// A missing token, a malformed chat id or API URL.
    pub fn validate(config: Config) -> Result<Self, SettingsError> {
        let token = config.token.expose().trim();
        if token.is_empty() {
            return Err(SettingsError::at(
                "token",
                "token is empty; set it from the environment: token = \"${TELEGRAM_BOT_TOKEN}\"",
            ));
        }
        if !token.contains(':') {
            return Err(SettingsError::at(
                "token",
                "token does not look like a bot token (`123456:ABC…` from @BotFather)",
            ));
        }
        let chat = parse_chat(&config.chat_id)?;
        if config.timeout_secs == 0 {
            return Err(SettingsError::at("timeout_secs", "timeout_secs must be greater than 0"));
        }
        let api_url = config
            .api_url
            .as_deref()
            .map(|api_url| {
                reqwest::Url::parse(api_url).map_err(|e| {
                    SettingsError::at(
                        "api_url",
                        format!("api_url `{api_url}` is not a URL ({e}); e.g. `http://127.0.0.1:8081`"),
                    )
                })
            })
            .transpose()?;
        // Group, supergroup and channel ids are negative (or a @channel name).
        let group = match &chat {
            Recipient::Id(ChatId(id)) => *id < 0,
            Recipient::ChannelUsername(_) => true,
        };
        let interval = Duration::from_millis(config.min_interval_ms.unwrap_or(if group { 3000 } else { 1000 }));
        // The bot's own id is the part of the token before `:`; it is not secret.
        let bot_id = token.split(':').next().unwrap_or_default();
        let pacing = vec![
            Pace { key: format!("telegram:{bot_id}:chat:{chat}"), interval, exclusive: true },
            Pace { key: format!("telegram:{bot_id}"), interval: BOT_INTERVAL, exclusive: false },
        ];
        Ok(Self {
            token: Secret::new(token.to_owned()),
            chat,
            thread: config.message_thread_id.map(|id| ThreadId(MessageId(id))),
            disable_notification: config.disable_notification,
            link_preview: config.link_preview,
            api_url,
            timeout: Duration::from_secs(config.timeout_secs),
            pacing,
        })
    }
}

impl OutputSettings for Settings {
    fn kind(&self) -> &'static str {
        "telegram"
    }

    fn plan(&self) -> &[Need] {
        PLAN
    }

    fn build(self: Box<Self>) -> Result<Arc<dyn Output>, SettingsError> {
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| SettingsError::table(format!("cannot build the HTTP client: {e}")))?;
        // A long poll holds its request open for POLL_WAIT: its client waits longer than that.
        let poll_client = reqwest::Client::builder()
            .timeout(POLL_WAIT + self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| SettingsError::table(format!("cannot build the HTTP client: {e}")))?;
        let mut bot = Bot::with_client(self.token.expose(), client);
        let mut poll_bot = Bot::with_client(self.token.expose(), poll_client);
        if let Some(url) = self.api_url {
            bot = bot.set_api_url(url.clone());
            poll_bot = poll_bot.set_api_url(url);
        }
        let bot_id = self.token.expose().split(':').next().unwrap_or_default().to_owned();
        Ok(Arc::new(TelegramOutput {
            source: format!("telegram {} bot {bot_id}", bot.api_url()),
            bot_id,
            token: self.token,
            bot,
            poll_bot,
            offset: Mutex::new(0),
            chat: self.chat,
            moved_to: Mutex::new(None),
            thread: self.thread,
            disable_notification: self.disable_notification,
            link_preview: self.link_preview,
            pacing: self.pacing,
        }))
    }
}

fn parse_chat(value: &toml::Value) -> Result<Recipient, SettingsError> {
    let invalid = || {
        SettingsError::at(
            "chat_id",
            format!(
                "chat_id must be a number such as -1001234567890 or a channel such as \"@sales_alerts\"; got {value}"
            ),
        )
    };
    match value {
        toml::Value::Integer(id) => Ok(Recipient::Id(ChatId(*id))),
        toml::Value::String(text) if text.starts_with('@') && text.len() > 1 => {
            Ok(Recipient::ChannelUsername(text.clone()))
        }
        toml::Value::String(text) => {
            text.trim().parse::<i64>().map(|id| Recipient::Id(ChatId(id))).map_err(|_| invalid())
        }
        _ => Err(invalid()),
    }
}

#[async_trait]
impl Output for TelegramOutput {
    fn kind(&self) -> &'static str {
        "telegram"
    }

    fn plan(&self) -> &[Need] {
        PLAN
    }

    fn pacing(&self) -> &[Pace] {
        &self.pacing
    }

    fn continues_messages(&self) -> bool {
        true
    }

    fn inbox(&self) -> Option<&dyn crate::outputs::Inbox> {
        Some(self)
    }

    async fn send(&self, message: &Message, _attempt: &Attempt) -> Result<Receipt, DeliveryError> {
        let html = message.get(Part::Telegram).or_else(|| message.get(Part::Text)).unwrap_or_default();
        let parts = split::split(html, split::TELEGRAM_LIMIT);
        let buttons = keyboard::keyboard(message);
        let extras = Extras {
            reply_to: None,
            buttons: buttons.as_ref(),
            silent: self.disable_notification || message.silent(),
            topic: message.topic().map(|topic| ThreadId(MessageId(topic))).or(self.thread),
        };
        match message.continues().and_then(card::earlier) {
            // A card that outgrew one message cannot be edited into one: its rest follows as replies.
            Some((id, Continuation::Edit)) if parts.len() == 1 => card::edit(self, id, &parts[0], extras).await,
            Some((id, _)) => {
                let receipt = self.send_parts(&parts, Extras { reply_to: Some(id), ..extras }).await?;
                if extras.buttons.is_some() {
                    card::retire(self, message.continues(), receipt.remote_id.as_deref());
                }
                Ok(receipt)
            }
            None => self.send_parts(&parts, extras).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use teloxide::types::Seconds;
    use teloxide::{ApiError, RequestError};

    use super::*;

    #[test]
    fn errors_are_classified_for_the_delivery_loop() {
        let cases: Vec<(RequestError, &str)> = vec![
            (RequestError::RetryAfter(Seconds::from_seconds(14)), "retry rate_limited 14"),
            (RequestError::MigrateToChatId(ChatId(-1001234567890)), "permanent client_error"),
            (RequestError::Api(ApiError::BotBlocked), "permanent auth"),
            (RequestError::Api(ApiError::InvalidToken), "permanent auth"),
            (RequestError::Api(ApiError::ChatNotFound), "permanent client_error"),
            (RequestError::Api(ApiError::Unknown("Internal Server Error: restart".into())), "retry server_error"),
            (RequestError::Api(ApiError::Unknown("Bad Request: something new".into())), "permanent client_error"),
            (RequestError::Io(Arc::new(std::io::Error::other("reset"))), "retry network"),
        ];
        for (error, expected) in cases {
            let classified = classify(&error);
            let mut found =
                format!("{} {}", if classified.is_retryable() { "retry" } else { "permanent" }, classified.reason);
            if let crate::outputs::Disposition::Retry { after: Some(after) } = classified.disposition {
                found.push_str(&format!(" {}", after.as_secs()));
            }
            assert_eq!(found, expected, "{error:?}");
        }
        let migrated = classify(&RequestError::MigrateToChatId(ChatId(-1001234567890)));
        assert!(migrated.detail.contains("set chat_id = -1001234567890"), "{}", migrated.detail);
    }

    #[test]
    fn chat_ids_take_numbers_and_channel_names() {
        assert_eq!(parse_chat(&toml::Value::Integer(-100123)).unwrap(), Recipient::Id(ChatId(-100123)));
        assert_eq!(parse_chat(&toml::Value::String("-100123".into())).unwrap(), Recipient::Id(ChatId(-100123)));
        assert_eq!(
            parse_chat(&toml::Value::String("@alerts".into())).unwrap(),
            Recipient::ChannelUsername("@alerts".into())
        );
        assert!(parse_chat(&toml::Value::String("alerts".into())).is_err());
        assert!(parse_chat(&toml::Value::Boolean(true)).is_err());
    }
}
