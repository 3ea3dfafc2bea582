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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub body_limit_bytes: Option<Spanned<u64>>,
    pub read_timeout_secs: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub url: Option<Spanned<String>>,
    pub dedup_window_secs: Option<Spanned<u64>>,
    pub rejected_keep: Option<Spanned<u32>>,
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
