//! Black-box harness for the `creditbar` CLI: the real `creditbar-server` binary on an
//! ephemeral loopback port with a temporary database and a test clock, and a private D-Bus
//! session per test with gnome-keyring (the Secret Service) and, where a test needs it,
//! python-dbusmock standing in for the notification daemon. Every process a test starts is
//! ended when its guard is dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ADMIN: &str = "client-tests-admin-token-0123456789abcdef";
/// Where the server's test clock starts: 18:00 UTC, six hours before a daily reset.
pub const START: &str = "2026-11-21T18:00:00Z";
pub const CREDIT: i64 = 1_000_000;
/// How long a test waits for something the stream should bring at once. Far below the 30 s
/// of the polling fallback, so a pass proves the live path.
pub const LIVE: Duration = Duration::from_secs(10);

/// Polls `check` every 50 ms until it gives a value; panics naming `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------------------ server

/// The server binary: `CREDITBAR_SERVER_BIN`, else the one cargo builds next to this test's
/// target directory, built once per test process if it is missing or older than the server
/// and ledger sources (`cargo test -p creditbar-client` alone does not build it).
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CREDITBAR_SERVER_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> → target/<profile>/creditbar-server
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_owned();
    let bin = profile_dir.join(format!("creditbar-server{}", std::env::consts::EXE_SUFFIX));
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let sources =
            newest_mtime(&crates.join("server")).max(newest_mtime(&crates.join("ledger")));
        if built.is_some_and(|b| sources.is_none_or(|s| s <= b)) {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "creditbar-server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let ok = cmd.status().is_ok_and(|s| s.success());
        if !ok && built.is_some() {
            eprintln!(
                "warning: cargo build -p creditbar-server failed; testing against the older binary"
            );
        }
    });
    assert!(
        bin.exists(),
        "no server binary at {} and `cargo build -p creditbar-server` failed; set CREDITBAR_SERVER_BIN",
        bin.display()
    );
    bin
}

/// The newest modification time of the sources (`src/`, `Cargo.toml`) of a crate.
fn newest_mtime(krate: &Path) -> Option<std::time::SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(Some(t));
            }
        }
    }
    let mut newest = std::fs::metadata(krate.join("Cargo.toml"))
        .and_then(|m| m.modified())
        .ok();
    walk(&krate.join("src"), &mut newest);
    newest
}

pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub port: u16,
    dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

/// An account made through the admin API.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub token: String,
}

impl Server {
    /// Starts on an ephemeral port with a fresh database and the test clock at `START`.
    pub fn start() -> Server {
        Self::start_on(None)
    }

    /// `start` under the catalog `catalogs/NAME.toml` (passed as `--catalog`, so tests that
    /// run at the same time never see each other's choice through the environment).
    pub fn with_catalog(name: &str) -> Server {
        Self::start_on(Some(name))
    }

    fn start_on(catalog: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        if let Some(name) = catalog {
            let file = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../catalogs")
                .join(format!("{name}.toml"));
            std::fs::copy(file, dir.path().join("catalog.toml")).unwrap();
        }
        let (child, base) = spawn_server(dir.path(), "127.0.0.1:0");
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Server {
            child: Some(child),
            base,
            port,
            dir,
            http,
        }
    }

