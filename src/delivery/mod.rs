//! Delivery: drives every (event, route, output) to an outcome the operator can see.
//!
//! Stage 5 of the pipeline (… → store → **delivery** → render → outputs). Workers claim due deliveries
//! from the store under a lease, render the route's template for the output, make one attempt,
//! and record it with its answer. Retryable failures wait as [`policy::RetryPolicy`] says;
//! permanent ones, and those past the maximum age, are dead-lettered with the last answer.
//! Nothing is dropped silently.

mod cards;
mod compose;
pub mod pacing;
pub mod policy;
mod recovery;
mod replay;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use compose::compose;
pub use policy::RetryPolicy;
pub use replay::{ReplayTo, replay};

use crate::event::Event;
use crate::metrics as m;
use crate::outputs::{self, Attempt, DeliveryError, Disposition, OutputEntry, Reason};
use crate::render::{RenderContext, TemplateSet};
use crate::router::Routes;
use crate::store::{AttemptRecord, Delivery, Next, Queue, SENT_PART_KEEP, Wake};

/// Default for `delivery.lease_secs`: how long a worker holds a claimed delivery before another
/// may take it over (on PostgreSQL, when its instance died). Longer than an attempt may take
/// ([`ATTEMPT_TIMEOUT`]), so a live worker never loses one.
pub const LEASE: Duration = Duration::from_secs(45);
/// An attempt that takes longer than this is abandoned as a timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a delivery waits for an earlier event of its call to reach the same output first.
const CARD_WAIT: chrono::TimeDelta = chrono::TimeDelta::milliseconds(300);
/// When idle, look for due work at least this often (deliveries come due by the clock).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// `[delivery]` settings.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub policy: RetryPolicy,
    /// Attempts in flight at once, across all outputs.
    pub concurrency: usize,
    /// How long shutdown waits for attempts in flight.
    pub shutdown_grace: Duration,
    /// How long a claim holds before another worker may take the delivery over.
    pub lease: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self { policy: RetryPolicy::default(), concurrency: 16, shutdown_grace: Duration::from_secs(10), lease: LEASE }
    }
}

/// What delivery reads of the running configuration, as a trait the configuration implements:
/// delivery depends on the store, the routes, the templates and the outputs, never on how
/// `config.toml` is read. A reload swaps the snapshot whole; each attempt reads the one current
/// when it starts.
pub trait DeliveryConfig: Send + Sync {
    fn routes(&self) -> &Routes;
    fn templates(&self) -> &TemplateSet;
    /// `[outputs.<name>]`, built; `None` once it is no longer configured.
    fn output(&self, name: &str) -> Option<&OutputEntry>;
    /// `[delivery]`.
    fn settings(&self) -> &DeliverySettings;

    /// Whether `output` is configured and switched on, so a delivery to it can be sent.
    fn sends_to(&self, output: &str) -> bool {
        self.output(output).is_some_and(|entry| entry.output.is_some())
    }
}

/// Runs delivery until `shutdown`, then waits (up to the grace period) for attempts in flight.
pub async fn run<C: DeliveryConfig + 'static>(
    store: Arc<dyn Queue>,
    config: Arc<ArcSwap<C>>,
    wake: Wake,
    shutdown: CancellationToken,
) {
    let settings = config.load().settings().clone();
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let pacer = Arc::new(pacing::Pacer::default());
    let limits = Arc::new(pacing::InFlight::default());
    let outages = Arc::new(recovery::Outages::default());
    let mut in_flight = JoinSet::new();
    loop {
        while in_flight.try_join_next().is_some() {}
        let free = u32::try_from(slots.available_permits()).unwrap_or(u32::MAX);
        if free == 0 && !shutdown.is_cancelled() {
            // Every slot is busy: nothing to claim or look up until an attempt ends.
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = in_flight.join_next(), if !in_flight.is_empty() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        let claimed = if shutdown.is_cancelled() {
            Vec::new()
        } else {
            match store.claim_due(Utc::now(), free, settings.lease).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(message = "Could not claim deliveries.", %error);
                    Vec::new()
                }
            }
        };
        if claimed.is_empty() {
            let wait = match store.next_due().await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(IDLE_POLL),
                _ => IDLE_POLL,
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
                _ = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
            continue;
        }
        for (delivery, event) in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else { break };
            let store = store.clone();
            let config = config.load_full();
            let (pacer, limits, outages) = (pacer.clone(), limits.clone(), outages.clone());
            in_flight.spawn(async move {
                let output = delivery.output.clone();
                if let Some((started, health)) =
                    paced_attempt(store.as_ref(), config.as_ref(), &pacer, &limits, delivery, event).await
                {
                    if outages.recovered(&output, started, health) {
                        pull_forward(store.as_ref(), &output).await;
                    }
                }
                drop(permit);
            });
        }
    }
    let grace = config.load().settings().shutdown_grace;
    if tokio::time::timeout(grace, async { while in_flight.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(
            message = "Attempts still in flight at shutdown; their leases will expire and they will be retried."
        );
    }
}

