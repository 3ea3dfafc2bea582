//! One reader per bot: it has the bot's presses pushed to the listener (with
//! `server.public_url`) or reads them by long polling, and takes each. Readers start and stop
//! as reloads add and remove bots, or change how their presses arrive.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::{DeskConfig, sources, take};
use crate::outputs::{DeliveryError, Output, Reason};
use crate::store::Store;

/// How often the set of bots is checked against the configuration.
const RESCAN: Duration = Duration::from_secs(5);
/// The wait after a failed request, and after one the operator must fix (a refused token).
const AFTER_FAILURE: Duration = Duration::from_secs(5);
const AFTER_REFUSAL: Duration = Duration::from_secs(60);

/// Keeps a reader per bot until `shutdown`.
pub async fn run<C: DeskConfig + 'static>(store: Arc<dyn Store>, config: Arc<ArcSwap<C>>, shutdown: CancellationToken) {
    let mut readers: BTreeMap<ReaderKey, Reader> = BTreeMap::new();
    loop {
        let snapshot = config.load_full();
        let public_url = snapshot.public_url().map(str::to_owned);
        let wanted: Vec<(ReaderKey, Arc<dyn Output>)> = sources(snapshot.as_ref())
            .into_iter()
            .filter_map(|(source, outputs)| Some(((source, public_url.clone()), outputs.first()?.1.clone())))
            .collect();
        readers.retain(|key, reader| {
            let keep = wanted.iter().any(|(wanted, _)| wanted == key);
            if !keep {
                reader.stop.cancel();
                let (source, pushed) = key;
                // A bot no route puts buttons on any more: Telegram stops pushing to the
                // listener. (One that is still wanted has its next reader say where presses go.)
                if pushed.is_some() && !wanted.iter().any(|((other, _), _)| other == source) {
                    tokio::spawn(unhook(source.clone(), reader.output.clone()));
                }
            }
            keep
        });
        for (key, output) in wanted {
            if readers.contains_key(&key) {
                continue;
            }
            let stop = shutdown.child_token();
            readers.insert(key.clone(), Reader { stop: stop.clone(), output });
            tokio::spawn(read(store.clone(), config.clone(), key, stop));
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RESCAN) => {}
        }
    }
}

/// What a reader reads (the inbox's source) and where its presses are pushed, if they are.
type ReaderKey = (String, Option<String>);

/// A running reader, and the output whose bot it reads.
struct Reader {
    stop: CancellationToken,
    output: Arc<dyn Output>,
}

/// Removes the bot's webhook, once: a failure only leaves Telegram posting presses that the
/// listener refuses (404), and Telegram gives those up by itself.
async fn unhook(source: String, output: Arc<dyn Output>) {
    let Some(inbox) = output.inbox() else { return };
    match inbox.push_to(None).await {
        Ok(()) => {
            tracing::info!(message = "No route puts buttons on this bot's cards now; its webhook is removed.", source = %source)
        }
        Err(error) => log_failure(&source, &error),
    }
}

/// One bot's reader: tells Telegram where presses go, then, when they are not pushed, reads
/// them until `stop`.
async fn read<C: DeskConfig + 'static>(
    store: Arc<dyn Store>,
    config: Arc<ArcSwap<C>>,
    (source, public_url): (String, Option<String>),
    stop: CancellationToken,
) {
    loop {
        let snapshot = config.load_full();
        let Some(outputs) = sources(snapshot.as_ref()).remove(&source) else { return };
        let Some(inbox) = outputs.first().and_then(|(_, output)| output.inbox()) else { return };
        let url = public_url.as_ref().map(|base| format!("{}/{}", base.trim_end_matches('/'), inbox.push_path()));
        match inbox.push_to(url.as_deref()).await {
            Ok(()) => {
                tracing::info!(message = "Presses on cards arrive.", source = %source, webhook = url.as_deref().unwrap_or("none: read by long polling"));
                break;
            }
            Err(error) => {
                log_failure(&source, &error);
                if !wait(&stop, &error).await {
                    return;
                }
            }
        }
    }
    if public_url.is_some() {
        // Pushed to the listener ([`super::pushes`]): nothing to read.
        return;
    }
    loop {
        let snapshot = config.load_full();
        let Some(outputs) = sources(snapshot.as_ref()).remove(&source) else { return };
        let Some(inbox) = outputs.first().and_then(|(_, output)| output.inbox()) else { return };
        let presses = tokio::select! {
            () = stop.cancelled() => return,
            presses = inbox.presses(crate::outputs::telegram::POLL_WAIT) => presses,
        };
        match presses {
            Ok(presses) => {
                for press in presses {
                    take(store.as_ref(), &outputs, &press, snapshot.english()).await;
                }
            }
            Err(error) => {
                log_failure(&source, &error);
                if !wait(&stop, &error).await {
                    return;
                }
            }
        }
    }
}

/// Waits before the next try, longer after a refusal the operator must fix; false on `stop`.
async fn wait(stop: &CancellationToken, error: &DeliveryError) -> bool {
    let wait = if error.action.is_some() || error.reason == Reason::Auth { AFTER_REFUSAL } else { AFTER_FAILURE };
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

fn log_failure(source: &str, error: &DeliveryError) {
    // Another reader of the same bot (a second instance on one database) makes Telegram refuse
    // one of the two: harmless, each press still reaches one of them.
    if error.detail.contains("terminated by other getUpdates request") {
        tracing::debug!(message = "Another reader took this bot's presses.", source, detail = %error.detail);
    } else {
        tracing::warn!(message = "Could not receive presses on cards; trying again.", source, detail = %error.detail);
    }
}
