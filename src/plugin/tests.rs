//! Plugin behaviour against the shipped plugins: every event the vendors document is recognised
//! by name and kind. (End-to-end over HTTP with the documents' own examples: `tests/it`.)

use chrono::Utc;
use serde_json::{Value, json};

use super::*;
use crate::event::EventId;

fn shipped() -> VendorRegistry {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let (registry, issues) = VendorRegistry::load_dir(&dir);
    assert!(issues.is_empty(), "shipped plugins must compile: {issues:#?}");
    registry
}

fn interpret(registry: &VendorRegistry, vendor: &str, payload: Value) -> Normalized {
    let vendor = registry.get(vendor).expect("vendor exists");
    let raw = serde_json::to_vec(&payload).unwrap();
    vendor.interpret(payload, None, &raw, EventId::new(Utc::now()), Utc::now()).expect("payload is accepted")
}

fn kind_of(registry: &VendorRegistry, vendor: &str, payload: Value) -> (String, String) {
    let normalized = interpret(registry, vendor, payload);
    (normalized.event.event, normalized.event.kind.to_string())
}

#[test]
fn embedded_plugins_match_the_plugin_folder() {
    let (embedded, issues) = VendorRegistry::embedded();
    assert!(issues.is_empty(), "embedded plugins must compile: {issues:#?}");
    let names: Vec<&str> = embedded.iter().map(|v| v.name()).collect();
    assert_eq!(names, shipped().iter().map(|v| v.name()).collect::<Vec<_>>());
}

#[test]
fn every_jivo_event_is_recognised() {
    let registry = shipped();
    let table: &[(&str, &str, &str)] = &[
        ("chat_accepted", "chat_accepted", "chat.accepted"),
        ("chat_updated", "chat_updated", "chat.updated"),
        ("chat_assigned", "chat_assigned", "chat.assigned"),
        ("client_updated", "client_updated", "contact.updated"),
        ("client_attribute_updated", "client_attribute_updated", "contact.updated"),
        ("chat_finished", "chat_finished", "chat.finished"),
        ("offline_message", "offline_message", "message.offline"),
        ("created_pipeline", "created_pipeline", "crm.pipeline.created"),
        ("updated_pipeline", "updated_pipeline", "crm.pipeline.updated"),
        ("deleted_pipeline", "deleted_pipeline", "crm.pipeline.deleted"),
        ("created_status", "created_status", "crm.status.created"),
        ("updated_status", "updated_status", "crm.status.updated"),
        ("deleted_status", "deleted_status", "crm.status.deleted"),
        ("reordered_status", "reordered_status", "crm.status.reordered"),
        ("assigned_status", "assigned_status", "crm.status.assigned"),
        ("changed_require_update_of_status", "changed_require_update_of_status", "crm.status.require_update_changed"),
        ("created_client_tag", "created_client_tag", "crm.client_tag.created"),
        ("сreated_client_tag", "created_client_tag", "crm.client_tag.created"),
        ("updated_client_tag", "updated_client_tag", "crm.client_tag.updated"),
        ("deleted_client_tag", "deleted_client_tag", "crm.client_tag.deleted"),
        ("merged_client_tag", "merged_client_tag", "crm.client_tag.merged"),
        ("merged_tag", "merged_client_tag", "crm.client_tag.merged"),
        (
            "changed_administrator_only_client_tag",
            "changed_administrator_only_client_tag",
            "crm.client_tag.administrator_only_changed",
        ),
        ("created_deal", "created_deal", "crm.deal.created"),
        ("updated_deal", "updated_deal", "crm.deal.updated"),
        ("deleted_deal", "deleted_deal", "crm.deal.deleted"),
        ("created_task", "created_task", "crm.task.created"),
        ("updated_task", "updated_task", "crm.task.updated"),
        ("deleted_task", "deleted_task", "crm.task.deleted"),
        ("completed_task", "completed_task", "crm.task.completed"),
        ("completed task", "completed_task", "crm.task.completed"),
        ("fired_task", "fired_task", "crm.task.fired"),
        ("created_organization", "created_organization", "crm.organization.created"),
        ("assigned_agent_to_client", "assigned_agent_to_client", "crm.client.agent_assigned"),
        ("created_client", "created_client", "crm.client.created"),
        ("updated_client", "updated_client", "crm.client.updated"),
        ("deleted_client", "deleted_client", "crm.client.deleted"),
        ("changed_client_company", "changed_client_company", "crm.client.company_changed"),
        ("changed_client_blacklist", "changed_client_blacklist", "crm.client.blacklist_changed"),
        ("updated_client_contacts", "updated_client_contacts", "crm.client.contacts_updated"),
    ];
    for (sent, name, kind) in table {
        let found = kind_of(&registry, "jivo", json!({ "event_name": sent }));
        assert_eq!(found, (name.to_string(), kind.to_string()), "event_name = {sent:?}");
    }
}

