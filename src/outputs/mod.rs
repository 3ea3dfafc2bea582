//! Outputs: where rendered messages go (Telegram, email, HTTP, the log).
//!
//! Stage 7 of the pipeline (… → delivery (router, render) → **outputs**). Each output is configured as
//! `[outputs.<name>]` with a `type`, validated when the configuration loads and built once. An
//! output makes one attempt and classifies its result ([`DeliveryError`]); retrying and
//! scheduling belong to the delivery stage alone, and so does rendering: an output declares the
//! template parts it needs ([`Output::plan`]) and its settings that are templates
//! ([`Output::templated`]), and receives them finished in a [`Message`].

pub mod email;
mod error;
pub mod http;
pub mod log;
mod settings;
pub mod telegram;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use error::{DETAIL_LIMIT, DeliveryError, Disposition, Reason};
pub use settings::{KNOWN_TYPES, OutputSettings, SettingsError, ValidationContext, missing_part, validate};

use serde_json::Value;

use crate::render::{Escape, JsonTemplate, Part};

/// A part an output needs from a template, and how to escape it.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub part: Part,
    /// Parts used instead, in order, when the template lacks `part`.
    pub fallbacks: &'static [Part],
    pub escape: Escape,
    /// Whether a template without it (or a fallback) cannot serve this output.
    pub required: bool,
}

/// What an output sends, finished: the template parts it asked for ([`Output::plan`]) and its
/// templated settings ([`Output::templated`]), rendered for one event before the output sees it.
/// An output renders nothing itself, so a template that fails is a clear failure before any send.
#[derive(Clone, Default, PartialEq)]
pub struct Message {
    parts: BTreeMap<Part, String>,
    settings: BTreeMap<&'static str, Value>,
    continues: Option<Continues>,
    actions: Vec<ActionButton>,
    silent: bool,
    topic: Option<i32>,
}

/// A button on a message that reports its press back ([`Inbox`]) with `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionButton {
    pub label: String,
    pub data: String,
}

/// A press on an [`ActionButton`], as the destination reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Press {
    /// The destination's id for the press, to answer it.
    pub id: String,
    /// The chat the message with the button is in, and its public name (`@channel`) if it has
    /// one; 0 when the update did not say (a message too old for Telegram to include).
    pub chat: i64,
    pub chat_name: Option<String>,
    /// The destination's id for that message ([`Receipt::remote_id`]).
    pub message: Option<String>,
    /// Who pressed: the destination's id for the person, and their name.
    pub by_id: i64,
    pub by_name: String,
    /// The button's [`ActionButton::data`].
    pub data: String,
}

/// An output whose destination reports presses on its messages' buttons (a Telegram bot's
/// updates, read by long polling: no public URL needed).
#[async_trait]
pub trait Inbox: Send + Sync {
    /// What the presses are read from (one bot): outputs that share it are read once.
    fn source(&self) -> String;
    /// Whether the press was in one of this output's chats.
    fn owns_chat(&self, press: &Press) -> bool;
    /// The presses that arrive within `wait`. One may come again (read before a restart, posted
    /// again): [`Press::id`] tells.
    async fn presses(&self, wait: Duration) -> Result<Vec<Press>, DeliveryError>;
    /// Where on the webhook listener the destination posts presses when asked to push them
    /// (`telegram/<bot id>`), and the secret its posts carry.
    fn push_path(&self) -> String;
    fn push_secret(&self) -> crate::secret::Secret;
    /// Asks the destination to post presses to `url` (a Telegram webhook), or, with `None`, to
    /// keep them to be read.
    async fn push_to(&self, url: Option<&str>) -> Result<(), DeliveryError>;
    /// The presses in a body the destination posted.
    ///
    /// # Errors
    /// The body is not one of the destination's updates.
    fn pushed(&self, body: &[u8]) -> Result<Vec<Press>, String>;
    /// Tells the presser what became of the press (a notice over the chat, in Telegram).
    async fn answer(&self, press: &Press, text: &str) -> Result<(), DeliveryError>;
}

/// An earlier message of the same call or chat that this one continues, at an output that can
/// ([`Output::continues_messages`]): one live card rather than a message per webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continues {
    /// The destination's id for it, as its [`Receipt::remote_id`] said.
    pub remote_id: String,
    pub how: Continuation,
    /// The card's message that holds its buttons now, when this one is sent as a new message:
    /// the destination takes them off it, so that a card has one set of live buttons.
    pub supersedes: Option<String>,
}

/// How a message continues an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// Its content replaces the earlier message's, in place.
    Edit,
    /// It is sent as a new message that replies to the earlier one.
    Reply,
}

/// The rendered settings may hold a secret (an `Authorization` header made from one), so a
/// debug print names them without their values.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("parts", &self.parts)
            .field("settings", &self.settings.keys())
            .field("continues", &self.continues)
            .field("actions", &self.actions)
            .field("silent", &self.silent)
            .field("topic", &self.topic)
            .finish()
    }
}

impl Message {
    pub fn new(parts: BTreeMap<Part, String>, settings: BTreeMap<&'static str, Value>) -> Self {
        Self { parts, settings, continues: None, actions: Vec::new(), silent: false, topic: None }
    }

