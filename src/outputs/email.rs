//! The `email` output: sends the template's subject, text and (optionally) HTML parts as one
//! multipart/alternative message over SMTP (lettre), with pooled connections.
//!
//! `reply_to` is a template, so sales can answer the visitor straight from their mail client.
//! Both ways of naming the server (`smtp = "<url>"` or `host`, `port`, `security`) come to one
//! set of settings with one default: STARTTLS required. A password is never sent in clear
//! unless the configuration says so (`security = "none"`, `?tls=none`), and then `check` warns.
//! Transient SMTP failures (4xx, a dropped connection, a timeout) are retried; a 5xx rejection or
//! a TLS failure is permanent: another try would get the same answer.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::MessageId;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use serde_json::Value;

use super::{
    Attempt, DeliveryError, Message, Need, Output, OutputSettings, Reason, Receipt, SettingsError, Templated,
    ValidationContext, error_chain,
};
use crate::render::{Escape, JsonTemplate, Part};
use crate::secret::Secret;

/// `[outputs.<name>]` with `type = "email"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `smtp://user:pass@host:587` (STARTTLS required; `?tls=opportunistic` or `?tls=none` to
    /// relax it) or `smtps://user:pass@host:465`; or the fields below.
    pub smtp: Option<Secret>,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `starttls` (required; port 587), `tls` (implicit, port 465), `opportunistic` (STARTTLS
    /// when offered) or `none` (a local relay on port 25).
    #[serde(default)]
    pub security: Option<Security>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `"Switchboard <bot@example.com>"`.
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    /// Template: `"{{contact.email}}"`. Left out when it renders empty or is not an address.
    pub reply_to: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// A PEM file of extra root certificates, for relays with a private CA.
    pub ca_file: Option<String>,
}

fn default_timeout() -> u64 {
    20
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    #[default]
    Starttls,
    Tls,
    /// STARTTLS when the server offers it, else in clear: a man in the middle can strip it.
    Opportunistic,
    None,
}

/// Where and how to reach the SMTP server, whichever form named it.
struct Server {
    host: String,
    port: Option<u16>,
    security: Security,
    credentials: Option<(String, Secret)>,
    /// The URL form said `?tls=` (the fields form always says what it means).
    tls_explicit: bool,
}

impl Server {
    /// `smtp://` or `smtps://`, with user and password percent-decoded.
    fn from_url(text: &str) -> Result<Self, SettingsError> {
        let invalid =
            |why: String| SettingsError::at("smtp", format!("smtp: {why}; e.g. smtps://user:pass@smtp.example.com"));
        let url = reqwest::Url::parse(text).map_err(|e| invalid(format!("not a valid SMTP URL ({e})")))?;
        // `[::1]` names the address `::1`, for the connection and the certificate alike.
        let host = url.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']')).unwrap_or_default();
        if host.is_empty() {
            return Err(invalid("no host".into()));
        }
        let host = host.to_owned();
        let tls = url.query_pairs().find(|(key, _)| key == "tls").map(|(_, value)| value.into_owned());
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtps", None) => Security::Tls,
            ("smtp", None | Some("required")) => Security::Starttls,
            ("smtp", Some("opportunistic")) => Security::Opportunistic,
            ("smtp", Some("none")) => Security::None,
            ("smtps", Some(_)) => {
                return Err(invalid("`?tls=` is for smtp://; smtps:// is TLS from the first byte".into()));
            }
            ("smtp", Some(other)) => {
                return Err(invalid(format!("`tls={other}` is not one of required, opportunistic, none")));
            }
            (scheme, _) => return Err(invalid(format!("`{scheme}://` is not smtp:// or smtps://"))),
        };
        let decode = |text: &str| percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned();
        let credentials = (!url.username().is_empty())
            .then(|| (decode(url.username()), Secret::new(decode(url.password().unwrap_or_default()))));
        Ok(Self { host, port: url.port(), security, credentials, tls_explicit: tls.is_some() })
    }
}

/// The templated setting's name in a [`Message`].
const REPLY_TO: &str = "reply_to";

const PLAN: &[Need] = &[
    Need { part: Part::Subject, fallbacks: &[], escape: Escape::Plain, required: true },
    Need { part: Part::Text, fallbacks: &[], escape: Escape::Plain, required: true },
    Need { part: Part::Html, fallbacks: &[], escape: Escape::Html, required: false },
];

