//! Presses on a card's action buttons, read from the bot's updates by long polling
//! (`getUpdates`): Switchboard needs no public address for them. Only callback queries are
//! asked for, and each batch is confirmed by the next request's `offset`, so a press is
//! returned once even across a restart.
//!
//! Bot API: <https://core.telegram.org/bots/api#getupdates>,
//! <https://core.telegram.org/bots/api#answercallbackquery>.

use std::sync::PoisonError;
use std::time::Duration;

use async_trait::async_trait;
use teloxide::payloads::{AnswerCallbackQuerySetters, GetUpdatesSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{AllowedUpdate, CallbackQueryId, Recipient, UpdateKind};

use super::{TelegramOutput, classify};
use crate::outputs::{DeliveryError, Inbox, Press};

#[async_trait]
impl Inbox for TelegramOutput {
    fn source(&self) -> String {
        self.source.clone()
    }

    fn owns_chat(&self, chat: i64) -> bool {
        let moved = *self.moved_to.lock().unwrap_or_else(PoisonError::into_inner);
        moved.is_some_and(|moved| moved.0 == chat) || matches!(&self.chat, Recipient::Id(id) if id.0 == chat)
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
            let UpdateKind::CallbackQuery(query) = update.kind else { continue };
            let Some(message) = &query.message else { continue };
            presses.push(Press {
                id: query.id.0.clone(),
                chat: message.chat().id.0,
                message: Some(message.id().0.to_string()),
                by_id: i64::try_from(query.from.id.0).unwrap_or_default(),
                by_name: query.from.full_name(),
                data: query.data.clone().unwrap_or_default(),
            });
        }
        Ok(presses)
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
