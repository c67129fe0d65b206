//! All SQL lives here: the schema, its migrations, and every query. The writer and the
//! read handlers call these functions; nothing else in the server writes SQL. A PostgreSQL
//! backend replaces this module (same functions over another connection type).
//!
//! Ledger entries are immutable (triggers refuse UPDATE and DELETE). The per-account state
//! blob (`accounts.state`) is a projection of the ledger, verified by `check`. Moving the
//! WAL into the database file is [`checkpoint`]'s, on a thread of its own.

use chrono::{DateTime, Utc};
use creditbar_ledger::{Account, Entry, Hold, Lot, Notice};
use rusqlite::Connection;

pub use self::db::{params, Db, Error, PgSession, Result};
use rusqlite_migration::{Migrations, M};

use crate::secret::TokenHash;

pub mod checkpoint;
pub mod db;
pub mod gateway;
pub mod postgres;
pub mod shared_limits;

pub use gateway::{
    gateway_charge_count, gateway_get, gateway_mode, gateway_put, gateway_records, open_gateway,
    GatewayRow,
};

const MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE tokens (
    hash BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE grants (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    bucket TEXT NOT NULL,
    amount INTEGER NOT NULL,
    effective_at TEXT NOT NULL,
    expires_at TEXT,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;
CREATE TABLE ledger (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    bucket TEXT NOT NULL,
    amount INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    grant_id TEXT NOT NULL,
    ref TEXT NOT NULL,
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TABLE notices (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;
CREATE TABLE usage_events (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    local_day TEXT NOT NULL,
    project TEXT NOT NULL,
    thread TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    charged INTEGER NOT NULL,
    hold_id TEXT,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;
CREATE INDEX usage_by_time ON usage_events (account_id, at);
CREATE TABLE holds (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;
CREATE TABLE payment_methods (
    token_hash BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL,
    behavior TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE purchases (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    pack TEXT,
    credits INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    UNIQUE (account_id, id)
);
CREATE TABLE auto_refill_methods (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    payment_token_hash BLOB NOT NULL
);
CREATE TABLE idempotency (
    account_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash BLOB NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    PRIMARY KEY (account_id, scope, key)
) WITHOUT ROWID;
CREATE TABLE usage_reviews (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (account_id, id)
);
"#,
    ),
    // A usage charge keeps its own idempotency record, the fingerprint of its request and
    // the response it got, on its usage_events row: one lookup answers "seen this id?" and
    // one row records the charge, where the generic `idempotency` table took a lookup and
    // an insert more. Rows from before this migration have NULLs there; their records stay
    // in `idempotency`.
    //
    // And the rows are kept in insertion order (a rowid table) with a unique index on
    // (account_id, id), instead of being the (account_id, id) B-tree themselves. Usage ids
    // come in any order, so each charge lands on a random page of that B-tree, and SQLite
    // writes whole pages to the WAL: with the full rows in it, a charge split pages often
    // and dirtied a page of 10-odd rows; now it appends its row to the table's last page
    // and adds a small entry to the index.
    M::up(
        r#"
CREATE TABLE usage_events_v2 (
    n INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    local_day TEXT NOT NULL,
    project TEXT NOT NULL,
    thread TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    charged INTEGER NOT NULL,
    hold_id TEXT,
    body_hash BLOB,
    response TEXT
);
INSERT INTO usage_events_v2 (account_id, id, at, local_day, project, thread, model, kind,
        status, input_tokens, cached_input_tokens, output_tokens, charged, hold_id)
    SELECT account_id, id, at, local_day, project, thread, model, kind, status,
        input_tokens, cached_input_tokens, output_tokens, charged, hold_id
    FROM usage_events ORDER BY at, account_id, id;
DROP TABLE usage_events;
ALTER TABLE usage_events_v2 RENAME TO usage_events;
CREATE UNIQUE INDEX usage_by_id ON usage_events (account_id, id);
CREATE INDEX usage_by_time ON usage_events (account_id, at);
"#,
    ),
    // Every movement of money is a payment intent (billing/): a purchases row recorded
    // `pending` before the card is touched and completed afterwards. The row carries its
    // own idempotency record (the client's key and the request's fingerprint), bound only
    // while the intent is pending or succeeded: a failed intent frees its key, as a refused
    // request always did. Records of manual purchases kept in `idempotency` move onto their
    // rows. `declined` refills become `failed`, the one word for "nothing was charged".
    M::up(
        r#"
ALTER TABLE purchases ADD COLUMN kind TEXT NOT NULL DEFAULT 'charge';
ALTER TABLE purchases ADD COLUMN completed_at TEXT;
ALTER TABLE purchases ADD COLUMN idem_key TEXT;
ALTER TABLE purchases ADD COLUMN body_hash BLOB;
ALTER TABLE purchases ADD COLUMN card BLOB;
ALTER TABLE purchases ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';
UPDATE purchases SET status = 'failed' WHERE status = 'declined';
UPDATE purchases SET completed_at = created_at;
UPDATE purchases SET (idem_key, body_hash) = (
    SELECT i.key, i.body_hash FROM idempotency i
    WHERE i.account_id = purchases.account_id AND i.scope = 'purchase'
      AND json_extract(i.response, '$.id') = purchases.id)
WHERE source = 'manual';
DELETE FROM idempotency WHERE scope = 'purchase';
CREATE UNIQUE INDEX purchases_by_key ON purchases (account_id, idem_key)
    WHERE idem_key IS NOT NULL AND status <> 'failed';
CREATE INDEX purchases_pending ON purchases (account_id, n) WHERE status = 'pending';
CREATE INDEX purchases_by_id ON purchases (id);
CREATE TABLE plan_methods (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    payment_token_hash BLOB NOT NULL
);
"#,
    ),
    // Tokens get an id (to list and revoke them without their secret), an expiry, and when
    // they were last used. Tokens made before get a random id.
    M::up(
        r#"
ALTER TABLE tokens ADD COLUMN id TEXT;
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
ALTER TABLE tokens ADD COLUMN last_used_at TEXT;
UPDATE tokens SET id = 'tok_' || lower(hex(randomblob(8))) WHERE id IS NULL;
CREATE UNIQUE INDEX tokens_by_id ON tokens (id);
CREATE INDEX tokens_by_account ON tokens (account_id);
"#,
    ),
    // When each account next has something due, kept beside its state so a shared
    // database's schedulers can find due accounts by index (SQLite's writer scans memory,
    // and keeps the column only so both schemas and their queries stay one).
    M::up("ALTER TABLE accounts ADD COLUMN next_due TEXT;"),
];

/// How much a commit must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// WAL + synchronous=NORMAL: a commit reached the OS before it is acknowledged, so it
    /// survives a crash of the process (kill -9); the last commits may be lost on power loss.
    Process,
    /// WAL + synchronous=FULL: every commit is fsynced before it is acknowledged; survives
    /// power loss.
    Power,
}

pub fn open(path: &std::path::Path, durability: Durability) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every statement the writer runs stays prepared (rusqlite keeps 16 by default; a
    // charge alone uses about a dozen, and the other routes' would push them out).
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Migrations::from_slice(MIGRATIONS)
        .to_latest(&mut conn)
        .map_err(|e| Error::Migration(e.to_string()))?;
    Ok(conn)
}

pub fn open_reader(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

pub fn ts(t: DateTime<Utc>) -> String {
    // The writer formats the same instant (its batch's) for every ledger entry and usage
    // row of a batch: remember the last one formatted on this thread.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(DateTime<Utc>, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((at, s)) if *at == t => s.clone(),
            _ => {
                let s = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                *last = Some((t, s.clone()));
                s
            }
        }
    })
}

pub fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::corrupt("instant", e))
}

