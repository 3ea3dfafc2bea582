//! Any body posted to `/hooks/callkeeper`: decoded and interpreted by the shipped plugin.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use switchboard::plugin::BodyFormat;

fuzz_target!(|data: &[u8]| {
    common::ingest("callkeeper", BodyFormat::Auto, data);
});
