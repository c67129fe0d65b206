//! Payment methods, purchases and auto-refill, as a user of the HTTP API sees them: the
//! test cards of api.md, idempotent purchases under retries, one refill per crossing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};

const VISA: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const NO_FUNDS: &str = "4000000000009995";
const DECLINES_LATER: &str = "4000000000000341";

fn card(number: &str) -> Value {
    json!({"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"})
}

/// Saves a card that must be accepted; returns its payment token.
fn save(s: &Server, token: &str, number: &str) -> String {
    let (st, v) = s.call(
        "POST",
        "/v1/payment-methods",
        Some(token),
        Some(card(number)),
    );
    assert_eq!(st, 201, "save {number}: {v}");
    v["payment_token"].as_str().unwrap().to_owned()
}

/// POST /v1/purchases with an optional Idempotency-Key.
fn buy(s: &Server, token: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = s
        .http
        .post(s.url("/v1/purchases"))
        .bearer_auth(token)
        .json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap())
}

fn pack(payment_token: &str) -> Value {
    json!({"pack": "pack_500", "payment_token": payment_token})
}

fn purchases(s: &Server, token: &str) -> Vec<Value> {
    s.get("/v1/purchases?limit=1000", token)["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn notices(s: &Server, token: &str) -> Vec<Value> {
    s.get("/v1/notices?limit=1000", token)["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn notices_of(s: &Server, token: &str, kind: &str) -> Vec<Value> {
    notices(s, token)
        .into_iter()
        .filter(|n| n["type"] == kind)
        .collect()
}

/// Polls until `done` holds (auto-refill answers asynchronously); fails after 20 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What must not move when a request is refused.
fn state(s: &Server, token: &str) -> (Value, usize, usize, usize) {
    let b = s.get("/v1/balance", token);
    (
        b["buckets"].clone(),
        s.ledger(token).len(),
        notices(s, token).len(),
        purchases(s, token).len(),
    )
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

/// `credits` whole credits of standard output tokens (100 µcr each).
fn spend(id: &str, credits: u64) -> Value {
    usage(id, "standard", 0, 0, credits * 10_000)
}

fn set_auto_refill(s: &Server, token: &str, body: Value) -> (u16, Value) {
    s.call("PUT", "/v1/auto-refill", Some(token), Some(body))
}

#[test]
fn a_saved_card_buys_a_pack_and_the_purchase_is_everywhere_the_user_looks() {
    let s = Server::start();
    let (_, t) = s.account("pro", "Europe/Paris");
    let (st, saved) = s.call("POST", "/v1/payment-methods", Some(&t), Some(card(VISA)));
    assert_eq!(st, 201, "{saved}");
    assert!(saved["payment_token"].as_str().unwrap().starts_with("pm_"));
    assert_eq!(saved["brand"], "visa");
    assert_eq!(saved["last4"], "4242");
    assert_eq!(saved["exp_month"], 12);
    assert_eq!(saved["exp_year"], 2030);
    let pm = saved["payment_token"].as_str().unwrap();

    let (st, p) = buy(&s, &t, Some("k1"), &pack(pm));
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["credits"], json!(500 * CREDIT));
    assert_eq!(p["price_cents"], 2000);
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["source"], "manual");
    assert_eq!(p["pack"], "pack_500");
    assert_eq!(p["created_at"], "2026-11-21T18:00:00.000Z");
    assert_eq!(p["balance"]["available"], json!(1005 * CREDIT));
    assert_eq!(s.available(&t), 1005 * CREDIT);

    let b = s.get("/v1/balance", &t);
    assert_eq!(b["buckets"]["purchased"]["available"], json!(500 * CREDIT));
    let entry = s.ledger(&t).pop().unwrap();
    assert_eq!(entry["type"], "purchase");
    assert_eq!(entry["bucket"], "purchased");
    assert_eq!(entry["amount"], json!(500 * CREDIT));
    let notice = notices_of(&s, &t, "purchase").pop().unwrap();
    assert_eq!(notice["data"]["purchase_id"], p["id"]);
    assert_eq!(notice["data"]["credits"], json!(500 * CREDIT));
    assert_eq!(notice["data"]["price_cents"], 2000);
    let listed = purchases(&s, &t);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], p["id"]);
    assert_eq!(listed[0]["source"], "manual");
    assert_eq!(listed[0]["status"], "succeeded");
    s.assert_balance_is_ledger_sum(&t);
    assert!(s.check_db().0);
}

