//! The single writer: one thread owns every account's state and the SQLite write
//! connection. Requests arrive as jobs; the writer drains a batch, runs each job inside one
//! transaction, commits, and only then answers (group commit). One fsync/commit serves many
//! requests, and no two requests ever race on an account: auto-refill, holds and the
//! never-negative rule need no locks.
//!
//! If a job fails in SQL or the commit fails, the whole batch is rolled back, the in-memory
//! state is reloaded from the database, and every request of the batch is answered
//! "unavailable": nothing unacknowledged is half-applied.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use creditbar_ledger::{Account, Catalog, Command, Effect, Reply};
use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::store;
use crate::view::Views;

/// Largest batch committed at once; bounds the latency one commit adds.
const MAX_BATCH: usize = 2048;

pub struct AccountRecord {
    pub email: String,
    pub state: Account,
}

/// What the writer holds in memory.
#[derive(Default)]
pub struct Memory {
    pub accounts: HashMap<String, AccountRecord>,
}

impl Memory {
    pub fn load(conn: &Connection) -> rusqlite::Result<Memory> {
        let accounts = store::load_accounts(conn)?
            .into_iter()
            .map(|a| {
                (
                    a.state.id.clone(),
                    AccountRecord {
                        email: a.email,
                        state: a.state,
                    },
                )
            })
            .collect();
        Ok(Memory { accounts })
    }
}

type AfterCommit = Box<dyn FnOnce() + Send>;
type Job = Box<dyn FnOnce(&mut Ctx<'_>) -> (AfterCommit, bool) + Send>;

/// What a job sees: the open transaction, the accounts, the batch's instant.
pub struct Ctx<'a> {
    pub tx: &'a Transaction<'a>,
    pub memory: &'a mut Memory,
    pub catalog: &'a Catalog,
    pub now: DateTime<Utc>,
    touched: Vec<String>,
    effects: Vec<(String, Effect)>,
    notices: Vec<(String, creditbar_ledger::Notice)>,
    after_commit: Vec<AfterCommit>,
}

impl Ctx<'_> {
    pub fn account(&self, id: &str) -> Result<&AccountRecord, ApiError> {
        self.memory
            .accounts
            .get(id)
            .ok_or(ApiError::NotFound("account"))
    }

    /// Applies a ledger command to an account and stages everything its step produced.
    pub fn apply(&mut self, account: &str, command: Command) -> Result<Reply, ApiError> {
        let record = self
            .memory
            .accounts
            .get_mut(account)
            .ok_or(ApiError::NotFound("account"))?;
        let step = record.state.apply(self.catalog, command, self.now);
        store::insert_lots(self.tx, account, &step.new_lots)?;
        store::insert_entries(self.tx, account, &step.entries)?;
        store::insert_notices(self.tx, account, &step.notices)?;
        store::upsert_holds(self.tx, account, &step.holds)?;
        self.touch(account);
        for n in step.notices {
            self.notices.push((account.to_owned(), n));
        }
        for e in step.effects {
            self.effects.push((account.to_owned(), e));
        }
        step.reply
            .unwrap_or(Ok(Reply::Advanced))
            .map_err(ApiError::from)
    }

    /// Stages a new account (already opened by the ledger) with what its opening produced.
    pub fn insert_account(
        &mut self,
        email: String,
        state: Account,
        step: creditbar_ledger::Step,
    ) -> Result<(), ApiError> {
        let id = state.id.clone();
        store::insert_account(self.tx, &email, &state)?;
        store::insert_lots(self.tx, &id, &step.new_lots)?;
        store::insert_entries(self.tx, &id, &step.entries)?;
        store::insert_notices(self.tx, &id, &step.notices)?;
        for n in step.notices {
            self.notices.push((id.clone(), n));
        }
        self.memory
            .accounts
            .insert(id.clone(), AccountRecord { email, state });
        self.touch(&id);
        Ok(())
    }

    pub fn touch(&mut self, account: &str) {
        if !self.touched.iter().any(|a| a == account) {
            self.touched.push(account.to_owned());
        }
    }

    /// Runs `f` after the batch is durable (e.g. publishing a new token).
    pub fn after_commit(&mut self, f: impl FnOnce() + Send + 'static) {
        self.after_commit.push(Box::new(f));
    }

    /// Runs `f` at most once per `(account, scope, key)`. A repeat with the same body hash
    /// gets the stored response; another body gets `IdempotencyConflict`. Only successes
    /// are stored: a refused request changes nothing, its key included, so the same request
    /// can succeed later (after a top-up, say).
    pub fn idempotent(
        &mut self,
        account: &str,
        scope: &str,
        key: &str,
        body_hash: &[u8],
        f: impl FnOnce(&mut Self) -> Result<(u16, serde_json::Value), ApiError>,
    ) -> Result<(u16, serde_json::Value), ApiError> {
        if let Some(stored) = store::idempotent_get(self.tx, account, scope, key)? {
            if stored.body_hash != body_hash {
                return Err(ApiError::IdempotencyConflict);
            }
            let body = serde_json::from_str(&stored.response)
                .map_err(|e| ApiError::Internal(format!("stored response: {e}")))?;
            return Ok((stored.status, body));
        }
        let (status, body) = f(self)?;
        store::idempotent_put(
            self.tx,
            account,
            scope,
            key,
            body_hash,
            status,
            &body.to_string(),
        )?;
        Ok((status, body))
    }

    /// Advances every account whose next event is due.
    pub fn advance_due(&mut self) -> Result<(), ApiError> {
        let now = self.now;
        let due: Vec<String> = self
            .memory
            .accounts
            .iter()
            .filter(|(_, r)| r.state.next_due() <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.apply(&id, Command::Advance)?;
        }
        Ok(())
    }
}

