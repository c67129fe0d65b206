//! Every endpoint of api.md this server owns, on its happy path and its documented refusals,
//! seen from outside: the real binary, real HTTP, the test clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};

/// 30 days, the length of the first `pro` period opened at `START` (Nov 21 → Dec 21).
const PERIOD: i64 = 30 * 86_400;

fn bucket(balance: &Value, name: &str) -> i64 {
    balance["buckets"][name]["available"].as_i64().unwrap()
}

#[test]
fn health_answers_ok_without_a_token() {
    let s = Server::start();
    let (st, v) = s.call("GET", "/v1/health", None, None);
    assert_eq!((st, v), (200, json!({"status": "ok"})));
}

#[test]
fn the_openapi_document_is_3_1_and_lists_every_path_of_the_contract() {
    let s = Server::start();
    let (st, doc) = s.call("GET", "/v1/openapi.json", None, None);
    assert_eq!(st, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    // api.md's table. `/v1/openapi.json` itself is left out: the document is served beside
    // the router and does not describe itself.
    let contract = [
        ("get", "/v1/health"),
        ("get", "/v1/catalog"),
        ("post", "/v1/admin/accounts"),
        ("post", "/v1/admin/accounts/{id}/tokens"),
        ("put", "/v1/admin/accounts/{id}/plan"),
        ("post", "/v1/admin/accounts/{id}/grants"),
        ("post", "/v1/admin/usage-reviews/{id}/resolve"),
        ("post", "/v1/admin/clock"),
        ("get", "/v1/account"),
        ("patch", "/v1/account"),
        ("get", "/v1/balance"),
        ("get", "/v1/ledger"),
        ("get", "/v1/usage"),
        ("post", "/v1/usage"),
        ("post", "/v1/holds"),
        ("post", "/v1/holds/{id}/settle"),
        ("post", "/v1/holds/{id}/void"),
        ("post", "/v1/payment-methods"),
        ("post", "/v1/purchases"),
        ("get", "/v1/purchases"),
        ("get", "/v1/auto-refill"),
        ("put", "/v1/auto-refill"),
        ("post", "/v1/usage-reviews"),
        ("get", "/v1/usage-reviews"),
        ("get", "/v1/notices"),
        ("get", "/v1/events"),
    ];
    let missing: Vec<String> = contract
        .iter()
        .filter(|(m, p)| doc["paths"][p][m].is_null())
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(missing.is_empty(), "not in /v1/openapi.json: {missing:?}");
}

/// The fields that name a plan, pack or model list the served catalog's ids, so a client
/// reading the document (schemathesis among them) knows what is accepted.
#[test]
fn the_openapi_document_lists_the_catalogs_ids_where_a_request_names_one() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    let catalog = s.get("/v1/catalog", &t);
    let ids = |list: &str| -> Vec<Value> {
        catalog[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].clone())
            .collect()
    };
    let (_, doc) = s.call("GET", "/v1/openapi.json", None, None);
    let listed = |schema: &str, field: &str| -> Vec<Value> {
        let values = &doc["components"]["schemas"][schema]["properties"][field]["enum"];
        values
            .as_array()
            .unwrap_or_else(|| panic!("{schema}.{field}: no enum"))
            .clone()
    };
    let with_null = |mut v: Vec<Value>| {
        v.push(Value::Null);
        v
    };
    assert_eq!(listed("UsageRequest", "model"), ids("models"));
    assert_eq!(listed("SettleRequest", "model"), ids("models"));
    assert_eq!(listed("ReviewRequest", "model"), with_null(ids("models")));
    assert_eq!(listed("CreateAccountRequest", "plan"), ids("plans"));
    assert_eq!(listed("PlanRequest", "plan"), ids("plans"));
    assert_eq!(listed("PurchaseRequest", "pack"), with_null(ids("packs")));
    assert_eq!(listed("AutoRefillRequest", "pack"), ids("packs"));
    assert_eq!(ids("models").len(), 3, "{catalog}");
}

#[test]
fn the_catalog_is_the_one_of_the_contract() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    let c = s.get("/v1/catalog", &t);
    let plans: Vec<Value> = c["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!([p["id"], p["subscription"], p["daily"], p["price_cents"]]))
        .collect();
    assert_eq!(
        plans,
        vec![
            json!(["free", 100 * CREDIT, 5 * CREDIT, 0]),
            json!(["pro", 500 * CREDIT, 5 * CREDIT, 2000]),
            json!(["pro_annual", 6000 * CREDIT, 5 * CREDIT, 20000]),
            json!(["team", 2500 * CREDIT, 10 * CREDIT, 10000]),
        ]
    );
    let packs: Vec<Value> = c["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!([p["id"], p["credits"], p["price_cents"]]))
        .collect();
    assert_eq!(
        packs,
        vec![
            json!(["pack_500", 500 * CREDIT, 2000]),
            json!(["pack_2500", 2500 * CREDIT, 10000]),
            json!(["pack_12500", 12500 * CREDIT, 50000]),
        ]
    );
    assert_eq!(c["custom"]["credits_per_dollar"], json!(25));
    assert_eq!(c["custom"]["min_cents"], json!(500));
    assert_eq!(c["custom"]["max_cents"], json!(100000));
    let models: Vec<Value> = c["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            json!([
                m["id"],
                m["input_rate"],
                m["output_rate"],
                m["cached_input_rate"]
            ])
        })
        .collect();
    assert_eq!(
        models,
        vec![
            json!(["lite", 50, 50, 0]),
            json!(["standard", 100, 100, 0]),
            json!(["premium", 300, 300, 0]),
        ]
    );
}

