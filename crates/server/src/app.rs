//! The shared state every handler sees, built once at start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use creditbar_ledger::Catalog;
use rusqlite::Connection;
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::events::Event;
use crate::gateway::PaymentGateway;
use crate::ids::IdGen;
use crate::rate_limit::RateLimiter;
use crate::secret::TokenHash;
use crate::store;
use crate::view::Views;
use crate::writer::Writer;

pub struct AppInner {
    pub writer: Writer,
    pub views: Views,
    pub tokens: RwLock<HashMap<TokenHash, String>>,
    pub admin: TokenHash,
    pub readers: ReadPool,
    pub clock: Clock,
    pub catalog: Arc<Catalog>,
    pub ids: IdGen,
    pub events: broadcast::Sender<Arc<Event>>,
    pub gateway: Arc<dyn PaymentGateway>,
    pub rate: RateLimiter,
    /// One driver per payment intent at a time in this process (billing/machine.rs).
    pub billing_turns: crate::billing::machine::Turns,
}

pub type App = Arc<AppInner>;

impl AppInner {
    pub fn account_for(&self, token: &TokenHash) -> Option<String> {
        let map = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        map.get(token).cloned()
    }

    /// Runs a read on a pooled read-only connection, off the async threads.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = app.readers.take()?;
            let result = f(&conn);
            app.readers.give_back(conn);
            result.map_err(ApiError::from)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("read task: {e}")))?
    }
}

/// A few read-only connections; WAL lets them read while the writer commits.
pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub fn new(path: PathBuf) -> Self {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Connection, ApiError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) => Ok(c),
            None => store::open_reader(&self.path).map_err(ApiError::from),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
    }
}
