//! Live cards: the events of one run of a sequence (a call, from its `start`) share one message
//! at an output that can continue one (Telegram), instead of a message per webhook.
//!
//! Before an attempt, delivery reads the run's other deliveries to the same output from the
//! store (so it holds after a restart and across instances sharing PostgreSQL) and decides
//! what the message continues: the route's `card` says `edit` (the default: the card is
//! edited in place), `reply` (a new message replying to the first) or `new`. An earlier
//! delivery of the run still on its way is waited for, so a `start` and its `end` a moment
//! later make one card, not two; one that waits out a long retry step is not.

use chrono::{DateTime, TimeDelta, Utc};

use super::DeliveryConfig;
use crate::event::EventId;
use crate::event::handling::{Action, CardEvent, Handling, Status, button_data};
use crate::outputs::{ActionButton, Continuation, Continues, Output};
use crate::router::CardMode;
use crate::store::{CardDelivery, Delivery, DeliveryState, Queue, StoreError};

/// An earlier delivery due within this is waited for: it is being sent or about to be.
const WAIT_FOR_EARLIER: TimeDelta = TimeDelta::seconds(30);

/// What an attempt does about the run's card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Card {
    Send(Box<Sending>),
    /// An escalation whose card was handled in time: not sent, and why.
    Cancel(String),
    /// An earlier delivery of the run is on its way: come back when it has its message.
    Wait,
}

/// How the message goes out, as a card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Sending {
    /// The earlier message it continues, or none for a new one.
    pub continues: Option<Continues>,
    /// Who took the call: templates show it on the card.
    pub handling: Option<Handling>,
    /// The call so far, for templates.
    pub events: Vec<CardEvent>,
    /// The route's action buttons the card offers in its state.
    pub actions: Vec<ActionButton>,
    /// Within the route's `silent` schedule: no sound.
    pub silent: bool,
    /// The route's forum topic for this output.
    pub topic: Option<i32>,
}

/// What `delivery` does about its run's card at `output`.
///
/// # Errors
/// The store cannot be read.
pub(super) async fn card(
    store: &dyn Queue,
    config: &dyn DeliveryConfig,
    delivery: &Delivery,
    output: &dyn Output,
    now: DateTime<Utc>,
) -> Result<Card, StoreError> {
    // A route since deleted still has its cards continued, without buttons.
    let route = config.routes().iter().find(|route| route.name == delivery.route);
    let target = route.and_then(|route| route.targets.iter().find(|target| target.output == delivery.output));
    // Judged when sent: a reminder due at night is silent, though its call came by day.
    let silent = route.and_then(|route| route.silent.as_ref()).is_some_and(|schedule| schedule.applies(now));
    let topic = target.and_then(|target| target.topic);
    if !output.continues_messages() && delivery.unless.is_none() {
        return Ok(Card::Send(Box::new(Sending { silent, topic, ..Sending::default() })));
    }
    let state = store.card(delivery.event_id, &delivery.output).await?;
    if let Some(unless) = delivery.unless {
        if let Some(handling) = state.handling.as_ref().filter(|h| h.status.reached(unless)) {
            return Ok(Card::Cancel(handled(handling)));
        }
        // Each event of a call the route takes plans its reminders: the call's first stands.
        let covered = state.deliveries.iter().any(|d| {
            d.reminder
                && d.id < delivery.id
                && (d.route.as_str(), d.template.as_str()) == (delivery.route.as_str(), delivery.template.as_str())
                && matches!(d.state, DeliveryState::Pending | DeliveryState::Delivered)
        });
        if covered {
            return Ok(Card::Cancel("cancelled: an earlier reminder of this call stands for it".to_owned()));
        }
    }
    // A redraw after a press shows the event pressed on; a later event of the call already on
    // the card was drawn with the press, so the redraw would turn the card back.
    if delivery.redraws.is_some()
        && state.deliveries.iter().any(|d| !d.reminder && d.remote_id.is_some() && d.event_id > delivery.event_id)
    {
        return Ok(Card::Cancel("not needed: the card already shows a later event of the call".to_owned()));
    }
    if !output.continues_messages() {
        return Ok(Card::Send(Box::new(Sending {
            handling: state.handling,
            events: state.events,
            silent,
            topic,
            ..Sending::default()
        })));
    }
    let (mode, buttons) = target.map_or((CardMode::Edit, &[][..]), |t| (t.card, t.buttons.as_slice()));
    // A reminder replies to the card, so the chat hears it: an edit would be silent.
    let mode = if delivery.unless.is_some() { CardMode::Reply } else { mode };
    let continues = match (&delivery.redraws, mode) {
        // A redraw after a press edits the message pressed on, whatever the route says now.
        (Some(remote_id), _) => {
            Some(Continues { remote_id: remote_id.clone(), how: Continuation::Edit, supersedes: None })
        }
        (None, CardMode::New) => None,
        // An offline message or a form is a card of its own: a replay, or a second route to the
        // same chat, sends another message.
        (None, _) if !state.in_sequence && delivery.unless.is_none() => None,
        (None, CardMode::Edit | CardMode::Reply) => {
            match decide(&state.deliveries, (delivery.id, delivery.event_id), mode, now) {
                Decision::Wait => return Ok(Card::Wait),
                // A reminder is a message beside the card: the card keeps its buttons.
                Decision::Continue(Some(continues)) if delivery.unless.is_some() => {
                    Some(Continues { supersedes: None, ..continues })
                }
                Decision::Continue(continues) => continues,
            }
        }
    };
    let offered = state.handling.as_ref().map_or_else(|| buttons.to_vec(), |h| h.offers(buttons));
    let english = config.templates().english();
    let actions = offered
        .into_iter()
        .map(|action: Action| ActionButton {
            label: action.label(english).to_owned(),
            data: button_data(action, delivery.event_id),
        })
        .collect();
    Ok(Card::Send(Box::new(Sending {
        continues,
        handling: state.handling,
        events: state.events,
        actions,
        silent,
        topic,
    })))
}