/// The deliveries to `output` that wait out a retry step, due now: it answers again.
async fn pull_forward(store: &dyn Queue, output: &str) {
    match store.pull_forward(output, Utc::now()).await {
        Ok(0) => {}
        Ok(pulled) => {
            tracing::info!(message = "Output answers again; its waiting deliveries are due now.", output, pulled)
        }
        Err(error) => {
            tracing::warn!(message = "Could not pull an output's waiting deliveries forward.", output, %error)
        }
    }
}

/// An attempt, unless the output's pacing says not yet: then the delivery is deferred to when
/// its buckets are free, without counting an attempt. Returns, when an attempt was made, when
/// it started and what it says of the destination's health.
async fn paced_attempt(
    store: &dyn Queue,
    config: &dyn DeliveryConfig,
    pacer: &pacing::Pacer,
    limits: &pacing::InFlight,
    delivery: Delivery,
    event: Event,
) -> Option<(tokio::time::Instant, recovery::Health)> {
    let entry = config.output(&delivery.output);
    let limit = entry.map_or(crate::outputs::DEFAULT_MAX_IN_FLIGHT, |e| e.max_in_flight);
    let Some(_turn) = limits.enter(&delivery.output, limit) else {
        // The output has as many attempts in flight as it may: come back shortly rather than
        // hold a worker that another output could use.
        if let Err(error) = store.defer(delivery.id, Utc::now() + chrono::TimeDelta::milliseconds(200)).await {
            tracing::warn!(message = "Could not defer a delivery; its lease will expire.", %error);
        }
        return None;
    };
    let output = entry.and_then(|e| e.output.as_ref());
    let sending = match output {
        Some(output) => match cards::card(store, config, &delivery, output.as_ref(), Utc::now()).await {
            Ok(cards::Card::Send(sending)) => *sending,
            Ok(cards::Card::Cancel(why)) => {
                cancel(store, config, &delivery, &why).await;
                return None;
            }
            Ok(cards::Card::Wait) => {
                // An earlier event of the same call is on its way to this output: its message
                // is the card this one continues.
                if let Err(error) = store.defer(delivery.id, Utc::now() + CARD_WAIT).await {
                    tracing::warn!(message = "Could not defer a delivery; its lease will expire.", %error);
                }
                return None;
            }
            Err(error) => {
                tracing::warn!(message = "Could not read the call's card; trying again shortly.", %error);
                if let Err(error) = store.defer(delivery.id, Utc::now() + CARD_WAIT).await {
                    tracing::warn!(message = "Could not defer a delivery; its lease will expire.", %error);
                }
                return None;
            }
        },
        None => cards::Sending::default(),
    };
    let paces = output.map(|o| o.pacing().to_vec()).unwrap_or_default();
    let now = tokio::time::Instant::now();
    if let Err(free_at) = pacer.reserve(&paces, now) {
        let wait = chrono::TimeDelta::from_std(free_at - now).unwrap_or_default();
        if let Err(error) = store.defer(delivery.id, Utc::now() + wait).await {
            tracing::warn!(message = "Could not defer a paced delivery; its lease will expire.", %error);
        }
        return None;
    }
    let (next, pause) = attempt(store, config, delivery, event, sending).await;
    pacer.finish(&paces, tokio::time::Instant::now(), pause);
    let health = match next {
        Next::Delivered => recovery::Health::Answered,
        Next::RetryAt(_) if pause.is_none() => recovery::Health::Down,
        Next::RetryAt(_) | Next::Dead | Next::Expired | Next::Cancelled => recovery::Health::Unknown,
    };
    Some((now, health))
}

