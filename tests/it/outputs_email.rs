//! The email output against a real SMTP server (aiosmtpd) with STARTTLS and AUTH.

use mail_parser::{MessageParser, MimeHeaders};
use switchboard::outputs::Disposition;

use crate::outputs_support::{attempt, build, fixture_event, render, validate};
use crate::support::smtp_peer::SmtpPeer;

fn output(peer: &SmtpPeer, to: &str, password: &str) -> std::sync::Arc<dyn switchboard::outputs::Output> {
    build(
        "email",
        &format!(
            r#"
            host = "127.0.0.1"
            port = {}
            security = "starttls"
            username = "user"
            password = "{password}"
            ca_file = "{}"
            from = "Switchboard <bot@example.com>"
            to = ["{to}"]
            cc = ["Руководитель <boss@example.com>"]
            reply_to = "{{{{contact.name}}}} <{{{{contact.email}}}}>"
            "#,
            peer.port,
            peer.ca_file.display()
        ),
    )
    .unwrap()
}

#[tokio::test]
async fn sends_a_multipart_message_with_cyrillic_headers_over_starttls() {
    let Some(peer) = SmtpPeer::start() else { return };
    let output = output(&peer, "Отдел продаж <sales@example.com>", "pass");
    let mut event = fixture_event("envybox", "chat_offline_form_8.form");
    event.fields.set("contact.name", serde_json::json!("Анна Петрова"));
    let message = render("offline_message", output.as_ref(), &event);
    let receipt = output.send(&message, &attempt(1)).await.unwrap();
    assert!(receipt.summary.starts_with("250 2.0.0 Ok: queued as Q1"), "{}", receipt.summary);

    let raw = peer.message(1);
    let raw_text = String::from_utf8_lossy(&raw);
    assert!(raw_text.contains("=?utf-8?"), "Cyrillic headers are RFC 2047 encoded:\n{raw_text}");
    let mail = MessageParser::default().parse(&raw).expect("a parsable message");
    assert_eq!(mail.subject(), Some("Офлайн-сообщение от Анна Петрова"));
    assert_eq!(mail.from().unwrap().first().unwrap().address(), Some("bot@example.com"));
    let to = mail.to().unwrap().first().unwrap();
    assert_eq!((to.name(), to.address()), (Some("Отдел продаж"), Some("sales@example.com")));
    assert_eq!(mail.cc().unwrap().first().unwrap().name(), Some("Руководитель"));
    let reply_to = mail.reply_to().unwrap().first().unwrap();
    assert_eq!((reply_to.name(), reply_to.address()), (Some("Анна Петрова"), Some("anna@example.ru")));
    assert_eq!(mail.message_id(), Some("01KAZTESTDELIVERY000000001@switchboard"));
    assert!(mail.content_type().is_some_and(|ct| ct.subtype() == Some("alternative")), "multipart/alternative");
    let text = mail.body_text(0).unwrap();
    assert!(text.contains("Сколько стоит доставка в Краснодар?") && text.contains("Имя: Анна Петрова"), "{text}");
    let html = mail.body_html(0).unwrap();
    assert!(html.contains("<h2>Офлайн-сообщение с сайта</h2>") && html.contains("mailto:anna@example.ru"), "{html}");
}

#[tokio::test]
async fn smtp_answers_decide_retry_or_dead_letter() {
    let Some(peer) = SmtpPeer::start() else { return };
    let message = crate::outputs_support::text_message("Тест");
    let error = output(&peer, "tempfail@example.com", "pass").send(&message, &attempt(1)).await.unwrap_err();
    assert!(error.is_retryable(), "451 is transient: {error}");
    assert!(error.detail.contains("451"), "{}", error.detail);

    let error = output(&peer, "reject@example.com", "pass").send(&message, &attempt(1)).await.unwrap_err();
    assert_eq!(error.disposition, Disposition::Permanent, "550 is permanent: {error}");
    assert_eq!(error.reason.as_str(), "rejected");

    let error = output(&peer, "sales@example.com", "wrong").send(&message, &attempt(1)).await.unwrap_err();
    assert_eq!(error.disposition, Disposition::Permanent, "a refused login: {error}");
    assert_eq!(error.reason.as_str(), "auth");
    assert!(error.action.as_deref().is_some_and(|a| a.contains("username or password")), "{error:?}");
    assert!(!format!("{error:?}").contains("wrong"), "the password never appears: {error:?}");
    assert_eq!(peer.count(), 0);
}

