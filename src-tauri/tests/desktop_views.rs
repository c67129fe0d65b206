//! The views the engine computes, as the app shows them (issue 17 step 1, issue 18 item 4):
//! under a catalog that counts tokens (EasyCoda) and one that counts requests (seed 003),
//! the tray menu, the tooltip, the signed-in glance and the dashboard read the balance in
//! the platform's unit; the purchase dialog shows the balance before buying. Screenshots of
//! each (CREDITBAR_UPDATE_SCREENSHOTS=1 writes them to docs/screenshots).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn follows_the_catalog(test: &str, catalog: &str, plan: &str, model: &str, unit: &str) {
    let Some(work) = in_session(test) else {
        return;
    };
    std::env::set_var(
        "CREDITBAR_CATALOG",
        repo().join(format!("catalogs/{catalog}.toml")),
    );
    let server = Server::start(&work);
    let token = new_account_on(&server, plan);
    let title = format!("{} cr", server.available(&token) / CR);
    let (_driver, wd) = launch_app(&work, &[]);
    sign_in_as(&wd, &server, &token, &title);

    // A week of usage so the pace and the chart have something to show.
    for i in 0..3 {
        server.post("/v1/usage", &token, json!({"id": format!("v-{i}"), "project": "views", "thread": format!("t-{i}"),
            "model": model, "kind": "agent", "status": "completed", "input_tokens": 20_000, "cached_input_tokens": 5_000, "output_tokens": 100_000}));
    }
    let available = server.available(&token);
    let title = format!("{} cr", available / CR);
    // The tray (read from the StatusNotifierItem on the bus): the unit line under the
    // total, the pace, and the balance in the tooltip.
    let t = wait_for("the tray to show the unit", Duration::from_secs(30), || {
        Some(tray(&work)).filter(|t| {
            t["label"] == title.as_str()
                && t["menu"].as_array().is_some_and(|m| {
                    m.iter().any(|l| {
                        l.as_str()
                            .is_some_and(|l| l.starts_with('≈') && l.ends_with(unit))
                    })
                })
        })
    });
    let menu: Vec<String> = serde_json::from_value(t["menu"].clone()).unwrap();
    println!("{catalog} tray menu: {menu:?}, tooltip: {}", t["tooltip"]);
    let hint = menu
        .iter()
        .find(|l| l.starts_with('≈') && l.ends_with(unit))
        .unwrap()
        .clone();
    assert!(
        menu.iter().any(|l| l.ends_with("left at this pace")),
        "the pace in the menu: {menu:?}"
    );
    if let Some(tip) = t["tooltip"].as_str() {
        assert!(tip.contains(&hint), "tooltip {tip}");
    }
    // The signed-in window shows the same glance.
    let lines = wait_for("the glance lines", Duration::from_secs(20), || {
        wd.text("[data-testid=lines]").filter(|l| l.contains(&hint))
    });
    assert!(lines.contains("left at this pace"), "{lines}");
    wd.screenshot(&format!("glance-{catalog}.png"));

    wd.click("[data-testid=open-dashboard]");
    wait_for("the dashboard window", Duration::from_secs(20), || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("dashboard.html")))
    });
    let shown = wait_for("the dashboard's unit", Duration::from_secs(20), || {
        wd.text("[data-testid=unit-hint]")
    });
    assert_eq!(shown, hint);
    let forecast = wd.text("[data-testid=forecast]").unwrap();
    assert!(forecast.contains("At this pace"), "{forecast}");
    // The report form offers this platform's models (its catalog), after "Not sure".
    let offered = wd.call(
        "POST",
        "/execute/sync",
        Some(json!({"args": [], "script":
        "return [...document.querySelectorAll('[data-testid=report-model] option')].map((o) => o.value);"})),
    );
    let mut models: Vec<serde_json::Value> = vec![json!("")];
    models.extend(
        server.get("/v1/catalog", &token)["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].clone()),
    );
    assert_eq!(offered, json!(models), "{models:?}");
    assert!(models.contains(&json!(model)));
    wd.screenshot(&format!("dashboard-{catalog}.png"));

    // The purchase dialog shows the balance (and its unit) before buying.
    wd.call(
        "POST",
        "/execute/sync",
        Some(json!({"args": [], "script":
        "window.__TAURI_INTERNALS__.invoke('open_window', {which: 'purchase'}); return null;"})),
    );
    wait_for("the purchase dialog", Duration::from_secs(20), || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("purchase.html")))
    });
    let now = wait_for("the current balance", Duration::from_secs(20), || {
        wd.text("[data-testid=current-balance]")
    });
    assert!(now.contains(&hint), "{now}");
    wd.screenshot(&format!("purchase-{catalog}.png"));
    wd.call("DELETE", "", None);
}

