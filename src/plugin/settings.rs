//! What the operator sets for a vendor in `config.toml`, beside its plugin.

use crate::secret::Secret;

/// `[vendors.<name>]`: what the operator sets for a vendor, beside its plugin.
#[derive(Debug, Default)]
pub struct VendorSettings {
    /// Required on every request when set: `/hooks/<vendor>/<secret>` or `?token=<secret>`.
    pub secret: Option<Secret>,
    /// Where the vendor's requests may come from; empty: anywhere.
    pub allow_from: Vec<ipnet::IpNet>,
    pub replies: Vec<super::reply::ReplyAddition>,
}

impl VendorSettings {
    /// A vendor without a `[vendors.<name>]` table: no secret, any sender, the plugin's replies.
    pub const NONE: VendorSettings = VendorSettings { secret: None, allow_from: Vec::new(), replies: Vec::new() };
}
