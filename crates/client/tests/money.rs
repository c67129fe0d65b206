//! The CLI's money commands against the real server, in a private session with a real
//! keychain: `creditbar plan` (the price and prorated credits shown before the change is
//! confirmed, the card charged once) and `creditbar purchases` (every status).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

const GOOD_CARD: &str = "4242424242424242";

#[test]
fn plan_shows_the_price_and_credits_before_changing_and_charges_once() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);
    session.add_card(GOOD_CARD).ok();

    let shown = session.creditbar(&["plan"]).ok();
    assert!(shown.stdout.contains("Plan: pro"), "{shown:?}");
    // Every plan with what choosing it does now (views::plan_choices).
    assert!(
        shown.stdout.contains("team: $") && shown.stdout.contains("then $100.00 a month"),
        "{shown:?}"
    );

    // Not a terminal and no --yes: it says what would happen and changes nothing.
    let asked = session.creditbar(&["plan", "team"]);
    assert_ne!(asked.code, Some(0), "{asked:?}");
    assert!(asked.stdout.contains("Upgrade to team now: $"), "{asked:?}");
    assert!(asked.stderr.contains("--yes"), "{asked:?}");
    assert_eq!(server.get("/v1/account", &account.token)["plan"], "pro");
    assert!(server.purchases(&account).is_empty());

    let quote = server.get("/v1/plan/quote?plan=team", &account.token);
    let price = quote["price_cents"].as_i64().unwrap();
    let changed = session.creditbar(&["plan", "team", "--yes"]).ok();
    assert!(changed.stdout.contains("Plan: team"), "{changed:?}");
    assert!(changed.stdout.contains("ending 4242"), "{changed:?}");
    // Again: already there, nothing charged.
    let again = session.creditbar(&["plan", "team", "--yes"]).ok();
    assert!(again.stdout.contains("on team already"), "{again:?}");
    let purchases = server.purchases(&account);
    assert_eq!(purchases.len(), 1, "{purchases:?}");
    assert_eq!(purchases[0]["source"], "plan");
    assert_eq!(purchases[0]["price_cents"], price);

    let listed = session.creditbar(&["purchases"]).ok();
    assert!(listed.stdout.contains("succeeded"), "{listed:?}");
    assert!(listed.stdout.contains("plan"), "{listed:?}");
}

#[test]
fn purchases_lists_failed_and_succeeded_ones() {
    let server = Server::start();
    let account = server.account("free");
    let session = Session::start();
    session.login(&server, &account);
    session.add_card("4000000000000341").ok();
    let declined = session.creditbar(&["buy", "pack_500"]);
    assert_ne!(declined.code, Some(0), "{declined:?}");
    session.add_card(GOOD_CARD).ok();
    session.creditbar(&["buy", "pack_500"]).ok();
    let listed = session.creditbar(&["purchases", "--json"]).ok();
    let items: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let statuses: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "succeeded"], "{listed:?}");
}