#[test]
fn a_custom_amount_buys_25_credits_per_dollar() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    let pm = save(&s, &t, VISA);
    let (st, p) = buy(
        &s,
        &t,
        Some("custom"),
        &json!({"custom_cents": 1250, "payment_token": pm}),
    );
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["credits"], json!(312_500_000));
    assert_eq!(p["price_cents"], 1250);
    assert_eq!(p["pack"], Value::Null);
    let (st, v) = buy(
        &s,
        &t,
        Some("small"),
        &json!({"custom_cents": 499, "payment_token": pm}),
    );
    assert_invalid(st, &v, "custom_cents");
    let (st, v) = buy(
        &s,
        &t,
        Some("big"),
        &json!({"custom_cents": 100_001, "payment_token": pm}),
    );
    assert_invalid(st, &v, "custom_cents");
}

#[test]
fn cards_that_decline_every_charge_are_declined_when_saved() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let before = state(&s, &t);
    let (st, v) = s.call(
        "POST",
        "/v1/payment-methods",
        Some(&t),
        Some(card(DECLINED)),
    );
    assert_eq!(st, 402, "{v}");
    assert_eq!(v["error"]["code"], "card_declined");
    let (st, v) = s.call(
        "POST",
        "/v1/payment-methods",
        Some(&t),
        Some(card(NO_FUNDS)),
    );
    assert_eq!(st, 402, "{v}");
    assert_eq!(v["error"]["code"], "card_declined");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("insufficient funds"),
        "{v}"
    );
    assert_eq!(state(&s, &t), before);
}

#[test]
fn a_0341_card_saves_but_its_purchases_are_declined_and_change_nothing() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, saved) = s.call(
        "POST",
        "/v1/payment-methods",
        Some(&t),
        Some(card(DECLINES_LATER)),
    );
    assert_eq!(st, 201, "{saved}");
    assert_eq!(saved["last4"], "0341");
    let bad = saved["payment_token"].as_str().unwrap().to_owned();
    let before = state(&s, &t);
    let (st, v) = buy(&s, &t, Some("k"), &pack(&bad));
    assert_eq!(st, 402, "{v}");
    assert_eq!(v["error"]["code"], "card_declined");
    // The attempt is on record as failed; nothing else moved.
    let (buckets, entries, notices_seen, listed) = state(&s, &t);
    assert_eq!(
        (buckets, entries, notices_seen),
        (before.0, before.1, before.2)
    );
    assert_eq!(listed, before.3 + 1);
    let failed = purchases(&s, &t);
    assert_eq!(failed[0]["status"], "failed", "{failed:?}");
    assert!(failed[0]["completed_at"].is_string());
    // A failed purchase frees its key: the same key with another card is a new purchase.
    let good = save(&s, &t, VISA);
    let (st, v) = buy(&s, &t, Some("k"), &pack(&good));
    assert_eq!(st, 201, "{v}");
    let listed = purchases(&s, &t);
    let statuses: Vec<_> = listed
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "succeeded"]);
}

