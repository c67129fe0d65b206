//! One SQL surface over the two databases the ledger can live in: an embedded SQLite file
//! (one process) or PostgreSQL (any number of processes). Every query of `store` is written
//! once, with SQLite's numbered placeholders (`?1`), and runs on either: PostgreSQL gets
//! the same text with `$1`. The shapes mirror rusqlite's (`prepare_cached`, `execute`,
//! `query_row`, `query_map`) so a query reads the same whichever database runs it.
//!
//! Portable SQL is a short list of rules, kept by the queries in `store`: integers are
//! 64-bit (`BIGINT` in PostgreSQL's schema), sums are `CAST(SUM(x) AS BIGINT)` (PostgreSQL's
//! SUM of a bigint is numeric), instants are RFC 3339 text (the same order in both),
//! and a boolean read from SQL comes from a `CASE` (an integer in both).

use std::cell::RefCell;
use std::collections::HashMap;

/// What a query failed with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {}", pg_detail(.0))]
    Postgres(#[from] postgres::Error),
    /// A stored value is not what the schema promises (e.g. an account's state that does
    /// not parse).
    #[error("stored {what} is invalid: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("query returned no rows")]
    NoRow,
    #[error("migration failed: {0}")]
    Migration(String),
}

impl Error {
    pub fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Error {
        Error::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    /// PostgreSQL gave up on the transaction so that another could go on (a deadlock, a
    /// serialization failure) or lost its connection: nothing of it was applied, and the
    /// request may be tried again.
    pub fn is_transient(&self) -> bool {
        match self {
            // Not an answer of the database (no SQLSTATE): the connection failed or could not
            // be made. Or the database's own: a deadlock or serialization failure (class 40),
            // a connection exception (08), a shutting-down or recovering server (57P), a
            // standby that takes no writes (25006, right after a failover).
            Error::Postgres(e) => match e.code() {
                None => true,
                Some(c) => {
                    let c = c.code();
                    c.starts_with("40")
                        || c.starts_with("08")
                        || c.starts_with("57P")
                        || c == "25006"
                }
            },
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// PostgreSQL's own words for an error (the driver's Display says only "db error").
fn pg_detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.message(), db.code().code(), e),
        None => e.to_string(),
    }
}

/// A value bound to a placeholder: anything both drivers can send.
pub trait Param {
    fn lite(&self) -> &dyn rusqlite::ToSql;
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Param for T {
    fn lite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        self
    }
}

/// `params![a, b]`: the values of a query's placeholders, in order.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::db::Param] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::Param),+] as &[&dyn $crate::store::db::Param] };
}
pub use params;

/// One PostgreSQL connection with its prepared statements (prepared once per connection:
/// a statement named on the server costs one round trip less per use than a text query).
///
/// Inside a transaction, round trips are saved by pipelining: `BEGIN` is sent with the
/// transaction's first statement, and writes whose answer nobody reads (`execute_deferred`:
/// a charge's ledger entries, its usage row, the account's new state) are sent with the next
/// statement or with `COMMIT`, all in one round trip. PostgreSQL runs them in the order sent,
/// so a read after a deferred write sees it; an error in any of them fails the transaction
/// at that point, and the job is answered "unavailable".
///
/// A read the job will need after its next statement can be sent with it (`read_ahead`):
/// the account's lock and the usage id's record leave together, and PostgreSQL reads the
/// record after the lock is held (each statement of a READ COMMITTED transaction sees what
/// was committed before it started), so it is what the previous holder committed. A charge
/// takes two round trips: `BEGIN` + the account's lock + the usage id's record, then the
/// writes + `COMMIT`.
pub struct PgSession {
    /// The client is asynchronous; each session drives it on a runtime of its own, on the
    /// thread that owns the session (a writer thread, a blocking read).
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    prepared: RefCell<HashMap<String, Prepared>>,
    deferred: RefCell<Vec<(postgres::Statement, Vec<Encoded>)>>,
    /// A read to send after the next statement, and what it read (`read_ahead`).
    ahead: RefCell<Option<(Prepared, Vec<Encoded>)>>,
    read_back: RefCell<Option<ReadBack>>,
    /// `BEGIN` asked for and not sent yet.
    begin_pending: std::cell::Cell<bool>,
    in_transaction: std::cell::Cell<bool>,
}

