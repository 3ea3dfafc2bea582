//! The desk: presses on a card, applied when they may.

use super::*;
use crate::event::handling::{Action, Person, Status};
use crate::store::NewPress;

/// The first «Беру» wins; «Не дозвонился» counts tries; a done card stays done; a press on an
/// event of a call finds the call's card.
pub(super) async fn presses_apply_in_order_and_the_first_take_wins(store: &dyn Store) {
    let now = Utc::now();
    let start = new_event("jivo", "d:start", now);
    let card = start.event.id;
    let mut end = new_event("jivo", "d:end", now);
    end.sequence_start = Some(card);
    let end_id = end.event.id;
    store.append(start).await.unwrap();
    store.append(end).await.unwrap();
    assert_eq!(store.card_of(end_id).await.unwrap(), Some(card), "an event of a call belongs to its start");
    assert_eq!(store.card_of(card).await.unwrap(), Some(card));
    assert_eq!(store.card_of(crate::event::EventId::new(now)).await.unwrap(), None);
    assert_eq!(store.handling(card).await.unwrap(), None, "nobody pressed anything yet");

    let olga = Person { id: 7, name: "Ольга".into() };
    let ivan = Person { id: 8, name: "Иван".into() };
    let press = |action, by: &Person, after: i64| NewPress {
        query_id: format!("query-{after}"),
        card,
        event: end_id,
        action,
        by: by.clone(),
        at: now + TimeDelta::seconds(after),
    };
    let taken = store.press(&press(Action::Take, &olga, 1)).await.unwrap();
    assert!(taken.applied);
    assert_eq!((taken.handling.status, taken.handling.taken_by.as_ref()), (Status::Taken, Some(&olga)));
    let second = store.press(&press(Action::Take, &ivan, 2)).await.unwrap();
    assert!(!second.applied, "the call is Olga's");
    assert_eq!(second.handling.taken_by.as_ref(), Some(&olga));
    let tried = store.press(&press(Action::NoAnswer, &ivan, 3)).await.unwrap();
    assert!(tried.applied);
    assert_eq!((tried.handling.no_answers, tried.handling.taken_by.as_ref()), (1, Some(&olga)));
    let again = store.press(&press(Action::NoAnswer, &ivan, 3)).await.unwrap();
    assert!(again.repeated && !again.applied, "the same press read twice counts once");
    assert_eq!(again.handling.no_answers, 1);
    let done = store.press(&press(Action::Done, &olga, 4)).await.unwrap();
    assert!(done.applied);
    assert_eq!(done.handling.status, Status::Done);
    assert_eq!(done.handling.done_at.map(|t| t.timestamp()), Some((now + TimeDelta::seconds(4)).timestamp()));
    let late = store.press(&press(Action::NoAnswer, &ivan, 5)).await.unwrap();
    assert!(!late.applied, "a done card stays done");
    assert_eq!(late.handling.no_answers, 1);

    // Done without anyone taking it first: whoever called back took it.
    let other = new_event("envybox", "d:other", now);
    let other_card = other.event.id;
    store.append(other).await.unwrap();
    let done = store
        .press(&NewPress {
            query_id: "other".into(),
            card: other_card,
            event: other_card,
            action: Action::Done,
            by: ivan.clone(),
            at: now,
        })
        .await
        .unwrap();
    assert_eq!((done.handling.taken_by.as_ref(), done.handling.done_by.as_ref()), (Some(&ivan), Some(&ivan)));

    let by_handling = |status| {
        let query = crate::store::EventQuery { handling: Some(status), limit: 10, ..Default::default() };
        async move { store.events(&query).await.unwrap().iter().map(|s| s.event.id).collect::<Vec<_>>() }
    };
    assert_eq!(by_handling(Status::Done).await, [other_card, end_id, card], "a call's events share its card");
    assert!(by_handling(Status::Taken).await.is_empty());
    assert!(by_handling(Status::New).await.is_empty(), "every routed event here was pressed on");
}