fn json_err(e: serde_json::Error) -> Error {
    Error::corrupt("JSON", e)
}

// ---------------------------------------------------------------- accounts and tokens

pub struct StoredAccount {
    pub email: String,
    pub state: Account,
}

pub fn load_accounts(conn: Db<'_>) -> Result<Vec<StoredAccount>> {
    conn.prepare_cached("SELECT email, state FROM accounts ORDER BY id")?
        .query_map(params![], stored_account)?
        .collect()
}

pub fn load_tokens(conn: Db<'_>) -> Result<Vec<(TokenHash, StoredToken)>> {
    let mut stmt = conn.prepare_cached("SELECT hash, account_id, expires_at FROM tokens")?;
    let rows = stmt.query_map(params![], |r| {
        let hash: Vec<u8> = r.get(0)?;
        let account: String = r.get(1)?;
        let expires: Option<String> = r.get(2)?;
        Ok((hash, account, expires))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (hash, account, expires) = row?;
        if let Ok(h) = <[u8; 32]>::try_from(hash.as_slice()) {
            let expires_at = expires.as_deref().map(parse_ts).transpose()?;
            out.push((
                TokenHash(h),
                StoredToken {
                    account,
                    expires_at,
                },
            ));
        }
    }
    Ok(out)
}

pub fn insert_account(tx: Db<'_>, email: &str, state: &Account) -> Result<()> {
    let json = serde_json::to_string(state).map_err(json_err)?;
    tx.prepare_cached(
        "INSERT INTO accounts (id, email, created_at, state, next_due) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        state.id,
        email,
        ts(state.created_at),
        json,
        ts(state.next_due())
    ])?;
    Ok(())
}

fn stored_account(r: &db::Row<'_>) -> Result<StoredAccount> {
    let email: String = r.get(0)?;
    let state: String = r.get(1)?;
    let state: Account =
        serde_json::from_str(&state).map_err(|e| Error::corrupt("account state", e))?;
    Ok(StoredAccount { email, state })
}

/// Reads an account and locks its row until the transaction ends (PostgreSQL; the writer
/// of a shared database, see writer.rs).
pub fn lock_account(tx: Db<'_>, id: &str) -> Result<Option<StoredAccount>> {
    tx.prepare_cached("SELECT email, state FROM accounts WHERE id = ?1 FOR UPDATE")?
        .query_opt(params![id], stored_account)
}

/// Reads and locks up to `limit` accounts with something due at `now`, skipping those
/// another transaction holds (PostgreSQL: the scheduler of each process claims its own).
pub fn lock_due_accounts(tx: Db<'_>, now: DateTime<Utc>, limit: i64) -> Result<Vec<StoredAccount>> {
    tx.prepare_cached(
        "SELECT email, state FROM accounts WHERE next_due <= ?1
         ORDER BY next_due LIMIT ?2 FOR UPDATE SKIP LOCKED",
    )?
    .query_map(params![ts(now), limit], stored_account)?
    .collect()
}

/// An account as last committed, without locking it (readers of a shared database).
pub fn account_state(conn: Db<'_>, id: &str) -> Result<Option<StoredAccount>> {
    conn.prepare_cached("SELECT email, state FROM accounts WHERE id = ?1")?
        .query_opt(params![id], stored_account)
}

// ---------------------------------------------------------------- one job of a batch

/// Each job of the writer's batch runs inside a savepoint, so a job that fails (in the
/// ledger or in storage) is undone alone and the rest of the batch still commits.
pub fn job_begin(tx: Db<'_>) -> Result<()> {
    tx.prepare_cached("SAVEPOINT job")?.execute(params![])?;
    Ok(())
}

