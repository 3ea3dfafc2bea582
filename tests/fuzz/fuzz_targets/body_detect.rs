//! JSON/form/multipart detection: any content type with any body, in every format mode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::body::{self, BodyFormat};

fuzz_target!(|data: &[u8]| {
    // The content type is the first line; the body is the rest.
    let (content_type, raw) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (std::str::from_utf8(&data[..at]).ok(), &data[at + 1..]),
        None => (None, data),
    };
    for format in [BodyFormat::Auto, BodyFormat::Json, BodyFormat::Form] {
        if let Ok(decoded) = body::decode_body(format, content_type, raw) {
            // A decoded payload serialises back (the store keeps it as JSON).
            serde_json::to_string(&decoded.payload).expect("a decoded payload serialises");
            if let Some(encoding) = decoded.rereadable {
                // The store then keeps only the body and decodes it again on every read.
                let reread = encoding.decode(raw).expect("the body decodes again");
                assert_eq!(reread, decoded.payload, "the body stands for its payload");
            }
        }
    }
    let _ = body::from_pairs(body::query_pairs(&String::from_utf8_lossy(raw)));
});