#[test]
fn jivo_call_events_are_classified_by_status_and_type() {
    let registry = shipped();
    let table: &[(Value, &str)] = &[
        (json!({"type": "incoming", "status": "start"}), "call.started"),
        (json!({"type": "callback", "status": "start"}), "callback.requested"),
        (json!({"type": "callback"}), "callback.requested"),
        (json!({"type": "incoming", "status": "agent_connected"}), "call.answered"),
        (json!({"type": "callback", "status": "client_connected"}), "call.answered"),
        (json!({"type": "callback", "status": "end"}), "call.finished"),
        (json!({"type": "incoming", "status": "error", "reason": "busy"}), "call.missed"),
    ];
    for (call, kind) in table {
        let (_, found) = kind_of(&registry, "jivo", json!({"event_name": "call_event", "call": call}));
        assert_eq!(found, *kind, "call = {call}");
    }
}

#[test]
fn every_envybox_webhooktype_is_recognised() {
    let registry = shipped();
    let table: &[(&str, &str, &str)] = &[
        ("7", "call_started", "call.started"),
        ("1", "callback_ordered", "callback.requested"),
        ("10", "chat_manager_sent", "message.agent"),
        ("8", "chat_offline_form", "message.offline"),
        ("12", "chat_online_form", "form.submitted"),
        ("4", "generator_form", "form.submitted"),
        ("19", "quiz_form", "form.submitted"),
        ("31", "video_widget_form", "form.submitted"),
    ];
    for (sent, name, kind) in table {
        let found = kind_of(&registry, "envybox", json!({ "webhooktype": sent }));
        assert_eq!(found, (name.to_string(), kind.to_string()), "webhooktype = {sent}");
    }
}

#[test]
fn envybox_call_state_decides_missed_or_finished() {
    let registry = shipped();
    let table = [
        ("Состоялся разговор", "call.finished"),
        ("Клиент не взял трубку", "call.missed"),
        ("Оператор не взял трубку", "call.missed"),
        ("Оператор был занят", "call.missed"),
    ];
    for (state, kind) in table {
        let normalized =
            interpret(&registry, "envybox", json!({"webhooktype": "2", "call_state": state, "call_duration": "0"}));
        assert_eq!(normalized.event.kind.as_str(), kind, "{state}");
        assert_eq!(normalized.event.fields.get("call.outcome"), Some(&json!(state)));
        assert_eq!(normalized.event.fields.get("call.duration_s"), Some(&json!(0)));
    }
}

