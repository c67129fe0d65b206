//! Operations: readiness, metrics, and the per-request middleware that feeds the metrics.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::Health;
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::store;

/// How long readiness waits for the writer to commit a probe: longer means the store is
/// not accepting writes now, whatever the reason (locked, full, stopped, far behind).
const READY_WITHIN: Duration = Duration::from_secs(2);

#[utoipa::path(get, path = "/v1/ready", tag = "meta",
    responses((status = 200, description = "The store accepts a write now: the writer committed a probe within 2 s", body = Health),
        (status = 503, description = "The store does not accept writes now (locked, full, or the writer stopped)", body = ErrorBody)))]
pub async fn ready(State(app): State<App>) -> Result<Json<Health>, ApiError> {
    let probe = app.writer.run(|ctx| Ok(store::probe_write(ctx.tx)?));
    match tokio::time::timeout(READY_WITHIN, probe).await {
        Ok(Ok(())) => Ok(Json(Health {
            status: "ready".into(),
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the store refused a write");
            Err(ApiError::Unavailable)
        }
        Err(_) => {
            tracing::warn!("not ready: the writer did not commit within 2 s");
            Err(ApiError::Unavailable)
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "meta", security(("admin" = [])),
    responses((status = 200, description = "Prometheus text exposition format 0.0.4 (see docs/server.md, \"Operating it\")", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "Another metrics recorder owns this process (an embedding app installed its own)", body = ErrorBody)))]
pub async fn metrics(_: Admin) -> Result<Response, ApiError> {
    let text = crate::metrics::render().ok_or(ApiError::Unavailable)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Counts and times every request by its route template.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // An Arc inside: cloning it allocates nothing.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    crate::metrics::request(&method, route, resp.status().as_u16(), started.elapsed());
    resp
}