/// The validated settings: addresses parsed, the server and its TLS chosen, a CA file read.
pub struct Settings {
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    /// `reply_to`, when set: a template rendered per event into the message.
    templated: Vec<Templated>,
    server: Server,
    port: u16,
    /// Built here, not at `build`: `switchboard check` catches a host or CA that TLS refuses.
    tls: Tls,
    timeout: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("relay", &format!("{}:{}", self.server.host, self.port))
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// The built output.
pub struct EmailOutput {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    templated: Vec<Templated>,
    relay: String,
}

impl std::fmt::Debug for EmailOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailOutput")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Checks the addresses and the server settings, and reads the CA file (no connection).
    ///
    /// # Errors
    /// Missing or conflicting server settings, unparsable addresses, an unreadable CA file.
    pub fn validate(config: Config, cx: &ValidationContext<'_>) -> Result<Self, SettingsError> {
        let mailbox = |text: &str, key: &'static str| {
            text.parse::<Mailbox>().map_err(|e| {
                SettingsError::at(
                    key,
                    format!("{key}: `{text}` is not an address ({e}); e.g. \"Sales <sales@example.com>\""),
                )
            })
        };
        let from = mailbox(&config.from, "from")?;
        if config.to.is_empty() {
            return Err(SettingsError::at("to", "to: at least one recipient is needed"));
        }
        let to = config.to.iter().map(|a| mailbox(a, "to")).collect::<Result<_, _>>()?;
        let cc = config.cc.iter().map(|a| mailbox(a, "cc")).collect::<Result<_, _>>()?;
        let bcc = config.bcc.iter().map(|a| mailbox(a, "bcc")).collect::<Result<_, _>>()?;
        let templated = config
            .reply_to
            .as_ref()
            .map(|t| {
                JsonTemplate::compile(&Value::String(t.clone()), Escape::Plain, cx.helpers)
                    .map(|template| Templated { setting: REPLY_TO, template, required: false })
                    .map_err(|e| SettingsError::at("reply_to", format!("reply_to: {e}")))
            })
            .into_iter()
            .collect::<Result<_, _>>()?;
        if config.timeout_secs == 0 {
            return Err(SettingsError::at("timeout_secs", "timeout_secs must be greater than 0"));
        }

        let server = match (&config.smtp, &config.host) {
            (Some(_), Some(_)) => {
                return Err(SettingsError::table("set `smtp` (a URL) or `host` (with port, security, …), not both"));
            }
            (None, None) => {
                return Err(SettingsError::table(
                    "set `smtp = \"smtps://user:pass@smtp.example.com\"` or `host = \"smtp.example.com\"`",
                ));
            }
            (Some(_), None) if config.security.is_some() || config.port.is_some() => {
                return Err(SettingsError::table(
                    "with `smtp` (a URL), say the port and `?tls=` in it, not as `port` or `security`",
                ));
            }
            (Some(url), None) => Server::from_url(url.expose())?,
            (None, Some(host)) => {
                let credentials = match (&config.username, &config.password) {
                    (Some(user), Some(password)) => Some((user.clone(), password.clone())),
                    (None, None) => None,
                    _ => return Err(SettingsError::table("set both `username` and `password`, or neither")),
                };
                let name = || {
                    !host.contains([':', '/', '@', '?', '#'])
                        && reqwest::Url::parse(&format!("smtp://{host}")).is_ok_and(|url| url.host().is_some())
                };
                if host.parse::<std::net::IpAddr>().is_err() && !name() {
                    return Err(SettingsError::at("host", format!("host: `{host}` is not a host name or address")));
                }
                Server {
                    host: host.clone(),
                    port: config.port,
                    security: config.security.unwrap_or_default(),
                    credentials,
                    tls_explicit: true,
                }
            }
        };
        if config.smtp.is_some() && (config.username.is_some() || config.password.is_some()) {
            return Err(SettingsError::table(
                "with `smtp` (a URL), put the user and password in it, not as `username`/`password`",
            ));
        }
        let local_relay = server.port == Some(25) || matches!(server.host.as_str(), "localhost" | "127.0.0.1" | "::1");
        if !server.tls_explicit && local_relay {
            cx.warn(format!(
                "smtp://{} requires STARTTLS now (a URL without `?tls=` once sent in clear); a relay that offers \
                 no TLS needs `?tls=none`",
                server.host
            ));
        }
        if server.credentials.is_some() && matches!(server.security, Security::None | Security::Opportunistic) {
            cx.warn(format!(
                "the SMTP password for {} can be sent in clear (security is `{}`); use STARTTLS or TLS unless the \
                 relay is on this machine",
                server.host,
                if server.security == Security::None { "none" } else { "opportunistic" },
            ));
        }
        let port = server.port.unwrap_or(match server.security {
            Security::Starttls | Security::Opportunistic => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        let ca_certificate = match &config.ca_file {
            Some(file) if server.security != Security::None => {
                let path = cx.base.join(file);
                let unreadable = |e: &dyn std::fmt::Display| {
                    SettingsError::at("ca_file", format!("ca_file `{}`: {e}", path.display()))
                };
                let pem = std::fs::read(&path).map_err(|e| unreadable(&e))?;
                Some(Certificate::from_pem(&pem).map_err(|e| unreadable(&e))?)
            }
            // Never silently ignored: without TLS there is no certificate to check.
            Some(_) => {
                return Err(SettingsError::at(
                    "ca_file",
                    "ca_file has no effect without TLS (`security = \"none\"`, `?tls=none`): remove it, or use TLS",
                ));
            }
            None => None,
        };
        let tls = match server.security {
            Security::None => Tls::None,
            security => {
                let mut params = TlsParameters::builder(server.host.clone());
                if let Some(certificate) = ca_certificate {
                    params = params.add_root_certificate(certificate);
                }
                let params = params.build_rustls().map_err(|e| SettingsError::table(format!("TLS settings: {e}")))?;
                match security {
                    Security::Tls => Tls::Wrapper(params),
                    Security::Opportunistic => Tls::Opportunistic(params),
                    _ => Tls::Required(params),
                }
            }
        };
        let timeout = Duration::from_secs(config.timeout_secs);
        Ok(Self { from, to, cc, bcc, templated, server, port, tls, timeout })
    }
}

impl OutputSettings for Settings {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn plan(&self) -> &[Need] {
        PLAN
    }

