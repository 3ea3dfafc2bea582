//! What the Bot API's answers mean for a delivery: retry (and when), or fail for good, and
//! what the operator must change.
//!
//! Bot API errors: <https://core.telegram.org/bots/api#responseparameters>.

use teloxide::{ApiError, RequestError};

use crate::outputs::{DeliveryError, Reason};

/// What a Bot API error means for the delivery.
pub fn classify(error: &RequestError) -> DeliveryError {
    match error {
        RequestError::RetryAfter(seconds) => DeliveryError::retry_after(
            Reason::RateLimited,
            seconds.duration(),
            format!("Telegram flood control: retry after {} s", seconds.seconds()),
        ),
        // Only when the new chat moved again: the first move is followed by `send_part`.
        RequestError::MigrateToChatId(new_id) => DeliveryError::permanent(
            Reason::ClientError,
            format!("the group was upgraded to a supergroup: set chat_id = {new_id} for this output"),
        )
        .needs_operator(format!("the group became a supergroup: set chat_id = {new_id} for this output")),
        RequestError::Network(error) if error.is_timeout() => {
            DeliveryError::retry(Reason::Timeout, "no answer from the Bot API in time")
        }
        RequestError::Network(error) => DeliveryError::retry(Reason::Network, network_detail(error)),
        RequestError::Io(error) => DeliveryError::retry(Reason::Network, error.to_string()),
        // A Bot API that answers with something other than its JSON (a proxy's 502 page).
        RequestError::InvalidJson { raw, .. } => DeliveryError::retry(
            Reason::ServerError,
            format!("the Bot API answered with something that is not its JSON: {raw}"),
        ),
        RequestError::Api(api) => classify_api(api),
    }
}

fn classify_api(error: &ApiError) -> DeliveryError {
    let detail = format!("Telegram: {error}");
    match error {
        ApiError::InvalidToken
        | ApiError::BotBlocked
        | ApiError::BotKicked
        | ApiError::BotKickedFromSupergroup
        | ApiError::BotKickedFromChannel
        | ApiError::UserDeactivated
        | ApiError::NotEnoughRightsToPostMessages => {
            DeliveryError::permanent(Reason::Auth, detail).needs_operator(if matches!(error, ApiError::InvalidToken) {
                "Telegram refuses the bot token: take a current one from @BotFather"
            } else {
                "the bot cannot post to this chat (blocked, removed, or without the right to post): add it back, \
                 then retry the dead letters; every alert to this chat fails until then"
            })
        }
        ApiError::Unknown(text) if is_server_side(text) => DeliveryError::retry(Reason::ServerError, detail),
        _ => DeliveryError::permanent(Reason::ClientError, detail),
    }
}

/// Bot API descriptions of its own failures (HTTP 5xx): worth another try.
fn is_server_side(description: &str) -> bool {
    ["Internal Server Error", "Bad Gateway", "Gateway Timeout", "Service Unavailable"]
        .iter()
        .any(|marker| description.contains(marker))
}

fn network_detail(error: &reqwest::Error) -> String {
    // The request URL holds the bot token, and reqwest's own message includes it: only the
    // causes below it are kept.
    match std::error::Error::source(error) {
        Some(cause) => format!("network error talking to the Bot API: {}", crate::outputs::error_chain(cause)),
        None => "network error talking to the Bot API".to_owned(),
    }
}