/// What the writer hands to the rest of the server after each commit.
pub trait Publish: Send + 'static {
    fn notice(&self, account: &str, notice: &creditbar_ledger::Notice);
    fn balance(&self, account: &Account);
    fn effect(&self, account: &str, effect: Effect);
}

#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread over `conn` with `memory` already loaded.
    pub fn start(
        conn: Connection,
        memory: Memory,
        catalog: Arc<Catalog>,
        clock: Clock,
        views: Views,
        publish: impl Publish,
    ) -> Writer {
        let (sender, receiver) = mpsc::channel::<Job>();
        for record in memory.accounts.values() {
            views.publish(&record.email, &record.state);
        }
        let spawn = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || run(conn, memory, catalog, clock, views, publish, receiver));
        if let Err(e) = spawn {
            tracing::error!(error = %e, "could not start the writer thread");
        }
        Writer { sender }
    }

    /// Runs `f` in the next batch and answers once the batch is committed.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
            let result = f(ctx);
            let poisoned = matches!(result, Err(ApiError::Internal(_)));
            let reply: AfterCommit = Box::new(move || {
                let _ = tx.send(result);
            });
            (reply, poisoned)
        });
        self.sender.send(job).map_err(|_| ApiError::Unavailable)?;
        rx.await.map_err(|_| ApiError::Unavailable)?
    }
}

fn run(
    mut conn: Connection,
    mut memory: Memory,
    catalog: Arc<Catalog>,
    clock: Clock,
    views: Views,
    publish: impl Publish,
    receiver: mpsc::Receiver<Job>,
) {
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let now = clock.now();
        let outcome = run_batch(&mut conn, &mut memory, &catalog, now, jobs);
        match outcome {
            Ok(done) => {
                for (account, notice) in &done.notices {
                    publish.notice(account, notice);
                }
                for id in &done.touched {
                    if let Some(record) = memory.accounts.get_mut(id) {
                        record.state.forget_applied_ids();
                        views.publish(&record.email, &record.state);
                        publish.balance(&record.state);
                    }
                }
                for f in done.after_commit {
                    f();
                }
                for (account, effect) in done.effects {
                    publish.effect(&account, effect);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "batch rolled back; reloading state from the database");
                match Memory::load(&conn) {
                    Ok(m) => memory = m,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot reload state; the writer stops");
                        return;
                    }
                }
            }
        }
    }
}

struct Done {
    touched: Vec<String>,
    notices: Vec<(String, creditbar_ledger::Notice)>,
    effects: Vec<(String, Effect)>,
    after_commit: Vec<AfterCommit>,
}

fn run_batch(
    conn: &mut Connection,
    memory: &mut Memory,
    catalog: &Catalog,
    now: DateTime<Utc>,
    jobs: Vec<Job>,
) -> Result<Done, String> {
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut ctx = Ctx {
        tx: &tx,
        memory,
        catalog,
        now,
        touched: Vec::new(),
        effects: Vec::new(),
        notices: Vec::new(),
        after_commit: Vec::new(),
    };
    let mut replies = Vec::with_capacity(jobs.len());
    let mut poisoned = false;
    for job in jobs {
        let (reply, p) = job(&mut ctx);
        replies.push(reply);
        poisoned |= p;
    }
    let Ctx {
        touched,
        effects,
        notices,
        mut after_commit,
        memory,
        ..
    } = ctx;
    if poisoned {
        return Err("a request failed in storage".into());
    }
    for id in &touched {
        if let Some(record) = memory.accounts.get(id) {
            store::save_state(&tx, &record.state).map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    // Replies go after the views are published (see `run`), so a client that reads its
    // balance right after a charge sees the charge.
    after_commit.extend(replies);
    Ok(Done {
        touched,
        notices,
        effects,
        after_commit,
    })
}
