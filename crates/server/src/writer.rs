//! The single writer: one thread owns every account's state and the SQLite write
//! connection. Requests arrive as jobs; the writer drains a batch, runs each job inside one
//! transaction, commits, and only then answers (group commit). One fsync/commit serves many
//! requests, and no two requests ever race on an account: auto-refill, holds and the
//! never-negative rule need no locks.
//!
//! Each job runs inside a savepoint. A job that fails (a refused request, or an error in
//! SQL) is undone alone: its savepoint is rolled back and the accounts it touched are put
//! back as they were before it, so the rest of the batch commits. If the transaction itself
//! is lost or the commit fails, the whole batch is rolled back, the in-memory state is
//! reloaded from the database, and every request of the batch is answered "unavailable":
//! nothing unacknowledged is half-applied.
//!
//! A job marked durable (a record of money: billing/) makes its whole batch commit with
//! `synchronous=FULL`, so it is fsynced before anyone hears of it, whatever `--durability`
//! says for usage charges.
//!
//! On PostgreSQL (`start_shared`) no process may hold state another could contradict, so
//! there is no memory of accounts: a pool of threads, each with its own connection, runs
//! each job in a transaction of its own, and the job reads the accounts it touches from the
//! database on first use, locking their rows (`SELECT … FOR UPDATE`) until it commits. Two
//! requests on one account, in one process or two, are serialised by that lock; requests
//! on different accounts run in parallel. A job that reads an account's other rows (its
//! intents, its idempotency records) to decide what to do takes the account first
//! (`ctx.account`), so that it reads what the previous holder of the lock committed. The same jobs and the same ledger crate run on
//! both; only where an account comes from differs (`Ctx::load`). A committed change is
//! announced to the other processes with `pg_notify` after it commits
//! (events.rs, `listen_shared`).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use creditbar_ledger::{Account, Catalog, Command, Reply};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::billing::intent;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::store::{self, Db, Durability, PgSession};
use crate::view::Views;

/// Largest batch committed at once; bounds the latency one commit adds.
const MAX_BATCH: usize = 2048;

