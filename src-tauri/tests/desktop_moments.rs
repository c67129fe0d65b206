//! Buying moments (issue 17 step 3): the low-balance and out-of-credits notifications carry
//! "Buy credits" and "Open dashboard", and clicking them (dbusmock's notification daemon
//! emits `ActionInvoked`, as a desktop does) opens that window; with the opt-in, the
//! purchase dialog opens by itself when credits run low.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);

/// The id the mock daemon gave the (last) notification titled `summary`: it numbers its
/// `Notify` calls from 1, in order.
fn notification_id(work: &std::path::Path, summary: &str) -> Option<u32> {
    let log = std::fs::read_to_string(work.join("notifications.log")).ok()?;
    let notifies: Vec<&str> = log.lines().filter(|l| l.contains(" Notify ")).collect();
    let i = notifies
        .iter()
        .rposition(|l| l.contains(&format!("\"{summary}\"")))?;
    Some(i as u32 + 1)
}

/// The notification's line in the daemon's log (its actions are in it).
fn notification_line(work: &std::path::Path, summary: &str) -> String {
    std::fs::read_to_string(work.join("notifications.log"))
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.contains(&format!("\"{summary}\"")))
        .unwrap_or_default()
        .to_owned()
}

/// Clicks `action` on notification `id`, as the desktop's notification popup would.
fn invoke_action(id: u32, action: &str) {
    let script = format!(
        "import dbus\n\
         o = dbus.SessionBus().get_object('org.freedesktop.Notifications', '/org/freedesktop/Notifications')\n\
         o.EmitSignal('org.freedesktop.Notifications', 'ActionInvoked', 'us', [dbus.UInt32({id}), '{action}'], dbus_interface='org.freedesktop.DBus.Mock')\n"
    );
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .status()
        .unwrap()
        .success();
    assert!(ok, "ActionInvoked {id} {action}");
}

#[test]
fn notification_actions_open_the_purchase_dialog_and_the_dashboard() {
    let Some(work) = in_session("notification_actions_open_the_purchase_dialog_and_the_dashboard")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);

    // Below the 50-credit default: the low-balance notification, with its two buttons.
    server.spend(&token, "m-1", 460);
    let id = wait_for("the low-balance notification", T, || {
        notification_id(&work, "Credits running low")
    });
    let line = notification_line(&work, "Credits running low");
    assert!(
        line.contains("\"buy\"")
            && line.contains("\"Buy credits\"")
            && line.contains("\"dashboard\""),
        "actions on the notification: {line}"
    );
    assert!(wd.find("[data-testid=title]").is_some());
    invoke_action(id, "buy");
    wait_for("the purchase dialog from the notification", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("purchase.html")))
    });
    let now = wait_for("the current balance", T, || {
        wd.text("[data-testid=current-balance]")
    });
    assert!(now.contains("45.00 credits"), "{now}");
    wd.screenshot("notification-buy-opens-purchase.png");

    // Out of credits: "Open dashboard" from that notification.
    server.spend(&token, "m-2", 45);
    let id = wait_for("the out-of-credits notification", T, || {
        notification_id(&work, "Out of credits")
    });
    invoke_action(id, "dashboard");
    wait_for("the dashboard from the notification", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("dashboard.html")))
    });
    wd.call("DELETE", "", None);
}

#[test]
fn the_purchase_dialog_opens_by_itself_at_low_when_asked() {
    let Some(work) = in_session("the_purchase_dialog_opens_by_itself_at_low_when_asked") else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);

    // Off by default: crossing the threshold notifies and opens nothing.
    server.spend(&token, "a-1", 460);
    wait_for("the low-balance notification", T, || {
        notification_id(&work, "Credits running low")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !wd.switch_to(|u| u.contains("purchase.html")),
        "nothing opens unless asked"
    );
    assert!(wd.switch_to(|u| u.contains("signin.html")));

    // Opt in from the settings window; back above the threshold, then below again.
    wd.call(
        "POST",
        "/execute/sync",
        Some(serde_json::json!({"args": [], "script":
        "window.__TAURI_INTERNALS__.invoke('open_window', {which: 'settings'}); return null;"})),
    );
    wait_for("the settings window", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("settings.html")))
    });
    wait_for("the notification settings", T, || {
        wd.find("[data-testid=open-purchase-at-low]")
    });
    wd.click("[data-testid=open-purchase-at-low]");
    wd.click("[data-testid=alerts-save]");
    wait_for("saved", T, || {
        wd.text("[data-testid=saved]")
            .filter(|s| s.contains("Notification settings saved"))
    });
    wd.screenshot("settings-open-purchase-at-low.png");
    wd.call("DELETE", "/window", None);
    server.grant(
        &token,
        serde_json::json!({"id": "rearm", "amount": 100 * CR, "reason": "promo"}),
    );
    wait_for("the balance back above the threshold", T, || {
        Some(tray(&work)).filter(|t| t["label"] == "145 cr")
    });
    server.spend(&token, "a-2", 100);
    wait_for("the purchase dialog, by itself", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("purchase.html")))
    });
    let now = wait_for("the current balance", T, || {
        wd.text("[data-testid=current-balance]")
    });
    assert!(now.contains("45.00 credits"), "{now}");
    wd.screenshot("purchase-opened-at-low.png");
    wd.call("DELETE", "", None);
}