#[test]
fn callkeeper_duration_decides_missed_or_finished_and_aliases_apply() {
    let registry = shipped();
    let (_, kind) = kind_of(&registry, "callkeeper", json!({"hook_event": " Call is processing", "id": 1}));
    assert_eq!(kind, "call.started");
    let (_, kind) = kind_of(&registry, "callkeeper", json!({"hook_event": "Call is over", "duration_sec": 65}));
    assert_eq!(kind, "call.finished");
    let (_, kind) =
        kind_of(&registry, "callkeeper", json!({"hook_event": "Call is over", "duration_sec": 0, "status2_code": 486}));
    assert_eq!(kind, "call.missed");

    // A Calltracking account that renamed its keys.
    let renamed = interpret(
        &registry,
        "callkeeper",
        json!({"event": "Call is over", "client_phone": "+79990001122", "duration": "42", "call_id": 77}),
    );
    assert_eq!(renamed.event.event, "call_over");
    assert_eq!(renamed.event.kind.as_str(), "call.finished");
    assert_eq!(renamed.event.fields.get("contact.phone"), Some(&json!("+79990001122")));
    assert_eq!(renamed.event.fields.get("call.duration_s"), Some(&json!(42)));
    assert_eq!(renamed.dedup_key, "key:77\u{1f}Call is over");
    // The stored payload stays as the vendor sent it.
    assert!(renamed.event.payload.get("phone2").is_none());
}

#[test]
fn unknown_events_are_kept_with_kind_unknown() {
    let registry = shipped();
    assert_eq!(
        kind_of(&registry, "jivo", json!({"event_name": "brand_new_event"})),
        ("brand_new_event".into(), "unknown".into())
    );
    assert_eq!(kind_of(&registry, "envybox", json!({"webhooktype": 99})), ("99".into(), "unknown".into()));
}

#[test]
fn a_payload_without_its_event_is_kept_as_unknown_with_its_reason() {
    let registry = shipped();
    let jivo = registry.get("jivo").unwrap();
    let now = Utc::now();
    let nameless = jivo.interpret(json!({"visitor": {}}), None, b"{}", EventId::new(now), now).unwrap();
    assert_eq!((nameless.event.event.as_str(), nameless.event.kind.as_str()), ("", "unknown"));
    assert_eq!(
        jivo.unknown_reason(&nameless.event).as_deref(),
        Some("the webhook names no event: the payload has no `event_name` field")
    );
    let listless = jivo.interpret(json!({"event_name": {"x": 1}}), None, b"{}", EventId::new(now), now).unwrap();
    assert_eq!(
        jivo.unknown_reason(&listless.event).as_deref(),
        Some("`event_name` must be a string or number naming the event, found an object")
    );
    let unlisted = jivo.interpret(json!({"event_name": "chat_rated"}), None, b"{}", EventId::new(now), now).unwrap();
    assert_eq!(
        jivo.unknown_reason(&unlisted.event).as_deref(),
        Some("`chat_rated` is not one of the events this plugin lists in `[events]`")
    );
    let legacy =
        jivo.interpret(json!({"message": "hi"}), Some("offline_message"), b"{}", EventId::new(now), now).unwrap();
    assert_eq!(legacy.event.kind.as_str(), "message.offline");
    assert_eq!(jivo.unknown_reason(&legacy.event), None);
}

#[test]
fn a_plugin_that_requires_its_event_refuses_a_webhook_without_one() {
    let text = "event = { field = \"type\", query = \"event\", required = true }\n[events]\nlead = { kind = \"form.submitted\" }\n";
    let vendor = compile::compile(&Source::embedded("plugins/strict.toml", text)).unwrap();
    let now = Utc::now();
    let error = vendor.interpret(json!({"name": "Anna"}), None, b"{}", EventId::new(now), now).unwrap_err();
    assert_eq!(error.code(), "missing_event");
    assert_eq!(
        error.to_string(),
        "the webhook names no event: the payload has no `type` field, and the URL has no `event` parameter"
    );
    let named = vendor.interpret(json!({"name": "Anna"}), Some("lead"), b"{}", EventId::new(now), now).unwrap();
    assert_eq!(named.event.kind.as_str(), "form.submitted");
}

