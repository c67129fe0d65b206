//! The desktop end-to-end harness: the built app under Xvfb, a private D-Bus session
//! (gnome-keyring, dbusmock's notification daemon, a StatusNotifierWatcher), driven through
//! tauri-driver + WebKitWebDriver, against the real creditbar-server binary on a loopback port.
//!
//! A test calls `in_session(its name)`: outside the session that re-runs the test inside
//! `xvfb-run dbus-run-session tests/desktop/session.sh` and returns None; inside, it returns
//! the session's work directory, so the app, the driver and the assertions share the session.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

pub const ADMIN: &str = "e2e-admin-token-0123456789abcdef0123";
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
pub const ESCAPE: &str = "\u{E00C}";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where screenshots go. A test run writes them under the target directory
/// (`<target>/tmp/screenshots`), so it leaves the tree clean: they differ from run to run
/// (times, ids) even when nothing changed. `CREDITBAR_UPDATE_SCREENSHOTS=1` writes them to
/// docs/screenshots instead, the README's, to be looked at and committed on purpose.
pub fn screenshot_dir() -> PathBuf {
    match std::env::var("CREDITBAR_UPDATE_SCREENSHOTS").as_deref() {
        Ok("1") => repo().join("docs/screenshots"),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    }
}

/// The server binary next to this test's target directory, built if missing.
pub fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CREDITBAR_SERVER_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("creditbar-server");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "creditbar-server"])
            .current_dir(repo())
            .status()
            .unwrap()
            .success();
        assert!(ok, "building creditbar-server failed");
    }
    bin
}

pub struct Killed(pub Child);
impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct WebDriver {
    pub http: reqwest::blocking::Client,
    pub base: String,
    pub session: String,
}

