//! End to end, the settings window: auto-refill set up through the form buys exactly one
//! pack when usage on the server crosses the threshold (one notification, the tray follows),
//! and the notification settings chosen in the form are kept and obeyed; launch at login
//! writes and removes the session's autostart entry; sign out empties the keychain and the
//! cache. The real app under
//! Xvfb, driven through tauri-driver, against the real creditbar-server (tests/common).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

/// A DOM property of the element `css` (`checked`, `value`).
fn property(wd: &WebDriver, css: &str, name: &str) -> Value {
    let id = wd.find(css).unwrap_or_else(|| panic!("no {css}"));
    wd.call("GET", &format!("/element/{id}/property/{name}"), None)
}

fn set_checked(wd: &WebDriver, css: &str, on: bool) {
    if property(wd, css, "checked") != json!(on) {
        wd.click(css);
    }
    assert_eq!(property(wd, css, "checked"), json!(on), "{css}");
}

/// Opens the settings window from the dashboard's Settings button and attaches to it once
/// its form has loaded.
fn open_settings(wd: &WebDriver) {
    wait_for("the dashboard window", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("dashboard.html")))
    });
    wait_for("the dashboard's Settings button", T, || {
        wd.find("[data-testid=open-settings]")
    });
    wd.click("[data-testid=open-settings]");
    wait_for("the settings window", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("settings.html")))
    });
    wait_for("the settings form", T, || {
        wd.find("[data-testid=refill-enabled]")
    });
}

/// Saves `number` through the purchase dialog's add-card form, then closes the dialog and
/// opens the dashboard from the sign-in window.
fn add_card(wd: &WebDriver, number: &str) {
    wd.click("[data-testid=open-purchase]");
    wait_for("the purchase dialog", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("purchase.html")))
    });
    wait_for("the add-card form", T, || {
        wd.find("[data-testid=card-number]")
    });
    wd.type_into("[data-testid=card-number]", number);
    wd.type_into("[data-testid=card-expiry]", "12/30");
    wd.type_into("[data-testid=card-cvc]", "123");
    wd.click("[data-testid=save-card]");
    let card = wait_for("the saved card", T, || wd.text("[data-testid=card]"));
    assert!(card.contains(&number[12..]), "{card}");
    wd.call("DELETE", "/window", None);
    wait_for("the sign-in window", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("signin.html")))
    });
    wd.click("[data-testid=open-dashboard]");
}

/// Turns auto-refill on through the form: below 100 credits, buy pack_500, at most 3 times
/// a month. Returns the sentence the form shows.
fn enable_auto_refill(wd: &WebDriver) -> String {
    set_checked(wd, "[data-testid=refill-enabled]", true);
    wd.type_into("[data-testid=refill-threshold]", "100");
    wd.click("[data-testid=refill-pack] option[value=pack_500]");
    assert_eq!(
        property(wd, "[data-testid=refill-pack]", "value"),
        json!("pack_500")
    );
    wd.type_into("[data-testid=refill-limit]", "3");
    let sentence = wait_for("the auto-refill sentence", T, || {
        wd.text("[data-testid=refill-sentence]")
    });
    wd.click("[data-testid=refill-save]");
    let saved = wait_for("the save confirmation", T, || {
        wd.text("[data-testid=saved]")
    });
    assert_eq!(saved, "Auto-refill is on.");
    assert!(wd.text("[data-testid=error]").is_none());
    sentence
}

fn menu(tray: &Value) -> Vec<String> {
    serde_json::from_value(tray["menu"].clone()).unwrap_or_default()
}

fn auto_refills(server: &Server, token: &str) -> usize {
    let purchases = server.get("/v1/purchases", token);
    purchases["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"] == "auto_refill")
        .count()
}

