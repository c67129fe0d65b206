#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

#[test]
fn a_charge_spanning_daily_and_subscription_is_one_entry_per_lot() {
    let s = Server::start();
    let (_, t) = s.account("pro", "Europe/Paris");
    assert_eq!(s.available(&t), 505 * CREDIT);
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u1", "premium", 30_000, 0, 30_000)),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["charged"], json!(18 * CREDIT));
    assert_eq!(v["breakdown"].as_array().unwrap().len(), 2);
    assert_eq!(s.available(&t), 487 * CREDIT);
    s.assert_balance_is_ledger_sum(&t);
    assert!(s.check_db().0);
}
