//! The dashboard's pages: each gathers what it shows from the store and the live
//! configuration, and renders it. What changes things is in [`super::actions`].

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::clock::Clock;
use super::view::render_page;
use super::{PageError, url_encode};
use crate::admin::{AdminState, hook_base};
use crate::event::handling::Status as HandlingStatus;
use crate::event::{CANONICAL_KINDS, EventId};
use crate::inspect;
use crate::render::helpers::readable_phone;
use crate::store::{DeliveryQuery, DeliveryState, EventQuery, EventStatus, RejectionQuery, RequestRecord, StoredEvent};

/// Rows on one page of a list.
const PAGE_SIZE: u32 = 50;

type Page = Result<Html<String>, PageError>;

/// A notice left by the action that redirected here.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Notice {
    notice: Option<String>,
}

/// The events list's filters, as the form sends them (empty means any).
#[derive(Debug, Default, Deserialize)]
pub(super) struct EventFilters {
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    handling: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    before: String,
    notice: Option<String>,
}

pub(super) async fn events(State(state): State<AdminState>, Query(filters): Query<EventFilters>) -> Page {
    let config = state.reloader.live().load_full();
    let clock = Clock::of(&config);
    let nonempty = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let query = EventQuery {
        vendor: nonempty(&filters.vendor),
        kind: nonempty(&filters.kind),
        status: EventStatus::parse(filters.status.trim()),
        handling: HandlingStatus::parse(filters.handling.trim()),
        since: clock.parse(&filters.since),
        until: clock.parse(&filters.until),
        search: nonempty(&filters.q),
        before: filters.before.trim().parse().ok(),
        limit: PAGE_SIZE,
    };
    let events = state.store.events(&query).await?;
    let ids: Vec<EventId> = events.iter().map(|e| e.event.id).collect();
    let counts = state.store.delivery_counts(&ids).await?;
    // Cards someone pressed on: a page holds a few dozen, each two point reads.
    let mut handled = HashMap::new();
    for id in &ids {
        if let Some(card) = state.store.card_of(*id).await? {
            if let Some(handling) = state.store.handling(card).await? {
                handled.insert(*id, handling);
            }
        }
    }
    let rows: Vec<Value> = events
        .iter()
        .map(|stored| {
            let handling = handled.get(&stored.event.id).map(|h| {
                let by = h.done_by.as_ref().or(h.taken_by.as_ref()).map(|p| p.name.clone());
                json!({"status": h.status.as_str(), "by": by})
            });
            let counts = counts.get(&stored.event.id).copied().unwrap_or_default();
            let status = counts.status(!stored.routes.is_empty());
            json!({
                "id": stored.event.id.to_string(),
                "time": clock.time(stored.event.received_at),
                "vendor": stored.event.vendor,
                "event": stored.event.event,
                "kind": stored.event.kind.as_str(),
                "contact": contact(stored),
                "routes": stored.routes.join(", "),
                "status": status.as_str(),
                "counts": counts,
                "handling": handling,
                "duplicates": stored.duplicates,
            })
        })
        .collect();
    // "Older" continues from the last row with the same filters.
    let older = (events.len() == PAGE_SIZE as usize).then(|| {
        let last = events.last().map(|e| e.event.id.to_string()).unwrap_or_default();
        let keep = [
            ("vendor", &filters.vendor),
            ("kind", &filters.kind),
            ("status", &filters.status),
            ("handling", &filters.handling),
            ("since", &filters.since),
            ("until", &filters.until),
            ("q", &filters.q),
        ];
        let mut link: String = keep.iter().map(|(k, v)| format!("{k}={}&", url_encode(v))).collect();
        link.push_str(&format!("before={last}"));
        format!("/?{link}")
    });
    let handlings: Vec<Value> = [HandlingStatus::New, HandlingStatus::Taken, HandlingStatus::Done]
        .iter()
        .map(|s| json!({"name": s.as_str(), "selected": s.as_str() == filters.handling}))
        .collect();
    let data = json!({
        "zone": clock.zone(),
        "rows": rows,
        "older": older,
        "filters": {
            "vendor": filters.vendor, "kind": filters.kind, "status": filters.status, "handling": filters.handling,
            "since": filters.since, "until": filters.until, "q": filters.q,
            "paged": !filters.before.is_empty(),
        },
        "vendors": config.vendors().iter().map(|v| json!({"name": v.name(), "selected": v.name() == filters.vendor})).collect::<Vec<_>>(),
        "statuses": EventStatus::ALL.iter().map(|s| json!({"name": s.as_str(), "selected": s.as_str() == filters.status})).collect::<Vec<_>>(),
        "handlings": handlings,
        "kinds": CANONICAL_KINDS,
        "notice": filters.notice,
    });
    Ok(Html(render_page("events", "Events", "events", &data)))
}