#[test]
fn bad_card_input_is_refused_naming_the_field_and_changes_nothing() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let before = state(&s, &t);
    let cases = [
        (
            json!({"number": "4242424242424241", "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
            "number",
        ),
        (
            json!({"number": "4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
            "number",
        ),
        (
            json!({"number": "4242abcd42424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
            "number",
        ),
        (
            json!({"number": 4242424242424242_u64, "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
            "number",
        ),
        (
            json!({"number": VISA, "exp_month": 10, "exp_year": 2026, "cvc": "123"}),
            "exp_year",
        ),
        (
            json!({"number": VISA, "exp_month": 12, "exp_year": 2025, "cvc": "123"}),
            "exp_year",
        ),
        (
            json!({"number": VISA, "exp_month": 13, "exp_year": 2030, "cvc": "123"}),
            "exp_month",
        ),
        (
            json!({"number": VISA, "exp_month": 0, "exp_year": 2030, "cvc": "123"}),
            "exp_month",
        ),
        (
            json!({"number": VISA, "exp_month": "12", "exp_year": 2030, "cvc": "123"}),
            "exp_month",
        ),
        (
            json!({"number": VISA, "exp_month": -1, "exp_year": 2030, "cvc": "123"}),
            "exp_month",
        ),
        (
            json!({"number": VISA, "exp_month": 12, "exp_year": "2030", "cvc": "123"}),
            "exp_year",
        ),
        (
            json!({"number": VISA, "exp_month": 12, "exp_year": 2030, "cvc": "12"}),
            "cvc",
        ),
        (
            json!({"number": VISA, "exp_month": 12, "exp_year": 2030, "cvc": "12a"}),
            "cvc",
        ),
        (
            json!({"number": VISA, "exp_month": 12, "exp_year": 2030, "cvc": 123}),
            "cvc",
        ),
        (
            json!({"number": VISA, "exp_month": 12, "exp_year": 2030}),
            "cvc",
        ),
        (
            json!({"number": VISA, "exp_month": 12, "exp_year": 2030, "cvc": "123", "name": "x"}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let (st, v) = s.call("POST", "/v1/payment-methods", Some(&t), Some(body.clone()));
        assert_invalid(st, &v, field);
        // The number never comes back, not even in an error about its type.
        assert!(!v.to_string().contains(VISA), "{v}");
    }
    let (st, v) = s.raw("POST", "/v1/payment-methods", Some(&t), "{\"number\": ");
    assert_eq!(st, 400, "{v}");
    // The card of the current month is still valid (the clock is at 2026-11).
    let (st, v) = s.call(
        "POST",
        "/v1/payment-methods",
        Some(&t),
        Some(json!({"number": "4242 4242 4242 4242", "exp_month": 11, "exp_year": 2026, "cvc": "1234"})),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(state(&s, &t), before);
}

#[test]
fn purchase_requests_are_checked_before_any_charge() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (_, other) = s.account("pro", "UTC");
    let pm = save(&s, &t, VISA);
    let theirs = save(&s, &other, VISA);
    let before = state(&s, &t);

    let (st, v) = buy(&s, &t, None, &pack(&pm));
    assert_invalid(st, &v, "Idempotency-Key");
    let (st, v) = buy(&s, &t, Some(""), &pack(&pm));
    assert_invalid(st, &v, "Idempotency-Key");
    let long = "k".repeat(201);
    let (st, v) = buy(&s, &t, Some(&long), &pack(&pm));
    assert_invalid(st, &v, "Idempotency-Key");
    let both = json!({"pack": "pack_500", "custom_cents": 1000, "payment_token": pm});
    let (st, v) = buy(&s, &t, Some("k"), &both);
    assert_invalid(st, &v, "pack");
    let neither = json!({"payment_token": pm});
    let (st, v) = buy(&s, &t, Some("k"), &neither);
    assert_invalid(st, &v, "pack");
    let unknown = json!({"pack": "pack_7", "payment_token": pm});
    let (st, v) = buy(&s, &t, Some("k"), &unknown);
    assert_invalid(st, &v, "pack");
    let (st, v) = buy(&s, &t, Some("k"), &json!({"pack": "pack_500"}));
    assert_invalid(st, &v, "payment_token");
    let (st, v) = buy(
        &s,
        &t,
        Some("k"),
        &json!({"pack": "pack_500", "payment_token": pm, "x": 1}),
    );
    assert_invalid(st, &v, "x");
    let (st, v) = buy(
        &s,
        &t,
        Some("k"),
        &json!({"custom_cents": "1000", "payment_token": pm}),
    );
    assert_invalid(st, &v, "custom_cents");
    let (st, v) = buy(&s, &t, Some("k"), &pack("pm_not_a_token"));
    assert_eq!(st, 402, "{v}");
    assert_eq!(v["error"]["code"], "payment_method_required");
    // Another account's card is not this account's to charge.
    let (st, v) = buy(&s, &t, Some("k"), &pack(&theirs));
    assert_eq!(st, 402, "{v}");
    assert_eq!(v["error"]["code"], "payment_method_required");
    assert_eq!(state(&s, &t), before);
    let (st, _) = buy(&s, &t, Some("k"), &pack(&pm));
    assert_eq!(st, 201, "the key was not used up by the refused requests");
}

#[test]
fn a_retried_purchase_charges_once() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let pm = save(&s, &t, VISA);
    let (st, first) = buy(&s, &t, Some("double-click"), &pack(&pm));
    assert_eq!(st, 201, "{first}");
    s.advance(60);
    let (st, again) = buy(&s, &t, Some("double-click"), &pack(&pm));
    assert_eq!(st, 201, "{again}");
    assert_eq!(again, first);
    assert_eq!(purchases(&s, &t).len(), 1);
    assert_eq!(s.available(&t), 1005 * CREDIT);

    let other = json!({"pack": "pack_2500", "payment_token": pm});
    let (st, v) = buy(&s, &t, Some("double-click"), &other);
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "idempotency_conflict");
    assert_eq!(purchases(&s, &t).len(), 1);
    assert_eq!(s.available(&t), 1005 * CREDIT);
}

/// Found by schemathesis: an admin grant named after a purchase (whose credits are a lot
/// with the purchase's id) was a 500 from the database's unique key. It is a 409 that
/// names the id, and nothing moves; the same holds for a purchase whose credits are spent.
#[test]
fn an_admin_grant_cannot_take_a_purchase_id() {
    let s = Server::start();
    let (account, t) = s.account("free", "UTC");
    let pm = save(&s, &t, VISA);
    let (st, p) = buy(&s, &t, Some("k"), &pack(&pm));
    assert_eq!(st, 201, "{p}");
    let purchase = p["id"].as_str().unwrap().to_owned();
    let grant_named_after_it = || {
        s.admin(
            "POST",
            &format!("/v1/admin/accounts/{account}/grants"),
            json!({"id": purchase, "amount": CREDIT, "reason": "admin"}),
        )
    };
    let before = state(&s, &t);
    let (st, v) = grant_named_after_it();
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "conflict", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("id:") && message.contains(&purchase),
        "{message}"
    );
    assert_eq!(state(&s, &t), before);

    // Spent to nothing, the lot leaves the ledger's memory but not the record.
    let all = u64::try_from(s.available(&t) / CREDIT).unwrap();
    let (st, v) = s.call("POST", "/v1/usage", Some(&t), Some(spend("u1", all)));
    assert_eq!(st, 201, "{v}");
    assert_eq!(s.available(&t), 0);
    let before = state(&s, &t);
    let (st, v) = grant_named_after_it();
    assert_eq!(st, 409, "{v}");
    assert_eq!(state(&s, &t), before);
    s.assert_balance_is_ledger_sum(&t);
    assert!(s.check_db().0);
}

#[test]
fn fifty_parallel_retries_of_one_purchase_make_one_charge() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let pm = save(&s, &t, VISA);
    let before = s.available(&t);
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| scope.spawn(|| buy(&s, &t, Some("same-key"), &pack(&pm))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (st, v) in &answers {
        assert_eq!(*st, 201, "{v}");
        assert_eq!(v, &answers[0].1);
    }
    assert_eq!(purchases(&s, &t).len(), 1);
    assert_eq!(s.available(&t), before + 500 * CREDIT);
    assert_eq!(notices_of(&s, &t, "purchase").len(), 1);
    s.assert_balance_is_ledger_sum(&t);
    assert!(s.check_db().0);
}

#[test]
fn auto_refill_settings_are_validated_and_read_back() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let fresh = s.get("/v1/auto-refill", &t);
    assert_eq!(
        fresh,
        json!({"enabled": false, "threshold": null, "pack": null, "payment_token_last4": null,
               "monthly_limit": null, "refills_this_month": 0, "disabled_reason": null})
    );
    let pm = save(&s, &t, VISA);
    let good = json!({"enabled": true, "threshold": 100 * CREDIT, "pack": "pack_500", "payment_token": pm, "monthly_limit": 3});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let (st, v) = set_auto_refill(&s, &t, with("threshold", json!(-1)));
    assert_invalid(st, &v, "threshold");
    let (st, v) = set_auto_refill(&s, &t, with("monthly_limit", json!(0)));
    assert_invalid(st, &v, "monthly_limit");
    let (st, v) = set_auto_refill(&s, &t, with("monthly_limit", json!(101)));
    assert_invalid(st, &v, "monthly_limit");
    let (st, v) = set_auto_refill(&s, &t, with("pack", json!("pack_1")));
    assert_invalid(st, &v, "pack");
    let (st, v) = set_auto_refill(&s, &t, with("enabled", json!("yes")));
    assert_invalid(st, &v, "enabled");
    let mut no_token = good.clone();
    no_token.as_object_mut().unwrap().remove("payment_token");
    let (st, v) = set_auto_refill(&s, &t, no_token.clone());
    assert_invalid(st, &v, "payment_token");
    let mut off_no_token = no_token.clone();
    off_no_token["enabled"] = json!(false);
    let (st, v) = set_auto_refill(&s, &t, off_no_token.clone());
    assert_invalid(st, &v, "payment_token");
    let (st, v) = set_auto_refill(&s, &t, with("payment_token", json!("pm_unknown")));
    assert_eq!(st, 402, "{v}");
    assert_eq!(v["error"]["code"], "payment_method_required");
    assert_eq!(s.get("/v1/auto-refill", &t), fresh);

    let (st, v) = set_auto_refill(&s, &t, good.clone());
    assert_eq!(st, 200, "{v}");
    let expected = json!({"enabled": true, "threshold": 100 * CREDIT, "pack": "pack_500",
        "payment_token_last4": "4242", "monthly_limit": 3, "refills_this_month": 0, "disabled_reason": null});
    assert_eq!(v, expected);
    assert_eq!(s.get("/v1/auto-refill", &t), expected);
    // Turning it off needs no token once a card is set.
    let (st, v) = set_auto_refill(&s, &t, off_no_token);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["enabled"], false);
    assert_eq!(v["payment_token_last4"], "4242");
}

#[test]
fn parallel_charges_crossing_the_threshold_buy_exactly_one_refill() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let pm = save(&s, &t, VISA);
    let body = json!({"enabled": true, "threshold": 400 * CREDIT, "pack": "pack_500", "payment_token": pm, "monthly_limit": 5});
    let (st, v) = set_auto_refill(&s, &t, body);
    assert_eq!(st, 200, "{v}");
    // 505 credits, twenty parallel charges of 10 cross 400 once; whenever the refill lands,
    // the balance stays above 400 afterwards, so there is no second crossing.
    std::thread::scope(|scope| {
        for i in 0..20 {
            let (s, t) = (&s, &t);
            scope.spawn(move || {
                let (st, v) = s.call(
                    "POST",
                    "/v1/usage",
                    Some(t),
                    Some(spend(&format!("u{i}"), 10)),
                );
                assert_eq!(st, 201, "{v}");
            });
        }
    });
    eventually("the refill", || s.available(&t) == 805 * CREDIT);
    let refills: Vec<Value> = purchases(&s, &t)
        .into_iter()
        .filter(|p| p["source"] == "auto_refill")
        .collect();
    assert_eq!(refills.len(), 1, "{refills:?}");
    assert_eq!(refills[0]["status"], "succeeded");
    assert_eq!(refills[0]["pack"], "pack_500");
    assert_eq!(refills[0]["credits"], json!(500 * CREDIT));
    assert_eq!(refills[0]["price_cents"], 2000);
    let charged = notices_of(&s, &t, "refill_charged");
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0]["data"]["purchase_id"], refills[0]["id"]);
    assert_eq!(charged[0]["data"]["credits"], json!(500 * CREDIT));
    assert_eq!(charged[0]["data"]["price_cents"], 2000);
    let entries: Vec<Value> = s
        .ledger(&t)
        .into_iter()
        .filter(|e| e["type"] == "refill")
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["bucket"], "purchased");
    let settings = s.get("/v1/auto-refill", &t);
    assert_eq!(settings["refills_this_month"], 1);
    assert_eq!(settings["enabled"], true);
    s.assert_balance_is_ledger_sum(&t);
    assert!(s.check_db().0);
}