/// Glance extras (issue 17 step 5): several low-balance thresholds set in the settings
/// window each warn once; the tray menu carries the pace.
#[test]
fn several_thresholds_each_warn_once_and_the_tray_shows_the_pace() {
    let Some(work) = in_session("several_thresholds_each_warn_once_and_the_tray_shows_the_pace")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    wd.call(
        "POST",
        "/execute/sync",
        Some(serde_json::json!({"args": [], "script":
        "window.__TAURI_INTERNALS__.invoke('open_window', {which: 'settings'}); return null;"})),
    );
    wait_for("the settings window", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("settings.html")))
    });
    wait_for("the thresholds field", T, || {
        wd.find("[data-testid=also-below]")
    });
    wd.type_into("[data-testid=also-below]", "20, 5");
    wd.click("[data-testid=alerts-save]");
    wait_for("saved", T, || {
        wd.text("[data-testid=saved]")
            .filter(|s| s.contains("Notification settings saved"))
    });
    wd.screenshot("settings-thresholds.png");

    server.spend(&token, "th-1", 460);
    wait_for("the first warning", T, || {
        Some(()).filter(|_| notifications_titled(&work, "Credits running low") == 1)
    });
    server.spend(&token, "th-2", 30);
    wait_for("the warning at 20", T, || {
        Some(()).filter(|_| notifications(&work, "below your 20.00 credits threshold") == 1)
    });
    server.spend(&token, "th-3", 1);
    let t = wait_for("the tray at 14 cr", T, || {
        Some(tray(&work)).filter(|t| t["label"] == "14 cr")
    });
    assert_eq!(
        notifications_titled(&work, "Credits running low"),
        2,
        "one warning per threshold crossed"
    );
    let menu: Vec<String> = serde_json::from_value(t["menu"].clone()).unwrap();
    assert!(
        menu.iter().any(|l| l.ends_with("left at this pace")),
        "{menu:?}"
    );
    wd.call("DELETE", "", None);
}

/// The `creditbar` CLI beside the app under test (built if missing or out of date).
fn cli_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("creditbar");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "-p", "creditbar-client", "--bin", "creditbar"])
        .current_dir(repo())
        .status()
        .unwrap()
        .success();
    assert!(ok, "building creditbar failed");
    bin
}