    /// Pauses the server (SIGSTOP): it keeps its port and accepts connections but answers
    /// nothing, like a server stuck mid-request, until `resume`.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Kills the server (SIGKILL): clients see it vanish mid-stream.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// Starts it again on the same database and the same port, as after a crash. The test
    /// clock starts at `START` again: restarts are about the ledger, not about time.
    pub fn restart(&mut self) {
        self.stop();
        let listen = format!("127.0.0.1:{}", self.port);
        let (child, base) = spawn_server(self.dir.path(), &listen);
        assert_eq!(base, self.base, "restarted on another address");
        self.child = Some(child);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn get(&self, path: &str, token: &str) -> Value {
        let (s, v) = self.call("GET", path, token, None);
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// A new account on `plan` in UTC.
    pub fn account(&self, plan: &str) -> Account {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let email = format!(
            "user{}-{}@example.com",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let (s, v) = self.call(
            "POST",
            "/v1/admin/accounts",
            ADMIN,
            Some(json!({"email": email, "plan": plan, "timezone": "UTC"})),
        );
        assert_eq!(s, 201, "create account: {v}");
        Account {
            id: v["account"]["id"].as_str().unwrap().to_owned(),
            token: v["token"].as_str().unwrap().to_owned(),
        }
    }

    /// Usage that costs exactly `credits` (standard model, 100 µcr per output token).
    pub fn use_credits(&self, account: &Account, id: &str, credits: i64) -> Value {
        let body = json!({"id": id, "project": "proj", "thread": "thread-1", "model": "standard",
            "kind": "chat", "status": "completed", "input_tokens": 0, "cached_input_tokens": 0,
            "output_tokens": credits * 10_000});
        let (s, v) = self.call("POST", "/v1/usage", &account.token, Some(body));
        assert_eq!(s, 201, "usage {id}: {v}");
        assert_eq!(v["charged"], json!(credits * CREDIT), "usage {id}: {v}");
        v
    }

    /// A bonus grant by the admin.
    pub fn grant(&self, account: &Account, id: &str, credits: i64) -> Value {
        let (s, v) = self.call(
            "POST",
            &format!("/v1/admin/accounts/{}/grants", account.id),
            ADMIN,
            Some(json!({"id": id, "amount": credits * CREDIT, "reason": "promo", "note": id})),
        );
        assert_eq!(s, 201, "grant {id}: {v}");
        v
    }

    /// Moves the test clock; everything due has happened when this returns.
    pub fn advance(&self, seconds: i64) -> Value {
        let (s, v) = self.call(
            "POST",
            "/v1/admin/clock",
            ADMIN,
            Some(json!({"advance_seconds": seconds})),
        );
        assert_eq!(s, 200, "advance clock: {v}");
        v
    }

    pub fn available(&self, account: &Account) -> i64 {
        self.get("/v1/balance", &account.token)["available"]
            .as_i64()
            .unwrap()
    }

    fn list(&self, path: &str, account: &Account) -> Vec<Value> {
        let mut out = Vec::new();
        let mut url = format!("{path}?limit=1000");
        loop {
            let page = self.get(&url, &account.token);
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(n) => url = format!("{path}?limit=1000&after={n}"),
                None => return out,
            }
        }
    }

    /// The seqs of every ledger entry of the account, oldest first.
    pub fn ledger_seqs(&self, account: &Account) -> Vec<u64> {
        self.list("/v1/ledger", account)
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    }

    pub fn purchases(&self, account: &Account) -> Vec<Value> {
        self.list("/v1/purchases", account)
    }

    pub fn reviews(&self, account: &Account) -> Vec<Value> {
        self.list("/v1/usage-reviews", account)
    }

    pub fn auto_refill(&self, account: &Account) -> Value {
        self.get("/v1/auto-refill", &account.token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_server(dir: &Path, listen: &str) -> (Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut cmd = Command::new(server_bin());
    let catalog = dir.join("catalog.toml");
    if catalog.exists() {
        cmd.arg("--catalog").arg(catalog);
    }
    let mut child = cmd
        .arg("--db")
        .arg(dir.join("server.db"))
        .args([
            "--listen",
            listen,
            "--admin-token",
            ADMIN,
            "--rate-limit",
            "0",
        ])
        .arg("--test-clock")
        .env("CREDITBAR_TEST_CLOCK_START", START)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start creditbar-server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    break addr.trim().to_owned();
                }
            }
            _ => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                panic!("creditbar-server exited before listening on {listen}:\n{log}");
            }
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

// ----------------------------------------------------------------------------- session

/// What one `creditbar` command did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "command failed: {self:?}");
        self
    }
}

/// One notification as the notification daemon received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub app: String,
    pub summary: String,
    pub body: String,
}

