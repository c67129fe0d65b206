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
use crate::store::{self, Db, PgSession};
use crate::view::{AccountView, Views};
use crate::writer::Writer;

pub struct AppInner {
    pub writer: Writer,
    pub views: Views,
    /// The account of every token, a cache of the store's `tokens` table: filled at start,
    /// on creation and on a miss (read through, so a token another process made works), and
    /// emptied of a token when it is revoked. With SQLite one process owns the file, so the
    /// cache is exact; a shared store must read through on every request (see `authenticate`).
    pub tokens: RwLock<HashMap<TokenHash, String>>,
    /// When each expiring token expires (tokens without an entry never do).
    pub token_expiry: RwLock<HashMap<TokenHash, chrono::DateTime<chrono::Utc>>>,
    /// When each token was last used, since the last save (the scheduler saves them once a
    /// minute: a write per request would halve the charge rate).
    pub token_used: Mutex<HashMap<TokenHash, chrono::DateTime<chrono::Utc>>>,
    pub admin: TokenHash,
    pub readers: ReadPool,
    /// The ledger is in a database other processes share (PostgreSQL): nothing read from
    /// it may be kept (accounts, tokens), since another process may change it.
    pub shared: bool,
    /// On a shared ledger, whether this process is the one that runs the reconciler now
    /// (None: one process, it always does).
    pub reconciler_lease: Option<store::postgres::Lease>,
    pub clock: Clock,
    pub catalog: Arc<Catalog>,
    pub ids: IdGen,
    pub events: broadcast::Sender<Arc<Event>>,
    pub gateway: Arc<dyn PaymentGateway>,
    pub rate: RateLimiter,
    /// One driver per payment intent at a time in this process (billing/machine.rs).
    pub billing_turns: crate::billing::machine::Turns,
    /// Open event streams per token (api.md: at most 8).
    pub streams: crate::events::StreamSlots,
    /// Turns true when the server is stopping: event streams end so the stop can finish.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

pub type App = Arc<AppInner>;

impl AppInner {
    /// The account a token belongs to, if it exists and has not expired; notes its use.
    /// `Err` when the store could not be asked (a shared database failing over): the
    /// request is answered 503, never 401, so a client does not drop a good token.
    pub async fn authenticate(
        self: &Arc<Self>,
        token: &TokenHash,
    ) -> Result<Option<String>, ApiError> {
        let cached = match self.shared {
            true => None,
            false => {
                let map = self.tokens.read().unwrap_or_else(|p| p.into_inner());
                map.get(token).cloned()
            }
        };
        let account = match cached {
            Some(a) => a,
            None => {
                let hash = *token;
                let Some(stored) = self.read(move |c| store::token_by_hash(c, &hash)).await? else {
                    return Ok(None);
                };
                if let Some(at) = stored.expires_at {
                    if self.shared && at <= self.clock.now() {
                        return Ok(None);
                    }
                    self.token_expiry
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(*token, at);
                }
                if self.shared {
                    self.note_use(token);
                    return Ok(Some(stored.account));
                }
                self.tokens
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(*token, stored.account.clone());
                stored.account
            }
        };
        let now = self.clock.now();
        let expired = self
            .token_expiry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .is_some_and(|at| *at <= now);
        if expired {
            return Ok(None);
        }
        self.note_use(token);
        Ok(Some(account))
    }

    pub(crate) fn note_use(&self, token: &TokenHash) {
        let now = self.clock.now();
        self.token_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*token, now);
    }

    /// An account as last committed: from the writer's published snapshots (SQLite), or
    /// read from the shared database.
    pub async fn view(self: &Arc<Self>, id: &str) -> Result<Option<Arc<AccountView>>, ApiError> {
        if !self.shared {
            return Ok(self.views.get(id));
        }
        let id = id.to_owned();
        let stored = self.read(move |c| store::account_state(c, &id)).await?;
        Ok(stored.map(|a| {
            Arc::new(AccountView {
                email: a.email,
                state: a.state,
            })
        }))
    }

