//! api.md "Limits every deployment has": failed authentication per address, event streams
//! per token, label characters, per-account counts. Through the real binary on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// 300 wrong tokens in a row from one address: the first 30 are 401, then 429 with
/// `Retry-After`, and from then on even a right token is refused until the wait is over
/// (guessing must stop, not merely be answered differently).
#[test]
fn failed_authentication_is_limited_per_address() {
    let s = Server::start();
    let (_, token) = s.account("pro", "UTC");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..300 {
        let wrong = format!("cb_wrong{i}");
        let a = s.send("GET", "/v1/balance", Some(&wrong), &[], None);
        if a.status == 429 {
            retry_after = retry_after.or(a.header("retry-after"));
            assert_error(429, &a.json(), 429, "rate_limited");
        }
        statuses.push(a.status);
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(unauthorized, 30, "401s before the limit: {statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
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