    fn build(self: Box<Self>) -> Result<Arc<dyn Output>, SettingsError> {
        let Self { from, to, cc, bcc, templated, server, port, tls, timeout } = *self;
        let relay = format!("{}:{port}", server.host);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host).port(port).tls(tls);
        if let Some((user, password)) = server.credentials {
            builder = builder.credentials(Credentials::new(user, password.expose().to_owned()));
        }
        let transport = builder
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(4).idle_timeout(Duration::from_secs(60)))
            .build();
        Ok(Arc::new(EmailOutput { transport, from, to, cc, bcc, templated, relay }))
    }
}

impl EmailOutput {
    fn build_message(&self, message: &Message, attempt: &Attempt) -> Result<lettre::Message, DeliveryError> {
        let subject = message.get(Part::Subject).unwrap_or_default();
        let text = message.get(Part::Text).unwrap_or_default().to_owned();
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            // The delivery id makes a retried message recognisable as the same message.
            .header(MessageId::from(format!("<{}@switchboard>", attempt.delivery)));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        for cc in &self.cc {
            builder = builder.cc(cc.clone());
        }
        for bcc in &self.bcc {
            builder = builder.bcc(bcc.clone());
        }
        if let Some(rendered) = message.setting(REPLY_TO) {
            let address = rendered.as_str().map(str::trim).unwrap_or_default();
            match address.parse::<Mailbox>() {
                Ok(mailbox) => builder = builder.reply_to(mailbox),
                Err(_) if address.is_empty() => {}
                Err(_) => {
                    tracing::debug!(message = "reply_to did not render to an address; left out.", value = %address)
                }
            }
        }
        let built = match message.get(Part::Html) {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html.to_owned())),
            None => builder.singlepart(SinglePart::plain(text)),
        };
        built.map_err(|e| DeliveryError::permanent(Reason::Template, format!("cannot build the email: {e}")))
    }
}

#[async_trait]
impl Output for EmailOutput {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn plan(&self) -> &[Need] {
        PLAN
    }

    fn templated(&self) -> &[Templated] {
        &self.templated
    }

    async fn send(&self, message: &Message, attempt: &Attempt) -> Result<Receipt, DeliveryError> {
        let email = self.build_message(message, attempt)?;
        let response = self.transport.send(email).await.map_err(|e| classify(&e))?;
        let answer = response.message().collect::<Vec<_>>().join(" ");
        Ok(Receipt {
            remote_id: None,
            summary: format!("{} {} ({})", response.code(), answer, self.relay),
            action: None,
        })
    }
}

/// What an SMTP failure means for the delivery.
pub fn classify(error: &lettre::transport::smtp::Error) -> DeliveryError {
    let detail = error_chain(error);
    // 535: authentication credentials invalid (RFC 4954 §6).
    if error.status().is_some_and(|code| code.to_string() == "535") {
        DeliveryError::permanent(Reason::Auth, detail)
            .needs_operator("the SMTP server refuses the username or password: correct them in the output")
    } else if error.is_permanent() {
        DeliveryError::permanent(Reason::Rejected, detail)
    } else if error.is_transient() {
        DeliveryError::retry(Reason::ServerError, detail)
    } else if error.is_timeout() {
        DeliveryError::retry(Reason::Timeout, detail)
    } else if error.is_tls() || error.is_client() {
        // A certificate the relay's name does not match, or a message lettre refuses to send:
        // the configuration must change first.
        let action = if error.is_tls() {
            "TLS with the relay fails: check `host` against its certificate, or set `ca_file` for a private CA"
        } else {
            "the message cannot be sent as configured: check the output's addresses"
        };
        DeliveryError::permanent(Reason::Config, detail).needs_operator(action)
    } else {
        DeliveryError::retry(Reason::Network, detail)
    }
}
