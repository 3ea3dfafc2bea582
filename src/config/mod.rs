//! Loading and validating `config.toml` together with the vendor plugins it serves.
//!
//! Parse ([`raw`]) → expand `${VAR}` ([`env`]) → validate, collecting every issue, with no I/O
//! besides reading files ([`Validated`]) → build the outputs' clients and pools → an immutable
//! [`Config`]. `switchboard check` stops after validation. The daemon never holds a raw value,
//! so a running daemon never meets a bad config: a reload that fails leaves the previous
//! `Config` in place.

mod env;
mod escalations;
mod raw;
mod routes;
mod stages;

mod storage;
mod values;

pub use values::Env;
use values::{admin_hosts, at_most, delivery_settings, load_plugins, positive, process_env, socket_addr, span_of};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::diagnostics::{ConfigErrors, ConfigIssue, Source};
pub use crate::store::StorageUrl;
pub use env::{ExpandError, expand};
pub use routes::ValidatedOutput;
pub use storage::StorageSettings;

use crate::delivery::DeliverySettings;
use crate::outputs::OutputEntry;
use crate::plugin::VendorRegistry;
pub use crate::plugin::VendorSettings;
use crate::plugin::reply::ReplyAddition;
use crate::render::{Escape, HelperSettings, JsonTemplate, TemplateSet};
use crate::router::Routes;
use crate::secret::Secret;

/// The shipped `config.toml`, used when no configuration file exists.
pub const EMBEDDED_CONFIG: &str = include_str!("../../config.toml");

/// Default for `server.listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default for `server.admin_listen`: loopback, so the dashboard is private unless opened up.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8081";
/// Default for `server.body_limit_bytes`: 1 MiB holds the longest chat transcript with room to spare.
pub const DEFAULT_BODY_LIMIT: u64 = 1024 * 1024;
/// Default for `server.read_timeout_secs`: a vendor sends a whole webhook well within this.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 10;
/// Default for `server.header_timeout_secs`: vendors and proxies send their headers at once; a
/// reverse proxy that keeps connections to Switchboard open should close idle ones sooner.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default for `server.max_connections`: well below a default limit of 1,024 open files, which
/// the store and the outputs' connections share.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 512;
/// The most `server.header_timeout_secs` and `server.max_connections` accept: beyond them a
/// timer or a semaphore would overflow, and no sensible setting goes near.
const MAX_HEADER_TIMEOUT_SECS: u64 = 3600;
const MAX_CONNECTIONS: u64 = 1_000_000;
/// Default for `storage.dedup_window_secs`: vendors retry within minutes, not hours.
pub const DEFAULT_DEDUP_WINDOW_SECS: u64 = 600;
/// Default for `storage.rejected_keep`: enough to diagnose, bounded so a flood cannot fill a disk.
pub const DEFAULT_REJECTED_KEEP: u32 = 1000;

