//! The queue's doorbell: whoever stores new deliveries rings it, and idle delivery workers wake
//! at once instead of at their next poll.

use std::sync::Arc;

use tokio::sync::Notify;

/// A handle to wake the delivery workers when new deliveries were stored. Clones ring the same
/// bell; a ring with nobody waiting is kept for the next waiter, so none is lost.
#[derive(Debug, Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next ring (or at once, for a ring nobody has waited for yet).
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}
