//! Refused requests as the store keeps them, and what processing one again came to.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::RequestRecord;
use crate::event::EventId;

/// At most this much of the body of a request refused before its sender was known to be the
/// vendor (an unknown vendor, a bad secret) is kept: enough to see what was wrong, and a
/// stranger cannot fill the disk. A refusal after that keeps the whole body, to be processed
/// again once the cause is fixed.
pub const REJECTED_BODY_KEEP: usize = 64 * 1024;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub id: Ulid,
    pub received_at: DateTime<Utc>,
    pub vendor: Option<String>,
    pub status: u16,
    pub reason: String,
    pub message: String,
    pub request: RequestRecord,
    /// The body as kept: all of it, or its first [`REJECTED_BODY_KEEP`] bytes.
    #[serde(skip)]
    pub raw_body: Bytes,
    /// How many bytes of body were received (more than `raw_body` holds when it was cut).
    pub body_size: u64,
    /// The last time it was processed again, if it was.
    pub reprocessed: Option<Reprocessed>,
}

impl Rejection {
    /// Whether `raw_body` is the whole body that was received.
    pub fn body_is_whole(&self) -> bool {
        self.raw_body.len() as u64 >= self.body_size
    }
}

/// A kept request processed again ([`Store::reprocessed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reprocessed {
    pub at: DateTime<Utc>,
    /// The event it became; `None`: it was refused again (the rejection says why).
    pub event: Option<EventId>,
}

/// What processing a kept request again came to, for [`Store::reprocessed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReprocessOutcome {
    /// It became this event (or was found to be a repeat of it).
    Accepted(EventId),
    /// It was refused again, for this reason.
    Refused { status: u16, reason: String, message: String },
}
