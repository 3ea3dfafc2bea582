//! A live card: the message an earlier event of the same call left in the chat, edited in
//! place (`editMessageText`) as the call goes on.
//!
//! A card that can no longer be edited — deleted by someone in the chat, refused by Telegram
//! ("message can't be edited"), left behind in a group that moved — is not lost: the event goes
//! as a new message replying to it, and that message is the card from then on.
//!
//! A card that goes on in a new message (a route's `card = "reply"`, a card too long to edit)
//! has one set of live buttons: the new message takes them, and the message that had them loses
//! them (`editMessageReplyMarkup`), so nobody presses «Беру» on a stale copy.
//!
//! Bot API: <https://core.telegram.org/bots/api#editmessagetext>,
//! <https://core.telegram.org/bots/api#editmessagereplymarkup>.

use std::borrow::Cow;

use teloxide::payloads::EditMessageTextSetters;
use teloxide::requests::{Request, Requester};
use teloxide::types::{InlineKeyboardMarkup, MessageId, ParseMode};
use teloxide::{ApiError, RequestError};

use super::{Extras, TelegramOutput, classify, no_link_preview, split};
use crate::outputs::{Continuation, Continues, DeliveryError, Receipt};

/// The Telegram message an earlier delivery left, and how to continue it; `None` for an id
/// that is not a Telegram message id.
pub(super) fn earlier(continues: &Continues) -> Option<(MessageId, Continuation)> {
    Some((message_id(&continues.remote_id)?, continues.how))
}

/// The card's message in a receipt's id. Receipts before cards listed every part's id: the
/// first is the card.
fn message_id(remote_id: &str) -> Option<MessageId> {
    Some(MessageId(remote_id.split(',').next()?.trim().parse().ok()?))
}

/// Edits message `id` to show `part`; sends `part` as a reply to it when it cannot be edited.
pub(super) async fn edit(
    output: &TelegramOutput,
    id: MessageId,
    part: &str,
    extras: Extras<'_>,
) -> Result<Receipt, DeliveryError> {
    let mut text = Cow::Borrowed(part);
    let mut plain_fallback = false;
    let summary = loop {
        match edit_one(output, id, &text, !plain_fallback, extras.buttons).await {
            Ok(()) => break format!("message {} edited", id.0),
            Err(RequestError::Api(ApiError::MessageNotModified)) => {
                break format!("message {} already showed this", id.0);
            }
            Err(RequestError::Api(ApiError::CantParseEntities(why))) if !plain_fallback => {
                tracing::warn!(message = "Telegram could not parse the HTML; editing with plain text.", detail = %why);
                plain_fallback = true;
                text = Cow::Owned(split::to_plain(part));
            }
            Err(
                error @ (RequestError::Api(
                    ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited | ApiError::MessageIdInvalid,
                )
                | RequestError::MigrateToChatId(_)),
            ) => {
                let why = match &error {
                    RequestError::MigrateToChatId(_) => "the group moved".to_owned(),
                    other => other.to_string(),
                };
                tracing::info!(message = "The card cannot be edited; replying to it.", message_id = id.0, %why);
                let mut receipt =
                    output.send_parts(&[part.to_owned()], Extras { reply_to: Some(id), ..extras }).await?;
                receipt.summary.push_str(&format!(": it could not be edited ({why})"));
                return Ok(receipt);
            }
            Err(other) => return Err(classify(&other)),
        }
    };
    output.receipt(Some(id.0.to_string()), summary, plain_fallback)
}

/// Takes the buttons off the card's message that had them, now that `sent` (a new message of
/// the card) has them. A message that can no longer be changed keeps them: pressing one there
/// still finds the card.
///
/// On a task of its own, with a short timeout: the attempt that sent the new message is done,
/// and a slow answer here must not make it time out and send the message again.
pub(super) fn retire(output: &TelegramOutput, continues: Option<&Continues>, sent: Option<&str>) {
    const RETIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
    let Some(id) = continues.and_then(|c| c.supersedes.as_deref()).and_then(message_id) else {
        return;
    };
    if sent.and_then(message_id) == Some(id) {
        return;
    }
    let (bot, chat) = (output.bot.clone(), output.chat());
    tokio::spawn(async move {
        // Without a markup the message is left with no buttons.
        let edit = bot.edit_message_reply_markup(chat, id).send();
        match tokio::time::timeout(RETIRE_TIMEOUT, edit).await {
            Ok(Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified))) => {}
            Ok(Err(error)) => {
                tracing::info!(message = "The card's earlier message keeps its buttons.", message_id = id.0, %error);
            }
            Err(_) => tracing::info!(
                message = "The card's earlier message keeps its buttons: no answer in time.",
                message_id = id.0
            ),
        }
    });
}

async fn edit_one(
    output: &TelegramOutput,
    id: MessageId,
    text: &str,
    html: bool,
    buttons: Option<&InlineKeyboardMarkup>,
) -> Result<(), RequestError> {
    let mut request = output.bot.edit_message_text(output.chat(), id, text);
    // Without a markup the edit takes the card's buttons away: a done card offers none.
    if let Some(buttons) = buttons {
        request = request.reply_markup(buttons.clone());
    }
    if html {
        request = request.parse_mode(ParseMode::Html);
    }
    if !output.link_preview {
        request = request.link_preview_options(no_link_preview());
    }
    request.send().await.map(drop)
}
