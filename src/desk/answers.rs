//! What a presser is told: a short notice over the chat (`answerCallbackQuery`), in the
//! templates' language, that says what the press did — or why it did nothing.

use crate::event::handling::{Action, Handling, Person, Status};

/// What became of a press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Recorded; `applied` is false when the card had moved on (taken by someone else, done).
    Pressed { action: Action, applied: bool, handling: Handling, by: Person },
    /// The button is not one of ours, or of an older release.
    Unknown,
    /// The card's event is no longer kept.
    Gone(Action),
    /// The message pressed on is not a card of a chat this bot sends to.
    NotHere(Action),
    /// The store failed: the press was not recorded.
    Failed(Action),
}

impl Answer {
    /// The notice, in English or Russian.
    pub fn text(&self, english: bool) -> String {
        let say = |ru: String, en: String| if english { en } else { ru };
        match self {
            Self::Pressed { action, applied: true, handling, .. } => match action {
                Action::Take => say("Звонок ваш".into(), "It's yours".into()),
                Action::Done => say("Отмечено: перезвонили".into(), "Marked as called back".into()),
                Action::NoAnswer => say(
                    format!("Записано: не дозвонились ({}-й раз)", handling.no_answers),
                    format!("Noted: no answer (try {})", handling.no_answers),
                ),
            },
            Self::Pressed { applied: false, handling, by, .. } => {
                let (who, done) = match handling.status {
                    Status::Done => (handling.done_by.as_ref(), true),
                    Status::Taken | Status::New => (handling.taken_by.as_ref(), false),
                };
                let name = who.map_or("", |p| p.name.as_str());
                match (done, who.is_some_and(|p| p.id == by.id)) {
                    (true, _) => say(format!("Уже закрыт: перезвонил(а) {name}"), format!("Already done by {name}")),
                    (false, true) => say("Звонок уже ваш".into(), "It's already yours".into()),
                    (false, false) => say(format!("Уже взял(а): {name}"), format!("Already taken by {name}")),
                }
            }
            Self::Unknown => say(
                "Эта кнопка устарела: у карточки её больше нет".into(),
                "This button is outdated: the card no longer has it".into(),
            ),
            Self::Gone(_) => say(
                "Карточка больше не ведётся: её событие удалено".into(),
                "This card is no longer kept: its event was removed".into(),
            ),
            Self::NotHere(_) => say(
                "Эта карточка не из чата, который ведёт Switchboard".into(),
                "This card is not from a chat Switchboard sends to".into(),
            ),
            Self::Failed(_) => {
                say("Не получилось записать, нажмите ещё раз".into(), "Could not record that; press again".into())
            }
        }
    }

    /// The action pressed, for metrics (`unknown` for a button not ours).
    pub fn action(&self) -> &'static str {
        match self {
            Self::Pressed { action, .. } | Self::Gone(action) | Self::NotHere(action) | Self::Failed(action) => {
                action.as_str()
            }
            Self::Unknown => "unknown",
        }
    }

    /// What it did, for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Pressed { applied: true, .. } => "applied",
            Self::Pressed { applied: false, .. } => "refused",
            Self::Unknown => "unknown_button",
            Self::Gone(_) => "gone",
            Self::NotHere(_) => "not_here",
            Self::Failed(_) => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    fn handling(status: Status, taken_by: Option<&Person>, done_by: Option<&Person>) -> Handling {
        Handling {
            card: EventId::new(chrono::Utc::now()),
            status,
            taken_by: taken_by.cloned(),
            taken_at: None,
            done_by: done_by.cloned(),
            done_at: None,
            no_answers: 2,
            last_no_answer_at: None,
        }
    }

    #[test]
    fn a_presser_is_told_what_the_press_did() {
        let olga = Person { id: 1, name: "Ольга".into() };
        let ivan = Person { id: 2, name: "Иван".into() };
        let pressed =
            |action, applied, handling, by: &Person| Answer::Pressed { action, applied, handling, by: by.clone() };
        let taken = handling(Status::Taken, Some(&olga), None);
        assert_eq!(pressed(Action::Take, false, taken.clone(), &ivan).text(false), "Уже взял(а): Ольга");
        assert_eq!(pressed(Action::Take, false, taken.clone(), &ivan).text(true), "Already taken by Ольга");
        assert_eq!(pressed(Action::Take, false, taken.clone(), &olga).text(false), "Звонок уже ваш");
        assert_eq!(pressed(Action::NoAnswer, true, taken, &olga).text(false), "Записано: не дозвонились (2-й раз)");
        let done = handling(Status::Done, Some(&olga), Some(&ivan));
        assert_eq!(pressed(Action::Take, false, done, &olga).text(false), "Уже закрыт: перезвонил(а) Иван");
        assert_eq!(Answer::Unknown.outcome(), "unknown_button");
    }
}
