//! `switchboard test <vendor> <payload-file>`: what would happen to this webhook, with nothing
//! sent. Parses the payload with the vendor's plugin, shows the event, every route's verdict
//! (and the condition that failed), and the exact message each output would get.

use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::body::{self, BodyFormat};
use crate::config::Config;
use crate::event::EventId;
use crate::inspect;

/// The full report, as `--json` prints it.
///
/// # Errors
/// Unknown vendor, unreadable file, or a payload the plugin refuses.
pub fn report(
    config: &Config,
    vendor: &str,
    file: &Path,
    url_event: Option<&str>,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<Value> {
    let plugin = config.vendors().get(vendor).with_context(|| {
        let known: Vec<&str> = config.vendors().iter().map(|v| v.name()).collect();
        format!("no plugin is called `{vendor}`; loaded plugins: {}", known.join(", "))
    })?;
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let payload = match file.extension().and_then(|e| e.to_str()) {
        Some("query") => body::from_pairs(body::query_pairs(String::from_utf8_lossy(&raw).trim())),
        Some("json") => body::decode(BodyFormat::Json, None, &raw)?,
        Some("form") => body::decode(BodyFormat::Form, None, raw.trim_ascii())?,
        Some("multipart") => {
            // The body's first line is its first boundary: `--<boundary>`.
            let first = raw.split(|b| *b == b'\n').next().unwrap_or_default();
            let first = String::from_utf8_lossy(first.trim_ascii()).into_owned();
            let boundary = first.strip_prefix("--").unwrap_or(&first).to_owned();
            body::decode(BodyFormat::Form, Some(&format!("multipart/form-data; boundary={boundary}")), &raw)?
        }
        _ => body::decode(BodyFormat::Auto, None, raw.trim_ascii())?,
    };
    let at = at.unwrap_or_else(Utc::now);
    let normalized = plugin.interpret(payload, url_event, &raw, EventId::new(at), at)?;
    let unknown_reason = plugin.unknown_reason(&normalized.event);
    let event = normalized.event;

    if config.routes().iter().next().is_none() {
        bail!("the configuration has no routes");
    }
    let routes = inspect::verdicts(config, &event);
    let messages = inspect::messages(config, &event);
    Ok(json!({
        "event": {
            "vendor": event.vendor,
            "event": event.event,
            "kind": event.kind,
            "received_at": event.received_at,
            "fields": event.fields,
            "unknown_reason": unknown_reason,
            "dedup_key": normalized.dedup_key,
            // Offline, the sequence's earlier events are not read: the kind is the one an event
            // gets when its sequence's start was never received.
            "sequence": normalized.sequence.map(|sequence| json!({
                "key": sequence.key.replace('\u{1f}', " · "),
                "begins": sequence.begins,
            })),
        },
        "routes": routes,
        "messages": messages,
    }))
}

/// The report for a person.
pub fn print(report: &Value) {
    let event = &report["event"];
    println!("Event");
    println!("  vendor  {}", event["vendor"].as_str().unwrap_or_default());
    println!("  event   {}", event["event"].as_str().unwrap_or_default());
    println!("  kind    {}", event["kind"].as_str().unwrap_or_default());
    if let Some(reason) = event["unknown_reason"].as_str() {
        println!("          (unknown: {reason})");
    }
    if let Some(fields) = event["fields"].as_object() {
        for (name, value) in fields {
            let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            println!("  {name:<16} {value}");
        }
    }
    if let Some(key) = event["sequence"]["key"].as_str() {
        println!("\n  Part of the sequence {key}. Classified as if its earlier events were unknown;");
        println!("  the daemon reads them from the store, so its kind may differ (docs/plugins.md#sequences).");
    }
    println!("\nRoutes");
    for route in report["routes"].as_array().into_iter().flatten() {
        let mark = if route["outcome"] == "matched" { "✔" } else { "·" };
        print!(
            "  {mark} {} — {}",
            route["route"].as_str().unwrap_or_default(),
            route["outcome"].as_str().unwrap_or_default()
        );
        match route["reason"].as_str() {
            Some(reason) => println!(": {reason}"),
            None => println!(),
        }
    }
    let messages = report["messages"].as_array().cloned().unwrap_or_default();
    if messages.is_empty() {
        println!("\nNo route matched: the event would be stored as unrouted.");
    }
    for message in messages {
        println!(
            "\n── {} → {} ({}, template {}) ──",
            message["route"].as_str().unwrap_or_default(),
            message["output"].as_str().unwrap_or_default(),
            message["type"].as_str().unwrap_or_default(),
            message["template"].as_str().unwrap_or_default()
        );
        for (part, text) in message["message"].as_object().into_iter().flatten() {
            println!("[{part}]\n{}", text.as_str().map_or_else(|| text.to_string(), str::to_owned));
        }
    }
    println!("\nNothing was sent.");
}
