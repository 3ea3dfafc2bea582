//! `VendorSpec`: a plugin file (`plugins/<vendor>.toml`) exactly as written, before compiling.
//!
//! Every user-facing value keeps its span so that [`super::compile`] can point at the line of a
//! mistake. No `flatten` or `untagged` here: they lose spans (toml-rs/toml#589).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::body::BodyFormat;

/// A plugin file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorSpec {
    /// Must equal the file name without `.toml`; defaults to it.
    pub name: Option<Spanned<String>>,
    pub title: Option<String>,
    #[serde(default)]
    pub format: BodyFormat,
    /// HTTP methods the vendor uses; `GET` sends the fields as query parameters.
    #[serde(default = "default_methods")]
    pub methods: Spanned<Vec<String>>,
    pub event: Spanned<EventSourceSpec>,
    /// Payload paths whose values identify one vendor event; a repeat within the dedup window is
    /// the vendor retrying. Empty (or any value missing): the body's hash is the key.
    pub dedup: Option<Spanned<Vec<String>>>,
    /// How long (seconds) a repeat is taken for the vendor resending, for this vendor's events;
    /// default `storage.dedup_window_secs`. Shorter for a vendor whose events can repeat for
    /// real with nothing to tell them apart.
    pub dedup_window_secs: Option<Spanned<u64>>,
    pub reply: Option<Spanned<ReplySpec>>,
    /// Key renaming: `"phone2" = ["client_phone"]` reads `client_phone` wherever the plugin says
    /// `phone2` and the payload has no `phone2` (Calltracking lets users rename keys).
    #[serde(default)]
    pub aliases: BTreeMap<String, Spanned<Vec<String>>>,
    /// The vendor's event values → name and canonical kind.
    #[serde(default)]
    pub events: BTreeMap<String, Spanned<EventSpec>>,
    /// Canonical field ← the first non-empty of these payload paths.
    #[serde(default)]
    pub fields: BTreeMap<String, Spanned<Vec<String>>>,
    /// How events that belong together are recognised, so that `[[classify]]` can ask what
    /// came before (`seen.<name>`): a Jivo call's `end` whose call no agent answered.
    pub sequence: Option<Spanned<SequenceSpec>>,
    /// Further kinds of sequence, by name (`[sequences.chat]`): a vendor whose calls and chats
    /// both belong together, each by its own key.
    #[serde(default)]
    pub sequences: BTreeMap<String, Spanned<SequenceSpec>>,
    #[serde(default)]
    pub classify: Vec<Spanned<ClassifySpec>>,
    /// Extra paths that accept this vendor's webhooks, for senders configured before `/hooks/`.
    #[serde(default)]
    pub legacy_path: Vec<Spanned<LegacyPathSpec>>,
    /// Example webhooks, sent by the dashboard's "send test event" through the real pipeline.
    #[serde(default)]
    pub sample: Vec<Spanned<SampleSpec>>,
}

fn default_methods() -> Spanned<Vec<String>> {
    Spanned::new(0..0, vec!["POST".to_owned()])
}

/// Where the event name is read from, tried in this order: the body, the request's URL, a
/// legacy path's event, `default`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSourceSpec {
    /// Payload path of the event value (`event_name`, `webhooktype`, `hook_event`).
    pub field: Option<String>,
    /// A query parameter that names the event (`?event=end`), for senders whose body does not.
    pub query: Option<String>,
    /// The URL's segment after the secret names the event: `/hooks/<vendor>/<secret>/<event>`
    /// (`/hooks/<vendor>/<event>` when the vendor has no secret). For senders whose owner can
    /// set only the address, one per event (Calltracking's *start* and *end*).
    #[serde(default)]
    pub path: bool,
    /// Used when none of the above names an event.
    pub default: Option<String>,
    /// Refuse (400) a webhook that names no event, instead of storing it as kind `unknown`.
    #[serde(default)]
    pub required: bool,
}

/// One entry of `[events]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// The event's name; defaults to the value it is keyed by.
    pub name: Option<String>,
    pub kind: String,
}

/// The answer the vendor gets for an accepted webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySpec {
    #[serde(default = "default_status")]
    pub status: u16,
    /// A JSON body (`{ result = "ok" }`).
    pub json: Option<toml::Value>,
    /// A plain-text body, for vendors that want `OK`.
    pub text: Option<String>,
}

fn default_status() -> u16 {
    200
}

/// A `[sequence]` or `[sequences.<name>]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceSpec {
    /// The events that belong to a sequence.
    pub when: toml::Value,
    /// Payload paths whose values together identify one sequence (`["widget_id", "chat_id"]`).
    pub key: Vec<String>,
    /// An event that starts a new sequence: what came before it belongs to an earlier one.
    pub begins: toml::Value,
    /// An event that ends a sequence: a repeat of an earlier event that arrives after the
    /// sequence ended is the same thing happening again, not the vendor resending it.
    pub ends: Option<toml::Value>,
    /// How long (seconds) after an event the vendor's own resends of it can arrive: a repeat
    /// within this is always a resend, whatever happened in between. Default 0.
    pub resends_within_secs: Option<u64>,
    /// How far back (seconds) an earlier event of the sequence is looked for.
    pub within_secs: Option<u64>,
    /// Flag name → a condition on earlier events: `seen.<name>` is true when one of the
    /// sequence's earlier events matched it.
    #[serde(default)]
    pub seen: BTreeMap<String, toml::Value>,
}

/// One `[[classify]]` rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifySpec {
    pub when: toml::Value,
    pub kind: Option<String>,
    /// Canonical fields to set when the rule applies (`{ "call.outcome" = "missed" }`).
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
}

/// One `[[legacy_path]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyPathSpec {
    pub path: String,
    /// The event to assume when the body does not name one.
    pub event: Option<String>,
    #[serde(default)]
    pub echo: Echo,
}

/// What a legacy path adds to the reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Echo {
    #[default]
    None,
    /// `"data": [{leaf: [values…]}]`: the posted data flattened to leaf names, as the old
    /// in-house receiver answered.
    Flatten,
}

/// One `[[sample]]`: a webhook as the vendor sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSpec {
    /// What it is, for people (`Missed call`).
    pub name: String,
    /// The body exactly as posted; `$UNIQUE` becomes a fresh number each time it is sent, so a
    /// test event is never taken for the vendor repeating an earlier one.
    pub body: String,
    /// Defaults to the plugin's format (`application/json` or form-urlencoded).
    pub content_type: Option<String>,
    /// The event the sample's address names, for a plugin that reads it from the URL
    /// (`event.path` or `event.query`).
    pub event: Option<String>,
}
