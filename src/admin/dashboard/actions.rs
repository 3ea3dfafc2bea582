//! The dashboard's actions: replay an event, retry or dismiss dead letters, process a refused
//! request again, send a test event. Each
//! changes the store (or posts through the pipeline), wakes the delivery workers and redirects
//! back with a notice.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use tower::ServiceExt as _;
use ulid::Ulid;

use super::{PageError, redirect_with_notice};
use crate::admin::AdminState;
use crate::delivery::ReplayTo;
use crate::event::EventId;
use crate::secret::Secret;

/// Where a replay goes: `""` where the event has not arrived, `"*"` every output, or one
/// output's name.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ReplayForm {
    #[serde(default)]
    to: String,
}

pub(super) async fn replay(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Form(form): Form<ReplayForm>,
) -> Result<Response, PageError> {
    let id: EventId =
        id.parse().map_err(|_| PageError::new(StatusCode::BAD_REQUEST, format!("`{id}` is not an event id")))?;
    let Some(stored) = state.store.event(id).await? else { return Err(PageError::not_found(format!("event {id}"))) };
    let config = state.reloader.live().load_full();
    let to = match form.to.as_str() {
        "" => ReplayTo::NotReached,
        "*" => ReplayTo::All,
        output => ReplayTo::Outputs(vec![output.to_owned()]),
    };
    let earlier = state.store.deliveries(id).await?;
    let deliveries = crate::delivery::replay(state.store.as_ref(), config.as_ref(), &stored, &earlier, &to).await?;
    state.ingest.wake.notify();
    tracing::info!(message = "Event replayed from the dashboard.", event_id = %id, deliveries = deliveries.len());
    let notice = if deliveries.is_empty() && to == ReplayTo::NotReached {
        "Nothing replayed: the event has arrived, or is on its way, wherever today's routes send it. Choose an \
         output to send it there again."
            .to_owned()
    } else if deliveries.is_empty() {
        "Replayed: no route takes this event to that output today, so nothing new was sent.".to_owned()
    } else {
        let targets: Vec<String> = deliveries.iter().map(|d| format!("{} → {}", d.route, d.output)).collect();
        format!("Replayed: {} new deliveries ({}).", deliveries.len(), targets.join(", "))
    };
    Ok(redirect_with_notice(&format!("/events/{id}"), &notice))
}

/// Where an action returns to.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Back {
    back: Option<String>,
    output: Option<String>,
}

impl Back {
    /// Only the dashboard's own pages: a form field must not redirect elsewhere.
    fn target(&self, default: &str) -> String {
        self.back.clone().filter(|b| b.starts_with('/') && !b.starts_with("//")).unwrap_or_else(|| default.to_owned())
    }
}

pub(super) async fn retry(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Form(back): Form<Back>,
) -> Result<Response, PageError> {
    let id: Ulid =
        id.parse().map_err(|_| PageError::new(StatusCode::BAD_REQUEST, format!("`{id}` is not a delivery id")))?;
    let count = state.store.retry(Some(id), None).await?;
    state.ingest.wake.notify();
    let notice = if count == 0 {
        format!("Delivery {id} is not dead or expired any more; nothing to retry.")
    } else {
        tracing::info!(message = "Dead letter requeued from the dashboard.", delivery_id = %id);
        format!("Delivery {id} requeued: it is sent again within a second.")
    };
    Ok(redirect_with_notice(&back.target("/dead"), &notice))
}

pub(super) async fn retry_dead(State(state): State<AdminState>, Form(back): Form<Back>) -> Result<Response, PageError> {
    let output = back.output.clone().filter(|o| !o.is_empty());
    let count = state.store.retry(None, output.as_deref()).await?;
    state.ingest.wake.notify();
    tracing::info!(
        message = "Dead letters requeued from the dashboard.",
        count,
        output = output.as_deref().unwrap_or("any")
    );
    Ok(redirect_with_notice(&back.target("/dead"), &format!("{count} dead deliveries requeued.")))
}

/// Who dismisses dead letters and why, from the Dead letters page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DismissForm {
    #[serde(default)]
    by: String,
    #[serde(default)]
    note: String,
    #[serde(flatten)]
    back: Back,
}

impl DismissForm {
    /// The dashboard has no accounts: the name typed in, or "dashboard".
    fn dismissal(&self) -> crate::store::Dismissal {
        crate::store::Dismissal::now(Some(&self.by), Some(&self.note), "dashboard")
    }
}

