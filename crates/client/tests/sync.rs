//! The cache follows the server live, answers when the server is gone, catches up exactly
//! when it is back, survives corruption, and purchases charge once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Account, Server, Session, CREDIT, LIVE};
use serde_json::json;

/// The ledger as the cache holds it must be exactly the server's: same seqs, same sum.
#[track_caller]
fn assert_cache_ledger_is_the_servers(server: &Server, session: &Session, account: &Account) {
    let cached = session.cache_ledger_seqs();
    let served = server.ledger_seqs(account);
    assert_eq!(cached, served, "cache ledger seqs vs server ledger seqs");
    let sum: i64 = session
        .cache_db()
        .query_row("SELECT SUM(amount) FROM ledger", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        sum,
        server.available(account),
        "cache ledger sum vs balance"
    );
}

#[test]
fn usage_on_the_server_reaches_the_cache_live_while_watch_runs() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);
    let mut watch = session.watch();

    server.use_credits(&account, "u1", 100);
    session.wait_cached_credits(405, LIVE);
    // This one can only come through the open stream: the polling fallback waits 30 s.
    server.use_credits(&account, "u2", 5);
    session.wait_cached_credits(400, LIVE);
    watch.assert_running();
    assert_cache_ledger_is_the_servers(&server, &session, &account);
    let status = session.creditbar(&["status", "--offline"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(
        status.stdout.contains("400.00 credits available"),
        "{status:?}"
    );
    assert!(status.stdout.contains("Updated"), "{status:?}");
}

#[test]
fn with_the_server_gone_status_answers_from_the_cache_and_says_offline() {
    let mut server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);
    server.use_credits(&account, "u1", 5);
    session.creditbar(&["sync"]).ok();

    server.stop();
    let status = session.creditbar(&["status"]);
    assert_eq!(status.code, Some(12), "stale exit code: {status:?}");
    assert!(
        status.stdout.contains("500.00 credits available"),
        "{status:?}"
    );
    assert!(status.stdout.contains("Offline"), "{status:?}");
    let bar = session.creditbar(&["status", "--waybar"]);
    assert_eq!(bar.code, Some(12), "{bar:?}");
    let bar: serde_json::Value = serde_json::from_str(&bar.stdout).unwrap();
    assert_eq!(bar["text"], "500 cr");
    assert_eq!(bar["class"], "stale");
    // Reads that never needed the server still answer.
    let usage = session.creditbar(&["usage", "--by", "model"]).ok();
    assert!(usage.stdout.contains("Offline"), "{usage:?}");
    assert!(usage.stdout.contains("standard"), "{usage:?}");
}

#[test]
fn after_a_server_restart_sync_resumes_from_its_cursor_without_gap_or_duplicate() {
    let mut server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);
    let watch = session.watch();
    server.use_credits(&account, "u1", 100);
    session.wait_cached_credits(405, LIVE);

    server.stop();
    server.restart();
    // Changes made while the client is reconnecting.
    server.use_credits(&account, "u2", 10);
    server.grant(&account, "g1", 3);
    server.use_credits(&account, "u3", 20);
    session.wait_cached_credits(378, Duration::from_secs(25));
    assert_cache_ledger_is_the_servers(&server, &session, &account);

    // And with no watch running at all: a plain sync catches up from the cursor.
    watch.kill();
    server.use_credits(&account, "u4", 8);
    let sync = session.creditbar(&["sync"]).ok();
    assert!(
        sync.stdout.contains("Synced: 1 new ledger entries"),
        "{sync:?}"
    );
    session.wait_cached_credits(370, LIVE);
    assert_cache_ledger_is_the_servers(&server, &session, &account);
}

#[test]
fn a_declined_card_is_refused_clearly_and_changes_nothing() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);

    let run = session.add_card("4000000000000002");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("declined"), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert_eq!(session.secret("payment-token"), None);
    let cards: i64 = session
        .cache_db()
        .query_row(
            "SELECT COUNT(*) FROM documents WHERE name = 'card'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cards, 0);
    // With no card, buying says what to do and charges nothing.
    let buy = session.creditbar(&["buy", "pack_500"]);
    assert_eq!(buy.code, Some(1), "{buy:?}");
    assert!(buy.stderr.contains("card add"), "{buy:?}");
    // A pack the catalog does not sell, or a custom amount outside its range, is named as
    // such before the missing card is.
    let typo = session.creditbar(&["buy", "0"]);
    assert_eq!(typo.code, Some(1), "{typo:?}");
    assert!(
        typo.stderr
            .contains("unknown pack `0`: choose pack_500, pack_2500, pack_12500"),
        "{typo:?}"
    );
    let custom = session.creditbar(&["buy", "--custom-cents", "1"]);
    assert_eq!(custom.code, Some(1), "{custom:?}");
    assert!(
        custom.stderr.contains("a custom amount must be $"),
        "{custom:?}"
    );
    assert!(server.purchases(&account).is_empty());
    assert_eq!(server.available(&account), 505 * CREDIT);
}

