//! The live event stream (`GET /v1/events`), read as a client reads it: a blocking HTTP
//! stream, parsed line by line, with a timeout so a broken stream fails instead of hanging.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::stream::{Event, Stream};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn without_as_of(mut balance: Value) -> Value {
    balance.as_object_mut().unwrap().remove("as_of");
    balance
}

#[test]
fn the_stream_opens_with_the_balance_and_follows_every_charge() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let mut stream = Stream::open(&s, &t, None);
    let first = stream.next_of("balance");
    let balance = s.get("/v1/balance", &t);
    assert_eq!(
        without_as_of(first.data.clone()),
        without_as_of(balance.clone())
    );
    assert_eq!(first.id, balance["seq"].as_u64().unwrap());

    let (st, r) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u1", "premium", 0, 0, 10_000)),
    );
    assert_eq!(st, 201);
    let after = stream.next_of("balance");
    assert_eq!(after.data["available"], r["balance"]["available"]);
    assert_eq!(after.data["available"], json!(502 * CREDIT));
    assert!(after.id > first.id);
    assert_eq!(
        without_as_of(after.data),
        without_as_of(s.get("/v1/balance", &t))
    );

    let (st, _) = s.call(
        "POST",
        "/v1/holds",
        Some(&t),
        Some(json!({"id": "h", "amount": 2 * CREDIT})),
    );
    assert_eq!(st, 201);
    assert_eq!(stream.next_of("balance").data["held"], json!(2 * CREDIT));
}

#[test]
fn a_grant_is_told_as_a_notice_whose_id_is_its_seq() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    let mut stream = Stream::open(&s, &t, None);
    stream.next_of("balance");
    let body = json!({"id": "g", "amount": 4 * CREDIT, "reason": "admin", "note": "sorry"});
    let (st, _) = s.admin("POST", &format!("/v1/admin/accounts/{id}/grants"), body);
    assert_eq!(st, 201);

    let notice = stream.next_of("notice");
    assert_eq!(notice.data["type"], json!("grant"));
    assert_eq!(
        notice.data["data"],
        json!({"amount": 4 * CREDIT, "reason": "admin", "note": "sorry"})
    );
    assert_eq!(notice.id, notice.data["seq"].as_u64().unwrap());
    assert_eq!(
        s.notices(&t).last().unwrap(),
        &notice.data,
        "the same notice as /v1/notices"
    );
    let balance = stream.next_of("balance");
    assert_eq!(
        balance.data["buckets"]["bonus"]["available"],
        json!(4 * CREDIT)
    );
}

fn grant(s: &Server, account: &str, id: &str, credits: i64) {
    s.grant(account, id, credits * CREDIT);
}

#[test]
fn reconnecting_with_last_event_id_replays_the_missed_notices_in_order_once() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    let mut stream = Stream::open(&s, &t, None);
    stream.next_of("balance");
    grant(&s, &id, "g1", 1);
    let seen = stream.next_of("notice");
    assert_eq!(seen.data["data"]["amount"], json!(CREDIT));
    drop(stream);

    grant(&s, &id, "g2", 2);
    grant(&s, &id, "g3", 3);
    let mut stream = Stream::open(&s, &t, Some(seen.id));
    let missed: Vec<Event> = (0..2).map(|_| stream.next_of("notice")).collect();
    let amounts: Vec<&Value> = missed.iter().map(|e| &e.data["data"]["amount"]).collect();
    assert_eq!(amounts, vec![&json!(2 * CREDIT), &json!(3 * CREDIT)]);
    assert!(seen.id < missed[0].id && missed[0].id < missed[1].id);
    let balance = stream.next_of("balance");
    assert_eq!(
        balance.data["buckets"]["bonus"]["available"],
        json!(6 * CREDIT)
    );

    // Live from here on, with nothing told twice.
    grant(&s, &id, "g4", 4);
    let live = stream.next_of("notice");
    assert_eq!(live.data["data"]["amount"], json!(4 * CREDIT));
    assert!(live.id > missed[1].id);
    assert_eq!(
        stream.next_of("balance").data["buckets"]["bonus"]["available"],
        json!(10 * CREDIT)
    );
}

#[test]
fn last_event_id_zero_replays_every_notice() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let mut stream = Stream::open(&s, &t, Some(0));
    let all = s.notices(&t);
    assert_eq!(all.len(), 2, "the opening daily and subscription resets");
    for n in &all {
        let e = stream.next_of("notice");
        assert_eq!(&e.data, n);
        assert_eq!(e.id, n["seq"].as_u64().unwrap());
    }
    stream.next_of("balance");
}

#[test]
fn a_stream_shows_only_its_own_account() {
    let s = Server::start();
    let (mine, t) = s.account("pro", "UTC");
    let (theirs, _) = s.account("pro", "UTC");
    let mut stream = Stream::open(&s, &t, None);
    stream.next_of("balance");
    grant(&s, &theirs, "theirs", 9);
    grant(&s, &mine, "mine", 1);
    let e = stream.next_of("notice");
    assert_eq!(
        e.data["data"]["amount"],
        json!(CREDIT),
        "another account's grant leaked: {}",
        e.data
    );
}

#[test]
fn a_stream_opened_during_a_burst_of_grants_misses_none_and_repeats_none() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    let last = s.get("/v1/balance", &t)["seq"].as_u64().unwrap();
    let n = 60;
    std::thread::scope(|scope| {
        let burst = scope.spawn(|| {
            let http = client();
            for i in 0..n {
                let body = json!({"id": format!("b{i}"), "amount": CREDIT, "reason": "promo"});
                let resp = http
                    .post(s.url(&format!("/v1/admin/accounts/{id}/grants")))
                    .bearer_auth(ADMIN)
                    .json(&body)
                    .send()
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 201);
            }
        });
        // Connect while the grants are being made, resuming from before the first one.
        std::thread::sleep(Duration::from_millis(20));
        let mut stream = Stream::open(&s, &t, Some(last));
        let mut seqs = Vec::new();
        while seqs.len() < n {
            let e = stream.next();
            if e.event == "notice" {
                assert_eq!(e.data["type"], json!("grant"));
                seqs.push(e.id);
            }
        }
        burst.join().unwrap();
        let expected: Vec<u64> = s
            .notices(&t)
            .iter()
            .map(|n| n["seq"].as_u64().unwrap())
            .filter(|&q| q > last)
            .collect();
        assert_eq!(seqs, expected, "every grant told once, in order");
    });
}