#[test]
fn a_new_account_gets_its_daily_and_subscription_grants_at_once() {
    let s = Server::start();
    let (st, v) = s.admin(
        "POST",
        "/v1/admin/accounts",
        json!({"email": "ada@example.com", "plan": "pro", "timezone": "Europe/Paris"}),
    );
    assert_eq!(st, 201, "{v}");
    let token = v["token"].as_str().unwrap();
    let a = &v["account"];
    assert_eq!(a["email"], json!("ada@example.com"));
    assert_eq!(a["plan"], json!("pro"));
    assert_eq!(a["timezone"], json!("Europe/Paris"));
    for field in ["created_at", "billing_anchor", "period_start"] {
        assert_eq!(time_of(&a[field]), utc(START), "{field}");
    }
    assert_eq!(time_of(&a["period_end"]), utc("2026-12-21T18:00:00Z"));
    // Midnight in Paris (UTC+1 in November).
    assert_eq!(time_of(&a["next_daily_reset"]), utc("2026-11-21T23:00:00Z"));
    assert_eq!(s.get("/v1/account", token), *a);

    let ledger = s.ledger(token);
    let grants: Vec<Value> = ledger
        .iter()
        .map(|e| json!([e["type"], e["bucket"], e["amount"]]))
        .collect();
    assert_eq!(
        grants,
        vec![
            json!(["grant", "daily", 5 * CREDIT]),
            json!(["grant", "subscription", 500 * CREDIT])
        ]
    );
    let b = s.get("/v1/balance", token);
    assert_eq!(bucket(&b, "daily"), 5 * CREDIT);
    assert_eq!(bucket(&b, "subscription"), 500 * CREDIT);
    assert_eq!(b["available"], json!(505 * CREDIT));
    assert_eq!(
        time_of(&b["buckets"]["daily"]["next_reset"]),
        utc("2026-11-21T23:00:00Z")
    );
    assert_eq!(
        time_of(&b["buckets"]["subscription"]["next_reset"]),
        utc("2026-12-21T18:00:00Z")
    );
    s.assert_balance_is_ledger_sum(token);
}

#[test]
fn a_new_token_works_and_the_old_one_keeps_working() {
    let s = Server::start();
    let (id, old) = s.account("pro", "UTC");
    let (st, v) = s.admin(
        "POST",
        &format!("/v1/admin/accounts/{id}/tokens"),
        json!({}),
    );
    assert_eq!(st, 201, "{v}");
    let new = v["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(s.get("/v1/account", new)["id"], json!(id));
    assert_eq!(s.get("/v1/account", &old)["id"], json!(id));

    let (st, v) = s.admin("POST", "/v1/admin/accounts/acc_nobody/tokens", json!({}));
    assert_error(st, &v, 404, "not_found");
}

#[test]
fn an_upgrade_mid_period_grants_the_prorated_difference_at_once() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    let elapsed = 7 * 86_400 + 12_345;
    s.advance(elapsed);
    let before = s.get("/v1/balance", &t);

    let (st, a) = s.admin(
        "PUT",
        &format!("/v1/admin/accounts/{id}/plan"),
        json!({"plan": "team"}),
    );
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["plan"], json!("team"));
    assert_eq!(a["pending_plan"], Value::Null);

    // floor((2500 − 500 credits) × remaining / length), remaining = 30 d − 617,145 s.
    let prorated = 1_523_807_870;
    assert_eq!(
        prorated,
        (2000 * CREDIT as i128 * (PERIOD - elapsed) as i128 / PERIOD as i128) as i64
    );
    let last = s.ledger(&t).last().unwrap().clone();
    assert_eq!(last["type"], json!("grant"));
    assert_eq!(last["bucket"], json!("subscription"));
    assert_eq!(last["amount"], json!(prorated));
    let after = s.get("/v1/balance", &t);
    assert_eq!(
        bucket(&after, "subscription"),
        bucket(&before, "subscription") + prorated
    );
    assert_eq!(s.get("/v1/account", &t)["plan"], json!("team"));

    // The new plan's daily allowance from the next daily reset: team gives 10.
    s.set_clock("2026-11-29T00:00:00Z");
    assert_eq!(bucket(&s.get("/v1/balance", &t), "daily"), 10 * CREDIT);
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn a_downgrade_waits_for_the_period_end() {
    let s = Server::start();
    let (id, t) = s.account("team", "UTC");
    let (st, a) = s.admin(
        "PUT",
        &format!("/v1/admin/accounts/{id}/plan"),
        json!({"plan": "pro"}),
    );
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["plan"], json!("team"));
    assert_eq!(a["pending_plan"], json!("pro"));
    assert_eq!(
        bucket(&s.get("/v1/balance", &t), "subscription"),
        2500 * CREDIT
    );

    s.advance(PERIOD - 1);
    assert_eq!(s.get("/v1/account", &t)["plan"], json!("team"));
    s.advance(1);
    let a = s.get("/v1/account", &t);
    assert_eq!(a["plan"], json!("pro"));
    assert_eq!(a["pending_plan"], Value::Null);
    assert_eq!(
        bucket(&s.get("/v1/balance", &t), "subscription"),
        500 * CREDIT
    );
    let subscription: Vec<Value> = s
        .ledger(&t)
        .iter()
        .filter(|e| e["bucket"] == json!("subscription"))
        .map(|e| json!([e["type"], e["amount"]]))
        .collect();
    assert_eq!(
        subscription,
        vec![
            json!(["grant", 2500 * CREDIT]),
            json!(["expire", -2500 * CREDIT]),
            json!(["grant", 500 * CREDIT]),
        ]
    );
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn a_plan_change_for_an_unknown_account_is_not_found() {
    let s = Server::start();
    let (st, v) = s.admin(
        "PUT",
        "/v1/admin/accounts/acc_nobody/plan",
        json!({"plan": "team"}),
    );
    assert_error(st, &v, 404, "not_found");
}