#[test]
fn settings_turn_on_auto_refill_that_buys_once_and_keep_notification_choices() {
    let Some(work) =
        in_session("settings_turn_on_auto_refill_that_buys_once_and_keep_notification_choices")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    let account = server.get("/v1/account", &token)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    add_card(&wd, "4242424242424242");

    // Settings, from the dashboard.
    open_settings(&wd);
    assert_eq!(
        property(&wd, "[data-testid=refill-enabled]", "checked"),
        json!(false)
    );
    assert!(
        wd.find("[data-testid=refill-sentence]").is_none(),
        "no sentence while off"
    );
    let t = wait_for("the tray", T, || {
        Some(tray(&work)).filter(|t| t["label"] == "505 cr")
    });
    assert!(menu(&t).iter().any(|l| l == "Set up auto-refill…"), "{t}");

    // Auto-refill on: below 100 credits, buy pack_500, at most 3 times a month.
    let sentence = enable_auto_refill(&wd);
    assert_eq!(
        sentence,
        "When your balance falls below 100.00 credits, creditbar buys 500.00 credits for $20.00 \
         with visa •••• 4242 — at most 3 times a month."
    );
    assert_eq!(
        wd.text("[data-testid=refill-sentence]").as_deref(),
        Some(sentence.as_str())
    );
    wd.screenshot("settings.png");

    let on = server.get("/v1/auto-refill", &token);
    assert_eq!(on["enabled"], true, "{on}");
    assert_eq!(on["threshold"], json!(100 * CR), "{on}");
    assert_eq!(on["pack"], "pack_500", "{on}");
    assert_eq!(on["monthly_limit"], 3, "{on}");
    assert_eq!(on["payment_token_last4"], "4242", "{on}");
    assert_eq!(on["refills_this_month"], 0, "{on}");
    wait_for("the tray's Auto-refill toggle", T, || {
        Some(tray(&work)).filter(|t| menu(t).iter().any(|l| l == "Auto-refill"))
    });

    // Usage across the threshold: 505 -> 95 credits, one pack of 500 -> 595.
    server.spend(&token, "settings-1", 410);
    wait_for("the tray to show 595 cr", T, || {
        Some(tray(&work)).filter(|t| t["label"] == "595 cr")
    });
    wait_for("the auto-refill notification", T, || {
        Some(()).filter(|_| notifications_titled(&work, "Auto-refill charged") >= 1)
    });
    assert_eq!(auto_refills(&server, &token), 1, "one refill per crossing");
    assert_eq!(server.available(&token), 595 * CR, "505 - 410 + 500");
    assert_eq!(
        server.get("/v1/auto-refill", &token)["refills_this_month"],
        1
    );

    // Notifications: warn below 590 credits, no bonus notifications.
    assert_eq!(
        property(&wd, "[data-testid=low-threshold]", "value"),
        json!("50")
    );
    wd.type_into("[data-testid=low-threshold]", "590");
    set_checked(&wd, "[data-testid=kind-bonus_received]", false);
    wd.click("[data-testid=alerts-save]");
    wait_for("the notification settings to save", T, || {
        wd.text("[data-testid=saved]")
            .filter(|s| s == "Notification settings saved.")
    });
    assert!(wd.text("[data-testid=error]").is_none());

    // Loaded afresh, the window shows what the engine kept. (Reloaded rather than closed:
    // WebDriver's close removes only the web view, leaving Tauri's window behind, so a
    // reopen would focus that husk; a person closes windows through the window manager.)
    wd.call("POST", "/refresh", None);
    wait_for("the reloaded settings form", T, || {
        wd.find("[data-testid=refill-enabled]")
    });
    assert!(wd.text("[data-testid=saved]").is_none(), "a fresh page");
    assert_eq!(
        property(&wd, "[data-testid=low-threshold]", "value"),
        json!("590")
    );
    assert_eq!(
        property(&wd, "[data-testid=kind-bonus_received]", "checked"),
        json!(false)
    );
    assert_eq!(
        property(&wd, "[data-testid=kind-refill_charged]", "checked"),
        json!(true)
    );
    assert_eq!(
        property(&wd, "[data-testid=refill-enabled]", "checked"),
        json!(true)
    );
    assert_eq!(
        property(&wd, "[data-testid=refill-threshold]", "value"),
        json!("100")
    );
    assert_eq!(
        property(&wd, "[data-testid=refill-pack]", "value"),
        json!("pack_500")
    );
    assert_eq!(
        property(&wd, "[data-testid=refill-limit]", "value"),
        json!("3")
    );
    assert_eq!(wd.text("[data-testid=refill-sentence]"), Some(sentence));
    assert_eq!(
        wd.text("[data-testid=refills]").as_deref(),
        Some("1 refill(s) this month."),
        "the refill counted"
    );

    // And the engine obeys them: a bonus passes silently, 600 -> 585 crosses 590 and warns.
    server.post(
        &format!("/v1/admin/accounts/{account}/grants"),
        ADMIN,
        json!({"id": "settings-bonus", "amount": 5 * CR, "reason": "promo", "note": "e2e"}),
    );
    wait_for("the tray to show 600 cr", T, || {
        Some(tray(&work)).filter(|t| t["label"] == "600 cr")
    });
    server.spend(&token, "settings-2", 15);
    wait_for("the low-balance notification", T, || {
        Some(()).filter(|_| notifications_titled(&work, "Credits running low") >= 1)
    });
    wait_for("the tray to show 585 cr", T, || {
        Some(tray(&work)).filter(|t| t["label"] == "585 cr")
    });
    assert_eq!(notifications_titled(&work, "Credits running low"), 1);
    assert_eq!(
        notifications_titled(&work, "Bonus credits received"),
        0,
        "bonus notifications were switched off"
    );
    assert_eq!(
        notifications_titled(&work, "Auto-refill charged"),
        1,
        "the refill is announced once"
    );
    assert_eq!(
        auto_refills(&server, &token),
        1,
        "585 is above the threshold"
    );

    wd.call("DELETE", "", None);
}

