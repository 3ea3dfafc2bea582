//! `multipart/form-data` bodies (Calltracking can be set to send one), read with `multer`.
//!
//! Text fields become the payload by the same rules as a URL-encoded form ([`from_pairs`]). A
//! file part — one with a `filename`, or whose content is not UTF-8 text — is not a field: the
//! payload records its file name, type and size under the part's name, so the webhook is still
//! accepted and the operator can see what was attached. (Its bytes still count toward
//! `server.body_limit_bytes`, and stay in the raw request kept with the event.)

use std::io::Cursor;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use serde_json::{Value, json};

use super::{DecodeError, from_pairs};

/// The boundary of a `multipart/form-data` content type.
pub(super) fn boundary(content_type: &str) -> Option<String> {
    let mime = content_type.split(';').next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    multer::parse_boundary(content_type).ok()
}

/// The payload of a multipart body.
///
/// # Errors
/// A body that is not multipart with this boundary, a part without a name, or no fields at all.
pub(super) fn parse(body: &[u8], boundary: &str) -> Result<Value, DecodeError> {
    // The whole body is in memory, so multer's reads never wait: one poll runs it to the end.
    let reader = Cursor::new(Bytes::copy_from_slice(body));
    let mut parts = multer::Multipart::with_reader(reader, boundary.to_owned());
    let read = pin!(async move {
        let mut fields = Vec::new();
        let mut files = Vec::new();
        while let Some(part) = parts.next_field().await.map_err(invalid)? {
            let name = part.name().map(str::to_owned).ok_or_else(|| invalid("a part has no name"))?;
            let file_name = part.file_name().map(str::to_owned);
            let content_type = part.content_type().map(ToString::to_string);
            let content = part.bytes().await.map_err(invalid)?;
            match (file_name, std::str::from_utf8(&content)) {
                (None, Ok(text)) => fields.push((name, text.to_owned())),
                (file_name, _) => files
                    .push((name, json!({"file_name": file_name, "content_type": content_type, "size": content.len()}))),
            }
        }
        Ok::<_, DecodeError>((fields, files))
    });
    let (fields, files) = match read.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result?,
        Poll::Pending => return Err(invalid("the body could not be read at once")),
    };
    if fields.is_empty() && files.is_empty() {
        return Err(invalid("no fields"));
    }
    let mut payload = from_pairs(fields);
    if let Value::Object(root) = &mut payload {
        for (name, file) in files {
            root.entry(name).or_insert(file);
        }
    }
    Ok(payload)
}

fn invalid(why: impl std::fmt::Display) -> DecodeError {
    DecodeError::InvalidForm(format!("multipart: {why}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{BodyFormat, decode};

    const TYPE: &str = "multipart/form-data; boundary=XyZ";

    #[test]
    fn text_fields_become_the_payload() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"hook_event\"\r\n\r\nCall is over\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"city\"\r\n\r\nКазань\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"visit_info[current][utm_source]\"\r\n\r\nyandex\r\n\
                    --XyZ--\r\n";
        let value = decode(BodyFormat::Auto, Some(TYPE), body.as_bytes()).unwrap();
        assert_eq!(
            value,
            json!({"hook_event": "Call is over", "city": "Казань", "visit_info": {"current": {"utm_source": "yandex"}}})
        );
    }

    #[test]
    fn file_parts_are_recorded_not_read() {
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"duration\"\r\n\r\n65\r\n\
                         --XyZ\r\nContent-Disposition: form-data; name=\"record\"; filename=\"call.mp3\"\r\n\
                         Content-Type: audio/mpeg\r\n\r\n"
            .to_vec();
        body.extend_from_slice(&[0xff, 0xfb, 0x90, 0x00, 0xfe, 0x01]);
        body.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"blob\"\r\n\r\n");
        body.extend_from_slice(&[0xc3, 0x28]);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        let value = decode(BodyFormat::Form, Some("multipart/form-data; boundary=\"XyZ\""), &body).unwrap();
        assert_eq!(
            value,
            json!({
                "duration": "65",
                "record": {"file_name": "call.mp3", "content_type": "audio/mpeg", "size": 6},
                "blob": {"file_name": null, "content_type": null, "size": 2},
            })
        );
    }

    #[test]
    fn broken_bodies_are_named() {
        let unclosed = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n";
        let error = decode(BodyFormat::Auto, Some(TYPE), unclosed.as_bytes()).unwrap_err();
        assert!(error.to_string().starts_with("invalid form body: multipart: "), "{error}");
        let nameless = "--XyZ\r\nContent-Disposition: form-data\r\n\r\n1\r\n--XyZ--\r\n";
        let error = decode(BodyFormat::Form, Some(TYPE), nameless.as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), "invalid form body: multipart: a part has no name");
        let empty = "--XyZ--\r\n";
        assert_eq!(decode(BodyFormat::Form, Some(TYPE), empty.as_bytes()).unwrap_err().code(), "invalid_form");
    }
}
