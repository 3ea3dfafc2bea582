//! The dashboard in a real browser (headless Chromium over WebDriver): an operator finds an
//! event by phone number, reads why its delivery died, retries it, replays the event, reads
//! the rejected requests and sends a test event. With `UPDATE_SCREENSHOTS=1` the pages are
//! saved to `docs/screenshots/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use switchboard::store::DeliveryState;

use crate::delivery::eventually;
use crate::support::browser::Browser;
use crate::support::http_sink::{Answer, HttpSink};
use crate::support::{Daemon, repo};

fn config(crm: &str) -> String {
    format!(
        r#"
[outputs.crm]
type = "http"
url = "{crm}"

[[route]]
name = "leads"
kind = "form.submitted"
to = ["crm"]
template = "lead"
"#
    )
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures").join(path)).unwrap().trim_end().to_owned()
}

/// Polls until the element's text contains `needle` (a page may still be loading after a click).
async fn wait_for_text(browser: &Browser, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = match browser.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "`{css}` never showed {needle:?}; last: {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(browser: &Browser, name: &str) {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let dir = repo().join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        browser.screenshot(&dir.join(format!("{name}.png"))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_an_event_retries_its_dead_letter_and_replays_it() {
    let Some(browser) = Browser::start().await else { return };
    let mut crm = HttpSink::start(vec![Answer(422, None, "{\"error\":\"phone is required\"}")]).await;
    let zone = "[templates]\ntimezone = \"Europe/Moscow\"\n";
    let daemon = Daemon::start(&format!("{zone}{}", config(&crm.url("/leads")))).await;

    let lead = fixture("envybox/quiz_form_19.form").replace("phone=79998887766", "phone=79161234567");
    let lead = daemon.stored(&daemon.post_form("envybox", &lead).await).await.event.id;
    let missed = daemon.post_form("envybox", &fixture("envybox/call_info_missed_client_2.form")).await;
    assert!(missed.status().is_success());
    let refused = daemon
        .client
        .post(daemon.url("/hooks/jivo"))
        .header("content-type", "application/json")
        .body("{\"event_name\": \"offline_message\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    crm.next().await;
    let store = daemon.store().await;
    eventually("the lead is dead-lettered", || async {
        store.deliveries(lead).await.unwrap()[0].state == DeliveryState::Dead
    })
    .await;

    // The events list, then a search by the phone number as a person types it.
    browser.goto(&daemon.admin_url("/")).await;
    assert_eq!(browser.client.find_all(Locator::Css("tr.event-row")).await.unwrap().len(), 2);
    let search = browser.client.find(Locator::Css("input[name=q]")).await.unwrap();
    search.send_keys("+7 916 123-45-67").await.unwrap();
    browser.click("form.filters button[type=submit]").await;
    wait_for_text(&browser, "#events", "quiz_form").await;
    let rows = browser.client.find_all(Locator::Css("tr.event-row")).await.unwrap();
    assert_eq!(rows.len(), 1, "only the lead has that phone number");
    assert!(rows[0].text().await.unwrap().contains("failed"), "its delivery died");
    screenshot(&browser, "events").await;

    // Its detail: parsed fields, why the route matched, the rendered body, the CRM's answer.
    browser.click("tr.event-row a").await;
    wait_for_text(&browser, "h1", "envybox · quiz_form").await;
    let verdicts = browser.text("#verdicts").await;
    assert!(verdicts.contains("leads") && verdicts.contains("matched"), "{verdicts}");
    let delivery = browser.text("section.delivery").await;
    assert!(delivery.contains("dead") && delivery.contains("phone is required"), "{delivery}");
    assert!(browser.text("#raw-body").await.contains("webhooktype=19"));
    // The phone as sent and as people read it; the form decoded; times in the alerts' zone.
    let fields = browser.text("table.kv").await;
    assert!(fields.contains("79161234567") && fields.contains("+7 916 123-45-67"), "{fields}");
    assert!(browser.text("#form-body").await.contains("Мария"));
    assert!(browser.text("header.top").await.contains("times in Europe/Moscow"));
    let received = browser.text("dl.facts").await;
    let stored = store.event(lead).await.unwrap().unwrap().event.received_at;
    let moscow = stored.with_timezone(&chrono_tz::Europe::Moscow).format("%Y-%m-%d %H:%M:%S").to_string();
    assert!(received.contains(&moscow), "received at {moscow} Moscow time: {received}");

    // Dead letters: Retry, and the CRM (answering 200 now) gets it.
    browser.goto(&daemon.admin_url("/dead")).await;
    assert!(browser.text("#dead").await.contains("phone is required"));
    screenshot(&browser, "dead-letters").await;
    browser.click("tr.dead-row button.retry").await;
    wait_for_text(&browser, "#notice", "requeued").await;
    crm.next().await;
    eventually("delivered on the retry", || async {
        store.deliveries(lead).await.unwrap()[0].state == DeliveryState::Delivered
    })
    .await;
    browser.goto(&daemon.admin_url(&format!("/events/{lead}"))).await;
    let delivery = browser.text("section.delivery").await;
    assert!(delivery.contains("delivered"), "{delivery}");
    // The message as the delivering attempt sent it, kept with the attempt.
    let sent = browser.text("section.delivery details.sent").await;
    assert!(sent.contains("as attempt 2 sent it") && sent.contains("79161234567"), "{sent}");
    assert_eq!(
        browser.client.find_all(Locator::Css("section.delivery table.attempts tbody tr")).await.unwrap().len(),
        2
    );
    screenshot(&browser, "event").await;

    // Replay: a new delivery through today's routes, sent at once.
    // It has arrived at the CRM, so by default a replay sends nothing; chosen, it goes again.
    browser.click("#replay").await;
    wait_for_text(&browser, "#notice", "Nothing replayed: the event has arrived").await;
    assert_eq!(store.deliveries(lead).await.unwrap().len(), 1);
    browser.client.find(Locator::Css("form.replay select")).await.unwrap().select_by_value("crm").await.unwrap();
    browser.click("#replay").await;
    let notice = wait_for_text(&browser, "#notice", "Replayed").await;
    assert!(notice.contains("1 new deliveries (leads → crm)"), "{notice}");
    crm.next().await;
    assert_eq!(store.deliveries(lead).await.unwrap().len(), 2);
    assert_eq!(browser.client.find_all(Locator::Css("section.delivery")).await.unwrap().len(), 2);

    // Rejected requests show what was wrong and what was sent.
    browser.goto(&daemon.admin_url("/rejected")).await;
    let rejected = browser.text("#rejected").await;
    assert!(rejected.contains("invalid_json") && rejected.contains("400"), "{rejected}");
    // Filtered by its reason (a click on it), and by a reason it was not refused for.
    browser.click("tr.rejected-row td[data-label=Reason] a").await;
    wait_for_text(&browser, "#rejected", "invalid_json").await;
    assert_eq!(browser.client.find_all(Locator::Css("tr.rejected-row")).await.unwrap().len(), 1);
    browser.goto(&daemon.admin_url("/rejected?reason=bad_secret")).await;
    assert!(browser.text("main").await.contains("No refused request matches these filters"));

    // Status: hook URLs to paste, and a test event through the real pipeline.
    browser.goto(&daemon.admin_url("/status")).await;
    let hook = browser.client.find(Locator::Css("#vendors input.copy")).await.unwrap();
    assert_eq!(hook.prop("value").await.unwrap().unwrap(), daemon.url("/hooks/callkeeper"));
    assert!(browser.text("#outputs").await.contains("crm"));
    screenshot(&browser, "status").await;
    browser.client.find(Locator::Css("#test-event select")).await.unwrap().select_by_value("envybox/1").await.unwrap();
    browser.click("#test-event button").await;
    wait_for_text(&browser, "#notice", "Test event \"Callback ordered\" received").await;
    assert!(browser.text("h1").await.contains("envybox · callback_ordered"));

    browser.close().await;
    daemon.stop().await;
}

/// How wide the page is against the window, and the right edges of the elements `css` finds.
async fn widths(browser: &Browser, css: &str) -> (f64, f64, Vec<f64>) {
    let script = "const edges = [...document.querySelectorAll(arguments[0])].map(e => e.getBoundingClientRect().right);
                  return [document.documentElement.scrollWidth, window.innerWidth, edges];";
    let found = browser.client.execute(script, vec![serde_json::json!(css)]).await.unwrap();
    let number = |v: &serde_json::Value| v.as_f64().unwrap();
    (number(&found[0]), number(&found[1]), found[2].as_array().unwrap().iter().map(number).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_every_page_fits_and_a_dead_letter_is_dismissed_with_who_and_why() {
    let Some(browser) = Browser::start().await else { return };
    browser.client.set_window_size(400, 860).await.unwrap();
    let refusal = Answer(422, None, "{\"error\":\"phone is required\"}");
    let mut crm = HttpSink::start(vec![refusal.clone(), refusal]).await;
    let daemon = Daemon::start(&config(&crm.url("/leads"))).await;
    let mut leads = Vec::new();
    for phone in ["79161234567", "79161234568"] {
        let lead = fixture("envybox/quiz_form_19.form").replace("phone=79998887766", &format!("phone={phone}"));
        leads.push(daemon.stored(&daemon.post_form("envybox", &lead).await).await.event.id);
        crm.next().await;
    }
    let store = daemon.store().await;
    for lead in &leads {
        eventually("the lead is dead-lettered", || async {
            store.deliveries(*lead).await.unwrap()[0].state == DeliveryState::Dead
        })
        .await;
    }
    let rejected =
        daemon.client.post(daemon.url("/hooks/jivo")).header("content-type", "application/json").body("{").send();
    assert_eq!(rejected.await.unwrap().status(), 400);

    // No page scrolls sideways at 400 px.
    for page in ["/".to_owned(), format!("/events/{}", leads[0]), "/dead".into(), "/rejected".into(), "/status".into()]
    {
        browser.goto(&daemon.admin_url(&page)).await;
        let (page_width, window, _) = widths(&browser, "body").await;
        assert!(window <= 400.0, "the window is a phone's: {window}");
        if page_width > window {
            let script = "return [...document.querySelectorAll('main *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth)
                .slice(-5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));";
            let wide = browser.client.execute(script, vec![]).await.unwrap();
            panic!("{page} is {page_width} px wide in a {window} px window; too wide: {wide}");
        }
    }
    // Every dead letter's buttons are within reach.
    browser.goto(&daemon.admin_url("/dead")).await;
    let (_, window, edges) = widths(&browser, "tr.dead-row button").await;
    assert_eq!(edges.len(), 4, "Retry and Dismiss for each of the two");
    assert!(edges.iter().all(|right| *right <= window), "buttons at {edges:?} in a {window} px window");
    screenshot(&browser, "dead-letters-phone").await;

    // Dismissed with a name and a note: it leaves the dead letters (and the metric) and is
    // listed as dismissed, with who and why.
    browser.client.find(Locator::Css("input[name=by]")).await.unwrap().send_keys("Ольга").await.unwrap();
    browser.client.find(Locator::Css("input[name=note]")).await.unwrap().send_keys("a test lead").await.unwrap();
    browser.click("tr.dead-row button.dismiss").await;
    wait_for_text(&browser, "#notice", "dismissed by Ольга").await;
    assert_eq!(browser.client.find_all(Locator::Css("tr.dead-row")).await.unwrap().len(), 1);
    let metrics =
        || async { daemon.client.get(daemon.admin_url("/metrics")).send().await.unwrap().text().await.unwrap() };
    eventually("one dead letter is left", || async {
        metrics().await.lines().any(|line| line == "switchboard_dead_letters 1")
    })
    .await;
    browser.goto(&daemon.admin_url("/dead?show=dismissed")).await;
    let dismissed = browser.text("#dead").await;
    assert!(dismissed.contains("Ольга") && dismissed.contains("a test lead"), "{dismissed}");

    // The rest at once; then one is retried after all, and the CRM (answering 200 now) gets it.
    browser.goto(&daemon.admin_url("/dead")).await;
    browser.click(".title-row button.dismiss").await;
    wait_for_text(&browser, "#notice", "1 dead deliveries dismissed by dashboard").await;
    assert!(browser.text("main").await.contains("No dead letters"));
    browser.goto(&daemon.admin_url("/dead?show=dismissed")).await;
    assert_eq!(browser.client.find_all(Locator::Css("tr.dead-row")).await.unwrap().len(), 2);
    browser.click("tr.dead-row button.retry").await;
    wait_for_text(&browser, "#notice", "requeued").await;
    crm.next().await;
    browser.close().await;
    daemon.stop().await;
}