#[test]
fn the_refill_rearms_only_once_the_balance_is_back_above_the_threshold() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let pm = save(&s, &t, VISA);
    let body = json!({"enabled": true, "threshold": 500 * CREDIT, "pack": "pack_500", "payment_token": pm, "monthly_limit": 2});
    set_auto_refill(&s, &t, body);
    let (st, _) = s.call("POST", "/v1/usage", Some(&t), Some(spend("a", 10)));
    assert_eq!(st, 201);
    eventually("the first refill", || s.available(&t) == 995 * CREDIT);
    // 995 ≥ 500: armed again; going below buys the second and last of the month.
    let (st, _) = s.call("POST", "/v1/usage", Some(&t), Some(spend("b", 500)));
    assert_eq!(st, 201);
    eventually("the second refill", || s.available(&t) == 995 * CREDIT);
    let (st, _) = s.call("POST", "/v1/usage", Some(&t), Some(spend("c", 500)));
    assert_eq!(st, 201);
    assert_eq!(s.get("/v1/auto-refill", &t)["refills_this_month"], 2);
    let refills = purchases(&s, &t)
        .into_iter()
        .filter(|p| p["source"] == "auto_refill")
        .count();
    assert_eq!(refills, 2, "the monthly limit holds");
    assert_eq!(s.available(&t), 495 * CREDIT);
}

