//! api.md "Limits every deployment has": failed authentication per address, event streams
//! per token, label characters, per-account counts. Through the real binary on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Wrong tokens in a row from one address: the first 30 are 401, then 429 with
/// `Retry-After`, and from then on even a right token is refused until the wait is over
/// (guessing must stop, not merely be answered differently). The quota gives one failure
/// back every 2 s, so a slow run may see one 401 more per 2 s it took.
#[test]
fn failed_authentication_is_limited_per_address() {
    let s = Server::start();
    let (_, token) = s.account("pro", "UTC");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    let started = Instant::now();
    for i in 0..300 {
        let wrong = format!("cb_wrong{i}");
        let a = s.send("GET", "/v1/balance", Some(&wrong), &[], None);
        statuses.push(a.status);
        if a.status == 429 {
            retry_after = a.header("retry-after");
            assert_error(429, &a.json(), 429, "rate_limited");
            break;
        }
        assert_eq!(a.status, 401, "{}", a.text);
    }
    let elapsed = started.elapsed();
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let given_back = (elapsed.as_secs_f64() / 2.0).floor() as usize;
    assert!(
        (30..=30 + given_back).contains(&unauthorized),
        "{unauthorized} 401s before the limit in {elapsed:?}: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&secs), "Retry-After: {secs}");
    // The address is refused before its token is looked at: a right token too, and the
    // admin routes share the limit.
    let a = s.send("GET", "/v1/balance", Some(&token), &[], None);
    assert_eq!(a.status, 429, "{}", a.text);
    let (st, _) = s.call("GET", "/v1/admin/accounts/x/tokens", Some(ADMIN), None);
    assert_eq!(st, 429);
    // Unauthenticated routes are not affected.
    let (st, _) = s.call("GET", "/v1/health", None, None);
    assert_eq!(st, 200);
}

fn open_stream(host: &str, token: &str) -> (TcpStream, String) {
    let mut c = TcpStream::connect(host).unwrap();
    write!(
        c,
        "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    (c, String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Eight event streams per token; the ninth is 429; closing one frees its slot; another
/// token has slots of its own.
#[test]
fn at_most_eight_event_streams_per_token() {
    let s = Server::start();
    let (account, token) = s.account("pro", "UTC");
    let host = s.base.trim_start_matches("http://").to_owned();
    let mut open: Vec<TcpStream> = (0..8)
        .map(|i| {
            let (c, head) = open_stream(&host, &token);
            assert!(head.starts_with("HTTP/1.1 200"), "stream {i}: {head}");
            c
        })
        .collect();
    let (_, head) = open_stream(&host, &token);
    assert!(head.starts_with("HTTP/1.1 429"), "ninth: {head}");
    assert!(head.contains("rate_limited"), "{head}");
    // A second token of the same account has its own eight.
    let (st, second) = s.admin(
        "POST",
        &format!("/v1/admin/accounts/{account}/tokens"),
        json!({}),
    );
    assert_eq!(st, 201, "{second}");
    let (_c2, head) = open_stream(&host, second["token"].as_str().unwrap());
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Closing one gives its slot back (once the server notices, which a write makes it do:
    // the next event or heartbeat; a charge sends a balance event).
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let (st, v) = s.call(
            "POST",
            "/v1/usage",
            Some(&token),
            Some(usage(&format!("nudge-{n}"), "lite", 10, 0, 1)),
        );
        assert_eq!(st, 201, "{v}");
        let (c, head) = open_stream(&host, &token);
        if head.starts_with("HTTP/1.1 200") {
            open.push(c);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's slot never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Labels that would display as something they are not are refused, naming the field and
/// the character; ordinary non-ASCII labels are fine.
#[test]
fn labels_refuse_control_bidi_and_zero_width_characters() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let bad = [
        ("thread", "inv\u{202e}gnp.exe", "U+202E"),
        ("project", "pay\u{200b}ments", "U+200B"),
        ("id", "u-\u{2066}1", "U+2066"),
        ("thread", "a\u{200f}b", "U+200F"),
        ("project", "x\u{feff}", "U+FEFF"),
        ("thread", "tab\there", "U+0009"),
    ];
    for (field, value, code) in bad {
        let mut body = usage("u-ok", "lite", 10, 0, 1);
        body[field] = json!(value);
        let (st, v) = s.call("POST", "/v1/usage", Some(&t), Some(body));
        assert_error(st, &v, 400, "invalid_request");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")) && message.contains(code),
            "{field} {value:?}: {message}"
        );
    }
    // A review's thread and a hold's too.
    let review = json!({"id": "r1", "thread": "inv\u{202e}gnp.exe", "description": "x"});
    let (st, v) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(review));
    assert_error(st, &v, 400, "invalid_request");
    let mut body = usage("fine", "lite", 10, 0, 1);
    body["project"] = json!("Café — 日本語 🚀");
    body["thread"] = json!("résumé/feature-x");
    let (st, v) = s.call("POST", "/v1/usage", Some(&t), Some(body));
    assert_eq!(st, 201, "{v}");
}

/// 1,000 open usage reviews per account: the next is 422 `limit_reached`, a repeat of an
/// existing one still answers as before, and resolving one frees a place.
#[test]
fn at_most_a_thousand_open_reviews_per_account() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let report = |id: &str| json!({"id": id, "thread": "t", "description": "looped"});
    let url = s.url("/v1/usage-reviews");
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (url, t) = (url.clone(), t.clone());
            std::thread::spawn(move || {
                let http = client();
                for i in (w..1000).step_by(4) {
                    let r = http
                        .post(&url)
                        .bearer_auth(&t)
                        .json(
                            &json!({"id": format!("r{i}"), "thread": "t", "description": "looped"}),
                        )
                        .send()
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201, "review {i}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let (st, v) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(report("r1000")));
    assert_error(st, &v, 422, "limit_reached");
    let (st, v) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(report("r7")));
    assert_eq!(st, 201, "a repeat is not a new review: {v}");
    let (st, v) = s.admin(
        "POST",
        "/v1/admin/usage-reviews/r7/resolve",
        json!({"grant_amount": 0, "note": "no"}),
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(report("r1000")));
    assert_eq!(st, 201, "{v}");
    // Another account has its own thousand.
    let (_, other) = s.account("free", "UTC");
    let (st, _) = s.call(
        "POST",
        "/v1/usage-reviews",
        Some(&other),
        Some(report("r1")),
    );
    assert_eq!(st, 201);
}

/// 20 saved cards per account; the 21st is 422 `limit_reached`.
#[test]
fn at_most_twenty_saved_cards_per_account() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let card =
        json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"});
    for i in 0..20 {
        let (st, v) = s.call("POST", "/v1/payment-methods", Some(&t), Some(card.clone()));
        assert_eq!(st, 201, "card {i}: {v}");
    }
    let (st, v) = s.call("POST", "/v1/payment-methods", Some(&t), Some(card.clone()));
    assert_error(st, &v, 422, "limit_reached");
    let (_, other) = s.account("pro", "UTC");
    let (st, _) = s.call("POST", "/v1/payment-methods", Some(&other), Some(card));
    assert_eq!(st, 201);
}
