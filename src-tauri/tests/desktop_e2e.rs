//! End to end: the built desktop app under Xvfb, a private D-Bus session (gnome-keyring,
//! dbusmock's notification daemon, a StatusNotifierWatcher), driven through tauri-driver +
//! WebKitWebDriver, against the real creditbar-server binary on a loopback port.
//!
//! The test re-runs itself inside `xvfb-run dbus-run-session tests/desktop/session.sh`, so
//! the app, the driver and the assertions all share that session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn desktop_signs_in_follows_the_balance_live_and_notifies_once() {
    let Some(work) = in_session("desktop_signs_in_follows_the_balance_live_and_notifies_once")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    let stored = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "creditbar",
            "username",
            "account-token",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&stored.stdout).trim(),
        token,
        "the token is in the keychain"
    );
    wd.screenshot("desktop-signed-in.png");

    // The real tray: its label and menu follow the server.
    let t = wait_for("the tray to show 505 cr", Duration::from_secs(30), || {
        Some(tray(&work)).filter(|t| t["label"] == "505 cr")
    });
    let menu: Vec<String> = serde_json::from_value(t["menu"].clone()).unwrap();
    assert!(
        menu.iter().any(|l| l == "505.00 credits available"),
        "{menu:?}"
    );
    assert!(
        menu.iter().any(|l| l.starts_with("Daily 5.00 · resets in")),
        "{menu:?}"
    );
    for action in [
        "Buy credits…",
        "Open dashboard",
        "Sync now",
        "Sign out",
        "Quit",
    ] {
        assert!(
            menu.iter().any(|l| l == action),
            "{action} missing from {menu:?}"
        );
    }

    // Usage on the server moves the window and the tray, live.
    server.spend(&token, "e2e-1", 100);
    wait_for("the window to show 405 cr", Duration::from_secs(20), || {
        wd.text("[data-testid=title]").filter(|t| t == "405 cr")
    });
    wait_for("the tray to show 405 cr", Duration::from_secs(20), || {
        Some(tray(&work)).filter(|t| t["label"] == "405 cr")
    });
    assert_eq!(notifications(&work, "Credits running low"), 0);

    // Crossing the 50-credit default threshold notifies once, and only once.
    server.spend(&token, "e2e-2", 360);
    wait_for(
        "the low-balance notification",
        Duration::from_secs(20),
        || Some(()).filter(|_| notifications(&work, "Credits running low") >= 1),
    );
    server.spend(&token, "e2e-3", 1);
    let t = wait_for("the tray to show 44 cr", Duration::from_secs(20), || {
        Some(tray(&work)).filter(|t| t["label"] == "44 cr")
    });
    assert!(
        t["menu"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "44.00 credits available"),
        "{t}"
    );
    assert_eq!(
        notifications(&work, "Credits running low"),
        1,
        "low balance must fire once per crossing"
    );
    wd.screenshot("desktop-low-balance.png");
    wd.call("DELETE", "", None);
}

#[test]
fn desktop_purchase_dialog_shows_declines_and_buys_once_on_a_double_click() {
    let Some(work) =
        in_session("desktop_purchase_dialog_shows_declines_and_buys_once_on_a_double_click")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);

    // The purchase dialog: a declined card shows the server's reason and changes nothing.
    wd.click("[data-testid=open-purchase]");
    wait_for("the purchase dialog", Duration::from_secs(20), || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("purchase.html")))
    });
    wait_for("the add-card form", Duration::from_secs(20), || {
        wd.find("[data-testid=card-number]")
    });
    wd.type_into("[data-testid=card-number]", "4000000000000002");
    wd.type_into("[data-testid=card-expiry]", "12/30");
    wd.type_into("[data-testid=card-cvc]", "123");
    wd.click("[data-testid=save-card]");
    let declined = wait_for("the decline message", Duration::from_secs(20), || {
        wd.text("[data-testid=card-error]")
    });
    assert!(declined.to_lowercase().contains("declined"), "{declined}");
    wd.screenshot("purchase-declined.png");
    assert_eq!(
        server.available(&token),
        505 * CR,
        "a decline changes nothing"
    );

    // A good card, then pack_500 with a double click on confirm: one purchase.
    wd.type_into("[data-testid=card-number]", "4242424242424242");
    wd.click("[data-testid=save-card]");
    let card = wait_for("the saved card", Duration::from_secs(20), || {
        wd.text("[data-testid=card]")
    });
    assert!(card.contains("4242"), "{card}");
    wd.click("[data-testid=choice-pack_500]");
    wd.screenshot("purchase-dialog.png");
    wd.click("[data-testid=confirm]");
    // The second click of the double click: when the first purchase was quick the button
    // is already gone (the dialog shows the result), and that is a double click that
    // bought once too.
    if let Some(id) = wd.find("[data-testid=confirm]") {
        wd.call("POST", &format!("/element/{id}/click"), None);
    }
    let balance = wait_for("the new balance", Duration::from_secs(30), || {
        wd.text("[data-testid=new-balance]")
    });
    assert_eq!(balance, "1,005.00 credits");
    wd.screenshot("purchase-done.png");
    assert_eq!(server.available(&token), 1005 * CR);
    let purchases = server.get("/v1/purchases", &token);
    assert_eq!(
        purchases["items"].as_array().unwrap().len(),
        1,
        "double click bought once: {purchases}"
    );
    wait_for("the purchase notification", Duration::from_secs(20), || {
        Some(()).filter(|_| notifications_titled(&work, "Purchase complete") >= 1)
    });
    // Exactly once: a later notification (a bonus) arrives after any repeat would have.
    server.grant(
        &token,
        json!({"id": "after-purchase", "amount": CR, "reason": "promo"}),
    );
    wait_for("the bonus notification", Duration::from_secs(20), || {
        Some(()).filter(|_| notifications_titled(&work, "Bonus credits received") >= 1)
    });
    assert_eq!(
        notifications_titled(&work, "Purchase complete"),
        1,
        "the purchase notification, once"
    );

    wd.call("DELETE", "", None);
}