/// The URL form's default is the fields' default: STARTTLS required, with `ca_file` honoured.
/// A URL without `?tls=` once sent the password in clear.
#[tokio::test]
async fn an_smtp_url_without_tls_settings_uses_starttls_and_ca_file() {
    let Some(peer) = SmtpPeer::start() else { return };
    let table = format!(
        "smtp = \"smtp://us%65r:pa%73s@127.0.0.1:{}\"\nca_file = \"{}\"\nfrom = \"bot@example.com\"\nto = [\"sales@example.com\"]",
        peer.port,
        peer.ca_file.display()
    );
    let output = build("email", &table).unwrap();
    let event = fixture_event("envybox", "chat_offline_form_8.form");
    let message = render("offline_message", output.as_ref(), &event);
    let receipt = output.send(&message, &attempt(1)).await.unwrap();
    assert!(receipt.summary.starts_with("250"), "{}", receipt.summary);
    assert_eq!(peer.count(), 1, "sent over STARTTLS with the percent-decoded login");
}

#[test]
fn bad_settings_are_refused_at_load() {
    let cases = [
        ("from = \"x\"\nto = [\"a@b.c\"]\nhost = \"h\"", "from: `x` is not an address"),
        ("from = \"a@b.c\"\nto = []\nhost = \"h\"", "to: at least one recipient is needed"),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]", "set `smtp = "),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nhost = \"h\"\nsmtp = \"smtp://h\"", "not both"),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nhost = \"h\"\nusername = \"u\"", "set both `username` and `password`"),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nhost = \"h\"\nsecurity = \"ssl\"", "unknown variant `ssl`"),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nhost = \"h\"\nca_file = \"/nope.pem\"", "ca_file `/nope.pem`"),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nsmtp = \"smtp://h?tls=maybe\"", "`tls=maybe` is not one of"),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nsmtp = \"http://h\"", "is not smtp:// or smtps://"),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nsmtp = \"smtps://h?tls=required\"", "`?tls=` is for smtp://"),
        (
            "from = \"a@b.c\"\nto = [\"a@b.c\"]\nsmtp = \"smtp://h\"\nsecurity = \"none\"",
            "say the port and `?tls=` in it",
        ),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nsmtp = \"smtp://h\"\nca_file = \"/nope.pem\"", "ca_file `/nope.pem`"),
        (
            "from = \"a@b.c\"\nto = [\"a@b.c\"]\nsmtp = \"smtp://h?tls=none\"\nca_file = \"/any.pem\"",
            "ca_file has no effect without TLS",
        ),
        (
            "from = \"a@b.c\"\nto = [\"a@b.c\"]\nhost = \"h\"\nsecurity = \"none\"\nca_file = \"/any.pem\"",
            "ca_file has no effect without TLS",
        ),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nhost = \"not a host\"", "`not a host` is not a host name"),
        ("from = \"a@b.c\"\nto = [\"a@b.c\"]\nhost = \"smtp.example.com:587\"", "is not a host name"),
    ];
    // Every one is caught by validation alone, which is all `switchboard check` runs.
    for (table, expected) in cases {
        let error = validate("email", table).unwrap_err();
        assert!(error.contains(expected), "{table}: {error}");
    }
}

/// `reply_to` is a courtesy: when it cannot render, the mail goes without it, not dead-lettered.
#[tokio::test]
async fn a_reply_to_that_cannot_render_is_left_out_and_the_mail_still_composed() {
    let output = build(
        "email",
        r#"
        host = "127.0.0.1"
        from = "bot@example.com"
        to = ["sales@example.com"]
        reply_to = "{{no_such_helper contact.email}}"
        "#,
    )
    .unwrap();
    let message = render("offline_message", output.as_ref(), &fixture_event("envybox", "chat_offline_form_8.form"));
    assert!(message.setting("reply_to").is_none());
    assert!(message.get(switchboard::render::Part::Subject).is_some_and(|s| !s.is_empty()));
}
