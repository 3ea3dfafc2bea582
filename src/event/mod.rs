//! The normalised event: what every vendor's webhook becomes, whatever its wire format.
//!
//! A vendor plugin (`crate::plugin`) builds an [`Event`] from a request body; the store keeps it;
//! routes and templates read it. Its `kind` is vendor-neutral (`call.missed` for all three vendors)
//! and its `fields` use the canonical names of [`fields::CANONICAL_FIELDS`].

pub mod fields;
pub mod handling;
pub mod path;
mod scalar;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ulid::Ulid;

pub use fields::{FieldType, Fields};
pub use path::Path;
pub use scalar::{as_number, as_text};

/// An event's id: a ULID, so ids sort by the time they were received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Ulid);

impl EventId {
    /// A new id for an event received at `at`. Ids made in one process always increase, so
    /// "newest first" is arrival order even within one millisecond.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(monotonic_ulid(at))
    }

    /// The least id of any event received at `millis` (Unix ms) or later. An id's time is its
    /// event's `received_at`, or at most [`ID_DRIFT_MILLIS`] later ([`monotonic_ulid`]), so the
    /// stores read a range of arrival times as a range of ids, through the primary key.
    pub fn first_at_millis(millis: i64) -> Self {
        // A ULID's time has 48 bits; beyond them it would wrap to an early id.
        const LATEST: i64 = (1 << 48) - 1;
        Self(Ulid::from_parts(millis.clamp(0, LATEST) as u64, 0))
    }
}

/// How much later than the time it is made for an id's time may be (see [`monotonic_ulid`]).
pub const ID_DRIFT_MILLIS: i64 = 1_000;

/// A ULID for `at` that is greater than every ULID this process made before — unless that
/// would put its time more than [`ID_DRIFT_MILLIS`] after `at`. Handlers take their clock
/// readings a moment before they ask for ids, so a reading a millisecond older than the last
/// id's gets the last id plus one; a clock stepping back further gets an id of its own time.
/// So an id's time is never earlier than `at` nor more than a second later, and the stores can
/// read times as ids ([`EventId::first_at_millis`]).
pub fn monotonic_ulid(at: DateTime<Utc>) -> Ulid {
    static LAST: std::sync::Mutex<Option<Ulid>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let id = next_ulid(*last, at);
    *last = Some(id);
    id
}

/// The id after `last` for `at`: `last` plus one while that stays within the drift of `at`,
/// else a fresh one of `at`'s time.
fn next_ulid(last: Option<Ulid>, at: DateTime<Utc>) -> Ulid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let drift = ID_DRIFT_MILLIS.unsigned_abs();
    // Incrementing overflows only after 2^80 ids in one millisecond; a fresh random id is
    // still unique then, only not ordered after the others.
    last.filter(|last| (millis..=millis + drift).contains(&last.timestamp_ms()))
        .and_then(|last| last.increment().ok())
        .unwrap_or_else(|| Ulid::from_datetime(at.into()))
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EventId {
    type Err = ulid::DecodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(text).map(Self)
    }
}

/// The canonical, vendor-neutral kinds. Besides these, `crm.<entity>.<action>` and
/// `custom.<name>` are accepted (see [`Kind::parse`]).
pub const CANONICAL_KINDS: &[&str] = &[
    "call.started",
    "call.answered",
    "call.finished",
    "call.missed",
    "callback.requested",
    "chat.accepted",
    "chat.updated",
    "chat.finished",
    "chat.assigned",
    "message.offline",
    "message.agent",
    "form.submitted",
    "contact.updated",
    "unknown",
];

/// A validated event kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kind(String);

/// Why a kind was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown kind `{0}`; expected one of {list}, `crm.<entity>.<action>` or `custom.<name>`",
    list = CANONICAL_KINDS.join(", ")
)]
pub struct KindError(String);

