//! A keyboard-only walk through every window: Tab reaches each control with a visible focus,
//! Enter opens the next window, Escape closes it (all four, the first window included); the usage rows are a table to a screen
//! reader. Same harness as desktop_e2e.rs (the real app under Xvfb, tauri-driver).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(20);

/// Tabs to the control named `name` and presses Enter.
fn activate(wd: &WebDriver, name: &str) {
    let walk = wd.tab_walk(40);
    let at = walk
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} is not reachable by Tab: {walk:?}"));
    wd.call(
        "POST",
        "/execute/sync",
        Some(json!({"args": [], "script": "document.activeElement && document.activeElement.blur();"})),
    );
    wd.press_n(TAB, at + 1);
    assert_eq!(wd.focused().as_deref(), Some(name));
    wd.press(ENTER);
}

/// Escape closes the current window. Pressed again each second until it does: under Xvfb
/// there is no window manager to give the window the keyboard when another one closes, so
/// a key can go nowhere for a moment; no Escape closes a window that lacks the handler.
fn escape_closes(wd: &WebDriver, page: &str) {
    let before = wd.handles();
    let mut pressed = std::time::Instant::now() - Duration::from_secs(1);
    wait_for(&format!("Escape to close {page}"), T, || {
        if wd.handles() < before {
            return Some(());
        }
        if pressed.elapsed() >= Duration::from_secs(1) {
            wd.press(ESCAPE);
            pressed = std::time::Instant::now();
        }
        None
    });
    assert!(!wd.switch_to(|u| u.contains(page)), "{page} is still open");
}

fn contains_all(walk: &[String], want: &[&str]) {
    for w in want {
        assert!(
            walk.iter().any(|n| n == w),
            "{w} not reached by Tab: {walk:?}"
        );
    }
}

#[test]
fn every_window_works_from_the_keyboard() {
    let Some(work) = in_session("every_window_works_from_the_keyboard") else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    server.spend(&token, "kb-1", 5);

    // The signed-in glance window.
    let walk = wd.tab_walk(20);
    contains_all(&walk, &["open-dashboard", "open-purchase"]);

    // The dashboard, opened with Enter.
    activate(&wd, "open-dashboard");
    wait_for("the dashboard", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("dashboard.html")))
    });
    wait_for("the usage rows", T, || {
        wd.find("[data-testid=usage-rows] [role=row]")
    });
    let walk = wd.tab_walk(40);
    contains_all(
        &walk,
        &[
            "open-settings",
            "period",
            "group-by",
            "usage-rows",
            "r-thread",
            "r-desc",
            "report-submit",
        ],
    );
    // The virtualised rows are a table: a header row, then rows that say where they are.
    let roles = wd.call(
        "POST",
        "/execute/sync",
        Some(json!({"args": [], "script":
        "const t = document.querySelector('[data-testid=usage-table]');
         const row = t.querySelector('[data-testid=usage-rows] [role=row]');
         return [t.getAttribute('role'), t.querySelectorAll('[role=columnheader]').length,
                 row.getAttribute('aria-rowindex'), row.querySelectorAll('[role=cell]').length,
                 Number(t.getAttribute('aria-rowcount'))];"})),
    );
    assert_eq!(roles[0], "table", "{roles}");
    assert_eq!(roles[1], 3, "{roles}");
    assert_eq!(roles[2], "2", "{roles}");
    assert_eq!(roles[3], 3, "{roles}");
    assert!(roles[4].as_i64().unwrap() >= 2, "{roles}");

    // Settings, from the dashboard with Enter; it shows where the logs are.
    activate(&wd, "open-settings");
    wait_for("the settings", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("settings.html")))
    });
    wait_for("the settings form", T, || {
        wd.find("[data-testid=refill-save]")
    });
    let walk = wd.tab_walk(40);
    contains_all(
        &walk,
        &[
            "refill-enabled",
            "refill-threshold",
            "refill-pack",
            "refill-save",
            "low-threshold",
            "alerts-save",
            "autostart",
            "open-logs",
            "sign-out",
        ],
    );
    let logs = wd.text("[data-testid=log-dir]").unwrap_or_default();
    assert!(logs.ends_with("logs"), "log directory shown: {logs:?}");
    assert!(
        std::path::Path::new(&logs).is_dir(),
        "{logs} does not exist"
    );
    escape_closes(&wd, "settings.html");

    assert!(wd.switch_to(|u| u.contains("dashboard.html")));
    escape_closes(&wd, "dashboard.html");

    // The purchase dialog, from the glance window.
    assert!(wd.switch_to(|u| u.contains("signin.html")));
    activate(&wd, "open-purchase");
    wait_for("the purchase dialog", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("purchase.html")))
    });
    wait_for("the add-card form", T, || {
        wd.find("[data-testid=card-number]")
    });
    let walk = wd.tab_walk(40);
    contains_all(
        &walk,
        &["card-number", "card-expiry", "card-cvc", "save-card"],
    );
    escape_closes(&wd, "purchase.html");

    // Last, the glance window: the one WebKitWebDriver's session started with. Once it is
    // gone the driver has no window to answer from (a command sent to it waits for a page
    // that no longer exists), so the witness is the X server's own list of windows, and
    // each key press goes out on its own short-lived request.
    assert!(wd.switch_to(|u| u.contains("signin.html")));
    let title = "Sign in to creditbar";
    assert_eq!(x_windows(title), 1, "the glance window is on the display");
    let quick = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let url = format!("{}/session/{}/actions", wd.base, wd.session);
    let mut pressed = std::time::Instant::now() - Duration::from_secs(1);
    wait_for("Escape to close the glance window", T, || {
        if x_windows(title) == 0 {
            return Some(());
        }
        if pressed.elapsed() >= Duration::from_secs(1) {
            let (quick, url) = (quick.clone(), url.clone());
            std::thread::spawn(move || {
                let _ = quick.post(url).json(&json!({"actions": [{"type": "key", "id": "keyboard",
                    "actions": [{"type": "keyDown", "value": ESCAPE}, {"type": "keyUp", "value": ESCAPE}]}]}))
                    .send();
            });
            pressed = std::time::Instant::now();
        }
        None
    });
    // The app lives on in the tray with every window closed.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tray(&work)["registered"], true, "the tray is still there");
    let _ = quick
        .delete(format!("{}/session/{}", wd.base, wd.session))
        .send();
}

/// How many X windows are titled `title` (`xwininfo -root -tree`: a closed window is
/// destroyed and leaves the tree).
fn x_windows(title: &str) -> usize {
    let out = std::process::Command::new("xwininfo")
        .args(["-root", "-tree"])
        .output()
        .expect("xwininfo (Debian: x11-utils)");
    String::from_utf8_lossy(&out.stdout)
        .matches(&format!("\"{title}\""))
        .count()
}