#[test]
fn a_declined_refill_turns_auto_refill_off_and_tells_the_user() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let bad = save(&s, &t, DECLINES_LATER);
    let body = json!({"enabled": true, "threshold": 500 * CREDIT, "pack": "pack_500", "payment_token": bad, "monthly_limit": 5});
    let (st, v) = set_auto_refill(&s, &t, body);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["payment_token_last4"], "0341");
    let (st, _) = s.call("POST", "/v1/usage", Some(&t), Some(spend("u1", 10)));
    assert_eq!(st, 201);
    eventually("the refill_failed notice", || {
        !notices_of(&s, &t, "refill_failed").is_empty()
    });
    let failed = notices_of(&s, &t, "refill_failed");
    assert_eq!(failed.len(), 1);
    assert!(!failed[0]["data"]["reason"].as_str().unwrap().is_empty());
    let settings = s.get("/v1/auto-refill", &t);
    assert_eq!(settings["enabled"], false);
    assert_eq!(settings["disabled_reason"], failed[0]["data"]["reason"]);
    let listed = purchases(&s, &t);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["source"], "auto_refill");
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(listed[0]["failure_reason"], failed[0]["data"]["reason"]);
    assert_eq!(s.available(&t), 495 * CREDIT);
    assert!(s.ledger(&t).iter().all(|e| e["type"] != "refill"));

    // Off means off: more spending below the threshold buys nothing.
    let (st, _) = s.call("POST", "/v1/usage", Some(&t), Some(spend("u2", 10)));
    assert_eq!(st, 201);
    assert_eq!(purchases(&s, &t).len(), 1);
    assert_eq!(notices_of(&s, &t, "refill_failed").len(), 1);

    // Turning it back on with a good card clears the reason.
    let good = save(&s, &t, VISA);
    let body = json!({"enabled": true, "threshold": 500 * CREDIT, "pack": "pack_500", "payment_token": good, "monthly_limit": 5});
    let (st, v) = set_auto_refill(&s, &t, body);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["disabled_reason"], Value::Null);
    assert_eq!(v["payment_token_last4"], "4242");
    let (st, _) = s.call("POST", "/v1/usage", Some(&t), Some(spend("u3", 1)));
    assert_eq!(st, 201);
    eventually("the refill with the good card", || {
        s.available(&t) == 984 * CREDIT
    });
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn the_database_never_holds_a_card_number_or_cvc() {
    if sqlite_only("the SQLite files searched for card numbers") {
        return;
    }
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let cvc = "7319";
    let numbers = [VISA, DECLINED, NO_FUNDS, DECLINES_LATER];
    for n in numbers {
        s.call(
            "POST",
            "/v1/payment-methods",
            Some(&t),
            Some(json!({"number": n, "exp_month": 12, "exp_year": 2030, "cvc": cvc})),
        );
    }
    // Refused input too.
    s.call(
        "POST",
        "/v1/payment-methods",
        Some(&t),
        Some(json!({"number": VISA, "exp_month": 12, "exp_year": 2030, "cvc": cvc, "extra": true})),
    );
    let pm = save(&s, &t, VISA);
    let (st, _) = buy(&s, &t, Some("k"), &pack(&pm));
    assert_eq!(st, 201);
    // Every file the server keeps: the ledger's database and WAL, and the gateway's.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("server.db")
        {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(bytes.len() > 4096);
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    for n in numbers {
        assert!(!contains(n), "the database holds {n}");
    }
    assert!(!contains(cvc), "the database holds the cvc");
    // The payment token is stored only as a hash.
    assert!(!contains(&pm), "the database holds the payment token");
}

/// Starts the server with `--demo` on `dir`; returns it and the demo account's token.
fn start_demo(dir: tempfile::TempDir) -> (Server, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_creditbar-server"))
        .arg("--db")
        .arg(dir.path().join("server.db"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN,
            "--rate-limit",
            "0",
        ])
        .args(["--test-clock", "--demo"])
        .env("CREDITBAR_TEST_CLOCK_START", START)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    let token = loop {
        let line = lines
            .next()
            .expect("server exited before the demo token")
            .unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            base = Some(addr.trim().to_owned());
        }
        if let Some(t) = line.strip_prefix("demo account token: ") {
            break t.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    (
        Server {
            child,
            base: base.unwrap(),
            dir,
            http,
        },
        token,
    )
}

#[test]
fn the_demo_account_has_a_month_of_usage_a_purchase_and_auto_refill() {
    let (s, t) = start_demo(tempfile::tempdir().unwrap());
    let account = s.get("/v1/account", &t);
    assert_eq!(account["email"], "demo@creditbar.dev");
    assert_eq!(account["plan"], "pro");
    let keys = |group: &str| -> Vec<Value> {
        s.get(&format!("/v1/usage?group_by={group}"), &t)["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(keys("project").len(), 5);
    assert_eq!(keys("thread").len(), 15);
    assert_eq!(keys("model").len(), 3);
    let days = keys("day");
    assert!(days.len() >= 20, "{} days of usage", days.len());
    assert_eq!(
        days.first().unwrap()["key"],
        "2026-10-23",
        "a month back, in Paris time"
    );
    assert_eq!(days.last().unwrap()["key"], "2026-11-21");
    let charged: i64 = days.iter().map(|d| d["charged"].as_i64().unwrap()).sum();
    let spent: i64 = -s
        .ledger(&t)
        .iter()
        .filter(|e| e["type"] == "usage")
        .map(|e| e["amount"].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(charged, spent, "every usage event is a real charge");
    let b = s.get("/v1/balance", &t);
    assert_eq!(b["buckets"]["bonus"]["available"], json!(100 * CREDIT));
    assert!(
        b["available"].as_i64().unwrap() > 300 * CREDIT,
        "a healthy balance: {b}"
    );
    let bought = purchases(&s, &t);
    assert_eq!(bought.len(), 1);
    assert_eq!(bought[0]["pack"], "pack_500");
    let refill = s.get("/v1/auto-refill", &t);
    assert_eq!(refill["enabled"], true);
    assert_eq!(refill["payment_token_last4"], "4242");
    s.assert_balance_is_ledger_sum(&t);

    // Starting with --demo again reuses the account.
    let dir = s.kill();
    let (s, again) = start_demo(dir);
    assert_ne!(again, t);
    assert_eq!(s.get("/v1/account", &again)["id"], account["id"]);
    assert_eq!(s.get("/v1/balance", &again)["available"], b["available"]);
    assert!(s.check_db().0);
}

#[test]
fn purchases_and_usage_in_parallel_never_fail_each_other() {
    // The gateway's writes once shared the ledger's file and made the writer's batches
    // fail under this mix (503 for every request of the batch).
    let s = Server::start();
    let (_, t) = s.account("team", "UTC");
    let pm = save(&s, &t, VISA);
    let before = s.available(&t);
    std::thread::scope(|scope| {
        for w in 0..6 {
            let (s, t, pm) = (&s, &t, &pm);
            scope.spawn(move || {
                for i in 0..30 {
                    let (st, v) = if w % 2 == 0 {
                        buy(s, t, Some(&format!("k{w}-{i}")), &pack(pm))
                    } else {
                        let body = usage(&format!("u{w}-{i}"), "lite", 0, 0, 20);
                        s.call("POST", "/v1/usage", Some(t), Some(body))
                    };
                    assert_eq!(st, 201, "{v}");
                }
            });
        }
    });
    assert_eq!(purchases(&s, &t).len(), 90);
    assert_eq!(s.available(&t), before + 90 * 500 * CREDIT - 90 * 1000);
    s.assert_balance_is_ledger_sum(&t);
    assert!(s.check_db().0);
}