impl Kind {
    /// The kind of events no plugin rule recognised. They are stored and routable all the same.
    pub fn unknown() -> Self {
        Self("unknown".to_owned())
    }

    /// Accepts a canonical kind, `crm.<entity>.<action>` or `custom.<name>` (lower-case words
    /// of letters, digits and underscores).
    ///
    /// # Errors
    /// Anything else, with the accepted set in the message.
    pub fn parse(text: &str) -> Result<Self, KindError> {
        let word =
            |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let parts: Vec<&str> = text.split('.').collect();
        let valid = CANONICAL_KINDS.contains(&text)
            || (parts.len() == 3 && parts[0] == "crm" && word(parts[1]) && word(parts[2]))
            || (parts.len() >= 2 && parts[0] == "custom" && parts[1..].iter().all(|p| word(p)));
        if valid { Ok(Self(text.to_owned())) } else { Err(KindError(text.to_owned())) }
    }

    /// The kind as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One normalised webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub received_at: DateTime<Utc>,
    /// The plugin that understood it: `jivo`, `envybox`, `callkeeper`, or a user's plugin.
    pub vendor: String,
    /// The vendor's own name for what happened (`offline_message`, `call_info`).
    pub event: String,
    pub kind: Kind,
    pub fields: Fields,
    /// The whole body as JSON; a form becomes an object.
    pub payload: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_accept_the_canonical_set_and_namespaces() {
        for ok in ["call.missed", "unknown", "crm.deal.created", "crm.client_tag.merged", "custom.lead"] {
            assert!(Kind::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["call.mised", "crm.deal", "crm.Deal.created", "custom.", "", "CALL.MISSED"] {
            assert!(Kind::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_sort_by_time() {
        let early = EventId::new(DateTime::from_timestamp(1_000, 0).unwrap());
        let late = EventId::new(DateTime::from_timestamp(2_000, 0).unwrap());
        assert!(early < late);
        assert_eq!(early.to_string().parse::<EventId>().unwrap(), early);
    }

    #[test]
    fn ids_stay_in_order_and_within_a_second_of_their_time() {
        let at = DateTime::from_timestamp_millis(1_600_000_000_000).unwrap();
        let ms = |delta: i64| at + chrono::TimeDelta::milliseconds(delta);
        let first = next_ulid(None, at);
        assert_eq!(first.timestamp_ms(), 1_600_000_000_000);
        let same_millisecond = next_ulid(Some(first), at);
        assert!(same_millisecond > first);
        // A clock reading a little older than the last id's: after it, a little late.
        let last = next_ulid(None, ms(3));
        let bumped = next_ulid(Some(last), at);
        assert!(bumped > last);
        assert_eq!(bumped.timestamp_ms(), 1_600_000_000_003);
        // Further back than the drift (a clock stepping back, a replay): its own time.
        let last = next_ulid(None, ms(ID_DRIFT_MILLIS + 1));
        assert_eq!(next_ulid(Some(last), at).timestamp_ms(), 1_600_000_000_000);
        // A later time than the last id's starts afresh at that time.
        assert_eq!(next_ulid(Some(first), ms(7)).timestamp_ms(), 1_600_000_000_007);
    }

    #[test]
    fn first_at_bounds_the_ids_of_a_millisecond() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let ms = at.timestamp_millis();
        let id = EventId::new(at);
        assert!(EventId::first_at_millis(ms) <= id);
        assert!(id < EventId::first_at_millis(ms + ID_DRIFT_MILLIS + 1));
        // Compared as text too, as the stores compare them.
        assert!(EventId::first_at_millis(ms).to_string() <= id.to_string());
        assert!(id.to_string() < EventId::first_at_millis(ms + ID_DRIFT_MILLIS + 1).to_string());
        // Out of a ULID's range: clamped, not wrapped round to an early id.
        assert!(EventId::first_at_millis(i64::MAX) > id);
        assert_eq!(EventId::first_at_millis(-5), EventId::first_at_millis(0));
    }
}
