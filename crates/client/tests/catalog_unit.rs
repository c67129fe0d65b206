//! The client follows the catalog: `creditbar status` reads the balance in the platform's
//! own unit beside credits (EasyCoda: tokens; seed 003: requests). Its own test binary: the
//! server's catalog is chosen through CREDITBAR_CATALOG, which the harness passes on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[test]
fn status_shows_the_balance_in_the_catalogs_unit() {
    let catalogs = format!("{}/../../catalogs", env!("CARGO_MANIFEST_DIR"));
    for (name, expected) in [
        ("easycoda", "500.00 credits available (≈ 5.0 M tokens)"),
        ("seed003", "available (≈ 500 requests)"),
    ] {
        std::env::set_var("CREDITBAR_CATALOG", format!("{catalogs}/{name}.toml"));
        let server = Server::start();
        let account = server.account(if name == "seed003" { "pro" } else { "free" });
        let session = Session::start();
        session.login(&server, &account);
        let run = session.creditbar(&["status"]);
        assert!(run.stdout.contains(expected), "{name}: {run:?}");
        // Offline, from the cache.
        let offline = session.creditbar(&["status", "--offline"]);
        assert!(offline.stdout.contains("≈"), "{name}: {offline:?}");
    }
}
