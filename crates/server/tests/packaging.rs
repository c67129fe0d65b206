//! The server's packaging (docs/server.md, "Operating it"): the systemd unit passes
//! `systemd-analyze verify` and rates "OK" or better in `systemd-analyze security`; the .deb
//! cargo-deb builds passes lintian and holds the binary, the unit and the config; the
//! shipped config is one the server accepts.
//!
//! Needs systemd-analyze, lintian and cargo-deb (scripts/lib/install.sh,
//! `install_packaging_tools`). Without them this test fails, it does not skip. The .deb is
//! made from the debug binary `cargo test` already built (`--no-build --profile dev`), so
//! the test costs seconds, not a release build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed: run scripts/lib/install.sh's install_packaging_tools \
         (apt-get install lintian systemd; cargo install cargo-deb --version '^3' --locked)"
    );
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A file-system root holding systemd's own units, the binary and our unit, for
/// `systemd-analyze --root` (it checks that ExecStart's binary exists there).
fn unit_root(dir: &Path) -> PathBuf {
    let root_dir = dir.join("root");
    let units = root_dir.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).unwrap();
    let system = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .find(|p| Path::new(p).join("sysinit.target").exists())
        .expect("systemd's units (sysinit.target) are not installed");
    assert!(Command::new("cp")
        .arg("-r")
        .arg(system)
        .arg(&units)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir_all(root_dir.join("usr/bin")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_creditbar-server"),
        root_dir.join("usr/bin/creditbar-server"),
    )
    .unwrap();
    let etc = root_dir.join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(
        root().join("packaging/creditbar-server.service"),
        etc.join("creditbar-server.service"),
    )
    .unwrap();
    root_dir
}

#[test]
fn the_unit_verifies_and_is_hardened() {
    need("systemd-analyze");
    let dir = tempfile::tempdir().unwrap();
    let r = unit_root(dir.path());
    let root_arg = format!("--root={}", r.display());
    let (ok, text) = run(Command::new("systemd-analyze")
        .args(["verify", &root_arg, "creditbar-server.service"])
        .current_dir(dir.path()));
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    assert!(
        text.trim().is_empty(),
        "systemd-analyze verify warned:\n{text}"
    );
    let (_, text) = run(Command::new("systemd-analyze").args([
        "security",
        "--offline=true",
        &root_arg,
        "creditbar-server.service",
    ]));
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for creditbar-server.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(
        level <= 2.0,
        "exposure {level} (want ≤ 2.0, \"OK\"):\n{text}"
    );
    for want in ["DynamicUser=", "ProtectSystem=", "CapabilityBoundingSet="] {
        let line = text
            .lines()
            .find(|l| l.contains(want))
            .unwrap_or_else(|| panic!("{want} not rated:\n{text}"));
        assert!(line.starts_with('✓'), "{line}");
    }
}

#[test]
fn the_deb_passes_lintian_and_holds_the_service() {
    need("cargo-deb");
    need("lintian");
    let out = tempfile::tempdir().unwrap();
    // The debug binary's target dir: where cargo-deb looks with `--profile dev`.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_creditbar-server"));
    let target_dir = bin.parent().and_then(Path::parent).unwrap().to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let (ok, text) = run(Command::new(cargo)
        .args([
            "deb",
            "-p",
            "creditbar-server",
            "--no-build",
            "--profile",
            "dev",
            "-o",
        ])
        .arg(out.path())
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(root()));
    assert!(ok, "cargo deb failed:\n{text}");
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap_or_else(|| panic!("no .deb made:\n{text}"));
    // initial-upload-closes-no-bugs: a package outside Debian's archive closes no Debian
    // bug. no-manual-page: `creditbar-server --help` is the manual (a man page is future
    // work, docs/server.md).
    let (ok, text) = run(Command::new("lintian")
        .args([
            "--fail-on",
            "error,warning",
            "--suppress-tags",
            "initial-upload-closes-no-bugs,no-manual-page",
        ])
        .arg(&deb));
    assert!(ok, "lintian:\n{text}");
    let (ok, listing) = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    assert!(ok, "{listing}");
    for want in [
        "./usr/bin/creditbar-server",
        "./usr/lib/systemd/system/creditbar-server.service",
        "./etc/creditbar/server.toml",
        "./usr/share/doc/creditbar-server/server.md",
    ] {
        assert!(
            listing.contains(want),
            "{want} not in the package:\n{listing}"
        );
    }
    let (_, conffiles) = run(Command::new("dpkg-deb")
        .args(["-I"])
        .arg(&deb)
        .arg("conffiles"));
    assert!(
        conffiles.contains("/etc/creditbar/server.toml"),
        "{conffiles}"
    );
    let (_, postinst) = run(Command::new("dpkg-deb")
        .args(["-I"])
        .arg(&deb)
        .arg("postinst"));
    assert!(
        postinst.contains("/etc/creditbar/admin-token"),
        "{postinst}"
    );
    assert!(
        postinst.contains("deb-systemd-helper"),
        "the unit is not enabled:\n{postinst}"
    );
}

/// The config the package ships is one the server starts with (the command line, as in the
/// unit, wins over its `listen`).
#[test]
fn the_shipped_config_is_accepted() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_creditbar-server"))
        .arg("--config")
        .arg(root().join("packaging/server.toml"))
        .arg("--db")
        .arg(dir.path().join("server.db"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            "packaging-test-admin-token-0123456789",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next();
    child.kill().ok();
    let mut err = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut err).ok();
    child.wait().ok();
    let line = line.and_then(Result::ok).unwrap_or_default();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line}{err}"
    );
}