/// Why an escalation is not sent: who handled the card, and when.
fn handled(handling: &Handling) -> String {
    let (what, by, at) = match handling.status {
        Status::Done => ("called back", &handling.done_by, handling.done_at),
        Status::Taken | Status::New => ("taken", &handling.taken_by, handling.taken_at),
    };
    let by = by.as_ref().map_or_else(String::new, |p| format!(" by {}", p.name));
    let at = at.map_or_else(String::new, |at| format!(" at {}", at.format("%Y-%m-%d %H:%M:%S UTC")));
    format!("cancelled: the call was {what}{by}{at}")
}

/// What the run's deliveries say of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Continue this earlier message, or none: send a new one.
    Continue(Option<Continues>),
    Wait,
}

/// The decision, from the card's deliveries to the output (oldest first, `own` among them).
/// Reminders are messages beside the card: never edited, replied to or waited for.
fn decide(
    run: &[CardDelivery],
    (own, own_event): (ulid::Ulid, EventId),
    mode: CardMode,
    now: DateTime<Utc>,
) -> Decision {
    let others = || run.iter().filter(|d| d.id != own && !d.reminder);
    if others().any(|d| d.id < own && d.state == DeliveryState::Pending && d.next_attempt_at <= now + WAIT_FOR_EARLIER)
    {
        return Decision::Wait;
    }
    let sent: Vec<&CardDelivery> = others().filter(|d| d.remote_id.is_some()).collect();
    let (Some(first), Some(latest)) = (sent.first(), sent.last()) else {
        return Decision::Continue(None);
    };
    // A later event already shows on the card (this one waited out a retry, or is a replay):
    // editing would turn it back, so this one replies to it instead.
    let outdated = sent.iter().any(|d| d.event_id > own_event);
    let (earlier, how) = match mode {
        CardMode::Edit if !outdated => (latest, Continuation::Edit),
        CardMode::Edit => (latest, Continuation::Reply),
        CardMode::Reply | CardMode::New => (first, Continuation::Reply),
    };
    // A new message of the card takes the buttons over from the one that has them: the latest.
    let supersedes = latest.remote_id.clone();
    Decision::Continue(earlier.remote_id.clone().map(|remote_id| Continues { remote_id, how, supersedes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delivery of event `n` (its id orders as `n` does).
    fn event(n: u64) -> EventId {
        ulid::Ulid::from_parts(n, 0).to_string().parse().unwrap()
    }

    fn delivery(n: u64, state: DeliveryState, remote_id: Option<&str>, due_in: i64) -> CardDelivery {
        CardDelivery {
            id: ulid::Ulid::from_parts(n, 0),
            state,
            remote_id: remote_id.map(str::to_owned),
            next_attempt_at: Utc::now() + TimeDelta::seconds(due_in),
            event_id: event(n),
            route: "calls".into(),
            template: "call".into(),
            reminder: false,
        }
    }

    /// Continues `remote_id`; a new message of the card takes the buttons from `latest`.
    fn continues(remote_id: &str, how: Continuation, latest: &str) -> Decision {
        Decision::Continue(Some(Continues {
            remote_id: remote_id.to_owned(),
            how,
            supersedes: Some(latest.to_owned()),
        }))
    }

    #[test]
    fn a_card_is_edited_replied_to_or_left_as_the_route_says() {
        use DeliveryState::{Dead, Delivered, Pending};
        let now = Utc::now();
        let own = ulid::Ulid::from_parts(9, 0);
        let me = delivery(9, Pending, None, 0);
        let cases = [
            (vec![me.clone()], CardMode::Edit, Decision::Continue(None), "the first event of a run"),
            (
                vec![delivery(1, Delivered, Some("10"), 0), delivery(2, Delivered, Some("11"), 0), me.clone()],
                CardMode::Edit,
                continues("11", Continuation::Edit, "11"),
                "the card as it is now",
            ),
            (
                vec![delivery(1, Delivered, Some("10"), 0), delivery(2, Delivered, Some("11"), 0), me.clone()],
                CardMode::Reply,
                continues("10", Continuation::Reply, "11"),
                "a reply to the first",
            ),
            (
                vec![delivery(1, Delivered, Some("10"), 0), delivery(2, Pending, None, 5), me.clone()],
                CardMode::Edit,
                Decision::Wait,
                "an earlier event about to be sent is waited for",
            ),
            (
                vec![delivery(1, Delivered, Some("10"), 0), delivery(2, Pending, None, 600), me.clone()],
                CardMode::Edit,
                continues("10", Continuation::Edit, "10"),
                "not one that waits out a long retry step",
            ),
            (
                vec![delivery(1, Dead, None, 0), me.clone()],
                CardMode::Edit,
                Decision::Continue(None),
                "an earlier event that never arrived left no card",
            ),
            (
                vec![me.clone(), delivery(12, Delivered, Some("20"), 0)],
                CardMode::Edit,
                continues("20", Continuation::Reply, "20"),
                "a later event already on the card is not edited back",
            ),
            (
                vec![
                    delivery(1, Delivered, Some("10"), 0),
                    CardDelivery { event_id: event(1), ..delivery(10, Delivered, Some("20"), 0) },
                    CardDelivery { event_id: event(1), ..me.clone() },
                ],
                CardMode::Edit,
                continues("20", Continuation::Edit, "20"),
                "a replay of the first event, once nothing later is on the card, edits it",
            ),
            (
                vec![delivery(5, Delivered, Some("10"), 0), CardDelivery { event_id: event(3), ..me.clone() }],
                CardMode::Edit,
                continues("10", Continuation::Reply, "10"),
                "a replay of an event older than the card's replies rather than turn it back",
            ),
            (
                vec![
                    delivery(1, Delivered, Some("10"), 0),
                    CardDelivery { reminder: true, ..delivery(2, Delivered, Some("11"), 5) },
                    me.clone(),
                ],
                CardMode::Edit,
                continues("10", Continuation::Edit, "10"),
                "a reminder beside the card is neither edited nor waited for",
            ),
        ];
        for (run, mode, expected, why) in cases {
            let mine = run.iter().find(|d| d.id == own).map_or(event(9), |d| d.event_id);
            assert_eq!(decide(&run, (own, mine), mode, now), expected, "{why}");
        }
    }
}
