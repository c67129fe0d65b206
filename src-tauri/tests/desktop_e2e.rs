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
    wd.click("[data-testid=confirm]");
    let balance = wait_for("the new balance", Duration::from_secs(30), || {
        wd.text("[data-testid=new-balance]")
    });
    assert_eq!(balance, "1,005 credits");
    wd.screenshot("purchase-done.png");
    assert_eq!(server.available(&token), 1005 * CR);
    let purchases = server.get("/v1/purchases", &token);
    assert_eq!(
        purchases["items"].as_array().unwrap().len(),
        1,
        "double click bought once: {purchases}"
    );
    wait_for("the purchase notification", Duration::from_secs(20), || {
        Some(()).filter(|_| notifications(&work, "Purchase complete") >= 1)
    });

    wd.call("DELETE", "", None);
}
