//! The local cache: everything the client last learned from the server, so every read
//! answers offline. A cache file that is corrupt or from an unknown schema is set aside
//! (renamed, never deleted) and rebuilt from the server; it is never a crash.
//!
//! Secrets are never written here: the tokens live in the keychain.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ClientError;
use crate::wire::{
    Account, Balance, CardSummary, LedgerEntry, Notice, Purchase, UsageEvent, UsageGroup,
};

const MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (name TEXT PRIMARY KEY, json TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    bucket TEXT NOT NULL,
    amount INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    grant_id TEXT NOT NULL,
    ref TEXT NOT NULL
);
CREATE TABLE notices (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE usage (
    group_by TEXT NOT NULL,
    key TEXT NOT NULL,
    charged INTEGER NOT NULL,
    events INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    PRIMARY KEY (group_by, key)
);
CREATE TABLE purchases (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE pending_purchases (
    key TEXT PRIMARY KEY,
    item TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL
);
"#,
    ),
    // Usage events one by one (GET /v1/usage/events) instead of the server's all-time
    // aggregates: any period and grouping is then a SQL query over the cache, offline too.
    M::up(
        r#"
DROP TABLE usage;
CREATE TABLE usage_events (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    day TEXT NOT NULL,
    project TEXT NOT NULL,
    thread TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    charged INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX usage_events_day ON usage_events (day);
"#,
    ),
    // Usage events clustered by day: every dashboard query filters on a range of days, and
    // through the day index each of its rows was a lookup by id elsewhere in the file
    // (30 days of 100,000 events: 57 ms; clustered: 10 ms, all time 210 → 25 ms, measured
    // with Python's sqlite3 on the same schema). The id stays unique for `INSERT OR REPLACE`.
    M::up(
        r#"
CREATE TABLE usage_events_by_day (
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    day TEXT NOT NULL,
    project TEXT NOT NULL,
    thread TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    charged INTEGER NOT NULL,
    PRIMARY KEY (day, id)
) WITHOUT ROWID;
INSERT INTO usage_events_by_day SELECT id, at, day, project, thread, model, kind, status,
    input_tokens, cached_input_tokens, output_tokens, charged FROM usage_events;
DROP TABLE usage_events;
ALTER TABLE usage_events_by_day RENAME TO usage_events;
CREATE UNIQUE INDEX usage_events_id ON usage_events (id);
"#,
    ),
    // The dashboard's per-charge breakdown looks a charge's ledger entries up by `ref`.
    M::up("CREATE INDEX ledger_ref ON ledger (ref);"),
    // A lot's exact expiry, as the server reports it on the entry that opens the lot:
    // `expiry_reported` 0 = not reported (a server before the extension), 1 = reported
    // (`expires_at` NULL: never). Entries cached before are fetched again so the lots
    // already held learn their expiry; the sync cursor is `MAX(seq)`, so emptying the
    // table is what makes the next sync re-read it.
    M::up(
        r#"
ALTER TABLE ledger ADD COLUMN expires_at TEXT;
ALTER TABLE ledger ADD COLUMN expiry_reported INTEGER NOT NULL DEFAULT 0;
DELETE FROM ledger;
"#,
    ),
];

/// Document names in the `documents` table: one JSON value each.
pub mod doc {
    pub const ACCOUNT: &str = "account";
    pub const BALANCE: &str = "balance";
    pub const AUTO_REFILL: &str = "auto_refill";
    pub const CARD: &str = "card";
    pub const ALERTS: &str = "alert_state";
    pub const SETTINGS: &str = "settings";
    pub const REVIEWS: &str = "reviews";
}

/// Keys in the `meta` table.
pub mod meta {
    pub const SERVER: &str = "server_url";
    pub const ACCOUNT_ID: &str = "account_id";
    pub const LAST_CONTACT: &str = "last_contact_at";
    pub const BALANCE_ETAG: &str = "balance_etag";
    /// "1" when the person allowed plain http:// to a server that is not this machine.
    pub const ALLOW_INSECURE_HTTP: &str = "allow_insecure_http";
    /// The last measured skew of the server's clock (ms, `engine::ServerSkew`): every
    /// process on the cache starts from it, so times stamped by one (the last contact)
    /// read the same in another that has not reached the server (`status --offline`).
    pub const SERVER_SKEW_MS: &str = "server_skew_ms";
}

/// What is left of one lot (see `Cache::lots`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotRow {
    pub bucket: String,
    pub grant_id: String,
    /// µcr left.
    pub remaining: i64,
    /// The lot's first entry (RFC 3339).
    pub first_at: String,
    /// As the server reported it: `None` not reported, `Some(None)` never, else RFC 3339.
    pub expires_at: Option<Option<String>>,
}

