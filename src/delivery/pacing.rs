//! Pacing: sending no faster than a destination allows, so bursts queue instead of failing.
//!
//! An output names the buckets a message counts against (Telegram: the chat, and the bot as a
//! whole) and the least interval between two sends in each. A delivery whose buckets are not
//! free is deferred to when they are, without counting an attempt; a `Retry-After` pauses its
//! buckets so the deliveries queued behind it wait too instead of each meeting the same 429.
//! Pacing is per instance: with several instances on PostgreSQL each paces its own sends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::outputs::Pace;

#[derive(Debug, Default)]
struct Bucket {
    free_at: Option<Instant>,
    busy: bool,
}

/// When each bucket is next free.
#[derive(Debug, Default)]
pub struct Pacer {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Pacer {
    /// Takes a turn in every bucket, or says when to try again.
    ///
    /// # Errors
    /// The instant to try again at; nothing is reserved then.
    pub fn reserve(&self, paces: &[Pace], now: Instant) -> Result<(), Instant> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ready = now;
        for pace in paces {
            if let Some(bucket) = buckets.get(&pace.key) {
                if bucket.busy {
                    ready = ready.max(now + pace.interval);
                }
                ready = ready.max(bucket.free_at.unwrap_or(now));
            }
        }
        if ready > now {
            return Err(ready);
        }
        for pace in paces {
            let bucket = buckets.entry(pace.key.clone()).or_default();
            bucket.free_at = Some(now + pace.interval);
            bucket.busy = pace.exclusive;
        }
        Ok(())
    }

    /// Ends a turn taken with [`Pacer::reserve`]; with `pause` (the destination asked to slow
    /// down) the buckets stay closed that long.
    pub fn finish(&self, paces: &[Pace], now: Instant, pause: Option<Duration>) {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for pace in paces {
            let bucket = buckets.entry(pace.key.clone()).or_default();
            bucket.busy = false;
            if let Some(pause) = pause {
                bucket.free_at = Some(bucket.free_at.map_or(now + pause, |at| at.max(now + pause)));
            }
        }
    }
}

/// Attempts in flight per output, bounded by the output's `max_in_flight`.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: std::sync::Arc<Mutex<HashMap<String, usize>>>,
}

/// A place among an output's attempts in flight, given back when dropped.
#[derive(Debug)]
pub struct Turn {
    counts: std::sync::Arc<Mutex<HashMap<String, usize>>>,
    output: String,
}

impl InFlight {
    /// A turn for `output`, unless `limit` attempts to it are already in flight.
    pub fn enter(&self, output: &str, limit: usize) -> Option<Turn> {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(output.to_owned()).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Turn { counts: self.counts.clone(), output: output.to_owned() })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.output) {
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(key: &str, ms: u64) -> Pace {
        Pace { key: key.into(), interval: Duration::from_millis(ms), exclusive: false }
    }

    #[test]
    fn turns_are_spaced_per_bucket() {
        let pacer = Pacer::default();
        let t0 = Instant::now();
        let chat_a = [pace("chat:a", 1000), pace("bot", 40)];
        let chat_b = [pace("chat:b", 1000), pace("bot", 40)];
        assert_eq!(pacer.reserve(&chat_a, t0), Ok(()));
        assert_eq!(pacer.reserve(&chat_a, t0 + Duration::from_millis(500)), Err(t0 + Duration::from_secs(1)));
        assert_eq!(
            pacer.reserve(&chat_b, t0 + Duration::from_millis(10)),
            Err(t0 + Duration::from_millis(40)),
            "the bot's bucket"
        );
        assert_eq!(pacer.reserve(&chat_b, t0 + Duration::from_millis(40)), Ok(()));
        assert_eq!(pacer.reserve(&chat_a, t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn in_flight_is_bounded_per_output() {
        let limits = InFlight::default();
        let first = limits.enter("crm", 2);
        let second = limits.enter("crm", 2);
        assert!(first.is_some() && second.is_some());
        assert!(limits.enter("crm", 2).is_none(), "the third waits");
        assert!(limits.enter("tg", 2).is_some(), "other outputs are not held up");
        drop(first);
        assert!(limits.enter("crm", 2).is_some(), "a finished attempt frees its place");
    }

    #[test]
    fn a_pause_closes_the_buckets_for_everyone_behind() {
        let pacer = Pacer::default();
        let t0 = Instant::now();
        let chat = [pace("chat:a", 100)];
        pacer.reserve(&chat, t0).unwrap();
        pacer.finish(&chat, t0, Some(Duration::from_secs(5)));
        assert_eq!(pacer.reserve(&chat, t0 + Duration::from_secs(1)), Err(t0 + Duration::from_secs(5)));
        assert_eq!(pacer.reserve(&chat, t0 + Duration::from_secs(5)), Ok(()));
    }

    #[test]
    fn an_exclusive_bucket_waits_for_the_answer() {
        let pacer = Pacer::default();
        let t0 = Instant::now();
        let chat = [Pace { key: "chat:a".into(), interval: Duration::from_millis(50), exclusive: true }];
        pacer.reserve(&chat, t0).unwrap();
        // The interval has passed but the first send has no answer yet.
        assert!(pacer.reserve(&chat, t0 + Duration::from_millis(200)).is_err());
        pacer.finish(&chat, t0 + Duration::from_millis(210), None);
        assert_eq!(pacer.reserve(&chat, t0 + Duration::from_millis(210)), Ok(()));
    }
}
