//! Native notifications from `creditbar watch`, as the desktop's notification daemon (here
//! python-dbusmock) receives them: each event once, across restarts too, nothing at start
//! for what was already known.
//!
//! "Nothing more arrived" is checked without sleeping: the test makes one more event that
//! does notify (a small bonus grant) and waits for it; the stream delivers in order, so
//! anything the earlier events would have raised has been raised by then.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{parse_notify_log, Account, Note, Server, Session, LIVE};

const LOW: &str = "Credits running low";
const BONUS: &str = "Bonus credits received";
const RENEWED: &str = "Plan credits renewed";
const DAILY: &str = "Daily credits reset";
const REFILLED: &str = "Auto-refill charged";
const REFILL_FAILED: &str = "Auto-refill failed";

/// Grants one bonus credit and waits for its notification: every notification caused by
/// what happened before it has arrived when this returns.
fn settle(server: &Server, session: &Session, account: &Account, marker: &str) -> Vec<Note> {
    server.grant(account, marker, 1);
    common::wait_until(
        &format!("the notification of marker grant {marker}"),
        LIVE,
        || {
            let all = session.notifications();
            all.iter()
                .any(|n| n.summary == BONUS && n.body.contains(marker))
                .then_some(all)
        },
    )
}

/// The notifications other than the marker grants.
fn without_markers(notes: Vec<Note>) -> Vec<Note> {
    notes
        .into_iter()
        .filter(|n| !(n.summary == BONUS && n.body.contains("marker-")))
        .collect()
}

fn summaries(notes: &[Note]) -> Vec<&str> {
    notes.iter().map(|n| n.summary.as_str()).collect()
}

/// A signed-in session with a notification daemon, for a fresh account on `plan`.
fn signed_in(server: &Server, plan: &str) -> (Account, Session) {
    let account = server.account(plan);
    let session = Session::with_notifications();
    session.login(server, &account);
    (account, session)
}

#[test]
fn low_balance_notifies_once_per_crossing_and_again_only_after_it_re_arms() {
    let server = Server::start();
    let (account, session) = signed_in(&server, "pro"); // 505 credits
    session
        .creditbar(&["settings", "--low-threshold", "400"])
        .ok();
    let _watch = session.watch();

    server.use_credits(&account, "u1", 150); // 355: below 400
    let notes = session.wait_notification(LOW, LIVE);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].app, "creditbar");
    assert_eq!(
        notes[0].body,
        "355.00 credits left, below your 400.00 credits threshold."
    );

    // Further usage while low: quiet.
    server.use_credits(&account, "u2", 30);
    server.use_credits(&account, "u3", 20);
    let notes = without_markers(settle(&server, &session, &account, "marker-1"));
    assert_eq!(summaries(&notes), [LOW], "{notes:?}");

    // Back above the threshold plus its margin (440), then down again: a new crossing.
    server.grant(&account, "topup", 200); // 506
    common::wait_until("the top-up's notification", LIVE, || {
        session
            .notes(BONUS)
            .iter()
            .any(|n| n.body.contains("topup"))
            .then_some(())
    });
    server.use_credits(&account, "u4", 200); // 306
    let notes = session.notifications();
    let lows: Vec<_> = common::wait_until("a second low-balance notification", LIVE, || {
        let lows = session.notes(LOW);
        (lows.len() >= 2).then_some(lows)
    });
    assert_eq!(lows.len(), 2, "{notes:?}");
    assert_eq!(
        lows[1].body,
        "306.00 credits left, below your 400.00 credits threshold."
    );
    let notes = without_markers(settle(&server, &session, &account, "marker-2"));
    assert_eq!(
        notes.iter().filter(|n| n.summary == LOW).count(),
        2,
        "{notes:?}"
    );
}