/// A configuration with its compiled plugins: validated (outputs checked, no client built yet:
/// [`Validated`]), then built (outputs with their clients: `Config`).
#[derive(Debug)]
pub struct Config<Outputs = OutputEntry> {
    /// Where it came from, for logs and the status page.
    origin: String,
    /// [`Source::fingerprint`] of the configuration file.
    fingerprint: u64,
    server: ServerSettings,
    storage: StorageSettings,
    vendors: VendorRegistry,
    /// The plugin folder, or `None` when the built-in plugins serve.
    plugins_dir: Option<PathBuf>,
    /// The user's template folder, or `None` when only the built-in templates serve.
    templates_dir: Option<PathBuf>,
    /// `[vendors.<name>]`; a vendor without a table has default settings.
    vendor_settings: BTreeMap<String, VendorSettings>,
    templates: TemplateSet,
    helpers: HelperSettings,
    /// `[outputs.<name>]`: validated, then built.
    outputs: BTreeMap<String, Outputs>,
    routes: Routes,
    delivery: DeliverySettings,
    /// Things that work but deserve a look (an open endpoint, say), logged at start.
    warnings: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// `None` when switched off with `admin_listen = ""`.
    pub admin_listen: Option<SocketAddr>,
    /// Required (as `Authorization: Bearer …`) on the admin listener when set.
    pub admin_token: Option<Secret>,
    /// `/healthz` and `/readyz` answer without `admin_token`.
    pub open_probes: bool,
    /// Where vendors reach the webhook listener from outside (no trailing `/`), for the hook URLs
    /// the dashboard shows; `None`: `http://<listen>`.
    pub public_url: Option<String>,
    /// Peers whose `X-Forwarded-For` is believed: the reverse proxies in front of the daemon.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub body_limit_bytes: usize,
    pub read_timeout: Duration,
    /// A connection that has not sent a request's headers this long after it opened or got its
    /// last answer is closed: slow clients and idle keep-alive connections alike.
    pub header_timeout: Duration,
    /// Connections served at once on each listener; further ones wait in the backlog.
    pub max_connections: usize,
    /// Host names (lower case, without port) the admin listener answers besides loopback ones:
    /// anything else may be a page that rebound its own name to this machine.
    pub admin_hosts: Vec<String>,
}

/// A configuration that passed validation: every file read and every setting checked, templates
/// and plugins compiled, but no client or pool made. `switchboard check` stops here.
pub type Validated = Config<ValidatedOutput>;

