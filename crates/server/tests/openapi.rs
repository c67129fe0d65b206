//! The OpenAPI document is committed (docs/openapi.json) so the repository describes its
//! own contract; this test fails when what the server serves drifts from it. Regenerate
//! with `CREDITBAR_WRITE_OPENAPI=1 cargo test -p creditbar-server --test openapi`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[test]
fn the_committed_openapi_document_is_what_the_server_serves() {
    let s = Server::start();
    let served = s.text("/v1/openapi.json", ADMIN);
    let value: serde_json::Value = serde_json::from_str(&served).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("CREDITBAR_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == pretty,
        "docs/openapi.json is out of date: run CREDITBAR_WRITE_OPENAPI=1 cargo test -p \
         creditbar-server --test openapi and commit it"
    );
}
