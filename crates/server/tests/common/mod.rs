//! Black-box harness: starts the real `creditbar-server` binary on an ephemeral loopback
//! port with a temporary SQLite file, and speaks real HTTP to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

pub mod stream;

pub const ADMIN: &str = "test-admin-token-0123456789abcdef";
/// The instant the test clock starts at unless a test says otherwise.
pub const START: &str = "2026-11-21T18:00:00Z";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub http: reqwest::blocking::Client,
}

pub struct Options {
    pub test_clock: Option<String>,
    pub rate_limit: u32,
    pub extra: Vec<String>,
    /// A command the server runs under, e.g. `prlimit --nofile=256:256 --` (it must exec
    /// the server, so the child's pid stays the server's).
    pub wrapper: Vec<String>,
    /// Environment variables for the server.
    pub env: Vec<(String, String)>,
    /// Another server process on the same ledger (PostgreSQL): its files' directory, whose
    /// `pg-database` and test gateway this server shares.
    pub share_with: Option<PathBuf>,
    /// A PostgreSQL ledger of the test's own (e.g. a primary and standby it runs), with the
    /// test gateway's files in `gateway_dir`.
    pub ledger_url: Option<String>,
    pub gateway_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            test_clock: Some(START.into()),
            rate_limit: 0,
            extra: vec![],
            wrapper: vec![],
            env: vec![],
            share_with: None,
            ledger_url: None,
            gateway_dir: None,
        }
    }
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, opts)
    }

    /// Starts on an existing directory (the database is `dir/server.db`): for restarts.
    pub fn start_in(dir: tempfile::TempDir, opts: Options) -> Server {
        let db = dir.path().join("server.db");
        // CREDITBAR_TEST_SERVER_BIN runs the suite against another build (e.g. an older one,
        // to see a test fail without the change it tests).
        let bin = std::env::var("CREDITBAR_TEST_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_creditbar-server").to_owned());
        let mut cmd = match opts.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        if let Some(other) = &opts.share_with {
            std::fs::copy(other.join("pg-database"), dir.path().join("pg-database")).unwrap();
        }
        let gateway_dir = opts
            .gateway_dir
            .as_deref()
            .or(opts.share_with.as_deref())
            .unwrap_or(dir.path());
        match opts.ledger_url.clone().or_else(|| ledger_url(dir.path())) {
            Some(url) => cmd
                .arg("--db")
                .arg(url)
                .arg("--gateway-db")
                .arg(gateway_dir.join("server.db-gateway")),
            None => cmd.arg("--db").arg(&db),
        };
        cmd.arg("--listen").arg("127.0.0.1:0");
        cmd.arg("--admin-token").arg(ADMIN);
        cmd.arg("--rate-limit").arg(opts.rate_limit.to_string());
        if let Some(t) = &opts.test_clock {
            cmd.arg("--test-clock").env("CREDITBAR_TEST_CLOCK_START", t);
        }
        cmd.args(&opts.extra);
        cmd.env("RUST_LOG", "warn");
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start creditbar-server");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        Server {
            child,
            base,
            dir,
            http,
        }
    }

    /// A second server process on this one's ledger and payment gateway (PostgreSQL).
    pub fn sibling(&self) -> Server {
        self.sibling_with(Options::default())
    }

    /// Another process on this server's ledger, with options of its own.
    pub fn sibling_with(&self, opts: Options) -> Server {
        Server::start_with(Options {
            share_with: Some(self.dir.path().to_path_buf()),
            ..opts
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("server.db")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Kills the process (SIGKILL) and hands back its directory for a restart.
    pub fn kill(mut self) -> tempfile::TempDir {
        self.child.kill().ok();
        self.child.wait().ok();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// Sends SIGTERM and waits (at most 30 s) for the process to exit; hands back how it
    /// exited, how long that took, and its directory for a restart.
    pub fn terminate(
        mut self,
    ) -> (
        std::process::ExitStatus,
        std::time::Duration,
        tempfile::TempDir,
    ) {
        let sent = std::time::Instant::now();
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -TERM failed");
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                sent.elapsed() < std::time::Duration::from_secs(30),
                "the server did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let took = sent.elapsed();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (status, took, dir)
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub fn raw(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
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
        let (s, v) = self.call("GET", path, Some(token), None);
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    pub fn admin(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(ADMIN), Some(body))
    }

    /// Creates an account; returns (account id, token).
    pub fn account(&self, plan: &str, timezone: &str) -> (String, String) {
        let n: u64 = rand_suffix();
        let (s, v) = self.admin(
            "POST",
            "/v1/admin/accounts",
            json!({"email": format!("user{n}@example.com"), "plan": plan, "timezone": timezone}),
        );
        assert_eq!(s, 201, "create account: {v}");
        (
            v["account"]["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    pub fn available(&self, token: &str) -> i64 {
        self.get("/v1/balance", token)["available"]
            .as_i64()
            .unwrap()
    }

    pub fn advance(&self, seconds: i64) -> Value {
        let (s, v) = self.admin(
            "POST",
            "/v1/admin/clock",
            json!({"advance_seconds": seconds}),
        );
        assert_eq!(s, 200, "advance: {v}");
        v
    }

    /// The test clock's now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        time_of(&self.advance(0)["now"])
    }

    /// Every ledger entry of the account, following cursors.
    pub fn ledger(&self, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/ledger?limit=1000&after={a}"),
                None => "/v1/ledger?limit=1000".into(),
            };
            let page = self.get(&path, token);
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => break,
            }
        }
        out
    }

    /// Asserts the invariant of the product: the balance is the sum of the ledger.
    pub fn assert_balance_is_ledger_sum(&self, token: &str) {
        let entries = self.ledger(token);
        let sum: i64 = entries.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
        let b = self.get("/v1/balance", token);
        let buckets: i64 = ["daily", "subscription", "bonus", "purchased"]
            .iter()
            .map(|k| b["buckets"][k]["available"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, buckets, "ledger sum vs bucket total");
        assert_eq!(
            b["available"].as_i64().unwrap(),
            (buckets - b["held"].as_i64().unwrap()).max(0)
        );
        if let Some(last) = entries.last() {
            assert_eq!(last["balance_after"].as_i64().unwrap(), sum);
        }
        assert!(sum >= 0);
    }

    pub fn check_db(&self) -> (bool, String) {
        check_db(&self.db_path())
    }

    /// The payment processor's own record (the test gateway's database), read by this
    /// process: the independent witness of what was charged.
    pub fn gateway(&self) -> Gateway {
        Gateway::of(&self.db_path())
    }

    /// kill -9 of the process, leaving this handle to be restarted.
    pub fn kill_now(&self) {
        Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Kills (if still running) and starts again on the same database.
    pub fn restart(self) -> Server {
        let dir = self.kill();
        Server::start_in(dir, Options::default())
    }

    /// A request whose answer does not matter (load while the server may be killed).
    pub fn call_quietly(&self, method: &str, path: &str, token: &str, body: Value) -> Option<u16> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(m, self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .ok()?;
        Some(resp.status().as_u16())
    }

    /// Waits for the process to end by itself (a fault point killed it) and hands back
    /// its directory for a restart.
    pub fn wait_dead(mut self) -> tempfile::TempDir {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not die"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

/// One record of the test gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayCharge {
    pub key: String,
    pub customer: String,
    pub kind: String,
    pub cents: i64,
    pub outcome: String,
}

/// The test gateway's database, opened by the test: what the processor did, and the mode
/// it runs in (`normal`, `timeout`, `down`, plus a delay).
pub struct Gateway {
    path: PathBuf,
}

impl Gateway {
    pub fn of(db: &Path) -> Gateway {
        let mut name = db.file_name().unwrap().to_os_string();
        name.push("-gateway");
        Gateway {
            path: db.with_file_name(name),
        }
    }

    fn conn(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }

    pub fn set_mode(&self, mode: &str, delay_ms: u64) {
        self.conn()
            .execute(
                "UPDATE gateway_settings SET mode = ?1, delay_ms = ?2",
                rusqlite::params![mode, delay_ms as i64],
            )
            .unwrap();
    }

    pub fn records(&self) -> Vec<GatewayCharge> {
        let c = self.conn();
        let mut stmt = c
            .prepare(
                "SELECT key, customer, kind, cents, outcome FROM gateway_charges ORDER BY rowid",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok(GatewayCharge {
                key: r.get(0)?,
                customer: r.get(1)?,
                kind: r.get(2)?,
                cents: r.get(3)?,
                outcome: r.get(4)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// Keys of the succeeded charges (not refunds), sorted.
    pub fn charged_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .records()
            .into_iter()
            .filter(|r| r.kind == "charge" && r.outcome == "succeeded")
            .map(|r| r.key)
            .collect();
        keys.sort();
        keys
    }
}

/// The ledger's side, read from its database by this process: (id, source, status,
/// price_cents) of every charge intent.
pub fn ledger_purchases(db: &Path) -> Vec<(String, String, String, i64)> {
    let sql =
        "SELECT id, source, status, price_cents FROM purchases WHERE kind = 'charge' ORDER BY n";
    if let Some(url) = existing_ledger_url(db) {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        return c
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
    }
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let mut stmt = c
        .prepare("SELECT id, source, status, price_cents FROM purchases WHERE kind = 'charge' ORDER BY n")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Polls `done` every 50 ms until it holds; fails after `seconds`.
pub fn within(seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {seconds} s: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The socket directory of the PostgreSQL cluster the suite runs on (`CREDITBAR_TEST_PG`,
/// set by scripts/test, which starts a throwaway cluster), or None: SQLite.
pub fn pg_socket() -> Option<String> {
    std::env::var("CREDITBAR_TEST_PG")
        .ok()
        .filter(|s| !s.is_empty())
}

/// On PostgreSQL, the ledger URL of the server whose files are in `dir`: a database of its
/// own in the suite's cluster, created on first use and named in `dir/pg-database`, so a
/// restart on the same directory finds the same ledger.
pub fn ledger_url(dir: &Path) -> Option<String> {
    let sock = pg_socket()?;
    let url = |name: &str| format!("postgresql:///{name}?host={sock}&user=postgres");
    let named = dir.join("pg-database");
    if let Ok(name) = std::fs::read_to_string(&named) {
        return Some(url(name.trim()));
    }
    let name = format!("t_{}_{}", std::process::id(), rand_suffix());
    let mut admin = postgres::Client::connect(&url("postgres"), postgres::NoTls)
        .expect("connect to the test cluster (CREDITBAR_TEST_PG)");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    std::fs::write(&named, &name).unwrap();
    Some(url(&name))
}

/// The PostgreSQL ledger of the server whose `server.db` would be `db`, if it has one.
fn existing_ledger_url(db: &Path) -> Option<String> {
    db.parent()
        .filter(|d| d.join("pg-database").exists())
        .and_then(ledger_url)
}

/// Whether this run is on PostgreSQL; a test of something only SQLite has (its files, its
/// locks, its backup) says so and passes there.
pub fn sqlite_only(what: &str) -> bool {
    if pg_socket().is_some() {
        eprintln!("SQLite only, not run on PostgreSQL: {what}");
        return true;
    }
    false
}

/// Runs `creditbar-server --check` on a PostgreSQL ledger with its test gateway's file.
pub fn check_ledger(url: &str, gateway_db: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_creditbar-server"))
        .arg("--db")
        .arg(url)
        .arg("--gateway-db")
        .arg(gateway_db)
        .arg("--check")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs `creditbar-server --check` on a database (a SQLite file, or the PostgreSQL ledger of
/// the server whose files are beside it).
pub fn check_db(db: &Path) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_creditbar-server"));
    match existing_ledger_url(db) {
        Some(url) => cmd
            .arg("--db")
            .arg(url)
            .arg("--gateway-db")
            .arg(db.with_file_name("server.db-gateway")),
        None => cmd.arg("--db").arg(db),
    };
    let out = cmd.arg("--check").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

pub fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    t ^ N
        .fetch_add(1, Ordering::SeqCst)
        .wrapping_mul(0x9E3779B97F4A7C15)
}

/// A usage body: `tokens` premium output tokens (300 µcr each).
pub fn usage(id: &str, model: &str, input: u64, cached: u64, output: u64) -> Value {
    json!({"id": id, "project": "proj", "thread": "thread-1", "model": model, "kind": "chat", "status": "completed",
           "input_tokens": input, "cached_input_tokens": cached, "output_tokens": output})
}

pub const CREDIT: i64 = 1_000_000;

// ---------------------------------------------------------------- helpers for the suite

/// A whole HTTP answer: status, headers and the body exactly as sent.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::String(self.text.clone()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

impl Server {
    /// Sends any request with extra headers and an optional raw body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().unwrap();
        Answer {
            status,
            headers,
            text,
        }
    }

    /// The raw body of a GET that must succeed.
    pub fn text(&self, path: &str, token: &str) -> String {
        let a = self.send("GET", path, Some(token), &[], None);
        assert_eq!(a.status, 200, "GET {path}: {}", a.text);
        a.text
    }

    /// Every notice of the account, following cursors.
    pub fn notices(&self, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = "/v1/notices?limit=1000".to_owned();
        loop {
            let page = self.get(&path, token);
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(n) => path = format!("/v1/notices?limit=1000&after={n}"),
                None => break,
            }
        }
        out
    }

    /// Moves the test clock to `now` (RFC 3339).
    pub fn set_clock(&self, now: &str) -> Value {
        let (s, v) = self.admin("POST", "/v1/admin/clock", json!({ "now": now }));
        assert_eq!(s, 200, "set clock to {now}: {v}");
        v
    }

    /// A bonus grant by the admin; returns the created grant.
    pub fn grant(&self, account: &str, id: &str, amount: i64) -> Value {
        let body = json!({"id": id, "amount": amount, "reason": "promo"});
        let (s, v) = self.admin(
            "POST",
            &format!("/v1/admin/accounts/{account}/grants"),
            body,
        );
        assert_eq!(s, 201, "grant {id}: {v}");
        v
    }
}

/// A client of its own, for tests that hammer the server from many threads.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Parses an RFC 3339 time, so times compare whatever their formatting.
pub fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("`{s}` is not RFC 3339: {e}"))
        .with_timezone(&chrono::Utc)
}

/// The time in a JSON field, parsed.
pub fn time_of(v: &Value) -> chrono::DateTime<chrono::Utc> {
    utc(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
}

/// Asserts an api.md error: the status, and a body that is exactly
/// `{"error": {"code", "message"}}` with the given code and a non-empty message.
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "status of {body}");
    let outer = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert_eq!(outer.len(), 1, "error body has only `error`: {body}");
    let inner = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("`error` is not an object: {body}"));
    assert_eq!(inner.len(), 2, "`error` has only code and message: {body}");
    assert_eq!(inner["code"], json!(want_code), "code of {body}");
    let message = inner["message"]
        .as_str()
        .unwrap_or_else(|| panic!("message is not a string: {body}"));
    assert!(!message.trim().is_empty(), "empty message: {body}");
}

/// The ledger entries that reference `reference`.
pub fn entries_for<'a>(ledger: &'a [Value], reference: &str) -> Vec<&'a Value> {
    ledger
        .iter()
        .filter(|e| e["ref"] == json!(reference))
        .collect()
}
