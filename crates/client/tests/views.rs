//! The views' read side: the tray's and the windows' reads answer from the cache through
//! `views::Reader` while the engine's writer is stuck in a sync against a paused server,
//! and the views carry the catalog's unit (issue 18: "≈ 4.2 M tokens", "≈ 130 requests").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use creditbar_client::keychain::MemoryStore;
use creditbar_client::Engine;
use secrecy::SecretString;

fn clock() -> creditbar_client::engine::Clock {
    Arc::new(chrono::Utc::now)
}

async fn signed_in(server: &Server, account: &Account, dir: &std::path::Path) -> Engine {
    let (mut engine, _) = Engine::open(dir, Box::new(MemoryStore::default()), clock()).unwrap();
    engine
        .login(
            &server.base,
            SecretString::from(account.token.clone()),
            false,
        )
        .await
        .unwrap();
    engine
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The harness's server helpers are blocking HTTP: they run outside the runtime.
#[test]
fn a_tray_read_completes_while_a_sync_waits_on_a_paused_server() {
    let server = Server::start();
    let account = server.account("free");
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let engine = signed_in(&server, &account, dir.path()).await;
        let reader = engine.reader().unwrap();
        let before = reader.glance();
        assert!(
            before.signed_in && before.title.ends_with(" cr"),
            "{before:?}"
        );
        let engine = Arc::new(tokio::sync::Mutex::new(engine));

        // The server stops answering; a sync starts and holds the engine (as the desktop's
        // "Sync now" or the settings window's refresh do) waiting on it.
        server.pause();
        let syncing = {
            let engine = engine.clone();
            tokio::spawn(async move { engine.lock().await.sync().await })
        };
        // Until the sync task holds the engine, the measurement would prove nothing.
        let deadline = Instant::now() + Duration::from_secs(10);
        while engine.try_lock().is_ok() {
            assert!(Instant::now() < deadline, "the sync never took the engine");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // What the tray did before: a read through the engine waits behind the network.
        assert!(
            tokio::time::timeout(Duration::from_millis(500), engine.lock())
                .await
                .is_err(),
            "the engine should be held by the stalled sync"
        );

        // The tray's read: glance, status and dashboard through the reader.
        let mut took = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            let g = reader.glance();
            let _ = reader.status().unwrap();
            took.push(t.elapsed());
            assert_eq!(g.title, before.title, "{g:?}");
        }
        let d = reader.dashboard("day", Some(30)).unwrap();
        assert!(d.available_text.unwrap().ends_with(" credits"));
        took.sort();
        let p50 = took[took.len() / 2];
        let p99 = took[took.len() * 99 / 100];
        println!(
            "tray read with the server paused mid-sync: p50 {p50:?}, p99 {p99:?}, max {:?}",
            took.last().unwrap()
        );
        // Not waiting behind the sync is the property: a read that waited would not finish
        // at all while the server is paused. How fast a read is (goal: p99 < 5 ms, measured
        // 0.34 ms on a quiet machine) is printed above, not enforced: a timed bound fails
        // under CI's load (it did, at 5.3 and 8.8 ms with the load average at 14).
        assert!(
            took.iter().all(|t| *t < Duration::from_millis(250)),
            "a read took {:?}: it waited (p50 {p50:?}, p99 {p99:?})",
            took.last().unwrap()
        );
        assert!(!syncing.is_finished(), "the sync was still waiting");

        server.resume();
        syncing.await.unwrap().unwrap();
    });
}

#[test]
fn the_glance_and_the_dashboard_read_in_the_catalogs_unit() {
    let rt = runtime();
    for (name, plan, hint, models) in [
        ("easycoda", "free", "≈ 5.0 M tokens", vec!["agent-team"]),
        ("seed003", "pro", "≈ 500 requests", vec!["agent"]),
    ] {
        let server = Server::with_catalog(name);
        let account = server.account(plan);
        let dir = tempfile::tempdir().unwrap();
        let (engine, options) = rt.block_on(async {
            let mut engine = signed_in(&server, &account, dir.path()).await;
            // The catalog is cached by the first purchase dialog (or `status`).
            let options = engine.purchase_options().await.unwrap();
            (engine, options)
        });
        assert!(
            options.unit_hint.as_deref().unwrap().starts_with('≈'),
            "{name}: {options:?}"
        );
        let reader = engine.reader().unwrap();
        let g = reader.glance();
        assert!(g.lines.iter().any(|l| l == hint), "{name}: {:?}", g.lines);
        assert!(g.tooltip.contains(hint), "{name}: {}", g.tooltip);
        let d = reader.dashboard("model", None).unwrap();
        assert_eq!(d.unit_hint.as_deref(), Some(hint), "{name}");
        // The report form offers the platform's models, not a fixed list.
        assert_eq!(d.report_models, models, "{name}");
    }
}