/// What a read sent ahead read: its statement's number, its parameters, its rows.
type ReadBack = (usize, Vec<Encoded>, Vec<postgres::Row>);

/// A statement prepared on a session, and its number there (which names it: the client's
/// own name for it is private).
#[derive(Clone)]
pub struct Prepared {
    stmt: postgres::Statement,
    n: usize,
}

impl std::ops::Deref for Prepared {
    type Target = postgres::Statement;
    fn deref(&self) -> &postgres::Statement {
        &self.stmt
    }
}

/// A parameter already encoded in PostgreSQL's binary format, kept for a deferred write.
#[derive(Debug, PartialEq, Eq)]
struct Encoded(Option<Vec<u8>>);

impl postgres::types::ToSql for Encoded {
    fn to_sql(
        &self,
        _: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        match &self.0 {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(postgres::types::IsNull::No)
            }
            None => Ok(postgres::types::IsNull::Yes),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl PgSession {
    pub fn connect(url: &str) -> Result<PgSession> {
        let config: tokio_postgres::Config = url.parse()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::corrupt("runtime", e))?;
        let (client, connection) = rt.block_on(config.connect(tokio_postgres::NoTls))?;
        rt.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection ended");
            }
        });
        Ok(PgSession {
            rt,
            client,
            prepared: RefCell::new(HashMap::new()),
            deferred: RefCell::new(Vec::new()),
            ahead: RefCell::new(None),
            read_back: RefCell::new(None),
            begin_pending: std::cell::Cell::new(false),
            in_transaction: std::cell::Cell::new(false),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs statements with no parameters and no result (DDL, a snapshot's `BEGIN …`), after
    /// whatever is pending.
    pub fn batch(&self, sql: &str) -> Result<()> {
        self.pipelined(self.client.batch_execute(sql))
    }

    /// Opens a transaction; `BEGIN` leaves with its first statement.
    pub fn begin(&self) {
        self.begin_pending.set(true);
        self.in_transaction.set(true);
        self.deferred.borrow_mut().clear();
        self.forget_ahead();
    }

    fn forget_ahead(&self) {
        self.ahead.borrow_mut().take();
        self.read_back.borrow_mut().take();
    }

    /// Sends the deferred writes and `COMMIT` in one round trip.
    pub fn commit(&self) -> Result<()> {
        let done = self.pipelined(self.client.batch_execute("COMMIT"));
        self.in_transaction.set(false);
        self.forget_ahead();
        done
    }

    pub fn rollback(&self) -> Result<()> {
        self.deferred.borrow_mut().clear();
        self.forget_ahead();
        self.in_transaction.set(false);
        if self.begin_pending.replace(false) {
            // Nothing was sent: nothing to roll back.
            return Ok(());
        }
        Ok(self.rt.block_on(self.client.batch_execute("ROLLBACK"))?)
    }

    /// Runs `last` after a pending `BEGIN` and the deferred writes, all sent before any
    /// answer is awaited (tokio-postgres pipelines requests polled together, in the order
    /// first polled).
    fn pipelined<T>(
        &self,
        last: impl std::future::Future<Output = std::result::Result<T, postgres::Error>>,
    ) -> Result<T> {
        let deferred = std::mem::take(&mut *self.deferred.borrow_mut());
        let begin = self.begin_pending.replace(false);
        let ahead = self.ahead.borrow_mut().take();
        // What was read ahead answers only the very next query: after any other statement
        // (or a write, below) it could be out of date.
        self.read_back.borrow_mut().take();
        let client = &self.client;
        let (done, read) = self.rt.block_on(async {
            let first = async {
                match begin {
                    true => client.batch_execute("BEGIN").await,
                    false => Ok(()),
                }
            };
            let writes =
                futures_util::future::join_all(deferred.iter().map(|(s, params)| async move {
                    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                        .iter()
                        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                        .collect();
                    client.execute(s, &refs).await
                }));
            // Polled after `last`, so sent after it.
            let read = async {
                match &ahead {
                    Some((s, params)) => {
                        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                            .iter()
                            .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                            .collect();
                        Some(client.query(&s.stmt, &refs).await)
                    }
                    None => None,
                }
            };
            let (first, writes, last, read) = tokio::join!(first, writes, last, read);
            let done = (|| -> std::result::Result<T, postgres::Error> {
                first?;
                for w in writes {
                    w?;
                }
                last
            })();
            (done, read)
        });
        let value = done?;
        if let (Some((s, params)), Some(rows)) = (ahead, read) {
            *self.read_back.borrow_mut() = Some((s.n, params, rows?));
        }
        Ok(value)
    }

    /// Sends `s` with the next statement, after it; a `query_*` of the same statement and
    /// parameters before the transaction ends is answered with what it read.
    fn read_ahead(&self, s: &Prepared, params: &[&dyn Param]) -> Result<()> {
        let encoded = encode(s, params)?;
        *self.ahead.borrow_mut() = Some((s.clone(), encoded));
        Ok(())
    }

    /// What a read sent ahead read, if it was this statement with these parameters.
    fn take_read_back(
        &self,
        s: &Prepared,
        params: &[&dyn Param],
    ) -> Result<Option<Vec<postgres::Row>>> {
        let mut back = self.read_back.borrow_mut();
        let Some((n, encoded, _)) = back.as_ref() else {
            return Ok(None);
        };
        if *n != s.n || *encoded != encode(s, params)? {
            return Ok(None);
        }
        Ok(back.take().map(|(_, _, rows)| rows))
    }

    fn statement(&self, sql: &str) -> Result<Prepared> {
        if let Some(s) = self.prepared.borrow().get(sql) {
            return Ok(s.clone());
        }
        let text = dollar_placeholders(sql);
        let stmt = self.rt.block_on(self.client.prepare(&text))?;
        let mut prepared = self.prepared.borrow_mut();
        let s = Prepared {
            stmt,
            n: prepared.len(),
        };
        prepared.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn defer(&self, s: &postgres::Statement, params: &[&dyn Param]) -> Result<()> {
        let encoded = encode(s, params)?;
        self.read_back.borrow_mut().take();
        self.deferred.borrow_mut().push((s.clone(), encoded));
        Ok(())
    }
}

/// A statement's parameters in PostgreSQL's binary format, to be sent later.
fn encode(s: &postgres::Statement, params: &[&dyn Param]) -> Result<Vec<Encoded>> {
    if params.len() != s.params().len() {
        return Err(Error::corrupt(
            "query",
            format!("{} parameters for {}", params.len(), s.params().len()),
        ));
    }
    let mut encoded = Vec::with_capacity(params.len());
    for (p, ty) in params.iter().zip(s.params()) {
        let mut buf = bytes::BytesMut::new();
        let value = match p
            .pg()
            .to_sql_checked(ty, &mut buf)
            .map_err(|e| Error::corrupt("parameter", e))?
        {
            postgres::types::IsNull::Yes => None,
            postgres::types::IsNull::No => Some(buf.to_vec()),
        };
        encoded.push(Encoded(value));
    }
    Ok(encoded)
}

/// `?1` → `$1`, outside string literals.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_string = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string && chars.peek().is_some_and(|n| n.is_ascii_digit()) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// A connection (or an open transaction on one) of either database.
#[derive(Clone, Copy)]
pub enum Db<'c> {
    Lite(&'c rusqlite::Connection),
    Pg(&'c PgSession),
}

impl<'c> Db<'c> {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'c>> {
        Ok(match *self {
            Db::Lite(c) => Stmt::Lite(c.prepare_cached(sql)?),
            Db::Pg(s) => Stmt::Pg(s, s.statement(sql)?),
        })
    }

    /// Runs `f` on one snapshot of the database (a read-only transaction, rolled back when
    /// `f` is done, whatever it returned), so several reads agree with each other.
    pub fn snapshot<T>(&self, f: impl FnOnce(Db<'c>) -> Result<T>) -> Result<T> {
        let (begin, end) = match self {
            Db::Lite(_) => ("BEGIN", "ROLLBACK"),
            Db::Pg(_) => (
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                "ROLLBACK",
            ),
        };
        match *self {
            Db::Lite(c) => c.execute_batch(begin)?,
            Db::Pg(s) => s.batch(begin)?,
        }
        let result = f(*self);
        let ended = match *self {
            Db::Lite(c) => c.execute_batch(end).map_err(Error::from),
            Db::Pg(s) => s.batch(end),
        };
        let value = result?;
        ended?;
        Ok(value)
    }
}

pub enum Stmt<'c> {
    Lite(rusqlite::CachedStatement<'c>),
    Pg(&'c PgSession, Prepared),
}

fn lite_params<'a>(params: &'a [&'a dyn Param]) -> Vec<&'a dyn rusqlite::ToSql> {
    params.iter().map(|p| p.lite()).collect()
}

fn pg_params<'a>(params: &'a [&'a dyn Param]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|p| p.pg()).collect()
}

impl Stmt<'_> {
    /// Runs the statement; the number of rows it changed.
    pub fn execute(&mut self, params: &[&dyn Param]) -> Result<usize> {
        match self {
            Stmt::Lite(s) => Ok(s.execute(lite_params(params).as_slice())?),
            Stmt::Pg(session, s) => {
                let params = pg_params(params);
                let n = session.pipelined(session.client.execute(&s.stmt, &params))?;
                Ok(n as usize)
            }
        }
    }

    /// Runs the statement, or on PostgreSQL inside a transaction sends it later with the
    /// next statement or the commit (see `PgSession`): for writes whose result nobody reads.
    pub fn execute_deferred(&mut self, params: &[&dyn Param]) -> Result<()> {
        match self {
            Stmt::Pg(session, s) if session.in_transaction.get() => session.defer(s, params),
            _ => self.execute(params).map(drop),
        }
    }

    /// On PostgreSQL inside a transaction, sends this query with the next statement, after
    /// it (see `PgSession`); the same query asked later is answered with what it read.
    /// Elsewhere nothing: the query runs when asked.
    pub fn read_ahead(&mut self, params: &[&dyn Param]) -> Result<()> {
        match self {
            Stmt::Pg(session, s) if session.in_transaction.get() => session.read_ahead(s, params),
            _ => Ok(()),
        }
    }

    /// The first row, mapped; `Error::NoRow` if there is none.
    pub fn query_row<T>(
        &mut self,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(params, f)?.ok_or(Error::NoRow)
    }

    /// The first row, mapped, if there is one.
    pub fn query_opt<T>(
        &mut self,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self {
            Stmt::Lite(s) => {
                let mut rows = s.query(lite_params(params).as_slice())?;
                match rows.next()? {
                    Some(r) => f(&Row::Lite(r)).map(Some),
                    None => Ok(None),
                }
            }
            Stmt::Pg(session, s) => {
                if let Some(rows) = session.take_read_back(s, params)? {
                    if rows.len() > 1 {
                        return Err(Error::corrupt("query", "more than one row"));
                    }
                    return rows.first().map(|r| f(&Row::Pg(r))).transpose();
                }
                let params = pg_params(params);
                let row = session.pipelined(session.client.query_opt(&s.stmt, &params))?;
                row.as_ref().map(|r| f(&Row::Pg(r))).transpose()
            }
        }
    }

    /// Every row, mapped.
    pub fn query_map<T>(
        &mut self,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        match self {
            Stmt::Lite(s) => {
                let mut rows = s.query(lite_params(params).as_slice())?;
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r)));
                }
            }
            Stmt::Pg(session, s) => {
                let params = pg_params(params);
                let rows = session.pipelined(session.client.query(&s.stmt, &params))?;
                for r in &rows {
                    out.push(f(&Row::Pg(r)));
                }
            }
        }
        Ok(out.into_iter())
    }
}

/// One result row of either database.
pub enum Row<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    pub fn get<T: Column>(&self, i: usize) -> Result<T> {
        match self {
            Row::Lite(r) => Ok(r.get::<usize, T::Lite>(i).map(T::from_lite)??),
            Row::Pg(r) => T::from_pg(r, i),
        }
    }
}

