//! Money in is never lost: every way a purchase or an auto-refill can be interrupted, with
//! the payment processor's own record (the test gateway's database, read by this process)
//! as the witness against the ledger (its SQLite file, read by this process too).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};

const VISA: &str = "4242424242424242";
const CREDIT: i64 = 1_000_000;
const POINTS: [&str; 4] = [
    "before_record",
    "after_record",
    "after_charge",
    "after_outcome",
];

fn save(s: &Server, token: &str) -> String {
    let card = json!({"number": VISA, "exp_month": 12, "exp_year": 2030, "cvc": "123"});
    let (st, v) = s.call("POST", "/v1/payment-methods", Some(token), Some(card));
    assert_eq!(st, 201, "{v}");
    v["payment_token"].as_str().unwrap().to_owned()
}

/// POST /v1/purchases; a dropped connection (the server died) is status 0.
fn buy(s: &Server, token: &str, key: &str, body: &Value) -> (u16, Value) {
    let resp = s
        .http
        .post(s.url("/v1/purchases"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send();
    match resp {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn pack(pm: &str, pack: &str) -> Value {
    json!({"pack": pack, "payment_token": pm})
}

/// Turns auto-refill on (pack_500) at `threshold` credits; it must be accepted.
fn auto_refill_on(s: &Server, t: &str, pm: &str, threshold: i64, monthly_limit: u32) {
    let body = json!({"enabled": true, "threshold": threshold * CREDIT, "pack": "pack_500",
        "payment_token": pm, "monthly_limit": monthly_limit});
    let (st, v) = s.call("PUT", "/v1/auto-refill", Some(t), Some(body));
    assert_eq!(st, 200, "{v}");
}

fn with_env(key: &str, value: &str) -> Options {
    Options {
        env: vec![(key.into(), value.into())],
        ..Default::default()
    }
}

fn reconciliation(s: &Server, account: &str) -> Value {
    let (st, v) = s.call(
        "GET",
        &format!("/v1/admin/reconciliation?account={account}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(st, 200, "{v}");
    v
}

/// The two independent records agree: every succeeded charge of the processor is a
/// succeeded (or refunded) purchase of the ledger and the other way round, nothing is
/// pending, the credits of each were posted once, and `--check` (which compares the
/// gateway's file with the ledger's) passes.
fn assert_agree(s: &Server, accounts: &[(&str, &str)]) {
    let paid: Vec<String> = {
        let mut v: Vec<String> = ledger_purchases(&s.db_path())
            .into_iter()
            .filter(|(_, _, status, _)| status == "succeeded" || status == "refunded")
            .map(|(id, ..)| id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(s.gateway().charged_keys(), paid, "gateway vs ledger");
    for (account, token) in accounts {
        let r = reconciliation(s, account);
        assert_eq!(r["mismatches"], json!([]), "{r}");
        assert_eq!(r["pending"], json!([]), "{r}");
        assert_eq!(
            r["gateway"]["succeeded_cents"], r["ledger"]["credited_cents"],
            "{r}"
        );
        s.assert_balance_is_ledger_sum(token);
    }
    let (ok, report) = s.check_db();
    assert!(ok, "--check: {report}");
}

fn nothing_pending(s: &Server) -> bool {
    ledger_purchases(&s.db_path())
        .iter()
        .all(|(_, _, status, _)| status != "pending")
}

#[test]
fn a_purchase_killed_at_any_step_is_finished_by_the_server_exactly_once() {
    for point in POINTS {
        let s = Server::start_with(with_env("CREDITBAR_FAULT", point));
        let (account, t) = s.account("free", "UTC");
        let pm = save(&s, &t);
        let before = s.available(&t);
        let (st, v) = buy(&s, &t, "k1", &pack(&pm, "pack_500"));
        assert_eq!(st, 0, "{point}: the process should have died: {v}");
        let dir = s.wait_dead();
        let s = Server::start_in(dir, Options::default());
        // Nobody retries: the server finishes what it started by itself.
        within(30, "nothing pending", || nothing_pending(&s));
        let expected_charges = usize::from(point != "before_record");
        assert_eq!(
            s.gateway().charged_keys().len(),
            expected_charges,
            "{point}: {:?}",
            s.gateway().records()
        );
        assert_eq!(
            s.available(&t),
            before + 500 * CREDIT * expected_charges as i64,
            "{point}"
        );
        assert_agree(&s, &[(&account, &t)]);
        // The client's retry gets the purchase, never a second charge.
        let (st, again) = buy(&s, &t, "k1", &pack(&pm, "pack_500"));
        assert_eq!(st, 201, "{point}: {again}");
        assert_eq!(s.gateway().charged_keys().len(), 1, "{point}");
        assert_eq!(s.available(&t), before + 500 * CREDIT, "{point}");
        assert_agree(&s, &[(&account, &t)]);
    }
}

#[test]
fn an_auto_refill_killed_at_any_step_is_finished_by_the_server_exactly_once() {
    for point in &POINTS[1..] {
        let s = Server::start_with(with_env("CREDITBAR_FAULT", point));
        let (account, t) = s.account("free", "UTC");
        let pm = save(&s, &t);
        auto_refill_on(&s, &t, &pm, 50, 3);
        // 105 credits, spend 60: below 50 → one refill, and the process dies in it (maybe
        // before the charge's answer is written back: the charge is committed first).
        s.call_quietly(
            "POST",
            "/v1/usage",
            &t,
            usage("u1", "lite", 1_200_000, 0, 0),
        );
        let dir = s.wait_dead();
        let s = Server::start_in(dir, Options::default());
        let charged = s.ledger(&t).iter().filter(|e| e["ref"] == "u1").count();
        assert!(charged > 0, "{point}: the charge is in the ledger");
        within(30, "the refill finished", || {
            nothing_pending(&s) && ledger_purchases(&s.db_path()).len() == 1
        });
        assert_eq!(s.gateway().charged_keys().len(), 1, "{point}");
        assert_eq!(s.available(&t), (105 - 60 + 500) * CREDIT, "{point}");
        assert_agree(&s, &[(&account, &t)]);
    }
}

#[test]
fn a_purchase_while_another_process_holds_the_ledger_is_refused_and_charges_nothing() {
    if sqlite_only("a second process holding the SQLite write lock") {
        return;
    }
    let s = Server::start();
    let (account, t) = s.account("free", "UTC");
    let pm = save(&s, &t);
    let before = s.available(&t);
    let blocker = rusqlite::Connection::open(s.db_path()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (st, v) = buy(&s, &t, "k", &pack(&pm, "pack_500"));
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["error"]["code"], "unavailable");
    assert!(s.gateway().records().is_empty(), "the card was touched");
    blocker.execute_batch("ROLLBACK").unwrap();
    let (st, v) = buy(&s, &t, "k", &pack(&pm, "pack_500"));
    assert_eq!(st, 201, "{v}");
    assert_eq!(s.available(&t), before + 500 * CREDIT);
    assert_agree(&s, &[(&account, &t)]);
}

#[test]
fn the_ledger_locked_after_the_charge_leaves_a_pending_purchase_the_server_finishes() {
    if sqlite_only("a second process holding the SQLite write lock") {
        return;
    }
    let s = Server::start();
    let (account, t) = s.account("free", "UTC");
    let pm = save(&s, &t);
    let before = s.available(&t);
    // The processor takes 2 s; the ledger is locked (for longer than the writer waits)
    // once the intent is recorded, so the charge succeeds and its record cannot be written.
    s.gateway().set_mode("normal", 2000);
    let answer = std::thread::scope(|scope| {
        let buying = scope.spawn(|| buy(&s, &t, "k", &pack(&pm, "pack_500")));
        within(10, "the intent is recorded", || {
            ledger_purchases(&s.db_path()).len() == 1
        });
        let blocker = rusqlite::Connection::open(s.db_path()).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        within(20, "the processor charged", || {
            s.gateway().charged_keys().len() == 1
        });
        let answer = buying.join().unwrap();
        blocker.execute_batch("ROLLBACK").unwrap();
        answer
    });
    let (st, v) = answer;
    assert_eq!(
        st, 202,
        "charged but not recorded is pending, never 503: {v}"
    );
    assert_eq!(v["status"], "pending");
    s.gateway().set_mode("normal", 0);
    // The client never asks again; the server finishes it.
    let id = v["id"].as_str().unwrap().to_owned();
    within(30, "the purchase succeeded", || {
        s.get(&format!("/v1/purchases/{id}"), &t)["status"] == "succeeded"
    });
    assert_eq!(s.available(&t), before + 500 * CREDIT);
    assert_eq!(s.gateway().charged_keys(), [id]);
    assert_agree(&s, &[(&account, &t)]);
}

#[test]
fn a_processor_that_times_out_leaves_a_pending_purchase_the_server_finishes() {
    let s = Server::start();
    let (account, t) = s.account("free", "UTC");
    let pm = save(&s, &t);
    let before = s.available(&t);
    s.gateway().set_mode("timeout", 0);
    let (st, v) = buy(&s, &t, "k", &pack(&pm, "pack_500"));
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["status"], "pending");
    let id = v["id"].as_str().unwrap().to_owned();
    // The processor took the money; its answer was lost.
    assert_eq!(s.gateway().charged_keys(), std::slice::from_ref(&id));
    assert_eq!(s.available(&t), before);
    let r = reconciliation(&s, &account);
    assert_eq!(r["pending"][0]["id"], id.as_str(), "{r}");
    // Same key, other body, while it is pending: refused, nothing charged.
    let (st, v) = buy(&s, &t, "k", &pack(&pm, "pack_2500"));
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "idempotency_conflict");
    s.gateway().set_mode("normal", 0);
    within(30, "the purchase succeeded", || {
        s.get(&format!("/v1/purchases/{id}"), &t)["status"] == "succeeded"
    });
    assert_eq!(s.available(&t), before + 500 * CREDIT);
    assert_eq!(s.gateway().charged_keys(), [id]);
    assert_agree(&s, &[(&account, &t)]);
}

#[test]
fn reusing_a_key_with_another_body_is_refused_and_charges_nothing() {
    let s = Server::start();
    let (account, t) = s.account("free", "UTC");
    let pm = save(&s, &t);
    let (st, first) = buy(&s, &t, "k", &pack(&pm, "pack_500"));
    assert_eq!(st, 201, "{first}");
    let (st, v) = buy(&s, &t, "k", &pack(&pm, "pack_2500"));
    assert_eq!(st, 409, "{v}");
    let (st, v) = buy(
        &s,
        &t,
        "k",
        &json!({"custom_cents": 2000, "payment_token": pm}),
    );
    assert_eq!(st, 409, "{v}");
    let records = s.gateway().records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].cents, 2000);
    let (st, again) = buy(&s, &t, "k", &pack(&pm, "pack_500"));
    assert_eq!((st, &again), (201, &first));
    assert_agree(&s, &[(&account, &t)]);
}

#[test]
fn parallel_retries_purchases_and_refills_racing_on_one_account_charge_each_once() {
    let s = Server::start();
    let (account, t) = s.account("free", "UTC");
    let pm = save(&s, &t);
    // Above anything the account reaches: the first charge buys one refill, which
    // then races the purchases (and is never re-armed).
    auto_refill_on(&s, &t, &pm, 100_000, 100);
    let answers: Vec<(String, u16, Value)> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for i in 0..50 {
            let (s, t, pm) = (&s, &t, &pm);
            handles.push(scope.spawn(move || match i % 5 {
                // One purchase retried 20 times at once.
                0 | 1 => {
                    let (st, v) = buy(s, t, "same", &pack(pm, "pack_500"));
                    ("same".to_owned(), st, v)
                }
                2 => {
                    let (st, v) = buy(s, t, &format!("k{i}"), &pack(pm, "pack_2500"));
                    (format!("k{i}"), st, v)
                }
                // Spending that keeps crossing the refill threshold.
                _ => {
                    let (st, v) = s.call(
                        "POST",
                        "/v1/usage",
                        Some(t),
                        Some(usage(&format!("u{i}"), "lite", 400_000, 0, 0)),
                    );
                    (format!("u{i}"), st, v)
                }
            }));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let same: Vec<&Value> = answers
        .iter()
        .filter(|(k, _, _)| k == "same")
        .map(|(_, st, v)| {
            assert_eq!(*st, 201, "{v}");
            v
        })
        .collect();
    assert!(same.iter().all(|v| v["id"] == same[0]["id"]));
    for (key, st, v) in &answers {
        assert!([201, 402].contains(st), "{key}: {st} {v}");
    }
    within(30, "every refill finished", || nothing_pending(&s));
    let ledger = ledger_purchases(&s.db_path());
    let manual = ledger.iter().filter(|p| p.1 == "manual").count();
    assert_eq!(manual, 1 + 10, "{ledger:?}");
    let refills = ledger.iter().filter(|p| p.1 == "auto_refill").count();
    assert_eq!(refills, 1, "one crossing, one refill: {ledger:?}");
    assert_agree(&s, &[(&account, &t)]);
}

#[test]
fn kill_9_storms_over_purchases_and_refills_lose_no_money() {
    let mut server = Server::start();
    let (account, t) = server.account("free", "UTC");
    let pm = save(&server, &t);
    auto_refill_on(&server, &t, &pm, 1000, 100);
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..3 {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let acked: Vec<String> = std::thread::scope(|scope| {
            let s = &server;
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let (t, pm, stop) = (&t, &pm, &stop);
                    scope.spawn(move || {
                        let mut acked = Vec::new();
                        for n in 0..200 {
                            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                break;
                            }
                            if w % 2 == 0 {
                                let key = format!("r{round}w{w}n{n}");
                                let (st, v) = buy(s, t, &key, &pack(pm, "pack_500"));
                                if st == 201 {
                                    acked.push(v["id"].as_str().unwrap().to_owned());
                                }
                            } else {
                                let id = format!("u{round}w{w}n{n}");
                                s.call_quietly(
                                    "POST",
                                    "/v1/usage",
                                    t,
                                    usage(&id, "lite", 2_000_000, 0, 0),
                                );
                            }
                        }
                        acked
                    })
                })
                .collect();
            // Let some money move, then pull the plug.
            within(60, "some purchases acknowledged", || {
                ledger_purchases(&s.db_path())
                    .iter()
                    .filter(|p| p.2 == "succeeded")
                    .count()
                    >= 5 * (round + 1)
            });
            s.kill_now();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        acknowledged.extend(acked);
        server = server.restart();
    }
    within(30, "nothing pending", || nothing_pending(&server));
    let ledger = ledger_purchases(&server.db_path());
    for id in &acknowledged {
        assert!(
            ledger.iter().any(|p| &p.0 == id && p.2 == "succeeded"),
            "acknowledged purchase {id} is missing"
        );
    }
    assert!(ledger.iter().any(|p| p.1 == "auto_refill"), "{ledger:?}");
    assert_agree(&server, &[(&account, &t)]);
}

#[test]
fn a_refund_returns_the_money_and_takes_back_what_is_left_never_more() {
    let s = Server::start();
    let (account, t) = s.account("free", "UTC");
    let pm = save(&s, &t);
    let (st, p) = buy(&s, &t, "k", &pack(&pm, "pack_500"));
    assert_eq!(st, 201, "{p}");
    let purchase = p["id"].as_str().unwrap().to_owned();
    // 105 free credits go first (burn order), then 195 of the 500 bought.
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u1", "lite", 6_000_000, 0, 0)),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(s.available(&t), 305 * CREDIT);
    let refund = |id: &str| {
        s.admin(
            "POST",
            &format!("/v1/admin/purchases/{purchase}/refund"),
            json!({"id": id, "reason": "asked for by the customer"}),
        )
    };
    let (st, r) = refund("ref-1");
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["refunded_cents"], 2000);
    assert_eq!(r["credits_removed"], 305 * CREDIT, "what was left, no more");
    assert_eq!(s.available(&t), 0);
    let entries = s.ledger(&t);
    let refunds: Vec<_> = entries.iter().filter(|e| e["type"] == "refund").collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], -305 * CREDIT);
    let notice = s
        .notices(&t)
        .into_iter()
        .find(|n| n["type"] == "refund")
        .expect("a refund notice");
    assert_eq!(notice["data"]["purchase_id"], purchase.as_str());
    assert_eq!(
        s.get(&format!("/v1/purchases/{purchase}"), &t)["status"],
        "refunded"
    );
    // The processor returned the money, once.
    let returned: Vec<_> = s
        .gateway()
        .records()
        .into_iter()
        .filter(|r| r.kind == "refund" && r.outcome == "succeeded")
        .collect();
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].cents, 2000);
    // A retry is the same refund; another one is refused.
    let (st, again) = refund("ref-1");
    assert_eq!((st, &again), (201, &r));
    let (st, v) = refund("ref-2");
    assert_eq!(st, 409, "{v}");
    assert_eq!(s.gateway().records().len(), 2);
    let rec = reconciliation(&s, &account);
    assert_eq!(rec["gateway"]["refunded_cents"], 2000, "{rec}");
    assert_eq!(rec["ledger"]["refunded_cents"], 2000, "{rec}");
    assert_agree(&s, &[(&account, &t)]);
    // Another account's purchase is not found from there.
    let (_, other) = s.account("free", "UTC");
    let (st, _) = s.call(
        "GET",
        &format!("/v1/purchases/{purchase}"),
        Some(&other),
        None,
    );
    assert_eq!(st, 404);
}