#[test]
fn tray_and_dashboard_read_tokens_under_easycoda() {
    follows_the_catalog(
        "tray_and_dashboard_read_tokens_under_easycoda",
        "easycoda",
        "free",
        "agent-team",
        " tokens",
    );
}

#[test]
fn tray_and_dashboard_read_requests_under_seed003() {
    follows_the_catalog(
        "tray_and_dashboard_read_requests_under_seed003",
        "seed003",
        "pro",
        "agent",
        " requests",
    );
}

/// Opens `which` (a window kind) through the app's own command, called from the signed-in
/// window (whose capability allows it), and attaches to it.
fn open_window(wd: &WebDriver, which: &str) {
    assert!(
        wd.switch_to(|u| u.contains("signin.html")),
        "the sign-in window"
    );
    wd.call(
        "POST",
        "/execute/sync",
        Some(json!({"args": [which], "script":
        "window.__TAURI_INTERNALS__.invoke('open_window', {which: arguments[0]}); return null;"})),
    );
    wait_for("the window", Duration::from_secs(20), || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains(&format!("{which}.html"))))
    });
}

#[test]
fn plans_and_timezone_from_the_app_an_upgrade_charged_once_under_a_double_click() {
    let Some(work) =
        in_session("plans_and_timezone_from_the_app_an_upgrade_charged_once_under_a_double_click")
    else {
        return;
    };
    // The server's request log is the witness of how many plan changes the app sent:
    // `PUT /v1/plan` is idempotent on the server (a second one for the plan already held
    // charges nothing), so the charge alone could not tell one request from two.
    let server = Server::start_with_request_log(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);

    // A card saved in the purchase dialog; then replaced there by another.
    open_window(&wd, "purchase");
    wait_for("the add-card form", Duration::from_secs(20), || {
        wd.find("[data-testid=card-number]")
    });
    wd.type_into("[data-testid=card-number]", "4242424242424242");
    wd.type_into("[data-testid=card-expiry]", "12/30");
    wd.type_into("[data-testid=card-cvc]", "123");
    wd.click("[data-testid=save-card]");
    wait_for("the saved card", Duration::from_secs(20), || {
        wd.text("[data-testid=card]").filter(|c| c.contains("4242"))
    });
    let balance = wd.text("[data-testid=current-balance]").unwrap();
    assert!(balance.contains("505.00 credits"), "{balance}");
    wd.click("[data-testid=replace-card]");
    wd.type_into("[data-testid=card-number]", "5555555555554444");
    wd.type_into("[data-testid=card-expiry]", "11/31");
    wd.type_into("[data-testid=card-cvc]", "321");
    wd.screenshot("purchase-replace-card.png");
    wd.click("[data-testid=save-card]");
    wait_for("the replacing card", Duration::from_secs(20), || {
        wd.text("[data-testid=card]").filter(|c| c.contains("4444"))
    });

    // The plan chooser: every plan with what choosing it does now.
    open_window(&wd, "settings");
    let summary = wait_for("the plan choices", Duration::from_secs(20), || {
        wd.text("[data-testid=plan-summary-team]")
    });
    let quote = server.get("/v1/plan/quote?plan=team", &token);
    assert_eq!(quote["change"], "upgrade", "{quote}");
    let cents = quote["price_cents"].as_i64().unwrap();
    assert!(
        summary.contains(&format!("${}.{:02} now", cents / 100, cents % 100)),
        "{summary} vs {quote}"
    );
    wd.click("[data-testid=plan-team]");
    let id = wait_for("the confirm button", Duration::from_secs(20), || {
        wd.find("[data-testid=plan-confirm]")
    });
    std::thread::sleep(Duration::from_millis(300)); // the next frame, for the picture only
    wd.screenshot("settings-plan.png");
    // A double click on confirm: the second click lands while the first is on its way.
    wd.call("POST", &format!("/element/{id}/click"), None);
    wd.call("POST", &format!("/element/{id}/click"), None);
    wait_for("the plan changed", Duration::from_secs(30), || {
        wd.text("[data-testid=saved]")
            .filter(|s| s.contains("team"))
    });
    assert_eq!(server.get("/v1/account", &token)["plan"], "team");
    let purchases = server.get("/v1/purchases", &token);
    let plan_charges: Vec<_> = purchases["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"] == "plan")
        .collect();
    assert_eq!(plan_charges.len(), 1, "charged once: {purchases}");
    assert_eq!(plan_charges[0]["price_cents"].as_i64(), Some(cents));
    // Both clicks have been handled by now (the second one, had it been sent, waits on the
    // engine behind the first); give a stray request time to arrive, then count.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        Server::requests(&work, "PUT", "/v1/plan"),
        1,
        "the app asked the server once under a double click"
    );

    // The timezone: a typo is named and changes nothing; a real zone is saved.
    wd.type_into("[data-testid=timezone]", "Mars/Olympus_Mons");
    wd.click("[data-testid=timezone-save]");
    let e = wait_for("the timezone error", Duration::from_secs(20), || {
        wd.text("[data-testid=error]")
    });
    assert!(e.contains("unknown timezone `Mars/Olympus_Mons`"), "{e}");
    assert_eq!(
        server.get("/v1/account", &token)["timezone"],
        "Europe/Paris"
    );
    wd.type_into("[data-testid=timezone]", "America/New_York");
    wd.click("[data-testid=timezone-save]");
    wait_for("the timezone saved", Duration::from_secs(20), || {
        wd.text("[data-testid=saved]")
            .filter(|s| s.contains("America/New_York"))
    });
    assert_eq!(
        server.get("/v1/account", &token)["timezone"],
        "America/New_York"
    );
    wd.screenshot("settings-timezone.png");
    wd.call("DELETE", "", None);
}