#[test]
fn restarting_watch_repeats_nothing() {
    let server = Server::start();
    let (account, session) = signed_in(&server, "pro");
    session
        .creditbar(&["settings", "--low-threshold", "400"])
        .ok();
    let watch = session.watch();
    server.use_credits(&account, "u1", 150);
    session.wait_notification(LOW, LIVE);
    let before = without_markers(settle(&server, &session, &account, "marker-1"));
    assert_eq!(summaries(&before), [LOW], "{before:?}");

    watch.kill();
    let _watch = session.watch();
    let after = without_markers(settle(&server, &session, &account, "marker-2"));
    assert_eq!(after, before, "a restart repeated a notification");

    // Killed and restarted again, with a change in between that it must still report once.
    drop(_watch);
    server.grant(&account, "while-away", 5);
    let _watch = session.watch();
    common::wait_until("the grant made while watch was down", LIVE, || {
        let all = session.notifications();
        all.iter()
            .any(|n| n.body.contains("while-away"))
            .then_some(())
    });
    let all = settle(&server, &session, &account, "marker-3");
    let lows = all.iter().filter(|n| n.summary == LOW).count();
    let away = all.iter().filter(|n| n.body.contains("while-away")).count();
    assert_eq!((lows, away), (1, 1), "{all:?}");
}

/// `creditbar status` (a status bar polls it every few seconds) syncs the cache too; what
/// it learns first must still be announced by the notifier, not silently marked as seen.
#[test]
fn a_status_check_does_not_swallow_a_notification_meant_for_watch() {
    let server = Server::start();
    let (account, session) = signed_in(&server, "pro");
    session
        .creditbar(&["settings", "--low-threshold", "400"])
        .ok();
    server.grant(&account, "compensation-1", 7);
    server.use_credits(&account, "u1", 150); // 362: below 400
    let status = session.creditbar(&["status"]);
    assert!(
        status.stdout.contains("362.00 credits available"),
        "{status:?}"
    );
    session.creditbar(&["sync"]).ok();

    let _watch = session.watch();
    common::wait_until(
        "the grant and the low balance to be announced",
        LIVE,
        || {
            let all = session.notifications();
            (all.iter().any(|n| n.body.contains("compensation-1"))
                && all.iter().any(|n| n.summary == LOW))
            .then_some(())
        },
    );
    let all = settle(&server, &session, &account, "marker-1");
    let granted = all
        .iter()
        .filter(|n| n.body.contains("compensation-1"))
        .count();
    let lows = all.iter().filter(|n| n.summary == LOW).count();
    assert_eq!((granted, lows), (1, 1), "{all:?}");
}