pub(super) async fn event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Page {
    let id: EventId =
        id.parse().map_err(|_| PageError::new(StatusCode::BAD_REQUEST, format!("`{id}` is not an event id")))?;
    let Some(stored) = state.store.event(id).await? else { return Err(PageError::not_found(format!("event {id}"))) };
    let config = state.reloader.live().load_full();
    let clock = Clock::of(&config);
    let context = crate::render::RenderContext::of_event(&stored.event);
    let mut deliveries = Vec::new();
    for delivery in state.store.deliveries(id).await? {
        let records = state.store.attempts(delivery.id).await?;
        // What went out, as the latest attempt that rendered it kept it.
        let sent = records.iter().rev().find_map(|a| {
            let parts = serde_json::from_str::<Value>(a.sent.as_deref()?).ok()?;
            Some(json!({"number": a.number, "time": clock.time(a.started_at), "parts": message_parts(&parts)}))
        });
        let attempts: Vec<Value> = records
            .iter()
            .map(|a| {
                json!({
                    "number": a.number, "time": clock.time(a.started_at), "duration_ms": a.duration.as_millis(),
                    "outcome": a.outcome, "reason": a.reason, "detail": a.detail, "action": a.action,
                })
            })
            .collect();
        let rendered = inspect::render(&config, &delivery.route, &delivery.output, &delivery.template, &context);
        deliveries.push(json!({
            "id": delivery.id.to_string(),
            "route": delivery.route,
            "output": delivery.output,
            "output_type": rendered.output_type,
            "template": delivery.template,
            "state": delivery.state.as_str(),
            "retryable": matches!(delivery.state, DeliveryState::Dead | DeliveryState::Expired | DeliveryState::Dismissed),
            "dismissal": delivery.dismissal.as_ref().map(|d| json!({"by": d.by, "at": clock.time(d.at), "note": d.note})),
            "next_attempt": (delivery.state == DeliveryState::Pending).then(|| clock.time(delivery.next_attempt_at)),
            "last_error": delivery.last_error,
            "interrupted": delivery.interrupted,
            "attempts": attempts,
            "parts": message_parts(&rendered.message),
            "sent": sent,
        }));
    }
    let verdicts = inspect::verdicts(&config, &stored.event);
    let sequence = super::sequence::section(state.store.as_ref(), &config, &stored, clock).await?;
    let handling = match state.store.card_of(id).await? {
        Some(card) => state.store.handling(card).await?.map(|h| {
            json!({
                "status": h.status.as_str(),
                "card": (card != id).then(|| card.to_string()),
                "taken_by": h.taken_by.map(|p| p.name),
                "taken_at": h.taken_at.map(|at| clock.time(at)),
                "done_by": h.done_by.map(|p| p.name),
                "done_at": h.done_at.map(|at| clock.time(at)),
                "no_answers": h.no_answers,
                "last_no_answer_at": h.last_no_answer_at.map(|at| clock.time(at)),
            })
        }),
        None => None,
    };
    let fields: Vec<Value> = stored
        .event
        .fields
        .iter()
        .map(|(name, value)| {
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            // A phone as the vendor sent it, and as people read it.
            let readable = name.ends_with("phone").then(|| readable_phone(&text)).flatten().filter(|r| *r != text);
            json!({"name": name, "value": text, "readable": readable})
        })
        .collect();
    let unknown_reason =
        config.vendors().get(&stored.event.vendor).and_then(|vendor| vendor.unknown_reason(&stored.event));
    let data = json!({
        "zone": clock.zone(),
        "id": id.to_string(),
        "time": clock.time(stored.event.received_at),
        "vendor": stored.event.vendor,
        "event": stored.event.event,
        "kind": stored.event.kind.as_str(),
        "unknown_reason": unknown_reason,
        // Its parts are joined by control characters, which a page shows as nothing.
        "dedup_key": stored.dedup_key.replace(char::is_control, " · "),
        "duplicates": stored.duplicates,
        "routes_at_receipt": stored.routes,
        "fields": fields,
        "sequence": sequence,
        "handling": handling,
        "verdicts": verdicts,
        "outputs": config.outputs().keys().collect::<Vec<_>>(),
        "deliveries": deliveries,
        "payload": serde_json::to_string_pretty(&stored.event.payload).unwrap_or_default(),
        "request": request_view(&stored.request),
        "raw_body": String::from_utf8_lossy(&stored.raw_body),
        "form_body": form_pairs(&stored.request, &stored.raw_body),
        "notice": notice.notice,
    });
    let title = format!("{} {}", stored.event.vendor, stored.event.event);
    Ok(Html(render_page("event", &title, "events", &data)))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct DeadFilters {
    #[serde(default)]
    output: String,
    /// `dismissed` lists the dismissed ones instead.
    #[serde(default)]
    show: String,
    notice: Option<String>,
}

pub(super) async fn dead(State(state): State<AdminState>, Query(filters): Query<DeadFilters>) -> Page {
    let clock = Clock::of(&state.reloader.live().load_full());
    let output = Some(filters.output.clone()).filter(|o| !o.is_empty());
    let dismissed = filters.show == "dismissed";
    let shown = if dismissed { DeliveryState::Dismissed } else { DeliveryState::Dead };
    let query = DeliveryQuery { state: Some(shown), output: output.clone(), limit: 200 };
    let deliveries = state.store.list_deliveries(&query).await?;
    let mut events: HashMap<EventId, Option<StoredEvent>> = HashMap::new();
    let mut rows = Vec::with_capacity(deliveries.len());
    for delivery in &deliveries {
        if let std::collections::hash_map::Entry::Vacant(slot) = events.entry(delivery.event_id) {
            slot.insert(state.store.event(delivery.event_id).await?);
        }
        let event = events.get(&delivery.event_id).and_then(Option::as_ref);
        rows.push(json!({
            "id": delivery.id.to_string(),
            "event_id": delivery.event_id.to_string(),
            "summary": event.map(|e| format!("{} {} · {}", e.event.vendor, e.event.event, contact(e))),
            "created": clock.time(delivery.created_at),
            "route": delivery.route,
            "output": delivery.output,
            "attempts": delivery.attempts,
            "last_error": delivery.last_error,
            "dismissal": delivery.dismissal.as_ref().map(|d| json!({"by": d.by, "at": clock.time(d.at), "note": d.note})),
        }));
    }
    let config = state.reloader.live().load_full();
    let outputs: Vec<Value> =
        config.outputs().keys().map(|name| json!({"name": name, "selected": Some(name) == output.as_ref()})).collect();
    let data = json!({
        "zone": clock.zone(),
        "rows": rows, "outputs": outputs, "output": filters.output, "notice": filters.notice, "dismissed": dismissed,
    });
    Ok(Html(render_page("dead", "Dead letters", "dead", &data)))
}

/// The Rejected page's filters (empty means any).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RejectedFilters {
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    reason: String,
    notice: Option<String>,
}