#[test]
fn an_event_named_outside_the_body_is_part_of_the_dedup_key() {
    let text =
        "event = { path = true }\n[events]\nstart = { kind = \"call.started\" }\nend = { kind = \"call.finished\" }\n";
    let vendor = compile::compile(&Source::embedded("plugins/tracking.toml", text)).unwrap();
    let now = Utc::now();
    let body = br#"{"client_number": "79161234567"}"#;
    let payload = json!({"client_number": "79161234567"});
    let start = vendor.interpret(payload.clone(), Some("start"), body, EventId::new(now), now).unwrap();
    let end = vendor.interpret(payload, Some("end"), body, EventId::new(now), now).unwrap();
    assert_eq!((start.event.kind.as_str(), end.event.kind.as_str()), ("call.started", "call.finished"));
    assert_ne!(start.dedup_key, end.dedup_key);
    assert!(end.dedup_key.ends_with("\u{1f}event=end"), "{}", end.dedup_key);
}

#[test]
fn an_event_source_must_name_somewhere() {
    let issues = compile::compile(&Source::embedded("plugins/nowhere.toml", "event = {}\n")).unwrap_err();
    assert!(issues[0].to_string().contains("say where the event's name is"), "{}", issues[0]);
}

#[test]
fn dedup_keys_use_the_plugin_paths_or_the_body_hash() {
    let registry = shipped();
    let with_call = interpret(&registry, "envybox", json!({"webhooktype": "2", "call_id": "6002540"}));
    assert_eq!(with_call.dedup_key, "key:6002540\u{1f}2");
    let form = interpret(&registry, "envybox", json!({"webhooktype": "12", "call_id": ""}));
    assert!(form.dedup_key.starts_with("sha256:"), "{}", form.dedup_key);
}

/// The store keeps a payload once, as its body, when the body can be read back into it: a JSON
/// or URL-encoded form body says how, and reading it that way gives the payload exactly.
#[test]
fn a_body_stands_for_its_payload_only_when_it_reads_back_into_it() {
    use axum::http::Method;

    use crate::body::BodyEncoding;
    use crate::plugin::request::InboundRequest;

    let registry = shipped();
    let normalize = |vendor: &str, method: Method, content_type: Option<&str>, query: &[(&str, &str)], body: &str| {
        let query = query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let request =
            InboundRequest::new(method, content_type.map(str::to_owned), query, body.as_bytes().to_vec().into())
                .verify(None, None)
                .unwrap();
        let vendor = registry.get(vendor).unwrap();
        let normalized = vendor.normalize(&request, None, None, EventId::new(Utc::now()), Utc::now()).unwrap();
        if let Some(encoding) = normalized.payload_from_body {
            assert_eq!(encoding.decode(body.as_bytes()).unwrap(), normalized.event.payload, "{body}");
        }
        normalized.payload_from_body
    };
    let json = r#"{"event_name": "chat_finished", "chat_id": 1}"#;
    let form = "webhooktype=2&call_state=%D0%9A+1&managers_phones=%5B%7B%22phone%22%3A%227999%22%7D%5D&a[b][]=1";
    let multipart = "--B\r\nContent-Disposition: form-data; name=\"webhooktype\"\r\n\r\n2\r\n--B--\r\n";
    let form_type = Some("application/x-www-form-urlencoded");
    assert_eq!(normalize("jivo", Method::POST, Some("application/json"), &[], json), Some(BodyEncoding::Json));
    assert_eq!(normalize("envybox", Method::POST, form_type, &[], r#"{"webhooktype": "2"}"#), Some(BodyEncoding::Json));
    assert_eq!(normalize("envybox", Method::POST, form_type, &[], form), Some(BodyEncoding::Form));
    assert_eq!(normalize("envybox", Method::POST, Some("multipart/form-data; boundary=B"), &[], multipart), None);
    assert_eq!(normalize("callkeeper", Method::GET, None, &[("hook_event", "Call is over")], json), None);
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z_ .]{0,12}".prop_map(Value::String),
            Just(Value::String("Call is over".into())),
            Just(Value::String("call_event".into())),
            Just(Value::String("2".into())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("event_name".to_owned()),
                        Just("webhooktype".to_owned()),
                        Just("hook_event".to_owned()),
                        Just("call".to_owned()),
                        Just("visitor".to_owned()),
                        Just("status".to_owned()),
                        Just("duration_sec".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), ct in prop_oneof![Just(None), Just(Some("application/json")), Just(Some("application/x-www-form-urlencoded"))]) {
            let registry = shipped();
            for vendor in registry.iter() {
                if let Ok(decoded) = body::decode_body(vendor.format, ct, &bytes) {
                    if let Some(encoding) = decoded.rereadable {
                        // What the store relies on to keep such a payload only as its body.
                        prop_assert_eq!(encoding.decode(&bytes).ok(), Some(decoded.payload.clone()));
                    }
                    let _ = vendor.interpret(decoded.payload, None, &bytes, EventId::new(Utc::now()), Utc::now());
                }
            }
        }

        #[test]
        fn random_forms_never_panic(pairs in prop::collection::vec(("[a-z\\[\\]_0-9%+]{0,10}", "[\\PC]{0,16}"), 0..12)) {
            let body: String = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
            let registry = shipped();
            for vendor in registry.iter() {
                if let Ok(decoded) = body::decode_body(BodyFormat::Form, None, body.as_bytes()) {
                    if let Some(encoding) = decoded.rereadable {
                        prop_assert_eq!(encoding.decode(body.as_bytes()).ok(), Some(decoded.payload.clone()));
                    }
                    let _ = vendor.interpret(decoded.payload, None, body.as_bytes(), EventId::new(Utc::now()), Utc::now());
                }
            }
        }

        #[test]
        fn random_json_never_panics(payload in arbitrary_json()) {
            let registry = shipped();
            let raw = serde_json::to_vec(&payload).unwrap();
            for vendor in registry.iter() {
                let _ = vendor.interpret(payload.clone(), None, &raw, EventId::new(Utc::now()), Utc::now());
            }
        }
    }
}