impl Config {
    /// Loads `path` and the plugins it names, and builds the outputs.
    ///
    /// # Errors
    /// Every problem found, each with file, line and key.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        Self::validate(path)?.build()
    }

    /// The configuration compiled into the binary, with paths relative to the working directory.
    ///
    /// # Errors
    /// Only when an environment variable it names is malformed.
    pub fn embedded() -> Result<Self, ConfigErrors> {
        Self::validate_embedded()?.build()
    }

    /// Validates the text of a configuration file and builds its outputs; relative paths are
    /// taken from `base`.
    ///
    /// # Errors
    /// Every problem found, each with file, line and key.
    pub fn from_source(source: &Source, base: &Path) -> Result<Self, ConfigErrors> {
        Self::validate_source(source, base)?.build()
    }

    /// [`Config::from_source`] with `${VAR}` read through `env` instead of the process
    /// environment (tests use this; the process environment is global).
    ///
    /// # Errors
    /// Every problem found, each with file, line and key.
    pub fn from_source_with_env(source: &Source, base: &Path, env: &Env<'_>) -> Result<Self, ConfigErrors> {
        Self::validate_source_with_env(source, base, env)?.build()
    }

    /// Reads and validates `path` and the plugins it names. Reads files; creates no client.
    ///
    /// # Errors
    /// Every problem found, each with file, line and key.
    pub fn validate(path: &Path) -> Result<Validated, ConfigErrors> {
        let source = Source::read(path).map_err(|issue| ConfigErrors(vec![issue]))?;
        let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self::validate_source(&source, &base)
    }

    /// The embedded configuration, validated.
    ///
    /// # Errors
    /// Only when an environment variable it names is malformed.
    pub fn validate_embedded() -> Result<Validated, ConfigErrors> {
        Self::validate_source(&Source::embedded("config.toml", EMBEDDED_CONFIG), Path::new("."))
    }

    /// Validates the text of a configuration file; relative paths are taken from `base`.
    ///
    /// # Errors
    /// Every problem found, each with file, line and key.
    pub fn validate_source(source: &Source, base: &Path) -> Result<Validated, ConfigErrors> {
        Self::validate_source_with_env(source, base, &process_env)
    }

    /// [`Config::validate_source`] with `${VAR}` read through `env`.
    ///
    /// # Errors
    /// Every problem found, each with file, line and key.
    pub fn validate_source_with_env(source: &Source, base: &Path, env: &Env<'_>) -> Result<Validated, ConfigErrors> {
        // Past a problem serde meets, the rest of the file is still validated: every problem
        // in one pass, but not twice for a key whose value was set aside.
        let (raw, parsed_issues) = source.parse_recovering::<raw::RawConfig>();
        let Some(raw) = raw else { return Err(ConfigErrors(parsed_issues)) };
        match Self::validate_raw(source, base, env, &raw) {
            Ok(validated) if parsed_issues.is_empty() => Ok(validated),
            Ok(_) => Err(ConfigErrors(parsed_issues)),
            Err(ConfigErrors(more)) => {
                let more = more.into_iter().filter(|issue| !parsed_issues.iter().any(|first| first.same_key(issue)));
                Err(ConfigErrors(parsed_issues.iter().cloned().chain(more).collect()))
            }
        }
    }

    fn validate_raw(
        source: &Source,
        base: &Path,
        env: &Env<'_>,
        raw: &raw::RawConfig,
    ) -> Result<Validated, ConfigErrors> {
        let mut issues = Vec::new();
        let mut warnings = Vec::new();

        let admin_listen = match raw.server.admin_listen.as_ref().map(|v| expand(v.get_ref(), env)) {
            Some(Ok(text)) if text.trim().is_empty() => None,
            _ => Some(socket_addr(
                source,
                env,
                raw.server.admin_listen.as_ref(),
                "server.admin_listen",
                DEFAULT_ADMIN_LISTEN,
                &mut issues,
            )),
        };
        let admin_token = raw.server.admin_token.as_ref().and_then(|token| {
            expand(token.get_ref(), env)
                .map_err(|message| issues.push(source.issue(Some(token.span()), "server.admin_token", message)))
                .ok()
                .filter(|t| !t.is_empty())
                .map(Secret::new)
        });
        if admin_listen.is_some_and(|addr| !addr.ip().is_loopback()) && admin_token.is_none() {
            issues.push(source.issue(
                span_of(raw.server.admin_listen.as_ref()),
                "server.admin_listen",
                "the admin listener is reachable beyond this machine, so it needs `admin_token` (e.g. \"${SWITCHBOARD_ADMIN_TOKEN}\")",
            ));
        }
        let public_url = raw.server.public_url.as_ref().and_then(|url| {
            let mut problem =
                |message: String| issues.push(source.issue(Some(url.span()), "server.public_url", message));
            match expand(url.get_ref(), env) {
                Err(error) => problem(error.to_string()),
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => match reqwest::Url::parse(text.trim()) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.query().is_none() => {
                        return Some(text.trim().trim_end_matches('/').to_owned());
                    }
                    Ok(_) => problem(format!("`{text}` must be an http:// or https:// URL without a query")),
                    Err(error) => problem(format!("`{text}` is not a URL: {error}")),
                },
            }
            None
        });
        let trusted_proxies =
            networks(source, raw.server.trusted_proxies.as_ref(), "server.trusted_proxies", &mut issues);
        let server = ServerSettings {
            admin_listen,
            admin_token,
            open_probes: raw.server.open_probes,
            public_url,
            trusted_proxies,
            listen: socket_addr(source, env, raw.server.listen.as_ref(), "server.listen", DEFAULT_LISTEN, &mut issues),
            body_limit_bytes: positive(
                source,
                raw.server.body_limit_bytes.as_ref(),
                "server.body_limit_bytes",
                DEFAULT_BODY_LIMIT,
                &mut issues,
            )
            .try_into()
            .unwrap_or(usize::MAX),
            read_timeout: Duration::from_secs(positive(
                source,
                raw.server.read_timeout_secs.as_ref(),
                "server.read_timeout_secs",
                DEFAULT_READ_TIMEOUT_SECS,
                &mut issues,
            )),
            header_timeout: Duration::from_secs(at_most(
                source,
                raw.server.header_timeout_secs.as_ref(),
                "server.header_timeout_secs",
                DEFAULT_HEADER_TIMEOUT_SECS,
                MAX_HEADER_TIMEOUT_SECS,
                &mut issues,
            )),
            max_connections: at_most(
                source,
                raw.server.max_connections.as_ref(),
                "server.max_connections",
                DEFAULT_MAX_CONNECTIONS,
                MAX_CONNECTIONS,
                &mut issues,
            )
            .try_into()
            .unwrap_or(usize::MAX),
            admin_hosts: admin_hosts(source, raw.server.admin_hosts.as_ref(), &mut issues),
        };

        let storage = StorageSettings::from_raw(source, env, &raw.storage, base, &mut issues);

        let (vendors, plugins_dir) = load_plugins(source, env, raw.paths.plugins.as_ref(), base, &mut issues);

        let templates = routes::templates(source, env, &raw.templates, base, &mut issues);
        let helpers = templates.as_ref().map_or_else(routes::default_helpers, |(_, helpers, _)| *helpers);
        let mut vendor_settings = BTreeMap::new();
        for (name, spanned) in &raw.vendors {
            let key = format!("vendors.{name}");
            let Some(vendor) = vendors.get(name) else {
                if !vendors.is_broken(name) {
                    let known: Vec<&str> = vendors.iter().map(|v| v.name()).collect();
                    issues.push(source.issue(
                        Some(spanned.span()),
                        key,
                        format!("no plugin is called `{name}`; loaded plugins: {}", known.join(", ")),
                    ));
                }
                continue;
            };
            let settings = spanned.get_ref();
            let secret = settings.secret.as_ref().and_then(|secret| {
                expand(secret.get_ref(), env)
                    .map_err(|message| issues.push(source.issue(Some(secret.span()), format!("{key}.secret"), message)))
                    .ok()
                    .filter(|value| !value.is_empty())
                    .map(Secret::new)
            });
            let allow_from = networks(source, settings.allow_from.as_ref(), &format!("{key}.allow_from"), &mut issues);
            let mut replies = Vec::with_capacity(settings.reply.len());
            for (index, reply) in settings.reply.iter().enumerate() {
                let here = format!("{key}.reply[{index}]");
                for event in &reply.get_ref().events {
                    if !vendor.event_names().any(|known| known == event) {
                        issues.push(source.issue(
                            Some(reply.span()),
                            format!("{here}.events"),
                            format!(
                                "`{event}` is not an event of plugin `{name}`; expected one of {}",
                                vendor.event_names().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
                let shape = serde_json::to_value(&reply.get_ref().json).unwrap_or_default();
                match JsonTemplate::compile(&shape, Escape::Plain, helpers) {
                    Ok(json) => replies.push(ReplyAddition { events: reply.get_ref().events.clone(), json }),
                    Err(error) => {
                        issues.push(source.issue(Some(reply.span()), format!("{here}.json"), error.to_string()))
                    }
                }
            }
            vendor_settings.insert(name.clone(), VendorSettings { secret, allow_from, replies });
        }
        let delivery = delivery_settings(source, &raw.delivery, &mut issues);
        let outputs = routes::outputs(source, env, &raw.outputs, base, helpers, &mut issues, &mut warnings);
        // Outputs written but refused: their own problems are reported; a route naming one is
        // not also told that no such output exists.
        let broken: Vec<&str> =
            raw.outputs.keys().map(String::as_str).filter(|name| !outputs.contains_key(*name)).collect();
        let routes = routes::routes(
            source,
            env,
            &raw.route,
            &vendors,
            (&outputs, &broken),
            templates.as_ref().map(|t| &t.0),
            &mut issues,
        );

        for vendor in vendors.iter() {
            if vendor_settings.get(vendor.name()).is_none_or(|s| s.secret.is_none()) {
                warnings.push(format!(
                    "vendor `{}` has no secret: anyone who knows the URL can post to it (set vendors.{}.secret)",
                    vendor.name(),
                    vendor.name()
                ));
            }
        }

        match templates {
            Some((templates, helpers, templates_dir)) if issues.is_empty() => Ok(Config {
                origin: source.name().to_owned(),
                fingerprint: source.fingerprint(),
                server,
                storage,
                vendors,
                plugins_dir,
                templates_dir,
                vendor_settings,
                templates,
                helpers,
                outputs,
                routes,
                delivery,
                warnings,
            }),
            _ => Err(ConfigErrors(issues)),
        }
    }
}

impl Validated {
    /// Makes the outputs' clients and pools. Lettre's SMTP pool runs on the runtime it is
    /// dropped in, so the caller is inside one.
    ///
    /// # Errors
    /// A client the platform cannot make, named by its output.
    pub fn build(self) -> Result<Config, ConfigErrors> {
        let mut issues = Vec::new();
        let mut outputs = BTreeMap::new();
        for (name, validated) in self.outputs {
            match validated.build() {
                Ok(entry) => {
                    outputs.insert(name, entry);
                }
                Err(issue) => issues.push(*issue),
            }
        }
        if !issues.is_empty() {
            return Err(ConfigErrors(issues));
        }
        Ok(Config {
            origin: self.origin,
            fingerprint: self.fingerprint,
            server: self.server,
            storage: self.storage,
            vendors: self.vendors,
            plugins_dir: self.plugins_dir,
            templates_dir: self.templates_dir,
            vendor_settings: self.vendor_settings,
            templates: self.templates,
            helpers: self.helpers,
            outputs,
            routes: self.routes,
            delivery: self.delivery,
            warnings: self.warnings,
        })
    }
}

impl<Outputs> Config<Outputs> {
    /// Where it came from, for logs and the status page.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A fingerprint of the configuration file's text ([`Source::fingerprint`]).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// `[server]`.
    pub fn server(&self) -> &ServerSettings {
        &self.server
    }

    /// `[storage]`.
    pub fn storage(&self) -> &StorageSettings {
        &self.storage
    }

    /// The compiled plugins.
    pub fn vendors(&self) -> &VendorRegistry {
        &self.vendors
    }

    /// The plugin folder, or `None` when the built-in plugins serve.
    pub fn plugins_dir(&self) -> Option<&Path> {
        self.plugins_dir.as_deref()
    }

    /// The user's template folder, or `None` when only the built-in templates serve.
    pub fn templates_dir(&self) -> Option<&Path> {
        self.templates_dir.as_deref()
    }

    /// The message templates.
    pub fn templates(&self) -> &TemplateSet {
        &self.templates
    }

    /// The template helpers' settings.
    pub fn helpers(&self) -> HelperSettings {
        self.helpers
    }

    /// `[outputs.<name>]`: validated, or built.
    pub fn outputs(&self) -> &BTreeMap<String, Outputs> {
        &self.outputs
    }

    /// `[[route]]`, compiled.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// `[delivery]`.
    pub fn delivery(&self) -> &DeliverySettings {
        &self.delivery
    }

    /// Things that work but deserve a look (an open endpoint, say), logged at start.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Settings for a vendor; defaults when the config has no `[vendors.<name>]`.
    pub fn vendor_settings(&self, name: &str) -> &VendorSettings {
        static NONE: VendorSettings = VendorSettings::NONE;
        self.vendor_settings.get(name).unwrap_or(&NONE)
    }
}

/// A list of addresses (`203.0.113.7`) and CIDR ranges (`203.0.113.0/24`, `2001:db8::/32`).
fn networks(
    source: &Source,
    value: Option<&toml::Spanned<Vec<String>>>,
    key: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<ipnet::IpNet> {
    let Some(value) = value else { return Vec::new() };
    let mut networks = Vec::with_capacity(value.get_ref().len());
    for text in value.get_ref() {
        let parsed = text.parse::<ipnet::IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(network) => networks.push(network.trunc()),
            Err(_) => issues.push(source.issue(
                Some(value.span()),
                key,
                format!("`{text}` is not an IP address or CIDR range (e.g. \"203.0.113.0/24\")"),
            )),
        }
    }
    networks
}

#[cfg(test)]
mod tests;
