//! Operating the server: connection limits, graceful stop, and what an operator relies on
//! (api.md "Limits every deployment has", "Operations"). Each test runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn host(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

/// Half a request head, never finished.
fn half_sent(host: &str) -> TcpStream {
    let mut c = TcpStream::connect(host).unwrap();
    c.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    c
}

/// Whether the server closed the connection (EOF or reset) within `within`.
fn closed_within(c: &mut TcpStream, within: Duration) -> bool {
    c.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            // hyper answers a timed-out head with nothing, or with a 408; either way the
            // connection must end.
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// 400 connections that never finish their request head, against a server whose descriptor
/// limit is 256: the header timeout closes them, the connection cap keeps descriptors for
/// the database, and a real request is answered meanwhile.
#[test]
fn half_sent_heads_are_closed_and_the_server_stays_responsive() {
    let s = Server::start_with(Options {
        wrapper: vec!["prlimit".into(), "--nofile=256:256".into(), "--".into()],
        // By environment, so an older build (which knows no such option) still starts.
        env: vec![("CREDITBAR_HEADER_READ_TIMEOUT".into(), "1".into())],
        ..Options::default()
    });
    let (_, token) = s.account("pro", "UTC");
    let h = host(&s);
    let mut flood: Vec<TcpStream> = (0..400).map(|_| half_sent(&h)).collect();
    // A real request, while the flood holds every slot the server has.
    let asked = Instant::now();
    let (st, v) = s.call(
        "POST",
        "/v1/usage",
        Some(&token),
        Some(usage("during-flood", "lite", 100, 0, 10)),
    );
    assert_eq!(st, 201, "{v}");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "a request during the flood took {:?}",
        asked.elapsed()
    );
    // Every half-sent head is closed (1 s timeout, generous bound for a loaded machine).
    for (i, c) in flood.iter_mut().enumerate().take(50) {
        assert!(
            closed_within(c, Duration::from_secs(10)),
            "half-sent connection {i} still open"
        );
    }
    // A second wave right away is handled the same: the server did not wedge.
    let _again: Vec<TcpStream> = (0..300).map(|_| half_sent(&h)).collect();
    let asked = Instant::now();
    assert!(s.available(&token) > 0);
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
    assert!(s.check_db().0);
}

/// An idle keep-alive connection is closed too (no request for longer than the timeout).
#[test]
fn an_idle_connection_is_closed() {
    let s = Server::start_with(Options {
        // By environment, so an older build (which knows no such option) still starts.
        env: vec![("CREDITBAR_HEADER_READ_TIMEOUT".into(), "1".into())],
        ..Options::default()
    });
    let mut c = TcpStream::connect(host(&s)).unwrap();
    c.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut c, Duration::from_secs(10)));
}

/// A usage event of its own thread, so `group_by=thread` shows each event by its id.
fn event(id: &str) -> Value {
    json!({"id": id, "project": "load", "thread": id, "model": "lite", "kind": "chat", "status": "completed",
           "input_tokens": 100, "cached_input_tokens": 0, "output_tokens": 10})
}

