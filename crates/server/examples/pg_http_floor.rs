//! The floor under any HTTP ledger on PostgreSQL, for scripts/bench-server: the same HTTP
//! stack as creditbar-server (axum on tokio, tokio-postgres), the same wrk and Lua work,
//! and per request exactly the baseline's work, pgbench's guarded `UPDATE` (one statement,
//! one commit) on the baseline's own table. No token table, no ledger, no rules. Whatever
//! this reaches against pgbench on the same machine is the most a ledger server built this
//! way could reach; creditbar's distance to it is the cost of its own work.
//!
//! Usage: pg_http_floor POSTGRES_URL CONNECTIONS
//! Prints `listening on http://ADDR` (ephemeral loopback port). `POST /v1/usage` with
//! `Authorization: Bearer <row id>` and a JSON body: 201 when the row was debited 1,000,
//! 402 when it could not be, 400 on a body that is not JSON.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

struct Floor {
    clients: Vec<(tokio_postgres::Client, tokio_postgres::Statement)>,
    next: AtomicUsize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: pg_http_floor POSTGRES_URL CONNECTIONS"))?;
    let n: usize = args.next().unwrap_or_else(|| "16".into()).parse()?;
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let debit = client
            .prepare(
                "UPDATE accounts SET available = available - 1000 \
                 WHERE id = $1 AND available >= 1000",
            )
            .await?;
        clients.push((client, debit));
    }
    let floor = Arc::new(Floor {
        clients,
        next: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/v1/usage", post(debit))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn debit(
    State(floor): State<Arc<Floor>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    // As a real server must: parse the body, and know whose request it is.
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return (StatusCode::BAD_REQUEST, "{\"error\":\"body\"}");
    }
    let id: Option<i32> = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|v| v.parse().ok());
    let Some(id) = id else {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"token\"}");
    };
    let i = floor.next.fetch_add(1, Ordering::Relaxed) % floor.clients.len();
    let (client, debit) = &floor.clients[i];
    match client.execute(debit, &[&id]).await {
        Ok(1) => (StatusCode::CREATED, "{\"charged\":1000}"),
        Ok(_) => (StatusCode::PAYMENT_REQUIRED, "{\"error\":\"balance\"}"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"database\"}"),
    }
}