    /// Forgets a revoked token at once (the row is already gone from the store).
    pub fn forget_token(&self, token: &TokenHash) {
        self.tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
        self.token_expiry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
        self.token_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    /// Runs a read on a pooled read-only connection, off the async threads.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(Db<'_>) -> store::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = app.readers.take()?;
            let result = f(conn.db());
            // A connection that failed is not kept (it may be to a primary that is gone).
            match (&result, &conn) {
                (Err(_), ReadConn::Pg(_)) => {
                    app.readers.discard();
                    drop(conn);
                }
                (Err(_), ReadConn::Lite(_)) => drop(conn),
                (Ok(_), _) => app.readers.give_back(conn),
            }
            result.map_err(ApiError::from)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("read task: {e}")))?
    }
}

/// A few read-only connections; WAL lets them read while the writer commits. On
/// PostgreSQL, connections of their own (each statement reads the latest commit), at most
/// `MAX_OPEN_PG` open at once: a read waits for one rather than open a database backend per
/// request under load.
pub struct ReadPool {
    source: ReadSource,
    state: Mutex<PoolState>,
    freed: std::sync::Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<ReadConn>,
    /// PostgreSQL connections open, idle or lent.
    open: usize,
}

const MAX_IDLE_SQLITE: usize = 8;
const MAX_OPEN_PG: usize = 32;
/// A read that waits longer for a connection is answered 503.
const WAIT_FOR_CONNECTION: std::time::Duration = std::time::Duration::from_secs(5);

pub enum ReadSource {
    Sqlite(PathBuf),
    Postgres(String),
}

pub enum ReadConn {
    Lite(Connection),
    Pg(Box<PgSession>),
}

impl ReadConn {
    pub fn db(&self) -> Db<'_> {
        match self {
            ReadConn::Lite(c) => Db::Lite(c),
            ReadConn::Pg(s) => Db::Pg(s),
        }
    }
}

impl Drop for ReadPool {
    /// The PostgreSQL client runs a runtime of its own, which may not be dropped on an
    /// async thread (where the app is dropped when the server stops): its connections are
    /// closed on a thread of their own.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()).idle);
        if idle.iter().any(|c| matches!(c, ReadConn::Pg(_))) {
            let _ = std::thread::Builder::new()
                .name("close-readers".into())
                .spawn(move || drop(idle));
        }
    }
}

impl ReadPool {
    pub fn new(source: ReadSource) -> Self {
        ReadPool {
            source,
            state: Mutex::new(PoolState::default()),
            freed: std::sync::Condvar::new(),
        }
    }

    fn take(&self) -> Result<ReadConn, ApiError> {
        let url = match &self.source {
            ReadSource::Sqlite(path) => {
                let pooled = self.lock().idle.pop();
                return match pooled {
                    Some(c) => Ok(c),
                    None => Ok(ReadConn::Lite(store::open_reader(path)?)),
                };
            }
            ReadSource::Postgres(url) => url,
        };
        let deadline = std::time::Instant::now() + WAIT_FOR_CONNECTION;
        let mut state = self.lock();
        loop {
            if let Some(c) = state.idle.pop() {
                return Ok(c);
            }
            if state.open < MAX_OPEN_PG {
                state.open += 1;
                drop(state);
                return match PgSession::connect(url) {
                    Ok(s) => Ok(ReadConn::Pg(Box::new(s))),
                    Err(e) => {
                        self.discard();
                        Err(e.into())
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(ApiError::Unavailable);
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn give_back(&self, conn: ReadConn) {
        let mut state = self.lock();
        if matches!(conn, ReadConn::Pg(_)) || state.idle.len() < MAX_IDLE_SQLITE {
            state.idle.push(conn);
        }
        self.freed.notify_one();
    }

    /// A lent connection that failed is closed, not given back (it may be to a primary
    /// that is gone); its place is free for a new one.
    fn discard(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        self.freed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