/// SIGTERM while four clients charge as fast as they can: the process exits 0 within 10 s,
/// and every charge it acknowledged is there after a restart.
#[test]
fn sigterm_under_load_drains_and_exits_zero() {
    let s = Server::start();
    let (_, token) = s.account("pro", "UTC");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (acked, count, done) = (acked.clone(), count.clone(), done.clone());
            let (url, token) = (s.url("/v1/usage"), token.clone());
            std::thread::spawn(move || {
                let http = client();
                for n in 0.. {
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    let id = format!("w{w}-{n}");
                    match http.post(&url).bearer_auth(&token).json(&event(&id)).send() {
                        Ok(resp) if resp.status().as_u16() == 201 => {
                            if resp.json::<Value>().is_ok() {
                                acked.lock().unwrap().push(id);
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Ok(resp) => panic!("{} under load", resp.status()),
                        // Refused or closed: the server is stopping.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < 200 {
        assert!(Instant::now() < deadline, "the load never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, took, dir) = s.terminate();
    done.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let s = Server::start_in(dir, Options::default());
    let recorded: std::collections::BTreeSet<String> = s.get("/v1/usage?group_by=thread", &token)
        ["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<_> = acked.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(s.check_db().0);
}

/// An open event stream does not hold the stop up.
#[test]
fn sigterm_with_an_open_event_stream_exits_promptly() {
    let s = Server::start();
    let (_, token) = s.account("pro", "UTC");
    let mut c = TcpStream::connect(host(&s)).unwrap();
    write!(
        c,
        "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (status, took, _dir) = s.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

fn bin() -> String {
    std::env::var("CREDITBAR_TEST_SERVER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_creditbar-server").to_owned())
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Starts the binary with `args`, reads its standard output until it listens, and hands
/// back the child, the base URL and everything it printed so far.
fn spawn_listening(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            child.wait().ok();
            panic!("the server exited before listening: {printed}{err}");
        };
        printed.push_str(&line);
        printed.push('\n');
        if let Some(addr) = line.strip_prefix("listening on ") {
            let base = addr.trim().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return (child, base, printed);
        }
    }
}

/// The database, its WAL and shared memory, and the gateway's, are 0600, whatever the
/// umask; a database a previous version left 0644 is tightened on start.
#[test]
fn database_files_are_private_to_the_user() {
    if sqlite_only("the modes of the SQLite files") {
        return;
    }
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u1", "lite", 10, 0, 1)),
    );
    assert_eq!(st, 201);
    let card =
        json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"});
    let (st, _) = s.call("POST", "/v1/payment-methods", Some(&t), Some(card));
    assert_eq!(st, 201);
    let db = s.db_path();
    let files = [
        "server.db",
        "server.db-wal",
        "server.db-shm",
        "server.db-gateway",
        "server.db-gateway-wal",
        "server.db-gateway-shm",
    ];
    for f in files {
        let p = db.with_file_name(f);
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    // Loosened by hand (or by an older version): tightened at the next start.
    let dir = s.kill();
    use std::os::unix::fs::PermissionsExt;
    for f in ["server.db", "server.db-wal", "server.db-shm"] {
        let p = dir.path().join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let s = Server::start_in(dir, Options::default());
    assert_eq!(mode(&s.db_path()), 0o600);
    assert!(s.available(&t) > 0);
}

/// Admin token rules: shorter than 32 characters is refused at start; a file works; with
/// neither, a token is generated into `admin-token` beside the database (0600), reused at
/// the next start, and never printed.
#[test]
fn admin_token_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let db = db.to_str().unwrap();
    let mut short = std::process::Command::new(bin())
        .args([
            "--db",
            db,
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            "short-token",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(st) = short.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > Duration::from_secs(10) {
            short.kill().ok();
            short.wait().ok();
            panic!("a short admin token was accepted (the server is still running)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "a short admin token was accepted");
    let mut err = String::new();
    short.stderr.take().unwrap().read_to_string(&mut err).ok();
    assert!(err.contains("at least 32"), "{err}");

    // Generated: into a 0600 file, not onto standard output (nor the log).
    let (mut child, base, printed) = spawn_listening(&["--db", db, "--listen", "127.0.0.1:0"], &[]);
    let file = dir.path().join("admin-token");
    assert_eq!(mode(&file), 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(token.len() >= 32, "{token}");
    assert!(
        !printed.contains(&token),
        "the admin token was printed: {printed}"
    );
    let http = client();
    let st = http
        .get(format!("{base}/v1/admin/accounts/none/tokens"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 404, "the generated token is the admin token");
    child.kill().ok();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).ok();
    child.wait().ok();
    assert!(!err.contains(&token), "the admin token was logged: {err}");
    // The next start reuses it.
    let (mut child, base, _) = spawn_listening(&["--db", db, "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    let st = http
        .get(format!("{base}/v1/admin/accounts/none/tokens"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 404);
    child.kill().ok();
    child.wait().ok();

    // --admin-token-file.
    let tf = dir.path().join("given-token");
    std::fs::write(&tf, "  given-admin-token-0123456789abcdef-xyz\n").unwrap();
    let (mut child, base, _) = spawn_listening(
        &[
            "--db",
            db,
            "--listen",
            "127.0.0.1:0",
            "--admin-token-file",
            tf.to_str().unwrap(),
        ],
        &[],
    );
    let st = http
        .get(format!("{base}/v1/admin/accounts/none/tokens"))
        .bearer_auth("given-admin-token-0123456789abcdef-xyz")
        .send()
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 404);
    child.kill().ok();
    child.wait().ok();
}

/// CREDITBAR_SEED makes tokens predictable: honoured with --test-clock only.
#[test]
fn the_seed_is_ignored_without_the_test_clock() {
    let token_of = |test_clock: bool| {
        let s = Server::start_with(Options {
            test_clock: test_clock.then(|| START.to_owned()),
            env: vec![("CREDITBAR_SEED".into(), "42".into())],
            ..Options::default()
        });
        s.account("free", "UTC").1
    };
    assert_eq!(token_of(true), token_of(true), "seeded under --test-clock");
    assert_ne!(
        token_of(false),
        token_of(false),
        "seeded without --test-clock"
    );
}

/// --check opens the database read-only: it creates nothing, changes nothing (not even the
/// journal mode of a copy), and works on a database whose server stopped cleanly.
#[test]
fn check_is_read_only() {
    if sqlite_only("--check and backup of a SQLite file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let (ok, _) = check_db(&missing);
    assert!(!ok, "--check on a missing file succeeded");
    assert!(!missing.exists(), "--check created {}", missing.display());

    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u1", "lite", 10, 0, 1)),
    );
    assert_eq!(st, 201);
    // A copy in rollback-journal mode: opening it for writing the way the server does
    // would turn it to WAL; --check must not.
    let copy = dir.path().join("copy.db");
    let out = std::process::Command::new(bin())
        .args([
            "backup",
            "--db",
            s.db_path().to_str().unwrap(),
            "--to",
            copy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = std::fs::read(&copy).unwrap();
    let (ok, text) = check_db(&copy);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "--check changed the file"
    );
    assert!(!dir.path().join("copy.db-wal").exists());
    // After a clean stop (no WAL or shared-memory file left).
    let (status, _, dir2) = s.terminate();
    assert!(status.success());
    let (ok, text) = check_db(&dir2.path().join("server.db"));
    assert!(ok, "{text}");
}

/// `backup` while four clients charge: the copy passes --check, holds every charge
/// acknowledged before the backup started, and a server started on it serves them.
#[test]
fn backup_under_load_is_consistent() {
    if sqlite_only("the backup subcommand copies a SQLite file (PostgreSQL: pg_basebackup)") {
        return;
    }
    let s = Server::start();
    let (_, token) = s.account("pro", "UTC");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (acked, done) = (acked.clone(), done.clone());
            let (url, token) = (s.url("/v1/usage"), token.clone());
            std::thread::spawn(move || {
                let http = client();
                for n in 0.. {
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    let id = format!("w{w}-{n}");
                    let r = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&event(&id))
                        .send()
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201);
                    acked.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 300 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let out_dir = tempfile::tempdir().unwrap();
    let copy = out_dir.path().join("server.db");
    let out = std::process::Command::new(bin())
        .args([
            "backup",
            "--db",
            s.db_path().to_str().unwrap(),
            "--to",
            copy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let during = acked.lock().unwrap().len();
    done.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(during > before.len(), "the load went on during the backup");
    assert_eq!(mode(&copy), 0o600);
    let (ok, text) = check_db(&copy);
    assert!(ok, "{text}");
    // A second backup onto the same file is refused (nothing is overwritten).
    let again = std::process::Command::new(bin())
        .args([
            "backup",
            "--db",
            s.db_path().to_str().unwrap(),
            "--to",
            copy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    // Restore: a server on the copy has every charge acknowledged before the backup.
    drop(s);
    let r = Server::start_in(out_dir, Options::default());
    let recorded: std::collections::BTreeSet<String> = r.get("/v1/usage?group_by=thread", &token)
        ["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<_> = before.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(missing.is_empty(), "missing from the copy: {missing:?}");
    r.assert_balance_is_ledger_sum(&token);
}

/// A TOML config file sets options; the environment wins over it; an unknown key is refused.
#[test]
fn config_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.toml");
    std::fs::write(&cfg, "auth-failures-per-minute = 2\nrate_limit = 0\n").unwrap();
    let failures_until_429 = |env: Vec<(String, String)>| {
        let s = Server::start_with(Options {
            extra: vec!["--config".into(), cfg.to_str().unwrap().into()],
            env,
            ..Options::default()
        });
        (1..100)
            .find(|_| s.call("GET", "/v1/balance", Some("cb_wrong"), None).0 == 429)
            .unwrap()
    };
    assert_eq!(failures_until_429(vec![]), 3, "from the file");
    assert_eq!(
        failures_until_429(vec![(
            "CREDITBAR_AUTH_FAILURES_PER_MINUTE".into(),
            "5".into()
        )]),
        6,
        "the environment wins"
    );
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nadmin-tokn = \"x\"\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin-tokn"), "{err}");
}

/// GET /v1/ready is 200 while the store takes writes, 503 while another process holds the
/// database's write lock, and 200 again once it lets go.
#[test]
fn ready_follows_whether_the_store_takes_writes() {
    if sqlite_only("a second process holding the SQLite write lock") {
        return;
    }
    let s = Server::start();
    let (st, v) = s.call("GET", "/v1/ready", None, None);
    assert_eq!(st, 200, "{v}");
    let mut locker = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n",
        )
        .arg(s.db_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(locker.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let asked = Instant::now();
    let (st, v) = s.call("GET", "/v1/ready", None, None);
    assert_error(st, &v, 503, "unavailable");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    drop(locker.stdin.take());
    locker.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, _) = s.call("GET", "/v1/ready", None, None);
        if st == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET /metrics: admin only; Prometheus text with requests by route and status, the charge
/// latency histogram, writer batch sizes, pending purchases and refill outcomes.
#[test]
fn metrics_in_prometheus_text() {
    let s = Server::start();
    let (_, t) = s.account("pro", "UTC");
    for i in 0..5 {
        let (st, _) = s.call(
            "POST",
            "/v1/usage",
            Some(&t),
            Some(usage(&format!("m{i}"), "lite", 10, 0, 1)),
        );
        assert_eq!(st, 201);
    }
    let (st, _) = s.call("GET", "/v1/holds/nope", Some(&t), None);
    assert_eq!(st, 404);
    let (st, _) = s.call("GET", "/metrics", Some(&t), None);
    assert_eq!(st, 401, "an account token does not read metrics");
    let a = s.send("GET", "/metrics", Some(ADMIN), &[], None);
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.header("content-type").unwrap().starts_with("text/plain"));
    let text = a.text;
    for want in [
        r#"creditbar_http_requests_total{method="POST",route="/v1/usage",status="201"} 5"#,
        r#"creditbar_http_requests_total{method="POST",route="/v1/admin/accounts",status="201"} 1"#,
        r#"route="unmatched",status="404""#,
        "creditbar_charge_duration_seconds_bucket{le=",
        "creditbar_charge_duration_seconds_count 5",
        "creditbar_writer_batch_size_bucket{le=",
        r#"creditbar_refills_total{outcome="succeeded"} 0"#,
        "# TYPE creditbar_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    // The pending-purchases gauge is set within 10 s of start.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = s.send("GET", "/metrics", Some(ADMIN), &[], None).text;
        if text.contains("creditbar_pending_purchases 0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no pending purchases gauge:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// --log-format json: one JSON object per line on standard error; every request has an id,
/// the client's X-Request-Id when sent, echoed in the response and in its log line.
#[test]
fn json_logs_carry_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let (mut child, base, _) = spawn_listening(
        &[
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN,
            "--log-format",
            "json",
        ],
        &[("RUST_LOG", "info")],
    );
    let http = client();
    let r = http
        .get(format!("{base}/v1/health"))
        .header("x-request-id", "trace-me-123")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    let r = http.get(format!("{base}/v1/balance")).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let fresh = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(fresh.len(), 16, "{fresh}");
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let answered = |id: &str| {
        lines
            .iter()
            .find(|l| l["span"]["request_id"] == json!(id) && l["message"] == json!("answered"))
            .unwrap_or_else(|| panic!("no log line for request {id}: {err}"))
            .clone()
    };
    assert_eq!(answered("trace-me-123")["status"], json!(200));
    assert_eq!(answered(&fresh)["status"], json!(401));
    assert!(!err.contains(ADMIN), "the admin token was logged");
}
