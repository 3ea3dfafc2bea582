//! The configuration file exactly as written (`config.toml`), before `${VAR}` expansion and
//! validation. Values that accept `${VAR}` are strings here and get their real type later.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default)]
    pub vendors: BTreeMap<String, Spanned<RawVendor>>,
    #[serde(default)]
    pub templates: RawTemplates,
    /// Read as plain tables: `type` picks the output, which then reads the rest (keeps spans).
    #[serde(default)]
    pub outputs: BTreeMap<String, Spanned<toml::Table>>,
    #[serde(default)]
    pub route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    pub delivery: RawDelivery,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    pub retry_schedule_secs: Option<Spanned<Vec<u64>>>,
    pub max_age_secs: Option<Spanned<u64>>,
    pub concurrency: Option<Spanned<u64>>,
    pub shutdown_grace_secs: Option<u64>,
    pub lease_secs: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplates {
    pub dir: Option<Spanned<String>>,
    pub language: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    /// `true`/`false`, or a string such as `"${TELEGRAM_BOT_TOKEN:+true}"`.
    pub enabled: Option<toml::Value>,
    /// A value or a list of values; globs allowed.
    pub vendor: Option<toml::Value>,
    pub event: Option<toml::Value>,
    pub kind: Option<toml::Value>,
    pub when: Option<toml::Value>,
    pub schedule: Option<RawSchedule>,
    pub to: Vec<String>,
    pub template: Option<String>,
    /// Per-output template overrides: `{ sales_mail = "offline_message" }`.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// What later events of a sequence do with the message an earlier one sent: `edit`
    /// (default), `reply` or `new`.
    pub card: Option<crate::router::CardMode>,
    /// Per-output overrides of `card`: `{ sales_tg = "reply" }`.
    #[serde(default)]
    pub cards: BTreeMap<String, crate::router::CardMode>,
    /// Action buttons on the cards this route sends: `["take", "done", "no_answer"]`.
    #[serde(default)]
    pub buttons: Vec<crate::event::handling::Action>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// A delivery not sent within this many seconds of the webhook is expired, not sent late.
    pub ttl_secs: Option<u64>,
    /// Reminders when nobody handles the card in time.
    #[serde(default)]
    pub escalate: Vec<RawEscalation>,
    /// When messages go without a sound, in the syntax of `schedule`.
    pub silent: Option<RawSchedule>,
    /// The Telegram forum topic (`message_thread_id`) for this route's messages …
    pub topic: Option<i32>,
    /// … or per output: `{ sales_tg = 7 }`.
    #[serde(default)]
    pub topics: BTreeMap<String, i32>,
}

/// `escalate = [{ after = "10m", unless = "taken", to = ["manager_tg"], template = "reminder" }]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    /// `"90s"`, `"10m"`, `"2h"`, `"1d"`.
    pub after: String,
    /// `taken` (the default) or `done`.
    pub unless: Option<crate::event::handling::Status>,
    /// The outputs; the route's own by default, where the reminder replies to the card.
    pub to: Option<Vec<String>>,
    /// `reminder` by default.
    pub template: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub timezone: Option<String>,
    #[serde(default)]
    pub days: Vec<String>,
    #[serde(default)]
    pub hours: Vec<String>,
    #[serde(default)]
    pub outside: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Spanned<String>>,
    /// Dashboard, `/metrics`, health and reload; `""` turns it off.
    pub admin_listen: Option<Spanned<String>>,
    pub admin_token: Option<Spanned<String>>,
    /// `/healthz` and `/readyz` answer without the token: Docker and Kubernetes probes carry none.
    #[serde(default)]
    pub open_probes: bool,
    /// How vendors reach this daemon (`https://hooks.example.com`), for the hook URLs shown.
    pub public_url: Option<Spanned<String>>,
    /// Reverse proxies whose `X-Forwarded-For` names the real sender (for `allow_from`).
    pub trusted_proxies: Option<Spanned<Vec<String>>>,
    pub body_limit_bytes: Option<Spanned<u64>>,
    pub read_timeout_secs: Option<Spanned<u64>>,
    /// How long a connection may take to send a request's headers, counted from when it opens
    /// or its last answer was sent (so it also bounds an idle keep-alive connection).
    pub header_timeout_secs: Option<Spanned<u64>>,
    /// Connections served at once on each listener.
    pub max_connections: Option<Spanned<u64>>,
    /// Host names the admin listener answers to, besides loopback names and addresses.
    pub admin_hosts: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub url: Option<Spanned<String>>,
    pub dedup_window_secs: Option<Spanned<u64>>,
    pub rejected_keep: Option<Spanned<u32>>,
    pub retention_days: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    pub plugins: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVendor {
    pub secret: Option<Spanned<String>>,
    /// Addresses or CIDR ranges the vendor posts from; empty or absent: any.
    pub allow_from: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub reply: Vec<Spanned<RawReply>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReply {
    #[serde(default)]
    pub events: Vec<String>,
    pub json: toml::Table,
}
