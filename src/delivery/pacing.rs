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

/// A bucket and the least interval between two sends in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    pub key: String,
    pub interval: Duration,
}

/// When each bucket is next free.
#[derive(Debug, Default)]
pub struct Pacer {
    free_at: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    /// Takes a turn in every bucket, or says when all of them will be free.
    ///
    /// # Errors
    /// The instant to try again at; nothing is reserved then.
    pub fn reserve(&self, paces: &[Pace], now: Instant) -> Result<(), Instant> {
        let mut free_at = self.free_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let ready = paces.iter().filter_map(|p| free_at.get(&p.key)).copied().max().unwrap_or(now);
        if ready > now {
            return Err(ready);
        }
        for pace in paces {
            free_at.insert(pace.key.clone(), now + pace.interval);
        }
        Ok(())
    }

    /// Keeps the buckets closed for `pause` (the destination asked for it).
    pub fn pause(&self, paces: &[Pace], now: Instant, pause: Duration) {
        let mut free_at = self.free_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for pace in paces {
            let until = now + pause;
            let slot = free_at.entry(pace.key.clone()).or_insert(until);
            *slot = (*slot).max(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(key: &str, ms: u64) -> Pace {
        Pace { key: key.into(), interval: Duration::from_millis(ms) }
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
    fn a_pause_closes_the_buckets_for_everyone_behind() {
        let pacer = Pacer::default();
        let t0 = Instant::now();
        let chat = [pace("chat:a", 100)];
        pacer.reserve(&chat, t0).unwrap();
        pacer.pause(&chat, t0, Duration::from_secs(5));
        assert_eq!(pacer.reserve(&chat, t0 + Duration::from_secs(1)), Err(t0 + Duration::from_secs(5)));
        assert_eq!(pacer.reserve(&chat, t0 + Duration::from_secs(5)), Ok(()));
    }
}
