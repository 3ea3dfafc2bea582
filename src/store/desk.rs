//! The desk: each card's handling (who took the call, who called back) and every press that
//! made it, kept beside the events. A press is one statement that applies only if it may — the
//! first «Беру» wins, a done card stays done — so two people pressing at once, on one instance
//! or two sharing PostgreSQL, cannot both take a call.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::event::EventId;
use crate::event::handling::{Action, Handling, Person};

/// Handling, as the desk records and reads it.
#[async_trait]
pub trait Desk: Send + Sync + 'static {
    /// The card `event` belongs to (the event that began its call, or the event itself), or
    /// `None` when the event is not stored.
    async fn card_of(&self, event: EventId) -> Result<Option<EventId>, StoreError>;
    /// Records a press on `card` (on the message of `event`) and applies it when it may.
    async fn press(&self, press: &NewPress) -> Result<Pressed, StoreError>;
    /// The card's handling; `None` while nobody pressed anything on it.
    async fn handling(&self, card: EventId) -> Result<Option<Handling>, StoreError>;
}

/// A press to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPress {
    /// The destination's id for the press: the same press arriving twice is taken once.
    pub query_id: String,
    pub card: EventId,
    pub event: EventId,
    pub action: Action,
    pub by: Person,
    pub at: DateTime<Utc>,
}

/// What a press did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pressed {
    /// Whether it changed the card: false for a second «Беру», or anything on a done card.
    pub applied: bool,
    /// The same press arrived before: nothing was done again.
    pub repeated: bool,
    /// The card's handling after it.
    pub handling: Handling,
}

/// `$1` card, `$2` who (id), `$3` who (name), `$4` when (ms). Each statement names its
/// parameters in order of first use: SQLite numbers them that way.
pub(super) fn apply(action: Action) -> &'static str {
    match action {
        Action::Take => {
            "INSERT INTO handling (card, status, taken_by_id, taken_by, taken_at, no_answers, updated_at)
             VALUES ($1, 'taken', $2, $3, $4, 0, $4)
             ON CONFLICT (card) DO UPDATE SET status = 'taken', taken_by_id = excluded.taken_by_id,
                 taken_by = excluded.taken_by, taken_at = excluded.taken_at, updated_at = excluded.updated_at
             WHERE handling.status = 'new'"
        }
        Action::Done => {
            "INSERT INTO handling (card, status, taken_by_id, taken_by, taken_at, done_by_id, done_by, done_at,
                                   no_answers, updated_at)
             VALUES ($1, 'done', $2, $3, $4, $2, $3, $4, 0, $4)
             ON CONFLICT (card) DO UPDATE SET status = 'done', done_by_id = excluded.done_by_id,
                 done_by = excluded.done_by, done_at = excluded.done_at, updated_at = excluded.updated_at
             WHERE handling.status <> 'done'"
        }
        Action::NoAnswer => {
            "INSERT INTO handling (card, status, taken_by_id, taken_by, taken_at, no_answers, last_no_answer_at,
                                   updated_at)
             VALUES ($1, 'taken', $2, $3, $4, 1, $4, $4)
             ON CONFLICT (card) DO UPDATE SET no_answers = handling.no_answers + 1,
                 last_no_answer_at = excluded.last_no_answer_at, updated_at = excluded.updated_at,
                 status = 'taken', taken_by_id = COALESCE(handling.taken_by_id, excluded.taken_by_id),
                 taken_by = COALESCE(handling.taken_by, excluded.taken_by),
                 taken_at = COALESCE(handling.taken_at, excluded.taken_at)
             WHERE handling.status <> 'done'"
        }
    }
}

/// Claims the press by its id before it is applied: 0 rows when it was seen before.
pub(super) const LOG_PRESS: &str = "
INSERT INTO presses (card, event_id, action, by_id, by_name, at, applied, query_id)
VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7)
ON CONFLICT (query_id) DO NOTHING";

pub(super) const PRESS_APPLIED: &str = "UPDATE presses SET applied = TRUE WHERE query_id = $1";

pub(super) const HANDLING: &str = "
SELECT card, status, taken_by_id, taken_by, taken_at, done_by_id, done_by, done_at, no_answers, last_no_answer_at
FROM handling WHERE card = $1";

pub(super) const CARD_OF: &str = "SELECT COALESCE(sequence_start, id) AS card FROM events WHERE id = $1";

/// Implements [`Desk`] for a store that holds its sqlx pool in its field `pool`.
macro_rules! shared_desk {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::store::Desk for $store {
            async fn card_of(
                &self,
                event: crate::event::EventId,
            ) -> Result<Option<crate::event::EventId>, crate::store::StoreError> {
                use crate::store::rows::Columns as _;
                let row =
                    sqlx::query(crate::store::desk::CARD_OF).bind(event.to_string()).fetch_optional(&self.pool).await?;
                row.map(|row| crate::store::rows::event_id(&row.text("card")?)).transpose()
            }

            async fn press(
                &self,
                press: &crate::store::NewPress,
            ) -> Result<crate::store::Pressed, crate::store::StoreError> {
                let at = crate::store::millis(press.at);
                let claimed = sqlx::query(crate::store::desk::LOG_PRESS)
                    .bind(press.card.to_string())
                    .bind(press.event.to_string())
                    .bind(press.action.as_str())
                    .bind(press.by.id)
                    .bind(&press.by.name)
                    .bind(at)
                    .bind(&press.query_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    > 0;
                if !claimed {
                    let handling = crate::store::Desk::handling(self, press.card).await?;
                    let handling = handling.unwrap_or_else(|| crate::event::handling::Handling::unpressed(press.card));
                    return Ok(crate::store::Pressed { applied: false, repeated: true, handling });
                }
                let applied = sqlx::query(crate::store::desk::apply(press.action))
                    .bind(press.card.to_string())
                    .bind(press.by.id)
                    .bind(&press.by.name)
                    .bind(at)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    > 0;
                if applied {
                    sqlx::query(crate::store::desk::PRESS_APPLIED).bind(&press.query_id).execute(&self.pool).await?;
                }
                let handling = crate::store::Desk::handling(self, press.card)
                    .await?
                    .ok_or_else(|| crate::store::StoreError::Corrupt("a pressed card has no handling".into()))?;
                Ok(crate::store::Pressed { applied, repeated: false, handling })
            }

            async fn handling(
                &self,
                card: crate::event::EventId,
            ) -> Result<Option<crate::event::handling::Handling>, crate::store::StoreError> {
                let row =
                    sqlx::query(crate::store::desk::HANDLING).bind(card.to_string()).fetch_optional(&self.pool).await?;
                row.map(|row| crate::store::rows::handling(&row)).transpose()
            }
        }
    };
}

pub(super) use shared_desk;
