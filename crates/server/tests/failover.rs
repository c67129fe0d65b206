//! Failover: the ledger on a PostgreSQL primary with a synchronous standby, two server
//! processes charging under load, the primary killed (-9) mid-load and the standby
//! promoted. The servers carry on against the new primary by themselves (a multi-host URL
//! with `target_session_attrs=read-write`), and the new primary holds every charge any
//! client was told succeeded, each once, with every balance the sum of its ledger.
//!
//! Runs in the PostgreSQL pass of scripts/test (`CREDITBAR_TEST_PG` set: Debian's
//! PostgreSQL is installed); it builds its own two clusters, as user postgres when run as
//! root, unix sockets only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's postgresql packages (scripts/lib/install.sh)")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
    Path::new("/usr/lib/postgresql")
        .join(versions.last().unwrap())
        .join("bin")
        .join(tool)
}

/// A PostgreSQL tool, run as user postgres when this is root (initdb refuses root).
fn postgres_tool(tool: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(tool));
        c
    } else {
        Command::new(pg_bin(tool))
    }
}

/// Runs a PostgreSQL tool (see `postgres_tool`); it must succeed.
fn as_postgres(tool: &str, args: &[&str]) {
    let out = postgres_tool(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn sql(sock: &Path, db: &str, query: &str) -> Vec<postgres::Row> {
    let url = format!("postgresql:///{db}?host={}&user=postgres", sock.display());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.query(query, &[]).unwrap()
}

struct Cluster {
    data: PathBuf,
    sock: PathBuf,
}

impl Cluster {
    fn start(&self) {
        let opts = format!(
            "-c listen_addresses='' -c unix_socket_directories={}",
            self.sock.display()
        );
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                self.data.with_extension("log").to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
    }

    fn postmaster_pid(&self) -> String {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        pid.lines().next().unwrap().trim().to_owned()
    }

    fn stop(&self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = postgres_tool("pg_ctl")
                .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
                .output();
        }
    }
}

struct Pair {
    _root: tempfile::TempDir,
    primary: Cluster,
    standby: Cluster,
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.primary.stop();
        self.standby.stop();
    }
}

/// A primary and a synchronous standby made from it by `pg_basebackup -R`.
fn primary_and_synchronous_standby() -> Pair {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    Command::new("chmod").arg("755").arg(dir).status().unwrap();
    if is_root() {
        Command::new("chown")
            .args(["postgres", dir.to_str().unwrap()])
            .status()
            .unwrap();
    }
    for d in ["p", "s"] {
        std::fs::create_dir(dir.join(format!("{d}-sock"))).unwrap();
        if is_root() {
            Command::new("chown")
                .args(["postgres", dir.join(format!("{d}-sock")).to_str().unwrap()])
                .status()
                .unwrap();
        }
    }
    let primary = Cluster {
        data: dir.join("p"),
        sock: dir.join("p-sock"),
    };
    let standby = Cluster {
        data: dir.join("s"),
        sock: dir.join("s-sock"),
    };
    as_postgres(
        "initdb",
        &[
            "-D",
            primary.data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
        ],
    );
    let conf = "\nwal_level = replica\nmax_wal_senders = 4\nsynchronous_commit = on\nmax_connections = 200\n";
    append_as_postgres(&primary.data.join("postgresql.conf"), conf);
    primary.start();
    sql(&primary.sock, "postgres", "CREATE DATABASE creditbar");
    as_postgres(
        "pg_basebackup",
        &[
            "-D",
            standby.data.to_str().unwrap(),
            "-R",
            "--checkpoint=fast",
            "-X",
            "stream",
            "-h",
            primary.sock.to_str().unwrap(),
            "-U",
            "postgres",
        ],
    );
    // -R wrote primary_conninfo and standby.signal; name the standby so the primary waits
    // for it.
    append_as_postgres(
        &standby.data.join("postgresql.auto.conf"),
        &format!(
            "\nprimary_conninfo = 'host={} user=postgres application_name=standby1'\n",
            primary.sock.display()
        ),
    );
    standby.start();
    // Synchronous from now on: a commit is acknowledged once the standby has it on disk.
    // (Set only now: before the standby exists, every commit would wait for it.)
    sql(
        &primary.sock,
        "postgres",
        "ALTER SYSTEM SET synchronous_standby_names = 'standby1'",
    );
    sql(&primary.sock, "postgres", "SELECT pg_reload_conf()");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = sql(
            &primary.sock,
            "postgres",
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'",
        );
        if rows.first().map(|r| r.get::<_, String>(0)) == Some("sync".into()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never became synchronous"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Pair {
        _root: root,
        primary,
        standby,
    }
}