/// Whether process `pid` holds an established TCP connection to `port` (its event stream).
fn streaming(pid: u32, port: &str) -> bool {
    let out = Command::new("ss")
        .args(["-tnpH", "state", "established"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(&format!(":{port} ")) && l.contains(&format!("pid={pid},")))
}

/// Issue 17 step 7: the app and `creditbar watch` on one machine share one alert state (a
/// transaction in the cache): each crossing and each notice is told by one of them, once.
#[test]
fn the_app_and_creditbar_watch_together_notify_once() {
    let Some(work) = in_session("the_app_and_creditbar_watch_together_notify_once") else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    let port = server
        .base
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let log = std::fs::File::create(work.join("watch.log")).unwrap();
    let watch = Killed(
        Command::new(cli_binary())
            .arg("watch")
            .env("CREDITBAR_DATA_DIR", work.join("data"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let pid = watch.0.id();
    wait_for("creditbar watch to follow the stream", T, || {
        Some(()).filter(|_| streaming(pid, &port))
    });
    assert!(wd.find("[data-testid=title]").is_some());

    let account = server.get("/v1/account", &token)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..3 {
        server.post(
            &format!("/v1/admin/accounts/{account}/grants"),
            ADMIN,
            serde_json::json!({"id": format!("both-{i}"), "amount": (i + 1) * CR, "reason": "promo"}),
        );
    }
    server.spend(&token, "both-low", 475);
    wait_for("the low-balance notification", T, || {
        Some(()).filter(|_| notifications_titled(&work, "Credits running low") >= 1)
    });
    // A last notice: once it is shown, any repeat of the others would have been too.
    let id = server.get("/v1/account", &token)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.post(
        &format!("/v1/admin/accounts/{id}/grants"),
        ADMIN,
        serde_json::json!({"id": "both-last", "amount": 2 * CR, "reason": "compensation"}),
    );
    wait_for("the last notification", T, || {
        Some(()).filter(|_| notifications(&work, "compensation") >= 1)
    });
    assert_eq!(
        notifications_titled(&work, "Credits running low"),
        1,
        "the crossing told once by the two processes"
    );
    assert_eq!(notifications(&work, "compensation"), 1);
    // No notification twice: every body the daemon received is distinct (each grant has
    // its own amount).
    let log = std::fs::read_to_string(work.join("notifications.log")).unwrap();
    let mut bodies: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" Notify "))
        .map(|l| l.split_once(" Notify ").unwrap().1)
        .collect();
    let all = bodies.len();
    bodies.sort_unstable();
    bodies.dedup();
    assert_eq!(bodies.len(), all, "a notification shown twice: {log}");
    drop(watch);
    wd.call("DELETE", "", None);
}

/// Issue 17 step 4 in the app: the "expiring soon" notification at the right minute under
/// the server's test clock. The app runs on the server's time (its clock corrected by the
/// skew read from the balance's `Date`, docs/desktop.md), so moving the test clock moves
/// the app's. Two minutes before the lead time begins: nothing; two minutes into it:
/// exactly one notification, with what is left of the plan's credits (497.9999, shown
/// as people read amounts: 497.99, rounded down).
#[test]
fn expiring_soon_is_told_at_the_right_minute_of_the_servers_clock() {
    let Some(work) = in_session("expiring_soon_is_told_at_the_right_minute_of_the_servers_clock")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    // 7.0001 credits: the daily 5 first, then 2.0001 from the plan's 500.
    server.post(
        "/v1/usage",
        &token,
        serde_json::json!({"id": "exp-1", "project": "e2e", "thread": "t", "model": "standard",
            "kind": "chat", "status": "completed", "input_tokens": 0, "cached_input_tokens": 0,
            "output_tokens": 70_001}),
    );
    let balance = server.get("/v1/balance", &token);
    let plan_left = balance["buckets"]["subscription"]["available"]
        .as_i64()
        .unwrap();
    assert_eq!(plan_left, 497_999_900);
    let renewal: chrono::DateTime<chrono::Utc> = balance["buckets"]["subscription"]["next_reset"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The default lead time: 24 hours.
    let lead_starts = renewal - chrono::Duration::hours(24);
    let set_clock = |at: chrono::DateTime<chrono::Utc>| {
        let r = server
            .http
            .post(format!("{}/v1/admin/clock", server.base))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"now": at.to_rfc3339()}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "clock: {}", r.status());
    };
    // The app reads the server's clock at every sync ("Sync now", as a person would press
    // it) and by itself once a minute; the live engine checks its alerts at every
    // heartbeat (15 s).
    let sync_now = || {
        wd.call(
            "POST",
            "/execute/async",
            Some(serde_json::json!({"args": [], "script":
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke('sync_now').then(() => done(null), (e) => done(String(e)));"})),
        )
    };
    set_clock(lead_starts - chrono::Duration::seconds(120));
    sync_now();
    // Two heartbeats of the live engine on the server's new time.
    std::thread::sleep(Duration::from_secs(35));
    assert_eq!(
        notifications_titled(&work, "Credits expiring soon"),
        0,
        "two minutes before the lead time"
    );
    set_clock(lead_starts + chrono::Duration::seconds(120));
    sync_now();
    wait_for(
        "the expiring-soon notification",
        Duration::from_secs(90),
        || Some(()).filter(|_| notifications_titled(&work, "Credits expiring soon") >= 1),
    );
    let line = std::fs::read_to_string(work.join("notifications.log"))
        .unwrap()
        .lines()
        .find(|l| l.contains("\"Credits expiring soon\""))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("497.99 credits from your plan expire at the renewal, in 23 h 5"),
        "{line}"
    );
    std::thread::sleep(Duration::from_secs(35));
    assert_eq!(
        notifications_titled(&work, "Credits expiring soon"),
        1,
        "told once"
    );
    wd.call("DELETE", "", None);
}

/// Issue 17 step 5, the number drawn into the tray icon (opt-in, for trays that show only
/// icons): turned on in the settings window, the icon carries the rounded balance; it is
/// redrawn when that number changes and not when only the exact balance does. The icon is
/// read where the tray host reads it (the StatusNotifierItem's IconName: the PNG file the
/// tray writes at each redraw) and kept as a screenshot.
#[test]
fn the_number_in_the_tray_icon_is_redrawn_only_when_it_changes() {
    let Some(work) = in_session("the_number_in_the_tray_icon_is_redrawn_only_when_it_changes")
    else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, wd, token) = signed_in_app(&work, &server);
    let icon = || tray(&work)["icon"].as_str().unwrap_or_default().to_owned();
    let plain = wait_for("the tray icon", T, || {
        Some(icon()).filter(|i| !i.is_empty())
    });
    wd.call(
        "POST",
        "/execute/sync",
        Some(serde_json::json!({"args": [], "script":
        "window.__TAURI_INTERNALS__.invoke('open_window', {which: 'settings'}); return null;"})),
    );
    wait_for("the settings window", T, || {
        Some(()).filter(|_| wd.switch_to(|u| u.contains("settings.html")))
    });
    wait_for("the tray icon setting", T, || {
        wd.find("[data-testid=number-in-icon]")
    });
    wd.click("[data-testid=number-in-icon]");
    wd.click("[data-testid=alerts-save]");
    wait_for("saved", T, || {
        wd.text("[data-testid=saved]")
            .filter(|s| s.contains("Notification settings saved"))
    });
    let with_number = wait_for("the icon with the number", T, || {
        Some(icon()).filter(|i| *i != plain)
    });
    let png = std::fs::read(&with_number).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!(
        (
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            u32::from_be_bytes(png[20..24].try_into().unwrap())
        ),
        (64, 64)
    );
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tray-number-in-icon.png"), &png).unwrap();

    // 0.4 credits more: the exact balance changes (the menu says so), the number does not.
    server.grant(
        &token,
        serde_json::json!({"id": "fraction", "amount": 400_000, "reason": "promo"}),
    );
    wait_for("the menu at 505.40", T, || {
        let t = tray(&work);
        let menu: Vec<String> = serde_json::from_value(t["menu"].clone()).unwrap_or_default();
        Some(()).filter(|_| menu.iter().any(|l| l.starts_with("505.40 credits")))
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(icon(), with_number, "not redrawn: the number is still 505");
    // One credit spent: 504.40, the number changes, the icon is redrawn.
    server.spend(&token, "icon-1", 1);
    wait_for("the icon redrawn for 504", T, || {
        Some(icon()).filter(|i| *i != with_number)
    });
    assert_eq!(tray(&work)["label"], "504 cr");
    wd.call("DELETE", "", None);
}

/// Issue 16: notification bodies say amounts as the tray and the CLI do (product.md
/// "Amounts shown to people": two decimals rounded down, grouped by the locale), read from
/// what the notification daemon received, in two locales.
fn amounts_in_notifications_follow_the_locale(test: &str, locale: &str, low: &str, bonus: &str) {
    let Some(work) = in_session(test) else {
        return;
    };
    let server = Server::start(&work);
    let (_driver, _wd, token) = signed_in_app_at(
        &work,
        &server,
        &built_app(),
        &work.join("data"),
        &[("LC_ALL", locale)],
    );
    // 460.004 credits: 44.996 left, shown as 44.99 (never more than is there).
    server.post(
        "/v1/usage",
        &token,
        serde_json::json!({"id": "loc-1", "project": "e2e", "thread": "t", "model": "standard",
            "kind": "chat", "status": "completed", "input_tokens": 0, "cached_input_tokens": 0,
            "output_tokens": 4_600_040}),
    );
    assert_eq!(server.available(&token), 44_996_000);
    wait_for("the low-balance notification", T, || {
        Some(()).filter(|_| notifications_titled(&work, "Credits running low") >= 1)
    });
    server.grant(
        &token,
        serde_json::json!({"id": "loc-grant", "amount": 1_234_500_000, "reason": "promo"}),
    );
    wait_for("the bonus notification", T, || {
        Some(()).filter(|_| notifications_titled(&work, "Bonus credits received") >= 1)
    });
    let log = std::fs::read_to_string(work.join("notifications.log")).unwrap();
    assert_eq!(notifications(&work, low), 1, "{log}");
    assert_eq!(notifications(&work, bonus), 1, "{log}");
}

#[test]
fn amounts_in_notifications_read_as_in_english() {
    amounts_in_notifications_follow_the_locale(
        "amounts_in_notifications_read_as_in_english",
        "en_US.UTF-8",
        "44.99 credits left, below your 50.00 credits threshold.",
        "You received 1,234.50 credits (promo).",
    );
}

#[test]
fn amounts_in_notifications_read_as_in_german() {
    amounts_in_notifications_follow_the_locale(
        "amounts_in_notifications_read_as_in_german",
        "de_DE.UTF-8",
        "44,99 credits left, below your 50,00 credits threshold.",
        "You received 1.234,50 credits (promo).",
    );
}