impl WebDriver {
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or(json!({}))),
        };
        let v: Value = req.send().unwrap().json().unwrap();
        v["value"].clone()
    }

    /// Attaches to the first window whose URL satisfies `pick`; true when one did.
    pub fn switch_to(&self, pick: impl Fn(&str) -> bool) -> bool {
        let handles = self.call("GET", "/window/handles", None);
        for h in handles.as_array().into_iter().flatten() {
            self.call("POST", "/window", Some(json!({"handle": h})));
            if pick(self.call("GET", "/url", None).as_str().unwrap_or("")) {
                return true;
            }
        }
        false
    }

    pub fn find(&self, css: &str) -> Option<String> {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().map(str::to_owned)
    }

    pub fn text(&self, css: &str) -> Option<String> {
        let id = self.find(css)?;
        self.call("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .map(str::to_owned)
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).unwrap_or_else(|| panic!("no {css}"));
        let cleared = self.call("POST", &format!("/element/{id}/clear"), None);
        let typed = self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
        let now = self.call("GET", &format!("/element/{id}/property/value"), None);
        assert_eq!(
            now.as_str(),
            Some(text),
            "typing into {css}: clear={cleared} value={typed}"
        );
    }

    pub fn click(&self, css: &str) {
        let id = self.find(css).unwrap_or_else(|| panic!("no {css}"));
        self.call("POST", &format!("/element/{id}/click"), None);
    }

    /// Presses and releases `key` `times` times, in one WebDriver call (WebDriver key
    /// codes: TAB, ENTER, ESCAPE below).
    pub fn press_n(&self, key: &str, times: usize) {
        let actions: Vec<Value> = (0..times)
            .flat_map(|_| {
                [
                    json!({"type": "keyDown", "value": key}),
                    json!({"type": "keyUp", "value": key}),
                ]
            })
            .collect();
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
        self.call("DELETE", "/actions", None);
    }

    pub fn press(&self, key: &str) {
        self.press_n(key, 1);
    }

    /// The focused element's name (data-testid, id, or tag and text); None for none.
    pub fn focused(&self) -> Option<String> {
        let v = self.call("POST", "/execute/sync", Some(json!({"args": [], "script":
            "const e = document.activeElement; if (!e || e === document.body) return null;
             return e.dataset.testid || e.id || (e.tagName.toLowerCase() + ':' + (e.textContent || '').trim().slice(0, 30));"})));
        serde_json::from_value(v).ok().flatten()
    }

    /// Tabs through the window from the top, `max` presses in one go, recording each
    /// control that takes the focus until the first comes round again: every control
    /// reached, in order. Each must show its focus (`:focus-visible`; under Xvfb with no
    /// window manager a window may never be the active one, and then WebKit matches no
    /// `:focus-visible` at all: that case has nothing to check).
    pub fn tab_walk(&self, max: usize) -> Vec<String> {
        self.call("POST", "/execute/sync", Some(json!({"args": [], "script":
            "window.__walk = [];
             if (!window.__walking) {
               window.__walking = true;
               document.addEventListener('focusin', (ev) => {
                 const e = ev.target;
                 const name = e.dataset.testid || e.id || (e.tagName.toLowerCase() + ':' + (e.textContent || '').trim().slice(0, 30));
                 window.__walk.push([name, e.matches(':focus-visible') || !document.hasFocus()]);
               });
             }
             document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);"})));
        self.press_n(TAB, max);
        let walk: Vec<(String, bool)> = serde_json::from_value(self.call(
            "POST",
            "/execute/sync",
            Some(json!({"args": [], "script": "return window.__walk"})),
        ))
        .unwrap_or_default();
        let mut seen: Vec<String> = Vec::new();
        for (name, visible) in walk {
            if seen.first() == Some(&name) {
                break;
            }
            assert!(visible, "{name} has focus but does not show it");
            seen.push(name);
        }
        seen
    }

    pub fn handles(&self) -> usize {
        self.call("GET", "/window/handles", None)
            .as_array()
            .map_or(0, Vec::len)
    }

    pub fn screenshot(&self, name: &str) {
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

pub struct Server {
    _child: Killed,
    pub base: String,
    pub http: reqwest::blocking::Client,
}

impl Server {
    pub fn start(work: &Path) -> Server {
        Self::start_logging(work, None)
    }

    /// `start`, with the server's log of every request it answered (JSON lines, one
    /// `answered` line per request, its method and path in the span) in `work/server.log`:
    /// an independent witness of what the app sent (`requests`).
    pub fn start_with_request_log(work: &Path) -> Server {
        Self::start_logging(work, Some(work.join("server.log")))
    }

    fn start_logging(work: &Path, log: Option<PathBuf>) -> Server {
        let mut cmd = Command::new(server_binary());
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN,
            "--rate-limit",
            "0",
            "--test-clock",
        ])
        .arg("--db")
        .arg(work.join("server.db"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped());
        if let Some(log) = log {
            cmd.args(["--log-format", "json"])
                .env("RUST_LOG", "warn,creditbar_server::routes=info")
                .stderr(std::fs::File::create(log).unwrap());
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().unwrap().unwrap();
            if let Some(a) = line.strip_prefix("listening on ") {
                break a.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server {
            _child: Killed(child),
            base,
            http: reqwest::blocking::Client::new(),
        }
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> Value {
        self.post_with(path, token, None, body)
    }

    /// POST with an Idempotency-Key (purchases require one).
    pub fn post_once(&self, path: &str, token: &str, key: &str, body: Value) -> Value {
        self.post_with(path, token, Some(key), body)
    }

    fn post_with(&self, path: &str, token: &str, key: Option<&str>, body: Value) -> Value {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let r = req.send().unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap()
    }

    /// How many `method path` requests the server answered, from `work/server.log`
    /// (`start_with_request_log`).
    pub fn requests(work: &Path, method: &str, path: &str) -> usize {
        std::fs::read_to_string(work.join("server.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| {
                l["message"] == "answered"
                    && l["span"]["method"] == method
                    && l["span"]["path"] == path
            })
            .count()
    }

    /// Grants to the account of `token` (admin API): `body` is the grant's JSON.
    pub fn grant(&self, token: &str, body: Value) -> Value {
        let account = self.get("/v1/account", token)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.post(&format!("/v1/admin/accounts/{account}/grants"), ADMIN, body)
    }

    /// Charges `credits` on the standard model (100 µcr per token).
    pub fn spend(&self, token: &str, id: &str, credits: u64) {
        self.post("/v1/usage", token, json!({"id": id, "project": "e2e", "thread": "t", "model": "standard", "kind": "chat",
            "status": "completed", "input_tokens": 0, "cached_input_tokens": 0, "output_tokens": credits * 10_000}));
    }
}

pub fn tray(work: &Path) -> Value {
    let out = Command::new("/usr/bin/python3")
        .arg(repo().join("tests/desktop/sni_watcher.py"))
        .arg("read")
        .arg(work.join("sni.jsonl"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or(json!({"registered": false, "error": String::from_utf8_lossy(&out.stderr)}))
}

/// How many notifications with `summary` the mock notification daemon received.
pub fn notifications(work: &Path, summary: &str) -> usize {
    std::fs::read_to_string(work.join("notifications.log"))
        .unwrap_or_default()
        .matches(summary)
        .count()
}

/// Re-runs test `name` inside a private desktop session and returns None; inside it,
/// returns the session's work directory.
pub fn in_session(name: &str) -> Option<PathBuf> {
    in_session_full(name, &[], |_, _| {})
}

/// `in_session` with extra environment variables for the re-run test.
pub fn in_session_with(name: &str, env: &[(&str, &std::ffi::OsStr)]) -> Option<PathBuf> {
    in_session_full(name, env, |_, _| {})
}

/// `in_session`, with everything the session printed (the app, the driver, the server, the
/// test itself: stdout and stderr) captured; once the session has ended, `after` runs in the
/// outer test process with the session's work directory and that output, before the
/// directory is removed.
pub fn in_session_then(name: &str, after: impl FnOnce(&Path, &[u8])) -> Option<PathBuf> {
    in_session_full(name, &[], after)
}

/// `in_session_then` with extra environment variables for the re-run test.
pub fn in_session_full(
    name: &str,
    env: &[(&str, &std::ffi::OsStr)],
    after: impl FnOnce(&Path, &[u8]),
) -> Option<PathBuf> {
    if let Some(work) = std::env::var_os("CREDITBAR_E2E_WORK") {
        return Some(PathBuf::from(work));
    }
    let work = tempfile::tempdir().unwrap();
    let output = work.path().join("session.out");
    let captured = std::fs::File::create(&output).unwrap();
    let status = Command::new("xvfb-run")
        .args([
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            "dbus-run-session",
            "--",
        ])
        .arg(repo().join("tests/desktop/session.sh"))
        .arg(work.path())
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture"])
        .env("CREDITBAR_E2E_WORK", work.path())
        .envs(env.iter().copied())
        .stdout(captured.try_clone().unwrap())
        .stderr(captured)
        .status()
        .expect("xvfb-run and dbus-run-session are needed (Debian: xvfb, dbus)");
    let printed = std::fs::read(&output).unwrap_or_default();
    // What the session printed, as a test that ran in the open would have shown it.
    print!("{}", String::from_utf8_lossy(&printed));
    if !status.success() {
        let log = std::fs::read_to_string(work.path().join("driver.log")).unwrap_or_default();
        panic!(
            "desktop e2e failed; app/driver log:\n{}",
            &log[log.len().saturating_sub(6000)..]
        );
    }
    after(work.path(), &printed);
    None
}

/// A new account on the pro plan (505 credits at first); returns its token.
pub fn new_account(server: &Server) -> String {
    new_account_on(server, "pro")
}

/// A new account on `plan` (catalogs name their plans differently).
pub fn new_account_on(server: &Server, plan: &str) -> String {
    let created: Value = server
        .http
        .post(format!("{}/v1/admin/accounts", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"email": "e2e@example.com", "plan": plan, "timezone": "Europe/Paris"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    created["token"].as_str().unwrap().to_owned()
}

/// The app this test binary was built with (target/<profile>/creditbar-desktop).
pub fn built_app() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("creditbar-desktop")
}

/// Starts tauri-driver and the app (with `env` added to the app's environment) and attaches
/// to the sign-in window once its form is there.
pub fn launch_app(work: &Path, env: &[(&str, &str)]) -> (Killed, WebDriver) {
    launch_app_at(work, &built_app(), &work.join("data"), env)
}

/// `launch_app` with the app binary `app` (the packaged one) and its data directory.
pub fn launch_app_at(
    work: &Path,
    app: &Path,
    data: &Path,
    env: &[(&str, &str)],
) -> (Killed, WebDriver) {
    let (port, native) = (free_port(), free_port());
    let log = std::fs::File::create(work.join("driver.log")).unwrap();
    let driver = Command::new("tauri-driver")
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("CREDITBAR_DATA_DIR", data)
        .env("RUST_LOG", "info")
        // WebKitWebDriver's screenshots never return without accelerated compositing
        // (which the app turns off by default): the screenshots need it on.
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "0")
        .envs(env.iter().copied())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("tauri-driver (cargo install tauri-driver --version ^2 --locked)");
    let driver = Killed(driver);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_for("tauri-driver", Duration::from_secs(20), || {
        http.get(format!("{base}/status")).send().ok()
    });
    let created: Value = http
        .post(format!("{base}/session"))
        .json(&json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": app}}}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let session = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {created}"))
        .to_owned();
    let wd = WebDriver {
        http,
        base,
        session,
    };
    // The sign-in window is created after start-up: attach to it once it exists.
    wait_for("the sign-in form", Duration::from_secs(30), || {
        wd.switch_to(|_| true);
        wd.find("#token")
    });
    (driver, wd)
}

/// Starts tauri-driver and the app, and signs in through the sign-in window.
pub fn signed_in_app(work: &Path, server: &Server) -> (Killed, WebDriver, String) {
    signed_in_app_at(work, server, &built_app(), &work.join("data"), &[])
}

/// `signed_in_app` with the app binary `app` (the packaged one), its data directory and
/// extra environment for it (GTK_THEME for the dark theme).
pub fn signed_in_app_at(
    work: &Path,
    server: &Server,
    app: &Path,
    data: &Path,
    env: &[(&str, &str)],
) -> (Killed, WebDriver, String) {
    let token = new_account(server);
    let (driver, wd) = launch_app_at(work, app, data, env);
    sign_in_as(&wd, server, &token, "505 cr");
    (driver, wd, token)
}

/// Signs the app's sign-in window in with `token` and waits for the balance `title`.
pub fn sign_in_as(wd: &WebDriver, server: &Server, token: &str, title: &str) {
    wd.type_into("#server", &server.base);
    wd.type_into("#token", token);
    wd.screenshot("desktop-sign-in.png");
    wd.click("[data-testid=submit]");
    wait_for("the balance after sign-in", Duration::from_secs(30), || {
        wd.text("[data-testid=title]").filter(|t| t == title)
    });
}

impl Server {
    pub fn get(&self, path: &str, token: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn available(&self, token: &str) -> i64 {
        self.get("/v1/balance", token)["available"]
            .as_i64()
            .unwrap()
    }
}

pub const CR: i64 = 1_000_000;

/// How many notifications titled exactly `summary` the mock notification daemon received.
/// `notifications` counts every mention, and a body may repeat its title ("Auto-refill
/// failed (card_declined) and is now off…"); the daemon's log quotes each string argument,
/// so a quoted match is the summary itself (or a body that is exactly the same sentence).
pub fn notifications_titled(work: &Path, summary: &str) -> usize {
    notifications(work, &format!("\"{summary}\""))
}
