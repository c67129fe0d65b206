//! kill -9 in the middle of a load: every charge the server acknowledged must be there after
//! a restart, exactly once, and nothing may be half-applied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: usize = 4;

/// A usage event of its own thread, so `group_by=thread` shows each event by its id.
fn event(id: &str, n: usize) -> Value {
    json!({"id": id, "project": "load", "thread": id, "model": "lite", "kind": "chat", "status": "completed",
           "input_tokens": 100 + n % 13, "cached_input_tokens": n % 7, "output_tokens": 10 + n % 5})
}

struct Load {
    /// (request, response) of every 201.
    acked: Vec<(Value, Value)>,
    /// Requests sent whose answer never came.
    unanswered: usize,
}

/// Posts usage from several threads until at least `enough` are acknowledged, then kills
/// the server while requests are in flight; hands back the database directory.
fn load_then_kill(s: Server, token: &str, round: &str, enough: usize) -> (tempfile::TempDir, Load) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let unanswered = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (acked, count, unanswered) = (acked.clone(), count.clone(), unanswered.clone());
            let (url, token, round) = (s.url("/v1/usage"), token.to_owned(), round.to_owned());
            std::thread::spawn(move || {
                let http = client();
                for n in 0.. {
                    let body = event(&format!("{round}-w{w}-{n}"), n);
                    match http.post(&url).bearer_auth(&token).json(&body).send() {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            match resp.json::<Value>() {
                                Ok(v) if status == 201 => {
                                    acked.lock().unwrap().push((body, v));
                                    count.fetch_add(1, Ordering::SeqCst);
                                }
                                Ok(v) => panic!("{status} under load: {v}"),
                                Err(_) => {
                                    unanswered.fetch_add(1, Ordering::SeqCst);
                                    return;
                                }
                            }
                        }
                        Err(_) => {
                            unanswered.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < enough {
        assert!(
            Instant::now() < deadline,
            "the load never reached {enough} charges"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let dir = s.kill();
    for w in workers {
        w.join().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    (
        dir,
        Load {
            acked,
            unanswered: unanswered.load(Ordering::SeqCst),
        },
    )
}

/// What the restarted server says was charged, per usage id.
fn charged_per_event(s: &Server, token: &str) -> BTreeMap<String, i64> {
    s.get("/v1/usage?group_by=thread", token)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert_eq!(g["events"], json!(1), "one event per id: {g}");
            (
                g["key"].as_str().unwrap().to_owned(),
                g["charged"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Nothing half-applied: every charged usage event has ledger entries adding up to its
/// charge, and every usage entry in the ledger belongs to a recorded event.
fn assert_whole(s: &Server, token: &str) {
    let events = charged_per_event(s, token);
    let ledger = s.ledger(token);
    let mut per_ref: BTreeMap<String, i64> = BTreeMap::new();
    for e in ledger.iter().filter(|e| e["type"] == json!("usage")) {
        *per_ref
            .entry(e["ref"].as_str().unwrap().to_owned())
            .or_default() -= e["amount"].as_i64().unwrap();
    }
    let charged: BTreeMap<String, i64> = events
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|(k, c)| (k.clone(), *c))
        .collect();
    assert_eq!(
        per_ref.len(),
        charged.len(),
        "distinct usage refs in the ledger vs charged events"
    );
    assert_eq!(
        per_ref, charged,
        "each event's ledger entries add up to its charge"
    );
    s.assert_balance_is_ledger_sum(token);
}

#[test]
fn every_acknowledged_charge_survives_kill_9_mid_load() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    s.grant(&id, "fuel", 1_000_000 * CREDIT);
    let initial = s.available(&t);
    let mut all_acked: Vec<(Value, Value)> = Vec::new();
    let mut server = s;
    let mut unanswered = 0;

    // Round one with the default durability, round two with `--durability power`.
    for (round, extra) in [
        ("r1", vec![]),
        ("r2", vec!["--durability".to_owned(), "power".to_owned()]),
    ] {
        let (dir, load) = load_then_kill(server, &t, round, 300);
        assert!(load.unanswered <= WORKERS);
        assert!(load.acked.len() >= 300);
        let (ok, report) = check_db(&dir.path().join("server.db"));
        assert!(ok, "--check after kill -9: {report}");

        server = Server::start_in(
            dir,
            Options {
                extra,
                ..Default::default()
            },
        );
        let s = &server;
        assert_whole(s, &t);
        let events = charged_per_event(s, &t);
        all_acked.extend(load.acked);
        let missing: Vec<&str> = all_acked
            .iter()
            .map(|(req, _)| req["id"].as_str().unwrap())
            .filter(|id| !events.contains_key(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "acknowledged but lost in {round}: {missing:?}"
        );
        for (req, resp) in &all_acked {
            assert_eq!(
                events[req["id"].as_str().unwrap()],
                resp["charged"].as_i64().unwrap()
            );
        }
        // Unanswered requests may or may not have landed, but nothing else did.
        unanswered += load.unanswered;
        let acked_ids: BTreeSet<&str> = all_acked
            .iter()
            .map(|(r, _)| r["id"].as_str().unwrap())
            .collect();
        let extra = events
            .keys()
            .filter(|k| !acked_ids.contains(k.as_str()))
            .count();
        assert!(
            extra <= unanswered,
            "{extra} unacknowledged events from {unanswered} unanswered requests"
        );

        // Retrying every acknowledged request replays it: same status, same body, no charge.
        let before = s.get("/v1/balance", &t);
        for (req, resp) in &all_acked {
            let (st, again) = s.call("POST", "/v1/usage", Some(&t), Some(req.clone()));
            assert_eq!((st, &again), (201, resp), "replay of {}", req["id"]);
        }
        assert_eq!(s.get("/v1/balance", &t)["available"], before["available"]);
        let total: i64 = charged_per_event(s, &t).values().sum();
        assert_eq!(s.available(&t), initial - total);
        assert!(s.check_db().0);
    }
}