#[test]
fn settings_show_why_the_server_turned_auto_refill_off_after_a_declined_refill() {
    let Some(work) =
        in_session("settings_show_why_the_server_turned_auto_refill_off_after_a_declined_refill")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    // Saved fine, every later charge declined (api.md, test payment gateway).
    add_card(&wd, "4000000000000341");
    open_settings(&wd);
    enable_auto_refill(&wd);
    assert_eq!(server.get("/v1/auto-refill", &token)["enabled"], true);

    // 505 -> 95 credits: the refill is tried, declined, and auto-refill turned off.
    server.spend(&token, "declined-1", 410);
    wait_for("the auto-refill failure notification", T, || {
        Some(()).filter(|_| notifications_titled(&work, "Auto-refill failed") >= 1)
    });
    let off = server.get("/v1/auto-refill", &token);
    assert_eq!(off["enabled"], false, "{off}");
    let reason = off["disabled_reason"]
        .as_str()
        .unwrap_or_else(|| panic!("{off}"));
    assert_eq!(server.available(&token), 95 * CR, "a decline adds nothing");
    wait_for("the tray to show 95 cr", T, || {
        Some(tray(&work)).filter(|t| t["label"] == "95 cr")
    });

    // The settings window, loaded afresh, says it is off and why.
    wd.call("POST", "/refresh", None);
    let shown = wait_for("the reason auto-refill was turned off", T, || {
        wd.text("[data-testid=disabled-reason]")
    });
    assert_eq!(shown, format!("Auto-refill was turned off: {reason}."));
    assert_eq!(
        property(&wd, "[data-testid=refill-enabled]", "checked"),
        json!(false)
    );
    assert!(wd.find("[data-testid=refill-sentence]").is_none());
    assert_eq!(notifications_titled(&work, "Auto-refill failed"), 1);
    assert_eq!(notifications_titled(&work, "Auto-refill charged"), 0);
    wd.screenshot("settings-refill-declined.png");

    wd.call("DELETE", "", None);
}

/// The secret `item` of the creditbar service in the session's keychain, if any.
fn secret(item: &str) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "creditbar", "username", item])
        .output()
        .unwrap();
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
}

/// Rows left in the cache's tables, read with Python's sqlite3 (the app keeps it open).
fn cached_rows(work: &std::path::Path) -> u64 {
    let sql = "SELECT (SELECT COUNT(*) FROM documents) + (SELECT COUNT(*) FROM ledger) \
               + (SELECT COUNT(*) FROM notices) + (SELECT COUNT(*) FROM usage_events) \
               + (SELECT COUNT(*) FROM purchases)";
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])",
        ])
        .arg(work.join("data/cache.db"))
        .arg(sql)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn settings_launch_at_login_and_sign_out_clear_everything_they_say() {
    let Some(work) = in_session("settings_launch_at_login_and_sign_out_clear_everything_they_say")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    add_card(&wd, "4242424242424242");
    open_settings(&wd);

    // Launch at login: an XDG autostart entry that starts this binary, and gone again.
    let autostart = work.join("home/.config/autostart");
    set_checked(&wd, "[data-testid=autostart]", true);
    let entry = wait_for("the autostart entry", T, || {
        std::fs::read_dir(&autostart)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "desktop"))
    });
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("Exec=") && l.contains("creditbar-desktop")),
        "{text}"
    );
    set_checked(&wd, "[data-testid=autostart]", false);
    wait_for("the autostart entry to go", T, || {
        Some(()).filter(|_| !entry.exists())
    });

    // Sign out: both keychain items, the cached account and history are gone, the tray
    // offers to sign in again and the sign-in window opens.
    assert_eq!(secret("account-token").as_deref(), Some(token.as_str()));
    assert!(secret("payment-token").is_some(), "the saved card's token");
    assert!(cached_rows(&work) > 0, "the cache holds the account");
    wd.click("[data-testid=sign-out]");
    wait_for("the keychain to be emptied", T, || {
        Some(()).filter(|_| secret("account-token").is_none() && secret("payment-token").is_none())
    });
    wait_for("the cache to be emptied", T, || {
        Some(()).filter(|_| cached_rows(&work) == 0)
    });
    let t = wait_for("the tray to offer sign-in", T, || {
        Some(tray(&work)).filter(|t| menu(t).iter().any(|l| l == "Sign in…"))
    });
    assert!(
        !menu(&t).iter().any(|l| l.contains("credits available")),
        "{t}"
    );
    wait_for("the sign-in window", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("signin.html")))
    });
    wait_for("the sign-in form", T, || wd.find("#token"));

    wd.call("DELETE", "", None);
}

