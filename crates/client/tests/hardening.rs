//! The client against a network it should not trust: plain http:// to another machine is
//! refused unless the person allows it (and is then warned about), and a server that sends
//! too much gets a clear error while the cache keeps answering. The real `creditbar` CLI in
//! a private session, the real server, and small servers of the test's own that misbehave.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

// ------------------------------------------------------------------ no token in cleartext

/// An address that is not this machine. The tests reach it through an HTTP proxy (the
/// standard `http_proxy` variable, which the client honours), so no DNS is needed.
const REMOTE: &str = "http://creditbar.test/";

fn through(proxy: &str) -> Vec<(&'static str, String)> {
    vec![
        ("http_proxy", proxy.to_owned()),
        ("HTTP_PROXY", proxy.to_owned()),
        ("no_proxy", String::new()),
        ("NO_PROXY", String::new()),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A proxy that keeps every byte it is sent and answers nothing: what a person on the
/// network path would see.
struct Eavesdropper {
    base: String,
    heard: Arc<Mutex<Vec<u8>>>,
}

impl Eavesdropper {
    fn start() -> Eavesdropper {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let keep = heard.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                conn.set_read_timeout(Some(Duration::from_millis(500))).ok();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    keep.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        Eavesdropper { base, heard }
    }

    fn heard(&self) -> String {
        String::from_utf8_lossy(&self.heard.lock().unwrap()).into_owned()
    }
}

#[test]
fn plain_http_to_another_machine_is_refused_before_the_token_is_sent() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    let wire = Eavesdropper::start();
    let env = through(&wire.base);

    let run = session.creditbar_env(
        &["login", "--server", REMOTE, "--token-stdin"],
        &format!("{}\n", account.token),
        &env_refs(&env),
    );
    let heard = wire.heard();
    assert!(
        !heard.contains(&account.token),
        "the token went over plain http: {heard}"
    );
    assert!(heard.is_empty(), "nothing at all is sent: {heard}");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("http://creditbar.test/ is not encrypted")
            && run.stderr.contains("--allow-insecure-http")
            && run.stderr.contains("https://"),
        "the error names the problem and the ways out: {}",
        run.stderr
    );
    assert_eq!(session.secret("account-token"), None, "nothing kept");
    assert!(!session.data_dir.join("server-url").exists());
}

#[test]
fn allowed_plain_http_is_remembered_and_warned_about_by_status() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    // The real server, reached as creditbar.test through itself as the proxy.
    let env = through(&server.base);
    let env = env_refs(&env);

    let run = session
        .creditbar_env(
            &[
                "login",
                "--server",
                REMOTE,
                "--token-stdin",
                "--allow-insecure-http",
            ],
            &format!("{}\n", account.token),
            &env,
        )
        .ok();
    assert!(
        run.stderr.contains("Warning: not encrypted"),
        "{}",
        run.stderr
    );

    // Later commands know the choice: no flag needed, and each one warns.
    let status = session.creditbar_env(&["status"], "", &env);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(
        status.stdout.starts_with(
            "Warning: not encrypted — http://creditbar.test/ is plain http:// \
             (signed in with --allow-insecure-http); your account token travels in cleartext."
        ),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("505.00 credits available"),
        "{status:?}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &session
            .creditbar_env(&["status", "--json"], "", &env)
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["insecure_http"], true, "{json}");
    assert_eq!(json["server"], REMOTE, "{json}");
    let bar: serde_json::Value = serde_json::from_str(
        &session
            .creditbar_env(&["status", "--waybar"], "", &env)
            .ok()
            .stdout,
    )
    .unwrap();
    assert!(
        bar["tooltip"]
            .as_str()
            .unwrap()
            .starts_with("Warning: not encrypted"),
        "{bar}"
    );

    // A cache rebuilt from nothing still knows the address and the choice.
    std::fs::remove_file(session.cache_path()).unwrap();
    server.use_credits(&account, "after-rebuild", 5);
    session.creditbar_env(&["sync"], "", &env).ok();
    assert_eq!(session.cached_available(), Some(500 * CREDIT));
    assert_eq!(session.offline_status()["insecure_http"], true);
}

