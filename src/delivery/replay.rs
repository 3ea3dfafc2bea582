//! Replay: a stored event through today's routes again, as new deliveries beside its old ones.
//! By default only to the outputs it has not reached: a replay after a CRM outage must not send
//! the team's Telegram chat the same alert again.

use chrono::Utc;

use super::DeliveryConfig;
use crate::store::{Delivery, DeliveryState, NewDelivery, Queue, StoredEvent};

/// Which outputs a replay sends to, of those today's routes give the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReplayTo {
    /// Those where it has not arrived and is not on its way: never delivered there, or
    /// only failed (dead, expired, dismissed).
    #[default]
    NotReached,
    /// Every one, again.
    All,
    /// Only these.
    Outputs(Vec<String>),
}

impl ReplayTo {
    fn takes(&self, output: &str, earlier: &[Delivery]) -> bool {
        match self {
            Self::All => true,
            Self::Outputs(chosen) => chosen.iter().any(|name| name == output),
            Self::NotReached => !earlier.iter().any(|d| {
                d.output == output
                    && d.unless.is_none()
                    && matches!(d.state, DeliveryState::Delivered | DeliveryState::Pending)
            }),
        }
    }
}

/// Sends `stored` through today's routes again to the outputs `to` chooses, given its
/// `earlier` deliveries. A route's ttl counts from the replay, not from the original. Returns
/// the new deliveries (none when every output chosen has it already).
///
/// # Errors
/// The store cannot be written.
pub async fn replay(
    store: &dyn Queue,
    config: &dyn DeliveryConfig,
    stored: &StoredEvent,
    earlier: &[Delivery],
    to: &ReplayTo,
) -> Result<Vec<NewDelivery>, crate::store::StoreError> {
    let at = Utc::now();
    let plan = config.routes().plan(&stored.event, at, |output| config.sends_to(output));
    let deliveries: Vec<NewDelivery> = plan
        .deliveries
        .into_iter()
        .filter(|p| to.takes(&p.output, earlier))
        .map(|p| NewDelivery {
            not_before: p.after.and_then(|after| chrono::TimeDelta::from_std(after).ok()).map(|after| at + after),
            unless: p.unless,
            ..NewDelivery::planned_at(at, p.route, p.output, p.template, p.expires_at)
        })
        .collect();
    if !deliveries.is_empty() {
        store.add_deliveries(stored.event.id, &plan.routes, &deliveries).await?;
    }
    Ok(deliveries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(output: &str, state: DeliveryState) -> Delivery {
        Delivery {
            id: crate::event::monotonic_ulid(Utc::now()),
            event_id: crate::event::EventId::new(Utc::now()),
            route: "r".into(),
            output: output.into(),
            template: "t".into(),
            state,
            attempts: 1,
            next_attempt_at: Utc::now(),
            expires_at: None,
            created_at: Utc::now(),
            last_error: None,
            interrupted: 0,
            redraws: None,
            unless: None,
            dismissal: None,
        }
    }

    #[test]
    fn by_default_a_replay_goes_only_where_the_event_has_not_arrived() {
        let earlier = [
            delivery("tg", DeliveryState::Delivered),
            delivery("crm", DeliveryState::Dead),
            delivery("mail", DeliveryState::Pending),
        ];
        let default = ReplayTo::default();
        assert!(!default.takes("tg", &earlier), "arrived");
        assert!(default.takes("crm", &earlier), "failed");
        assert!(!default.takes("mail", &earlier), "still on its way");
        assert!(default.takes("log", &earlier), "a route today sends it somewhere new");
        assert!(ReplayTo::All.takes("tg", &earlier));
        let chosen = ReplayTo::Outputs(vec!["tg".into()]);
        assert!(chosen.takes("tg", &earlier) && !chosen.takes("crm", &earlier));
    }
}
