//! The running daemon's admin API, for the commands given `--url` (or `SWITCHBOARD_URL`): they
//! ask the daemon rather than open its database, as `amtool` asks Alertmanager. The admin token,
//! when the daemon has one, comes from `SWITCHBOARD_ADMIN_TOKEN`.

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::Value;

use super::Verdict;

/// The environment variable that holds the admin token.
pub const TOKEN_VAR: &str = "SWITCHBOARD_ADMIN_TOKEN";

/// A client of one daemon's admin API.
pub struct Remote {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Remote {
    /// For the admin listener at `url` (`http://127.0.0.1:8081`).
    ///
    /// # Errors
    /// The HTTP client cannot be made.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let token = std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty());
        Ok(Self { base: url.trim_end_matches('/').to_owned(), token, client })
    }

    /// `GET /api/v1/<path>` with `query`: the records it lists.
    ///
    /// # Errors
    /// Nothing answers, the token is refused, or the daemon answers with an error.
    pub async fn list(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Vec<Value>> {
        let request = self.client.get(format!("{}/api/v1/{path}", self.base)).query(query);
        match self.send(request).await? {
            Value::Array(records) => Ok(records),
            other => anyhow::bail!("the daemon answered something other than a list: {other}"),
        }
    }

    /// `POST /api/v1/<path>` with a JSON `body`: the answer.
    ///
    /// # Errors
    /// As [`Remote::list`]; a 404 or 409 (nothing to act on) is a [`Verdict`].
    pub async fn act(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.client.post(format!("{}/api/v1/{path}", self.base)).json(body)).await
    }

    async fn send(&self, mut request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("nothing answers at {} (is the daemon running?)", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body["message"].as_str().unwrap_or_default().to_owned();
        // Only the API's own "nothing to act on" is a verdict; any other 404 is something else
        // answering at that address.
        let ours = body["result"] == "error" && matches!(body["error"].as_str(), Some("not_found" | "not_dead"));
        match status {
            status if status.is_success() => Ok(body),
            StatusCode::NOT_FOUND | StatusCode::CONFLICT if ours => Err(Verdict(message).into()),
            StatusCode::NOT_FOUND => {
                anyhow::bail!(
                    "no Switchboard admin API at {} (is it the admin listener, server.admin_listen?)",
                    self.base
                )
            }
            StatusCode::UNAUTHORIZED => {
                anyhow::bail!("the daemon refused the admin token: set {TOKEN_VAR} to its server.admin_token")
            }
            status => anyhow::bail!("the daemon answered {status}: {message}"),
        }
    }
}