#[test]
fn an_admin_grant_lands_in_bonus_and_a_retry_grants_once() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    let path = format!("/v1/admin/accounts/{id}/grants");
    let body = json!({"id": "welcome", "amount": 7 * CREDIT, "reason": "promo", "note": "hello"});
    let (st, g) = s.admin("POST", &path, body.clone());
    assert_eq!(st, 201, "{g}");
    assert_eq!(g["id"], json!("welcome"));
    assert_eq!(g["bucket"], json!("bonus"));
    assert_eq!(g["amount"], json!(7 * CREDIT));
    assert_eq!(g["reason"], json!("promo"));
    assert_eq!(g["note"], json!("hello"));
    assert_eq!(g["expires_at"], Value::Null);
    assert_eq!(bucket(&s.get("/v1/balance", &t), "bonus"), 7 * CREDIT);

    let (st, again) = s.admin("POST", &path, body);
    assert_eq!((st, &again), (201, &g));
    assert_eq!(bucket(&s.get("/v1/balance", &t), "bonus"), 7 * CREDIT);

    let other = json!({"id": "welcome", "amount": 8 * CREDIT, "reason": "promo", "note": "hello"});
    let (st, v) = s.admin("POST", &path, other);
    assert_error(st, &v, 409, "idempotency_conflict");
    assert_eq!(bucket(&s.get("/v1/balance", &t), "bonus"), 7 * CREDIT);
    assert_eq!(entries_for(&s.ledger(&t), "promo").len(), 1);
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn a_grant_with_an_expiry_leaves_through_an_expire_entry_when_it_is_due() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    let path = format!("/v1/admin/accounts/{id}/grants");
    let body = json!({"id": "apology", "amount": 3 * CREDIT, "reason": "compensation",
                      "expires_at": "2026-11-21T19:00:00Z"});
    let (st, g) = s.admin("POST", &path, body);
    assert_eq!(st, 201, "{g}");
    assert_eq!(time_of(&g["expires_at"]), utc("2026-11-21T19:00:00Z"));
    assert_eq!(bucket(&s.get("/v1/balance", &t), "bonus"), 3 * CREDIT);

    s.set_clock("2026-11-21T18:59:59Z");
    assert_eq!(bucket(&s.get("/v1/balance", &t), "bonus"), 3 * CREDIT);
    s.set_clock("2026-11-21T19:00:00Z");
    assert_eq!(bucket(&s.get("/v1/balance", &t), "bonus"), 0);
    let last = s.ledger(&t).last().unwrap().clone();
    assert_eq!(last["type"], json!("expire"));
    assert_eq!(last["grant_id"], json!("apology"));
    assert_eq!(last["amount"], json!(-3 * CREDIT));
    assert_eq!(time_of(&last["at"]), utc("2026-11-21T19:00:00Z"));
    s.assert_balance_is_ledger_sum(&t);
}

/// An extension of api.md's ledger entry: an entry that opens a lot carries that lot's
/// exact expiry (`null`: never), so a client can show when bonus credits leave.
#[test]
fn ledger_entries_that_open_a_lot_carry_its_expiry() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    let path = format!("/v1/admin/accounts/{id}/grants");
    let (st, g) = s.admin(
        "POST",
        &path,
        json!({"id": "apology", "amount": 3 * CREDIT, "reason": "compensation",
               "expires_at": "2026-11-25T19:00:00Z"}),
    );
    assert_eq!(st, 201, "{g}");
    let (st, g) = s.admin(
        "POST",
        &path,
        json!({"id": "welcome", "amount": 2 * CREDIT, "reason": "promo"}),
    );
    assert_eq!(st, 201, "{g}");
    let ledger = s.ledger(&t);
    let entry = |grant: &str| {
        ledger
            .iter()
            .find(|e| e["grant_id"] == json!(grant) && e["type"] == json!("grant"))
            .unwrap_or_else(|| panic!("no grant entry {grant} in {ledger:?}"))
            .clone()
    };
    assert_eq!(
        time_of(&entry("apology")["expires_at"]),
        utc("2026-11-25T19:00:00Z")
    );
    // Never expires: present and null, not absent.
    let welcome = entry("welcome");
    assert_eq!(welcome.get("expires_at"), Some(&Value::Null), "{welcome}");

    // A charge opens no lot: no expiry on it.
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u1", "lite", 0, 0, 1000)),
    );
    assert_eq!(st, 201, "{v}");
    let charge = s
        .ledger(&t)
        .into_iter()
        .find(|e| e["type"] == json!("usage"));
    let charge = charge.expect("a usage entry");
    assert!(charge.get("expires_at").is_none(), "{charge}");
    s.assert_balance_is_ledger_sum(&t);
}

/// The balance's `Date` is the server's clock, on a 200 and a 304 alike: clients follow
/// the server's time from it (countdowns, the "expiring soon" warning), and under
/// `--test-clock` that is the test's time.
#[test]
fn the_balance_is_dated_by_the_servers_clock() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    s.set_clock("2026-11-23T07:08:09Z");
    let full = s.send("GET", "/v1/balance", Some(&t), &[], None);
    assert_eq!(full.status, 200);
    assert_eq!(
        full.header("date").as_deref(),
        Some("Mon, 23 Nov 2026 07:08:09 GMT")
    );
    let etag = full.header("etag").unwrap();
    s.set_clock("2026-11-23T09:00:00Z");
    let same = s.send(
        "GET",
        "/v1/balance",
        Some(&t),
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(same.status, 304);
    assert_eq!(
        same.header("date").as_deref(),
        Some("Mon, 23 Nov 2026 09:00:00 GMT")
    );
}

#[test]
fn a_new_timezone_applies_from_the_next_daily_reset() {
    let s = Server::start();
    let (_, t) = s.account("pro", "Europe/Paris");
    let (st, a) = s.call(
        "PATCH",
        "/v1/account",
        Some(&t),
        Some(json!({"timezone": "Asia/Tokyo"})),
    );
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["timezone"], json!("Asia/Tokyo"));
    // Today's allowance keeps its Paris midnight.
    assert_eq!(time_of(&a["next_daily_reset"]), utc("2026-11-21T23:00:00Z"));
    assert_eq!(s.get("/v1/account", &t), a);

    // From the Paris reset on, days end at Tokyo midnight (15:00 UTC).
    s.set_clock("2026-11-21T23:00:00Z");
    let b = s.get("/v1/balance", &t);
    assert_eq!(
        time_of(&b["buckets"]["daily"]["next_reset"]),
        utc("2026-11-22T15:00:00Z")
    );
    s.set_clock("2026-11-22T15:00:00Z");
    let a = s.get("/v1/account", &t);
    assert_eq!(time_of(&a["next_daily_reset"]), utc("2026-11-23T15:00:00Z"));
    let daily_grants: Vec<_> = s
        .ledger(&t)
        .iter()
        .filter(|e| e["type"] == json!("grant") && e["bucket"] == json!("daily"))
        .map(|e| time_of(&e["at"]))
        .collect();
    assert_eq!(
        daily_grants,
        vec![
            utc(START),
            utc("2026-11-21T23:00:00Z"),
            utc("2026-11-22T15:00:00Z")
        ]
    );
}