pub(super) async fn dismiss(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Form(form): Form<DismissForm>,
) -> Result<Response, PageError> {
    let id: Ulid =
        id.parse().map_err(|_| PageError::new(StatusCode::BAD_REQUEST, format!("`{id}` is not a delivery id")))?;
    let dismissal = form.dismissal();
    let notice = if state.store.dismiss(Some(id), None, &dismissal).await? == 0 {
        format!("Delivery {id} is not dead or expired any more; nothing to dismiss.")
    } else {
        tracing::info!(message = "Dead letter dismissed from the dashboard.", delivery_id = %id, by = %dismissal.by);
        format!("Delivery {id} dismissed by {}.", dismissal.by)
    };
    Ok(redirect_with_notice(&form.back.target("/dead"), &notice))
}

pub(super) async fn dismiss_dead(
    State(state): State<AdminState>,
    Form(form): Form<DismissForm>,
) -> Result<Response, PageError> {
    let output = form.back.output.clone().filter(|o| !o.is_empty());
    let dismissal = form.dismissal();
    let count = state.store.dismiss(None, output.as_deref(), &dismissal).await?;
    tracing::info!(
        message = "Dead letters dismissed from the dashboard.",
        count,
        output = output.as_deref().unwrap_or("any"),
        by = %dismissal.by
    );
    Ok(redirect_with_notice(
        &form.back.target("/dead"),
        &format!("{count} dead deliveries dismissed by {}.", dismissal.by),
    ))
}

/// Sends a refused request through today's plugins and routes; to its event when it becomes
/// one, else back to the Rejected page with the new reason.
pub(super) async fn reprocess(State(state): State<AdminState>, Path(id): Path<String>) -> Result<Response, PageError> {
    let id: Ulid =
        id.parse().map_err(|_| PageError::new(StatusCode::BAD_REQUEST, format!("`{id}` is not a rejection id")))?;
    match crate::ingest::reprocess(&state.ingest, id).await {
        Ok(appended) => {
            let event = appended.id();
            let notice = match appended {
                crate::store::Appended::Stored(_) => "The refused request was processed again and stored.",
                crate::store::Appended::Duplicate(_) => "The refused request repeats this event, which was kept.",
            };
            Ok(redirect_with_notice(&format!("/events/{event}"), notice))
        }
        Err(crate::ingest::ReprocessError::NotFound(_)) => Err(PageError::not_found(format!("refused request {id}"))),
        Err(crate::ingest::ReprocessError::Store(error)) => Err(error.into()),
        Err(error) => Ok(redirect_with_notice("/rejected", &format!("Request {id}: {error}"))),
    }
}

/// `vendor/index` of the sample to send.
#[derive(Debug, Deserialize)]
pub(super) struct TestEvent {
    sample: String,
}

/// Posts a plugin's sample through the webhook pipeline itself (secret check, plugin, store,
/// routes, delivery), so a test event proves the same path a vendor's webhook takes.
pub(super) async fn test_event(
    State(state): State<AdminState>,
    Form(form): Form<TestEvent>,
) -> Result<Response, PageError> {
    let config = state.reloader.live().load_full();
    let unknown = || PageError::new(StatusCode::BAD_REQUEST, format!("no sample `{}`", form.sample));
    let (vendor_name, index) = form.sample.split_once('/').ok_or_else(unknown)?;
    let vendor = config.vendors().get(vendor_name).ok_or_else(unknown)?;
    let sample = index.parse::<usize>().ok().and_then(|i| vendor.samples().get(i)).ok_or_else(unknown)?;
    let uri = vendor.sample_uri(sample, config.vendor_settings(vendor_name).secret.as_ref().map(Secret::expose));
    let mut request = Request::post(uri)
        .header("content-type", &sample.content_type)
        .header("user-agent", "Switchboard dashboard (test event)")
        .body(Body::from(sample.body()))
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
    let sample_name = sample.name.clone();
    drop(config);
    let response = crate::ingest::router(state.ingest.clone())
        .oneshot(request)
        .await
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let event_id =
        response.headers().get(crate::ingest::EVENT_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = response.status();
    match event_id {
        Some(id) if status.is_success() => {
            tracing::info!(message = "Test event sent from the dashboard.", event_id = %id, vendor = vendor_name);
            Ok(redirect_with_notice(&format!("/events/{id}"), &format!("Test event \"{sample_name}\" received.")))
        }
        _ => {
            let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
            let notice = format!("The test event was refused ({status}): {}", String::from_utf8_lossy(&body));
            Ok(redirect_with_notice("/status", &notice))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_only_return_to_the_dashboard() {
        let back = |to: &str| Back { back: Some(to.to_owned()), output: None }.target("/dead");
        assert_eq!(back("/events/01J"), "/events/01J");
        assert_eq!(back("//evil.example/x"), "/dead");
        assert_eq!(back("https://evil.example"), "/dead");
    }
}
