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
pub mod rate_limit;
pub mod routes;
pub mod secret;
pub mod store;
pub mod view;
pub mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use creditbar_ledger::Catalog;
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
}

pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    pub serve: tokio::task::JoinHandle<()>,
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let db_err = |source| StartError::Database {
        path: config.db.clone(),
        source,
    };
    let conn = store::open(&config.db, config.durability).map_err(db_err)?;
    store::checkpoint::start(&conn, &config.db).map_err(db_err)?;
    let memory = Memory::load(&conn).map_err(db_err)?;
    let tokens: HashMap<_, _> = store::load_tokens(&conn)
        .map_err(db_err)?
        .into_iter()
        .collect();
    let gateway = TestGateway::open(&config.db).map_err(db_err)?;
    let clock = match config.test_clock {
        Some(start) => Clock::test_starting_at(start),
        None => Clock::System,
    };
    let catalog = Arc::new(config.catalog);
    let views = Views::default();
    let (events, _) = broadcast::channel(4096);
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
        admin: config.admin_token.hash(),
        readers: ReadPool::new(config.db.clone()),
        clock: clock.clone(),
        catalog,
        ids: IdGen::new(config.seed),
        events,
        gateway: Arc::new(gateway),
        rate: RateLimiter::new(config.rate_limit),
        billing_turns: Default::default(),
    });
    tokio::spawn(drive_intents(app.clone(), intents_rx));
    if !clock.is_test() {
        tokio::spawn(run_scheduler(app.clone()));
    }
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
    let serve = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(Running { addr, app, serve })
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