/// PostgreSQL: how many due accounts one scheduler transaction claims (the rest wait for
/// the next tick, or another process).
const DUE_PER_TICK: i64 = 500;

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
    pub fn load(conn: &Connection) -> store::Result<Memory> {
        let accounts = store::load_accounts(Db::Lite(conn))?
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
/// A request's work; returns how to answer it after the commit, and whether it succeeded
/// (a failed job is undone).
type Work = Box<dyn FnOnce(&mut Ctx<'_>) -> (AfterCommit, bool) + Send>;

struct Job {
    work: Work,
    /// A record of money: its batch is fsynced before it is acknowledged.
    durable: bool,
}

/// What a job sees: the open transaction, the accounts, the batch's instant.
pub struct Ctx<'a> {
    pub tx: Db<'a>,
    pub memory: &'a mut Memory,
    /// PostgreSQL: `memory` starts empty and holds the accounts this transaction has
    /// locked (see the module's doc).
    shared: bool,
    pub catalog: &'a Catalog,
    pub now: DateTime<Utc>,
    touched: Vec<String>,
    /// Payment intents recorded by this batch, to be driven once it is durable.
    intents: Vec<(String, String)>,
    notices: Vec<(String, creditbar_ledger::Notice)>,
    after_commit: Vec<AfterCommit>,
    /// The accounts the current job changed, as they were before it (None: the job
    /// created it), to put back if the job fails.
    undo: Vec<(String, Option<AccountRecord>)>,
    day: DayCache,
}

/// The batch's day in one timezone, computed once per batch (see `Ctx::local_day`).
type DayCache = Option<(chrono_tz::Tz, String)>;

impl Ctx<'_> {
    /// The batch's instant as a calendar day (YYYY-MM-DD) in `tz`; every charge of a batch
    /// asks for it, usually in the same timezone.
    pub fn local_day(&mut self, tz: chrono_tz::Tz) -> String {
        match &self.day {
            Some((cached, day)) if *cached == tz => day.clone(),
            _ => {
                let day = self.now.with_timezone(&tz).format("%Y-%m-%d").to_string();
                self.day = Some((tz, day.clone()));
                day
            }
        }
    }

    pub fn account(&mut self, id: &str) -> Result<&AccountRecord, ApiError> {
        self.load(id)?;
        self.memory
            .accounts
            .get(id)
            .ok_or(ApiError::NotFound("account"))
    }

    /// On a shared database, reads the account and locks its row for the rest of the
    /// transaction, the first time the job touches it. (SQLite: every account is in memory.)
    fn load(&mut self, id: &str) -> Result<(), ApiError> {
        if self.shared && !self.memory.accounts.contains_key(id) {
            if let Some(a) = store::lock_account(self.tx, id)? {
                self.memory.accounts.insert(
                    id.to_owned(),
                    AccountRecord {
                        email: a.email,
                        state: a.state,
                    },
                );
            }
        }
        Ok(())
    }

    /// Applies a ledger command to an account and stages everything its step produced.
    pub fn apply(&mut self, account: &str, command: Command) -> Result<Reply, ApiError> {
        self.load(account)?;
        let record = self
            .memory
            .accounts
            .get_mut(account)
            .ok_or(ApiError::NotFound("account"))?;
        if !self.undo.iter().any(|(id, _)| id == account) {
            let before = AccountRecord {
                email: record.email.clone(),
                state: record.state.clone(),
            };
            self.undo.push((account.to_owned(), Some(before)));
        }
        let step = record.state.apply(self.catalog, command, self.now);
        store::insert_lots(self.tx, account, &step.new_lots)?;
        store::insert_entries(self.tx, account, &step.entries)?;
        store::insert_notices(self.tx, account, &step.notices)?;
        store::upsert_holds(self.tx, account, &step.holds)?;
        self.touch(account);
        for n in step.notices {
            self.notices.push((account.to_owned(), n));
        }
        // The ledger asked for money (a refill, a plan charge): the payment intent is
        // recorded in the same transaction as the decision, so neither exists without the
        // other, and it is driven after the commit (billing/machine.rs).
        for e in step.effects {
            let id = intent::record_effect(self.tx, self.catalog, account, e, self.now)?;
            self.intents.push((account.to_owned(), id));
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
        if !self.undo.iter().any(|(a, _)| *a == id) {
            let before = self.memory.accounts.get(&id).map(|r| AccountRecord {
                email: r.email.clone(),
                state: r.state.clone(),
            });
            self.undo.push((id.clone(), before));
        }
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
        // The account first, so the record read next is what its last holder committed.
        self.load(account)?;
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

    /// Advances every account whose next event is due. An account the ledger cannot
    /// advance is logged and skipped, so it does not hold back the others (what its step
    /// produced before the error is recorded, as in memory); an error in storage fails the
    /// job, which is then undone as a whole.
    pub fn advance_due(&mut self) -> Result<(), ApiError> {
        let now = self.now;
        if self.shared {
            // Claims due accounts no other process is working on (SKIP LOCKED): several
            // processes share the work without waiting on each other.
            for a in store::lock_due_accounts(self.tx, now, DUE_PER_TICK)? {
                self.memory.accounts.insert(
                    a.state.id.clone(),
                    AccountRecord {
                        email: a.email,
                        state: a.state,
                    },
                );
            }
        }
        let due: Vec<String> = self
            .memory
            .accounts
            .iter()
            .filter(|(_, r)| r.state.next_due() <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            match self.apply(&id, Command::Advance) {
                Ok(_) => {}
                Err(e @ (ApiError::Internal(_) | ApiError::Unavailable)) => return Err(e),
                Err(e) => tracing::warn!(account = %id, error = %e, "cannot advance the account"),
            }
        }
        Ok(())
    }
}

/// What the writer hands to the rest of the server after each commit.
pub trait Publish: Send + 'static {
    fn notice(&self, account: &str, notice: &creditbar_ledger::Notice);
    fn balance(&self, account: &Account);
    /// A payment intent is recorded and durable enough to drive.
    fn intent(&self, account: &str, intent: &str);
}

#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Job>,
}

/// What a shared-database writer needs to reach PostgreSQL.
pub struct SharedConfig {
    pub url: String,
    /// Connections, one per thread: how many transactions this process runs at once.
    pub connections: usize,
    /// Names this process in its `pg_notify` payloads, so it skips its own.
    pub process_tag: String,
}

impl Writer {
    /// Starts the writer thread over `conn` with `memory` already loaded.
    pub fn start(
        conn: Connection,
        durability: Durability,
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
            .spawn(move || {
                run(
                    conn, durability, memory, catalog, clock, views, publish, receiver,
                )
            });
        if let Err(e) = spawn {
            tracing::error!(error = %e, "could not start the writer thread");
        }
        Writer { sender }
    }