#[test]
fn the_balance_etag_answers_304_until_a_charge_or_a_hold_changes_it() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let first = s.send("GET", "/v1/balance", Some(&t), &[], None);
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag");

    let same = s.send(
        "GET",
        "/v1/balance",
        Some(&t),
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(same.status, 304);
    assert!(same.text.is_empty(), "a 304 has no body: {}", same.text);
    // Time passing alone does not change the balance.
    s.advance(60);
    let same = s.send(
        "GET",
        "/v1/balance",
        Some(&t),
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(same.status, 304);

    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u1", "lite", 0, 0, 1000)),
    );
    assert_eq!(st, 201);
    let charged = s.send(
        "GET",
        "/v1/balance",
        Some(&t),
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(charged.status, 200);
    assert_eq!(charged.json()["available"], json!(505 * CREDIT - 50_000));
    let etag2 = charged.header("etag").unwrap();
    assert_ne!(etag2, etag);

    let (st, _) = s.call(
        "POST",
        "/v1/holds",
        Some(&t),
        Some(json!({"id": "h1", "amount": CREDIT})),
    );
    assert_eq!(st, 201);
    let held = s.send(
        "GET",
        "/v1/balance",
        Some(&t),
        &[("if-none-match", &etag2)],
        None,
    );
    assert_eq!(held.status, 200);
    assert_eq!(held.json()["held"], json!(CREDIT));
    assert_ne!(held.header("etag").unwrap(), etag2);
}

#[test]
fn the_ledger_pages_by_seq_oldest_first() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    for i in 0..5 {
        let (st, v) = s.call(
            "POST",
            "/v1/usage",
            Some(&t),
            Some(usage(&format!("u{i}"), "lite", 0, 0, 1000)),
        );
        assert_eq!(st, 201, "{v}");
    }
    let all = s.get("/v1/ledger?limit=1000", &t);
    let all = all["items"].as_array().unwrap().clone();
    assert_eq!(all.len(), 7);
    let mut sum = 0;
    for pair in all.windows(2) {
        assert!(
            pair[0]["seq"].as_i64() < pair[1]["seq"].as_i64(),
            "oldest first"
        );
    }
    for e in &all {
        sum += e["amount"].as_i64().unwrap();
        assert_eq!(
            e["balance_after"].as_i64().unwrap(),
            sum,
            "balance_after of {e}"
        );
        for field in [
            "seq",
            "at",
            "type",
            "bucket",
            "amount",
            "balance_after",
            "grant_id",
            "ref",
        ] {
            assert!(!e[field].is_null(), "{field} in {e}");
        }
    }

    let mut walked = Vec::new();
    let mut path = "/v1/ledger?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = s.get(&path, &t);
        let items = page["items"].as_array().unwrap();
        pages += 1;
        walked.extend(items.iter().cloned());
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(
                    next,
                    items.last().unwrap()["seq"].to_string(),
                    "the cursor is the seq"
                );
                path = format!("/v1/ledger?limit=3&after={next}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(walked, all);

    // A page that ends exactly at the last entry has no next.
    let exact = s.get("/v1/ledger?limit=7", &t);
    assert_eq!(exact["items"].as_array().unwrap().len(), 7);
    assert_eq!(exact["next"], Value::Null);
    let default = s.get("/v1/ledger", &t);
    assert_eq!(default["items"].as_array().unwrap(), &all);

    for bad in ["/v1/ledger?limit=0", "/v1/ledger?limit=1001"] {
        let (st, v) = s.call("GET", bad, Some(&t), None);
        assert_error(st, &v, 400, "invalid_request");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("limit"),
            "{v}"
        );
    }
}

#[test]
fn a_usage_charge_burns_daily_then_subscription_and_a_replay_changes_nothing() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    // (30,000 − 10,000) × 300 + 20,000 × 300 µcr = 12 credits: 5 daily, 7 subscription.
    let body = usage("u1", "premium", 30_000, 10_000, 20_000);
    let (st, r) = s.call("POST", "/v1/usage", Some(&t), Some(body.clone()));
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["id"], json!("u1"));
    assert_eq!(r["charged"], json!(12 * CREDIT));
    let parts: Vec<Value> = r["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!([p["bucket"], p["amount"]]))
        .collect();
    assert_eq!(
        parts,
        vec![
            json!(["daily", 5 * CREDIT]),
            json!(["subscription", 7 * CREDIT])
        ]
    );
    assert_eq!(r["balance"]["available"], json!(493 * CREDIT));

    let ledger = s.ledger(&t);
    let entries: Vec<Value> = entries_for(&ledger, "u1")
        .iter()
        .map(|e| json!({"bucket": e["bucket"], "grant_id": e["grant_id"], "amount": -e["amount"].as_i64().unwrap()}))
        .collect();
    assert_eq!(
        entries,
        *r["breakdown"].as_array().unwrap(),
        "one ledger entry per lot, as the breakdown says"
    );
    assert!(entries_for(&ledger, "u1")
        .iter()
        .all(|e| e["type"] == json!("usage")));

    let replay = s.send("POST", "/v1/usage", Some(&t), &[], Some(&body.to_string()));
    assert_eq!(replay.status, 201);
    assert_eq!(replay.json(), r);
    assert_eq!(s.available(&t), 493 * CREDIT);

    let mut other = body.clone();
    other["output_tokens"] = json!(20_001);
    let (st, v) = s.call("POST", "/v1/usage", Some(&t), Some(other));
    assert_error(st, &v, 409, "idempotency_conflict");
    assert_eq!(s.available(&t), 493 * CREDIT);
    assert_eq!(s.ledger(&t), ledger);
}

