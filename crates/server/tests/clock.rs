//! Resets seen from outside, driven by `--test-clock`: daily allowances at local midnight
//! across DST, billing periods across short months and leap years, no rollover, and a clock
//! that never goes backwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use chrono::{DateTime, Utc};
use common::*;
use serde_json::{json, Value};

fn starting_at(t: &str) -> Server {
    Server::start_with(Options {
        test_clock: Some(t.into()),
        ..Default::default()
    })
}

/// When each grant of `bucket` was made.
fn grants(s: &Server, token: &str, bucket: &str) -> Vec<DateTime<Utc>> {
    s.ledger(token)
        .iter()
        .filter(|e| e["type"] == json!("grant") && e["bucket"] == json!(bucket))
        .map(|e| time_of(&e["at"]))
        .collect()
}

/// `(type, amount, at)` of every entry of `bucket`.
fn postings(s: &Server, token: &str, bucket: &str) -> Vec<(String, i64, DateTime<Utc>)> {
    s.ledger(token)
        .iter()
        .filter(|e| e["bucket"] == json!(bucket))
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["amount"].as_i64().unwrap(),
                time_of(&e["at"]),
            )
        })
        .collect()
}

fn next_reset(s: &Server, token: &str, bucket: &str) -> DateTime<Utc> {
    time_of(&s.get("/v1/balance", token)["buckets"][bucket]["next_reset"])
}

fn available_in(s: &Server, token: &str, bucket: &str) -> i64 {
    s.get("/v1/balance", token)["buckets"][bucket]["available"]
        .as_i64()
        .unwrap()
}

