//! Secrets live in the OS keychain and nowhere else: not in the cache files, not in any
//! output. Each test runs the real CLI in a private D-Bus session with gnome-keyring.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, Session};

const GOOD_CARD: &str = "4242424242424242";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Asserts that `secret` appears in no cache file and no output of any command so far.
#[track_caller]
fn assert_nowhere(session: &Session, secret: &str, what: &str) {
    let files = session.cache_bytes();
    assert!(
        files.iter().any(|(name, _)| name == "cache.db"),
        "no cache was written: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (name, bytes) in &files {
        assert!(
            !contains(bytes, secret),
            "the {what} is in the cache file {name}"
        );
    }
    assert!(
        !session.all_output().contains(secret),
        "the {what} was printed by a command"
    );
}

#[test]
fn login_keeps_the_account_token_in_the_keychain_and_nowhere_else() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();

    let run = session.login(&server, &account);
    assert!(run.stdout.contains("Signed in as"), "{run:?}");
    assert_eq!(
        session.secret("account-token").as_deref(),
        Some(account.token.as_str())
    );
    // Everything a user might run next works from the keychain item and prints no secret.
    session.creditbar(&["sync"]).ok();
    let status = session.creditbar(&["status"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(
        status.stdout.contains("505.00 credits available"),
        "{status:?}"
    );
    session.creditbar(&["status", "--json"]);
    // A reader that stops early (`| head`) ends the command quietly: no panic, exit 0.
    for args in [
        &["status", "--json"][..],
        &["status"],
        &["usage", "--by", "day"],
    ] {
        let closed = session.creditbar_into_closed_pipe(args);
        assert_eq!(closed.code, Some(0), "{args:?}: {closed:?}");
        assert_eq!(closed.stderr, "", "{args:?}");
    }
    session.creditbar(&["status", "--waybar"]);
    session.creditbar(&["usage", "--by", "model"]).ok();
    session.creditbar(&["auto-refill", "show"]).ok();
    server.use_credits(&account, "u1", 5);
    session
        .creditbar(&["report", "thread-1", "--description", "it looped"])
        .ok();
    // A thread with no usage is named as a likely typo, with the threads there are, and
    // nothing is reported.
    let typo = session.creditbar(&["report", "thread-l", "--description", "it looped"]);
    assert_eq!(typo.code, Some(1), "{typo:?}");
    assert!(
        typo.stderr
            .contains("no usage recorded for thread `thread-l`; threads with usage: thread-1"),
        "{typo:?}"
    );
    assert_eq!(server.reviews(&account).len(), 1);
    assert_nowhere(&session, &account.token, "account token");
}

#[test]
fn a_saved_card_leaves_only_a_payment_token_in_the_keychain() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);

    let run = session.add_card(GOOD_CARD).ok();
    assert!(run.stdout.contains("ending in 4242"), "{run:?}");
    let payment = session
        .secret("payment-token")
        .expect("a payment-token item in the keychain");
    assert!(!payment.is_empty() && payment != account.token);
    // A second card replaces the first in place: still one item, with the new token.
    session.add_card(GOOD_CARD).ok();
    assert_eq!(session.secret_items("payment-token"), 1);
    let first = payment;
    let payment = session.secret("payment-token").unwrap();
    assert_ne!(payment, first, "the second card's token replaced the first");
    // It works: a purchase is charged to the saved card.
    let bought = session.creditbar(&["buy", "pack_500"]).ok();
    assert!(
        bought.stdout.contains("Bought 500.00 credits"),
        "{bought:?}"
    );

    assert_nowhere(&session, GOOD_CARD, "card number");
    assert_nowhere(&session, &payment, "payment token");
    assert_nowhere(&session, &account.token, "account token");
    // The cache keeps what may be shown: brand and last 4.
    let card: String = session
        .cache_db()
        .query_row("SELECT json FROM documents WHERE name = 'card'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(card.contains("\"4242\""), "{card}");
}

#[test]
fn logout_removes_both_keychain_items_and_the_cached_account() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    session.login(&server, &account);
    session.add_card(GOOD_CARD).ok();
    assert!(session.secret("account-token").is_some());
    assert!(session.secret("payment-token").is_some());

    session.creditbar(&["logout"]).ok();
    assert_eq!(session.secret("account-token"), None);
    assert_eq!(session.secret("payment-token"), None);
    let status = session.offline_status();
    assert!(status["balance"].is_null(), "{status}");
    assert!(status["account"].is_null(), "{status}");
    // Signed out means signed out: reading from the server is refused with a way forward.
    let sync = session.creditbar(&["sync"]);
    assert_ne!(sync.code, Some(0), "{sync:?}");
    assert!(sync.stderr.contains("creditbar login"), "{sync:?}");
}

#[test]
fn logging_in_again_updates_the_keychain_item_in_place() {
    let server = Server::start();
    let first = server.account("pro");
    let second = server.account("free");
    let session = Session::start();
    session.login(&server, &first);
    let run = session.login(&server, &second);
    assert!(run.stdout.contains("free plan"), "{run:?}");
    assert_eq!(
        session.secret("account-token").as_deref(),
        Some(second.token.as_str())
    );
    assert_eq!(session.secret_items("account-token"), 1);
    // The cache now describes the second account only.
    let status = session.offline_status();
    assert_eq!(status["balance"]["available"], 105 * common::CREDIT);
}

#[test]
fn without_a_keychain_login_says_what_to_install_and_stores_nothing() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::without_keychain();

    let run = session.creditbar_stdin(
        &["login", "--server", &server.base, "--token-stdin"],
        &format!("{}\n", account.token),
    );
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("gnome-keyring"), "{run:?}");
    assert!(run.stderr.contains("keychain"), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    // Nothing was kept: no account, no balance, no token in any file.
    let status = session.offline_status();
    assert!(status["account"].is_null(), "{status}");
    assert!(status["balance"].is_null(), "{status}");
    assert!(status["server"].is_null(), "{status}");
    for (name, bytes) in session.cache_bytes() {
        assert!(!contains(&bytes, &account.token), "token in {name}");
    }
    assert!(!session.all_output().contains(&account.token));
}
