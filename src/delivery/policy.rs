//! The retry policy: when a failed delivery is tried again, and when it is given up.
//! Pure: the clock and the randomness are arguments.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Default schedule: quick retries for a blip, then longer waits for an outage.
pub const DEFAULT_SCHEDULE_SECS: &[u64] = &[5, 30, 120, 600, 1800, 3600];
/// Default: a delivery is given up a day after it was created.
pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 3600;
/// The shortest wait after a rate limit, whatever the destination named.
const MIN_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// Exponential backoff with jitter, honouring the destination's hints within limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
    max_age: Duration,
}

/// What to do after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    RetryAt(DateTime<Utc>),
    /// The next try would come after the delivery's maximum age.
    GiveUp,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(
            DEFAULT_SCHEDULE_SECS.iter().map(|s| Duration::from_secs(*s)).collect(),
            Duration::from_secs(DEFAULT_MAX_AGE_SECS),
        )
    }
}

impl RetryPolicy {
    /// `schedule` is the wait after the 1st, 2nd, … failure; its last step repeats.
    pub fn new(schedule: Vec<Duration>, max_age: Duration) -> Self {
        let schedule = if schedule.is_empty() { vec![Duration::from_secs(60)] } else { schedule };
        Self { schedule, max_age }
    }

    /// The wait after failure number `failures` (1 for the first). `random` in `[0, 1)` spreads
    /// retries ±20% so that a destination coming back is not hit by every delivery at once.
    /// A `hint` (`Retry-After`) lengthens the wait but is capped at the schedule's longest step:
    /// a hostile or broken header cannot park a delivery for days.
    pub fn delay(&self, failures: u32, hint: Option<Duration>, random: f64) -> Duration {
        let index = usize::try_from(failures.saturating_sub(1)).unwrap_or(usize::MAX).min(self.schedule.len() - 1);
        let base = self.schedule[index];
        let jittered = base.mul_f64(0.8 + 0.4 * random.clamp(0.0, 1.0));
        let cap = self.schedule.iter().max().copied().unwrap_or(base);
        match hint {
            Some(hint) => jittered.max(hint.min(cap)),
            None => jittered,
        }
    }

    /// Retry at a time, or give up if that time is past the delivery's maximum age.
    pub fn after_failure(
        &self,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        failures: u32,
        hint: Option<Duration>,
        random: f64,
    ) -> Verdict {
        let delay = TimeDelta::from_std(self.delay(failures, hint, random)).unwrap_or(TimeDelta::MAX);
        let at = now + delay;
        self.unless_too_old(created_at, at)
    }

    /// Retry after a "slow down" that named its wait (Telegram's `retry_after`, a 429's
    /// `Retry-After`): that wait, plus up to a tenth so a chat's queued messages do not all come
    /// back at one instant — not the schedule's next step, which is for outages: three flood
    /// waits of 2 s in a row cost 6 s, not minutes. At least a second, so a `Retry-After: 0`
    /// cannot turn into a loop of immediate retries; capped at the schedule's longest step like
    /// any hint, and given up past the maximum age.
    pub fn after_rate_limit(
        &self,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        wait: Duration,
        random: f64,
    ) -> Verdict {
        let cap = self.schedule.iter().max().copied().unwrap_or(wait);
        let wait = wait.max(MIN_RATE_LIMIT_WAIT).min(cap.max(MIN_RATE_LIMIT_WAIT));
        let wait = wait.mul_f64(1.0 + 0.1 * random.clamp(0.0, 1.0));
        self.unless_too_old(created_at, now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX))
    }

    fn unless_too_old(&self, created_at: DateTime<Utc>, at: DateTime<Utc>) -> Verdict {
        let deadline = created_at + TimeDelta::from_std(self.max_age).unwrap_or(TimeDelta::MAX);
        if at > deadline { Verdict::GiveUp } else { Verdict::RetryAt(at) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_then_repeats_its_last_step() {
        let policy = RetryPolicy::default();
        let secs: Vec<u64> = (1..=8).map(|n| policy.delay(n, None, 0.5).as_secs()).collect();
        assert_eq!(secs, [5, 30, 120, 600, 1800, 3600, 3600, 3600]);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(2, None, 0.0), Duration::from_secs(24));
        assert_eq!(policy.delay(2, None, 0.999_999).as_secs(), 35);
    }

    #[test]
    fn hints_lengthen_but_are_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, Some(Duration::from_secs(42)), 0.5), Duration::from_secs(42));
        assert_eq!(
            policy.delay(3, Some(Duration::from_secs(1)), 0.5),
            Duration::from_secs(120),
            "a short hint never shortens"
        );
        assert_eq!(policy.delay(1, Some(Duration::from_secs(86_400 * 30)), 0.5), Duration::from_secs(3600), "capped");
    }

    #[test]
    fn a_named_wait_is_kept_to_not_the_schedule() {
        let policy = RetryPolicy::default();
        let created = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let now = created + TimeDelta::seconds(30);
        // The fourth failure would wait 600 s by the schedule; Telegram asked for 2 s.
        let at = |random| match policy.after_rate_limit(created, now, Duration::from_secs(2), random) {
            Verdict::RetryAt(at) => (at - now).num_milliseconds(),
            Verdict::GiveUp => panic!("within the maximum age"),
        };
        assert_eq!(at(0.0), 2000);
        assert_eq!(at(0.999), 2199);
        let hostile = policy.after_rate_limit(created, now, Duration::from_secs(86_400 * 30), 0.0);
        assert_eq!(hostile, Verdict::RetryAt(now + TimeDelta::seconds(3600)), "capped at the longest step");
        let late = created + TimeDelta::seconds(86_399);
        assert_eq!(policy.after_rate_limit(created, late, Duration::from_secs(2), 0.0), Verdict::GiveUp);
        assert_eq!(
            policy.after_rate_limit(created, now, Duration::ZERO, 0.0),
            Verdict::RetryAt(now + TimeDelta::seconds(1)),
            "a zero wait is still a second"
        );
    }

    #[test]
    fn gives_up_past_the_maximum_age() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(60)], Duration::from_secs(300));
        let created = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let early = created + TimeDelta::seconds(100);
        assert_eq!(
            policy.after_failure(created, early, 1, None, 0.5),
            Verdict::RetryAt(early + TimeDelta::seconds(60))
        );
        let late = created + TimeDelta::seconds(250);
        assert_eq!(policy.after_failure(created, late, 5, None, 0.5), Verdict::GiveUp);
    }
}