#[test]
fn daily_credits_reset_at_new_york_midnight_across_spring_forward() {
    let s = starting_at("2027-03-13T12:00:00Z");
    let (_, t) = s.account("pro", "America/New_York");
    // Sunday Mar 14 starts at 00:00 EST (05:00Z) and lasts 23 hours: DST starts at 02:00.
    assert_eq!(next_reset(&s, &t, "daily"), utc("2027-03-14T05:00:00Z"));
    s.set_clock("2027-03-14T04:59:59Z");
    assert_eq!(grants(&s, &t, "daily").len(), 1);
    s.set_clock("2027-03-14T05:00:00Z");
    assert_eq!(next_reset(&s, &t, "daily"), utc("2027-03-15T04:00:00Z"));
    // 24 hours after the last reset is not midnight any more.
    s.set_clock("2027-03-15T03:59:59Z");
    assert_eq!(grants(&s, &t, "daily").len(), 2);
    s.set_clock("2027-03-15T04:00:00Z");
    assert_eq!(next_reset(&s, &t, "daily"), utc("2027-03-16T04:00:00Z"));
    assert_eq!(
        grants(&s, &t, "daily"),
        vec![
            utc("2027-03-13T12:00:00Z"),
            utc("2027-03-14T05:00:00Z"),
            utc("2027-03-15T04:00:00Z")
        ]
    );
    assert_eq!(available_in(&s, &t, "daily"), 5 * CREDIT);
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn daily_credits_reset_at_new_york_midnight_across_fall_back() {
    let s = starting_at("2027-11-06T12:00:00Z");
    let (_, t) = s.account("pro", "America/New_York");
    // Sunday Nov 7 starts at 00:00 EDT (04:00Z) and lasts 25 hours.
    assert_eq!(next_reset(&s, &t, "daily"), utc("2027-11-07T04:00:00Z"));
    s.set_clock("2027-11-07T04:00:00Z");
    assert_eq!(next_reset(&s, &t, "daily"), utc("2027-11-08T05:00:00Z"));
    s.set_clock("2027-11-08T04:59:59Z");
    assert_eq!(
        grants(&s, &t, "daily").len(),
        2,
        "no reset 24 hours after the last one"
    );
    s.set_clock("2027-11-08T05:00:00Z");
    assert_eq!(
        grants(&s, &t, "daily"),
        vec![
            utc("2027-11-06T12:00:00Z"),
            utc("2027-11-07T04:00:00Z"),
            utc("2027-11-08T05:00:00Z")
        ]
    );
    assert_eq!(next_reset(&s, &t, "daily"), utc("2027-11-09T05:00:00Z"));
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn a_jump_over_several_days_replays_each_reset_at_its_own_midnight() {
    let s = starting_at("2027-03-13T12:00:00Z");
    let (_, t) = s.account("pro", "America/New_York");
    s.set_clock("2027-03-16T12:00:00Z");
    let daily = postings(&s, &t, "daily");
    let at = |t: &str| utc(t);
    assert_eq!(
        daily,
        vec![
            ("grant".into(), 5 * CREDIT, at("2027-03-13T12:00:00Z")),
            ("expire".into(), -5 * CREDIT, at("2027-03-14T05:00:00Z")),
            ("grant".into(), 5 * CREDIT, at("2027-03-14T05:00:00Z")),
            ("expire".into(), -5 * CREDIT, at("2027-03-15T04:00:00Z")),
            ("grant".into(), 5 * CREDIT, at("2027-03-15T04:00:00Z")),
            ("expire".into(), -5 * CREDIT, at("2027-03-16T04:00:00Z")),
            ("grant".into(), 5 * CREDIT, at("2027-03-16T04:00:00Z")),
        ]
    );
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn a_billing_anchor_on_the_31st_renews_on_the_last_day_of_short_months() {
    let s = starting_at("2027-01-31T10:00:00Z");
    let (_, t) = s.account("pro", "UTC");
    assert_eq!(
        next_reset(&s, &t, "subscription"),
        utc("2027-02-28T10:00:00Z")
    );
    s.set_clock("2027-02-28T09:59:59Z");
    assert_eq!(grants(&s, &t, "subscription").len(), 1);
    s.set_clock("2027-02-28T10:00:00Z");
    let a = s.get("/v1/account", &t);
    assert_eq!(time_of(&a["period_start"]), utc("2027-02-28T10:00:00Z"));
    assert_eq!(time_of(&a["period_end"]), utc("2027-03-31T10:00:00Z"));
    assert_eq!(time_of(&a["billing_anchor"]), utc("2027-01-31T10:00:00Z"));
    s.set_clock("2027-03-31T10:00:00Z");
    assert_eq!(
        grants(&s, &t, "subscription"),
        vec![
            utc("2027-01-31T10:00:00Z"),
            utc("2027-02-28T10:00:00Z"),
            utc("2027-03-31T10:00:00Z")
        ]
    );
    assert_eq!(
        next_reset(&s, &t, "subscription"),
        utc("2027-04-30T10:00:00Z")
    );
    assert_eq!(available_in(&s, &t, "subscription"), 500 * CREDIT);
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn a_billing_anchor_on_january_31_renews_on_february_29_in_a_leap_year() {
    let s = starting_at("2028-01-31T10:00:00Z");
    let (_, t) = s.account("pro", "UTC");
    assert_eq!(
        next_reset(&s, &t, "subscription"),
        utc("2028-02-29T10:00:00Z")
    );
    s.set_clock("2028-02-29T10:00:00Z");
    assert_eq!(
        grants(&s, &t, "subscription"),
        vec![utc("2028-01-31T10:00:00Z"), utc("2028-02-29T10:00:00Z")]
    );
    assert_eq!(
        next_reset(&s, &t, "subscription"),
        utc("2028-03-31T10:00:00Z")
    );
}

#[test]
fn the_free_plan_renews_every_thirty_days() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    s.advance(90 * 86_400);
    let subscription: Vec<(String, i64, DateTime<Utc>)> = postings(&s, &t, "subscription");
    let at = |t: &str| utc(t);
    assert_eq!(
        subscription,
        vec![
            ("grant".into(), 100 * CREDIT, at("2026-11-21T18:00:00Z")),
            ("expire".into(), -100 * CREDIT, at("2026-12-21T18:00:00Z")),
            ("grant".into(), 100 * CREDIT, at("2026-12-21T18:00:00Z")),
            ("expire".into(), -100 * CREDIT, at("2027-01-20T18:00:00Z")),
            ("grant".into(), 100 * CREDIT, at("2027-01-20T18:00:00Z")),
            ("expire".into(), -100 * CREDIT, at("2027-02-19T18:00:00Z")),
            ("grant".into(), 100 * CREDIT, at("2027-02-19T18:00:00Z")),
        ]
    );
    assert_eq!(
        next_reset(&s, &t, "subscription"),
        utc("2027-03-21T18:00:00Z")
    );
}

#[test]
fn unused_allowances_expire_at_the_reset_instead_of_rolling_over() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    // Day 1: spend 2 of the 5 daily credits.
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("d1", "standard", 0, 0, 20_000)),
    );
    assert_eq!(st, 201);
    assert_eq!(available_in(&s, &t, "daily"), 3 * CREDIT);
    s.set_clock("2026-11-22T00:00:00Z");
    let ledger = s.ledger(&t);
    let expired = ledger
        .iter()
        .find(|e| e["type"] == json!("expire"))
        .unwrap();
    assert_eq!(expired["bucket"], json!("daily"));
    assert_eq!(
        expired["amount"],
        json!(-3 * CREDIT),
        "the unused remainder leaves"
    );
    assert_eq!(available_in(&s, &t, "daily"), 5 * CREDIT, "not 8");

    // Day 2: spend 12 credits, 5 daily and 7 of the subscription.
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("d2", "premium", 0, 0, 40_000)),
    );
    assert_eq!(st, 201);
    let unused = available_in(&s, &t, "subscription");
    assert_eq!(unused, 493 * CREDIT);
    let old_lot = s
        .ledger(&t)
        .iter()
        .find(|e| e["bucket"] == json!("subscription"))
        .unwrap()["grant_id"]
        .clone();
    s.set_clock("2026-12-21T18:00:00Z");
    let ledger = s.ledger(&t);
    let expire: Vec<&Value> = ledger
        .iter()
        .filter(|e| e["type"] == json!("expire") && e["bucket"] == json!("subscription"))
        .collect();
    assert_eq!(expire.len(), 1);
    assert_eq!(expire[0]["amount"], json!(-unused));
    assert_eq!(expire[0]["grant_id"], old_lot);
    assert_eq!(time_of(&expire[0]["at"]), utc("2026-12-21T18:00:00Z"));
    assert_eq!(
        available_in(&s, &t, "subscription"),
        500 * CREDIT,
        "not 993"
    );
    s.assert_balance_is_ledger_sum(&t);
    assert!(s.check_db().0);
}

#[test]
fn the_clock_refuses_to_go_backwards() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    s.advance(3600);
    let (st, v) = s.admin(
        "POST",
        "/v1/admin/clock",
        json!({"now": "2026-11-21T18:30:00Z"}),
    );
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = s.admin("POST", "/v1/admin/clock", json!({"advance_seconds": -1}));
    assert_error(st, &v, 400, "invalid_request");
    assert_eq!(
        time_of(&s.get("/v1/balance", &t)["as_of"]),
        utc("2026-11-21T19:00:00Z")
    );
    let v = s.advance(0);
    assert_eq!(time_of(&v["now"]), utc("2026-11-21T19:00:00Z"));
}

#[test]
fn without_test_clock_time_cannot_be_moved() {
    let s = Server::start_with(Options {
        test_clock: None,
        ..Default::default()
    });
    let (st, v) = s.admin(
        "POST",
        "/v1/admin/clock",
        json!({"advance_seconds": 86_400}),
    );
    assert_error(st, &v, 404, "not_found");
}
