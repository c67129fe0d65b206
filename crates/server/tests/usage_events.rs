//! `GET /v1/usage/events` (an extension of api.md): every usage event once, in (at, id)
//! order, across pages; the same sums as the server's own aggregates; `since`; bad input;
//! nothing of another account.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::collections::{BTreeMap, HashSet};

use common::*;
use serde_json::{json, Value};

fn post(s: &Server, token: &str, id: &str, model: &str, project: &str, thread: &str, output: u64) {
    let mut body = usage(id, model, 1000, 200, output);
    body["project"] = json!(project);
    body["thread"] = json!(thread);
    if output == 0 {
        body["status"] = json!("cancelled");
    }
    let (status, v) = s.call("POST", "/v1/usage", Some(token), Some(body));
    assert_eq!(status, 201, "{v}");
}

/// Follows `next` with pages of `limit`, returning every event.
fn all_events(s: &Server, token: &str, query: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/usage/events?limit={limit}{query}");
        if let Some(a) = &after {
            path += &format!("&after={}", urlencode(a));
        }
        let page = s.get(&path, token);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        out.extend(items.iter().cloned());
        assert!(
            out.len() <= 10_000,
            "paging does not end: {} events so far",
            out.len()
        );
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return out,
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn usage_events_list_every_event_once_and_sum_like_the_aggregates() {
    let s = Server::start();
    let (_, token) = s.account("team", "America/New_York");
    let models = ["lite", "standard", "premium"];
    for i in 0..25u64 {
        let output = if i == 7 { 0 } else { 100 + i * 37 };
        post(
            &s,
            &token,
            &format!("u-{:02}", 24 - i), /* ids against time order: paging must follow (at, id) */
            models[(i % 3) as usize],
            &format!("p{}", i % 4),
            &format!("t{}", i % 6),
            output,
        );
        if i % 5 == 4 {
            s.advance(12 * 3600); // spread the events over several local days
        }
    }
    let events = all_events(&s, &token, "", 7);
    assert_eq!(events.len(), 25, "every event once");
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 25);
    let keys: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["at"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "(at, id) order");
    let cancelled = events.iter().find(|e| e["id"] == "u-17").unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["charged"], 0, "a cancelled event is listed, free");

    // The same sums as GET /v1/usage, for every grouping.
    for (group, field) in [
        ("model", "model"),
        ("project", "project"),
        ("thread", "thread"),
        ("day", "day"),
    ] {
        let mut mine: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for e in &events {
            let m = mine
                .entry(e[field].as_str().unwrap().to_owned())
                .or_default();
            m.0 += e["charged"].as_i64().unwrap();
            m.1 += 1;
            m.2 += e["output_tokens"].as_i64().unwrap();
        }
        let server: BTreeMap<String, (i64, i64, i64)> = s
            .get(&format!("/v1/usage?group_by={group}"), &token)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["key"].as_str().unwrap().to_owned(),
                    (
                        g["charged"].as_i64().unwrap(),
                        g["events"].as_i64().unwrap(),
                        g["output_tokens"].as_i64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(mine, server, "group_by={group}");
    }
    assert!(
        events
            .iter()
            .map(|e| e["day"].as_str().unwrap())
            .collect::<HashSet<_>>()
            .len()
            >= 3
    );

    // `since` starts the listing at a time.
    let now = s.advance(3600)["now"].as_str().unwrap().to_owned();
    for i in 0..3 {
        post(&s, &token, &format!("late-{i}"), "lite", "p0", "t0", 50);
    }
    let late = all_events(&s, &token, &format!("&since={}", urlencode(&now)), 2);
    let late_ids: Vec<&str> = late.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(late_ids.len(), 3, "{late_ids:?}");
    assert!(
        late_ids.iter().all(|id| id.starts_with("late-")),
        "{late_ids:?}"
    );

    // Another account sees none of it.
    let (_, other) = s.account("pro", "UTC");
    assert_eq!(all_events(&s, &other, "", 100).len(), 0);
}

#[test]
fn usage_events_refuse_bad_queries_with_a_clear_message() {
    let s = Server::start();
    let (_, token) = s.account("pro", "UTC");
    for (query, names) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("after=17", "after"),
        ("after=not-a-time%7Cu1", "after"),
        ("after=2026-01-01T00:00:00.000Z%7C", "after"),
        ("since=yesterday", "since"),
        ("colour=blue", "colour"),
    ] {
        let (status, v) = s.call(
            "GET",
            &format!("/v1/usage/events?{query}"),
            Some(&token),
            None,
        );
        assert_eq!(status, 400, "{query}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{query}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(names),
            "{query}: the message names {names}: {message}"
        );
    }
    let (status, v) = s.call("GET", "/v1/usage/events", None, None);
    assert_eq!(status, 401, "{v}");
}