pub fn job_end(tx: Db<'_>) -> Result<()> {
    tx.prepare_cached("RELEASE job")?.execute(params![])?;
    Ok(())
}

pub fn job_undo(tx: Db<'_>) -> Result<()> {
    tx.prepare_cached("ROLLBACK TO job")?.execute(params![])?;
    tx.prepare_cached("RELEASE job")?.execute(params![])?;
    Ok(())
}

/// Saves an account's state and when it is next due.
pub fn save_state(tx: Db<'_>, state: &Account) -> Result<()> {
    let json = serde_json::to_string(state).map_err(json_err)?;
    let due = ts(state.next_due());
    tx.prepare_cached("UPDATE accounts SET state = ?2, next_due = ?3 WHERE id = ?1")?
        .execute_deferred(params![state.id, json, due])?;
    Ok(())
}

/// Announces committed changes to every process listening (one `pg_notify`, several
/// announcements a line each; events.rs).
pub fn announce(conn: Db<'_>, payload: &str) -> Result<()> {
    conn.prepare_cached("SELECT pg_notify('creditbar_events', ?1)")?
        .query_row(params![payload], |_| Ok(()))
}

pub fn insert_token(tx: Db<'_>, hash: &TokenHash, account: &str, now: DateTime<Utc>) -> Result<()> {
    insert_token_expiring(tx, hash, account, now, None).map(drop)
}

// ---------------------------------------------------------------- what a step produced

pub fn insert_entries(tx: Db<'_>, account: &str, entries: &[Entry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO ledger (account_id, seq, at, type, bucket, amount, balance_after, grant_id, ref)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for e in entries {
        stmt.execute_deferred(params![
            account,
            e.seq as i64,
            ts(e.at),
            e.kind.as_str(),
            e.bucket.as_str(),
            e.amount.micros(),
            e.balance_after.micros(),
            e.grant_id,
            e.reference
        ])?;
    }
    Ok(())
}

