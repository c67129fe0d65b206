//! The floor under any HTTP ledger on PostgreSQL, for scripts/bench-server: the same HTTP
//! stack as creditbar-server (axum on tokio, tokio-postgres), the same wrk and Lua work,
//! and per request only the database work of one of two shapes, with no token table and
//! no rules:
//!
//! - `guarded` (the default): the baseline's own work, pgbench's guarded `UPDATE` (one
//!   statement, one commit) on the baseline's table. Whatever this reaches against pgbench
//!   is the most a ledger server built this way could reach here.
//! - `charge`: the smallest transaction a charge can be under issue 14's design
//!   (bench/charge_floor.sql): `BEGIN` with the account's row locked and its state read,
//!   then one statement that writes the state back, appends the ledger entry and records
//!   the usage event, with `COMMIT`: two pipelined round trips on a connection held for
//!   the transaction. Whatever this reaches is the most any server applying rules to an
//!   account it locked, one transaction per charge, could reach here.
//!
//! Usage: pg_http_floor POSTGRES_URL CONNECTIONS [guarded|charge]
//! Prints `listening on http://ADDR` (ephemeral loopback port). `POST /v1/usage` with
//! `Authorization: Bearer <row id>` and a JSON body (`charge`: with a string `id`): 201 when
//! the row was debited or the charge written, 402 when the row could not be debited or the
//! account does not exist, 400 on a body that is not JSON, 503 when the database failed.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::sync::Semaphore;
use tokio_postgres::{Client, Statement};

const DEBIT: &str =
    "UPDATE accounts SET available = available - 1000 WHERE id = $1 AND available >= 1000";
const LOCK: &str = "SELECT state FROM floor_accounts WHERE id = $1 FOR UPDATE";
const WRITE: &str = "WITH a AS (UPDATE floor_accounts SET state = $2 WHERE id = $1 RETURNING id), \
    l AS (INSERT INTO floor_ledger (account_id, seq, at, type, bucket, amount, balance_after, grant_id, ref) \
          SELECT id, $3, '2026-12-06T13:00:00.000Z', 'usage', 'bonus', -1000, 999999999000, 'g', $4 FROM a) \
    INSERT INTO floor_usage (account_id, id, at, local_day, project, thread, model, kind, status, \
          input_tokens, cached_input_tokens, output_tokens, charged, hold_id, body_hash, response) \
    SELECT id, $4, '2026-12-06T13:00:00.000Z', '2026-12-06', 'bench', 't0', 'lite', 'chat', 'completed', \
          12, 0, 8, 1000, NULL, '\\x0102'::bytea, $5 FROM a";

struct Conn {
    client: Client,
    debit: Option<Statement>,
    lock: Option<Statement>,
    write: Option<Statement>,
}

