//! The `http` output: POSTs (or PUTs, …) the template's `body` part to any HTTP endpoint, such
//! as a CRM's API. The URL and headers are templates too. Each delivery carries its id as
//! `Idempotency-Key`, and with `signing_secret` is signed per Standard Webhooks so the receiver
//! can verify it came from us.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::{
    Attempt, DeliveryError, Message, Need, Output, OutputSettings, Reason, Receipt, SettingsError, Templated,
    ValidationContext, error_chain,
};
use crate::render::{Escape, JsonTemplate, Part};
use crate::secret::Secret;

/// `[outputs.<name>]` with `type = "http"`. Not `Debug` by derive: header values and the URL's
/// query may hold tokens.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Template: values inserted with `{{ }}` are percent-encoded.
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Templates: `{ Authorization = "Bearer ${CRM_TOKEN}", "X-Phone" = "{{contact.phone}}" }`;
    /// kept as secrets, since a header often carries a token.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// How the `body` part is written and labelled: `json`, `form` or `text`.
    #[serde(default)]
    pub format: BodyFormat,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Statuses that mean delivered; empty means any 2xx.
    #[serde(default)]
    pub success_status: Vec<u16>,
    /// `whsec_<base64 key>` (or any string, used as the key as is): sign each request.
    pub signing_secret: Option<Secret>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

fn default_method() -> String {
    "POST".to_owned()
}

fn default_timeout() -> u64 {
    10
}

/// The body's encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    #[default]
    Json,
    Form,
    Text,
}

impl BodyFormat {
    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Form => "application/x-www-form-urlencoded",
            Self::Text => "text/plain; charset=utf-8",
        }
    }
}

const JSON_PLAN: &[Need] = &[Need { part: Part::Body, fallbacks: &[], escape: Escape::JsonString, required: true }];
const FORM_PLAN: &[Need] = &[Need { part: Part::Body, fallbacks: &[], escape: Escape::Form, required: true }];
const TEXT_PLAN: &[Need] =
    &[Need { part: Part::Body, fallbacks: &[Part::Text], escape: Escape::Plain, required: true }];

/// The validated settings. Not `Debug` by derive: its URL and header templates may hold tokens.
pub struct Settings {
    method: Method,
    url: Target,
    /// The URL when it is a template, and the headers when there are any: rendered per event
    /// into the message, under [`URL`] and [`HEADERS`].
    templated: Vec<Templated>,
    format: BodyFormat,
    success: Vec<StatusCode>,
    signing_key: Option<SigningKey>,
    timeout: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings").field("method", &self.method).field("host", &self.url.host()).finish_non_exhaustive()
    }
}

/// The built output: its settings and a client.
pub struct HttpOutput {
    client: reqwest::Client,
    settings: Settings,
}

impl std::fmt::Debug for HttpOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOutput")
            .field("method", &self.settings.method)
            .field("host", &self.settings.url.host())
            .finish_non_exhaustive()
    }
}

/// Where requests go: one address, parsed once at load, or a template rendered per event.
enum Target {
    Fixed(reqwest::Url),
    Templated,
}

impl Target {
    /// The host, for logs: never the path or query, which may carry a token.
    fn host(&self) -> String {
        match self {
            Self::Fixed(url) => url.host_str().unwrap_or_default().to_owned(),
            Self::Templated => "(a template)".to_owned(),
        }
    }
}

/// The templated settings' names in a [`Message`].
const URL: &str = "url";
const HEADERS: &str = "headers";