/// A charged usage event: `(id, at, model, thread, charged µcr)`.
pub type ChargeRow = (String, String, String, String, i64);

pub struct Cache {
    conn: Connection,
    path: PathBuf,
}

/// What `open` had to do with the file it found.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    Fine,
    /// The old file was unreadable and moved to the given path; a fresh cache was made.
    Rebuilt {
        set_aside: PathBuf,
        reason: String,
    },
}

/// Why a cache file could not be opened.
enum OpenFailure {
    /// The file itself is unusable — corrupt, not a database, or from a newer version —
    /// so it is set aside and rebuilt from the server.
    Unreadable(String),
    /// Anything else (the path is a directory, the disk is full, another process holds a
    /// lock past the busy timeout): the file may be fine, so it is left alone and the
    /// error is reported. Setting it aside would also lose the keys of purchases still in
    /// flight (`pending_purchases`), which keep a retry from buying twice.
    Other(String),
}

impl From<rusqlite::Error> for OpenFailure {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match e.sqlite_error_code() {
            Some(DatabaseCorrupt | NotADatabase) => OpenFailure::Unreadable(e.to_string()),
            _ => OpenFailure::Other(e.to_string()),
        }
    }
}

impl From<rusqlite_migration::Error> for OpenFailure {
    fn from(e: rusqlite_migration::Error) -> Self {
        use rusqlite_migration::{Error, MigrationDefinitionError};
        match e {
            Error::RusqliteError { err, .. } => match OpenFailure::from(err) {
                OpenFailure::Unreadable(m) => OpenFailure::Unreadable(m),
                OpenFailure::Other(m) => OpenFailure::Other(format!("migrating: {m}")),
            },
            Error::MigrationDefinition(MigrationDefinitionError::DatabaseTooFarAhead)
            | Error::InvalidUserVersion => OpenFailure::Unreadable(format!("unknown schema: {e}")),
            other => OpenFailure::Other(format!("migrating: {other}")),
        }
    }
}