struct Floor {
    charge: bool,
    /// `guarded`: connections taken in turn, statements pipelined on each (autocommit).
    clients: Vec<Conn>,
    next: AtomicUsize,
    /// `charge`: a connection is held for its transaction (the free ones here).
    free: Mutex<Vec<usize>>,
    permits: Semaphore,
    /// Ledger sequence numbers, unique across runs on the same tables.
    seq: AtomicI64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let usage = "usage: pg_http_floor POSTGRES_URL CONNECTIONS [guarded|charge]";
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let n: usize = args.next().unwrap_or_else(|| "16".into()).parse()?;
    let charge = match args.next().as_deref() {
        None | Some("guarded") => false,
        Some("charge") => true,
        Some(other) => anyhow::bail!("unknown shape `{other}`: {usage}"),
    };
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let (debit, lock, write) = if charge {
            let lock = client.prepare(LOCK).await?;
            let write = client.prepare(WRITE).await?;
            (None, Some(lock), Some(write))
        } else {
            let debit = client.prepare(DEBIT).await?;
            (Some(debit), None, None)
        };
        clients.push(Conn {
            client,
            debit,
            lock,
            write,
        });
    }
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros();
    let floor = Arc::new(Floor {
        charge,
        free: Mutex::new((0..clients.len()).collect()),
        permits: Semaphore::new(clients.len()),
        clients,
        next: AtomicUsize::new(0),
        seq: AtomicI64::new(i64::try_from(start)?),
    });
    let app = Router::new()
        .route("/v1/usage", post(usage_request))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn usage_request(
    State(floor): State<Arc<Floor>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    // As a real server must: parse the body, and know whose request it is.
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return refused(StatusCode::BAD_REQUEST, "{\"error\":\"body\"}");
    };
    let id: Option<i32> = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|v| v.parse().ok());
    let Some(id) = id else {
        return refused(StatusCode::UNAUTHORIZED, "{\"error\":\"token\"}");
    };
    if !floor.charge {
        let i = floor.next.fetch_add(1, Ordering::Relaxed) % floor.clients.len();
        let conn = &floor.clients[i];
        let Some(debit) = &conn.debit else {
            return refused(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"shape\"}");
        };
        return match conn.client.execute(debit, &[&id]).await {
            Ok(1) => (StatusCode::CREATED, "{\"charged\":1000}".into()),
            Ok(_) => refused(StatusCode::PAYMENT_REQUIRED, "{\"error\":\"balance\"}"),
            Err(_) => refused(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"database\"}"),
        };
    }
    let Some(usage_id) = body.get("id").and_then(|v| v.as_str()) else {
        return refused(StatusCode::BAD_REQUEST, "{\"error\":\"id\"}");
    };
    // In a task of its own, so that a client that hangs up (wrk at the end of a run) cannot
    // cancel a transaction halfway and leave its connection inside it, or out of the pool.
    let usage_id = usage_id.to_owned();
    let task = tokio::spawn(async move {
        let Ok(_permit) = floor.permits.acquire().await else {
            return refused(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"closed\"}");
        };
        let Some(i) = floor.free.lock().map(|mut f| f.pop()).ok().flatten() else {
            return refused(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"pool\"}");
        };
        let answer = charge(&floor, &floor.clients[i], id, &usage_id).await;
        if let Ok(mut free) = floor.free.lock() {
            free.push(i);
        }
        answer
    });
    task.await
        .unwrap_or_else(|_| refused(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"task\"}"))
}

fn refused(status: StatusCode, body: &str) -> (StatusCode, String) {
    (status, body.to_owned())
}

/// One charge in one transaction: two round trips, each two pipelined messages.
async fn charge(floor: &Floor, conn: &Conn, id: i32, usage_id: &str) -> (StatusCode, String) {
    let (Some(lock), Some(write)) = (&conn.lock, &conn.write) else {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"shape\"}");
    };
    let account = id.to_string();
    // tokio::join! polls in order, so BEGIN is queued on the connection before the lock.
    let key: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&account];
    let (begun, row) = tokio::join!(
        conn.client.batch_execute("BEGIN"),
        conn.client.query_opt(lock, &key)
    );
    let state: String = match (begun, row) {
        (Ok(()), Ok(Some(row))) => row.get(0),
        (Ok(()), Ok(None)) => {
            let _ = conn.client.batch_execute("ROLLBACK").await;
            return refused(StatusCode::PAYMENT_REQUIRED, "{\"error\":\"account\"}");
        }
        _ => {
            let _ = conn.client.batch_execute("ROLLBACK").await;
            return refused(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"database\"}");
        }
    };
    let seq = floor.seq.fetch_add(1, Ordering::Relaxed);
    let response = format!(
        "{{\"id\":{},\"charged\":1000,\"breakdown\":{{\"bonus\":1000}},\"balance\":{{\"available\":999999999000}}}}",
        serde_json::Value::from(usage_id)
    );
    let values: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&account, &state, &seq, &usage_id, &response];
    let (written, committed) = tokio::join!(
        conn.client.execute(write, &values),
        conn.client.batch_execute("COMMIT")
    );
    match (written, committed) {
        (Ok(1), Ok(())) => (StatusCode::CREATED, response),
        _ => {
            // A failed statement aborted the transaction, and its COMMIT rolled it back.
            refused(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"database\"}")
        }
    }
}
