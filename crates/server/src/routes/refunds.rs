//! Staff's view of money: refunds and the reconciliation of the ledger with the processor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::{ReconciliationQuery, RefundBody, RefundRequest};
use crate::app::App;
use crate::billing::intent::{self, Detail};
use crate::billing::refund;
use crate::billing::report::{self, Reconciliation};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{body_hash, Admin, Body, Path, Query};
use crate::routes::usage::check_label;
use crate::store;

#[utoipa::path(post, path = "/v1/admin/purchases/{id}/refund", tag = "admin", security(("admin" = [])), request_body = RefundRequest,
    params(("id" = String, Path, description = "The purchase to refund")),
    responses((status = 201, description = "The money is returned and what was left of the purchase's credits removed", body = RefundBody),
        (status = 202, description = "Recorded; the processor has not answered yet (finished by the server)", body = RefundBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "conflict: not a succeeded purchase, already refunded, or the processor refused; idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn refund(
    State(app): State<App>,
    _: Admin,
    Path(purchase_id): Path<String>,
    Body(req): Body<RefundRequest>,
) -> Result<(StatusCode, Json<RefundBody>), ApiError> {
    check_label("id", &req.id)?;
    if req.reason.trim().is_empty() || req.reason.chars().count() > 1000 {
        return Err(ApiError::invalid("reason: 1 to 1000 characters"));
    }
    let hash = body_hash(&(&purchase_id, &req.reason)).to_vec();
    let task = {
        let app = app.clone();
        tokio::spawn(
            async move { refund::refund(&app, req.id, purchase_id, req.reason, hash).await },
        )
    };
    let row = task
        .await
        .map_err(|e| ApiError::Internal(format!("refund task: {e}")))??;
    let detail = Detail::of(&row)?;
    let status = match row.status.as_str() {
        intent::FAILED => {
            return Err(ApiError::Conflict(format!(
                "the processor refused the refund: {}",
                detail.failure.unwrap_or_default()
            )))
        }
        intent::PENDING => StatusCode::ACCEPTED,
        _ => StatusCode::CREATED,
    };
    Ok((
        status,
        Json(RefundBody {
            id: row.idem_key.clone().unwrap_or_else(|| row.id.clone()),
            purchase_id: detail.refund_of.unwrap_or_default(),
            refunded_cents: row.price_cents,
            credits_removed: detail.credits_removed.unwrap_or(0),
            status: row.status,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/admin/reconciliation", tag = "admin", security(("admin" = [])), params(ReconciliationQuery),
    responses((status = 200, description = "What the processor took and returned against what the ledger credited; `mismatches` is empty when they agree", body = Reconciliation),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "The processor could not be asked", body = ErrorBody)))]
pub async fn reconciliation(
    State(app): State<App>,
    _: Admin,
    Query(q): Query<ReconciliationQuery>,
) -> Result<Json<Reconciliation>, ApiError> {
    app.view(&q.account)
        .await?
        .ok_or(ApiError::NotFound("account"))?;
    // The processor before and after the ledger (billing::report::compare says why).
    let before = gateway_records(&app, q.account.clone()).await?;
    let account = q.account.clone();
    let (intents, entries) = app
        .read(move |c| {
            // One snapshot for both reads; rolled back (it wrote nothing) on every path,
            // so the pooled connection never keeps a transaction open.
            c.snapshot(|s| {
                Ok((
                    store::intents_of(s, &account)?,
                    store::money_entries(s, &account)?,
                ))
            })
        })
        .await?;
    let after = gateway_records(&app, q.account).await?;
    Ok(Json(report::compare(&intents, &entries, &before, &after)))
}

/// What the processor recorded for `account`, asked off the async threads.
async fn gateway_records(
    app: &App,
    account: String,
) -> Result<Vec<crate::gateway::GatewayRecord>, ApiError> {
    let gw = app.gateway.clone();
    tokio::task::spawn_blocking(move || gw.records(&account))
        .await
        .map_err(|e| ApiError::Internal(format!("gateway task: {e}")))?
        .map_err(ApiError::from)
}
