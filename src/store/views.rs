//! The operator's views: filtered event lists, how each event's deliveries stand, each output's
//! last answer, the queue's size and age — what the dashboard and the command line read.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::{AttemptRecord, Delivery, DeliveryState, Rejection, StoreError, StoredEvent};
use crate::event::EventId;

/// Reads for the operator.
#[async_trait]
pub trait Views: Send + Sync + 'static {
    /// One event with its request.
    async fn event(&self, id: EventId) -> Result<Option<StoredEvent>, StoreError>;
    /// Events, newest first.
    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;
    /// Refused requests, newest first.
    async fn rejections(&self, query: &RejectionQuery) -> Result<Vec<Rejection>, StoreError>;
    /// The deliveries of one event.
    async fn deliveries(&self, event: EventId) -> Result<Vec<Delivery>, StoreError>;
    /// The attempts of one delivery, in order.
    async fn attempts(&self, delivery: Ulid) -> Result<Vec<AttemptRecord>, StoreError>;
    /// Deliveries across events, newest first, filtered by state and output.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError>;
    /// How each event's deliveries stand, for the events it is given (absent: none).
    async fn delivery_counts(&self, events: &[EventId]) -> Result<HashMap<EventId, DeliveryCounts>, StoreError>;
    /// Each output's last success and failure, for outputs that were ever tried.
    async fn output_health(&self) -> Result<Vec<OutputHealth>, StoreError>;
    /// The size and age of the delivery queue at `now`.
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError>;
}

/// Filters for [`Store::events`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub vendor: Option<String>,
    pub kind: Option<String>,
    /// Only events received before this id (for paging, newest first).
    pub before: Option<EventId>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    /// Text the canonical fields contain, case-insensitively: a phone number's digits, an
    /// email address, a name.
    pub search: Option<String>,
    pub status: Option<EventStatus>,
    /// The handling of their card: new (routed, nobody pressed), taken or done.
    pub handling: Option<crate::event::handling::Status>,
    pub limit: u32,
}

/// Where an event's deliveries stand, as one word: what the events list filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// No route took it.
    Unrouted,
    /// Some delivery is still being tried.
    Pending,
    /// Every delivery arrived.
    Delivered,
    /// Some delivery is dead or expired (or was, and was dismissed).
    Failed,
}

impl EventStatus {
    pub const ALL: [Self; 4] = [Self::Unrouted, Self::Pending, Self::Delivered, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unrouted => "unrouted",
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// How many of an event's deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub pending: u32,
    pub delivered: u32,
    pub dead: u32,
    pub expired: u32,
    /// Escalations not sent because the card was handled in time: neither failed nor pending.
    pub cancelled: u32,
    /// Failed deliveries the operator dismissed: still failures, no longer waiting for anyone.
    pub dismissed: u32,
}

impl DeliveryCounts {
    /// The event's status, given whether any route took it.
    pub fn status(&self, routed: bool) -> EventStatus {
        if self.dead + self.expired + self.dismissed > 0 {
            EventStatus::Failed
        } else if self.pending > 0 {
            EventStatus::Pending
        } else if routed {
            EventStatus::Delivered
        } else {
            EventStatus::Unrouted
        }
    }
}

/// An output's most recent attempts, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputHealth {
    pub output: String,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// What the destination answered the last time it failed.
    pub last_failure: Option<String>,
    /// What the operator must change (the bot was removed from the chat, the group moved), from
    /// the latest attempt that said so, until an attempt delivers without it.
    pub action: Option<String>,
}

/// The delivery queue at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Deliveries still to be sent (due or waiting for a retry).
    pub pending: u64,
    /// Of those, the ones due now.
    pub due: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    pub dead: u64,
}

/// Filters for [`Views::rejections`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct RejectionQuery {
    /// The vendor the request was addressed to.
    pub vendor: Option<String>,
    /// Why it was refused (`bad_secret`, `invalid_json`, …).
    pub reason: Option<String>,
    pub limit: u32,
}

impl RejectionQuery {
    /// The newest `limit`, whatever they are.
    pub fn latest(limit: u32) -> Self {
        Self { limit, ..Self::default() }
    }
}

/// Filters for [`Store::list_deliveries`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub state: Option<DeliveryState>,
    pub output: Option<String>,
    pub limit: u32,
}