pub fn insert_notices(tx: Db<'_>, account: &str, notices: &[Notice]) -> Result<()> {
    if notices.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO notices (account_id, seq, at, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for n in notices {
        let body = serde_json::to_string(n).map_err(json_err)?;
        stmt.execute_deferred(params![account, n.seq as i64, ts(n.at), body])?;
    }
    Ok(())
}

/// Whether the account already has a lot with this id, from any source (an admin grant,
/// a purchase, the server's own grants), used up or not. The ledger's memory holds only
/// live lots, so this table is where a taken id is known for good.
pub fn lot_exists(tx: Db<'_>, account: &str, id: &str) -> Result<bool> {
    tx.prepare_cached("SELECT 1 FROM grants WHERE account_id = ?1 AND id = ?2")?
        .query_opt(params![account, id], |_| Ok(()))
        .map(|found| found.is_some())
}

pub fn insert_lots(tx: Db<'_>, account: &str, lots: &[Lot]) -> Result<()> {
    if lots.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO grants (account_id, id, bucket, amount, effective_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for l in lots {
        stmt.execute_deferred(params![
            account,
            l.id,
            l.bucket.as_str(),
            l.amount.micros(),
            ts(l.effective_at),
            l.expires_at.map(ts)
        ])?;
    }
    Ok(())
}

pub fn upsert_holds(tx: Db<'_>, account: &str, holds: &[Hold]) -> Result<()> {
    if holds.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO holds (account_id, id, amount, created_at, expires_at, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (account_id, id) DO UPDATE SET status = excluded.status",
    )?;
    for h in holds {
        stmt.execute_deferred(params![
            account,
            h.id,
            h.amount.micros(),
            ts(h.created_at),
            ts(h.expires_at),
            h.status.as_str()
        ])?;
    }
    Ok(())
}

pub fn hold_status(conn: Db<'_>, account: &str, id: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT status FROM holds WHERE account_id = ?1 AND id = ?2")?
        .query_opt(params![account, id], |r| r.get(0))
}

// ---------------------------------------------------------------- usage

pub struct UsageRow<'a> {
    pub id: &'a str,
    pub at: DateTime<Utc>,
    pub local_day: String,
    pub project: &'a str,
    pub thread: &'a str,
    pub model: &'a str,
    pub kind: &'a str,
    pub status: &'a str,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub charged: i64,
    pub hold_id: Option<&'a str>,
    /// The idempotency record of a `POST /v1/usage` charge: its request's fingerprint and
    /// the response it got (None for settled holds and demo history).
    pub body_hash: Option<&'a [u8]>,
    pub response: Option<&'a str>,
}

pub fn insert_usage(tx: Db<'_>, account: &str, u: &UsageRow) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO usage_events (account_id, id, at, local_day, project, thread, model, kind,
             status, input_tokens, cached_input_tokens, output_tokens, charged, hold_id,
             body_hash, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute_deferred(params![
        account,
        u.id,
        ts(u.at),
        u.local_day,
        u.project,
        u.thread,
        u.model,
        u.kind,
        u.status,
        u.input_tokens as i64,
        u.cached_input_tokens as i64,
        u.output_tokens as i64,
        u.charged,
        u.hold_id,
        u.body_hash,
        u.response
    ])?;
    Ok(())
}

/// What is recorded under a usage id, if anything.
pub enum UsageRecord {
    /// A `POST /v1/usage` charge with its request fingerprint and response.
    Charge {
        body_hash: Vec<u8>,
        response: String,
    },
    /// The usage of a settled hold, recorded under the hold's id.
    SettledHold,
    /// A charge from before usage rows kept their own record (its record is in the
    /// `idempotency` table, if it came through the API), or demo history.
    Legacy,
    /// No usage event, but a hold (in any status) has this id.
    Hold,
}

const USAGE_RECORD: &str = "SELECT 0, CASE WHEN hold_id IS NOT NULL THEN 1 ELSE 0 END, body_hash, response FROM usage_events
         WHERE account_id = ?1 AND id = ?2
         UNION ALL
         SELECT 1, 0, NULL, NULL FROM holds WHERE account_id = ?1 AND id = ?2
         ORDER BY 1 LIMIT 1";

/// Sends `usage_record`'s query with the transaction's next statement (PostgreSQL; see
/// `PgSession`): the charge path locks the account and reads the record in one round trip.
pub fn usage_record_ahead(conn: Db<'_>, account: &str, id: &str) -> Result<()> {
    conn.prepare_cached(USAGE_RECORD)?
        .read_ahead(params![account, id])
}

/// What is recorded under a usage id: a usage event, else a hold with that id (usage and
/// hold ids share one namespace), else nothing. One statement for the charge path.
pub fn usage_record(conn: Db<'_>, account: &str, id: &str) -> Result<Option<UsageRecord>> {
    conn.prepare_cached(USAGE_RECORD)?
        .query_opt(params![account, id], |r| {
            let is_hold: bool = r.get(0)?;
            let from_hold: bool = r.get(1)?;
            let body_hash: Option<Vec<u8>> = r.get(2)?;
            let response: Option<String> = r.get(3)?;
            Ok(match (is_hold, from_hold, body_hash, response) {
                (true, ..) => UsageRecord::Hold,
                (false, true, _, _) => UsageRecord::SettledHold,
                (false, false, Some(body_hash), Some(response)) => UsageRecord::Charge {
                    body_hash,
                    response,
                },
                _ => UsageRecord::Legacy,
            })
        })
}

pub fn usage_exists(conn: Db<'_>, account: &str, id: &str) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM usage_events WHERE account_id = ?1 AND id = ?2")?
        .query_opt(params![account, id], |_| Ok(()))
        .map(|found| found.is_some())
}

pub struct UsageGroup {
    pub key: String,
    pub charged: i64,
    pub events: i64,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
}

#[derive(Clone, Copy)]
pub enum UsageGrouping {
    Day,
    Model,
    Project,
    Thread,
}

pub fn usage_groups(
    conn: Db<'_>,
    account: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    group: UsageGrouping,
) -> Result<Vec<UsageGroup>> {
    // One constant statement per grouping: the column is never spliced in from input.
    let sql = match group {
        UsageGrouping::Day => {
            "SELECT local_day, CAST(SUM(charged) AS BIGINT), COUNT(*), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(cached_input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT)
             FROM usage_events WHERE account_id = ?1 AND at >= ?2 AND at < ?3 GROUP BY local_day ORDER BY local_day"
        }
        UsageGrouping::Model => {
            "SELECT model, CAST(SUM(charged) AS BIGINT), COUNT(*), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(cached_input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT)
             FROM usage_events WHERE account_id = ?1 AND at >= ?2 AND at < ?3 GROUP BY model ORDER BY SUM(charged) DESC, model"
        }
        UsageGrouping::Project => {
            "SELECT project, CAST(SUM(charged) AS BIGINT), COUNT(*), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(cached_input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT)
             FROM usage_events WHERE account_id = ?1 AND at >= ?2 AND at < ?3 GROUP BY project ORDER BY SUM(charged) DESC, project"
        }
        UsageGrouping::Thread => {
            "SELECT thread, CAST(SUM(charged) AS BIGINT), COUNT(*), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(cached_input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT)
             FROM usage_events WHERE account_id = ?1 AND at >= ?2 AND at < ?3 GROUP BY thread ORDER BY SUM(charged) DESC, thread"
        }
    };
    let from = from.map(ts).unwrap_or_else(|| "0000".into());
    let to = to.map(ts).unwrap_or_else(|| "9999".into());
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![account, from, to], |r| {
        Ok(UsageGroup {
            key: r.get(0)?,
            charged: r.get(1)?,
            events: r.get(2)?,
            input_tokens: r.get(3)?,
            cached_input_tokens: r.get(4)?,
            output_tokens: r.get(5)?,
        })
    })?;
    rows.collect()
}

// ---------------------------------------------------------------- ledger and notices reads

pub struct LedgerRow {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub bucket: String,
    pub amount: i64,
    pub balance_after: i64,
    pub grant_id: String,
    pub reference: String,
    /// The expiry of the lot this entry opens (`None` inside: it never expires); `None`
    /// when the entry opens no lot.
    pub lot_expires_at: Option<Option<String>>,
}

pub fn ledger_page(conn: Db<'_>, account: &str, after: i64, limit: u32) -> Result<Vec<LedgerRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.seq, l.at, l.type, l.bucket, l.amount, l.balance_after, l.grant_id, l.ref,
                g.id, g.expires_at
         FROM ledger l LEFT JOIN grants g
           ON l.amount > 0 AND g.account_id = l.account_id AND g.id = l.grant_id
         WHERE l.account_id = ?1 AND l.seq > ?2 ORDER BY l.seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![account, after, i64::from(limit)], |r| {
        Ok(LedgerRow {
            seq: r.get(0)?,
            at: r.get(1)?,
            kind: r.get(2)?,
            bucket: r.get(3)?,
            amount: r.get(4)?,
            balance_after: r.get(5)?,
            grant_id: r.get(6)?,
            reference: r.get(7)?,
            lot_expires_at: r
                .get::<Option<String>>(8)?
                .map(|_| r.get::<Option<String>>(9))
                .transpose()?,
        })
    })?;
    rows.collect()
}

