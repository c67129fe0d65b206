//! creditbar-server: the credit ledger as an HTTP service on embedded SQLite.
//!
//! `start` opens the database, loads every account into the single writer, and serves
//! api.md. It is a library so the desktop app can embed a server for `--demo`.

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

use crate::app::{App, AppInner, ReadPool};
use crate::clock::Clock;
use crate::events::Publisher;
use crate::gateway::TestGateway;
use crate::ids::IdGen;
use crate::rate_limit::RateLimiter;
use crate::secret::Secret;
use crate::store::Durability;
use crate::view::Views;
use crate::writer::{Memory, Writer};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database {path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
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

pub struct Config {
    pub db: PathBuf,
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
    let db_err = |source| StartError::Database {
        path: config.db.clone(),
        source,
    };
    metrics::install();
    private_files(&config.db)?;
    private_files(&TestGateway::path_for(&config.db))?;
    let conn = store::open(&config.db, config.durability).map_err(db_err)?;
    store::checkpoint::start(&conn, &config.db).map_err(db_err)?;
    let memory = Memory::load(&conn).map_err(db_err)?;
    let stored_tokens = store::load_tokens(&conn).map_err(db_err)?;
    let token_expiry: HashMap<_, _> = stored_tokens
        .iter()
        .filter_map(|(h, t)| t.expires_at.map(|at| (*h, at)))
        .collect();
    let tokens: HashMap<_, _> = stored_tokens
        .into_iter()
        .map(|(h, t)| (h, t.account))
        .collect();
    let gateway = TestGateway::open(&config.db).map_err(db_err)?;
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
    let writer = Writer::start(
        conn,
        config.durability,
        memory,
        catalog.clone(),
        clock.clone(),
        views.clone(),
        publisher,
    );
    let app: App = Arc::new(AppInner {
        writer,
        views,
        tokens: RwLock::new(tokens),
        token_expiry: RwLock::new(token_expiry),
        token_used: Mutex::new(HashMap::new()),
        admin: config.admin_token.hash(),
        readers: ReadPool::new(config.db.clone()),
        clock: clock.clone(),
        catalog,
        ids: IdGen::new(config.seed),
        events,
        gateway: Arc::new(gateway),
        rate: RateLimiter::new(config.rate_limit, config.limits.auth_failures_per_minute),
        streams: crate::events::StreamSlots::new(config.limits.streams_per_token),
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

/// Every 10 s (wall time, test clock or not): counts pending purchases for the metrics;
/// once a minute: saves when tokens were last used and lets the rate limiters forget
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
        ticks += 1;
        if ticks == 6 {
            ticks = 0;
            save_token_use(&app).await;
            app.rate.prune();
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