    /// Starts the pool of writer threads over a shared PostgreSQL database.
    pub fn start_shared(
        config: SharedConfig,
        catalog: Arc<Catalog>,
        clock: Clock,
        publish: impl Publish + Sync,
    ) -> Writer {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let publish = Arc::new(publish);
        let url = Arc::new(config.url);
        let tag = Arc::new(config.process_tag);
        let announcer = crate::events::start_announcer(url.as_ref().clone());
        for n in 0..config.connections.max(1) {
            let (receiver, publish, catalog, clock, url, tag, announcer) = (
                receiver.clone(),
                publish.clone(),
                catalog.clone(),
                clock.clone(),
                url.clone(),
                tag.clone(),
                announcer.clone(),
            );
            let spawn = std::thread::Builder::new()
                .name(format!("ledger-writer-{n}"))
                .spawn(move || {
                    run_shared(
                        &url, &tag, &catalog, &clock, &*publish, &receiver, &announcer,
                    )
                });
            if let Err(e) = spawn {
                tracing::error!(error = %e, "could not start a writer thread");
            }
        }
        Writer { sender }
    }

    /// Runs `f` in the next batch and answers once the batch is committed.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.submit(f, false).await
    }

    /// As `run`, and the batch is fsynced before it answers (records of money).
    pub async fn run_durable<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.submit(f, true).await
    }

    async fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, ApiError> + Send + 'static,
        durable: bool,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let work: Work = Box::new(move |ctx| {
            let result = f(ctx);
            let ok = result.is_ok();
            let reply: AfterCommit = Box::new(move || {
                let _ = tx.send(result);
            });
            (reply, ok)
        });
        self.sender
            .send(Job { work, durable })
            .map_err(|_| ApiError::Unavailable)?;
        rx.await.map_err(|_| ApiError::Unavailable)?
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    mut conn: Connection,
    durability: Durability,
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
        crate::metrics::writer_batch(jobs.len());
        let now = clock.now();
        // SQLite refuses to change the safety level inside a transaction: it is chosen for
        // the whole batch before BEGIN.
        let full_sync = durability == Durability::Process && jobs.iter().any(|j| j.durable);
        let outcome = if full_sync {
            match conn.pragma_update(None, "synchronous", "FULL") {
                Ok(()) => {
                    let outcome = run_batch(&mut conn, &mut memory, &catalog, now, jobs);
                    if let Err(e) = conn.pragma_update(None, "synchronous", "NORMAL") {
                        tracing::warn!(error = %e, "cannot restore synchronous=NORMAL");
                    }
                    outcome
                }
                // Not acknowledged as durable if it could not be made so.
                // Its jobs are dropped unanswered: each caller hears "unavailable".
                Err(e) => {
                    drop(jobs);
                    Err(format!("cannot fsync this batch: {e}"))
                }
            }
        } else {
            run_batch(&mut conn, &mut memory, &catalog, now, jobs)
        };
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
                for (account, id) in &done.intents {
                    publish.intent(account, id);
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

#[derive(Default)]
struct Done {
    touched: Vec<String>,
    notices: Vec<(String, creditbar_ledger::Notice)>,
    intents: Vec<(String, String)>,
    after_commit: Vec<AfterCommit>,
}

fn run_batch(
    conn: &mut Connection,
    memory: &mut Memory,
    catalog: &Catalog,
    now: DateTime<Utc>,
    jobs: Vec<Job>,
) -> Result<Done, String> {
    // IMMEDIATE: the write lock is taken at BEGIN, so a batch can never find, at its first
    // write, that another connection wrote since it first read (SQLite's snapshot conflict,
    // which no busy wait resolves). The writer is the only writer of this file today.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let mut ctx = Ctx {
        tx: Db::Lite(&tx),
        shared: false,
        memory,
        catalog,
        now,
        touched: Vec::new(),
        intents: Vec::new(),
        notices: Vec::new(),
        after_commit: Vec::new(),
        undo: Vec::new(),
        day: None,
    };
    let mut replies = Vec::with_capacity(jobs.len());
    for job in jobs {
        store::job_begin(ctx.tx).map_err(|e| e.to_string())?;
        let marks = (
            ctx.touched.len(),
            ctx.intents.len(),
            ctx.notices.len(),
            ctx.after_commit.len(),
        );
        let (reply, ok) = (job.work)(&mut ctx);
        replies.push(reply);
        if ok {
            store::job_end(ctx.tx).map_err(|e| e.to_string())?;
            // The durable record of ids is in this transaction (the usage rows and the
            // idempotency table), which later jobs read; the ledger's in-memory set of ids
            // is not needed past the job, and keeping it small keeps `undo` cheap.
            for (id, _) in ctx.undo.drain(..) {
                if let Some(record) = ctx.memory.accounts.get_mut(&id) {
                    record.state.forget_applied_ids();
                }
            }
        } else {
            // Undo the job alone. If SQLite lost the transaction (it rolls back on its own
            // after some I/O errors), the whole batch fails below.
            store::job_undo(ctx.tx).map_err(|e| e.to_string())?;
            if tx.is_autocommit() {
                return Err("the transaction was rolled back".into());
            }
            for (id, before) in ctx.undo.drain(..).rev() {
                match before {
                    Some(record) => ctx.memory.accounts.insert(id, record),
                    None => ctx.memory.accounts.remove(&id),
                };
            }
            ctx.touched.truncate(marks.0);
            ctx.intents.truncate(marks.1);
            ctx.notices.truncate(marks.2);
            ctx.after_commit.truncate(marks.3);
        }
    }
    let Ctx {
        touched,
        intents,
        notices,
        mut after_commit,
        memory,
        ..
    } = ctx;
    for id in &touched {
        if let Some(record) = memory.accounts.get(id) {
            store::save_state(Db::Lite(&tx), &record.state).map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    // Replies go after the views are published (see `run`), so a client that reads its
    // balance right after a charge sees the charge.
    after_commit.extend(replies);
    Ok(Done {
        touched,
        notices,
        intents,
        after_commit,
    })
}

/// One writer thread over PostgreSQL: takes one job at a time from the shared queue and
/// runs it in a transaction of its own (PostgreSQL commits concurrent transactions together,
/// so no batching is needed for throughput, and a job never waits for another account's).
fn run_shared(
    url: &str,
    tag: &str,
    catalog: &Catalog,
    clock: &Clock,
    publish: &dyn Publish,
    receiver: &Mutex<mpsc::Receiver<Job>>,
    announcer: &mpsc::Sender<String>,
) {
    let mut session: Option<PgSession> = None;
    loop {
        let job = {
            let queue = receiver.lock().unwrap_or_else(|p| p.into_inner());
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        // A lost connection (a failover, a restart of PostgreSQL) is opened again for the
        // next job; with a multi-host URL and target_session_attrs=read-write that finds
        // the new primary. A job that finds no database is dropped: its caller hears
        // "unavailable", and nothing of it was applied.
        if session.as_ref().is_none_or(|s| s.is_closed()) {
            session = match PgSession::connect(url) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the database");
                    drop(job);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            };
        }
        let Some(db) = session.as_ref() else {
            continue;
        };
        crate::metrics::writer_batch(1);
        match run_shared_job(db, tag, catalog, clock.now(), job) {
            Ok(done) => {
                for a in done.announcements {
                    let _ = announcer.send(a);
                }
                for (account, notice) in &done.notices {
                    publish.notice(account, notice);
                }
                for state in &done.states {
                    publish.balance(state);
                }
                for f in done.after_commit {
                    f();
                }
                for (account, id) in &done.intents {
                    publish.intent(account, id);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "transaction rolled back");
                if e.is_transient() || db.is_closed() {
                    session = None;
                }
            }
        }
    }
}

/// What a committed shared-database job leaves to publish.
struct SharedDone {
    /// For the other processes (events::start_announcer).
    announcements: Vec<String>,
    notices: Vec<(String, creditbar_ledger::Notice)>,
    states: Vec<Account>,
    intents: Vec<(String, String)>,
    after_commit: Vec<AfterCommit>,
}

fn run_shared_job(
    session: &PgSession,
    tag: &str,
    catalog: &Catalog,
    now: DateTime<Utc>,
    job: Job,
) -> store::Result<SharedDone> {
    session.begin();
    let mut memory = Memory::default();
    let mut ctx = Ctx {
        tx: Db::Pg(session),
        shared: true,
        memory: &mut memory,
        catalog,
        now,
        touched: Vec::new(),
        intents: Vec::new(),
        notices: Vec::new(),
        after_commit: Vec::new(),
        undo: Vec::new(),
        day: None,
    };
    let (reply, ok) = (job.work)(&mut ctx);
    if !ok {
        // A refused request changes nothing; its answer goes out once the rollback is done.
        let rolled_back = session.rollback();
        reply();
        rolled_back?;
        return Ok(SharedDone {
            notices: Vec::new(),
            states: Vec::new(),
            intents: Vec::new(),
            after_commit: Vec::new(),
            announcements: Vec::new(),
        });
    }
    let Ctx {
        touched,
        intents,
        notices,
        mut after_commit,
        memory,
        ..
    } = ctx;
    let mut states = Vec::with_capacity(touched.len());
    let mut announcements = Vec::with_capacity(touched.len());
    let saved = (|| {
        for id in &touched {
            if let Some(record) = memory.accounts.get_mut(id) {
                record.state.forget_applied_ids();
                let seqs: Vec<u64> = notices
                    .iter()
                    .filter(|(a, _)| a == id)
                    .map(|(_, n)| n.seq)
                    .collect();
                announcements.push(format!(
                    "{tag} {id} {} {}",
                    seqs.iter().min().copied().unwrap_or(0),
                    seqs.iter().max().copied().unwrap_or(0)
                ));
                store::save_state(Db::Pg(session), &record.state)?;
                states.push(record.state.clone());
            }
        }
        session.commit()
    })();
    if let Err(e) = saved {
        // Unanswered: the caller hears "unavailable" (the reply is dropped).
        let _ = session.rollback();
        return Err(e);
    }
    after_commit.push(reply);
    Ok(SharedDone {
        notices,
        states,
        intents,
        after_commit,
        announcements,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use creditbar_ledger::{Usage, UsageKind, UsageStatus};

    fn job(
        f: impl FnOnce(&mut Ctx<'_>) -> Result<(), ApiError> + Send + 'static,
    ) -> (Job, std::sync::mpsc::Receiver<Result<(), ApiError>>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let work: Work = Box::new(move |ctx| {
            let result = f(ctx);
            let ok = result.is_ok();
            (Box::new(move || drop(tx.send(result))) as AfterCommit, ok)
        });
        (
            Job {
                work,
                durable: false,
            },
            rx,
        )
    }

    fn charge(id: &str) -> Command {
        Command::Charge {
            id: id.into(),
            usage: Usage {
                model: "lite".into(),
                kind: UsageKind::Chat,
                status: UsageStatus::Completed,
                input_tokens: 1000,
                cached_input_tokens: 0,
                output_tokens: 1000,
            },
        }
    }

    #[test]
    fn a_failed_job_is_undone_alone_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = store::open(&dir.path().join("db"), store::Durability::Process).unwrap();
        let mut memory = Memory::default();
        let catalog = Catalog::default();
        let now = Utc::now();

        let (open, _) = job(move |ctx| {
            let (state, step) =
                Account::open(ctx.catalog, "acc", "free", chrono_tz::UTC, ctx.now).unwrap();
            ctx.insert_account("a@example.com".into(), state, step)
        });
        run_batch(&mut conn, &mut memory, &catalog, now, vec![open]).unwrap();
        let opened = memory.accounts["acc"].state.ledger_balance();

        let (first, first_rx) = job(|ctx| ctx.apply("acc", charge("u1")).map(drop));
        // Charged in memory and in SQL, then failed: both must be undone.
        let (failed, failed_rx) = job(|ctx| {
            ctx.apply("acc", charge("u2"))?;
            Err(ApiError::Internal("storage failed after the charge".into()))
        });
        let (last, last_rx) = job(|ctx| ctx.apply("acc", charge("u3")).map(drop));
        let done = run_batch(
            &mut conn,
            &mut memory,
            &catalog,
            now,
            vec![first, failed, last],
        )
        .expect("the batch commits");
        for f in done.after_commit {
            f();
        }
        assert!(first_rx.recv().unwrap().is_ok());
        assert!(failed_rx.recv().unwrap().is_err());
        assert!(last_rx.recv().unwrap().is_ok());

        let cost = creditbar_ledger::price(
            &catalog,
            &match charge("x") {
                Command::Charge { usage, .. } => usage,
                _ => unreachable!(),
            },
        )
        .unwrap();
        let expected = opened.micros() - 2 * cost.micros();
        assert_eq!(
            memory.accounts["acc"].state.ledger_balance().micros(),
            expected
        );
        let refs: Vec<String> = conn
            .prepare("SELECT ref FROM ledger WHERE type = 'usage' ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(refs, ["u1", "u3"]);
        assert!(store::check(Db::Lite(&conn)).unwrap().is_empty());
        // What is in memory is what a restart would load.
        let reloaded = Memory::load(&conn).unwrap();
        assert_eq!(
            reloaded.accounts["acc"].state.ledger_balance().micros(),
            expected
        );
    }
}
