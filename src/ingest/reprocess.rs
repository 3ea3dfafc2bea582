//! Processing a refused request again, once the operator has fixed what refused it: a plugin
//! added for an unknown vendor, a plugin that can now read the body, a missing alias. The kept
//! request goes through today's plugins and routes as a webhook would; what came of it is
//! recorded on the rejection, which stays kept either way.

use axum::http::Method;
use chrono::Utc;
use ulid::Ulid;

use super::{IngestConfig, IngestError, IngestState, Target, process};
use crate::body;
use crate::plugin::request::InboundRequest;
use crate::store::{Appended, Rejection, ReprocessOutcome, StoreError};

/// Why a kept request was not turned into an event.
#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error("no refused request has the id {0}")]
    NotFound(Ulid),
    #[error("it cannot be processed again: {0}")]
    NotReprocessable(String),
    #[error("refused again: {0}")]
    Refused(IngestError),
    #[error("the store failed")]
    Store(#[from] StoreError),
}

/// Sends the kept request `id` through today's plugins and routes, and records the outcome on it.
/// Returns the event it became, or the one it repeats.
///
/// # Errors
/// It is not kept, cannot be processed again (refused for its credentials or its sender, or its
/// body was not kept whole), is refused again (the new reason is recorded), or the store failed.
pub async fn reprocess(state: &IngestState, id: Ulid) -> Result<Appended, ReprocessError> {
    let rejection = state.store.rejection(id).await?.ok_or(ReprocessError::NotFound(id))?;
    if let Some(why) = not_reprocessable(&rejection, Some(state.config.current().as_ref())) {
        return Err(ReprocessError::NotReprocessable(why));
    }
    match process_again(state, &rejection).await {
        Ok(appended) => {
            state.store.reprocessed(id, Utc::now(), ReprocessOutcome::Accepted(appended.id())).await?;
            tracing::info!(message = "Refused request processed again.", rejection = %id, event_id = %appended.id());
            Ok(appended)
        }
        Err(IngestError::Store(error)) => Err(ReprocessError::Store(error)),
        Err(error) => {
            let outcome = ReprocessOutcome::Refused {
                status: error.status().as_u16(),
                reason: error.code().to_owned(),
                message: error.to_string(),
            };
            state.store.reprocessed(id, Utc::now(), outcome).await?;
            tracing::warn!(message = "Refused request refused again.", rejection = %id, reason = error.code());
            Err(ReprocessError::Refused(error))
        }
    }
}

/// A refused request as the admin API and `switchboard rejected -o json` show it: its
/// [`Rejection::summary`] and `reprocess`, what can become of it.
pub fn rejection_summary(rejection: &Rejection, config: Option<&dyn IngestConfig>) -> serde_json::Value {
    let reprocess = match (not_reprocessable(rejection, config), rejection.reprocessed) {
        (_, Some(crate::store::Reprocessed { event: Some(event), .. })) => format!("became event {event}"),
        (Some(why), _) => format!("final: {why}"),
        (None, _) => "switchboard reprocess can retry it".to_owned(),
    };
    let mut summary = rejection.summary();
    summary["reprocess"] = serde_json::Value::String(reprocess);
    summary
}

/// Why a kept request cannot be processed again under `config`, if it cannot (without a
/// configuration: the reasons that hold under any).
///
/// Processing again skips the secret check (the secret was masked when the request was kept),
/// so only a request whose sender is known to be the vendor, or that any sender could have
/// posted, is processed: refused by the plugin after its secret was checked; or refused before
/// that (an unknown vendor, a method, an event in the path) for a vendor that today has no secret
/// and no `allow_from`. Anything else could be a stranger's forgery.
pub fn not_reprocessable(rejection: &Rejection, config: Option<&dyn IngestConfig>) -> Option<String> {
    const FINAL: &str = "only the vendor can send it again";
    let vendor = rejection.vendor.as_deref().unwrap_or_default();
    let guarded = config.and_then(|config| config.vendors().get(vendor).map(|plugin| (config, plugin))).is_some_and(
        |(config, plugin)| {
            let settings = config.vendor_settings(plugin.name());
            settings.secret.is_some() || !settings.allow_from.is_empty()
        },
    );
    match rejection.reason.as_str() {
        "missing_secret" | "bad_secret" | "source_not_allowed" => {
            Some(format!("it was refused for its secret or its sender; {FINAL}"))
        }
        "body_too_large" | "read_timeout" | "body_read_failed" => {
            Some(format!("its body was not received whole; {FINAL}"))
        }
        "uri_too_long" | "headers_too_large" | "malformed_request" | "request_too_large" => {
            Some(format!("it was refused for its form before its body was read; {FINAL}"))
        }
        _ if rejection.reprocessed.is_some_and(|r| r.event.is_some()) => {
            Some("it was processed again already and became an event".to_owned())
        }
        "unknown_vendor" | "method_not_allowed" | "event_not_in_path" if guarded => {
            Some(format!("it was refused before its secret was checked, and `{vendor}` now requires one; {FINAL}"))
        }
        _ if !rejection.body_is_whole() => {
            Some(format!("only the first {} of its {} bytes were kept", rejection.raw_body.len(), rejection.body_size))
        }
        _ => None,
    }
}

/// The kept request through today's configuration, as [`super::accept`] takes a webhook, but
/// without its secret (the operator vouches for it) and at the time it first arrived.
async fn process_again(state: &IngestState, rejection: &Rejection) -> Result<Appended, IngestError> {
    let config = state.config.current();
    let record = &rejection.request;
    let decode = |segment: &str| percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned();
    let target = match record.path.strip_prefix("/hooks/") {
        Some(rest) => {
            let mut segments = rest.split('/').map(decode);
            let vendor = segments.next().unwrap_or_default();
            Target { vendor, segments: segments.collect(), legacy: None }
        }
        None => match config.vendors().legacy(&record.path) {
            Some((vendor, legacy)) => {
                Target { vendor: vendor.name().to_owned(), segments: Vec::new(), legacy: Some(legacy.clone()) }
            }
            None => return Err(IngestError::UnknownVendor(rejection.vendor.clone().unwrap_or_default())),
        },
    };
    let vendor =
        config.vendors().get(&target.vendor).ok_or_else(|| IngestError::UnknownVendor(target.vendor.clone()))?;
    let method = record.method.parse::<Method>().unwrap_or(Method::POST);
    if !vendor.accepts(&method) {
        return Err(IngestError::MethodNotAllowed { vendor: target.vendor.clone(), method: method.to_string() });
    }
    // The secret was masked (`***`) when the request was kept: the event, if the plugin reads it
    // from the path, is the last segment that is not the mask.
    let path_event = if vendor.takes_event_from_path() {
        target.segments.last().map(String::as_str).filter(|segment| *segment != "***")
    } else if target.segments.len() > 1 {
        return Err(IngestError::EventNotInPath(target.vendor.clone()));
    } else {
        None
    };
    let content_type =
        record.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.clone());
    let request = InboundRequest::vouched_for_by_operator(
        method,
        content_type,
        body::query_pairs(&record.query),
        rejection.raw_body.clone(),
    );
    let intake = process::Intake {
        request: &request,
        record: record.clone(),
        path_event,
        legacy: target.legacy.as_ref(),
        // Its routes' schedules judge the time it first arrived; its deliveries are new.
        received_at: rejection.received_at,
        planned_at: Utc::now(),
    };
    Ok(process::store(state, config.as_ref(), vendor, intake).await?.appended)
}