#[test]
fn loopback_http_needs_no_choice_shows_no_warning_and_never_goes_through_a_proxy() {
    let server = Server::start();
    let account = server.account("pro");
    let session = Session::start();
    // A proxy in the environment would carry plain http off the machine: it is bypassed.
    let wire = Eavesdropper::start();
    let env = through(&wire.base);
    let env = env_refs(&env);
    let localhost = format!("http://localhost:{}", server.port);
    let run = session.creditbar_env(
        &["login", "--server", &localhost, "--token-stdin"],
        &format!("{}\n", account.token),
        &env,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let status = session.creditbar_env(&["status"], "", &env).ok();
    assert!(!status.stdout.contains("Warning"), "{}", status.stdout);
    assert!(
        status.stdout.starts_with("505.00 credits available"),
        "{}",
        status.stdout
    );
    assert_eq!(session.offline_status()["insecure_http"], false);
    let heard = wire.heard();
    assert!(heard.is_empty(), "the proxy heard: {heard}");
}

// ------------------------------------------------------------------------ bounded reads

/// What the hostile server does with the requests it does not pass on.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Passes every request on to the real server.
    Honest = 0,
    /// Answers every request with a 64 MiB body.
    HugeBody = 1,
    /// Passes requests on, but the event stream sends one event that never ends.
    EndlessEvent = 2,
    /// Passes requests on, but the event stream sends 100,000 small events at once.
    EventFlood = 3,
}

/// Most bytes the hostile server sends in one answer: enough to show a client that reads
/// without a limit, small enough that such a client cannot take the machine down.
const HOSTILE_BYTES: usize = 64 * 1024 * 1024;

/// A server of the test's own on a loopback port, in front of the real one: honest until
/// told otherwise.
struct Hostile {
    base: String,
    mode: Arc<AtomicU8>,
}

impl Hostile {
    fn start(upstream: &Server) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(Mode::Honest as u8));
        let (m, up) = (mode.clone(), format!("127.0.0.1:{}", upstream.port));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (m, up) = (m.clone(), up.clone());
                std::thread::spawn(move || serve(conn, m.load(Ordering::SeqCst), &up));
            }
        });
        Hostile { base, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

/// Reads one request (head and Content-Length body).
fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = conn.read(&mut buf).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = conn.read(&mut buf).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&buf[..n]);
    }
    Some((head, data[head_end..].to_vec()))
}

/// Sends `prefix` then `fill` repeated until `HOSTILE_BYTES` or the client hangs up.
fn flood(conn: &mut TcpStream, prefix: &[u8], fill: &[u8]) {
    if conn.write_all(prefix).is_err() {
        return;
    }
    let block: Vec<u8> = fill.iter().copied().cycle().take(64 * 1024).collect();
    let mut sent = 0;
    while sent < HOSTILE_BYTES && conn.write_all(&block).is_ok() {
        sent += block.len();
    }
}

fn serve(mut conn: TcpStream, mode: u8, upstream: &str) {
    let Some((head, body)) = read_request(&mut conn) else {
        return;
    };
    let events = head.starts_with("GET /v1/events");
    if mode == Mode::HugeBody as u8 {
        let start = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"id\": \"";
        return flood(&mut conn, start, b"a");
    }
    if events && mode == Mode::EndlessEvent as u8 {
        let start =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: notice\ndata: ";
        return flood(&mut conn, start, b"x");
    }
    if events && mode == Mode::EventFlood as u8 {
        let start = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
        return flood(&mut conn, start, b"event: ping\ndata: {}\n\n");
    }
    // Honest: the same request to the real server, on a connection of its own.
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut head: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    head.push("connection: close");
    let head = format!("{}\r\n\r\n", head.join("\r\n"));
    if up.write_all(head.as_bytes()).is_err() || up.write_all(&body).is_err() {
        return;
    }
    std::io::copy(&mut up, &mut conn).ok();
}