pub fn notices_page(
    conn: Db<'_>,
    account: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, body FROM notices WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![account, after, i64::from(limit)], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    rows.collect()
}

// ---------------------------------------------------------------- idempotency

pub struct StoredResponse {
    pub body_hash: Vec<u8>,
    pub status: u16,
    pub response: String,
}

pub fn idempotent_get(
    conn: Db<'_>,
    account: &str,
    scope: &str,
    key: &str,
) -> Result<Option<StoredResponse>> {
    conn.prepare_cached(
        "SELECT body_hash, status, response FROM idempotency WHERE account_id = ?1 AND scope = ?2 AND key = ?3",
    )?
    .query_opt(params![account, scope, key], |r| {
        Ok(StoredResponse {
            body_hash: r.get(0)?,
            status: r.get(1)?,
            response: r.get(2)?,
        })
    })
}

pub fn idempotent_put(
    tx: Db<'_>,
    account: &str,
    scope: &str,
    key: &str,
    body_hash: &[u8],
    status: u16,
    response: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO idempotency (account_id, scope, key, body_hash, status, response) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute_deferred(params![account, scope, key, body_hash, i64::from(status), response])?;
    Ok(())
}

// ---------------------------------------------------------------- payments

pub struct PaymentMethodRow {
    pub account_id: String,
    pub id: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
    pub behavior: String,
}

pub fn insert_payment_method(
    tx: Db<'_>,
    hash: &TokenHash,
    m: &PaymentMethodRow,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO payment_methods (token_hash, account_id, id, brand, last4, exp_month, exp_year, behavior, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        hash.0.as_slice(),
        m.account_id,
        m.id,
        m.brand,
        m.last4,
        i64::from(m.exp_month),
        i64::from(m.exp_year),
        m.behavior,
        ts(now)
    ])?;
    Ok(())
}

pub fn payment_method(conn: Db<'_>, hash: &TokenHash) -> Result<Option<PaymentMethodRow>> {
    conn.prepare_cached(
        "SELECT account_id, id, brand, last4, exp_month, exp_year, behavior FROM payment_methods WHERE token_hash = ?1",
    )?
    .query_opt(params![hash.0.as_slice()], |r| {
        Ok(PaymentMethodRow {
            account_id: r.get(0)?,
            id: r.get(1)?,
            brand: r.get(2)?,
            last4: r.get(3)?,
            exp_month: r.get(4)?,
            exp_year: r.get(5)?,
            behavior: r.get(6)?,
        })
    })
}

pub fn set_auto_refill_method(tx: Db<'_>, account: &str, hash: &TokenHash) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO auto_refill_methods (account_id, payment_token_hash) VALUES (?1, ?2)
         ON CONFLICT (account_id) DO UPDATE SET payment_token_hash = excluded.payment_token_hash",
    )?
    .execute(params![account, hash.0.as_slice()])?;
    Ok(())
}

pub fn auto_refill_method(conn: Db<'_>, account: &str) -> Result<Option<TokenHash>> {
    let raw: Option<Vec<u8>> = conn
        .prepare_cached("SELECT payment_token_hash FROM auto_refill_methods WHERE account_id = ?1")?
        .query_opt(params![account], |r| r.get(0))?;
    Ok(raw.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok().map(TokenHash)))
}

pub fn set_plan_method(tx: Db<'_>, account: &str, hash: &TokenHash) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO plan_methods (account_id, payment_token_hash) VALUES (?1, ?2)
         ON CONFLICT (account_id) DO UPDATE SET payment_token_hash = excluded.payment_token_hash",
    )?
    .execute(params![account, hash.0.as_slice()])?;
    Ok(())
}

pub fn plan_method(conn: Db<'_>, account: &str) -> Result<Option<TokenHash>> {
    let raw: Option<Vec<u8>> = conn
        .prepare_cached("SELECT payment_token_hash FROM plan_methods WHERE account_id = ?1")?
        .query_opt(params![account], |r| r.get(0))?;
    Ok(raw.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok().map(TokenHash)))
}

// ---------------------------------------------------------------- payment intents

/// One payment intent as stored (billing/intent.rs gives it types): a charge of a card
/// (`kind` `charge`: a manual purchase, an auto-refill, a plan charge) or a refund.
#[derive(Debug, Clone)]
pub struct IntentRow {
    pub n: i64,
    pub account_id: String,
    /// Also the processor's idempotency key: random, never derived from the ledger.
    pub id: String,
    pub kind: String,
    pub source: String,
    pub pack: Option<String>,
    pub credits: i64,
    pub price_cents: i64,
    pub status: String,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub idem_key: Option<String>,
    pub body_hash: Option<Vec<u8>>,
    pub card: Option<TokenHash>,
    pub detail: String,
}

const INTENT_COLUMNS: &str = "n, account_id, id, kind, source, pack, credits, price_cents, status,
    created_at, completed_at, idem_key, body_hash, card, detail";

fn intent_row(r: &db::Row<'_>) -> Result<IntentRow> {
    let card: Option<Vec<u8>> = r.get(13)?;
    Ok(IntentRow {
        n: r.get(0)?,
        account_id: r.get(1)?,
        id: r.get(2)?,
        kind: r.get(3)?,
        source: r.get(4)?,
        pack: r.get(5)?,
        credits: r.get(6)?,
        price_cents: r.get(7)?,
        status: r.get(8)?,
        created_at: r.get(9)?,
        completed_at: r.get(10)?,
        idem_key: r.get(11)?,
        body_hash: r.get(12)?,
        card: card.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok().map(TokenHash)),
        detail: r.get(14)?,
    })
}

