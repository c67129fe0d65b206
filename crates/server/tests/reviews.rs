//! Usage reviews: a user reports a thread, an admin resolves it, optionally with a
//! `compensation` grant that the user sees in the ledger and the notices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};

fn report(id: &str) -> Value {
    json!({"id": id, "thread": "checkout-flow-refactor", "description": "The agent looped on a failing build for an hour.",
           "model": "premium", "preview_failing": true, "thread_messages": 84, "large_context": true})
}

fn reviews(s: &Server, token: &str) -> Vec<Value> {
    s.get("/v1/usage-reviews?limit=1000", token)["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn notices_of(s: &Server, token: &str, kind: &str) -> Vec<Value> {
    s.get("/v1/notices?limit=1000", token)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == kind)
        .cloned()
        .collect()
}

fn resolve(s: &Server, path: &str, body: Value) -> (u16, Value) {
    s.admin("POST", path, body)
}

fn assert_invalid(st: u16, v: &Value, field: &str) {
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(field),
        "message should name {field}: {message}"
    );
}

#[test]
fn a_reported_thread_is_open_listed_and_reported_once() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, r) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(report("r1")));
    assert_eq!(st, 201, "{r}");
    assert_eq!(
        r,
        json!({"id": "r1", "status": "open", "thread": "checkout-flow-refactor",
               "description": "The agent looped on a failing build for an hour.", "model": "premium",
               "preview_failing": true, "thread_messages": 84, "large_context": true,
               "created_at": "2026-11-21T18:00:00.000Z", "resolved_at": null, "grant_amount": null,
               "resolution_note": null})
    );
    s.advance(5);
    let (st, again) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(report("r1")));
    assert_eq!(st, 201);
    assert_eq!(again, r);
    let mut changed = report("r1");
    changed["description"] = json!("something else");
    let (st, v) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(changed));
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "idempotency_conflict");

    let minimal = json!({"id": "r2", "thread": "t", "description": "d"});
    let (st, r2) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(minimal));
    assert_eq!(st, 201, "{r2}");
    assert_eq!(r2["model"], Value::Null);
    assert_eq!(r2["preview_failing"], Value::Null);
    let listed = reviews(&s, &t);
    assert_eq!(listed, vec![r, r2]);
    let page = s.get("/v1/usage-reviews?limit=1", &t);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().unwrap();
    let rest = s.get(&format!("/v1/usage-reviews?limit=1&after={next}"), &t);
    assert_eq!(rest["items"][0]["id"], "r2");
    assert_eq!(rest["next"], Value::Null);
    // Another account sees none of them.
    let (_, other) = s.account("pro", "UTC");
    assert!(reviews(&s, &other).is_empty());
}

#[test]
fn review_input_is_checked_naming_the_field() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let with = |k: &str, v: Value| {
        let mut b = report("r");
        b[k] = v;
        b
    };
    let cases = [
        (with("description", json!("")), "description"),
        (with("description", json!("x".repeat(4001))), "description"),
        (with("model", json!("gpt-9")), "model"),
        (with("thread", json!("")), "thread"),
        (with("id", json!("")), "id"),
        (with("thread_messages", json!(-3)), "thread_messages"),
        (with("preview_failing", json!("yes")), "preview_failing"),
        (with("surprise", json!(1)), "surprise"),
        (json!({"id": "r", "description": "d"}), "thread"),
    ];
    for (body, field) in cases {
        let (st, v) = s.call("POST", "/v1/usage-reviews", Some(&t), Some(body));
        assert_invalid(st, &v, field);
    }
    assert!(reviews(&s, &t).is_empty());
    let (st, _) = s.call(
        "POST",
        "/v1/usage-reviews",
        Some(&t),
        Some(with("description", json!("é".repeat(4000)))),
    );
    assert_eq!(st, 201, "4000 characters are fine, whatever their bytes");
}

