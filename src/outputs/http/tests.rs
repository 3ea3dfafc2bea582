use super::*;

#[test]
fn statuses_are_classified_as_alertmanager_and_vector_do() {
    let table: &[(u16, Option<u64>, &str)] = &[
        (200, None, "delivered"),
        (204, None, "delivered"),
        (408, None, "retry timeout"),
        (429, Some(7), "retry rate_limited after 7"),
        (429, None, "retry rate_limited"),
        (500, None, "retry server_error"),
        (503, Some(30), "retry server_error after 30"),
        (501, None, "permanent client_error"),
        (400, None, "permanent client_error"),
        (404, None, "permanent client_error"),
        (401, None, "permanent auth"),
        (403, None, "permanent auth"),
    ];
    for (code, hint, expected) in table {
        let found = match classify(StatusCode::from_u16(*code).unwrap(), hint.map(Duration::from_secs), "body", &[]) {
            Ok(_) => "delivered".to_owned(),
            Err(error) => {
                let mut text = if error.is_retryable() { "retry ".to_owned() } else { "permanent ".to_owned() };
                text.push_str(error.reason.as_str());
                if let crate::outputs::Disposition::Retry { after: Some(after) } = error.disposition {
                    text.push_str(&format!(" after {}", after.as_secs()));
                }
                text
            }
        };
        assert_eq!(found, *expected, "HTTP {code}");
    }
}

#[test]
fn success_status_narrows_what_counts_as_delivered() {
    let only_201 = [StatusCode::CREATED];
    assert!(classify(StatusCode::CREATED, None, "", &only_201).is_ok());
    assert!(classify(StatusCode::OK, None, "", &only_201).is_err());
}

#[test]
fn the_answer_is_kept_in_the_detail() {
    let error = classify(StatusCode::BAD_REQUEST, None, "{\"error\":\"phone is required\"}\n", &[]).unwrap_err();
    assert_eq!(error.detail, "HTTP 400: {\"error\":\"phone is required\"}");
}

#[test]
fn retry_after_reads_seconds_and_dates() {
    assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
    let later = SystemTime::now() + Duration::from_secs(3600);
    let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
    assert!((3590..=3600).contains(&parsed.as_secs()), "{parsed:?}");
    assert_eq!(parse_retry_after("soon"), None);
}

#[test]
fn signatures_match_the_standard_webhooks_reference() {
    // The example from the Standard Webhooks specification.
    let key = BASE64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = br#"{"test": 2432232314}"#;
    assert_eq!(
        sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}