#[test]
fn starting_watch_with_an_already_low_balance_notifies_nothing() {
    let server = Server::start();
    let account = server.account("free"); // 105 credits
    server.use_credits(&account, "before", 80); // 25: below the default 50
    let session = Session::with_notifications();
    session.login(&server, &account);
    let _watch = session.watch();
    let notes = without_markers(settle(&server, &session, &account, "marker-1"));
    assert!(notes.is_empty(), "{notes:?}");
    // Nor does a second start.
    drop(_watch);
    let _watch = session.watch();
    let notes = without_markers(settle(&server, &session, &account, "marker-2"));
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn a_subscription_renewal_notifies_once_and_daily_resets_stay_quiet_by_default() {
    let server = Server::start();
    let (account, session) = signed_in(&server, "pro");
    let _watch = session.watch();

    // From sign-up to the end of the first monthly period: 30 daily resets, one renewal.
    server.advance(30 * 86_400 + 60);
    let notes = session.wait_notification(RENEWED, LIVE);
    let notes = without_markers(notes);
    assert_eq!(summaries(&notes), [RENEWED], "{notes:?}");
    assert_eq!(
        notes[0].body,
        "Your plan renewed: 500.00 credits for this period."
    );
    let notes = without_markers(settle(&server, &session, &account, "marker-1"));
    assert_eq!(summaries(&notes), [RENEWED], "{notes:?}");
}

#[test]
fn with_daily_resets_switched_on_a_daily_reset_notifies_once() {
    let server = Server::start();
    let (account, session) = signed_in(&server, "pro");
    session
        .creditbar(&["settings", "--enable", "daily_reset"])
        .ok();
    let _watch = session.watch();

    // 18:00 → just past midnight UTC.
    server.advance(6 * 3600 + 60);
    let notes = without_markers(session.wait_notification(DAILY, LIVE));
    assert_eq!(summaries(&notes), [DAILY], "{notes:?}");
    assert_eq!(notes[0].body, "Your daily 5.00 credits are ready.");
    let notes = without_markers(settle(&server, &session, &account, "marker-1"));
    assert_eq!(summaries(&notes), [DAILY], "{notes:?}");
}

#[test]
fn an_auto_refill_charge_notifies_once() {
    let server = Server::start();
    let (account, session) = signed_in(&server, "pro");
    session.add_card("4242424242424242").ok();
    let on = session
        .creditbar(&[
            "auto-refill",
            "on",
            "--threshold",
            "400",
            "--pack",
            "pack_500",
            "--limit",
            "2",
        ])
        .ok();
    assert!(on.stdout.contains("Auto-refill is on"), "{on:?}");
    let _watch = session.watch();

    server.use_credits(&account, "u1", 150); // 355 < 400: one pack_500 is bought
    let notes = without_markers(session.wait_notification(REFILLED, LIVE));
    assert_eq!(summaries(&notes), [REFILLED], "{notes:?}");
    assert_eq!(
        notes[0].body,
        "Auto-refill bought 500.00 credits for $20.00."
    );
    server.use_credits(&account, "u2", 10); // 845: above the threshold, nothing to do
    let notes = without_markers(settle(&server, &session, &account, "marker-1"));
    assert_eq!(summaries(&notes), [REFILLED], "{notes:?}");
    assert_eq!(server.purchases(&account).len(), 1);
    session.wait_cached_credits(846, LIVE);
}

#[test]
fn a_failed_auto_refill_notifies_once_and_auto_refill_is_off() {
    let server = Server::start();
    let (account, session) = signed_in(&server, "pro");
    // Saves fine; every later charge is declined.
    session.add_card("4000000000000341").ok();
    session
        .creditbar(&[
            "auto-refill",
            "on",
            "--threshold",
            "400",
            "--pack",
            "pack_500",
            "--limit",
            "2",
        ])
        .ok();
    let _watch = session.watch();
    // Two small charges seen in the cache: the second can only have come through the
    // stream, so watch's first sync is behind us and what follows is live.
    server.use_credits(&account, "w1", 5);
    session.wait_cached_credits(500, LIVE);
    server.use_credits(&account, "w2", 5);
    session.wait_cached_credits(495, LIVE);

    server.use_credits(&account, "u1", 150);
    let notes = without_markers(session.wait_notification(REFILL_FAILED, LIVE));
    assert_eq!(summaries(&notes), [REFILL_FAILED], "{notes:?}");
    assert!(
        notes[0].body.starts_with("Auto-refill failed (") && notes[0].body.contains("now off"),
        "{notes:?}"
    );
    // The live sync re-reads the settings on that notice (the tray's toggle shows them):
    // off in the cache without any other sync.
    common::wait_until("the cached auto-refill settings to be off", LIVE, || {
        let json: String = session
            .cache_db()
            .query_row(
                "SELECT json FROM documents WHERE name = 'auto_refill'",
                [],
                |r| r.get(0),
            )
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&json).ok()?;
        (v["enabled"] == false && v["disabled_reason"].is_string()).then_some(())
    });
    // A second crossing cannot retry the card: auto-refill is off, and says why.
    server.use_credits(&account, "u2", 100);
    let notes = without_markers(settle(&server, &session, &account, "marker-1"));
    assert_eq!(summaries(&notes), [REFILL_FAILED], "{notes:?}");
    let show = session.creditbar(&["auto-refill", "show"]).ok();
    assert!(show.stdout.contains("Auto-refill is off"), "{show:?}");
    // With no subcommand, `auto-refill` shows the setting too.
    let bare = session.creditbar(&["auto-refill"]).ok();
    assert_eq!(bare.stdout, show.stdout);
    assert_eq!(server.auto_refill(&account)["enabled"], false);
}

#[test]
fn the_notify_log_parser_reads_multi_line_bodies() {
    let log = "1795292038.258 Notify \"creditbar\" 0 \"\" \"Credits running low\" \"355 credits left.\" [] {} -1\n\
               1795292039.100 Notify \"creditbar\" 0 \"\" \"3 credit updates\" \"a: b\nc: d\" [] {} -1\n";
    let notes = parse_notify_log(log);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0].summary, "Credits running low");
    assert_eq!(notes[0].body, "355 credits left.");
    assert_eq!(notes[1].summary, "3 credit updates");
    assert_eq!(notes[1].body, "a: b\nc: d");
}
