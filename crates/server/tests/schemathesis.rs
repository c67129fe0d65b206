//! Runs scripts/schemathesis against the server binary cargo built for this test: no 5xx,
//! and every response's status, content type and body match GET /v1/openapi.json.
//!
//! Needs python3 with the venv module (Debian: python3, python3-venv; the script installs
//! python3-venv itself when it runs as root with apt) and PyPI on the first run (schemathesis
//! is pinned and cached in $HOME/.cache/creditbar/venv). Without them this test fails, it
//! does not skip: the contract check is part of the suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_mismatch() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/schemathesis");
    assert!(script.exists(), "missing {}", script.display());
    if let Err(e) = Command::new("python3").arg("--version").output() {
        panic!(
            "python3 is not installed or not on PATH ({e}): this test runs schemathesis from a \
             Python venv; install python3 and python3-venv (Debian: apt-get install python3 python3-venv)"
        );
    }

    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        .env(
            "CREDITBAR_SERVER_BIN",
            env!("CARGO_BIN_EXE_creditbar-server"),
        )
        .output()
        .expect("run scripts/schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(150)..].join("\n");
    assert!(
        out.status.success(),
        "scripts/schemathesis failed ({}): a 5xx, a response that does not match the OpenAPI \
         document, or python3 / venv / schemathesis missing. Last lines of its output:\n{tail}",
        out.status
    );
    assert!(
        text.contains("passed"),
        "schemathesis ran no test case:\n{tail}"
    );
}