#[test]
fn resolving_a_review_grants_compensation_visible_in_the_ledger() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    s.call("POST", "/v1/usage-reviews", Some(&t), Some(report("r1")));
    s.advance(3600);
    let body = json!({"grant_amount": 25 * CREDIT, "note": "Sorry about the build loop."});
    let (st, r) = resolve(&s, "/v1/admin/usage-reviews/r1/resolve", body.clone());
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["resolved_at"], "2026-11-21T19:00:00.000Z");
    assert_eq!(r["grant_amount"], json!(25 * CREDIT));
    assert_eq!(r["resolution_note"], "Sorry about the build loop.");
    assert_eq!(r["created_at"], "2026-11-21T18:00:00.000Z");

    let grant = s.ledger(&t).pop().unwrap();
    assert_eq!(grant["type"], "grant");
    assert_eq!(grant["bucket"], "bonus");
    assert_eq!(grant["amount"], json!(25 * CREDIT));
    assert_eq!(grant["ref"], "compensation");
    let b = s.get("/v1/balance", &t);
    assert_eq!(b["buckets"]["bonus"]["available"], json!(25 * CREDIT));
    let granted = notices_of(&s, &t, "grant");
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["data"]["reason"], "compensation");
    assert_eq!(granted[0]["data"]["amount"], json!(25 * CREDIT));
    let resolved = notices_of(&s, &t, "review_resolved");
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[0]["data"],
        json!({"review_id": "r1", "grant_amount": 25 * CREDIT})
    );
    assert_eq!(reviews(&s, &t), vec![r.clone()]);

    // The same resolution again is a no-op; another one is a conflict.
    s.advance(60);
    let (st, again) = resolve(&s, "/v1/admin/usage-reviews/r1/resolve", body);
    assert_eq!(st, 200);
    assert_eq!(again, r);
    let (st, v) = resolve(
        &s,
        "/v1/admin/usage-reviews/r1/resolve",
        json!({"grant_amount": 50 * CREDIT, "note": "more"}),
    );
    assert_eq!(st, 409, "{v}");
    assert_eq!(
        b["buckets"]["bonus"]["available"],
        s.get("/v1/balance", &t)["buckets"]["bonus"]["available"]
    );
    assert_eq!(notices_of(&s, &t, "review_resolved").len(), 1);
    s.assert_balance_is_ledger_sum(&t);
    assert!(s.check_db().0);
}

#[test]
fn resolving_without_a_grant_only_closes_the_review() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    s.call("POST", "/v1/usage-reviews", Some(&t), Some(report("r1")));
    let entries = s.ledger(&t).len();
    let (st, r) = resolve(
        &s,
        "/v1/admin/usage-reviews/r1/resolve",
        json!({"grant_amount": 0, "note": null}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["grant_amount"], 0);
    assert_eq!(s.ledger(&t).len(), entries);
    assert_eq!(
        notices_of(&s, &t, "review_resolved")[0]["data"]["grant_amount"],
        0
    );
    assert!(notices_of(&s, &t, "grant").is_empty());
}

#[test]
fn the_admin_names_the_account_when_a_review_id_is_not_unique() {
    let s = Server::start();
    let (a, ta) = s.account("pro", "UTC");
    let (b, tb) = s.account("pro", "UTC");
    s.call("POST", "/v1/usage-reviews", Some(&ta), Some(report("same")));
    s.call("POST", "/v1/usage-reviews", Some(&tb), Some(report("same")));
    let body = json!({"grant_amount": CREDIT, "note": "ok"});
    let (st, v) = resolve(&s, "/v1/admin/usage-reviews/same/resolve", body.clone());
    assert_eq!(st, 409, "{v}");
    let (st, v) = resolve(&s, "/v1/admin/usage-reviews/missing/resolve", body.clone());
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");
    let (st, v) = resolve(
        &s,
        "/v1/admin/usage-reviews/same/resolve?account=acc_nobody",
        body.clone(),
    );
    assert_eq!(st, 404, "{v}");
    let (st, v) = resolve(
        &s,
        &format!("/v1/admin/usage-reviews/same/resolve?account={b}"),
        body.clone(),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(reviews(&s, &tb)[0]["status"], "resolved");
    assert_eq!(reviews(&s, &ta)[0]["status"], "open");
    assert_eq!(
        s.get("/v1/balance", &ta)["buckets"]["bonus"]["available"],
        0
    );
    assert_eq!(
        s.get("/v1/balance", &tb)["buckets"]["bonus"]["available"],
        json!(CREDIT)
    );
    let _ = a;
}

#[test]
fn resolving_is_for_the_admin_and_checks_its_input() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    s.call("POST", "/v1/usage-reviews", Some(&t), Some(report("r1")));
    let path = "/v1/admin/usage-reviews/r1/resolve";
    let (st, _) = s.call(
        "POST",
        path,
        Some(&t),
        Some(json!({"grant_amount": CREDIT, "note": "x"})),
    );
    assert_eq!(st, 401);
    let (st, v) = resolve(&s, path, json!({"grant_amount": -1, "note": "x"}));
    assert_invalid(st, &v, "grant_amount");
    let (st, v) = resolve(&s, path, json!({"grant_amount": "1", "note": "x"}));
    assert_invalid(st, &v, "grant_amount");
    let (st, v) = resolve(
        &s,
        path,
        json!({"grant_amount": 1, "note": "x".repeat(2001)}),
    );
    assert_invalid(st, &v, "note");
    let (st, v) = resolve(
        &s,
        path,
        json!({"grant_amount": 1, "note": "x", "bonus": 2}),
    );
    assert_invalid(st, &v, "bonus");
    let (st, v) = resolve(
        &s,
        &format!("{path}?acount=x"),
        json!({"grant_amount": 1, "note": "x"}),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(reviews(&s, &t)[0]["status"], "open");
}
