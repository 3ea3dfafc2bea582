//! Sending: a message's parts as new messages, each once more as plain text when Telegram
//! cannot parse its markup, following a group that became a supergroup; and what the attempt
//! leaves behind.

use std::sync::PoisonError;

use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::payloads::SendMessageSetters;
use teloxide::requests::{Request, Requester};
use teloxide::types::{
    ChatId, InlineKeyboardMarkup, LinkPreviewOptions, MessageId, ParseMode, Recipient, ReplyParameters, ThreadId,
};

use super::{TelegramOutput, classify, split};
use crate::outputs::{DeliveryError, Receipt};

impl TelegramOutput {
    /// The chat to send to: the configured one, or where it moved.
    pub(super) fn chat(&self) -> Recipient {
        let moved = *self.moved_to.lock().unwrap_or_else(PoisonError::into_inner);
        moved.map_or_else(|| self.chat.clone(), Recipient::Id)
    }

    /// One part, following a group's move to a supergroup once, and falling back to plain
    /// text when Telegram cannot parse the markup.
    async fn send_part(
        &self,
        part: &str,
        extras: Extras<'_>,
        plain_fallback: &mut bool,
    ) -> Result<teloxide::types::Message, RequestError> {
        let mut html = true;
        let mut followed = false;
        loop {
            let text =
                if html { std::borrow::Cow::Borrowed(part) } else { std::borrow::Cow::Owned(split::to_plain(part)) };
            match self.send_one(&text, html, extras).await {
                Err(RequestError::Api(ApiError::CantParseEntities(why))) if html => {
                    // Markup Telegram rejects must not cost the alert: send the words without it.
                    tracing::warn!(message = "Telegram could not parse the HTML; sending as plain text.", detail = %why);
                    *plain_fallback = true;
                    html = false;
                }
                Err(RequestError::MigrateToChatId(new)) if !followed => {
                    tracing::warn!(
                        message = "The group became a supergroup; sending to its new id. Set chat_id in the config.",
                        chat_id = new.0
                    );
                    *self.moved_to.lock().unwrap_or_else(PoisonError::into_inner) = Some(new);
                    followed = true;
                }
                other => return other,
            }
        }
    }

    async fn send_one(
        &self,
        text: &str,
        html: bool,
        extras: Extras<'_>,
    ) -> Result<teloxide::types::Message, RequestError> {
        let mut request = self.bot.send_message(self.chat(), text).disable_notification(extras.silent);
        if html {
            request = request.parse_mode(ParseMode::Html);
        }
        if !self.link_preview {
            request = request.link_preview_options(no_link_preview());
        }
        if let Some(thread) = extras.topic {
            request = request.message_thread_id(thread);
        }
        if let Some(earlier) = extras.reply_to {
            // Sent even if the earlier message is gone: the alert matters more than the thread.
            request = request.reply_parameters(ReplyParameters::new(earlier).allow_sending_without_reply());
        }
        if let Some(buttons) = extras.buttons {
            request = request.reply_markup(buttons.clone());
        }
        request.send().await
    }
}

/// What goes with a message's text: the message it replies to and its buttons (the first part
/// only), whether it makes a sound, and its forum topic.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Extras<'m> {
    pub(super) reply_to: Option<MessageId>,
    pub(super) buttons: Option<&'m InlineKeyboardMarkup>,
    pub(super) silent: bool,
    pub(super) topic: Option<ThreadId>,
}

impl Extras<'_> {
    /// For the parts after the first.
    fn rest(self) -> Self {
        Self { reply_to: None, buttons: None, ..self }
    }
}

pub(super) fn no_link_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

impl TelegramOutput {
    /// Sends `parts` as new messages, the first replying to `extras.reply_to` when given.
    /// The buttons go under the first: the card, which later events edit.
    pub(super) async fn send_parts(&self, parts: &[String], extras: Extras<'_>) -> Result<Receipt, DeliveryError> {
        let mut ids = Vec::with_capacity(parts.len());
        let mut plain_fallback = false;
        for (index, part) in parts.iter().enumerate() {
            let extras = if index == 0 { extras } else { extras.rest() };
            match self.send_part(part, extras, &mut plain_fallback).await {
                Ok(sent) => ids.push(sent.id.0.to_string()),
                Err(error) => {
                    let mut error = classify(&error);
                    if index > 0 {
                        error.detail = format!(
                            "{} (part {} of {}; earlier parts were sent)",
                            error.detail,
                            index + 1,
                            parts.len()
                        );
                    }
                    return Err(error);
                }
            }
        }
        let mut summary = format!("message {} sent", ids.join(", "));
        if parts.len() > 1 {
            summary.push_str(&format!(" ({} parts)", parts.len()));
        }
        if let Some(MessageId(earlier)) = extras.reply_to {
            summary.push_str(&format!(" in reply to message {earlier}"));
        }
        self.receipt(ids.first().cloned(), summary, plain_fallback)
    }

    /// What an attempt that went through leaves: the message's id, what happened, and the
    /// operator's part when the group has moved.
    pub(super) fn receipt(
        &self,
        remote_id: Option<String>,
        mut summary: String,
        plain_fallback: bool,
    ) -> Result<Receipt, DeliveryError> {
        if plain_fallback {
            summary.push_str(" as plain text: Telegram could not parse the HTML");
        }
        let moved = *self.moved_to.lock().unwrap_or_else(PoisonError::into_inner);
        let action = moved.map(|ChatId(new)| {
            summary.push_str(&format!(" to chat {new}, where the group moved"));
            format!("the group became a supergroup: set chat_id = {new} for this output (sent there meanwhile)")
        });
        Ok(Receipt { remote_id, summary, action })
    }
}
