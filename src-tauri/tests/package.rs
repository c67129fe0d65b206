//! The packages as a user gets them: scripts/package builds the .deb and .rpm (release,
//! without `demo`); this test unpacks the .deb into a temporary root (`dpkg-deb -x`, so the
//! test machine is left alone), checks what it installs and where, runs the validators a
//! distribution would (desktop-file-validate, appstreamcli, lintian), then, in the private
//! desktop session of the other e2e tests, signs in with the packaged `creditbar` CLI and
//! starts the packaged `creditbar-desktop`: the tray shows the balance, and the app logs in
//! the XDG state directory.
//!
//! `CREDITBAR_DEB` / `CREDITBAR_RPM` name prebuilt packages; otherwise this runs
//! scripts/package (a release build: slow the first time, then reused).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

/// The target directory this test was built in (`<target>/debug/deps/package-…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_owned()
}

fn only_file(dir: &Path, ext: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    found.pop()
}

/// The .deb and .rpm, built once per test binary run by scripts/package when not given.
fn packages() -> (PathBuf, PathBuf) {
    static BUILT: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let (Some(deb), Some(rpm)) = (
                std::env::var_os("CREDITBAR_DEB"),
                std::env::var_os("CREDITBAR_RPM"),
            ) {
                return (deb.into(), rpm.into());
            }
            let ok = Command::new(repo().join("scripts/package"))
                .env("CARGO_TARGET_DIR", target_dir())
                .status()
                .unwrap()
                .success();
            assert!(ok, "scripts/package failed");
            let bundle = target_dir().join("release/bundle");
            (
                only_file(&bundle.join("deb"), "deb").expect("no .deb"),
                only_file(&bundle.join("rpm"), "rpm").expect("no .rpm"),
            )
        })
        .clone()
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The .deb unpacked into `root`.
fn unpack(root: &Path) {
    let (deb, _) = packages();
    let (ok, out) = run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root));
    assert!(ok, "dpkg-deb -x: {out}");
}