#[test]
fn a_corrupt_cache_is_set_aside_and_rebuilt_by_the_next_sync() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);
    server.use_credits(&account, "u1", 5);
    session.creditbar(&["sync"]).ok();

    let garbage = b"not a database: the disk ate it. ".repeat(200);
    std::fs::write(session.cache_path(), &garbage).unwrap();
    let sync = session.creditbar(&["sync"]);
    assert_eq!(sync.code, Some(0), "{sync:?}");
    assert!(sync.stderr.contains("unreadable"), "{sync:?}");
    assert!(sync.stderr.contains("set aside"), "{sync:?}");
    // The old file is kept, untouched, for whoever wants to look at it.
    let aside: Vec<_> = std::fs::read_dir(&session.data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("unreadable"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);
    // The data is back.
    let status = session.creditbar(&["status", "--offline"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(
        status.stdout.contains("500.00 credits available"),
        "{status:?}"
    );
    assert_cache_ledger_is_the_servers(&server, &session, &account);
}

#[test]
fn buying_a_pack_adds_500_credits_and_each_buy_is_one_purchase() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);
    session.add_card("4242424242424242").ok();

    let buy = session.creditbar(&["buy", "pack_500"]).ok();
    assert!(
        buy.stdout
            .contains("Bought 500.00 credits for $20.00. Balance: 1,005.00 credits."),
        "{buy:?}"
    );
    assert_eq!(server.purchases(&account).len(), 1);
    assert_eq!(server.available(&account), 1005 * CREDIT);
    assert_eq!(session.cached_available(), Some(1005 * CREDIT));

    // A finished purchase does not stand in the way of the next one.
    session.creditbar(&["buy", "pack_500"]).ok();
    let purchases = server.purchases(&account);
    assert_eq!(purchases.len(), 2, "{purchases:?}");
    assert_ne!(purchases[0]["id"], purchases[1]["id"]);
    assert_eq!(server.available(&account), 1505 * CREDIT);
}

#[test]
fn a_purchase_retried_after_a_crash_is_charged_once() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);
    session.add_card("4242424242424242").ok();
    let payment = session.secret("payment-token").unwrap();

    // The crash: the client wrote down its key and sent the purchase, the server charged
    // it, and the client died before it heard back.
    let key = "buy-crashed-before-the-answer";
    session
        .cache_db_rw()
        .execute(
            "INSERT INTO pending_purchases (key, item, created_at, state)
             VALUES (?1, '{\"Pack\":\"pack_500\"}', '2026-11-21T18:00:00Z', 'pending')",
            [key],
        )
        .unwrap();
    let http = reqwest::blocking::Client::new();
    let first = http
        .post(server.url("/v1/purchases"))
        .bearer_auth(&account.token)
        .header("Idempotency-Key", key)
        .json(&json!({"pack": "pack_500", "payment_token": payment}))
        .send()
        .unwrap();
    assert_eq!(first.status().as_u16(), 201);

    // The user tries again: the same purchase, not a second one.
    let retry = session.creditbar(&["buy", "pack_500"]).ok();
    assert!(
        retry.stdout.contains("Balance: 1,005.00 credits"),
        "{retry:?}"
    );
    assert_eq!(server.purchases(&account).len(), 1);
    assert_eq!(server.available(&account), 1005 * CREDIT);

    // That purchase is finished now; the next buy is a new one.
    session.creditbar(&["buy", "pack_500"]).ok();
    assert_eq!(server.purchases(&account).len(), 2);
    assert_eq!(server.available(&account), 1505 * CREDIT);
}

/// Usage events come into the cache one by one; every grouping the cache computes is the
/// server's own aggregate, after a first sync and after an incremental one (which re-reads a
/// short overlap and must not double anything).
#[test]
fn cached_usage_groups_exactly_like_the_server_after_first_and_incremental_syncs() {
    let server = Server::start();
    let account = server.account("team");
    let session = Session::start();
    session.login(&server, &account);
    let spend = |id: &str, model: &str, project: &str, output: i64| {
        let body = json!({"id": id, "project": project, "thread": format!("thread-{}", id.len() % 3),
            "model": model, "kind": "agent", "status": if output == 0 { "cancelled" } else { "completed" },
            "input_tokens": 500, "cached_input_tokens": 100, "output_tokens": output});
        let (s, v) = server.call("POST", "/v1/usage", &account.token, Some(body));
        assert_eq!(s, 201, "{v}");
    };
    let models = ["lite", "standard", "premium"];
    for i in 0..12i64 {
        spend(
            &format!("a{i}"),
            models[(i % 3) as usize],
            &format!("p{}", i % 2),
            1000 + i * 97,
        );
    }
    spend("free", "premium", "p9", 0);
    let compare = |when: &str| {
        for by in ["day", "model", "project", "thread"] {
            let cached: serde_json::Value = serde_json::from_str(
                &session
                    .creditbar(&["usage", "--by", by, "--json"])
                    .ok()
                    .stdout,
            )
            .unwrap();
            let served =
                server.get(&format!("/v1/usage?group_by={by}"), &account.token)["items"].clone();
            assert_eq!(cached, served, "{when}: group by {by}");
        }
    };
    session.creditbar(&["sync"]).ok();
    compare("after the first sync");
    server.advance(26 * 3600);
    for i in 0..7i64 {
        spend(&format!("b{i}"), models[(i % 2) as usize], "p1", 2000 + i);
    }
    session.creditbar(&["sync"]).ok();
    compare("after an incremental sync");
    let cached: i64 = session
        .cache_db()
        .query_row("SELECT COUNT(*) FROM usage_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(cached, 20, "each event once");
}