#[test]
fn the_dashboard_shows_each_lots_expiry_and_what_each_bucket_paid_for_a_charge() {
    let Some(work) =
        in_session("the_dashboard_shows_each_lots_expiry_and_what_each_bucket_paid_for_a_charge")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    // 7 credits: the daily 5 first, then 2 from the plan (the burn order).
    server.spend(&token, "lots-1", 7);
    let account = server.get("/v1/account", &token)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.post(
        &format!("/v1/admin/accounts/{account}/grants"),
        ADMIN,
        json!({"id": "lots-bonus", "amount": 20 * CR, "reason": "promo"}),
    );
    // A bonus lot with an expiry: the dashboard says exactly when (issue 17 step 4).
    let as_of: chrono::DateTime<chrono::Utc> = server.get("/v1/balance", &token)["as_of"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expires = as_of + chrono::Duration::days(10);
    server.post(
        &format!("/v1/admin/accounts/{account}/grants"),
        ADMIN,
        json!({"id": "lots-dated", "amount": 3 * CR, "reason": "compensation",
            "expires_at": expires.to_rfc3339()}),
    );
    wait_for("the app to see it", Duration::from_secs(20), || {
        wd.text("[data-testid=title]").filter(|t| t == "521 cr")
    });
    wd.click("[data-testid=open-dashboard]");
    wait_for("the dashboard window", Duration::from_secs(20), || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("dashboard.html")))
    });
    let paid = wait_for("the charge's breakdown", Duration::from_secs(20), || {
        wd.text("[data-charge=lots-1] [data-testid=breakdown]")
    });
    assert_eq!(paid, "daily 5.00 credits · subscription 2.00 credits");
    // The balance (the title) comes from the event stream, the lots from the ledger pages
    // the next sync pulls: the window may paint the charge before the grants' entries are
    // in the cache, and reloads when they are.
    let lots = wait_for("the bonus lots", Duration::from_secs(20), || {
        let lots = wd.call("POST", "/execute/sync", Some(json!({"args": [], "script":
            "return [...document.querySelectorAll('[data-testid=lot][data-bucket=bonus]')].map((l) => [l.dataset.available, l.dataset.expires, l.lastElementChild.textContent]);"})));
        Some(lots).filter(|l| l.as_array().is_some_and(|a| a.len() == 2))
    });
    assert_eq!(lots[0][0], json!((20 * CR).to_string()), "{lots}");
    assert_eq!(lots[0][1], "never", "{lots}");
    assert_eq!(lots[0][2], "never expires", "{lots}");
    assert_eq!(lots[1][0], json!((3 * CR).to_string()), "{lots}");
    let shown: chrono::DateTime<chrono::Utc> = lots[1][1].as_str().unwrap().parse().unwrap();
    assert_eq!(shown, expires, "{lots}");
    assert!(
        lots[1][2].as_str().unwrap().starts_with("expires "),
        "{lots}"
    );
    wd.screenshot("dashboard-lots.png");
    wd.call(
        "POST",
        "/execute/sync",
        Some(json!({"args": [], "script":
        "document.querySelector('[data-testid=charges]').scrollIntoView(); return null;"})),
    );
    std::thread::sleep(Duration::from_millis(300)); // the next frame, for the picture only
    wd.screenshot("dashboard-charges.png");
    wd.call("DELETE", "", None);
}

