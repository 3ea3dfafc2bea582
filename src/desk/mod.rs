//! The desk: the team handles calls from their Telegram cards. A press on a card's action
//! button («Беру», «Перезвонил», «Не дозвонился») arrives through the bot's updates, read by
//! long polling ([`crate::outputs::Inbox`]); the desk records it on the card
//! ([`crate::store::Desk`]), tells the presser what became of it, and has the card redrawn —
//! a delivery through the queue, so the redraw is paced and retried like any other.
//!
//! Beside delivery in the pipeline (… → store → delivery → outputs, and outputs → **desk** →
//! store): it reads what destinations answer back.

mod answers;
mod pushes;
mod readers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::event::handling::{Action, Person, parse_button_data};
use crate::metrics as m;
use crate::outputs::{Output, Press};
use crate::store::{NewDelivery, NewPress, Store, StoreError};

pub use answers::Answer;
pub use pushes::router;
pub use readers::run;

/// How long a press on a message whose id is not recorded yet is looked for: the attempt that
/// sent it is being recorded.
const RECORDING_LOOKS: u32 = 5;
const RECORDING_WAIT: Duration = Duration::from_millis(200);

/// Outputs by name.
pub type Named = Vec<(String, Arc<dyn Output>)>;

/// What the desk reads of the running configuration.
pub trait DeskConfig: Send + Sync {
    /// The outputs whose destinations report presses, by name.
    fn inboxes(&self) -> Named;
    /// Whether answers are in English (`templates.language = "en"`) rather than Russian.
    fn english(&self) -> bool;
    /// `server.public_url`: when set, Telegram pushes presses to the webhook listener instead
    /// of having them read.
    fn public_url(&self) -> Option<&str>;
}

/// Handles one press: recorded, counted, and answered.
async fn take(store: &dyn Store, outputs: &[(String, Arc<dyn Output>)], press: &Press, english: bool) {
    let answer = handle(store, outputs, press).await;
    metrics::counter!(m::DESK_PRESSES, "action" => answer.action(), "outcome" => answer.outcome()).increment(1);
    let Some(inbox) = outputs.first().and_then(|(_, output)| output.inbox()) else { return };
    if let Err(error) = inbox.answer(press, &answer.text(english)).await {
        tracing::warn!(message = "Could not answer a press.", detail = %error.detail);
    }
}

/// The configuration's outputs with an inbox, grouped by what their presses are read from.
fn sources(config: &dyn DeskConfig) -> BTreeMap<String, Named> {
    let mut sources: BTreeMap<String, Named> = BTreeMap::new();
    for (name, output) in config.inboxes() {
        if let Some(inbox) = output.inbox() {
            sources.entry(inbox.source()).or_default().push((name, output.clone()));
        }
    }
    sources
}

/// Records one press and has its card redrawn; says what to answer the presser.
async fn handle(store: &dyn Store, outputs: &[(String, Arc<dyn Output>)], press: &Press) -> Answer {
    let Some((action, event)) = parse_button_data(&press.data) else {
        return Answer::Unknown;
    };
    match record(store, outputs, press, action, event).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::error!(message = "Could not record a press.", %error, event = %event);
            Answer::Failed(action)
        }
    }
}

/// The card's delivery whose message was pressed, and its output. The press must be on one of
/// the card's own messages, in a chat an output sends to: only who is in that chat sees the
/// buttons. A message just sent may not have its id recorded yet: looked for a moment longer.
async fn pressed_on(
    store: &dyn Store,
    outputs: &[(String, Arc<dyn Output>)],
    press: &Press,
    event: crate::event::EventId,
) -> Result<Option<(String, crate::store::CardDelivery)>, StoreError> {
    let owners: Vec<&String> = outputs
        .iter()
        .filter(|(_, output)| press.message.is_some() && output.inbox().is_some_and(|inbox| inbox.owns_chat(press)))
        .map(|(name, _)| name)
        .collect();
    for look in 0..RECORDING_LOOKS {
        if look > 0 {
            tokio::time::sleep(RECORDING_WAIT).await;
        }
        for name in &owners {
            let state = store.card(event, name).await?;
            if let Some(delivery) = state.deliveries.iter().rev().find(|d| d.remote_id == press.message) {
                return Ok(Some(((*name).clone(), delivery.clone())));
            }
        }
        if owners.is_empty() {
            break;
        }
    }
    Ok(None)
}

async fn record(
    store: &dyn Store,
    outputs: &[(String, Arc<dyn Output>)],
    press: &Press,
    action: Action,
    event: crate::event::EventId,
) -> Result<Answer, StoreError> {
    let Some(card) = store.card_of(event).await? else {
        return Ok(Answer::Gone(action));
    };
    let Some((output, delivery)) = pressed_on(store, outputs, press, event).await? else {
        return Ok(Answer::NotHere(action));
    };
    let by = Person { id: press.by_id, name: press.by_name.clone() };
    let now = Utc::now();
    let pressed =
        store.press(&NewPress { query_id: press.id.clone(), card, event, action, by: by.clone(), at: now }).await?;
    if pressed.repeated {
        tracing::info!(message = "A press arrived again; it was taken the first time.", card = %card);
    }
    tracing::info!(
        message = "A card was pressed.", card = %card, action = action.as_str(), by = %by.name,
        applied = pressed.applied, status = pressed.handling.status.as_str()
    );
    if pressed.applied {
        if action == Action::Done {
            if let Some(first) = store.event(card).await? {
                let took = (now - first.event.received_at).to_std().unwrap_or_default();
                metrics::histogram!(m::TIME_TO_DONE).record(took.as_secs_f64());
            }
        }
        let redraw = NewDelivery::redraw(
            now,
            delivery.route,
            output,
            delivery.template,
            press.message.clone().unwrap_or_default(),
        );
        match store.event(delivery.event_id).await? {
            Some(stored) => store.add_deliveries(stored.event.id, &stored.routes, &[redraw]).await?,
            None => {
                tracing::warn!(message = "The pressed card's event is gone; it is not redrawn.", event = %delivery.event_id)
            }
        }
    }
    Ok(Answer::Pressed { action, applied: pressed.applied, handling: pressed.handling, by })
}
