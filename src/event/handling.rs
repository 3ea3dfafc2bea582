//! Handling: what the team did about a call or a lead — who took it, who called back — as
//! pressed on its Telegram card. One handling per card: the events of one call share it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::EventId;

/// A button on a card, and what pressing it records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// «Беру»: the presser calls the client back.
    Take,
    /// «Перезвонил»: done.
    Done,
    /// «Не дозвонился»: tried, nobody answered; the card stays with the presser.
    NoAnswer,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Take, Action::Done, Action::NoAnswer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Take => "take",
            Self::Done => "done",
            Self::NoAnswer => "no_answer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }

    /// The button's label, in the templates' language.
    pub fn label(self, english: bool) -> &'static str {
        match (self, english) {
            (Self::Take, false) => "🙋 Беру",
            (Self::Done, false) => "✅ Перезвонил",
            (Self::NoAnswer, false) => "📵 Не дозвонился",
            (Self::Take, true) => "🙋 I'll take it",
            (Self::Done, true) => "✅ Called back",
            (Self::NoAnswer, true) => "📵 No answer",
        }
    }
}

/// What a button carries back when pressed: `sb1:<action>:<event id>`, well within the
/// 64 bytes Telegram allows.
pub fn button_data(action: Action, event: EventId) -> String {
    format!("sb1:{}:{event}", action.as_str())
}

/// The action and event a button's data names; `None` for anything else (a button of an older
/// release, or not Switchboard's).
pub fn parse_button_data(data: &str) -> Option<(Action, EventId)> {
    let mut parts = data.strip_prefix("sb1:")?.splitn(2, ':');
    let action = Action::parse(parts.next()?)?;
    let event = parts.next()?.parse().ok()?;
    Some((action, event))
}

/// Where a card stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nobody took it yet.
    #[default]
    New,
    Taken,
    Done,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Taken => "taken",
            Self::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::New, Self::Taken, Self::Done].into_iter().find(|status| status.as_str() == text)
    }

    /// Whether a card in this status is at least `wanted`: a done card was taken too.
    pub fn reached(self, wanted: Status) -> bool {
        let rank = |status| match status {
            Self::New => 0,
            Self::Taken => 1,
            Self::Done => 2,
        };
        rank(self) >= rank(wanted)
    }
}

/// Who pressed: a Telegram user, as the update named them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: i64,
    /// First and last name, or the username.
    pub name: String,
}

/// An event of a card's call, as templates see it in `card.events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardEvent {
    pub id: EventId,
    /// The vendor's name for it (`call_event`) and its kind (`call.missed`).
    pub event: String,
    pub kind: String,
    pub received_at: DateTime<Utc>,
}

/// A card's handling, as templates and the dashboard see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handling {
    /// The card: the event that began the call (`store::NewEvent::sequence_start`), or the
    /// event itself when it belongs to no sequence.
    pub card: EventId,
    pub status: Status,
    pub taken_by: Option<Person>,
    pub taken_at: Option<DateTime<Utc>>,
    pub done_by: Option<Person>,
    pub done_at: Option<DateTime<Utc>>,
    /// «Не дозвонился» presses: tries that reached nobody.
    pub no_answers: u32,
    pub last_no_answer_at: Option<DateTime<Utc>>,
}

impl Handling {
    /// A card nobody pressed on.
    pub fn unpressed(card: EventId) -> Self {
        Self {
            card,
            status: Status::New,
            taken_by: None,
            taken_at: None,
            done_by: None,
            done_at: None,
            no_answers: 0,
            last_no_answer_at: None,
        }
    }

    /// The buttons a card in this state offers: none once it is done.
    pub fn offers(&self, buttons: &[Action]) -> Vec<Action> {
        if self.status == Status::Done { Vec::new() } else { buttons.to_vec() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_reads_back_and_fits_telegram() {
        let event = EventId::new(Utc::now());
        let data = button_data(Action::NoAnswer, event);
        assert!(data.len() <= 64, "{data}");
        assert_eq!(parse_button_data(&data), Some((Action::NoAnswer, event)));
        for other in ["sb1:take", "sb1:call:01ABC", "sb2:take:x", "take", ""] {
            assert_eq!(parse_button_data(other), None, "{other}");
        }
    }

    #[test]
    fn actions_and_statuses_read_back_their_names() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("take_it"), None);
        for status in [Status::New, Status::Taken, Status::Done] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
    }
}