/// A Rust type a column can be read into, from either database. Integers are read from
/// any integer column (PostgreSQL types `0` in a SELECT as a 4-byte integer).
pub trait Column: Sized {
    type Lite: rusqlite::types::FromSql;
    fn from_lite(v: Self::Lite) -> Result<Self>;
    fn from_pg(r: &postgres::Row, i: usize) -> Result<Self>;
}

fn pg_int(r: &postgres::Row, i: usize) -> Result<Option<i64>> {
    use postgres::types::Type;
    let ty = r.columns().get(i).map(|c| c.type_().clone());
    Ok(match ty {
        Some(Type::INT4) => r.try_get::<_, Option<i32>>(i)?.map(i64::from),
        Some(Type::INT2) => r.try_get::<_, Option<i16>>(i)?.map(i64::from),
        Some(Type::BOOL) => r.try_get::<_, Option<bool>>(i)?.map(i64::from),
        _ => r.try_get::<_, Option<i64>>(i)?,
    })
}

macro_rules! int_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            type Lite = i64;
            fn from_lite(v: i64) -> Result<Self> {
                <$t>::try_from(v).map_err(|e| Error::corrupt("integer", e))
            }
            fn from_pg(r: &postgres::Row, i: usize) -> Result<Self> {
                let v = pg_int(r, i)?.ok_or_else(|| Error::corrupt("integer", "NULL"))?;
                <$t>::try_from(v).map_err(|e| Error::corrupt("integer", e))
            }
        }
        impl Column for Option<$t> {
            type Lite = Option<i64>;
            fn from_lite(v: Option<i64>) -> Result<Self> {
                v.map(|v| <$t>::try_from(v).map_err(|e| Error::corrupt("integer", e))).transpose()
            }
            fn from_pg(r: &postgres::Row, i: usize) -> Result<Self> {
                pg_int(r, i)?
                    .map(|v| <$t>::try_from(v).map_err(|e| Error::corrupt("integer", e)))
                    .transpose()
            }
        }
    )*};
}
int_column!(i64, i32, u32, u16, u64);

impl Column for bool {
    type Lite = bool;
    fn from_lite(v: bool) -> Result<Self> {
        Ok(v)
    }
    fn from_pg(r: &postgres::Row, i: usize) -> Result<Self> {
        Ok(pg_int(r, i)?.ok_or_else(|| Error::corrupt("boolean", "NULL"))? != 0)
    }
}

macro_rules! plain_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            type Lite = $t;
            fn from_lite(v: $t) -> Result<Self> {
                Ok(v)
            }
            fn from_pg(r: &postgres::Row, i: usize) -> Result<Self> {
                Ok(r.try_get::<_, $t>(i)?)
            }
        }
    )*};
}
plain_column!(String, Option<String>, Vec<u8>, Option<Vec<u8>>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_strings() {
        assert_eq!(
            dollar_placeholders("SELECT '?1', a FROM t WHERE b = ?1 AND c = ?12"),
            "SELECT '?1', a FROM t WHERE b = $1 AND c = $12"
        );
    }
}