/// A private desktop session: its own D-Bus session bus with gnome-keyring unlocked (and,
/// when asked, a mock notification daemon), its own HOME and data directories. `creditbar`
/// commands run against it; everything they print is kept for the secret checks.
pub struct Session {
    child: Option<Child>,
    control: Option<ChildStdin>,
    pub dir: tempfile::TempDir,
    pub bus: String,
    pub data_dir: PathBuf,
    mock_log: Option<PathBuf>,
    outputs: Mutex<Vec<String>>,
}

const SESSION_SCRIPT: &str = r#"
set -eu
cd "$SESSION_DIR"
gnome-keyring-daemon --foreground --unlock --components=secrets <<< "session-password" >keyring.log 2>&1 &
if [ -n "${MOCK_LOG:-}" ]; then
    /usr/bin/python3 -m dbusmock --template notification_daemon -l "$MOCK_LOG" </dev/null >dbusmock.log 2>&1 &
    gdbus wait --session --timeout 20 org.freedesktop.Notifications
fi
gdbus wait --session --timeout 20 org.freedesktop.secrets
printf '%s' "$DBUS_SESSION_BUS_ADDRESS" > bus.tmp
mv bus.tmp bus
# The test holds our stdin open; when it closes (test over, or test process gone), end.
read -r _ || true
kill $(jobs -p) 2>/dev/null || true
wait
"#;

impl Session {
    /// A session with the keychain only.
    pub fn start() -> Session {
        Self::start_with(false)
    }

    /// A session with the keychain and a notification daemon that logs every call.
    pub fn with_notifications() -> Session {
        Self::start_with(true)
    }

    /// No session bus at all: no keychain can be reached.
    pub fn without_keychain() -> Session {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Self::bare(dir, None);
        s.bus = format!("unix:path={}", s.dir.path().join("no-bus").display());
        s
    }

    fn bare(dir: tempfile::TempDir, mock_log: Option<PathBuf>) -> Session {
        for d in ["home", "data", "config", "cache", "run"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let data_dir = dir.path().join("creditbar");
        Session {
            child: None,
            control: None,
            bus: String::new(),
            data_dir,
            mock_log,
            outputs: Mutex::new(Vec::new()),
            dir,
        }
    }

    fn start_with(notifications: bool) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let mock_log = notifications.then(|| dir.path().join("notifications.log"));
        let mut s = Self::bare(dir, mock_log);
        let script = s.dir.path().join("session.sh");
        std::fs::write(&script, SESSION_SCRIPT).unwrap();
        let log = std::fs::File::create(s.dir.path().join("session.log")).unwrap();
        let mut cmd = Command::new("dbus-run-session");
        cmd.arg("--").arg("bash").arg(&script);
        s.env(&mut cmd);
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("SESSION_DIR", s.dir.path())
            .env(
                "MOCK_LOG",
                s.mock_log.as_deref().unwrap_or(Path::new("")).as_os_str(),
            )
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group, so the whole session can be ended at once.
            .process_group(0);
        let mut child = cmd.spawn().expect("start dbus-run-session");
        s.control = child.stdin.take();
        s.child = Some(child);
        let bus_file = s.dir.path().join("bus");
        s.bus = wait_until(
            "the D-Bus session with gnome-keyring",
            Duration::from_secs(30),
            || {
                if let Some(status) = s.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!(
                        "the test session ended early ({status}):\n{}",
                        s.log("session.log")
                    );
                }
                std::fs::read_to_string(&bus_file).ok()
            },
        );
        s
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The environment of everything that runs "inside" the session.
    fn env(&self, cmd: &mut Command) {
        let d = self.dir.path();
        cmd.env("HOME", d.join("home"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_CACHE_HOME", d.join("cache"))
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .env("CREDITBAR_DATA_DIR", &self.data_dir)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.env(&mut cmd);
        cmd
    }

    /// Runs `creditbar ARGS` with `stdin` as its input; waits for it (at most a minute).
    pub fn creditbar_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.creditbar_env(args, stdin, &[])
    }

    /// `creditbar_stdin` with extra environment variables (an HTTP proxy, say).
    pub fn creditbar_env(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_creditbar"));
        cmd.envs(env.iter().copied());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run creditbar");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        let out = wait_output(
            child,
            Duration::from_secs(60),
            &format!("creditbar {args:?}"),
        );
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut outputs = self.outputs.lock().unwrap();
        outputs.push(run.stdout.clone());
        outputs.push(run.stderr.clone());
        run
    }