#[test]
fn shipped_samples_read_as_the_events_they_are_named_for() {
    let registry = shipped();
    let expected: &[(&str, &str, &str)] = &[
        ("jivo", "Offline message", "message.offline"),
        ("jivo", "Missed call", "call.missed"),
        ("envybox", "Missed call (client did not answer)", "call.missed"),
        ("envybox", "Callback ordered", "callback.requested"),
        ("envybox", "Offline chat form", "message.offline"),
        ("callkeeper", "Missed call (client busy)", "call.missed"),
        ("callkeeper", "Answered call", "call.finished"),
        ("calltracking", "Missed tracking call (end)", "call.missed"),
        ("calltracking", "Answered tracking call (end)", "call.finished"),
        ("calltracking", "Tracking call starts", "call.started"),
    ];
    let mut seen = Vec::new();
    for vendor in registry.iter() {
        for sample in vendor.samples() {
            let event = vendor.try_sample(sample).expect("a shipped sample reads").event;
            seen.push((vendor.name().to_owned(), sample.name.clone(), event.kind.to_string()));
        }
    }
    let mut expected: Vec<_> =
        expected.iter().map(|(v, n, k)| ((*v).to_owned(), (*n).to_owned(), (*k).to_owned())).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
}

#[test]
fn a_sample_is_different_every_time_it_is_sent() {
    let registry = shipped();
    let sample = &registry.get("envybox").unwrap().samples()[0];
    assert_ne!(sample.body(), sample.body(), "or a second test event would be taken for a vendor's retry");
    assert!(!sample.body().contains("$UNIQUE"));
}

#[test]
fn a_sample_the_plugin_cannot_read_is_a_config_error_with_its_line() {
    let text = "format = \"json\"\nevent = { field = \"event_name\" }\n\n[[sample]]\nname = \"broken\"\nbody = \"{not json\"\n";
    let source = crate::diagnostics::Source::embedded("plugins/broken.toml", text);
    let issues = compile::compile(&source).expect_err("the sample does not parse");
    let shown = issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(shown.contains("plugins/broken.toml>:4 sample[0]") && shown.contains("invalid JSON"), "{shown}");
}
