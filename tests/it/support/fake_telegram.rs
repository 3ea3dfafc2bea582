//! `FakeTelegram`: a Bot API server on 127.0.0.1 answering `sendMessage`, `editMessageText`,
//! `editMessageReplyMarkup`, `answerCallbackQuery` (and `getMe`) with Telegram's real response and error shapes, scripted
//! per test; `getUpdates` long-polls the presses a test injects with [`FakeTelegram::press`]. The bot is pointed at it
//! through the output's `api_url`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A scripted Bot API answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok,
    /// 429 with `parameters.retry_after`.
    RetryAfter(u32),
    /// 400 "can't parse entities".
    CantParse,
    /// 403 "bot was blocked by the user".
    Blocked,
    /// 400 "chat not found".
    ChatNotFound,
    /// 400 with `parameters.migrate_to_chat_id`.
    Migrated(i64),
    /// 500.
    ServerError,
    /// 400 "message to edit not found" (deleted, or never in this chat).
    EditNotFound,
}

/// One Bot API call as received.
#[derive(Debug, Clone)]
pub struct Sent {
    pub token: String,
    /// `sendMessage`, `editMessageText`, …
    pub method: String,
    pub body: Value,
    pub at: Instant,
    /// Whether the fake answered 429 to it.
    pub limited: bool,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: mpsc::UnboundedSender<Sent>,
    next_id: Arc<Mutex<i32>>,
    /// Updates not yet confirmed by a `getUpdates` offset past them.
    updates: Arc<Mutex<Vec<Value>>>,
    next_update: Arc<Mutex<i64>>,
    arrived: Arc<tokio::sync::Notify>,
    /// The last `setWebhook` body; `Null` after a `deleteWebhook`.
    webhook: Arc<Mutex<Value>>,
}

pub struct FakeTelegram {
    pub addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Sent>,
    shared: Shared,
}

/// Someone in a chat, pressing.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub id: i64,
    pub first_name: &'static str,
}

impl FakeTelegram {
    pub async fn start(script: Vec<Reply>) -> Self {
        let (seen, received) = mpsc::unbounded_channel();
        let shared = Shared {
            script: Arc::new(Mutex::new(script.into())),
            seen,
            next_id: Arc::new(Mutex::new(100)),
            updates: Arc::default(),
            next_update: Arc::new(Mutex::new(1)),
            arrived: Arc::default(),
            webhook: Arc::default(),
        };
        let app = Router::new().route("/{bot}/{method}", axum::routing::post(handle)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, received, shared }
    }

    /// `user` presses the button with `data` under message `message` in `chat`: a
    /// `callback_query` update for the bot's next `getUpdates`.
    pub fn press(&self, chat: i64, message: i64, user: User, data: &str) {
        let update = self.update(chat, message, user, data);
        self.shared.updates.lock().unwrap().push(update);
        self.shared.arrived.notify_waiters();
    }

    /// The webhook the bot was last given (`setWebhook`'s body), if any.
    pub fn webhook(&self) -> Value {
        self.shared.webhook.lock().unwrap().clone()
    }

