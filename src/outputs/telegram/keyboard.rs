//! The buttons under a card: links from the template's `buttons` part (the recording, the
//! CRM, the page — only those whose URL exists for the event) and the route's action buttons,
//! whose presses come back through the bot's updates ([`super::inbox`]).
//!
//! Bot API: <https://core.telegram.org/bots/api#inlinekeyboardmarkup>.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::outputs::Message;
use crate::render::Part;

/// Telegram refuses callback data over 64 bytes.
const CALLBACK_DATA_LIMIT: usize = 64;

/// The message's buttons: one row of links, one of actions; `None` when it has neither.
pub(super) fn keyboard(message: &Message) -> Option<InlineKeyboardMarkup> {
    let links: Vec<InlineKeyboardButton> = message.get(Part::Buttons).map(links).unwrap_or_default();
    let actions: Vec<InlineKeyboardButton> = message
        .actions()
        .iter()
        .filter(|action| action.data.len() <= CALLBACK_DATA_LIMIT)
        .map(|action| InlineKeyboardButton::callback(action.label.clone(), action.data.clone()))
        .collect();
    let rows: Vec<Vec<InlineKeyboardButton>> = [links, actions].into_iter().filter(|row| !row.is_empty()).collect();
    (!rows.is_empty()).then(|| InlineKeyboardMarkup::new(rows))
}

/// `label | url` lines; a line without a URL, or with one Telegram would refuse, is left out.
fn links(part: &str) -> Vec<InlineKeyboardButton> {
    part.lines()
        .filter_map(|line| {
            let (label, url) = line.split_once('|')?;
            let (label, url) = (label.trim(), url.trim());
            let url = reqwest::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https" | "tg"))?;
            (!label.is_empty()).then(|| InlineKeyboardButton::url(label.to_owned(), url))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use teloxide::types::InlineKeyboardButtonKind;

    use super::*;
    use crate::outputs::ActionButton;

    #[test]
    fn links_that_exist_and_actions_make_two_rows() {
        let part = "🎙 Запись | https://example.com/r.mp3\n🌐 Страница | \nCRM | not a url\n | https://x.example\n";
        let message = Message::new(BTreeMap::from([(Part::Buttons, part.to_owned())]), BTreeMap::new())
            .with_actions(vec![ActionButton { label: "🙋 Беру".into(), data: "sb1:take:01ABC".into() }]);
        let rows = keyboard(&message).unwrap().inline_keyboard;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].len(), 1, "only the link whose URL exists: {rows:?}");
        assert!(
            matches!(&rows[0][0].kind, InlineKeyboardButtonKind::Url(url) if url.as_str() == "https://example.com/r.mp3")
        );
        assert!(matches!(&rows[1][0].kind, InlineKeyboardButtonKind::CallbackData(data) if data == "sb1:take:01ABC"));
        assert!(keyboard(&Message::default()).is_none(), "no buttons, no keyboard");
    }
}