#[test]
fn a_charge_larger_than_the_balance_is_refused_and_changes_nothing() {
    let s = Server::start();
    let (id, t) = s.account("free", "UTC");
    let before = s.ledger(&t);
    // 106 credits of standard output on a 105-credit account.
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("big", "standard", 0, 0, 1_060_000)),
    );
    assert_error(st, &v, 402, "insufficient_credits");
    assert_eq!(s.ledger(&t), before);
    assert_eq!(s.available(&t), 105 * CREDIT);
    // A refused id is not burnt: the same request succeeds once it fits.
    s.grant(&id, "top-up", CREDIT);
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("big", "standard", 0, 0, 1_060_000)),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(s.available(&t), 0);
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn free_events_are_recorded_in_usage_with_nothing_charged() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let free = [
        (
            "cached",
            json!({"kind": "chat", "status": "completed", "input_tokens": 4000, "cached_input_tokens": 4000, "output_tokens": 0}),
        ),
        (
            "summary",
            json!({"kind": "summarization", "status": "completed", "input_tokens": 9000, "cached_input_tokens": 0, "output_tokens": 700}),
        ),
        (
            "cancelled",
            json!({"kind": "agent", "status": "cancelled", "input_tokens": 5000, "cached_input_tokens": 1000, "output_tokens": 300}),
        ),
    ];
    for (thread, fields) in &free {
        let mut body = json!({"id": format!("free-{thread}"), "project": "p", "thread": thread, "model": "premium"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let (st, r) = s.call("POST", "/v1/usage", Some(&t), Some(body));
        assert_eq!(st, 201, "{r}");
        assert_eq!(r["charged"], json!(0), "{thread}");
        assert_eq!(r["breakdown"], json!([]), "{thread}");
        assert_eq!(r["balance"]["available"], json!(505 * CREDIT));
    }
    assert_eq!(s.ledger(&t).len(), 2, "nothing but the opening grants");
    let groups = s.get("/v1/usage?group_by=thread", &t);
    let mut items: Vec<Value> = groups["items"].as_array().unwrap().clone();
    items.sort_by_key(|i| i["key"].as_str().unwrap().to_owned());
    assert_eq!(
        items,
        vec![
            json!({"key": "cached", "charged": 0, "events": 1, "input_tokens": 4000, "cached_input_tokens": 4000, "output_tokens": 0}),
            json!({"key": "cancelled", "charged": 0, "events": 1, "input_tokens": 5000, "cached_input_tokens": 1000, "output_tokens": 300}),
            json!({"key": "summary", "charged": 0, "events": 1, "input_tokens": 9000, "cached_input_tokens": 0, "output_tokens": 700}),
        ]
    );
}

fn event(
    id: &str,
    project: &str,
    thread: &str,
    model: &str,
    status: &str,
    tokens: (u64, u64, u64),
) -> Value {
    json!({"id": id, "project": project, "thread": thread, "model": model, "kind": "chat", "status": status,
           "input_tokens": tokens.0, "cached_input_tokens": tokens.1, "output_tokens": tokens.2})
}

fn group(key: &str, charged: i64, events: i64, input: i64, cached: i64, output: i64) -> Value {
    json!({"key": key, "charged": charged, "events": events, "input_tokens": input,
           "cached_input_tokens": cached, "output_tokens": output})
}

#[test]
fn usage_history_groups_by_day_model_project_and_thread_within_from_and_to() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let post = |body: Value| {
        let (st, v) = s.call("POST", "/v1/usage", Some(&t), Some(body));
        assert_eq!(st, 201, "{v}");
    };
    // Nov 21: 0.1 + 0.6 credits.
    post(event(
        "e1",
        "alpha",
        "t1",
        "lite",
        "completed",
        (1000, 0, 1000),
    ));
    post(event(
        "e2",
        "alpha",
        "t2",
        "premium",
        "completed",
        (1000, 0, 1000),
    ));
    s.advance(86_400);
    // Nov 22: 0.25 credits and a cancelled task.
    post(event(
        "e3",
        "beta",
        "t3",
        "standard",
        "completed",
        (2000, 500, 1000),
    ));
    post(event(
        "e4",
        "beta",
        "t3",
        "premium",
        "cancelled",
        (5000, 0, 5000),
    ));

    let items = |q: &str| s.get(&format!("/v1/usage?{q}"), &t)["items"].clone();
    assert_eq!(
        items("group_by=day"),
        json!([
            group("2026-11-21", 700_000, 2, 2000, 0, 2000),
            group("2026-11-22", 250_000, 2, 7000, 500, 6000)
        ])
    );
    assert_eq!(items(""), items("group_by=day"), "day is the default");
    assert_eq!(
        items("group_by=model"),
        json!([
            group("premium", 600_000, 2, 6000, 0, 6000),
            group("standard", 250_000, 1, 2000, 500, 1000),
            group("lite", 100_000, 1, 1000, 0, 1000),
        ])
    );
    assert_eq!(
        items("group_by=project"),
        json!([
            group("alpha", 700_000, 2, 2000, 0, 2000),
            group("beta", 250_000, 2, 7000, 500, 6000)
        ])
    );
    assert_eq!(
        items("group_by=thread"),
        json!([
            group("t2", 600_000, 1, 1000, 0, 1000),
            group("t3", 250_000, 2, 7000, 500, 6000),
            group("t1", 100_000, 1, 1000, 0, 1000),
        ])
    );
    // `from` is inclusive, `to` exclusive.
    assert_eq!(
        items("group_by=project&from=2026-11-22T00:00:00Z"),
        json!([group("beta", 250_000, 2, 7000, 500, 6000)])
    );
    assert_eq!(
        items("group_by=project&to=2026-11-22T00:00:00Z"),
        json!([group("alpha", 700_000, 2, 2000, 0, 2000)])
    );
    assert_eq!(
        items("group_by=thread&from=2026-11-21T18:00:00Z&to=2026-11-22T18:00:00Z"),
        json!([
            group("t2", 600_000, 1, 1000, 0, 1000),
            group("t1", 100_000, 1, 1000, 0, 1000)
        ])
    );
}