/// The rows the dashboard's usage table shows: (key, charged µcr, events).
fn dashboard_rows(wd: &WebDriver) -> Vec<(String, i64, i64)> {
    let v = wd.call("POST", "/execute/sync", Some(json!({"args": [], "script":
        "return Array.from(document.querySelectorAll('[data-testid=usage-rows] .trow')).map(r => [r.dataset.key, Number(r.dataset.charged), Number(r.dataset.events)])"})));
    serde_json::from_value(v).unwrap_or_default()
}

#[test]
fn desktop_dashboard_groups_usage_by_model_like_the_server_and_reports_a_thread() {
    let Some(work) =
        in_session("desktop_dashboard_groups_usage_by_model_like_the_server_and_reports_a_thread")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    for (i, (model, project, output)) in [
        ("lite", "checkout", 40_000),
        ("premium", "checkout", 90_000),
        ("standard", "search", 25_000),
        ("premium", "search", 10_000),
        ("lite", "docs", 0),
    ]
    .into_iter()
    .enumerate()
    {
        let status = if output == 0 {
            "cancelled"
        } else {
            "completed"
        };
        server.post("/v1/usage", &token, json!({"id": format!("dash-{i}"), "project": project, "thread": format!("thread-{}", i % 2),
            "model": model, "kind": "agent", "status": status, "input_tokens": 1000, "cached_input_tokens": 400, "output_tokens": output}));
    }
    // A pack bought today, so the purchases table has a row in the period.
    let card = server.post(
        "/v1/payment-methods",
        &token,
        json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
    );
    let bought = server.post_once(
        "/v1/purchases",
        &token,
        "dash-pack",
        json!({"pack": "pack_500", "payment_token": card["payment_token"]}),
    );
    let purchase_row = format!("[data-purchase='{}']", bought["id"].as_str().unwrap());
    let available = server.available(&token) / CR;
    wait_for("the app to see the usage", Duration::from_secs(20), || {
        wd.text("[data-testid=title]")
            .filter(|t| *t == format!("{available} cr"))
    });

    wd.click("[data-testid=open-dashboard]");
    wait_for("the dashboard window", Duration::from_secs(20), || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("dashboard.html")))
    });
    wait_for(
        "the dashboard's usage rows",
        Duration::from_secs(20),
        || Some(()).filter(|_| !dashboard_rows(&wd).is_empty()),
    );
    wd.click("[data-testid=group-by] option[value=model]");
    let served: Vec<(String, i64, i64)> = server.get("/v1/usage?group_by=model", &token)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_owned(),
                g["charged"].as_i64().unwrap(),
                g["events"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(served.len(), 3, "{served:?}");
    let mut shown = Vec::new();
    let matched = (0..200).any(|_| {
        shown = dashboard_rows(&wd);
        std::thread::sleep(Duration::from_millis(100));
        shown == served
    });
    assert!(
        matched,
        "grouped by model, the dashboard shows {shown:?}, the server {served:?}"
    );
    let forecast = wd.text("[data-testid=forecast]").unwrap();
    assert!(!forecast.is_empty());
    // Today's purchase is in the default 30 days and in the last 7; which purchases fall
    // in a period is decided, and tested at its edges, in crates/client/src/views.rs.
    for days in ["30", "7"] {
        wd.click(&format!("[data-testid=period] option[value='{days}']"));
        let row = wait_for(
            "the purchase in the period",
            Duration::from_secs(20),
            || wd.text(&purchase_row),
        );
        assert!(
            row.contains("Purchase (pack_500)") && row.contains("$20.00"),
            "{days} days: {row}"
        );
        assert_eq!(wd.text("[data-testid=no-purchases]"), None, "{days} days");
    }
    wd.click("[data-testid=period] option[value='30']");
    wd.screenshot("dashboard.png");

    // Report a thread: a usage review with the fields of product.md.
    wd.type_into("#r-thread", "thread-1");
    wd.type_into("#r-desc", "The agent looped on a failing build.");
    wd.click("#r-model option[value=premium]");
    wd.type_into("#r-len", "84");
    wd.click("[data-testid=report-submit]");
    let message = wait_for("the report's confirmation", Duration::from_secs(20), || {
        wd.text("[data-testid=report-message]")
    });
    assert!(message.starts_with("Reported."), "{message}");
    let reviews = server.get("/v1/usage-reviews", &token);
    let review = &reviews["items"][0];
    assert_eq!(review["thread"], "thread-1", "{reviews}");
    assert_eq!(review["model"], "premium", "{reviews}");
    assert_eq!(review["thread_messages"], 84, "{reviews}");
    assert_eq!(review["status"], "open", "{reviews}");
    wd.call("DELETE", "", None);
}