pub(super) async fn rejected(State(state): State<AdminState>, Query(filters): Query<RejectedFilters>) -> Page {
    /// How much of a kept body the list shows: a page of 200 refusals stays small.
    const SHOWN: usize = 4096;
    let config = state.reloader.live().load_full();
    let clock = Clock::of(&config);
    let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let query = RejectionQuery { vendor: given(&filters.vendor), reason: given(&filters.reason), limit: 200 };
    let rows: Vec<Value> = state
        .store
        .rejections(&query)
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.id.to_string(),
                "time": clock.time(r.received_at),
                "vendor": r.vendor,
                "status": r.status,
                "reason": r.reason,
                "message": r.message,
                "request": request_view(&r.request),
                "raw_body": String::from_utf8_lossy(&r.raw_body[..r.raw_body.len().min(SHOWN)]),
                "body_cut": (r.raw_body.len() > SHOWN).then(|| format!("… the first {SHOWN} of {} bytes", r.body_size)),
                "reprocessed_at": r.reprocessed.map(|p| clock.time(p.at)),
                "reprocessed_event": r.reprocessed.and_then(|p| p.event).map(|id| id.to_string()),
                "not_reprocessable": crate::ingest::not_reprocessable(r, Some(config.as_ref())),
            })
        })
        .collect();
    let vendors: Vec<Value> = config
        .vendors()
        .iter()
        .map(|v| json!({"name": v.name(), "selected": query.vendor.as_deref() == Some(v.name())}))
        .collect();
    let data = json!({
        "zone": clock.zone(),
        "rows": rows, "notice": filters.notice, "vendors": vendors, "reason": filters.reason,
        "reasons": crate::ingest::REASONS, "filtered": query.vendor.is_some() || query.reason.is_some(),
    });
    Ok(Html(render_page("rejected", "Rejected requests", "rejected", &data)))
}