    /// The same message, sent without a sound when `silent` (a route's quiet hours).
    #[must_use]
    pub fn quiet(mut self, silent: bool) -> Self {
        self.silent = silent;
        self
    }

    /// Whether it goes without a sound.
    pub fn silent(&self) -> bool {
        self.silent
    }

    /// The same message, for a forum topic (a route's `topic`), if given.
    #[must_use]
    pub fn in_topic(mut self, topic: Option<i32>) -> Self {
        self.topic = topic;
        self
    }

    /// The forum topic its route chose, in place of the output's own.
    pub fn topic(&self) -> Option<i32> {
        self.topic
    }

    /// The same message, with action buttons.
    #[must_use]
    pub fn with_actions(mut self, actions: Vec<ActionButton>) -> Self {
        self.actions = actions;
        self
    }

    /// Its action buttons.
    pub fn actions(&self) -> &[ActionButton] {
        &self.actions
    }

    /// The same message, continuing an earlier one.
    #[must_use]
    pub fn continuing(mut self, earlier: Option<Continues>) -> Self {
        self.continues = earlier;
        self
    }

    /// The earlier message this one continues, if any.
    pub fn continues(&self) -> Option<&Continues> {
        self.continues.as_ref()
    }

    /// A templated setting, rendered: [`Templated::setting`] names it.
    pub fn setting(&self, name: &str) -> Option<&Value> {
        self.settings.get(name)
    }

    pub fn get(&self, part: Part) -> Option<&str> {
        self.parts.get(&part).map(String::as_str)
    }

    pub fn parts(&self) -> impl Iterator<Item = (Part, &str)> {
        self.parts.iter().map(|(part, text)| (*part, text.as_str()))
    }
}

/// Which attempt this is, for logs and idempotency keys.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Stable across retries: the idempotency key.
    pub delivery: String,
    pub number: u32,
}

/// What a successful attempt leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The destination's id for the message (a Telegram message id: the first, when it took
    /// several), if any: what a later message of the same call continues.
    pub remote_id: Option<String>,
    pub summary: String,
    /// Delivered, but the configuration should change (a group that became a supergroup).
    pub action: Option<String>,
}

/// A pacing bucket and the least interval between two sends in it: delivery sends no faster
/// than an output's buckets allow, so bursts queue instead of failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    pub key: String,
    pub interval: Duration,
    /// One send at a time: the bucket stays closed until the send in flight has its answer, so
    /// a "slow down" reaches the next send before it leaves (and messages keep their order).
    pub exclusive: bool,
}

/// A setting of an output that is a template (an HTTP URL and headers, an email's `reply_to`):
/// rendered for each event with the message's parts, and handed over in [`Message::setting`].
pub struct Templated {
    pub setting: &'static str,
    pub template: JsonTemplate,
    /// A required setting that cannot render fails the delivery (an HTTP URL); an optional one
    /// is left out of the message (an email's `reply_to` when the visitor left no address).
    pub required: bool,
}

impl std::fmt::Debug for Templated {
    // The template may hold a token (an `Authorization` header): only its name is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templated").field("setting", &self.setting).finish_non_exhaustive()
    }
}

/// A configured destination, built once per configuration load.
#[async_trait]
pub trait Output: Send + Sync + std::fmt::Debug + 'static {
    /// `telegram` | `email` | `http` | `log`.
    fn kind(&self) -> &'static str;
    /// The template parts this output sends, and their escaping.
    fn plan(&self) -> &[Need];
    /// The settings that are templates, rendered per event into the [`Message`]; none by default.
    fn templated(&self) -> &[Templated] {
        &[]
    }
    /// Whether it can edit or reply to a message it sent before ([`Message::continues`]), so
    /// the events of one call share a live card; others send every event as its own message.
    fn continues_messages(&self) -> bool {
        false
    }
    /// Where presses on its messages' buttons are read, if its destination reports them.
    fn inbox(&self) -> Option<&dyn Inbox> {
        None
    }
    /// One attempt. Never retries or sleeps: the delivery stage owns time.
    async fn send(&self, message: &Message, attempt: &Attempt) -> Result<Receipt, DeliveryError>;
    /// The pacing buckets a message counts against; none by default.
    fn pacing(&self) -> &[Pace] {
        &[]
    }
}

/// A configured output, built; `output` is `None` when it is switched off (`enabled = false`).
#[derive(Debug, Clone)]
pub struct OutputEntry {
    pub kind: String,
    pub output: Option<Arc<dyn Output>>,
    /// Attempts to this output in flight at once (`max_in_flight`), so one slow destination
    /// cannot take every worker.
    pub max_in_flight: usize,
}

/// Default for an output's `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// An error with its causes (`error sending request: connection refused`), each cause once.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debug_print_names_the_settings_without_their_values() {
        let headers = serde_json::json!({"Authorization": "Bearer hunter2"});
        let message =
            Message::new(BTreeMap::from([(Part::Body, "hello".to_owned())]), BTreeMap::from([("headers", headers)]));
        let printed = format!("{message:?}");
        assert!(printed.contains("headers") && printed.contains("hello"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
