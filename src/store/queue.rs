//! The delivery queue: deliveries claimed under a lease, attempted, and moved on — what the
//! delivery workers use, and the operator's retries and replays.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::StoreError;
use crate::event::handling::Status;
use crate::event::{Event, EventId};

/// Deliveries, as the delivery workers claim and settle them.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Takes up to `limit` pending deliveries that are due at `now` and not held by another
    /// worker, holding each until `now + lease`; returns them with their events.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<(Delivery, Event)>, StoreError>;
    /// Records an attempt and moves the delivery on; releases its lease.
    async fn finish_attempt(&self, delivery: Ulid, attempt: AttemptRecord, next: Next) -> Result<(), StoreError>;
    /// Puts a claimed delivery back, due at `at`, without counting an attempt (pacing).
    async fn defer(&self, delivery: Ulid, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// When the next pending delivery that no one holds falls due, if any. Deliveries under a
    /// lease are left out: the attempt holding one records what comes next, and a lease whose
    /// holder died is found by the workers' idle poll once it has expired.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Adds deliveries to a stored event (a replay through today's routes) and records the
    /// routes that took it.
    async fn add_deliveries(
        &self,
        event: EventId,
        routes: &[String],
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError>;
    /// Makes the pending deliveries to `output` that wait out a retry step (they were tried,
    /// are due later, and nobody holds them) due at `now`: the output answers again. Returns
    /// how many.
    async fn pull_forward(&self, output: &str, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The deliveries to `output` of the events of `event`'s run of a sequence (a call, from
    /// its `start`), itself included, oldest first — the messages a live card is made of; none
    /// for an event of no sequence — and the card's handling (who took the call).
    async fn card(&self, event: EventId, output: &str) -> Result<CardState, StoreError>;
    /// Makes dead or expired deliveries pending again, due now. `Some(id)` retries one;
    /// otherwise every dead one (of `output`, if given). Returns how many were requeued.
    async fn retry(&self, delivery: Option<Ulid>, output: Option<&str>) -> Result<u64, StoreError>;
    /// Dismisses dead or expired deliveries: the operator has seen them and nothing is to be
    /// sent (they leave `switchboard_dead_letters`, and stay listed as dismissed). `Some(id)`
    /// dismisses one (dead or expired); otherwise every dead one (of `output`, if given).
    /// Returns how many.
    async fn dismiss(&self, delivery: Option<Ulid>, output: Option<&str>, by: &Dismissal) -> Result<u64, StoreError>;
}

/// Who dismissed a dead letter, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dismissal {
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

impl Dismissal {
    /// A dismissal now, by `by` (trimmed, at most 80 characters; `fallback` when blank: the
    /// dashboard and the API have no accounts), with `note` (at most 500; none when blank).
    pub fn now(by: Option<&str>, note: Option<&str>, fallback: &str) -> Self {
        let by: String = by.unwrap_or_default().trim().chars().take(80).collect();
        let note: String = note.unwrap_or_default().trim().chars().take(500).collect();
        Self {
            by: if by.is_empty() { fallback.to_owned() } else { by },
            at: Utc::now(),
            note: Some(note).filter(|n| !n.is_empty()),
        }
    }
}

/// One (route, output) an event must reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: Ulid,
    pub route: String,
    pub output: String,
    pub template: String,
    /// The route's ttl: past this the delivery is expired, not sent late.
    pub expires_at: Option<DateTime<Utc>>,
    /// The message (a Telegram message id) this delivery redraws in place: a card after a
    /// press on its buttons.
    pub redraws: Option<String>,
    /// Not due before this: an escalation's reminder, planned with its event. Its age (the
    /// queue's oldest, `max_age`) counts from here, not from when it was planned.
    pub not_before: Option<DateTime<Utc>>,
    /// Cancelled rather than sent if the card has reached this status by then (an escalation
    /// `unless = "taken"`).
    pub unless: Option<Status>,
}

impl NewDelivery {
    /// A delivery planned at `at`: its id is of that time, so the queue serves in plan order.
    pub fn planned_at(
        at: DateTime<Utc>,
        route: String,
        output: String,
        template: String,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            id: crate::event::monotonic_ulid(at),
            route,
            output,
            template,
            expires_at,
            redraws: None,
            not_before: None,
            unless: None,
        }
    }

    /// A delivery planned at `at` that redraws message `remote_id` with the event's card as it
    /// stands now.
    pub fn redraw(at: DateTime<Utc>, route: String, output: String, template: String, remote_id: String) -> Self {
        Self { redraws: Some(remote_id), ..Self::planned_at(at, route, output, template, None) }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
    Expired,
    /// An escalation not sent: the card was taken (or done) in time.
    Cancelled,
    /// A dead or expired delivery the operator dismissed: nothing is to be sent.
    Dismissed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Dismissed => "dismissed",
        }
    }

    /// Reads a state's name.
    ///
    /// # Errors
    /// Anything but `pending`, `delivered`, `dead`, `expired`, `cancelled` or `dismissed`.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "dead" => Ok(Self::Dead),
            "expired" => Ok(Self::Expired),
            "cancelled" => Ok(Self::Cancelled),
            "dismissed" => Ok(Self::Dismissed),
            other => Err(StoreError::Corrupt(format!("delivery state `{other}`"))),
        }
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Ulid,
    pub event_id: EventId,
    pub route: String,
    pub output: String,
    pub template: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Attempts cut short by a crash while they held the delivery: the destination may have got
    /// the message already, so a later attempt may be a duplicate.
    pub interrupted: u32,
    /// [`NewDelivery::redraws`].
    pub redraws: Option<String>,
    /// [`NewDelivery::unless`].
    pub unless: Option<Status>,
    /// Set while the delivery is dismissed.
    pub dismissal: Option<Dismissal>,
}

/// A card at one output, as [`Queue::card`] reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardState {
    pub deliveries: Vec<CardDelivery>,
    /// Whether the event belongs to a sequence (a call): only then do its deliveries continue
    /// one another's messages.
    pub in_sequence: bool,
    pub handling: Option<crate::event::handling::Handling>,
    /// The card's events up to this one, oldest first (the event alone when it belongs to no
    /// sequence).
    pub events: Vec<crate::event::handling::CardEvent>,
}

/// A delivery of one run of a sequence to one output ([`Queue::card`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDelivery {
    pub id: Ulid,
    pub state: DeliveryState,
    /// The destination's id of the message its last attempt sent or edited.
    pub remote_id: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub event_id: EventId,
    pub route: String,
    pub template: String,
    /// An escalation's reminder: a message beside the card, never the card itself.
    pub reminder: bool,
}

/// One attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    /// `delivered`, `retry`, `dead`, `expired` or `cancelled`.
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: String,
    /// What the operator must change, when the output said ([`crate::outputs`] errors and
    /// receipts carry it).
    pub action: Option<String>,
    /// The destination's id of the message this attempt sent or edited (a Telegram message id).
    pub remote_id: Option<String>,
    /// The message as this attempt rendered and sent it: a JSON object of its parts
    /// (`{"telegram": "…", "subject": "…"}`), each cut at [`SENT_PART_KEEP`] bytes. `None` for
    /// an attempt that rendered nothing (an expired or cancelled delivery, a template error).
    pub sent: Option<String>,
}

/// How much of each part of a sent message an attempt keeps: a Telegram message is at most
/// 4,096 characters, an email's text rarely more.
pub const SENT_PART_KEEP: usize = 16 * 1024;

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAt(DateTime<Utc>),
    Dead,
    Expired,
    /// Not sent: an escalation whose card was handled in time.
    Cancelled,
}
