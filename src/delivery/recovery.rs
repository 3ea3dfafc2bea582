//! Recovery: when a destination answers again after an outage, its deliveries waiting out a
//! retry step are due at once, so a three-minute SMTP outage does not delay mail by the
//! twelve minutes of the schedule's next steps.
//!
//! Each instance tracks the outputs whose last attempt here failed and will be retried; the
//! first success after that pulls the output's waiting deliveries forward in the store (every
//! instance's, on PostgreSQL). A success on an output that was not failing costs nothing.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::store::Next;

/// The outputs whose last attempt failed and will be retried.
#[derive(Debug, Default)]
pub struct Outages(Mutex<HashSet<String>>);

impl Outages {
    /// Notes how an attempt to `output` ended. True when it answered again after failing: its
    /// waiting deliveries should be pulled forward now.
    pub fn recovered(&self, output: &str, next: Next) -> bool {
        let mut failing = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match next {
            Next::Delivered => failing.remove(output),
            Next::RetryAt(_) => {
                if !failing.contains(output) {
                    failing.insert(output.to_owned());
                }
                false
            }
            // A permanent failure says nothing of whether the destination is up.
            Next::Dead | Next::Expired => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn only_a_success_after_a_failure_is_a_recovery() {
        let outages = Outages::default();
        assert!(!outages.recovered("mail", Next::Delivered), "never failed");
        assert!(!outages.recovered("mail", Next::RetryAt(Utc::now())));
        assert!(!outages.recovered("mail", Next::RetryAt(Utc::now())));
        assert!(!outages.recovered("crm", Next::Delivered), "another output");
        assert!(outages.recovered("mail", Next::Delivered));
        assert!(!outages.recovered("mail", Next::Delivered), "once");
        assert!(!outages.recovered("mail", Next::Dead));
    }
}
