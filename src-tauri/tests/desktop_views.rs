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