/// `creditbar timezone`: shows the account's timezone, sets a real one (applied by the
/// server from the next daily reset), and names a typo without sending anything.
#[test]
fn the_cli_shows_and_sets_the_timezone_and_refuses_an_unknown_one() {
    let server = Server::start();
    let account = server.account("free");
    let session = Session::start();
    session.login(&server, &account);
    let before = server.get("/v1/account", &account.token)["timezone"].clone();

    let bad = session.creditbar(&["timezone", "Mars/Olympus_Mons"]);
    assert_ne!(bad.code, Some(0), "{bad:?}");
    assert!(
        bad.stderr.contains("unknown timezone `Mars/Olympus_Mons`"),
        "{bad:?}"
    );
    assert_eq!(
        server.get("/v1/account", &account.token)["timezone"],
        before
    );

    let set = session.creditbar(&["timezone", "America/New_York"]).ok();
    assert!(
        set.stdout.contains("Timezone set to America/New_York"),
        "{set:?}"
    );
    assert!(set.stdout.contains("next daily reset"), "{set:?}");
    assert_eq!(
        server.get("/v1/account", &account.token)["timezone"],
        "America/New_York"
    );
    let shown = session.creditbar(&["timezone"]).ok();
    assert!(
        shown.stdout.contains("Timezone: America/New_York"),
        "{shown:?}"
    );
}

/// `creditbar plan` lists every plan with what choosing it does now and the models it
/// may use (seed 001: better models only on premium tiers).
#[test]
fn the_cli_lists_plan_choices_with_their_models() {
    let server = Server::with_catalog("seed001");
    let account = server.account("free");
    let session = Session::start();
    session.login(&server, &account);
    let run = session.creditbar(&["plan"]).ok();
    assert!(run.stdout.contains("free (current)"), "{run:?}");
    assert!(run.stdout.contains("models: basic"), "{run:?}");
    assert!(
        run.stdout.contains(" now for "),
        "an upgrade's quote: {run:?}"
    );
}