/// Issue 17 step 6: the dashboard lists the reviews with their outcome; a resolution is
/// told once (a notification) and shown in the list.
#[test]
fn the_dashboard_lists_reviews_and_a_resolution_is_told_once() {
    let Some(work) = in_session("the_dashboard_lists_reviews_and_a_resolution_is_told_once") else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    server.spend(&token, "rv-1", 3);
    wait_for("the app to see it", Duration::from_secs(20), || {
        wd.text("[data-testid=title]").filter(|t| t == "502 cr")
    });
    wd.click("[data-testid=open-dashboard]");
    wait_for("the dashboard window", Duration::from_secs(20), || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("dashboard.html")))
    });
    wait_for("the report form", Duration::from_secs(20), || {
        wd.find("#r-thread")
    });
    wd.type_into("#r-thread", "t");
    wd.type_into("#r-desc", "It looped on a failing preview.");
    wd.click("#r-model option[value=premium]");
    wd.type_into("#r-len", "12");
    wd.click("[data-testid=report-submit]");
    let outcome = wait_for("the review in the list", Duration::from_secs(20), || {
        wd.text("[data-testid=reviews] [data-testid=outcome]")
    });
    assert_eq!(outcome, "Open: we are looking at it");
    let id = server.get("/v1/usage-reviews", &token)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.post(
        &format!("/v1/admin/usage-reviews/{id}/resolve"),
        ADMIN,
        json!({"grant_amount": 2 * CR, "note": "a loop on our side"}),
    );
    let outcome = wait_for(
        "the resolution in the list",
        Duration::from_secs(30),
        || {
            wd.text("[data-testid=reviews] [data-testid=outcome]")
                .filter(|o| o.starts_with("Resolved"))
        },
    );
    assert_eq!(outcome, "Resolved: 2.00 credits back — a loop on our side");
    wait_for(
        "the resolution's notification",
        Duration::from_secs(20),
        || Some(()).filter(|_| notifications_titled(&work, "Usage review resolved") >= 1),
    );
    // Told once: a later notification arrives after any repeat would have.
    server.grant(
        &token,
        json!({"id": "after-review", "amount": CR, "reason": "promo"}),
    );
    wait_for("the bonus notification", Duration::from_secs(20), || {
        Some(()).filter(|_| notifications_titled(&work, "Bonus credits received") >= 1)
    });
    assert_eq!(notifications_titled(&work, "Usage review resolved"), 1);
    wd.call(
        "POST",
        "/execute/sync",
        Some(json!({"args": [], "script":
        "document.querySelector('[data-testid=reviews]').scrollIntoView(); return null;"})),
    );
    std::thread::sleep(Duration::from_millis(300)); // the next frame, for the picture only
    wd.screenshot("dashboard-reviews.png");
    wd.call("DELETE", "", None);
}