#[test]
fn usage_days_are_the_accounts_local_days() {
    let s = Server::start();
    // 18:00 UTC on Nov 21 is already Nov 22 in Tokyo.
    let (_, t) = s.account("pro", "Asia/Tokyo");
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u", "lite", 0, 0, 10)),
    );
    assert_eq!(st, 201);
    assert_eq!(
        s.get("/v1/usage?group_by=day", &t)["items"][0]["key"],
        json!("2026-11-22")
    );
}

#[test]
fn a_hold_reserves_credits_and_a_settle_charges_and_releases_it() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, h) = s.call(
        "POST",
        "/v1/holds",
        Some(&t),
        Some(json!({"id": "h1", "amount": 100 * CREDIT})),
    );
    assert_eq!(st, 201, "{h}");
    assert_eq!(h["id"], json!("h1"));
    assert_eq!(h["amount"], json!(100 * CREDIT));
    assert_eq!(h["status"], json!("active"));
    assert_eq!(
        time_of(&h["expires_at"]),
        utc("2026-11-21T18:15:00Z"),
        "900 s by default"
    );
    let b = s.get("/v1/balance", &t);
    assert_eq!(
        (
            b["available"].as_i64().unwrap(),
            b["held"].as_i64().unwrap()
        ),
        (405 * CREDIT, 100 * CREDIT)
    );

    // 10,000 premium output tokens: 3 credits.
    let settle = json!({"project": "p", "thread": "t", "model": "premium", "kind": "agent", "status": "completed",
                        "input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 10_000});
    let (st, r) = s.call(
        "POST",
        "/v1/holds/h1/settle",
        Some(&t),
        Some(settle.clone()),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], json!("settled"));
    assert_eq!(r["charged"], json!(3 * CREDIT));
    assert_eq!(r["uncollected"], json!(0));
    assert_eq!(r["balance"]["available"], json!(502 * CREDIT));
    let b = s.get("/v1/balance", &t);
    assert_eq!(
        (
            b["available"].as_i64().unwrap(),
            b["held"].as_i64().unwrap()
        ),
        (502 * CREDIT, 0)
    );
    let ledger = s.ledger(&t);
    let settled: Vec<Value> = entries_for(&ledger, "h1")
        .iter()
        .map(|e| json!([e["type"], e["amount"]]))
        .collect();
    assert_eq!(settled, vec![json!(["settle", -3 * CREDIT])]);
    assert_eq!(
        s.get("/v1/usage?group_by=thread", &t)["items"][0]["charged"],
        json!(3 * CREDIT)
    );

    // A retried settle replays; a different one conflicts.
    let (st, again) = s.call(
        "POST",
        "/v1/holds/h1/settle",
        Some(&t),
        Some(settle.clone()),
    );
    assert_eq!((st, &again), (200, &r));
    let mut other = settle;
    other["output_tokens"] = json!(1);
    let (st, v) = s.call("POST", "/v1/holds/h1/settle", Some(&t), Some(other));
    assert_eq!(st, 409, "{v}");
    assert_eq!(s.ledger(&t), ledger);
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn a_settle_that_overruns_takes_what_is_there_and_never_goes_negative() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    // Spend 501 of 505 credits, leaving 4.
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("big", "standard", 0, 0, 5_010_000)),
    );
    assert_eq!(st, 201);
    for (id, amount) in [("a", 3 * CREDIT), ("b", CREDIT)] {
        let (st, v) = s.call(
            "POST",
            "/v1/holds",
            Some(&t),
            Some(json!({"id": id, "amount": amount})),
        );
        assert_eq!(st, 201, "{v}");
    }
    assert_eq!(s.available(&t), 0);
    // Hold b (1 credit) settles a 10-credit task: it takes its own credit, never a's 3.
    let ten = json!({"project": "p", "thread": "t", "model": "standard", "kind": "agent", "status": "completed",
                     "input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 100_000});
    let (st, r) = s.call("POST", "/v1/holds/b/settle", Some(&t), Some(ten.clone()));
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["charged"], json!(CREDIT));
    assert_eq!(r["uncollected"], json!(9 * CREDIT));
    let b = s.get("/v1/balance", &t);
    assert_eq!(b["held"], json!(3 * CREDIT));
    assert_eq!(b["available"], json!(0));
    s.assert_balance_is_ledger_sum(&t);

    let (st, r) = s.call("POST", "/v1/holds/a/settle", Some(&t), Some(ten));
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["charged"], json!(3 * CREDIT));
    assert_eq!(r["uncollected"], json!(7 * CREDIT));
    let b = s.get("/v1/balance", &t);
    assert_eq!(
        (
            b["available"].as_i64().unwrap(),
            b["held"].as_i64().unwrap()
        ),
        (0, 0)
    );
    assert!(s
        .ledger(&t)
        .iter()
        .all(|e| e["balance_after"].as_i64().unwrap() >= 0));
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn a_voided_hold_releases_its_credits_and_cannot_be_settled() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, _) = s.call(
        "POST",
        "/v1/holds",
        Some(&t),
        Some(json!({"id": "h", "amount": 50 * CREDIT})),
    );
    assert_eq!(st, 201);
    let (st, v) = s.call("POST", "/v1/holds/h/void", Some(&t), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], json!("voided"));
    let b = s.get("/v1/balance", &t);
    assert_eq!(
        (
            b["available"].as_i64().unwrap(),
            b["held"].as_i64().unwrap()
        ),
        (505 * CREDIT, 0)
    );

    let (st, v) = s.call(
        "POST",
        "/v1/holds/h/settle",
        Some(&t),
        Some(usage_fields("premium", 10)),
    );
    assert_error(st, &v, 409, "conflict");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("voided"),
        "{v}"
    );
    assert_eq!(s.available(&t), 505 * CREDIT);
    assert_eq!(s.ledger(&t).len(), 2);
}

