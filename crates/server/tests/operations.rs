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