/// One attempt at one delivery, recorded whatever happens. Returns what comes next for it, and
/// the destination's `Retry-After` when it asked to slow down, so its pacing buckets can pause.
#[tracing::instrument(name = "deliver", skip_all, fields(delivery_id = %delivery.id, event_id = %event.id, route = %delivery.route, output = %delivery.output, attempt = delivery.attempts + 1))]
async fn attempt(
    store: &dyn Queue,
    config: &dyn DeliveryConfig,
    delivery: Delivery,
    event: Event,
    card: cards::Sending,
) -> (Next, Option<Duration>) {
    let number = delivery.attempts + 1;
    let started = Utc::now();
    let clock = Instant::now();
    if delivery.expires_at.is_some_and(|at| at <= started) {
        let record = record(number, started, clock, "expired", None, "the route's ttl passed before it could be sent");
        finish(store, &delivery, record, Next::Expired).await;
        tracing::warn!(message = "Delivery expired: too late to be useful.");
        return (Next::Expired, None);
    }
    let (sent, result) = send(config, &delivery, event, number, card).await;
    let slow_down = match &result {
        Err(DeliveryError { reason: Reason::RateLimited, disposition: Disposition::Retry { after }, .. }) => {
            Some(after.unwrap_or(Duration::from_secs(1)))
        }
        _ => None,
    };
    let mut remote_id = None;
    let (outcome, next, reason, detail, action) = match result {
        Ok(receipt) => {
            remote_id = receipt.remote_id;
            ("delivered", Next::Delivered, None, receipt.summary, receipt.action)
        }
        Err(error) => {
            let next = match error.disposition {
                Disposition::Permanent => Next::Dead,
                Disposition::Retry { after } => {
                    let policy = &config.settings().policy;
                    let verdict = match (error.reason, after) {
                        (Reason::RateLimited, Some(wait)) => {
                            policy.after_rate_limit(delivery.created_at, Utc::now(), wait, fastrand::f64())
                        }
                        _ => policy.after_failure(delivery.created_at, Utc::now(), number, after, fastrand::f64()),
                    };
                    match verdict {
                        policy::Verdict::RetryAt(at) => Next::RetryAt(at),
                        policy::Verdict::GiveUp => Next::Dead,
                    }
                }
            };
            let outcome = if next == Next::Dead { "dead" } else { "retry" };
            (outcome, next, Some(error.reason.as_str().to_owned()), error.detail, error.action)
        }
    };
    match next {
        Next::Delivered => tracing::debug!(message = "Delivered.", detail = %detail),
        Next::RetryAt(at) => tracing::warn!(
            message = "Attempt failed; will retry.", reason = reason.as_deref().unwrap_or_default(), detail = %detail,
            retry_in_secs = (at - Utc::now()).num_seconds()
        ),
        Next::Dead | Next::Expired => tracing::error!(
            message = "Delivery failed for good; dead-lettered.", reason = reason.as_deref().unwrap_or_default(), detail = %detail
        ),
        Next::Cancelled => tracing::info!(message = "Not sent.", detail = %detail),
    }
    if let Some(action) = &action {
        tracing::warn!(message = "The output needs the operator.", action = %action);
    }
    let output = delivery.output.clone();
    // Raised by an attempt that says what to change, lowered by one that delivers without.
    match (&action, next) {
        (Some(_), _) => metrics::gauge!(m::OUTPUT_NEEDS_OPERATOR, "output" => output.clone()).set(1.0),
        (None, Next::Delivered) => metrics::gauge!(m::OUTPUT_NEEDS_OPERATOR, "output" => output.clone()).set(0.0),
        (None, _) => {}
    }
    let kind = output_type(config, &output);
    metrics::counter!(m::DELIVERY_ATTEMPTS, "output" => output.clone(), "output_type" => kind.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(m::DELIVERY_DURATION, "output" => output.clone()).record(clock.elapsed().as_secs_f64());
    if let Some(reason) = &reason {
        metrics::counter!(m::DELIVERY_FAILURES, "output" => output, "output_type" => kind, "reason" => reason.clone())
            .increment(1);
    }
    let record = AttemptRecord { action, remote_id, sent, ..record(number, started, clock, outcome, reason, &detail) };
    finish(store, &delivery, record, next).await;
    (next, slow_down)
}

/// Renders the delivery's message and sends it. Returns the message as rendered (to keep with
/// the attempt), once it could be, and what the output answered.
async fn send(
    config: &dyn DeliveryConfig,
    delivery: &Delivery,
    event: Event,
    number: u32,
    card: cards::Sending,
) -> (Option<String>, Result<outputs::Receipt, DeliveryError>) {
    let entry = config.output(&delivery.output).ok_or_else(|| {
        DeliveryError::permanent(Reason::Config, format!("output `{}` is no longer configured", delivery.output))
    });
    let output = match entry.and_then(|entry| {
        entry.output.as_ref().ok_or_else(|| {
            DeliveryError::permanent(Reason::Config, format!("output `{}` is switched off", delivery.output))
        })
    }) {
        Ok(output) => output,
        Err(error) => return (None, Err(error)),
    };
    let context = RenderContext::of_card(event, card.handling.as_ref(), &card.events);
    let message = match compose(config.templates(), &delivery.template, output.as_ref(), &context) {
        Ok(message) => message,
        Err(error) => return (None, Err(DeliveryError::permanent(Reason::Template, error.to_string()))),
    };
    let message = message.continuing(card.continues).with_actions(card.actions).quiet(card.silent).in_topic(card.topic);
    let sent = as_sent(&message);
    let attempt = Attempt { delivery: delivery.id.to_string(), number };
    let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, output.send(&message, &attempt)).await {
        Ok(result) => result,
        Err(_) => {
            Err(DeliveryError::retry(Reason::Timeout, format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())))
        }
    };
    (Some(sent), result)
}

