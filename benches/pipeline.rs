//! The per-event CPU cost of the pipeline, without I/O: parse a webhook body with its vendor
//! plugin, decide the routes among 10, 100 and 1,000, and render the matching route's Telegram
//! message. Target (issue 7): route + render ≤ 20 µs per event at 100 routes.
//!
//! `cargo bench --bench pipeline`; figures in BENCHMARKS.md.

// A bench panics on purpose when its setup is wrong.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchboard::body::{self, BodyFormat};
use switchboard::config::Config;
use switchboard::event::{Event, EventId};

const JIVO: &str = include_str!("../bench/payloads/jivo_offline_message.json");
const ENVYBOX: &str = include_str!("../bench/payloads/envybox_missed_call.form");

/// A configuration with `routes` routes where only the last takes a Jivo offline message; the
/// others fail on the vendor, the kind, or (the costliest) a condition on a canonical field.
fn config(dir: &Path, routes: usize) -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = format!(
        "[paths]\nplugins = \"{}\"\n[templates]\nlanguage = \"ru\"\n\n\
         [outputs.tg]\ntype = \"telegram\"\ntoken = \"123:abc\"\nchat_id = 42\napi_url = \"http://127.0.0.1:9\"\n\n",
        root.join("plugins").display()
    );
    for i in 0..routes.saturating_sub(1) {
        let filter = match i % 3 {
            0 => "vendor = \"envybox\"\nkind = \"call.missed\"".to_owned(),
            1 => "vendor = \"jivo\"\nkind = [\"chat.finished\", \"chat.accepted\"]".to_owned(),
            _ => format!(
                "vendor = \"jivo\"\nkind = \"message.offline\"\nwhen = {{ \"contact.phone\" = {{ glob = \"+7495{i:04}*\" }} }}"
            ),
        };
        write!(text, "[[route]]\nname = \"route {i}\"\n{filter}\nto = [\"tg\"]\ntemplate = \"missed_call\"\n\n")
            .unwrap();
    }
    text.push_str("[[route]]\nname = \"offline\"\nvendor = \"jivo\"\nkind = \"message.offline\"\nto = [\"tg\"]\ntemplate = \"offline_message\"\n");
    let path = dir.join(format!("config-{routes}.toml"));
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap_or_else(|errors| panic!("bench config: {errors}"))
}

fn parse(config: &Config, vendor: &str, content_type: &str, raw: &[u8]) -> Event {
    let payload = body::decode(BodyFormat::Auto, Some(content_type), raw).unwrap();
    let plugin = config.vendors().get(vendor).unwrap();
    let now = Utc::now();
    plugin.interpret(payload, None, raw, EventId::new(now), now).unwrap().event
}

/// Route the event, and render every message the routes send.
fn route_and_render(config: &Config, event: &Event) -> usize {
    let context = switchboard::render::RenderContext::of_event(event);
    let mut bytes = 0;
    for decision in config.routes().decide(event) {
        for target in &decision.targets {
            let output = config.outputs()[&target.output].output.as_ref().unwrap();
            let message =
                switchboard::delivery::compose(config.templates(), &target.template, output.as_ref(), &context)
                    .unwrap();
            bytes += message.parts().map(|(_, text)| text.len()).sum::<usize>();
        }
    }
    bytes
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let jivo = JIVO.replace("__ID__", "2026");
    let envybox = ENVYBOX.trim_end().replace("__ID__", "6002602");

    let small = config(dir.path(), 10);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("jivo_offline_message_2kb", |b| {
        b.iter(|| parse(&small, "jivo", "application/json", black_box(jivo.as_bytes())));
    });
    group.bench_function("envybox_form", |b| {
        b.iter(|| parse(&small, "envybox", "application/x-www-form-urlencoded", black_box(envybox.as_bytes())));
    });
    group.finish();

    let mut group = c.benchmark_group("route_render");
    group.throughput(Throughput::Elements(1));
    for routes in [10, 100, 1000] {
        let config = config(dir.path(), routes);
        let event = parse(&config, "jivo", "application/json", jivo.as_bytes());
        assert!(route_and_render(&config, &event) > 0, "the last route matches and renders");
        group.bench_with_input(BenchmarkId::new("routes", routes), &routes, |b, _| {
            b.iter(|| route_and_render(&config, black_box(&event)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("route_only");
    for routes in [10, 100, 1000] {
        let config = config(dir.path(), routes);
        let event = parse(&config, "jivo", "application/json", jivo.as_bytes());
        group.bench_with_input(BenchmarkId::new("routes", routes), &routes, |b, _| {
            b.iter(|| config.routes().decide(black_box(&event)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    for routes in [10, 100, 1000] {
        let config = config(dir.path(), routes);
        group.bench_with_input(BenchmarkId::new("routes", routes), &routes, |b, _| {
            b.iter(|| {
                let event = parse(&config, "jivo", "application/json", black_box(jivo.as_bytes()));
                route_and_render(&config, &event)
            });
        });
    }
    group.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
