//! Many clients at once against one account: the never-negative rule, idempotency and holds
//! must hold however requests interleave.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

/// Runs `n` requests from `n` threads released at once; returns (status, body) in order.
fn at_once(
    s: &Server,
    n: usize,
    request: impl Fn(usize, &reqwest::blocking::Client, &str) -> (u16, Value) + Sync,
) -> Vec<(u16, Value)> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, request, base) = (&barrier, &request, s.base.as_str());
                scope.spawn(move || {
                    let http = client();
                    barrier.wait();
                    request(i, &http, base)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn post(http: &reqwest::blocking::Client, url: String, token: &str, body: &Value) -> (u16, Value) {
    let resp = http.post(url).bearer_auth(token).json(body).send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// Watches the balance from another thread while `work` runs; returns the lowest bucket
/// total (the ledger balance) and the lowest `available` it saw.
fn watching<T>(s: &Server, token: &str, work: impl FnOnce() -> T) -> (T, i64, i64) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let http = client();
            let (mut lowest_total, mut lowest_available) = (i64::MAX, i64::MAX);
            while !stop.load(Ordering::SeqCst) {
                let b: Value = http
                    .get(s.url("/v1/balance"))
                    .bearer_auth(token)
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                let total: i64 = ["daily", "subscription", "bonus", "purchased"]
                    .iter()
                    .map(|k| b["buckets"][k]["available"].as_i64().unwrap())
                    .sum();
                lowest_total = lowest_total.min(total);
                lowest_available = lowest_available.min(b["available"].as_i64().unwrap());
            }
            (lowest_total, lowest_available)
        });
        let out = work();
        stop.store(true, Ordering::SeqCst);
        let (t, a) = watcher.join().unwrap();
        (out, t, a)
    })
}

#[test]
fn two_hundred_parallel_charges_never_spend_more_than_the_balance() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    let initial = s.available(&t);
    assert_eq!(initial, 105 * CREDIT);
    // 10,000 premium output tokens: 3 credits each; 200 of them want 600.
    let price = 3 * CREDIT;
    let (results, lowest_total, lowest_available) = watching(&s, &t, || {
        at_once(&s, 200, |i, http, base| {
            post(
                http,
                format!("{base}/v1/usage"),
                &t,
                &usage(&format!("c{i}"), "premium", 0, 0, 10_000),
            )
        })
    });
    assert!(
        lowest_total >= 0 && lowest_available >= 0,
        "seen: {lowest_total}, {lowest_available}"
    );

    let ok = results.iter().filter(|(st, _)| *st == 201).count() as i64;
    for (st, v) in &results {
        match st {
            201 => assert_eq!(v["charged"], json!(price)),
            402 => assert_error(*st, v, 402, "insufficient_credits"),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert!(ok * price <= initial);
    // Refused only when the credits were not there: exactly as many as fit went through.
    assert_eq!(ok, initial / price);
    assert_eq!(s.available(&t), initial - ok * price);
    s.assert_balance_is_ledger_sum(&t);

    let days = s.get("/v1/usage?group_by=day", &t);
    let events: i64 = days["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["events"].as_i64().unwrap())
        .sum();
    let charged: i64 = days["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["charged"].as_i64().unwrap())
        .sum();
    assert_eq!(events, ok, "one usage event per 201");
    assert_eq!(charged, ok * price);
    let ledger = s.ledger(&t);
    assert!(ledger
        .iter()
        .all(|e| e["balance_after"].as_i64().unwrap() >= 0));
    assert!(s.check_db().0);
}

#[test]
fn the_same_usage_posted_fifty_times_at_once_charges_once() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let body = usage("once", "premium", 0, 0, 10_000);
    let results = at_once(&s, 50, |_, http, base| {
        post(http, format!("{base}/v1/usage"), &t, &body)
    });
    let first = &results[0].1;
    for (st, v) in &results {
        assert_eq!(*st, 201, "{v}");
        assert_eq!(v, first, "every retry sees the original answer");
    }
    assert_eq!(s.available(&t), 502 * CREDIT);
    let ledger = s.ledger(&t);
    let charged: i64 = entries_for(&ledger, "once")
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(charged, -3 * CREDIT);
    assert_eq!(s.get("/v1/usage", &t)["items"][0]["events"], json!(1));
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn parallel_holds_never_reserve_more_than_the_lots() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    let (results, _, lowest_available) = watching(&s, &t, || {
        at_once(&s, 100, |i, http, base| {
            post(
                http,
                format!("{base}/v1/holds"),
                &t,
                &json!({"id": format!("h{i}"), "amount": 5 * CREDIT}),
            )
        })
    });
    assert!(lowest_available >= 0);
    let placed: Vec<usize> = (0..100).filter(|&i| results[i].0 == 201).collect();
    for (st, v) in &results {
        assert!(*st == 201 || *st == 402, "{st}: {v}");
    }
    // 105 credits hold 21 reservations of 5.
    assert_eq!(placed.len(), 21);
    let b = s.get("/v1/balance", &t);
    assert_eq!(b["held"], json!(105 * CREDIT));
    assert_eq!(b["available"], json!(0));

    // Voided in parallel too: everything comes back, nothing is charged.
    let voids = at_once(&s, placed.len(), |i, http, base| {
        post(
            http,
            format!("{base}/v1/holds/h{}/void", placed[i]),
            &t,
            &json!(null),
        )
    });
    assert!(voids.iter().all(|(st, _)| *st == 200), "{voids:?}");
    let b = s.get("/v1/balance", &t);
    assert_eq!(
        (
            b["available"].as_i64().unwrap(),
            b["held"].as_i64().unwrap()
        ),
        (105 * CREDIT, 0)
    );
    assert_eq!(s.ledger(&t).len(), 2);
}

#[test]
fn charges_racing_holds_never_spend_reserved_credits() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    // Even threads reserve 5 credits, odd threads spend 3.
    let results = at_once(&s, 120, |i, http, base| {
        if i % 2 == 0 {
            post(
                http,
                format!("{base}/v1/holds"),
                &t,
                &json!({"id": format!("h{i}"), "amount": 5 * CREDIT}),
            )
        } else {
            post(
                http,
                format!("{base}/v1/usage"),
                &t,
                &usage(&format!("c{i}"), "premium", 0, 0, 10_000),
            )
        }
    });
    let holds = (0..120)
        .filter(|i| i % 2 == 0 && results[*i].0 == 201)
        .count() as i64;
    let charges = (0..120)
        .filter(|i| i % 2 == 1 && results[*i].0 == 201)
        .count() as i64;
    assert!(
        results.iter().all(|(st, _)| *st == 201 || *st == 402),
        "{results:?}"
    );
    assert!(
        holds * 5 + charges * 3 <= 105,
        "{holds} holds and {charges} charges from 105 credits"
    );
    let b = s.get("/v1/balance", &t);
    assert_eq!(b["held"], json!(holds * 5 * CREDIT));
    assert_eq!(
        b["available"],
        json!((105 - holds * 5 - charges * 3) * CREDIT)
    );
    // Available only fell during the race, so a refusal deserved then is deserved now: both
    // kinds were refused (each alone asks for more than 105), so not even 3 credits are left.
    assert!(holds < 60 && charges < 60);
    assert!(
        b["available"].as_i64().unwrap() < 3 * CREDIT,
        "a request was refused with room for it: {b}"
    );
    s.assert_balance_is_ledger_sum(&t);
}
