//! The test gateway's own database: a SQLite file of its own, whatever database holds the
//! ledger (a processor's memory of charges is never part of the ledger's transactions).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};

use super::ts;
use crate::secret::TokenHash;

/// The test gateway's own database (see `open_gateway`).
const GATEWAY_MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
CREATE TABLE gateway_charges (
    key TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL,
    cents INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL
);
"#,
    ),
    // The processor's own record per customer (for reconciliation), refunds, and a mode a
    // test flips from outside the server to make the processor slow, time out or go down.
    M::up(
        r#"
ALTER TABLE gateway_charges ADD COLUMN customer TEXT NOT NULL DEFAULT '';
ALTER TABLE gateway_charges ADD COLUMN kind TEXT NOT NULL DEFAULT 'charge';
ALTER TABLE gateway_charges ADD COLUMN refund_of TEXT;
CREATE INDEX gateway_by_customer ON gateway_charges (customer);
CREATE TABLE gateway_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    mode TEXT NOT NULL,
    delay_ms INTEGER NOT NULL
);
INSERT INTO gateway_settings VALUES (1, 'normal', 0);
"#,
    ),
];

/// Opens the test gateway's database, a file of its own next to the ledger's. A processor's
/// memory of charges is not part of the ledger's transactions, and a second connection
/// writing into the ledger's file would make the writer's batches fail (a deferred
/// transaction that read before another connection committed cannot write). Synchronous
/// FULL: a charge the gateway made must outlive any crash, so a retry is not charged again.
pub fn open_gateway(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Migrations::from_slice(GATEWAY_MIGRATIONS)
        .to_latest(&mut conn)
        .map_err(|e| rusqlite::Error::InvalidParameterName(format!("migration failed: {e}")))?;
    Ok(conn)
}

/// One record of the test gateway: what it did under a key.
#[derive(Debug, Clone)]
pub struct GatewayRow {
    pub key: String,
    pub customer: String,
    pub kind: String,
    pub cents: i64,
    pub outcome: String,
    pub refund_of: Option<String>,
}

pub fn gateway_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<GatewayRow>> {
    conn.prepare_cached(
        "SELECT key, customer, kind, cents, outcome, refund_of FROM gateway_charges WHERE key = ?1",
    )?
    .query_row(params![key], gateway_row)
    .optional()
}

fn gateway_row(r: &rusqlite::Row) -> rusqlite::Result<GatewayRow> {
    Ok(GatewayRow {
        key: r.get(0)?,
        customer: r.get(1)?,
        kind: r.get(2)?,
        cents: r.get(3)?,
        outcome: r.get(4)?,
        refund_of: r.get(5)?,
    })
}

#[allow(clippy::too_many_arguments)]
pub fn gateway_put(
    conn: &Connection,
    row: &GatewayRow,
    hash: Option<&TokenHash>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO gateway_charges (key, token_hash, cents, outcome, at, customer, kind, refund_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        row.key,
        hash.map(|h| h.0.to_vec()).unwrap_or_default(),
        row.cents,
        row.outcome,
        ts(now),
        row.customer,
        row.kind,
        row.refund_of
    ])?;
    Ok(())
}

/// What the processor did for one customer (or everyone, with `None`), oldest first.
pub fn gateway_records(
    conn: &Connection,
    customer: Option<&str>,
) -> rusqlite::Result<Vec<GatewayRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, customer, kind, cents, outcome, refund_of FROM gateway_charges
         WHERE ?1 IS NULL OR customer = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map(params![customer], gateway_row)?;
    rows.collect()
}

/// The test gateway's mode (`normal`, `timeout`, `down`) and added delay.
pub fn gateway_mode(conn: &Connection) -> rusqlite::Result<(String, u64)> {
    conn.prepare_cached("SELECT mode, delay_ms FROM gateway_settings WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))
}

pub fn gateway_charge_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM gateway_charges WHERE outcome = 'succeeded' AND kind = 'charge'",
        [],
        |r| r.get(0),
    )
}