fn usage_fields(model: &str, output: u64) -> Value {
    json!({"project": "p", "thread": "t", "model": model, "kind": "chat", "status": "completed",
           "input_tokens": 0, "cached_input_tokens": 0, "output_tokens": output})
}

#[test]
fn an_unsettled_hold_lapses_after_its_ttl() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, h) = s.call(
        "POST",
        "/v1/holds",
        Some(&t),
        Some(json!({"id": "h", "amount": 60 * CREDIT, "ttl_seconds": 60})),
    );
    assert_eq!(st, 201, "{h}");
    assert_eq!(time_of(&h["expires_at"]), utc("2026-11-21T18:01:00Z"));
    s.advance(59);
    assert_eq!(s.get("/v1/balance", &t)["held"], json!(60 * CREDIT));
    s.advance(1);
    let b = s.get("/v1/balance", &t);
    assert_eq!(
        (
            b["available"].as_i64().unwrap(),
            b["held"].as_i64().unwrap()
        ),
        (505 * CREDIT, 0)
    );
    let (st, v) = s.call(
        "POST",
        "/v1/holds/h/settle",
        Some(&t),
        Some(usage_fields("lite", 10)),
    );
    assert_error(st, &v, 409, "conflict");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("lapsed"),
        "{v}"
    );
}

#[test]
fn an_unknown_hold_is_not_found() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, v) = s.call(
        "POST",
        "/v1/holds/nope/settle",
        Some(&t),
        Some(usage_fields("lite", 10)),
    );
    assert_error(st, &v, 404, "not_found");
    let (st, v) = s.call("POST", "/v1/holds/nope/void", Some(&t), None);
    assert_error(st, &v, 404, "not_found");
}

#[test]
fn another_accounts_hold_is_not_found_and_stays_untouched() {
    let s = Server::start();
    let (_, owner) = s.account("pro", "UTC");
    let (_, stranger) = s.account("pro", "UTC");
    let (st, _) = s.call(
        "POST",
        "/v1/holds",
        Some(&owner),
        Some(json!({"id": "mine", "amount": 5 * CREDIT})),
    );
    assert_eq!(st, 201);
    let (st, v) = s.call(
        "POST",
        "/v1/holds/mine/settle",
        Some(&stranger),
        Some(usage_fields("lite", 10)),
    );
    assert_error(st, &v, 404, "not_found");
    let (st, v) = s.call("POST", "/v1/holds/mine/void", Some(&stranger), None);
    assert_error(st, &v, 404, "not_found");
    assert_eq!(s.get("/v1/balance", &owner)["held"], json!(5 * CREDIT));
    assert_eq!(s.available(&stranger), 505 * CREDIT);
}

#[test]
fn notices_tell_resets_grants_and_exhaustion_in_seq_order() {
    let s = Server::start();
    let (id, t) = s.account("free", "UTC");
    let body = json!({"id": "g", "amount": 2 * CREDIT, "reason": "community", "note": "thanks"});
    let (st, _) = s.admin("POST", &format!("/v1/admin/accounts/{id}/grants"), body);
    assert_eq!(st, 201);
    // Spend all 107 credits.
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("all", "standard", 0, 0, 1_070_000)),
    );
    assert_eq!(st, 201);

    let notices = s.notices(&t);
    let kinds: Vec<&str> = notices
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["reset", "reset", "grant", "exhausted"]);
    assert_eq!(notices[0]["data"]["bucket"], json!("daily"));
    assert_eq!(notices[0]["data"]["amount"], json!(5 * CREDIT));
    assert_eq!(
        time_of(&notices[0]["data"]["next_reset"]),
        utc("2026-11-22T00:00:00Z")
    );
    assert_eq!(notices[1]["data"]["bucket"], json!("subscription"));
    assert_eq!(notices[1]["data"]["amount"], json!(100 * CREDIT));
    assert_eq!(
        time_of(&notices[1]["data"]["next_reset"]),
        utc("2026-12-21T18:00:00Z")
    );
    assert_eq!(
        notices[2]["data"],
        json!({"amount": 2 * CREDIT, "reason": "community", "note": "thanks"})
    );
    for pair in notices.windows(2) {
        assert!(pair[0]["seq"].as_u64() < pair[1]["seq"].as_u64());
    }

    let mut walked = Vec::new();
    let mut path = "/v1/notices?limit=1".to_owned();
    loop {
        let page = s.get(&path, &t);
        walked.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(n) => path = format!("/v1/notices?limit=1&after={n}"),
            None => break,
        }
    }
    assert_eq!(walked, notices);
}

