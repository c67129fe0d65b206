//! creditbar-server: the credit ledger as an HTTP service, on embedded SQLite (one process)
//! or on PostgreSQL (any number of processes sharing one database).
//!
//! `start` opens the database, starts the writer (SQLite: every account loaded into one
//! writer thread; PostgreSQL: a pool of connections, see writer.rs), and serves api.md. It
//! is a library so the desktop app can embed a server for `--demo`.

pub mod admission;
pub mod api;
pub mod app;
pub mod billing;
pub mod clock;
pub mod demo;
pub mod error;
pub mod events;
pub mod extract;
pub mod gateway;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod secret;
pub mod serve;
pub mod store;
pub mod view;
pub mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The catalog type of `Config::catalog`, for embedders (the desktop's `--demo`).
pub use creditbar_ledger::Catalog;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

use crate::app::{App, AppInner, ReadPool, ReadSource};
use crate::clock::Clock;
use crate::events::Publisher;
use crate::gateway::TestGateway;
use crate::ids::IdGen;
use crate::rate_limit::RateLimiter;
use crate::secret::Secret;
use crate::store::Durability;
use crate::view::Views;
use crate::writer::{Memory, SharedConfig, Writer};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database {path}: {source}")]
    Database { path: String, source: store::Error },
    #[error("cannot make {path} private to this user: {source}")]
    Files {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// A ledger in PostgreSQL, shared by every server process given the same URL.
#[derive(Clone)]
pub struct SharedLedger {
    /// A libpq-style URL; several hosts with `target_session_attrs=read-write` make every
    /// connection find the primary after a failover.
    pub url: String,
    /// Writer connections of this process (transactions it runs at once).
    pub connections: usize,
    /// The test payment gateway's database: one file every process of the ledger opens.
    pub gateway_db: PathBuf,
}

pub struct Config {
    /// The SQLite ledger (and `<db>-gateway` beside it), unless `shared` is given.
    pub db: PathBuf,
    /// The ledger is in PostgreSQL instead (`--db postgres://…`).
    pub shared: Option<SharedLedger>,
    pub listen: String,
    pub admin_token: Secret,
    pub test_clock: Option<chrono::DateTime<chrono::Utc>>,
    pub rate_limit: u32,
    pub durability: Durability,
    pub seed: Option<u64>,
    /// What is sold and charged (`--catalog FILE.toml`; default `catalogs/default.toml`).
    pub catalog: Catalog,
    /// Timeouts and the connection cap (api.md "Limits every deployment has").
    pub limits: serve::Limits,
}

pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    /// Ends when the server has stopped (after `stop`, or if serving fails).
    pub serve: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// A graceful stop (SIGTERM): stops accepting, ends the event streams, lets every
    /// accepted request finish (at most `limits.shutdown_grace`) and returns when done.
    /// Everything acknowledged before this returns is committed: a reply is sent only after
    /// its write is.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.serve.await;
        save_token_use(&self.app).await;
    }
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let db_err = |source: store::Error| StartError::Database {
        path: match &config.shared {
            Some(s) => redacted_url(&s.url),
            None => config.db.display().to_string(),
        },
        source,
    };
    let gateway_err = |source: rusqlite::Error| StartError::Database {
        path: "the test gateway's database".into(),
        source: source.into(),
    };
    metrics::install();
    let gateway_path = match &config.shared {
        Some(s) => s.gateway_db.clone(),
        None => TestGateway::path_for(&config.db),
    };
    private_files(&gateway_path)?;
    let gateway = TestGateway::open_file(&gateway_path).map_err(gateway_err)?;
    let clock = match config.test_clock {
        Some(start) => Clock::test_starting_at(start),
        None => Clock::System,
    };
    let catalog = Arc::new(config.catalog);
    let views = Views::default();
    let (events, _) = broadcast::channel(4096);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (intents_tx, intents_rx) = mpsc::unbounded_channel();
    let publisher = Publisher {
        events: events.clone(),
        intents: intents_tx,
        clock: clock.clone(),
    };
    let mut tokens = HashMap::new();
    let mut token_expiry = HashMap::new();
    let (writer, readers, process_tag) = match &config.shared {
        None => {
            private_files(&config.db)?;
            let conn = store::open(&config.db, config.durability).map_err(db_err)?;
            store::checkpoint::start(&conn, &config.db).map_err(|e| db_err(e.into()))?;
            let memory = Memory::load(&conn).map_err(db_err)?;
            for (h, t) in store::load_tokens(store::Db::Lite(&conn)).map_err(db_err)? {
                if let Some(at) = t.expires_at {
                    token_expiry.insert(h, at);
                }
                tokens.insert(h, t.account);
            }
            let writer = Writer::start(
                conn,
                config.durability,
                memory,
                catalog.clone(),
                clock.clone(),
                views.clone(),
                publisher,
            );
            (
                writer,
                ReadPool::new(ReadSource::Sqlite(config.db.clone())),
                None,
            )
        }
        Some(shared) => {
            let url = shared.url.clone();
            let opened = tokio::task::spawn_blocking(move || store::postgres::open(&url).map(drop))
                .await
                .map_err(|e| db_err(store::Error::Migration(e.to_string())))?;
            opened.map_err(db_err)?;
            // Names this process in its announcements, so it skips its own (events.rs).
            let tag = IdGen::new(None).secret("p").expose().to_owned();
            events::listen_shared(
                shared.url.clone(),
                tag.clone(),
                events.clone(),
                clock.clone(),
            );
            let writer = Writer::start_shared(
                SharedConfig {
                    url: shared.url.clone(),
                    connections: shared.connections,
                    process_tag: tag.clone(),
                },
                catalog.clone(),
                clock.clone(),
                publisher,
            );
            (
                writer,
                ReadPool::new(ReadSource::Postgres(shared.url.clone())),
                Some(tag),
            )
        }
    };
    let app: App = Arc::new(AppInner {
        writer,
        views,
        tokens: RwLock::new(tokens),
        token_expiry: RwLock::new(token_expiry),
        token_used: Mutex::new(HashMap::new()),
        admin: config.admin_token.hash(),
        readers,
        shared: config.shared.is_some(),
        reconciler_lease: config
            .shared
            .as_ref()
            .map(|s| store::postgres::Lease::start(s.url.clone(), RECONCILER_LEASE, "reconciler")),
        clock: clock.clone(),
        catalog,
        ids: IdGen::new(config.seed),
        events,
        gateway: Arc::new(gateway),
        rate: RateLimiter::new(config.rate_limit, config.limits.auth_failures_per_minute),
        streams: crate::events::StreamSlots::new(config.limits.streams_per_token, process_tag),
        billing_turns: Default::default(),
        stopping: stopping.clone(),
    });
    tokio::spawn(drive_intents(app.clone(), intents_rx));
    if !clock.is_test() {
        tokio::spawn(run_scheduler(app.clone()));
    }
    tokio::spawn(run_maintenance(app.clone()));
    // Whatever fell due while the server was down happens before the first request.
    let _ = app.writer.run(|ctx| ctx.advance_due()).await;
    // And every payment left pending by the last run is finished before the first request
    // (those whose processor still does not answer stay pending for the reconciler).
    billing::reconciler::adopt_legacy_refills(&app).await;
    billing::reconciler::pass(&app).await;
    tokio::spawn(billing::reconciler::run(app.clone()));
    let listener =
        TcpListener::bind(&config.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.clone(),
        source,
    })?;
    let router = routes::router(app.clone());
    let serve = tokio::spawn(serve::run(listener, router, config.limits, stopping));
    Ok(Running {
        addr,
        app,
        serve,
        stop,
    })
}