/// Issue 17 step 2, past due: a renewal the processor declines makes the plan past due;
/// the settings window says so with its fix-it actions; replacing the card (in the
/// purchase dialog the fix opens) and "Pay … now" retry the charge at once, and it pays.
#[test]
fn a_declined_renewal_is_past_due_in_settings_and_a_new_card_pays_the_retry() {
    let Some(work) =
        in_session("a_declined_renewal_is_past_due_in_settings_and_a_new_card_pays_the_retry")
    else {
        return;
    };
    let server = Server::start(&work);
    let token = new_account_on(&server, "free");
    let card = |number: &str| -> String {
        server.post(
            "/v1/payment-methods",
            &token,
            json!({"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
        )["payment_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let choose = |pm: &str| {
        let r = server
            .http
            .put(format!("{}/v1/plan", server.base))
            .bearer_auth(&token)
            .json(&json!({"plan": "pro", "payment_token": pm}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "PUT /v1/plan: {}", r.status());
    };
    // Pro, paid with a good card; then the plan's card is one the processor declines.
    choose(&card("4242424242424242"));
    choose(&card("4000000000000341"));
    let end: chrono::DateTime<chrono::Utc> = server.get("/v1/account", &token)["period_end"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = server
        .http
        .post(format!("{}/v1/admin/clock", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"now": (end + chrono::Duration::seconds(1)).to_rfc3339()}))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    wait_for("the renewal declined: past due", T, || {
        Some(()).filter(|_| server.get("/v1/account", &token)["plan_status"] == "past_due")
    });
    let plan_charges = || -> Vec<String> {
        server.get("/v1/purchases", &token)["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["source"] == "plan")
            .map(|p| p["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(plan_charges(), ["succeeded", "failed"]);

    let (_driver, wd) = launch_app(&work, &[]);
    wd.type_into("#server", &server.base);
    wd.type_into("#token", &token);
    wd.click("[data-testid=submit]");
    wait_for("the balance after sign-in", T, || {
        wd.text("[data-testid=title]")
            .filter(|t| t.ends_with(" cr") && !t.starts_with('—'))
    });
    wd.click("[data-testid=open-dashboard]");
    open_settings(&wd);
    let said = wait_for("past due in settings", T, || {
        wd.text("[data-testid=plan-past-due]")
    });
    assert!(said.contains("renewal charge failed"), "{said}");
    assert!(wd.find("[data-testid=plan-retry]").is_some());
    std::thread::sleep(Duration::from_millis(300)); // the next frame, for the picture only
    wd.screenshot("settings-past-due.png");

    // The fix: replace the card in the purchase dialog, then pay now.
    wd.click("[data-testid=plan-fix-card]");
    wait_for("the purchase dialog", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("purchase.html")))
    });
    wait_for("the add-card form", T, || {
        wd.find("[data-testid=card-number]")
    });
    wd.type_into("[data-testid=card-number]", "5555555555554444");
    wd.type_into("[data-testid=card-expiry]", "11/31");
    wd.type_into("[data-testid=card-cvc]", "321");
    wd.click("[data-testid=save-card]");
    wait_for("the new card", T, || {
        wd.text("[data-testid=card]").filter(|c| c.contains("4444"))
    });
    wd.call("DELETE", "/window", None);
    wait_for("back to the settings window", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("settings.html")))
    });
    wd.click("[data-testid=plan-retry]");
    wait_for("the retry paid: active", T, || {
        Some(()).filter(|_| server.get("/v1/account", &token)["plan_status"] == "active")
    });
    assert_eq!(plan_charges(), ["succeeded", "failed", "succeeded"]);
    assert_eq!(
        server.get("/v1/account", &token)["plan_payment_last4"],
        "4444"
    );
    // The settings window, read again, says nothing of past due any more.
    wd.call("POST", "/refresh", None);
    wait_for("the plan choices", T, || {
        wd.find("[data-testid=plan-summary-pro]")
    });
    assert!(
        wd.find("[data-testid=plan-past-due]").is_none(),
        "no longer past due"
    );
    wd.screenshot("settings-past-due-paid.png");
    wd.call("DELETE", "", None);
}