impl Cache {
    pub fn open(path: &Path) -> Result<(Cache, Opened), ClientError> {
        let unopenable = |reason: String| {
            ClientError::Cache(format!(
                "cannot open the cache {}: {reason}",
                path.display()
            ))
        };
        match Self::try_open(path) {
            Ok(c) => Ok((c, Opened::Fine)),
            Err(OpenFailure::Other(reason)) => Err(unopenable(reason)),
            Err(OpenFailure::Unreadable(reason)) => {
                let stamp = Utc::now().format("%Y%m%dT%H%M%S");
                let aside = path.with_extension(format!("db.unreadable-{stamp}"));
                std::fs::rename(path, &aside).map_err(|e| {
                    ClientError::Cache(format!(
                        "the cache {} is unreadable ({reason}) and could not be set aside: {e}",
                        path.display()
                    ))
                })?;
                // Its journal goes with it, so the fresh file never replays a foreign WAL.
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", path.display()));
                    let moved = PathBuf::from(format!("{}{suffix}", aside.display()));
                    let _ = std::fs::rename(side, moved);
                }
                let cache = Self::try_open(path).map_err(|f| match f {
                    OpenFailure::Unreadable(r) | OpenFailure::Other(r) => unopenable(r),
                })?;
                Ok((
                    cache,
                    Opened::Rebuilt {
                        set_aside: aside,
                        reason,
                    },
                ))
            }
        }
    }

    fn try_open(path: &Path) -> Result<Cache, OpenFailure> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A quick check reads every page: a torn or foreign file fails here, not later.
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(OpenFailure::Unreadable(format!(
                "integrity check failed: {check}"
            )));
        }
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        Ok(Cache {
            conn,
            path: path.to_owned(),
        })
    }

    /// A second, read-only connection to a cache another handle opened (and migrated): what
    /// the tray, `status` and the views read from, so a read never queues behind a writer
    /// waiting on the network. WAL lets it read while the writer writes; `query_only` makes
    /// a write through it an error rather than a surprise.
    pub fn open_reader(path: &Path) -> Result<Cache, ClientError> {
        use rusqlite::OpenFlags;
        let fail = |e: rusqlite::Error| {
            ClientError::Cache(format!(
                "cannot open the cache {} for reading: {e}",
                path.display()
            ))
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail)?;
        // A WAL reader waits only while a checkpoint restarts the log: milliseconds.
        conn.busy_timeout(std::time::Duration::from_millis(500))
            .map_err(fail)?;
        conn.pragma_update(None, "query_only", "ON").map_err(fail)?;
        Ok(Cache {
            conn,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>, ClientError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), ClientError> {
        self.conn
            .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
            .execute([key, value])?;
        Ok(())
    }

    pub fn get_doc<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ClientError> {
        let raw: Option<String> = self
            .conn
            .prepare_cached("SELECT json FROM documents WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        match raw {
            None => Ok(None),
            // A document the current version cannot read is treated as absent: the next
            // sync rewrites it.
            Some(s) => Ok(serde_json::from_str(&s).ok()),
        }
    }

    pub fn put_doc<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        now: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        let json = serde_json::to_string(value).map_err(|e| ClientError::Cache(e.to_string()))?;
        self.conn
            .prepare_cached(
                "INSERT INTO documents (name, json, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at",
            )?
            .execute(params![name, json, now.to_rfc3339()])?;
        Ok(())
    }

    pub fn delete_doc(&self, name: &str) -> Result<(), ClientError> {
        self.conn
            .prepare_cached("DELETE FROM documents WHERE name = ?1")?
            .execute([name])?;
        Ok(())
    }

    pub fn account(&self) -> Result<Option<Account>, ClientError> {
        self.get_doc(doc::ACCOUNT)
    }

    pub fn balance(&self) -> Result<Option<Balance>, ClientError> {
        self.get_doc(doc::BALANCE)
    }

    /// Keeps `b` unless the cache already holds a newer balance (a higher `seq`). Several
    /// processes write the same cache (the app's live sync, `creditbar watch`); one whose
    /// stream lags must not put an older balance back, or the shared alert state would see
    /// the balance go up and down again and warn twice. Returns whether `b` was kept.
    pub fn put_balance(&self, b: &Balance, now: DateTime<Utc>) -> Result<bool, ClientError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let kept = (|| {
            if self.balance()?.is_some_and(|have| have.seq > b.seq) {
                return Ok(false);
            }
            self.put_doc(doc::BALANCE, b, now)?;
            Ok(true)
        })();
        match kept {
            Ok(k) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(k)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    pub fn card(&self) -> Result<Option<CardSummary>, ClientError> {
        self.get_doc(doc::CARD)
    }

    pub fn last_contact(&self) -> Result<Option<DateTime<Utc>>, ClientError> {
        Ok(self
            .get_meta(meta::LAST_CONTACT)?
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    pub fn touch_contact(&self, now: DateTime<Utc>) -> Result<(), ClientError> {
        self.set_meta(meta::LAST_CONTACT, &now.to_rfc3339())
    }

    /// The highest ledger seq cached: the incremental sync cursor.
    pub fn ledger_cursor(&self) -> Result<u64, ClientError> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM ledger", [], |r| r.get(0))?;
        Ok(max.unwrap_or(0).max(0) as u64)
    }

    pub fn notice_cursor(&self) -> Result<u64, ClientError> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM notices", [], |r| r.get(0))?;
        Ok(max.unwrap_or(0).max(0) as u64)
    }

    /// Inserts ledger entries in one transaction; entries already present are skipped, so
    /// an overlapping page is harmless.
    pub fn insert_ledger(&mut self, entries: &[LedgerEntry]) -> Result<(), ClientError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO ledger (seq, at, type, bucket, amount, balance_after, grant_id, ref,
                                               expires_at, expiry_reported)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for e in entries {
                stmt.execute(params![
                    e.seq as i64,
                    e.at.to_rfc3339(),
                    e.kind,
                    e.bucket,
                    e.amount,
                    e.balance_after,
                    e.grant_id,
                    e.reference,
                    e.expires_at.flatten().map(|t| t.to_rfc3339()),
                    e.expires_at.is_some()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// What is left of each lot (a grant, purchase or refill: a `grant_id`) in each bucket,
    /// oldest first. Usage, holds and expiries are negative entries on the same `grant_id`.
    pub fn lots(&self) -> Result<Vec<LotRow>, ClientError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bucket, grant_id, SUM(amount), MIN(at),
                    MAX(expiry_reported), MAX(CASE WHEN amount > 0 THEN expires_at END)
             FROM ledger WHERE grant_id != ''
             GROUP BY bucket, grant_id HAVING SUM(amount) > 0 ORDER BY MIN(seq)",
        )?;
        let rows = stmt.query_map([], |r| {
            let reported: bool = r.get(4)?;
            let at: Option<String> = r.get(5)?;
            Ok(LotRow {
                bucket: r.get(0)?,
                grant_id: r.get(1)?,
                remaining: r.get(2)?,
                first_at: r.get(3)?,
                expires_at: reported.then_some(at),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The most recent charged usage events from `from_day` on: `(id, at, model, thread,
    /// charged)`, newest first.
    pub fn recent_charges(
        &self,
        from_day: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ChargeRow>, ClientError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, model, thread, charged FROM usage_events
             WHERE day >= ?1 AND charged > 0 ORDER BY at DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![from_day.unwrap_or(""), limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every model the cached usage names, alphabetically.
    pub fn used_models(&self) -> Result<Vec<String>, ClientError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT model FROM usage_events ORDER BY model")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// What each bucket paid for the charge `reference` (µcr, positive), in burn order.
    pub fn charge_breakdown(&self, reference: &str) -> Result<Vec<(String, i64)>, ClientError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bucket, -SUM(amount) FROM ledger WHERE ref = ?1 AND amount < 0
             GROUP BY bucket ORDER BY MIN(seq)",
        )?;
        let rows = stmt.query_map([reference], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn ledger_count(&self) -> Result<u64, ClientError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    pub fn ledger_sum(&self) -> Result<i64, ClientError> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(SUM(amount), 0) FROM ledger", [], |r| {
                r.get(0)
            })?)
    }

    pub fn ledger_seqs(&self) -> Result<Vec<u64>, ClientError> {
        let mut stmt = self.conn.prepare("SELECT seq FROM ledger ORDER BY seq")?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        Ok(rows
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|s| s as u64)
            .collect())
    }

    /// The cached notices after `seq`, oldest first.
    pub fn notices_after(&self, seq: u64) -> Result<Vec<Notice>, ClientError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, at, type, data FROM notices WHERE seq > ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([seq as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, kind, data) = row?;
            let at = DateTime::parse_from_rfc3339(&at)
                .map_err(|e| ClientError::Cache(format!("notice {seq}: {e}")))?
                .with_timezone(&Utc);
            out.push(Notice {
                seq: seq as u64,
                at,
                kind,
                data: serde_json::from_str(&data).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Inserts notices; returns those that were new (not cached before).
    pub fn insert_notices(&mut self, notices: &[Notice]) -> Result<Vec<Notice>, ClientError> {
        let tx = self.conn.transaction()?;
        let mut fresh = Vec::new();
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO notices (seq, at, type, data) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for n in notices {
                let inserted = stmt.execute(params![
                    n.seq as i64,
                    n.at.to_rfc3339(),
                    n.kind,
                    n.data.to_string()
                ])?;
                if inserted > 0 {
                    fresh.push(n.clone());
                }
            }
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// Stores usage events; one already held (same id) is replaced, so pages that overlap
    /// (see `usage_resume_point`) are harmless.
    pub fn insert_usage_events(&mut self, events: &[UsageEvent]) -> Result<(), ClientError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO usage_events (id, at, day, project, thread, model, kind, status,
                     input_tokens, cached_input_tokens, output_tokens, charged)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for e in events {
                stmt.execute(params![
                    e.id,
                    e.at,
                    e.day,
                    e.project,
                    e.thread,
                    e.model,
                    e.kind,
                    e.status,
                    e.input_tokens,
                    e.cached_input_tokens,
                    e.output_tokens,
                    e.charged
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Where an incremental usage pull starts: a minute before the newest cached event.
    /// The server lists events in (at, id) order and commits them in time order, but two
    /// events of the same millisecond may commit in either id order; re-reading a short
    /// overlap (kept by id) means neither is ever skipped. None: pull everything.
    pub fn usage_resume_point(&self) -> Result<Option<String>, ClientError> {
        let newest: Option<String> =
            self.conn
                .query_row("SELECT MAX(at) FROM usage_events", [], |r| r.get(0))?;
        Ok(newest
            .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
            .map(|at| {
                (at.with_timezone(&Utc) - chrono::Duration::seconds(60))
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }))
    }

    pub fn usage_event_count(&self) -> Result<u64, ClientError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM usage_events", [], |r| r.get(0))?)
    }

    /// Usage grouped by `group_by` (day, model, project, thread) over the events whose day
    /// (in the account's timezone) is `from_day` or later; all of them without `from_day`.
    /// Days come oldest first; the other groupings by credits spent, most first.
    pub fn usage(
        &self,
        group_by: &str,
        from_day: Option<&str>,
    ) -> Result<Vec<UsageGroup>, ClientError> {
        // One constant statement per grouping: the column never comes from input.
        let sql = match group_by {
            "day" => "SELECT day, SUM(charged), COUNT(*), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens)
                      FROM usage_events WHERE day >= ?1 GROUP BY day ORDER BY day",
            "model" => "SELECT model, SUM(charged), COUNT(*), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens)
                        FROM usage_events WHERE day >= ?1 GROUP BY model ORDER BY SUM(charged) DESC, model",
            "project" => "SELECT project, SUM(charged), COUNT(*), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens)
                          FROM usage_events WHERE day >= ?1 GROUP BY project ORDER BY SUM(charged) DESC, project",
            "thread" => "SELECT thread, SUM(charged), COUNT(*), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens)
                         FROM usage_events WHERE day >= ?1 GROUP BY thread ORDER BY SUM(charged) DESC, thread",
            other => {
                return Err(ClientError::Invalid(format!(
                    "group by {other}: choose day, model, project or thread"
                )))
            }
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([from_day.unwrap_or("")], |r| {
            Ok(UsageGroup {
                key: r.get(0)?,
                charged: r.get(1)?,
                events: r.get(2)?,
                input_tokens: r.get(3)?,
                cached_input_tokens: r.get(4)?,
                output_tokens: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn replace_purchases(&mut self, purchases: &[Purchase]) -> Result<(), ClientError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM purchases", [])?;
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR REPLACE INTO purchases (id, json) VALUES (?1, ?2)")?;
            for p in purchases {
                let json =
                    serde_json::to_string(p).map_err(|e| ClientError::Cache(e.to_string()))?;
                stmt.execute(params![p.id, json])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn purchases(&self) -> Result<Vec<Purchase>, ClientError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT json FROM purchases ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            if let Ok(p) = serde_json::from_str(&r?) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The pending purchase for this exact item, if one was started and never finished:
    /// its key is reused so a retry after a crash cannot buy twice.
    pub fn pending_purchase(&self, item: &str) -> Result<Option<String>, ClientError> {
        Ok(self
            .conn
            .prepare_cached("SELECT key FROM pending_purchases WHERE item = ?1 AND state = 'pending' ORDER BY created_at DESC LIMIT 1")?
            .query_row([item], |r| r.get(0))
            .optional()?)
    }

    pub fn begin_purchase(
        &self,
        key: &str,
        item: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO pending_purchases (key, item, created_at, state) VALUES (?1, ?2, ?3, 'pending')")?
            .execute(params![key, item, now.to_rfc3339()])?;
        Ok(())
    }

    pub fn finish_purchase(&self, key: &str, state: &str) -> Result<(), ClientError> {
        self.conn
            .prepare_cached("UPDATE pending_purchases SET state = ?2 WHERE key = ?1")?
            .execute([key, state])?;
        Ok(())
    }

    /// Forgets everything about the account (logout).
    pub fn clear(&self) -> Result<(), ClientError> {
        self.conn.execute_batch(
            "DELETE FROM meta; DELETE FROM documents; DELETE FROM ledger; DELETE FROM notices;
             DELETE FROM usage_events; DELETE FROM purchases; DELETE FROM pending_purchases;",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_corrupt_cache_file_is_set_aside_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        std::fs::write(&path, b"this is not a database, just garbage bytes........").unwrap();
        let (cache, opened) = Cache::open(&path).unwrap();
        assert!(matches!(opened, Opened::Rebuilt { .. }), "{opened:?}");
        assert_eq!(cache.ledger_count().unwrap(), 0);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("unreadable"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    #[test]
    fn a_cache_that_cannot_be_opened_for_another_reason_is_left_alone() {
        // A directory where the file should be: SQLite cannot open it, but nothing says the
        // data is bad, so nothing is renamed or deleted and the error names the path.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        let Err(err) = Cache::open(&path) else {
            panic!("a cache opened from a directory");
        };
        assert!(
            matches!(err, ClientError::Cache(ref m) if m.contains("cache.db")),
            "{err}"
        );
        assert!(path.join("keep").exists());
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "nothing set aside");
    }

    #[test]
    fn a_cache_from_a_newer_schema_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let (_, opened) = Cache::open(&path).unwrap();
        assert!(
            matches!(opened, Opened::Rebuilt { ref reason, .. } if reason.contains("schema")),
            "{opened:?}"
        );
    }

    #[test]
    fn a_pending_purchase_key_is_reused_until_that_purchase_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, _) = Cache::open(&dir.path().join("cache.db")).unwrap();
        let now = Utc::now();
        assert_eq!(cache.pending_purchase("pack_500").unwrap(), None);
        cache.begin_purchase("k1", "pack_500", now).unwrap();
        // A retry of the same item (after a crash, say) finds the same key...
        assert_eq!(
            cache.pending_purchase("pack_500").unwrap().as_deref(),
            Some("k1")
        );
        // ...but not for another item.
        assert_eq!(cache.pending_purchase("pack_2500").unwrap(), None);
        // Once finished, either way, the next purchase of that item gets a new key.
        cache.finish_purchase("k1", "done").unwrap();
        assert_eq!(cache.pending_purchase("pack_500").unwrap(), None);
        cache.begin_purchase("k2", "pack_500", now).unwrap();
        cache.finish_purchase("k2", "failed").unwrap();
        assert_eq!(cache.pending_purchase("pack_500").unwrap(), None);
    }

    fn event(id: &str, at: &str, day: &str, model: &str, charged: i64) -> UsageEvent {
        UsageEvent {
            id: id.into(),
            at: at.into(),
            day: day.into(),
            project: "p".into(),
            thread: "t".into(),
            model: model.into(),
            kind: "chat".into(),
            status: "completed".into(),
            input_tokens: 1,
            cached_input_tokens: 0,
            output_tokens: 2,
            charged,
        }
    }

    #[test]
    fn usage_groups_a_period_by_local_day_and_keeps_each_event_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, _) = Cache::open(&dir.path().join("c.db")).unwrap();
        assert_eq!(
            c.usage_resume_point().unwrap(),
            None,
            "empty: pull everything"
        );
        let events = [
            event("a", "2026-11-19T10:00:00.000Z", "2026-11-19", "lite", 5),
            event("b", "2026-11-20T10:00:00.000Z", "2026-11-20", "premium", 30),
            event("c", "2026-11-21T10:00:00.000Z", "2026-11-21", "lite", 7),
            event("d", "2026-11-21T11:00:00.000Z", "2026-11-21", "premium", 1),
        ];
        c.insert_usage_events(&events).unwrap();
        c.insert_usage_events(&events[2..]).unwrap(); // an overlapping page again
        assert_eq!(c.usage_event_count().unwrap(), 4);
        let keys = |g: Vec<UsageGroup>| {
            g.into_iter()
                .map(|g| (g.key, g.charged, g.events))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(c.usage("model", None).unwrap()),
            [("premium".into(), 31, 2), ("lite".into(), 12, 2)]
        );
        assert_eq!(
            keys(c.usage("model", Some("2026-11-21")).unwrap()),
            [("lite".into(), 7, 1), ("premium".into(), 1, 1)]
        );
        assert_eq!(
            keys(c.usage("day", Some("2026-11-20")).unwrap()),
            [("2026-11-20".into(), 30, 1), ("2026-11-21".into(), 8, 2)]
        );
        assert!(matches!(
            c.usage("colour", None),
            Err(ClientError::Invalid(_))
        ));
        assert_eq!(
            c.usage_resume_point().unwrap().as_deref(),
            Some("2026-11-21T10:59:00.000Z"),
            "a minute before the newest event"
        );
    }

    /// The report form's models: the cached catalog's, in its order; before any catalog
    /// was cached, the models the cached usage names.
    #[test]
    fn report_models_come_from_the_catalog_else_from_the_usage() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, _) = Cache::open(&dir.path().join("c.db")).unwrap();
        c.insert_usage_events(&[
            event("a", "2026-11-20T10:00:00.000Z", "2026-11-20", "premium", 5),
            event("b", "2026-11-20T11:00:00.000Z", "2026-11-20", "lite", 5),
            event("c", "2026-11-20T12:00:00.000Z", "2026-11-20", "lite", 5),
        ])
        .unwrap();
        assert_eq!(
            crate::views::report_models(&c).unwrap(),
            ["lite", "premium"]
        );
        let catalog: crate::wire::Catalog = serde_json::from_value(serde_json::json!({
            "packs": [], "custom": {"credits_per_dollar": 100, "min_cents": 500, "max_cents": 100000},
            "models": [{"id": "chronos-1", "input_rate": 1}, {"id": "agent-team"}]
        }))
        .unwrap();
        c.put_doc("catalog", &catalog, Utc::now()).unwrap();
        assert_eq!(
            crate::views::report_models(&c).unwrap(),
            ["chronos-1", "agent-team"]
        );
    }

    /// A lot's expiry as the server reports it on the ledger (an extension): reported
    /// (a time, or never), or not reported by a server from before the extension. The
    /// entries a cache held before the migration are dropped so the next sync re-reads
    /// them with their expiry.
    #[test]
    fn a_lots_expiry_is_stored_as_reported_and_an_old_cache_rereads_its_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..4])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute(
                "INSERT INTO ledger VALUES (1, '2026-11-20T10:00:00Z', 'grant', 'bonus', 5, 5, 'g', 'promo')",
                [],
            )
            .unwrap();
        }
        let (mut c, _) = Cache::open(&path).unwrap();
        assert_eq!(c.ledger_cursor().unwrap(), 0, "re-read from the start");
        let wire = |seq: u64, grant: &str, extra: &str| -> LedgerEntry {
            serde_json::from_str(&format!(
                r#"{{"seq": {seq}, "at": "2026-11-20T10:00:00Z", "type": "grant", "bucket": "bonus",
                   "amount": 5000000, "balance_after": 0, "grant_id": "{grant}", "ref": "promo"{extra}}}"#
            ))
            .unwrap()
        };
        c.insert_ledger(&[
            wire(1, "dated", r#", "expires_at": "2026-12-24T18:30:00Z""#),
            wire(2, "forever", r#", "expires_at": null"#),
            wire(3, "old-server", ""),
        ])
        .unwrap();
        let lots: Vec<(String, Option<Option<String>>)> = c
            .lots()
            .unwrap()
            .into_iter()
            .map(|l| (l.grant_id, l.expires_at))
            .collect();
        assert_eq!(
            lots,
            [
                (
                    "dated".into(),
                    Some(Some("2026-12-24T18:30:00+00:00".into()))
                ),
                ("forever".into(), Some(None)),
                ("old-server".into(), None),
            ]
        );
    }

    #[test]
    fn usage_events_of_a_version_2_cache_survive_the_move_to_clustering_by_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..2])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute(
                "INSERT INTO usage_events VALUES ('a', '2026-11-20T10:00:00.000Z', '2026-11-20',
                 'p', 't', 'lite', 'chat', 'completed', 1, 0, 2, 5)",
                [],
            )
            .unwrap();
        }
        let (mut c, opened) = Cache::open(&path).unwrap();
        assert!(matches!(opened, Opened::Fine), "{opened:?}");
        assert_eq!(c.usage_event_count().unwrap(), 1);
        // The same id again replaces the row (the id is still unique), whatever its day.
        c.insert_usage_events(&[event(
            "a",
            "2026-11-20T10:00:00.000Z",
            "2026-11-20",
            "lite",
            6,
        )])
        .unwrap();
        let days = c.usage("day", Some("2026-11-01")).unwrap();
        assert_eq!(
            days.iter()
                .map(|g| (g.key.as_str(), g.charged))
                .collect::<Vec<_>>(),
            [("2026-11-20", 6)]
        );
        // A period is a range of the table's own key, not a lookup per row.
        let plan: Vec<String> = c
            .conn
            .prepare("EXPLAIN QUERY PLAN SELECT SUM(charged) FROM usage_events WHERE day >= ?1")
            .unwrap()
            .query_map(["2026-11-01"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("USING PRIMARY KEY (day>?)")),
            "{plan:?}"
        );
    }

    #[test]
    fn notices_after_a_cursor_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = Cache::open(&dir.path().join("cache.db")).unwrap();
        let n = |seq: u64| Notice {
            seq,
            at: "2026-11-21T18:00:00Z".parse().unwrap(),
            kind: "grant".into(),
            data: serde_json::json!({"amount": seq}),
        };
        cache.insert_notices(&[n(9), n(3), n(5)]).unwrap();
        let after = cache.notices_after(3).unwrap();
        assert_eq!(after, vec![n(5), n(9)]);
    }
}
