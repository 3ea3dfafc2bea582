//! Recovery: when a destination answers again after an outage, its deliveries waiting out a
//! retry step are due at once, so a three-minute SMTP outage does not delay mail by the
//! twelve minutes of the schedule's next steps.
//!
//! Each instance tracks the outputs whose last failed attempt here will be retried; the first
//! success of an attempt that *started after* that failure pulls the output's waiting deliveries
//! forward in the store (every instance's, on PostgreSQL). A success that began before the
//! failure proves nothing about the destination now. A rate limit is not an outage: the
//! destination is up and named its wait, which pulling forward would break. A success on an
//! output that was not failing costs nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

/// What one attempt says of its destination's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// It took the message.
    Answered,
    /// It could not be reached or failed in a way worth retrying.
    Down,
    /// Nothing: a rate limit (it is up, and asked to wait), a permanent refusal, an expiry.
    Unknown,
}

/// The outputs whose last failure will be retried, with when the failing attempt started.
#[derive(Debug, Default)]
pub struct Outages(Mutex<HashMap<String, Instant>>);

impl Outages {
    /// Notes how an attempt to `output` that began at `started` ended. True when it answered
    /// again after failing: its waiting deliveries should be pulled forward now.
    pub fn recovered(&self, output: &str, started: Instant, health: Health) -> bool {
        let mut failing = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match health {
            Health::Answered => match failing.get(output) {
                Some(failed) if started >= *failed => failing.remove(output).is_some(),
                _ => false,
            },
            Health::Down => {
                let failed = failing.entry(output.to_owned()).or_insert(started);
                *failed = (*failed).max(started);
                false
            }
            Health::Unknown => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_a_success_after_a_failure_is_a_recovery() {
        let outages = Outages::default();
        let now = Instant::now();
        assert!(!outages.recovered("mail", now, Health::Answered), "never failed");
        assert!(!outages.recovered("mail", now, Health::Down));
        assert!(!outages.recovered("mail", now, Health::Down));
        assert!(!outages.recovered("crm", now, Health::Answered), "another output");
        assert!(outages.recovered("mail", now, Health::Answered));
        assert!(!outages.recovered("mail", now, Health::Answered), "once");
        assert!(!outages.recovered("mail", now, Health::Unknown));
    }

    #[test]
    fn a_success_that_began_before_the_failure_proves_nothing() {
        let outages = Outages::default();
        let early = Instant::now();
        let late = early + Duration::from_millis(50);
        assert!(!outages.recovered("mail", late, Health::Down));
        assert!(!outages.recovered("mail", early, Health::Answered), "in flight when it went down");
        assert!(outages.recovered("mail", late + Duration::from_millis(1), Health::Answered));
    }

    #[test]
    fn a_rate_limit_is_not_an_outage() {
        let outages = Outages::default();
        let now = Instant::now();
        assert!(!outages.recovered("tg", now, Health::Unknown));
        assert!(!outages.recovered("tg", now, Health::Answered), "nothing to pull forward");
    }
}