/// Issue 17 step 4, against the real server under its test clock, with the engine's clock
/// injected to match (no sleeps): the dashboard's lots carry their exact expiry and each
/// charge what every bucket paid; the "expiring soon" alert fires at the minute its lead
/// time begins, exact to the micro-credit, and once.
#[test]
fn lots_charges_and_the_expiring_soon_alert_follow_the_test_clock() {
    use chrono::{DateTime, Utc};
    use std::sync::Mutex;
    let server = Server::start();
    let account = server.account("pro");
    let now0: DateTime<Utc> = server.advance(0)["now"].as_str().unwrap().parse().unwrap();
    let clock_at = Arc::new(Mutex::new(now0));
    let clock: creditbar_client::engine::Clock = {
        let at = clock_at.clone();
        Arc::new(move || *at.lock().unwrap())
    };
    let set_clock = |v: &serde_json::Value| {
        *clock_at.lock().unwrap() = v["now"].as_str().unwrap().parse().unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (mut engine, _) =
        Engine::open(dir.path(), Box::new(MemoryStore::default()), clock).unwrap();
    rt.block_on(engine.login(
        &server.base,
        SecretString::from(account.token.clone()),
        false,
    ))
    .unwrap();
    // 7 credits: the daily 5 first, then 2 from the plan (the burn order).
    let used = server.use_credits(&account, "c-1", 7);
    rt.block_on(engine.sync()).unwrap();
    let reader = engine.reader().unwrap();
    let d = reader.dashboard("day", None).unwrap();
    let b = d.status.balance.clone().unwrap();
    let sub = d.lots.iter().find(|l| l.bucket == "subscription").unwrap();
    assert_eq!(sub.available, b.buckets.subscription.available);
    assert_eq!(sub.expires_at, b.buckets.subscription.next_reset);
    assert_eq!(sub.expiry, "at_reset");
    let charge = &d.charges[0];
    assert_eq!(charge.id, "c-1");
    assert_eq!(charge.charged, used["charged"].as_i64().unwrap());
    let paid: Vec<(&str, i64)> = charge
        .by_bucket
        .iter()
        .map(|p| (p.bucket.as_str(), p.amount))
        .collect();
    assert_eq!(
        paid,
        [("daily", 5 * CR_MICROS), ("subscription", 2 * CR_MICROS)]
    );

    let mut settings = engine.settings().unwrap();
    settings.expiry_lead_hours = 6;
    engine.set_settings(&settings).unwrap();
    let _ = engine.alerts_due().unwrap();
    let renewal = b.buckets.subscription.next_reset.unwrap();
    let to_lead = (renewal - now0).num_seconds() - 6 * 3600 - 60;
    set_clock(&server.advance(to_lead));
    rt.block_on(engine.sync()).unwrap();
    let early = engine.alerts_due().unwrap();
    assert!(
        !early.iter().any(|a| a.title == "Credits expiring soon"),
        "a minute early: {early:?}"
    );
    set_clock(&server.advance(60));
    rt.block_on(engine.sync()).unwrap();
    let due = engine.alerts_due().unwrap();
    let left = engine
        .status()
        .unwrap()
        .balance
        .unwrap()
        .buckets
        .subscription
        .available;
    let alert = due
        .iter()
        .find(|a| a.title == "Credits expiring soon")
        .unwrap_or_else(|| panic!("at the minute: {due:?}"));
    assert!(
        alert.body.starts_with(&format!(
            "{} from your plan expire at the renewal, in 6 h 0 min",
            creditbar_client::format::credits_long(left)
        )),
        "{}",
        alert.body
    );
    assert!(engine.alerts_due().unwrap().is_empty(), "told once");
}

/// Issue 17 step 4: a bonus lot shows its exact expiry, as the server's ledger reports it
/// (an extension of the contract), and "never" when the server says it never expires.
#[test]
fn a_bonus_lot_shows_the_expiry_the_server_reports() {
    let server = Server::start();
    let account = server.account("pro");
    let (st, v) = server.call(
        "POST",
        &format!("/v1/admin/accounts/{}/grants", account.id),
        ADMIN,
        Some(serde_json::json!({"id": "apology", "amount": 3 * CR_MICROS,
            "reason": "compensation", "expires_at": "2026-12-24T18:30:00Z"})),
    );
    assert_eq!(st, 201, "{v}");
    server.grant(&account, "welcome", 2);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut engine = rt.block_on(signed_in(&server, &account, dir.path()));
    rt.block_on(engine.sync()).unwrap();
    let d = engine.reader().unwrap().dashboard("day", None).unwrap();
    let bonus: Vec<(i64, Option<String>, &str)> = d
        .lots
        .iter()
        .filter(|l| l.bucket == "bonus")
        .map(|l| {
            (
                l.available,
                l.expires_at.map(|t| t.to_rfc3339()),
                l.expiry.as_str(),
            )
        })
        .collect();
    assert_eq!(
        bonus,
        [
            (
                3 * CR_MICROS,
                Some("2026-12-24T18:30:00+00:00".to_owned()),
                "at"
            ),
            (2 * CR_MICROS, None, "never"),
        ]
    );
}

/// The engine runs on the server's time: its clock is this machine's (the wall clock
/// here, weeks away from the server's test clock) corrected by the skew read from the
/// balance's `Date`, so the "expiring soon" warning follows the server's clock.
#[test]
fn the_engine_follows_the_servers_clock() {
    let server = Server::start();
    let account = server.account("pro");
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut engine = rt.block_on(signed_in(&server, &account, dir.path()));
    let server_now = |v: &serde_json::Value| -> chrono::DateTime<chrono::Utc> {
        v["now"].as_str().unwrap().parse().unwrap()
    };
    let now0 = server_now(&server.advance(0));
    assert!(
        (engine.now() - now0).num_seconds().abs() <= 2,
        "engine {} server {now0}",
        engine.now()
    );
    let _ = engine.alerts_due().unwrap();
    let renewal = engine
        .status()
        .unwrap()
        .balance
        .unwrap()
        .buckets
        .subscription
        .next_reset
        .unwrap();
    let lead = chrono::Duration::hours(i64::from(
        creditbar_client::alerts::DEFAULT_EXPIRY_LEAD_HOURS,
    ));
    let early = (renewal - lead - now0).num_seconds() - 120;
    server.advance(early);
    rt.block_on(engine.sync()).unwrap();
    let due = engine.alerts_due().unwrap();
    assert!(
        !due.iter().any(|a| a.title == "Credits expiring soon"),
        "two minutes early: {due:?}"
    );
    server.advance(240);
    rt.block_on(engine.sync()).unwrap();
    let due = engine.alerts_due().unwrap();
    assert!(
        due.iter().any(|a| a.title == "Credits expiring soon"),
        "two minutes into the lead time: {due:?}"
    );
}

const CR_MICROS: i64 = 1_000_000;

/// Issue 17 step 6: `creditbar report` sends all six details; `creditbar reviews` lists
/// each review with its outcome, a resolution without credits included.
#[test]
fn report_sends_all_six_details_and_reviews_lists_the_outcome() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    server.use_credits(&account, "r-1", 3);
    session.login(&server, &account);
    let run = session
        .creditbar(&[
            "report",
            "thread-1",
            "--description",
            "it looped on the same file",
            "--model",
            "premium",
            "--preview-failing",
            "--thread-messages",
            "42",
            "--large-context",
        ])
        .ok();
    let sent = server.reviews(&account);
    assert_eq!(sent.len(), 1, "{run:?}");
    let r = &sent[0];
    assert_eq!(r["thread"], "thread-1");
    assert_eq!(r["description"], "it looped on the same file");
    assert_eq!(r["model"], "premium");
    assert_eq!(r["preview_failing"], true);
    assert_eq!(r["thread_messages"], 42);
    assert_eq!(r["large_context"], true);

    let open = session.creditbar(&["reviews"]).ok();
    assert!(
        open.stdout.contains("Open: we are looking at it"),
        "{open:?}"
    );
    assert!(
        open.stdout
            .contains("model premium · 42 messages · preview failing · large context"),
        "{open:?}"
    );
    let id = r["id"].as_str().unwrap();
    let (status, v) = server.call(
        "POST",
        &format!("/v1/admin/usage-reviews/{id}/resolve"),
        ADMIN,
        Some(serde_json::json!({"grant_amount": 0, "note": "the charge was right: 42 messages"})),
    );
    assert_eq!(status, 200, "{v}");
    let done = session.creditbar(&["reviews"]).ok();
    assert!(
        done.stdout
            .contains("Resolved without credits — the charge was right: 42 messages"),
        "{done:?}"
    );
}