/// An HMAC key: raw bytes (a decoded `whsec_` secret is binary), never printed.
struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl Settings {
    /// Checks the settings and compiles the URL and header templates.
    ///
    /// # Errors
    /// An invalid method, URL, header name, status or signing secret, said plainly.
    pub fn validate(config: Config, cx: &ValidationContext<'_>) -> Result<Self, SettingsError> {
        let method = Method::from_bytes(config.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| SettingsError::at("method", format!("method `{}` is not an HTTP method", config.method)))?;
        let probe = config.url.replace("{{", "").replace("}}", "");
        if !(probe.starts_with("http://") || probe.starts_with("https://")) {
            return Err(SettingsError::at(
                "url",
                format!(
                    "url must start with http:// or https://, e.g. `https://crm.example.com/api/leads`; got `{}`",
                    config.url
                ),
            ));
        }
        let template = JsonTemplate::compile(&Value::String(config.url.clone()), Escape::Form, cx.helpers)
            .map_err(|e| SettingsError::at("url", format!("url: {e}")))?;
        let mut templated = Vec::new();
        let url = match template.literal() {
            // Parsed here rather than for every request, and refused now rather than at the
            // first delivery. Not quoted back: a query string may hold a token.
            Some(fixed) => Target::Fixed(
                reqwest::Url::parse(fixed.as_str().unwrap_or_default())
                    .map_err(|e| SettingsError::at("url", format!("url is not a valid URL: {e}")))?,
            ),
            None => {
                templated.push(Templated { setting: URL, template, required: true });
                Target::Templated
            }
        };
        for name in config.headers.keys() {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SettingsError::at("headers", format!("`{name}` is not a valid header name")))?;
        }
        if !config.headers.is_empty() {
            let template = JsonTemplate::compile(
                &Value::Object(
                    config.headers.iter().map(|(name, value)| (name.clone(), Value::from(value.expose()))).collect(),
                ),
                Escape::Plain,
                cx.helpers,
            )
            .map_err(|e| SettingsError::at("headers", format!("headers: {e}")))?;
            templated.push(Templated { setting: HEADERS, template, required: true });
        }
        let success = config
            .success_status
            .iter()
            .map(|code| {
                StatusCode::from_u16(*code)
                    .ok()
                    .filter(|_| (100..=599).contains(code))
                    .ok_or_else(|| SettingsError::at("success_status", format!("`{code}` is not an HTTP status")))
            })
            .collect::<Result<_, _>>()?;
        let signing_key = config.signing_secret.as_ref().map(|secret| signing_key(secret.expose())).transpose()?;
        if config.timeout_secs == 0 {
            return Err(SettingsError::at("timeout_secs", "timeout_secs must be greater than 0"));
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        Ok(Self { method, url, templated, format: config.format, success, signing_key, timeout })
    }
}

impl OutputSettings for Settings {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn plan(&self) -> &[Need] {
        match self.format {
            BodyFormat::Json => JSON_PLAN,
            BodyFormat::Form => FORM_PLAN,
            BodyFormat::Text => TEXT_PLAN,
        }
    }

    fn build(self: Box<Self>) -> Result<Arc<dyn Output>, SettingsError> {
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("Switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SettingsError::table(format!("cannot build the HTTP client: {e}")))?;
        Ok(Arc::new(HttpOutput { client, settings: *self }))
    }
}

impl HttpOutput {
    /// The configured headers, as rendered for this message.
    fn add_headers(&self, message: &Message, headers: &mut HeaderMap) -> Result<(), DeliveryError> {
        let rendered = match message.setting(HEADERS) {
            Some(Value::Object(rendered)) => rendered,
            // Headers are configured, so a message without them was not composed for this
            // output: sending would leave out what the destination may need to accept it.
            _ if self.settings.templated.iter().any(|t| t.setting == HEADERS) => {
                return Err(DeliveryError::permanent(Reason::Template, "the headers were not rendered".to_owned()));
            }
            _ => return Ok(()),
        };
        for (name, value) in rendered {
            let value = value.as_str().unwrap_or_default().replace(['\r', '\n'], " ");
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| DeliveryError::permanent(Reason::Config, e.to_string()))?;
            let value = HeaderValue::from_str(&value).map_err(|_| {
                DeliveryError::permanent(Reason::Template, format!("header `{name}` renders to an invalid value"))
            })?;
            headers.insert(name, value);
        }
        Ok(())
    }
}