/// The advisory lock that names the reconciler's lease (any number, fixed forever).
const RECONCILER_LEASE: i64 = 0x7265_636f_6e63; // "reconc"

/// A database URL fit for an error message: without its password.
fn redacted_url(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(c) => format!(
            "postgres (hosts {:?}, database {})",
            c.get_hosts(),
            c.get_dbname().unwrap_or("(default)")
        ),
        Err(_) => "postgres (an invalid URL)".into(),
    }
}

/// Makes a database and its WAL and shared-memory files readable by this user only (0600):
/// they hold emails and the ledger. A missing database is created empty with that mode
/// first, so SQLite, which gives the WAL and shared-memory files the database's mode, makes
/// them 0600 too; files a previous version left 0644 are tightened.
fn private_files(db: &std::path::Path) -> Result<(), StartError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| StartError::Files { path, source }
    };
    if !db.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(db)
            .map_err(err(db))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        let path = PathBuf::from(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(err(&path))?;
        }
    }
    Ok(())
}

/// Performs resets, expiries and hold lapses when due. Once a second is enough: a reset is
/// at most a second late, and each tick only scans the in-memory accounts.
async fn run_scheduler(app: App) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = app.writer.run(|ctx| ctx.advance_due()).await {
            tracing::warn!(error = %e, "scheduler tick failed");
        }
    }
}

/// Drives each payment intent the ledger asked for (a refill, a plan charge) as soon as
/// its batch is committed; the reconciler catches any this misses.
async fn drive_intents(app: App, mut rx: mpsc::UnboundedReceiver<(String, String)>) {
    while let Some((account, id)) = rx.recv().await {
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = billing::machine::drive(&app, &account, &id).await {
                tracing::warn!(intent = %id, error = %e, "payment intent left for the reconciler");
            }
        });
    }
}

/// Every 10 s (wall time, test clock or not): counts pending purchases for the metrics and
/// renews the leases of this process's event streams (shared ledger); once a minute: saves when tokens were last used and lets the rate limiters forget
/// clients that have gone quiet.
async fn run_maintenance(app: App) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        if let Ok(n) = app.read(store::count_pending_purchases).await {
            metrics::set_pending_purchases(n.max(0) as u64);
        }
        events::StreamSlots::renew(&app).await;
        ticks += 1;
        if ticks == 6 {
            ticks = 0;
            save_token_use(&app).await;
            app.rate.prune();
            if app.shared {
                if let Err(e) = app.read(store::shared_limits::prune).await {
                    tracing::debug!(error = %e, "pruning the shared limits failed");
                }
            }
        }
    }
}

/// Saves when tokens were last used (`GET /v1/admin/accounts/{id}/tokens`).
pub async fn save_token_use(app: &App) {
    let used: Vec<_> =
        std::mem::take(&mut *app.token_used.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect();
    if used.is_empty() {
        return;
    }
    if let Err(e) = app
        .writer
        .run(move |ctx| store::touch_tokens(ctx.tx, &used).map_err(Into::into))
        .await
    {
        tracing::warn!(error = %e, "saving token use failed");
    }
}