fn append_as_postgres(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A server process on the ledger at `url`, its test gateway's file in `gateway_dir`.
fn server(url: &str, gateway_dir: &Path) -> Server {
    Server::start_with(Options {
        ledger_url: Some(url.to_owned()),
        gateway_dir: Some(gateway_dir.to_path_buf()),
        ..Default::default()
    })
}

#[test]
fn the_servers_carry_on_after_the_primary_dies_and_lose_no_acknowledged_charge() {
    if pg_socket().is_none() {
        eprintln!("PostgreSQL only (CREDITBAR_TEST_PG unset)");
        return;
    }
    let t0 = Instant::now();
    let pair = primary_and_synchronous_standby();
    eprintln!("clusters up after {:?}", t0.elapsed());
    // Both hosts in the URL's authority (socket directories, percent-encoded); a connection
    // takes the first that accepts writes.
    let enc = |p: &Path| p.display().to_string().replace('/', "%2F");
    let url = format!(
        "postgresql://postgres@{},{}/creditbar?target_session_attrs=read-write&connect_timeout=2",
        enc(&pair.primary.sock),
        enc(&pair.standby.sock)
    );
    let files = tempfile::tempdir().unwrap();
    let a = server(&url, files.path());
    let b = server(&url, files.path());
    eprintln!("servers up after {:?}", t0.elapsed());
    let (account, t) = a.account("free", "UTC");
    a.grant(&account, "load", 1_000_000_000);

    let acknowledged = Mutex::new(Vec::<String>::new());
    let stop = AtomicBool::new(false);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let refused = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let servers = [&a, &b];
            let (acknowledged, stop, next, refused, t) =
                (&acknowledged, &stop, &next, &refused, &t);
            scope.spawn(move || {
                let http = client();
                while !stop.load(Ordering::SeqCst) {
                    let id = format!("f{}", next.fetch_add(1, Ordering::SeqCst));
                    let body = usage(&id, "lite", 0, 0, 1_000);
                    // Retried with the same id until some server answers: a retry never
                    // charges twice (the id is the idempotency key).
                    for attempt in 0.. {
                        let s = servers[(worker + attempt) % 2];
                        let resp = http
                            .post(s.url("/v1/usage"))
                            .bearer_auth(t)
                            .json(&body)
                            .send();
                        match resp.map(|r| r.status().as_u16()) {
                            Ok(201) => {
                                acknowledged.lock().unwrap().push(id.clone());
                                break;
                            }
                            Ok(503) | Err(_) => {
                                refused.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            Ok(other) => panic!("{id}: unexpected status {other}"),
                        }
                    }
                }
            });
        }
        let count = || acknowledged.lock().unwrap().len();
        within(60, "charges before the failover", || count() >= 200);
        let before = count();
        eprintln!("{before} charges before the kill, at {:?}", t0.elapsed());
        // The primary dies mid-load.
        Command::new("kill")
            .args(["-9", &pair.primary.postmaster_pid()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        as_postgres(
            "pg_ctl",
            &["-D", pair.standby.data.to_str().unwrap(), "-w", "promote"],
        );
        eprintln!("promoted at {:?}", t0.elapsed());
        within(60, "charges after the promotion", || {
            count() >= before + 200
        });
        eprintln!("{} charges at {:?}", count(), t0.elapsed());
        stop.store(true, Ordering::SeqCst);
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    eprintln!(
        "{} charges acknowledged, {} answers were 503 or no answer (retried)",
        acknowledged.len(),
        refused.load(Ordering::SeqCst)
    );
    assert!(refused.load(Ordering::SeqCst) > 0, "the failover was felt");
    // Read back by this process from the new primary: every acknowledged charge is there,
    // and each usage id was charged once.
    let rows = sql(
        &pair.standby.sock,
        "creditbar",
        &format!("SELECT id FROM usage_events WHERE account_id = '{account}' AND id LIKE 'f%'"),
    );
    let stored: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged charge {id} is lost");
    }
    let per_ref = sql(
        &pair.standby.sock,
        "creditbar",
        &format!(
            "SELECT ref, COUNT(*) FROM ledger WHERE account_id = '{account}' AND type = 'usage'
             GROUP BY ref HAVING COUNT(*) > 1"
        ),
    );
    assert!(per_ref.is_empty(), "a usage charged twice");
    // Both servers answer from the new primary, and agree.
    let after: Value = a.get("/v1/balance", &t);
    assert_eq!(after, b.get("/v1/balance", &t));
    a.assert_balance_is_ledger_sum(&t);
    let (ok, report) = check_ledger(&url, &files.path().join("server.db-gateway"));
    assert!(ok, "{report}");
}
