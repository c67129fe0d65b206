//! Plans are paid for: upgrades charged (prorated) before they take effect, renewals charged
//! before their credits, a declining card through past due to free, downgrades at the
//! period end. Time moves with the test clock; the processor's record is the witness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};

const VISA: &str = "4242424242424242";
const DECLINES_LATER: &str = "4000000000000341";
const CREDIT: i64 = 1_000_000;
const DAY: i64 = 86_400;

fn save(s: &Server, token: &str, number: &str) -> String {
    let card = json!({"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"});
    let (st, v) = s.call("POST", "/v1/payment-methods", Some(token), Some(card));
    assert_eq!(st, 201, "{v}");
    v["payment_token"].as_str().unwrap().to_owned()
}

fn choose(s: &Server, token: &str, plan: &str, pm: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "plan": plan });
    if let Some(pm) = pm {
        body["payment_token"] = json!(pm);
    }
    s.call("PUT", "/v1/plan", Some(token), Some(body))
}

/// Plan charges as the processor recorded them: (cents, outcome).
fn plan_charges(s: &Server) -> Vec<(i64, String)> {
    let plan_ids: Vec<String> = ledger_purchases(&s.db_path())
        .into_iter()
        .filter(|p| p.1 == "plan")
        .map(|p| p.0)
        .collect();
    s.gateway()
        .records()
        .into_iter()
        .filter(|r| plan_ids.contains(&r.key))
        .map(|r| (r.cents, r.outcome))
        .collect()
}

fn subscription_grants(s: &Server, token: &str) -> Vec<Value> {
    s.ledger(token)
        .into_iter()
        .filter(|e| e["type"] == "grant" && e["bucket"] == "subscription")
        .collect()
}

fn notices_of(s: &Server, token: &str, kind: &str) -> Vec<Value> {
    s.notices(token)
        .into_iter()
        .filter(|n| n["type"] == kind)
        .collect()
}

/// Upgrades free → pro with a good card; returns its payment token.
fn on_pro(s: &Server, t: &str) -> String {
    let pm = save(s, t, VISA);
    let (st, v) = choose(s, t, "pro", Some(&pm));
    assert_eq!(st, 200, "{v}");
    pm
}

#[test]
fn an_upgrade_charges_the_quoted_price_first_then_grants_the_quoted_credits() {
    let s = Server::start();
    let (account, t) = s.account("free", "UTC");
    let pm = save(&s, &t, VISA);
    s.advance(15 * DAY);
    let quote = s.get("/v1/plan/quote?plan=pro", &t);
    assert_eq!(quote["change"], "upgrade");
    let price = quote["price_cents"].as_i64().unwrap();
    let credits = quote["credits"].as_i64().unwrap();
    assert!(price > 0 && price < 2000, "{quote}");
    assert!(credits > 0, "{quote}");
    // Without a card: nothing changes.
    let (st, v) = choose(&s, &t, "pro", None);
    assert_eq!(st, 402, "{v}");
    assert_eq!(v["error"]["code"], "payment_method_required");
    let before = s.available(&t);
    let (st, v) = choose(&s, &t, "pro", Some(&pm));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["plan"], "pro");
    assert_eq!(v["plan_status"], "active");
    assert_eq!(v["plan_payment_last4"], "4242");
    assert_eq!(plan_charges(&s), [(price, "succeeded".to_owned())]);
    assert_eq!(s.available(&t), before + credits);
    let charged = notices_of(&s, &t, "plan_charged");
    let changed = notices_of(&s, &t, "plan_changed");
    assert_eq!(charged.len(), 1);
    assert_eq!(changed[0]["data"]["reason"], "upgrade");
    // Credits after the payment: the grant's seq follows the charge's notice.
    let grant = s
        .ledger(&t)
        .into_iter()
        .find(|e| e["ref"] == "upgrade")
        .unwrap();
    assert!(grant["seq"].as_i64() > charged[0]["seq"].as_i64());
    // Choosing it again (a double click) charges nothing more.
    let (st, _) = choose(&s, &t, "pro", Some(&pm));
    assert_eq!(st, 200);
    assert_eq!(plan_charges(&s).len(), 1);
    let r = s.call(
        "GET",
        &format!("/v1/admin/reconciliation?account={account}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(r.1["mismatches"], json!([]), "{}", r.1);
    assert!(s.check_db().0);
}

#[test]
fn a_double_clicked_upgrade_is_charged_once() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let pm = save(&s, &t, VISA);
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| choose(&s, &t, "team", Some(&pm))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (st, v) in &answers {
        assert_eq!(*st, 200, "{v}");
        assert_eq!(v["plan"], "team");
    }
    assert_eq!(plan_charges(&s).len(), 1, "{:?}", s.gateway().records());
    assert!(s.check_db().0);
}