#[test]
fn requests_without_a_valid_token_are_unauthorized() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    let account_paths = [
        ("GET", "/v1/balance"),
        ("GET", "/v1/account"),
        ("GET", "/v1/ledger"),
        ("GET", "/v1/catalog"),
        ("GET", "/v1/events"),
    ];
    for (m, p) in account_paths {
        let (st, v) = s.call(m, p, None, None);
        assert_error(st, &v, 401, "unauthorized");
        let (st, v) = s.call(m, p, Some("cb_not-a-token"), None);
        assert_error(st, &v, 401, "unauthorized");
        // The admin token is for /v1/admin/* only.
        let (st, v) = s.call(m, p, Some(ADMIN), None);
        assert_error(st, &v, 401, "unauthorized");
    }
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        None,
        Some(usage("u", "lite", 0, 0, 10)),
    );
    assert_error(st, &v, 401, "unauthorized");

    let admin_calls = [
        (
            "POST",
            "/v1/admin/accounts".to_owned(),
            json!({"email": "x@example.com", "plan": "pro", "timezone": "UTC"}),
        ),
        ("POST", format!("/v1/admin/accounts/{id}/tokens"), json!({})),
        (
            "PUT",
            format!("/v1/admin/accounts/{id}/plan"),
            json!({"plan": "team"}),
        ),
        (
            "POST",
            format!("/v1/admin/accounts/{id}/grants"),
            json!({"id": "g", "amount": CREDIT, "reason": "admin"}),
        ),
        (
            "POST",
            "/v1/admin/clock".to_owned(),
            json!({"advance_seconds": 86_400}),
        ),
    ];
    for (m, p, body) in admin_calls {
        let (st, v) = s.call(m, &p, Some(&t), Some(body.clone()));
        assert_error(st, &v, 401, "unauthorized");
        let (st, v) = s.call(m, &p, None, Some(body));
        assert_error(st, &v, 401, "unauthorized");
    }
    // None of it happened.
    let a = s.get("/v1/account", &t);
    assert_eq!(a["plan"], json!("pro"));
    assert_eq!(s.ledger(&t).len(), 2);
    assert_eq!(time_of(&s.get("/v1/balance", &t)["as_of"]), utc(START));
}

#[test]
fn unknown_routes_and_methods_answer_json_errors() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    for path in ["/v1/nope", "/", "/v2/balance"] {
        let (st, v) = s.call("GET", path, Some(&t), None);
        assert_error(st, &v, 404, "not_found");
    }
    let (st, v) = s.call("DELETE", "/v1/balance", Some(&t), None);
    assert_error(st, &v, 405, "method_not_allowed");
}

#[test]
fn a_token_over_its_rate_limit_is_told_to_slow_down() {
    let s = Server::start_with(Options {
        rate_limit: 5,
        ..Default::default()
    });
    let (_, t) = s.account("pro", "UTC");
    let (_, other) = s.account("pro", "UTC");
    let statuses: Vec<(u16, Value)> = (0..50)
        .map(|_| s.call("GET", "/v1/balance", Some(&t), None))
        .collect();
    assert!(
        statuses[..5].iter().all(|(st, _)| *st == 200),
        "a burst of the rate is allowed"
    );
    let limited: Vec<&Value> = statuses
        .iter()
        .filter(|(st, _)| *st == 429)
        .map(|(_, v)| v)
        .collect();
    assert!(!limited.is_empty(), "50 requests at once on a limit of 5/s");
    for v in limited {
        assert_error(429, v, 429, "rate_limited");
    }
    // The limit is per token.
    assert_eq!(s.call("GET", "/v1/balance", Some(&other), None).0, 200);
}

#[test]
fn a_usage_id_already_taken_by_a_hold_is_a_conflict_not_an_outage() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, _) = s.call(
        "POST",
        "/v1/holds",
        Some(&t),
        Some(json!({"id": "x", "amount": CREDIT})),
    );
    assert_eq!(st, 201);
    // A settled hold is a usage event under the hold's id, so the id is taken.
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("x", "lite", 0, 0, 10)),
    );
    assert_error(st, &v, 409, "idempotency_conflict");
    let (st, v) = s.call(
        "POST",
        "/v1/holds/x/settle",
        Some(&t),
        Some(usage_fields("lite", 10)),
    );
    assert_eq!(st, 200, "{v}");

    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("y", "lite", 0, 0, 10)),
    );
    assert_eq!(st, 201);
    let (st, v) = s.call(
        "POST",
        "/v1/holds",
        Some(&t),
        Some(json!({"id": "y", "amount": CREDIT})),
    );
    assert_error(st, &v, 409, "idempotency_conflict");
    assert_eq!(s.get("/v1/balance", &t)["held"], json!(0));
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn an_admin_grant_cannot_take_the_id_of_a_grant_the_server_will_make() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    // The server names tomorrow's daily grant after the account and the day's start.
    let tomorrow = utc("2026-11-22T00:00:00Z").timestamp();
    let body = json!({"id": format!("{id}:daily:{tomorrow}"), "amount": CREDIT, "reason": "admin"});
    let (st, v) = s.admin("POST", &format!("/v1/admin/accounts/{id}/grants"), body);
    assert_error(st, &v, 400, "invalid_request");
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("id:"),
        "{v}"
    );
    s.advance(86_400);
    let daily = s.ledger(&t).last().unwrap().clone();
    assert_eq!(
        (daily["type"].clone(), daily["bucket"].clone()),
        (json!("grant"), json!("daily"))
    );
    assert_eq!(daily["grant_id"], json!(format!("{id}:daily:{tomorrow}")));
    s.assert_balance_is_ledger_sum(&t);
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_other_schemes_are_refused() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {t}");
        let a = s.send(
            "GET",
            "/v1/balance",
            None,
            &[("authorization", &auth)],
            None,
        );
        assert_eq!(a.status, 200, "{scheme}: {}", a.text);
    }
    for auth in [
        format!("Basic {t}"),
        t.clone(),
        "Bearer".to_owned(),
        format!("Bearer {}", "x".repeat(600)),
    ] {
        let a = s.send(
            "GET",
            "/v1/balance",
            None,
            &[("authorization", &auth)],
            None,
        );
        assert_error(a.status, &a.json(), 401, "unauthorized");
    }
}

#[test]
fn an_account_out_of_credits_still_records_free_events_and_refuses_paid_ones() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("all", "standard", 0, 0, 1_050_000)),
    );
    assert_eq!(st, 201);
    assert_eq!(s.available(&t), 0);
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("cached", "premium", 500, 500, 0)),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["charged"], json!(0));
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("paid", "lite", 0, 0, 1)),
    );
    assert_error(st, &v, 402, "insufficient_credits");
    // Reading the account keeps working.
    for path in [
        "/v1/account",
        "/v1/ledger",
        "/v1/notices",
        "/v1/usage",
        "/v1/catalog",
    ] {
        s.get(path, &t);
    }
    assert_eq!(s.get("/v1/usage", &t)["items"][0]["events"], json!(2));
}