/// Issue 17 step 7, deterministic: two engines on one cache (the app and `creditbar
/// watch`) decide the alerts at the same instant, 200 times over; every notice is told by
/// exactly one of them. Without the transaction both read the same alert state and tell it
/// twice (129 of 200 rounds told twice when the transaction was taken out).
#[test]
fn two_processes_sharing_a_cache_tell_each_notice_once() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Engine::open(dir.path(), Box::new(MemoryStore::default()), clock())
            .unwrap()
            .0
    };
    let (a, b) = (open(), open());
    a.alerts_due().unwrap(); // first sight: the state is recorded, nothing told
    let db = rusqlite::Connection::open(dir.path().join("cache.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let rounds = 200u64;
    let (start, done) = (std::sync::Barrier::new(3), std::sync::Barrier::new(3));
    let told = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for e in [a, b] {
            let (start, done, told) = (&start, &done, &told);
            s.spawn(move || {
                for _ in 0..rounds {
                    start.wait();
                    let n = e.alerts_due().unwrap().len();
                    told.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                    done.wait();
                }
            });
        }
        for seq in 1..=rounds {
            db.execute(
                "INSERT INTO notices (seq, at, type, data) VALUES (?1, ?2, 'grant', ?3)",
                rusqlite::params![
                    seq as i64,
                    chrono::Utc::now().to_rfc3339(),
                    format!(r#"{{"amount": {seq}000000, "reason": "promo"}}"#)
                ],
            )
            .unwrap();
            start.wait();
            done.wait();
        }
    });
    assert_eq!(
        told.load(std::sync::atomic::Ordering::SeqCst),
        rounds as usize,
        "each notice told once"
    );
}
