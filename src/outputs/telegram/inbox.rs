//! Presses on a card's action buttons, read from the bot's updates by long polling
//! (`getUpdates`): Switchboard needs no public address for them. Only callback queries are
//! asked for, and each batch is confirmed by the next request's `offset`. A batch read just
//! before a reload or a restart comes again: the desk takes each press once, by its id.
//!
//! With `server.public_url` set, Telegram pushes them instead: the bot's webhook points at
//! the listener's `/telegram/<bot id>`, and each post carries a secret derived from the token
//! (`X-Telegram-Bot-Api-Secret-Token`), so only Telegram can post there.
//!
//! Bot API: <https://core.telegram.org/bots/api#getupdates>,
//! <https://core.telegram.org/bots/api#setwebhook>,
//! <https://core.telegram.org/bots/api#answercallbackquery>.

use std::sync::PoisonError;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use teloxide::payloads::{AnswerCallbackQuerySetters, GetUpdatesSetters, SetWebhookSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{AllowedUpdate, CallbackQueryId, Recipient, Update, UpdateKind};

use super::{TelegramOutput, classify};
use crate::outputs::{DeliveryError, Inbox, Press, Reason};
use crate::secret::Secret;

/// A press, from one of the bot's updates; `None` for any other update.
fn press_of(update: Update) -> Option<Press> {
    let UpdateKind::CallbackQuery(query) = update.kind else { return None };
    // Without its message (too old for Telegram to include) the press is still answered.
    let message = query.message.as_ref();
    Some(Press {
        id: query.id.0.clone(),
        chat: message.map_or(0, |m| m.chat().id.0),
        chat_name: message.and_then(|m| m.chat().username()).map(str::to_owned),
        message: message.map(|m| m.id().0.to_string()),
        by_id: i64::try_from(query.from.id.0).unwrap_or_default(),
        by_name: query.from.full_name(),
        data: query.data.clone().unwrap_or_default(),
    })
}

#[async_trait]
impl Inbox for TelegramOutput {
    fn source(&self) -> String {
        self.source.clone()
    }

    fn owns_chat(&self, press: &Press) -> bool {
        let moved = *self.moved_to.lock().unwrap_or_else(PoisonError::into_inner);
        let chat = press.chat;
        moved.is_some_and(|moved| moved.0 == chat)
            || match &self.chat {
                Recipient::Id(id) => id.0 == chat,
                Recipient::ChannelUsername(name) => press
                    .chat_name
                    .as_deref()
                    .is_some_and(|pressed| name.trim_start_matches('@').eq_ignore_ascii_case(pressed)),
            }
    }

    async fn presses(&self, wait: Duration) -> Result<Vec<Press>, DeliveryError> {
        let offset = *self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        let updates = self
            .poll_bot
            .get_updates()
            .offset(offset)
            .timeout(u32::try_from(wait.as_secs()).unwrap_or(u32::MAX))
            .allowed_updates([AllowedUpdate::CallbackQuery])
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let mut presses = Vec::new();
        for update in updates {
            let next = i32::try_from(update.id.0).unwrap_or(i32::MAX).saturating_add(1);
            let mut offset = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
            *offset = (*offset).max(next);
            drop(offset);
            presses.extend(press_of(update));
        }
        Ok(presses)
    }

    fn push_path(&self) -> String {
        format!("telegram/{}", self.bot_id)
    }

    fn push_secret(&self) -> Secret {
        // Derived, so every instance and every restart agrees on it without storing it; the
        // token never leaves in it. Telegram takes 1-256 of A-Z, a-z, 0-9, `_` and `-`.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.token.expose().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"switchboard: presses on cards");
        Secret::new(mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect::<String>())
    }

    async fn push_to(&self, url: Option<&str>) -> Result<(), DeliveryError> {
        let result = match url {
            Some(url) => {
                let url = reqwest::Url::parse(url)
                    .map_err(|e| DeliveryError::permanent(Reason::Config, format!("the webhook URL `{url}`: {e}")))?;
                self.bot
                    .set_webhook(url)
                    .secret_token(self.push_secret().expose())
                    .allowed_updates([AllowedUpdate::CallbackQuery])
                    .send()
                    .await
            }
            None => self.bot.delete_webhook().send().await,
        };
        result.map(drop).map_err(|e| classify(&e))
    }

    fn pushed(&self, body: &[u8]) -> Result<Vec<Press>, String> {
        let update: Update = serde_json::from_slice(body).map_err(|e| format!("not a Telegram update: {e}"))?;
        Ok(press_of(update).into_iter().collect())
    }

    async fn answer(&self, press: &Press, text: &str) -> Result<(), DeliveryError> {
        self.bot
            .answer_callback_query(CallbackQueryId(press.id.clone()))
            .text(text)
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&e))
    }
}