pub(super) async fn status(
    State(state): State<AdminState>,
    Query(notice): Query<Notice>,
    headers: axum::http::HeaderMap,
) -> Page {
    let config = state.reloader.live().load_full();
    let clock = Clock::of(&config);
    let reload = state.reloader.status();
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok());
    let base = hook_base(&config, state.hooks_addr, host);
    let vendors: Vec<Value> = config
        .vendors()
        .iter()
        .map(|vendor| {
            let secret = config.vendor_settings(vendor.name()).secret.as_ref();
            let url = format!("{base}/hooks/{}", vendor.name());
            json!({
                "name": vendor.name(),
                "title": vendor.title(),
                "hook_url": secret.map_or_else(|| url.clone(), |s| format!("{url}/{}", s.expose())),
                "hook_url_masked": secret.map(|_| format!("{url}/<secret>")),
                "legacy_paths": vendor.legacy_paths().iter().map(|l| l.path.clone()).collect::<Vec<_>>(),
                // A plugin that reads its event from the address gets one address per event.
                "path_events": vendor.takes_event_from_path().then(|| vendor.event_values().collect::<Vec<_>>()),
                "samples": vendor.samples().iter().enumerate().map(|(i, s)| json!({"value": format!("{}/{i}", vendor.name()), "name": s.name})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let health = state.store.output_health().await?;
    let outputs: Vec<Value> = config
        .outputs()
        .iter()
        .map(|(name, entry)| {
            let seen = health.iter().find(|h| &h.output == name);
            json!({
                "name": name,
                "type": entry.kind,
                "enabled": entry.output.is_some(),
                "last_success": seen.and_then(|h| h.last_success_at).map(|at| clock.time(at)),
                "last_failure": seen.and_then(|h| h.last_failure_at).map(|at| clock.time(at)),
                "last_failure_detail": seen.and_then(|h| h.last_failure.clone()),
                "failing": seen.is_some_and(|h| h.last_failure_at > h.last_success_at),
                "action": seen.and_then(|h| h.action.clone()),
            })
        })
        .collect();
    // Shown above everything else: until it is done, every alert to that output fails or
    // takes a detour.
    let attention: Vec<Value> = outputs.iter().filter(|o| !o["action"].is_null()).cloned().collect();
    let routes: Vec<Value> = config
        .routes()
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "enabled": r.enabled,
                "targets": r.targets.iter().map(|t| format!("{} ({})", t.output, t.template)).collect::<Vec<_>>().join(", "),
            })
        })
        .collect();
    let now = Utc::now();
    let queue = state.store.queue_stats(now).await?;
    let data = json!({
        "zone": clock.zone(),
        "origin": config.origin().to_string(),
        "loaded_at": clock.time(reload.loaded_at),
        "last_attempt_at": reload.last_attempt_at.map(|at| clock.time(at)),
        "last_trigger": reload.last_trigger,
        "last_error": reload.last_error,
        "public_url_set": config.server().public_url.is_some(),
        "vendors": vendors,
        "outputs": outputs,
        "attention": attention,
        "routes": routes,
        "queue": {
            "pending": queue.pending,
            "due": queue.due,
            "dead": queue.dead,
            "oldest_age": queue.oldest_pending_at.map(|at| human_age(now - at)),
        },
        "notice": notice.notice,
    });
    Ok(Html(render_page("status", "Status", "status", &data)))
}

fn human_age(age: chrono::TimeDelta) -> String {
    let secs = age.num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// A form body's fields, decoded (`%D0%98…` as `И…`), when the request says it is a form.
fn form_pairs(request: &RequestRecord, body: &[u8]) -> Option<Vec<Value>> {
    let is_form = request.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("content-type") && value.contains("application/x-www-form-urlencoded")
    });
    let text = std::str::from_utf8(body).ok().filter(|_| is_form)?;
    Some(
        crate::body::query_pairs(text.trim())
            .into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect(),
    )
}

/// Who the event is about, in a few characters: phone, email or name.
fn contact(stored: &StoredEvent) -> String {
    let fields = &stored.event.fields;
    let field = |name: &str| fields.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
    match field("contact.phone") {
        Some(phone) => readable_phone(phone).unwrap_or_else(|| phone.to_owned()),
        None => field("contact.email").or_else(|| field("contact.name")).unwrap_or_default().to_owned(),
    }
}

fn request_view(request: &RequestRecord) -> Value {
    let target =
        if request.query.is_empty() { request.path.clone() } else { format!("{}?{}", request.path, request.query) };
    json!({
        "line": format!("{} {target}", request.method),
        "remote": request.remote_addr,
        "headers": request.headers.iter().map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>(),
    })
}

/// A rendered message's parts as a list, or its error.
fn message_parts(message: &Value) -> Value {
    match message.as_object() {
        Some(parts) => Value::Array(parts.iter().map(|(part, text)| json!({"part": part, "text": text.as_str().map_or_else(|| text.to_string(), str::to_owned)})).collect()),
        None => Value::Array(Vec::new()),
    }
}