/// Records a new intent; `n` is assigned by the table.
pub fn insert_intent(tx: Db<'_>, i: &IntentRow) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO purchases (account_id, id, kind, source, pack, credits, price_cents, status,
             created_at, completed_at, idem_key, body_hash, card, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) RETURNING n",
    )?
    .query_row(
        params![
            i.account_id,
            i.id,
            i.kind,
            i.source,
            i.pack,
            i.credits,
            i.price_cents,
            i.status,
            i.created_at,
            i.completed_at,
            i.idem_key,
            i.body_hash,
            i.card.as_ref().map(|c| c.0.to_vec()),
            i.detail
        ],
        |r| r.get(0),
    )
}

pub fn intent(conn: Db<'_>, account: &str, id: &str) -> Result<Option<IntentRow>> {
    conn.prepare_cached(&format!(
        "SELECT {INTENT_COLUMNS} FROM purchases WHERE account_id = ?1 AND id = ?2"
    ))?
    .query_opt(params![account, id], intent_row)
}

/// A purchase found by its id alone (staff routes that name no account).
pub fn intent_any_account(conn: Db<'_>, id: &str) -> Result<Option<IntentRow>> {
    conn.prepare_cached(&format!(
        "SELECT {INTENT_COLUMNS} FROM purchases WHERE id = ?1 LIMIT 1"
    ))?
    .query_opt(params![id], intent_row)
}

/// The intent bound to a client's idempotency key: pending or succeeded (a failed one has
/// freed its key).
pub fn intent_by_key(conn: Db<'_>, account: &str, key: &str) -> Result<Option<IntentRow>> {
    conn.prepare_cached(&format!(
        "SELECT {INTENT_COLUMNS} FROM purchases
         WHERE account_id = ?1 AND idem_key = ?2 AND idem_key IS NOT NULL AND status <> 'failed'"
    ))?
    .query_opt(params![account, key], intent_row)
}

/// Moves an intent out of `pending` (or a succeeded charge to `refunded`). Returns false,
/// changing nothing, when the intent is not in `from`: someone else completed it first.
pub fn complete_intent(
    tx: Db<'_>,
    account: &str,
    id: &str,
    from: &str,
    to: &str,
    at: DateTime<Utc>,
    detail: &str,
) -> Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE purchases SET status = ?4, completed_at = COALESCE(completed_at, ?5), detail = ?6
             WHERE account_id = ?1 AND id = ?2 AND status = ?3",
        )?
        .execute(params![account, id, from, to, ts(at), detail])?;
    Ok(changed == 1)
}

/// Pending intents of every account, oldest first: what the reconciler finishes.
pub fn pending_intents(conn: Db<'_>, limit: u32) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT account_id, id FROM purchases WHERE status = 'pending' ORDER BY n LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![i64::from(limit)], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// An account's charges (not refunds), oldest first, after cursor `after`.
pub fn purchases_page(
    conn: Db<'_>,
    account: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<IntentRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INTENT_COLUMNS} FROM purchases
         WHERE account_id = ?1 AND n > ?2 AND kind = 'charge' ORDER BY n LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![account, after, i64::from(limit)], intent_row)?;
    rows.collect()
}

/// Every intent of an account (for reconciliation), oldest first.
pub fn intents_of(conn: Db<'_>, account: &str) -> Result<Vec<IntentRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INTENT_COLUMNS} FROM purchases WHERE account_id = ?1 ORDER BY n"
    ))?;
    let rows = stmt.query_map(params![account], intent_row)?;
    rows.collect()
}

