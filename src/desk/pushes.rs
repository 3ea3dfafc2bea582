//! Presses Telegram pushes to the webhook listener, when `server.public_url` is set:
//! `POST /telegram/<bot id>`, each carrying the bot's push secret in
//! `X-Telegram-Bot-Api-Secret-Token`. A post without it is refused; one that is not an update
//! is answered 400 and dropped (Telegram would only send it again).

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::{DeskConfig, sources, take};
use crate::store::Store;

/// The header Telegram puts the webhook's `secret_token` in.
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

struct Pushes<C> {
    store: Arc<dyn Store>,
    config: Arc<ArcSwap<C>>,
}

impl<C> Clone for Pushes<C> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), config: self.config.clone() }
    }
}

/// The listener's routes for pushed presses.
pub fn router<C: DeskConfig + 'static>(store: Arc<dyn Store>, config: Arc<ArcSwap<C>>) -> Router {
    Router::new().route("/telegram/{bot}", post(pushed::<C>)).with_state(Pushes { store, config })
}

async fn pushed<C: DeskConfig + 'static>(
    State(state): State<Pushes<C>>,
    Path(bot): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let snapshot = state.config.load_full();
    let path = format!("telegram/{bot}");
    let Some(outputs) = sources(snapshot.as_ref())
        .into_values()
        .find(|outputs| outputs.first().and_then(|(_, o)| o.inbox()).is_some_and(|inbox| inbox.push_path() == path))
    else {
        return (StatusCode::NOT_FOUND, "no bot with buttons is configured here");
    };
    let Some(inbox) = outputs.first().and_then(|(_, output)| output.inbox()) else {
        return (StatusCode::NOT_FOUND, "no bot with buttons is configured here");
    };
    let given = headers.get(SECRET_HEADER).and_then(|value| value.to_str().ok()).unwrap_or_default();
    if !inbox.push_secret().matches(given) {
        return (StatusCode::UNAUTHORIZED, "the secret token is missing or wrong");
    }
    match inbox.pushed(&body) {
        Ok(presses) => {
            for press in presses {
                take(state.store.as_ref(), &outputs, &press, snapshot.english()).await;
            }
            (StatusCode::OK, "ok")
        }
        Err(error) => {
            tracing::warn!(message = "A post to the presses webhook was not an update.", %error);
            (StatusCode::BAD_REQUEST, "not a Telegram update")
        }
    }
}