/// Signs in through the hostile server while it is honest; the cache then holds 505 credits.
fn signed_in_through(hostile: &Hostile, account: &Account, session: &Session) {
    session
        .creditbar_stdin(
            &["login", "--server", &hostile.base, "--token-stdin"],
            &format!("{}\n", account.token),
        )
        .ok();
    assert_eq!(session.cached_available(), Some(505 * CREDIT));
}

/// `creditbar status` (with its short sync) still answers from the cache, marked stale.
#[track_caller]
fn status_answers_from_the_cache(session: &Session) {
    let status = session.creditbar(&["status"]);
    assert_eq!(status.code, Some(12), "stale: {status:?}");
    assert!(
        status.stdout.starts_with("505.00 credits available")
            && status.stdout.contains("Offline — showing cached"),
        "{}",
        status.stdout
    );
}

/// `creditbar status` still shows the balance: only the live stream misbehaves, so its
/// short sync succeeds.
#[track_caller]
fn status_still_shows_the_balance(session: &Session) {
    let status = session.creditbar(&["status"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(
        status.stdout.starts_with("505.00 credits available"),
        "{}",
        status.stdout
    );
}

#[test]
fn an_oversized_answer_is_refused_by_name_and_the_cache_still_answers() {
    let server = Server::start();
    let account = server.account("pro");
    let hostile = Hostile::start(&server);
    let session = Session::start();
    signed_in_through(&hostile, &account, &session);

    hostile.set(Mode::HugeBody);
    let started = Instant::now();
    let run = session.creditbar(&["sync"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "the server at {}/ sent an answer to /v1/account larger than 8 MiB, more than this \
             client accepts",
            hostile.base
        )),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped reading at once: {:?}",
        started.elapsed()
    );
    status_answers_from_the_cache(&session);
}

#[test]
fn an_endless_event_is_refused_by_name_memory_stays_small_and_live_sync_recovers() {
    let server = Server::start();
    let account = server.account("pro");
    let hostile = Hostile::start(&server);
    let session = Session::start();
    signed_in_through(&hostile, &account, &session);

    hostile.set(Mode::EndlessEvent);
    let mut watch = session.watch();
    let said = format!(
        "live sync interrupted: the server at {}/ sent an event larger than 64 KiB",
        hostile.base
    );
    wait_until("the watch to name the event limit", LIVE, || {
        watch.stderr().contains(&said).then_some(())
    });
    watch.assert_running();
    // It stopped reading at 64 KiB of the 64 MiB the server offered, every time it tried.
    let peak = watch.memory_kib("VmHWM");
    println!("creditbar watch peaked at {peak} KiB against an endless event");
    assert!(peak < 48 * 1024, "creditbar watch held {peak} KiB");
    status_still_shows_the_balance(&session);

    // The server mends its ways: live sync carries on by itself.
    hostile.set(Mode::Honest);
    server.use_credits(&account, "after-the-storm", 5);
    session.wait_cached_credits(500, Duration::from_secs(30));
    watch.assert_running();
}

#[test]
fn a_flood_of_events_is_refused_by_name_and_the_cache_still_answers() {
    let server = Server::start();
    let account = server.account("pro");
    let hostile = Hostile::start(&server);
    let session = Session::start();
    signed_in_through(&hostile, &account, &session);

    hostile.set(Mode::EventFlood);
    let mut watch = session.watch();
    let said = format!(
        "live sync interrupted: the server at {}/ sent more than 1000 events in one second",
        hostile.base
    );
    wait_until("the watch to name the event rate limit", LIVE, || {
        watch.stderr().contains(&said).then_some(())
    });
    watch.assert_running();
    status_still_shows_the_balance(&session);
}