    /// Runs `creditbar ARGS` with stdout a pipe whose reader is already gone, as in
    /// `creditbar status --json | head -0`.
    pub fn creditbar_into_closed_pipe(&self, args: &[&str]) -> Run {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = self
            .command(env!("CARGO_BIN_EXE_creditbar"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run creditbar");
        Run {
            code: out.status.code(),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn creditbar(&self, args: &[&str]) -> Run {
        self.creditbar_stdin(args, "")
    }

    /// Signs in to `server` as `account` (token on stdin) and expects success.
    pub fn login(&self, server: &Server, account: &Account) -> Run {
        self.creditbar_stdin(
            &["login", "--server", &server.base, "--token-stdin"],
            &format!("{}\n", account.token),
        )
        .ok()
    }

    /// `creditbar card add` with the number, expiry 12/2030 and a CVC on stdin.
    pub fn add_card(&self, number: &str) -> Run {
        self.creditbar_stdin(&["card", "add"], &format!("{number}\n12\n2030\n123\n"))
    }

    /// Starts `creditbar watch` in the background.
    pub fn watch(&self) -> Watch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let out = self.dir.path().join(format!("watch-{n}.out"));
        let err = self.dir.path().join(format!("watch-{n}.err"));
        let child = self
            .command(env!("CARGO_BIN_EXE_creditbar"))
            .arg("watch")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start creditbar watch");
        Watch {
            child: Some(child),
            out,
            err,
        }
    }

    /// Every output of every command so far, watch logs included.
    pub fn all_output(&self) -> String {
        let mut all = self.outputs.lock().unwrap().join("\n");
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("watch-") {
                all.push('\n');
                all.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
        all
    }

    /// A creditbar item from the keychain, as `secret-tool` (any Secret Service client)
    /// sees it.
    pub fn secret(&self, username: &str) -> Option<String> {
        let out = self
            .command("secret-tool")
            .args(["lookup", "service", "creditbar", "username", username])
            .stdin(Stdio::null())
            .output()
            .expect("run secret-tool");
        let value = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !value.is_empty()).then_some(value)
    }

    /// How many keychain items creditbar has under this name (one, updated in place).
    pub fn secret_items(&self, username: &str) -> usize {
        let out = self
            .command("secret-tool")
            .args([
                "search",
                "--all",
                "service",
                "creditbar",
                "username",
                username,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run secret-tool");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("[/"))
            .count()
    }

    /// The cache files (cache.db and its -wal/-shm), raw.
    pub fn cache_bytes(&self) -> Vec<(String, Vec<u8>)> {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    }

    pub fn cache_path(&self) -> PathBuf {
        self.data_dir.join("cache.db")
    }

    /// A read-only connection to the cache, for looking at what the client kept.
    pub fn cache_db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open_with_flags(
            self.cache_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    /// A writable connection to the cache, for staging what a crash leaves behind.
    pub fn cache_db_rw(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.cache_path()).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    pub fn cache_ledger_seqs(&self) -> Vec<u64> {
        let c = self.cache_db();
        let mut stmt = c.prepare("SELECT seq FROM ledger ORDER BY seq").unwrap();
        let seqs = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|s| s.unwrap() as u64)
            .collect();
        seqs
    }

    /// `creditbar status --offline --json`: what the cache says, without the network.
    pub fn offline_status(&self) -> Value {
        let run = self.creditbar(&["status", "--offline", "--json"]);
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {run:?}"))
    }

    /// The available balance the cache shows, in micro-credits.
    pub fn cached_available(&self) -> Option<i64> {
        self.offline_status()["balance"]["available"].as_i64()
    }

    /// Waits until the cache shows `credits` available.
    #[track_caller]
    pub fn wait_cached_credits(&self, credits: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.cached_available();
            if seen == Some(credits * CREDIT) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the cache still shows {seen:?} µcr after {timeout:?}, not {credits} credits"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every Notify call the notification daemon received so far.
    pub fn notifications(&self) -> Vec<Note> {
        let path = self
            .mock_log
            .as_ref()
            .expect("a session with notifications");
        parse_notify_log(&std::fs::read_to_string(path).unwrap_or_default())
    }

    /// Waits until a notification with this summary has arrived; returns all so far.
    pub fn wait_notification(&self, summary: &str, timeout: Duration) -> Vec<Note> {
        wait_until(&format!("a notification \"{summary}\""), timeout, || {
            let all = self.notifications();
            all.iter().any(|n| n.summary == summary).then_some(all)
        })
    }

    /// Notifications with this summary.
    pub fn notes(&self, summary: &str) -> Vec<Note> {
        self.notifications()
            .into_iter()
            .filter(|n| n.summary == summary)
            .collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Closing its stdin ends the session script, which ends its jobs; then the bus goes.
        drop(self.control.take());
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            child.wait().ok();
        }
    }
}

fn wait_output(mut child: Child, timeout: Duration, what: &str) -> std::process::Output {
    // Drain the pipes on threads so a chatty child never blocks.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).ok();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).ok();
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Reads dbusmock's call log: `<time> Notify "app" id "icon" "summary" "body" [actions]
/// {hints} timeout`, strings unescaped (a body may span lines).
pub fn parse_notify_log(log: &str) -> Vec<Note> {
    let mut notes = Vec::new();
    let mut rest = log;
    while let Some(start) = rest.find(" Notify \"") {
        let record = &rest[start + " Notify \"".len()..];
        // The record ends where the next timestamped line begins.
        let end = next_record(record).unwrap_or(record.len());
        let this = &record[..end];
        rest = &record[end..];
        let Some((app, after_app)) = this.split_once("\" ") else {
            continue;
        };
        // `id "icon" "summary" "body" [actions] {hints} timeout`
        let Some(icon_start) = after_app.find('"') else {
            continue;
        };
        let after_icon_open = &after_app[icon_start + 1..];
        let Some(icon_end) = after_icon_open.find("\" \"") else {
            continue;
        };
        let after_icon = &after_icon_open[icon_end + 3..];
        let Some((summary, after_summary)) = after_icon.split_once("\" \"") else {
            continue;
        };
        let Some(body_end) = after_summary.rfind("\" [") else {
            continue;
        };
        notes.push(Note {
            app: app.to_owned(),
            summary: summary.to_owned(),
            body: after_summary[..body_end].to_owned(),
        });
    }
    notes
}

fn next_record(s: &str) -> Option<usize> {
    let mut offset = 0;
    for line in s.split_inclusive('\n') {
        offset += line.len();
        let rest = &s[offset..];
        let stamp: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        if !stamp.is_empty() && stamp.contains('.') && rest[stamp.len()..].starts_with(' ') {
            return Some(offset);
        }
    }
    None
}

/// A running `creditbar watch`; killed when dropped.
pub struct Watch {
    child: Option<Child>,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Watch {
    /// Kills it (SIGKILL: no chance to tidy up, as after a crash or a power cut).
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// A line of its /proc status (`VmHWM`, `VmRSS`) in KiB: how much memory it held.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Panics with its stderr if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!(
                "creditbar watch exited ({status}):\n{}",
                std::fs::read_to_string(&self.err).unwrap_or_default()
            );
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}
