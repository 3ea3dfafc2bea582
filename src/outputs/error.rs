//! `DeliveryError`: what went wrong with one attempt, and whether trying again can help.

use std::fmt;
use std::time::Duration;

/// What the delivery loop should do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Try again; `after` is the destination's own hint (`Retry-After`, Telegram `retry_after`).
    Retry { after: Option<Duration> },
    /// Trying again cannot help (a 403 stays a 403): dead-letter it now, with the answer.
    Permanent,
}

/// Why an attempt failed: a closed set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Network,
    Timeout,
    RateLimited,
    ServerError,
    ClientError,
    Auth,
    Rejected,
    Template,
    Config,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::ClientError => "client_error",
            Self::Auth => "auth",
            Self::Rejected => "rejected",
            Self::Template => "template",
            Self::Config => "config",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed attempt. `detail` is for operators: the remote answer (capped), never a secret.
#[derive(Debug, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct DeliveryError {
    pub disposition: Disposition,
    pub reason: Reason,
    pub detail: String,
    /// What the operator must change before any delivery to this destination can succeed (the
    /// bot was removed from the chat, a password is refused): shown on the Status page.
    pub action: Option<String>,
}

/// Remote answers kept in `detail` are cut to this many bytes.
pub const DETAIL_LIMIT: usize = 2048;

impl DeliveryError {
    pub fn retry(reason: Reason, detail: impl Into<String>) -> Self {
        Self { disposition: Disposition::Retry { after: None }, reason, detail: cap(detail.into()), action: None }
    }

    pub fn retry_after(reason: Reason, after: Duration, detail: impl Into<String>) -> Self {
        Self {
            disposition: Disposition::Retry { after: Some(after) },
            reason,
            detail: cap(detail.into()),
            action: None,
        }
    }

    pub fn permanent(reason: Reason, detail: impl Into<String>) -> Self {
        Self { disposition: Disposition::Permanent, reason, detail: cap(detail.into()), action: None }
    }

    /// Says what the operator must change: every later delivery to this destination fails too.
    #[must_use]
    pub fn needs_operator(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.disposition, Disposition::Retry { .. })
    }
}

fn cap(mut detail: String) -> String {
    if detail.len() > DETAIL_LIMIT {
        let mut end = DETAIL_LIMIT;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    detail
}