/// The ledger entries that credited or took back money-bought credits for `reference`
/// (a purchase id): (type, amount) pairs, for reconciliation.
pub fn money_entries(conn: Db<'_>, account: &str) -> Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT type, ref, amount FROM ledger
         WHERE account_id = ?1 AND type IN ('purchase', 'refill', 'refund')",
    )?;
    let rows = stmt.query_map(params![account], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

pub fn account_ids(conn: Db<'_>) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM accounts ORDER BY id")?;
    let rows = stmt.query_map(params![], |r| r.get(0))?;
    rows.collect()
}

// ---------------------------------------------------------------- usage reviews

pub fn insert_review(tx: Db<'_>, account: &str, id: &str, body: &str) -> Result<()> {
    tx.prepare_cached("INSERT INTO usage_reviews (account_id, id, body) VALUES (?1, ?2, ?3)")?
        .execute(params![account, id, body])?;
    Ok(())
}

pub fn update_review(tx: Db<'_>, account: &str, id: &str, body: &str) -> Result<()> {
    tx.prepare_cached("UPDATE usage_reviews SET body = ?3 WHERE account_id = ?1 AND id = ?2")?
        .execute(params![account, id, body])?;
    Ok(())
}

/// Finds a review by id alone (admin) → (account, body).
pub fn review_by_id(conn: Db<'_>, id: &str) -> Result<Option<(String, String)>> {
    conn.prepare_cached("SELECT account_id, body FROM usage_reviews WHERE id = ?1 LIMIT 1")?
        .query_opt(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
}

pub fn reviews_page(
    conn: Db<'_>,
    account: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT n, body FROM usage_reviews WHERE account_id = ?1 AND n > ?2 ORDER BY n LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![account, after, i64::from(limit)], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    rows.collect()
}

/// Every account holding a review with this id (ids are client-chosen per account) →
/// (account, body), in creation order.
pub fn reviews_by_id(conn: Db<'_>, id: &str) -> Result<Vec<(String, String)>> {
    let mut stmt =
        conn.prepare_cached("SELECT account_id, body FROM usage_reviews WHERE id = ?1 ORDER BY n")?;
    let rows = stmt.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn review_get(conn: Db<'_>, account: &str, id: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT body FROM usage_reviews WHERE account_id = ?1 AND id = ?2")?
        .query_opt(params![account, id], |r| r.get(0))
}

// ---------------------------------------------------------------- verification

/// Problems found by `check`: each line names an account and what disagrees.
pub fn check(conn: Db<'_>) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for stored in load_accounts(conn)? {
        let a = &stored.state;
        let (sum, last): (i64, Option<i64>) = conn.prepare_cached(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT),
                    (SELECT balance_after FROM ledger WHERE account_id = ?1 ORDER BY seq DESC LIMIT 1)
             FROM ledger WHERE account_id = ?1",
            )?.query_row(
            params![a.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let projected = a.ledger_balance().micros();
        if sum != projected {
            problems.push(format!(
                "{}: ledger sum {sum} != projected balance {projected}",
                a.id
            ));
        }
        if last.unwrap_or(0) != sum {
            problems.push(format!(
                "{}: last balance_after {:?} != ledger sum {sum}",
                a.id, last
            ));
        }
        if sum < 0 {
            problems.push(format!("{}: negative balance {sum}", a.id));
        }
        for lot in &a.lots {
            let lot_sum: i64 = conn.prepare_cached(
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE account_id = ?1 AND grant_id = ?2",
            )?.query_row(
                params![a.id, lot.id],
                |r| r.get(0),
            )?;
            if lot_sum != lot.remaining.micros() {
                problems.push(format!(
                    "{}: lot {} remaining {} != its entries {lot_sum}",
                    a.id,
                    lot.id,
                    lot.remaining.micros()
                ));
            }
        }
    }
    Ok(problems)
}

/// One stored usage event, as `GET /v1/usage/events` lists it.
pub struct UsageEvent {
    pub id: String,
    pub at: String,
    pub local_day: String,
    pub project: String,
    pub thread: String,
    pub model: String,
    pub kind: String,
    pub status: String,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    pub charged: i64,
}

/// An account's usage events in (at, id) order: those at or after `since`, after the
/// keyset `after` ((at, id) of the previous page's last event), at most `limit`. A single
/// lower bound on `at` (the later of `since` and the cursor's) lets the (account_id, at)
/// index seek straight to the page instead of scanning every earlier event (a first sync
/// reads 100 pages); `at > ?3 OR id > ?4` then only has to order the cursor's own
/// millisecond.
pub fn usage_events_page(
    conn: Db<'_>,
    account: &str,
    since: Option<DateTime<Utc>>,
    after: Option<(&str, &str)>,
    limit: u32,
) -> Result<Vec<UsageEvent>> {
    let since = since.map(ts).unwrap_or_else(|| "0000".into());
    let (after_at, after_id) = after.unwrap_or(("", ""));
    // One lower bound for the index to seek to (SQLite uses one range term per column).
    let from = if after_at > since.as_str() {
        after_at
    } else {
        since.as_str()
    };
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, local_day, project, thread, model, kind, status, input_tokens,
                cached_input_tokens, output_tokens, charged
         FROM usage_events
         WHERE account_id = ?1 AND at >= ?2 AND (at > ?3 OR id > ?4)
         ORDER BY at, id LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![account, from, after_at, after_id, i64::from(limit)],
        |r| {
            Ok(UsageEvent {
                id: r.get(0)?,
                at: r.get(1)?,
                local_day: r.get(2)?,
                project: r.get(3)?,
                thread: r.get(4)?,
                model: r.get(5)?,
                kind: r.get(6)?,
                status: r.get(7)?,
                input_tokens: r.get(8)?,
                cached_input_tokens: r.get(9)?,
                output_tokens: r.get(10)?,
                charged: r.get(11)?,
            })
        },
    )?;
    rows.collect()
}

// ---------------------------------------------------------------- token lifecycle (issue 15)

/// What authentication needs to know about a token.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub account: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One token as the admin lists it (never its secret or hash).
#[derive(Debug)]
pub struct TokenRow {
    pub hash: TokenHash,
    pub id: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
}

/// Stores a new token; returns its id (`tok_` + 16 random hex digits, so every writer,
/// whatever process, makes its own without coordination).
pub fn insert_token_expiring(
    tx: Db<'_>,
    hash: &TokenHash,
    account: &str,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<String> {
    let id = format!("tok_{:016x}", rand::random::<u64>());
    tx.prepare_cached(
        "INSERT INTO tokens (hash, account_id, created_at, id, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        hash.0.as_slice(),
        account,
        ts(now),
        id,
        expires_at.map(ts)
    ])?;
    Ok(id)
}

/// The token with this hash, read from the store (a token another process made).
pub fn token_by_hash(conn: Db<'_>, hash: &TokenHash) -> Result<Option<StoredToken>> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT account_id, expires_at FROM tokens WHERE hash = ?1")?
        .query_opt(params![hash.0.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    match row {
        None => Ok(None),
        Some((account, expires)) => Ok(Some(StoredToken {
            account,
            expires_at: expires.as_deref().map(parse_ts).transpose()?,
        })),
    }
}

pub fn list_tokens(conn: Db<'_>, account: &str) -> Result<Vec<TokenRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, created_at, last_used_at, expires_at, hash FROM tokens
         WHERE account_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map(params![account], |r| {
        let hash: Vec<u8> = r.get(4)?;
        Ok(TokenRow {
            hash: TokenHash(<[u8; 32]>::try_from(hash.as_slice()).unwrap_or([0; 32])),
            id: r.get(0)?,
            created_at: r.get(1)?,
            last_used_at: r.get(2)?,
            expires_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Deletes an account's token; returns its hash, or None when the account has no such token.
pub fn delete_token(tx: Db<'_>, account: &str, id: &str) -> Result<Option<TokenHash>> {
    let hash: Option<Vec<u8>> = tx
        .prepare_cached("DELETE FROM tokens WHERE account_id = ?1 AND id = ?2 RETURNING hash")?
        .query_opt(params![account, id], |r| r.get(0))?;
    Ok(hash
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        .map(TokenHash))
}

/// A consistent copy of the database at `from` into a new file `to` (mode 0600), taken with
/// SQLite's online backup API in one step: one read transaction, so the copy is the state
/// of one commit, and the server's writer is never blocked (WAL readers do not block it).
/// The copy is a single file (rollback journal mode), ready to be put in place of a lost
/// database. Returns the number of pages copied.
pub fn backup(from: &std::path::Path, to: &std::path::Path) -> Result<i32> {
    use std::os::unix::fs::OpenOptionsExt;
    let src = open_reader(from)?;
    // Refuse to overwrite anything, and make the file 0600 before SQLite writes into it.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| {
            rusqlite::Error::InvalidPath(std::path::PathBuf::from(format!("{}: {e}", to.display())))
        })?;
    let mut dst = Connection::open(to)?;
    let pages = {
        use rusqlite::backup::StepResult;
        let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // -1: every page in one step (rusqlite's run_to_completion only takes steps of a
        // few pages, which restart whenever the server commits between two of them).
        loop {
            match b.step(-1)? {
                StepResult::Done => break,
                StepResult::More => continue,
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        b.progress().pagecount
    };
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(pages)
}

/// A write that changes nothing, to learn whether the store takes writes now: it needs the
/// write lock like any write, and commits no page.
pub fn probe_write(tx: Db<'_>) -> Result<()> {
    tx.prepare_cached("UPDATE accounts SET email = email WHERE 1 = 0")?
        .execute(params![])?;
    Ok(())
}

/// Purchases whose outcome is not known yet (the `creditbar_pending_purchases` gauge).
pub fn count_pending_purchases(conn: Db<'_>) -> Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM purchases WHERE status = 'pending'")?
        .query_row(params![], |r| r.get(0))
}

/// Open usage reviews of an account (a review's status lives in its JSON body).
pub fn count_open_reviews(conn: Db<'_>, account: &str) -> Result<i64> {
    // A review's status is inside its JSON body; each database reads JSON its own way.
    let sql = match conn.is_postgres() {
        false => {
            "SELECT COUNT(*) FROM usage_reviews
             WHERE account_id = ?1 AND json_extract(body, '$.status') = 'open'"
        }
        true => {
            "SELECT COUNT(*) FROM usage_reviews
             WHERE account_id = ?1 AND body::jsonb ->> 'status' = 'open'"
        }
    };
    conn.prepare_cached(sql)?
        .query_row(params![account], |r| r.get(0))
}

/// Saved cards of an account.
pub fn count_payment_methods(conn: Db<'_>, account: &str) -> Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM payment_methods WHERE account_id = ?1")?
        .query_row(params![account], |r| r.get(0))
}

/// Records when tokens were last used (kept in memory between saves).
pub fn touch_tokens(tx: Db<'_>, used: &[(TokenHash, DateTime<Utc>)]) -> Result<()> {
    let mut stmt = tx.prepare_cached("UPDATE tokens SET last_used_at = ?2 WHERE hash = ?1")?;
    for (hash, at) in used {
        stmt.execute_deferred(params![hash.0.as_slice(), ts(*at)])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn usage_rows_from_before_the_rebuild_keep_their_data_and_their_idempotency_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..1])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO accounts VALUES ('acc', 'a@example.com', '2026-01-01T00:00:00.000Z', '{}');
                 INSERT INTO usage_events VALUES ('acc', 'u1', '2026-01-02T00:00:00.000Z', '2026-01-02',
                     'p', 't', 'lite', 'chat', 'completed', 10, 2, 5, 650, NULL);
                 INSERT INTO usage_events VALUES ('acc', 'h1', '2026-01-03T00:00:00.000Z', '2026-01-03',
                     'p', 't', 'lite', 'chat', 'completed', 1, 0, 1, 100, 'h1');
                 INSERT INTO idempotency VALUES ('acc', 'usage', 'u1', x'0102', 201, '{\"id\":\"u1\"}');",
            )
            .unwrap();
        }
        let conn = open(&path, Durability::Process).unwrap();
        assert!(matches!(
            usage_record(Db::Lite(&conn), "acc", "u1").unwrap(),
            Some(UsageRecord::Legacy)
        ));
        assert!(matches!(
            usage_record(Db::Lite(&conn), "acc", "h1").unwrap(),
            Some(UsageRecord::SettledHold)
        ));
        assert!(usage_record(Db::Lite(&conn), "acc", "u2")
            .unwrap()
            .is_none());
        let stored = idempotent_get(Db::Lite(&conn), "acc", "usage", "u1")
            .unwrap()
            .unwrap();
        assert_eq!((stored.body_hash, stored.status), (vec![1, 2], 201));
        let groups = usage_groups(Db::Lite(&conn), "acc", None, None, UsageGrouping::Day).unwrap();
        let days: Vec<_> = groups.iter().map(|g| (g.key.as_str(), g.charged)).collect();
        assert_eq!(days, [("2026-01-02", 650), ("2026-01-03", 100)]);
        // The rebuilt table still refuses a second row under one id.
        let again = conn.execute(
            "INSERT INTO usage_events (account_id, id, at, local_day, project, thread, model,
                 kind, status, input_tokens, cached_input_tokens, output_tokens, charged)
             VALUES ('acc', 'u1', 'x', 'x', 'p', 't', 'lite', 'chat', 'completed', 0, 0, 0, 0)",
            [],
        );
        assert!(again.is_err());
    }
}