#[test]
fn each_renewal_is_charged_before_its_credits_across_month_ends() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    on_pro(&s, &t);
    let account = s.get("/v1/account", &t);
    let seen = subscription_grants(&s, &t).len();
    // The free period ends 30 days after sign-up; pro renews monthly from there.
    let mut end = time_of(&account["period_end"]);
    for round in 1..=3 {
        let wait = (end - s.now()).num_seconds() + 1;
        s.advance(wait);
        within(30, "the renewal is paid", || {
            plan_charges(&s).len() == 1 + round && subscription_grants(&s, &t).len() == seen + round
        });
        let charges = plan_charges(&s);
        assert_eq!(charges.last().unwrap(), &(2000, "succeeded".to_owned()));
        let grant = subscription_grants(&s, &t).pop().unwrap();
        assert_eq!(grant["amount"], 500 * CREDIT);
        let paid = notices_of(&s, &t, "plan_charged").pop().unwrap();
        assert!(
            grant["seq"].as_i64() > paid["seq"].as_i64(),
            "credits before payment"
        );
        end = time_of(&s.get("/v1/account", &t)["period_end"]);
    }
    assert!(s.check_db().0);
}

#[test]
fn a_declining_card_makes_the_plan_past_due_then_free_after_two_retries() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    on_pro(&s, &t);
    let bad = save(&s, &t, DECLINES_LATER);
    let (st, v) = choose(&s, &t, "pro", Some(&bad));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["plan_payment_last4"], "0341");
    let grants = subscription_grants(&s, &t).len();
    let end = time_of(&s.get("/v1/account", &t)["period_end"]);
    s.advance((end - s.now()).num_seconds() + 1);
    within(30, "the renewal is declined", || {
        plan_charges(&s)
            .iter()
            .filter(|c| c.1 == "declined")
            .count()
            == 1
    });
    within(10, "past due", || {
        s.get("/v1/account", &t)["plan_status"] == "past_due"
    });
    assert_eq!(
        subscription_grants(&s, &t).len(),
        grants,
        "no credits unpaid"
    );
    let failed = notices_of(&s, &t, "plan_payment_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        time_of(&failed[0]["data"]["retry_at"]),
        end + chrono::Duration::days(1)
    );
    // Retry after 1 day, declined again; after 3 days, declined a third time: free.
    s.advance(DAY);
    // Declined by the processor, and that answer recorded by the ledger (which schedules
    // the next retry from it) before time moves on.
    within(30, "the first retry", || {
        plan_charges(&s)
            .iter()
            .filter(|c| c.1 == "declined")
            .count()
            == 2
            && notices_of(&s, &t, "plan_payment_failed").len() == 2
    });
    s.advance(2 * DAY);
    within(30, "the second retry", || {
        plan_charges(&s)
            .iter()
            .filter(|c| c.1 == "declined")
            .count()
            == 3
    });
    within(10, "back on free", || {
        s.get("/v1/account", &t)["plan"] == "free"
    });
    let account = s.get("/v1/account", &t);
    assert_eq!(account["plan_status"], "active");
    let changed = notices_of(&s, &t, "plan_changed").pop().unwrap();
    assert_eq!(changed["data"]["reason"], "payment_failed");
    assert_eq!(
        subscription_grants(&s, &t).pop().unwrap()["amount"],
        100 * CREDIT
    );
    assert!(plan_charges(&s)
        .iter()
        .all(|c| c.1 != "succeeded" || c.0 != 2000));
    assert!(s.check_db().0);
}

#[test]
fn a_downgrade_waits_for_the_period_end_and_is_never_charged() {
    let s = Server::start();
    let (_, t) = s.account("free", "UTC");
    on_pro(&s, &t);
    let charges = plan_charges(&s).len();
    let (st, v) = choose(&s, &t, "free", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["plan"], "pro");
    assert_eq!(v["next_plan"], "free");
    let end = time_of(&v["period_end"]);
    s.advance((end - s.now()).num_seconds() + 1);
    within(10, "on free", || s.get("/v1/account", &t)["plan"] == "free");
    assert_eq!(plan_charges(&s).len(), charges, "a downgrade costs nothing");
    assert_eq!(
        subscription_grants(&s, &t).pop().unwrap()["amount"],
        100 * CREDIT
    );
    assert!(s.check_db().0);
}

#[test]
fn a_plan_set_by_staff_renews_free_of_charge() {
    let s = Server::start();
    let (account, t) = s.account("pro", "UTC");
    let grants = subscription_grants(&s, &t).len();
    let end = time_of(&s.get("/v1/account", &t)["period_end"]);
    s.advance((end - s.now()).num_seconds() + 1);
    assert_eq!(subscription_grants(&s, &t).len(), grants + 1);
    assert!(s.gateway().records().is_empty());
    let v = s.get("/v1/account", &t);
    assert_eq!(v["plan_payment_last4"], Value::Null);
    let _ = account;
}
