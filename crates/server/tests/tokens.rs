//! Token lifecycle (api.md "v1.1 — Tokens"): ids, expiry, listing without secrets,
//! revocation effective on the next request, through a restart too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

#[test]
fn tokens_have_ids_expire_list_without_secrets_and_revoke() {
    let s = Server::start();
    let (s_status, created) = s.admin(
        "POST",
        "/v1/admin/accounts",
        json!({"email": "t@example.com", "plan": "pro", "timezone": "UTC"}),
    );
    assert_eq!(s_status, 201, "{created}");
    let account = created["account"]["id"].as_str().unwrap().to_owned();
    let first = created["token"].as_str().unwrap().to_owned();
    let first_id = created["token_id"].as_str().unwrap().to_owned();
    assert!(first_id.starts_with("tok_"), "{created}");

    // A token that expires in a day; one with no body never expires.
    let path = format!("/v1/admin/accounts/{account}/tokens");
    let (st, expiring) = s.admin("POST", &path, json!({"expires_in_days": 1}));
    assert_eq!(st, 201, "{expiring}");
    assert_eq!(
        time_of(&expiring["expires_at"]),
        utc(START) + chrono::Duration::days(1)
    );
    let (st, plain) = s.call("POST", &path, Some(ADMIN), None);
    assert_eq!(st, 201, "{plain}");
    assert!(plain["expires_at"].is_null());
    let (st, bad) = s.admin("POST", &path, json!({"expires_in_days": 0}));
    assert_error(st, &bad, 400, "invalid_request");
    let (st, bad) = s.admin("POST", &path, json!({"expires_in_days": 1, "x": 1}));
    assert_error(st, &bad, 400, "invalid_request");

    // Every token works; the list has all three, with no secret anywhere.
    for t in [
        &first,
        expiring["token"].as_str().unwrap(),
        plain["token"].as_str().unwrap(),
    ] {
        s.get("/v1/balance", t);
    }
    let (st, list) = s.call("GET", &path, Some(ADMIN), None);
    assert_eq!(st, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{list}");
    let text = list.to_string();
    for t in [first.as_str(), expiring["token"].as_str().unwrap()] {
        assert!(!text.contains(t), "a secret in the list: {list}");
    }
    for item in items {
        let keys: Vec<_> = item.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            ["created_at", "expires_at", "last_used_at", "token_id"],
            "{item}"
        );
        assert!(!item["last_used_at"].is_null(), "each was used: {item}");
    }
    // Another account's token id, or an unknown one: 404.
    let (other, _) = s.account("free", "UTC");
    let (st, v) = s.call(
        "DELETE",
        &format!("/v1/admin/accounts/{other}/tokens/{first_id}"),
        Some(ADMIN),
        None,
    );
    assert_error(st, &v, 404, "not_found");
    s.get("/v1/balance", &first);

    // Revoked: 401 on the very next request; the others still work.
    let (st, v) = s.call("DELETE", &format!("{path}/{first_id}"), Some(ADMIN), None);
    assert_eq!(st, 204, "{v}");
    let (st, v) = s.call("GET", "/v1/balance", Some(&first), None);
    assert_error(st, &v, 401, "unauthorized");
    s.get("/v1/balance", plain["token"].as_str().unwrap());
    let (st, v) = s.call("DELETE", &format!("{path}/{first_id}"), Some(ADMIN), None);
    assert_error(st, &v, 404, "not_found");

    // Expiry follows the (test) clock.
    s.advance(86_400);
    let (st, v) = s.call(
        "GET",
        "/v1/balance",
        Some(expiring["token"].as_str().unwrap()),
        None,
    );
    assert_error(st, &v, 401, "unauthorized");

    // After a restart: the revoked one stays revoked, the expired one expired, the plain
    // one works, and the list still has two.
    let dir = s.kill();
    let s = Server::start_in(
        dir,
        Options {
            test_clock: Some("2026-11-23T00:00:00Z".into()),
            ..Options::default()
        },
    );
    let (st, _) = s.call("GET", "/v1/balance", Some(&first), None);
    assert_eq!(st, 401);
    let (st, _) = s.call(
        "GET",
        "/v1/balance",
        Some(expiring["token"].as_str().unwrap()),
        None,
    );
    assert_eq!(st, 401);
    s.get("/v1/balance", plain["token"].as_str().unwrap());
    let (_, list) = s.call("GET", &path, Some(ADMIN), None);
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
}

/// An open event stream of a token that is revoked ends at its next event.
#[test]
fn a_revoked_tokens_event_stream_ends() {
    use std::io::{Read, Write};
    let s = Server::start();
    let (account, token) = s.account("pro", "UTC");
    let path = format!("/v1/admin/accounts/{account}/tokens");
    let (_, list) = s.call("GET", &path, Some(ADMIN), None);
    let id = list["items"][0]["token_id"].as_str().unwrap().to_owned();
    let host = s.base.trim_start_matches("http://").to_owned();
    let mut c = std::net::TcpStream::connect(&host).unwrap();
    write!(
        c,
        "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 8192];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (st, _) = s.call("DELETE", &format!("{path}/{id}"), Some(ADMIN), None);
    assert_eq!(st, 204);
    // A change of the account makes an event; the stream ends instead of carrying it.
    s.grant(&account, "after-revoke", 5 * CREDIT);
    let mut rest = Vec::new();
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the stream stayed open after revocation: {e}"),
        }
        // The chunked body's last chunk ends the response.
        if rest.ends_with(b"0\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&rest);
    assert!(
        !text.contains("after-revoke"),
        "an event after revocation: {text}"
    );
}