/// The message's parts as a JSON object, each cut at [`SENT_PART_KEEP`] bytes — its settings
/// (an HTTP header made from a secret) left out.
fn as_sent(message: &outputs::Message) -> String {
    let parts: serde_json::Map<String, serde_json::Value> = message
        .parts()
        .map(|(part, text)| {
            let mut end = text.len().min(SENT_PART_KEEP);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            (part.name().to_owned(), serde_json::Value::String(text[..end].to_owned()))
        })
        .collect();
    serde_json::Value::Object(parts).to_string()
}

fn record(
    number: u32,
    started: chrono::DateTime<Utc>,
    clock: Instant,
    outcome: &str,
    reason: Option<String>,
    detail: &str,
) -> AttemptRecord {
    AttemptRecord {
        number,
        started_at: started,
        duration: clock.elapsed(),
        outcome: outcome.to_owned(),
        reason,
        detail: detail.to_owned(),
        action: None,
        remote_id: None,
        sent: None,
    }
}

/// The output's type, for metrics (`unknown` once it is no longer configured).
fn output_type(config: &dyn DeliveryConfig, output: &str) -> String {
    config.output(output).map_or_else(|| "unknown".to_owned(), |entry| entry.kind.clone())
}

/// An escalation whose card was handled in time: recorded as cancelled, never sent.
async fn cancel(store: &dyn Queue, config: &dyn DeliveryConfig, delivery: &Delivery, why: &str) {
    tracing::info!(message = "Escalation cancelled: the card was handled in time.", delivery_id = %delivery.id, detail = why);
    let kind = output_type(config, &delivery.output);
    metrics::counter!(
        m::DELIVERY_ATTEMPTS, "output" => delivery.output.clone(), "output_type" => kind, "outcome" => "cancelled"
    )
    .increment(1);
    let record = record(delivery.attempts + 1, Utc::now(), Instant::now(), "cancelled", None, why);
    finish(store, delivery, record, Next::Cancelled).await;
}

async fn finish(store: &dyn Queue, delivery: &Delivery, record: AttemptRecord, next: Next) {
    // If even this fails the lease expires and the delivery is tried again: at least once.
    if let Err(error) = store.finish_attempt(delivery.id, record, next).await {
        tracing::error!(message = "Could not record the attempt; it will be retried when its lease expires.", %error);
    }
}