/// What the .deb installs, where Debian expects it, and what the validators say.
#[test]
fn the_deb_installs_like_any_desktop_app_and_validates() {
    let (deb, rpm) = packages();
    let root = tempfile::tempdir().unwrap();
    unpack(root.path());
    let r = |p: &str| root.path().join(p.trim_start_matches('/'));

    for path in [
        "/usr/bin/creditbar-desktop",
        "/usr/bin/creditbar",
        "/usr/share/applications/creditbar.desktop",
        "/usr/share/metainfo/dev.creditbar.desktop.metainfo.xml",
        "/usr/share/icons/hicolor/scalable/apps/creditbar-desktop.svg",
        "/usr/share/bash-completion/completions/creditbar",
        "/usr/share/zsh/vendor-completions/_creditbar",
        "/usr/share/fish/vendor_completions.d/creditbar.fish",
        "/usr/share/man/man1/creditbar.1.gz",
        "/usr/share/man/man1/creditbar-usage.1.gz",
        "/usr/share/doc/creditbar/copyright",
    ] {
        assert!(r(path).exists(), "{path} is not in {}", deb.display());
    }
    for n in [16, 24, 32, 48, 64, 128, 256, 512] {
        let icon = format!("/usr/share/icons/hicolor/{n}x{n}/apps/creditbar-desktop.png");
        assert!(r(&icon).exists(), "{icon} missing");
    }

    // The packaged app has --help/--version and no --demo: it does not link the server.
    let app = r("/usr/bin/creditbar-desktop");
    let (ok, version) = run(Command::new(&app).arg("--version"));
    assert!(
        ok && version.trim() == format!("creditbar-desktop {}", env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    let (ok, help) = run(Command::new(&app).arg("--help"));
    assert!(
        ok && help.contains("system tray") && !help.contains("--demo"),
        "{help}"
    );
    let (ok, demo) = run(Command::new(&app).arg("--demo"));
    assert!(!ok && demo.contains("--demo"), "{demo}");
    let (ok, cli) = run(Command::new(r("/usr/bin/creditbar")).arg("--version"));
    assert!(ok && cli.starts_with("creditbar "), "{cli}");

    let (ok, out) =
        run(Command::new("desktop-file-validate")
            .arg(r("/usr/share/applications/creditbar.desktop")));
    assert!(ok && out.trim().is_empty(), "desktop-file-validate: {out}");
    let (ok, out) = run(Command::new("appstreamcli")
        .args(["validate", "--no-net", "--pedantic"])
        .arg(r("/usr/share/metainfo/dev.creditbar.desktop.metainfo.xml")));
    assert!(ok, "appstreamcli validate: {out}");
    eprintln!("appstreamcli validate --pedantic:\n{out}");

    // lintian: no error; the warnings that remain are listed in docs/desktop.md
    // ("Packages") with why each stays.
    let (_, out) = run(Command::new("lintian")
        .args(["--tag-display-limit", "0", "--suppress-tags-from-file"])
        .arg(repo().join("packaging/lintian-accepted"))
        .arg(&deb));
    eprintln!("lintian:\n{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("W:")).collect();
    assert!(
        warnings.is_empty(),
        "lintian warnings:\n{}",
        warnings.join("\n")
    );

    // The .rpm carries the same files (Fedora's zsh directory).
    let (ok, list) = run(Command::new("rpm").args(["-qlp"]).arg(&rpm));
    assert!(ok, "rpm -qlp: {list}");
    for path in [
        "/usr/bin/creditbar-desktop",
        "/usr/bin/creditbar",
        "/usr/share/applications/creditbar.desktop",
        "/usr/share/metainfo/dev.creditbar.desktop.metainfo.xml",
        "/usr/share/zsh/site-functions/_creditbar",
        "/usr/share/man/man1/creditbar.1.gz",
    ] {
        assert!(
            list.lines().any(|l| l == path),
            "{path} not in the rpm:\n{list}"
        );
    }
}

/// The installed app in a desktop session: signed in with the packaged CLI, the packaged
/// desktop binary shows the balance in the tray, and both log in the XDG state directory.
#[test]
fn the_installed_app_shows_the_balance_in_the_tray() {
    // Build (or find) the packages before entering the session: the session's HOME is
    // private, so scripts/package must not run inside it.
    let (deb, _) = packages();
    let Some(work) = in_session_with(
        "the_installed_app_shows_the_balance_in_the_tray",
        &[
            ("CREDITBAR_DEB", deb.as_os_str()),
            ("CREDITBAR_RPM", deb.as_os_str()),
        ],
    ) else {
        return;
    };
    let root = work.join("root");
    unpack(&root);
    let server = Server::start(&work);
    let created: serde_json::Value = server
        .http
        .post(format!("{}/v1/admin/accounts", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"email": "pkg@example.com", "plan": "pro", "timezone": "Europe/Paris"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();

    // As a user would: the CLI signs in (keychain + cache in the session's HOME, no
    // CREDITBAR_DATA_DIR), then the app starts from the menu entry's Exec line.
    let mut login = Command::new(root.join("usr/bin/creditbar"))
        .args(["login", "--token-stdin", "--server", &server.base])
        .env_remove("CREDITBAR_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(login.stdin.take().unwrap(), "{token}").unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "creditbar login: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let log = std::fs::File::create(work.join("app.log")).unwrap();
    let _app = Killed(
        Command::new(root.join("usr/bin/creditbar-desktop"))
            .env_remove("CREDITBAR_DATA_DIR")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for("the tray to show 505 cr", Duration::from_secs(60), || {
        Some(tray(&work)).filter(|t| t["label"] == "505 cr")
    });
    server.spend(&token, "pkg-1", 100);
    wait_for("the tray to show 405 cr", Duration::from_secs(30), || {
        Some(tray(&work)).filter(|t| t["label"] == "405 cr")
    });

    let logs = PathBuf::from(std::env::var_os("HOME").unwrap()).join(".local/state/creditbar/logs");
    let read_logs = |prefix: &str| -> String {
        std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    };
    let app_log = read_logs("creditbar-desktop.");
    assert!(
        app_log.contains("tray ready"),
        "no app log in {}: {app_log:?}",
        logs.display()
    );
    assert!(!app_log.contains(&token), "the token reached the log");
}

/// Screenshots of the installed app's windows in the light and the dark theme (GTK_THEME
/// picks WebKitGTK's prefers-color-scheme), written like the other e2e screenshots
/// (`installed-*-light.png`, `installed-*-dark.png`).
#[test]
fn the_installed_app_in_light_and_dark() {
    let (deb, _) = packages();
    let Some(work) = in_session_with(
        "the_installed_app_in_light_and_dark",
        &[
            ("CREDITBAR_DEB", deb.as_os_str()),
            ("CREDITBAR_RPM", deb.as_os_str()),
        ],
    ) else {
        return;
    };
    let root = work.join("root");
    unpack(&root);
    let server = Server::start(&work);
    let app = root.join("usr/bin/creditbar-desktop");
    for (theme, gtk) in [("light", "Adwaita"), ("dark", "Adwaita:dark")] {
        let data = work.join(format!("data-{theme}"));
        let (_driver, wd, token) =
            signed_in_app_at(&work, &server, &app, &data, &[("GTK_THEME", gtk)]);
        server.spend(&token, &format!("theme-{theme}"), 42);
        wd.screenshot(&format!("installed-glance-{theme}.png"));
        let dark: bool = serde_json::from_value(wd.call(
            "POST",
            "/execute/sync",
            Some(json!({"args": [],
            "script": "return matchMedia('(prefers-color-scheme: dark)').matches"})),
        ))
        .unwrap_or(false);
        assert_eq!(
            dark,
            theme == "dark",
            "GTK_THEME={gtk} gave prefers-color-scheme dark={dark}"
        );
        wd.click("[data-testid=open-dashboard]");
        wait_for("the dashboard", Duration::from_secs(20), || {
            Some(()).filter(|_| wd.switch_to(|u| u.contains("dashboard.html")))
        });
        wait_for("the usage rows", Duration::from_secs(20), || {
            wd.find("[data-testid=usage-rows] [role=row]")
        });
        wd.screenshot(&format!("installed-dashboard-{theme}.png"));
        wd.click("[data-testid=open-settings]");
        wait_for("the settings", Duration::from_secs(20), || {
            Some(()).filter(|_| wd.switch_to(|u| u.contains("settings.html")))
        });
        wait_for("the settings form", Duration::from_secs(20), || {
            wd.find("[data-testid=refill-save]")
        });
        wd.screenshot(&format!("installed-settings-{theme}.png"));
        wd.call("DELETE", "", None);
    }
}