    /// The update Telegram would send for such a press.
    pub fn update(&self, chat: i64, message: i64, user: User, data: &str) -> Value {
        let id = {
            let mut next = self.shared.next_update.lock().unwrap();
            *next += 1;
            *next
        };
        json!({
            "update_id": id,
            "callback_query": {
                "id": format!("query-{id}"),
                "from": {"id": user.id, "is_bot": false, "first_name": user.first_name},
                "chat_instance": "-42",
                "data": data,
                "message": {
                    "message_id": message,
                    "date": 1_700_000_000,
                    "chat": {"id": chat, "type": "supergroup", "title": "Sales"},
                    "from": {"id": 1, "is_bot": true, "first_name": "Switchboard", "username": "switchboard_bot"},
                    "text": "card",
                },
            },
        })
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn next(&mut self) -> Sent {
        tokio::time::timeout(Duration::from_secs(20), self.received.recv())
            .await
            .expect("a sendMessage arrives within 20 s")
            .expect("the fake is running")
    }

    /// Whatever else arrived by now.
    pub fn drain(&mut self) -> Vec<Sent> {
        let mut all = Vec::new();
        while let Ok(sent) = self.received.try_recv() {
            all.push(sent);
        }
        all
    }
}

fn error(code: u16, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({ "ok": false, "error_code": code, "description": description });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    (StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
}

/// A multipart body's text fields as a JSON object (fields that hold JSON, parsed).
fn multipart_fields(body: &[u8]) -> Value {
    let text = String::from_utf8_lossy(body);
    let Some(boundary) = text.lines().next().map(str::trim) else { return Value::Null };
    let mut fields = serde_json::Map::new();
    for part in text.split(boundary) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else { continue };
        let Some(name) = head.split("name=\"").nth(1).and_then(|rest| rest.split('"').next()) else { continue };
        let value = value.trim_end_matches("\r\n").trim_end_matches("--").trim_end_matches("\r\n");
        let parsed = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        fields.insert(name.to_owned(), parsed);
    }
    Value::Object(fields)
}

/// The updates from `offset` on, waiting up to the request's `timeout` for one to arrive;
/// those before `offset` are confirmed, and forgotten.
async fn updates(shared: &Shared, body: &Value) -> Vec<Value> {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(body["timeout"].as_u64().unwrap_or(0));
    loop {
        let arrived = shared.arrived.notified();
        let pending: Vec<Value> = {
            let mut updates = shared.updates.lock().unwrap();
            updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            updates.clone()
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if !pending.is_empty() || left.is_zero() {
            return pending;
        }
        let _ = tokio::time::timeout(left, arrived).await;
    }
}

async fn handle(
    State(shared): State<Shared>,
    Path((bot, method)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let token = bot.strip_prefix("bot").unwrap_or_default().to_owned();
    // Method names are case-insensitive (teloxide sends `SendMessage`): kept as documented.
    let method = match method.chars().next() {
        Some(first) => first.to_lowercase().chain(method.chars().skip(1)).collect::<String>(),
        None => method,
    };
    if method == "getMe" {
        return Json(json!({"ok": true, "result": {"id": 1, "is_bot": true, "first_name": "Switchboard", "username": "switchboard_bot"}}))
            .into_response();
    }
    // Most methods come as JSON; those that may carry a file (setWebhook) as multipart.
    let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| multipart_fields(&body));
    if method == "getUpdates" {
        return Json(json!({"ok": true, "result": updates(&shared, &body).await})).into_response();
    }
    if method == "setWebhook" || method == "deleteWebhook" {
        *shared.webhook.lock().unwrap() = if method == "setWebhook" { body } else { Value::Null };
        return Json(json!({"ok": true, "result": true})).into_response();
    }
    if method == "answerCallbackQuery" {
        let _ = shared.seen.send(Sent { token, method, body, at: Instant::now(), limited: false });
        return Json(json!({"ok": true, "result": true})).into_response();
    }
    let reply = shared.script.lock().unwrap().pop_front().unwrap_or(Reply::Ok);
    let limited = matches!(reply, Reply::RetryAfter(_));
    let _ = shared.seen.send(Sent { token, method: method.clone(), body: body.clone(), at: Instant::now(), limited });
    match reply {
        Reply::Ok if method == "editMessageText" || method == "editMessageReplyMarkup" => {
            let chat_id = body["chat_id"].as_i64().unwrap_or(-100);
            Json(json!({
                "ok": true,
                "result": {
                    "message_id": body["message_id"],
                    "date": 1_700_000_000,
                    "edit_date": 1_700_000_060,
                    "chat": {"id": chat_id, "type": "supergroup", "title": "Sales"},
                    "from": {"id": 1, "is_bot": true, "first_name": "Switchboard", "username": "switchboard_bot"},
                    "text": body["text"].as_str().unwrap_or_default(),
                }
            }))
            .into_response()
        }
        Reply::Ok => {
            let id = {
                let mut next = shared.next_id.lock().unwrap();
                *next += 1;
                *next
            };
            let chat_id = body["chat_id"].as_i64().unwrap_or(-100);
            Json(json!({
                "ok": true,
                "result": {
                    "message_id": id,
                    "date": 1_700_000_000,
                    "chat": {"id": chat_id, "type": "supergroup", "title": "Sales"},
                    "from": {"id": 1, "is_bot": true, "first_name": "Switchboard", "username": "switchboard_bot"},
                    "text": body["text"].as_str().unwrap_or_default(),
                }
            }))
            .into_response()
        }
        Reply::RetryAfter(seconds) => {
            error(429, &format!("Too Many Requests: retry after {seconds}"), Some(json!({ "retry_after": seconds })))
        }
        Reply::CantParse => {
            error(400, "Bad Request: can't parse entities: Unsupported start tag \"foo\" at byte offset 0", None)
        }
        Reply::Blocked => error(403, "Forbidden: bot was blocked by the user", None),
        Reply::ChatNotFound => error(400, "Bad Request: chat not found", None),
        Reply::Migrated(id) => error(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            Some(json!({ "migrate_to_chat_id": id })),
        ),
        Reply::ServerError => error(500, "Internal Server Error", None),
        Reply::EditNotFound => error(400, "Bad Request: message to edit not found", None),
    }
}