/// The HMAC key of a Standard Webhooks secret (`whsec_` + base64), or the string's bytes.
fn signing_key(secret: &str) -> Result<SigningKey, SettingsError> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => BASE64
            .decode(encoded)
            .map(SigningKey)
            .map_err(|_| SettingsError::at("signing_secret", "signing_secret: the part after `whsec_` must be base64")),
        None if secret.is_empty() => Err(SettingsError::at("signing_secret", "signing_secret is empty")),
        None => Ok(SigningKey(secret.as_bytes().to_vec())),
    }
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, per Standard Webhooks.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl Output for HttpOutput {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn plan(&self) -> &[Need] {
        match self.settings.format {
            BodyFormat::Json => JSON_PLAN,
            BodyFormat::Form => FORM_PLAN,
            BodyFormat::Text => TEXT_PLAN,
        }
    }

    fn templated(&self) -> &[Templated] {
        &self.settings.templated
    }

    async fn send(&self, message: &Message, attempt: &Attempt) -> Result<Receipt, DeliveryError> {
        let url = match &self.settings.url {
            Target::Fixed(url) => url.clone(),
            Target::Templated => {
                let url = message.setting(URL).and_then(Value::as_str).unwrap_or_default();
                reqwest::Url::parse(url).map_err(|e| {
                    DeliveryError::permanent(Reason::Template, format!("the url renders to an invalid URL: {e}"))
                })?
            }
        };
        let body = message.get(Part::Body).or_else(|| message.get(Part::Text)).unwrap_or_default().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static(self.settings.format.content_type()));
        self.add_headers(message, &mut headers)?;
        let id = &attempt.delivery;
        headers.insert("idempotency-key", header_value(id));
        if let Some(key) = &self.settings.signing_key {
            let timestamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            headers.insert("webhook-id", header_value(id));
            headers.insert("webhook-timestamp", header_value(&timestamp.to_string()));
            headers.insert("webhook-signature", header_value(&sign(&key.0, id, timestamp, body.as_bytes())));
        }
        let response = self
            .client
            .request(self.settings.method.clone(), url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(classify_error)?;
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let text = response.text().await.unwrap_or_default();
        classify(status, retry_after, &text, &self.settings.success)
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// What an answer means for the delivery: done, retry (with the server's hint) or give up.
pub fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
    success: &[StatusCode],
) -> Result<Receipt, DeliveryError> {
    let delivered = if success.is_empty() { status.is_success() } else { success.contains(&status) };
    let detail = || format!("HTTP {}: {}", status.as_u16(), body.trim());
    if delivered {
        return Ok(Receipt { remote_id: None, summary: format!("HTTP {}", status.as_u16()), action: None });
    }
    Err(match status.as_u16() {
        429 => match retry_after {
            Some(after) => DeliveryError::retry_after(Reason::RateLimited, after, detail()),
            None => DeliveryError::retry(Reason::RateLimited, detail()),
        },
        408 => DeliveryError::retry(Reason::Timeout, detail()),
        501 => DeliveryError::permanent(Reason::ClientError, detail()),
        500..=599 => match retry_after {
            Some(after) => DeliveryError::retry_after(Reason::ServerError, after, detail()),
            None => DeliveryError::retry(Reason::ServerError, detail()),
        },
        401 | 403 => DeliveryError::permanent(Reason::Auth, detail())
            .needs_operator("the destination refuses our credentials: check the output's headers or secret"),
        _ => DeliveryError::permanent(Reason::ClientError, detail()),
    })
}

fn classify_error(error: reqwest::Error) -> DeliveryError {
    // Never include the URL in what is kept: it may carry a token.
    let error = error.without_url();
    let detail = error_chain(&error);
    if error.is_timeout() {
        DeliveryError::retry(Reason::Timeout, detail)
    } else if error.is_builder() {
        DeliveryError::permanent(Reason::Config, detail)
    } else {
        DeliveryError::retry(Reason::Network, detail)
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    value.parse::<u64>().ok().map(Duration::from_secs).or_else(|| {
        httpdate::parse_http_date(value).ok().map(|at| at.duration_since(SystemTime::now()).unwrap_or_default())
    })
}

#[cfg(test)]
mod tests;
