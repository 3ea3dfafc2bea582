use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::config::{Config, ConfigErrors, Source};
use crate::event::handling::Status;
use crate::event::{EventId, Fields, Kind};

fn config(routes: &str) -> Result<Config, ConfigErrors> {
    let text = format!("[outputs.office]\ntype = \"log\"\n[outputs.night]\ntype = \"log\"\n\n{routes}");
    Config::from_source(&Source::embedded("config.toml", &text), Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// A configuration's routes, kept with the configuration that owns them.
struct Compiled(Config);

impl std::ops::Deref for Compiled {
    type Target = Routes;

    fn deref(&self) -> &Routes {
        self.0.routes()
    }
}

fn routes(text: &str) -> Compiled {
    Compiled(config(text).unwrap_or_else(|e| panic!("{e}")))
}

fn event(vendor: &str, name: &str, kind: &str, fields: Value, at: DateTime<Utc>) -> Event {
    let mut set = Fields::default();
    for (key, value) in fields.as_object().unwrap() {
        set.set(key, value.clone());
    }
    Event {
        id: EventId::new(at),
        received_at: at,
        vendor: vendor.into(),
        event: name.into(),
        kind: Kind::parse(kind).unwrap(),
        fields: set,
        payload: json!({"call_state": "Оператор был занят", "tags": ["vip"]}),
    }
}

fn monday_noon() -> DateTime<Utc> {
    chrono_tz::Europe::Moscow.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap().with_timezone(&Utc)
}

fn names(decisions: &[Decision]) -> Vec<&str> {
    decisions.iter().map(|d| d.route.as_str()).collect()
}

const TABLE: &str = r#"
[[route]]
name = "disabled"
enabled = false
to = ["office"]
template = "generic"

[[route]]
name = "crm deals"
kind = "crm.deal.*"
to = ["office"]
template = "crm_deal"

[[route]]
name = "audit every missed call"
kind = "call.missed"
continue = true
to = ["night"]
template = "generic"

[[route]]
name = "missed, office hours"
kind = "call.missed"
schedule = { timezone = "Europe/Moscow", days = ["mon", "tue", "wed", "thu", "fri"], hours = ["09:00-18:00"] }
to = ["office"]
template = "missed_call"

[[route]]
name = "missed, after hours"
kind = "call.missed"
to = ["night"]
template = "missed_call"

[[route]]
name = "long calls from Moscow"
vendor = ["envybox", "callkeeper"]
event = "call_*"
when = { "call.duration_s" = { ">=" = 60 }, "geo.city" = { regex = "^Моск" }, "payload.tags" = "vip" }
to = ["office"]
template = "call_finished"

[[route]]
name = "everything else"
to = ["night"]
template = "generic"
"#;

#[test]
fn routes_decide_in_order() {
    let routes = routes(TABLE);
    let sunday = chrono_tz::Europe::Moscow.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap().with_timezone(&Utc);
    let cases: Vec<(Event, Vec<&str>)> = vec![
        (event("jivo", "created_deal", "crm.deal.created", json!({}), monday_noon()), vec!["crm deals"]),
        (event("jivo", "created_task", "crm.task.created", json!({}), monday_noon()), vec!["everything else"]),
        (
            event("envybox", "call_info", "call.missed", json!({}), monday_noon()),
            vec!["audit every missed call", "missed, office hours"],
        ),
        (
            event("envybox", "call_info", "call.missed", json!({}), sunday),
            vec!["audit every missed call", "missed, after hours"],
        ),
        (
            event(
                "callkeeper",
                "call_over",
                "call.finished",
                json!({"call.duration_s": "75", "geo.city": "Москва"}),
                monday_noon(),
            ),
            vec!["long calls from Moscow"],
        ),
        (
            event(
                "callkeeper",
                "call_over",
                "call.finished",
                json!({"call.duration_s": 30, "geo.city": "Москва"}),
                monday_noon(),
            ),
            vec!["everything else"],
        ),
        (
            event(
                "jivo",
                "call_event",
                "call.finished",
                json!({"call.duration_s": 75, "geo.city": "Москва"}),
                monday_noon(),
            ),
            vec!["everything else"],
        ),
    ];
    for (event, expected) in cases {
        assert_eq!(names(&routes.decide(&event)), expected, "{} {} at {}", event.vendor, event.kind, event.received_at);
    }
}

#[test]
fn explain_agrees_with_decide_and_says_why() {
    let routes = routes(TABLE);
    let event = event(
        "callkeeper",
        "call_over",
        "call.finished",
        json!({"call.duration_s": 30, "geo.city": "Москва"}),
        monday_noon(),
    );
    let verdicts = routes.explain(&event);
    let outcome = |name: &str| verdicts.iter().find(|v| v.route == name).unwrap().outcome.clone();
    assert_eq!(outcome("disabled"), Outcome::Disabled);
    assert_eq!(outcome("crm deals"), Outcome::NotMatched("kind is `call.finished`, wanted crm.deal.*".into()));
    assert_eq!(outcome("long calls from Moscow"), Outcome::NotMatched("call.duration_s is `30`, wanted >= 60".into()));
    assert_eq!(outcome("everything else"), Outcome::Matched);

    let missed = event_at_sunday_missed();
    let verdicts = routes.explain(&missed);
    let outcome = |name: &str| verdicts.iter().find(|v| v.route == name).unwrap().outcome.clone();
    assert!(
        matches!(outcome("missed, office hours"), Outcome::NotMatched(why) if why.starts_with("received outside the schedule"))
    );
    assert_eq!(outcome("missed, after hours"), Outcome::Matched);
    assert_eq!(outcome("long calls from Moscow"), Outcome::NotReached);
    let matched: Vec<&str> =
        verdicts.iter().filter(|v| v.outcome == Outcome::Matched).map(|v| v.route.as_str()).collect();
    assert_eq!(matched, names(&routes.decide(&missed)));
}

fn event_at_sunday_missed() -> Event {
    let sunday = chrono_tz::Europe::Moscow.with_ymd_and_hms(2026, 11, 22, 23, 0, 0).unwrap().with_timezone(&Utc);
    event("jivo", "call_event", "call.missed", json!({}), sunday)
}

#[test]
fn an_event_no_route_takes_is_unrouted() {
    let routes =
        routes("[[route]]\nname = \"only deals\"\nkind = \"crm.deal.*\"\nto = [\"office\"]\ntemplate = \"crm_deal\"\n");
    assert!(routes.decide(&event("jivo", "chat_finished", "chat.finished", json!({}), monday_noon())).is_empty());
}

#[test]
fn targets_take_the_route_template_and_card_or_their_override() {
    let both = routes(
        "[[route]]\nname = \"r\"\nto = [\"office\", \"night\"]\ntemplate = \"generic\"\ntemplates = { night = \"missed_call\" }\n\
         card = \"reply\"\ncards = { night = \"new\" }\ntopic = 7\ntopics = { night = 9 }\n",
    );
    let decisions = both.decide(&event("jivo", "x", "unknown", json!({}), monday_noon()));
    assert_eq!(
        decisions[0].targets,
        [
            Target {
                output: "office".into(),
                template: "generic".into(),
                card: CardMode::Reply,
                buttons: Vec::new(),
                topic: Some(7)
            },
            Target {
                output: "night".into(),
                template: "missed_call".into(),
                card: CardMode::New,
                buttons: Vec::new(),
                topic: Some(9)
            }
        ]
    );
    let plain = routes("[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\n");
    let decisions = plain.decide(&event("jivo", "x", "unknown", json!({}), monday_noon()));
    assert_eq!(decisions[0].targets[0].card, CardMode::Edit, "one live card unless a route says otherwise");
}

#[test]
fn route_problems_are_named() {
    let cases: &[(&str, &str)] = &[
        (
            "[[route]]\nname = \"r\"\nto = [\"tg\"]\ntemplate = \"generic\"\n",
            "route[0].to: (route `r`) no output is called `tg`; configured outputs: night, office",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"nope\"\n",
            "route[0].template: (route `r`) no template is called `nope`",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\n",
            "route[0].template: (route `r`) no template for output `office`",
        ),
        (
            "[[route]]\nname = \"r\"\nkind = \"call.mised\"\nto = [\"office\"]\ntemplate = \"generic\"\n",
            "route[0].kind: (route `r`) unknown kind `call.mised`",
        ),
        (
            "[[route]]\nname = \"r\"\nvendor = \"jiov\"\nto = [\"office\"]\ntemplate = \"generic\"\n",
            "route[0].vendor: (route `r`) no plugin is called `jiov`",
        ),
        (
            "[[route]]\nname = \"r\"\nwhen = { call_state = \"x\" }\nto = [\"office\"]\ntemplate = \"generic\"\n",
            "route[0].when.call_state: (route `r`) unknown field `call_state`",
        ),
        (
            "[[route]]\nname = \"r\"\nschedule = { timezone = \"Moscow\" }\nto = [\"office\"]\ntemplate = \"generic\"\n",
            "route[0].schedule: (route `r`) unknown time zone `Moscow`",
        ),
        (
            "[[route]]\nname = \"r\"\nto = []\ntemplate = \"generic\"\n",
            "route[0].to: (route `r`) a route needs at least one output",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\n[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\n",
            "route[1].name: (route `r`) another route is already called `r`",
        ),
        (
            "[[route]]\nname = \"r\"\nenabled = \"maybe\"\nto = [\"office\"]\ntemplate = \"generic\"\n",
            "route[0].enabled: (route `r`) expected true or false",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\ncards = { night = \"new\" }\n",
            "route[0].cards: (route `r`) `night` is not one of this route's outputs (office)",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\ncard = \"edits\"\n",
            "route[0].card: unknown variant `edits`, expected one of `edit`, `reply`, `new`",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\nescalate = [{ after = \"10 minutes\" }]\n",
            "route[0].escalate[0].after: (route `r`) `10 minutes` is not a wait such as \"90s\", \"10m\", \"2h\" or \"1d\"",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\nescalate = [{ after = \"31d\" }]\n",
            "route[0].escalate[0].after: (route `r`) `31d` is longer than the 30 days",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\nescalate = [{ after = \"1m\", unless = \"new\" }]\n",
            "route[0].escalate[0].unless: (route `r`) must be `taken` or `done`",
        ),
        (
            "[[route]]\nname = \"r\"\nto = [\"office\"]\ntemplate = \"generic\"\nescalate = [{ after = \"10m\", to = [\"boss\"] }]\n",
            "route[0].escalate[0].to: (route `r`) no output is called `boss`",
        ),
        ("[outputs.tg]\ntype = \"telegrm\"\n", "outputs.tg.type: unknown output type `telegrm`; expected one of:"),
        ("[outputs.tg]\nchat_id = 1\n", "outputs.tg.type: every output needs a `type`"),
        ("[templates]\nlanguage = \"de\"\n", "templates.language: unknown language `de`; expected one of ru, en"),
    ];
    for (text, expected) in cases {
        let errors = config(text).expect_err(text).0;
        let found: Vec<String> =
            errors.iter().map(|i| format!("{} {}", i.key, i.message).replacen(' ', ": ", 1)).collect();
        assert!(found.iter().any(|f| f.starts_with(expected)), "{text}\nexpected: {expected}\nfound: {found:#?}");
    }
}

#[test]
fn a_switched_off_output_is_not_built_and_routes_to_it_still_load() {
    let config = config(
        "[outputs.tg]\ntype = \"log\"\nenabled = \"${SWITCHBOARD_TEST_UNSET_TOKEN:+true}\"\nfile = \"${SWITCHBOARD_TEST_UNSET_FILE}\"\n\n[[route]]\nname = \"r\"\nto = [\"tg\"]\ntemplate = \"generic\"\n",
    )
    .unwrap();
    assert!(config.outputs()["tg"].output.is_none());
}

/// A plan is made at the time it is given (a replay's, not the event's): a route's ttl counts
/// from it, and the deliveries made of it have ids of that time, so they list among the newest.
/// An output that cannot send gets no delivery.
#[test]
fn a_plan_is_made_at_the_time_given() {
    let routes =
        routes("[[route]]\nname = \"all\"\nto = [\"office\", \"night\"]\ntemplate = \"generic\"\nttl_secs = 60\n");
    let received = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let replayed = received + chrono::TimeDelta::days(2);
    let plan =
        routes.plan(&event("jivo", "offline_message", "message.offline", json!({}), received), replayed, |output| {
            output == "office"
        });
    assert_eq!(plan.routes, ["all"]);
    assert_eq!(plan.deliveries.len(), 1);
    assert_eq!(plan.deliveries[0].output, "office");
    assert_eq!(plan.deliveries[0].expires_at, Some(replayed + chrono::TimeDelta::seconds(60)));
    let planned = &plan.deliveries[0];
    let delivery = crate::store::NewDelivery::planned_at(
        replayed,
        planned.route.clone(),
        planned.output.clone(),
        planned.template.clone(),
        planned.expires_at,
    );
    assert_eq!(i64::try_from(delivery.id.timestamp_ms()).unwrap(), replayed.timestamp_millis());
}

#[test]
fn escalations_are_planned_with_the_event_due_later() {
    let routes = routes(
        "[[route]]\nname = \"calls\"\nto = [\"office\"]\ntemplate = \"missed_call\"\n\
         escalate = [{ after = \"10m\" }, { after = \"1h\", unless = \"done\", to = [\"night\"], template = \"generic\" }]\n",
    );
    let plan = routes.plan(&event("jivo", "x", "call.missed", json!({}), monday_noon()), monday_noon(), |_| true);
    let planned: Vec<_> =
        plan.deliveries.iter().map(|p| (p.output.as_str(), p.template.as_str(), p.after, p.unless)).collect();
    assert_eq!(
        planned,
        [
            ("office", "missed_call", None, None),
            ("office", "reminder", Some(std::time::Duration::from_secs(600)), Some(Status::Taken)),
            ("night", "generic", Some(std::time::Duration::from_secs(3600)), Some(Status::Done)),
        ]
    );
}
