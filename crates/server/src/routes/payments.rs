//! Payment methods, purchases, auto-refill. (Being filled in.)

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::AccountId;

/// Handles an auto-refill the writer decided on: charge the saved card, then record the
/// outcome in the ledger.
pub async fn run_refill(app: App, account: String, refill_id: String, pack: String) {
    let _ = (app, account, refill_id, pack);
}

#[utoipa::path(get, path = "/v1/purchases", tag = "payments", security(("bearer" = [])),
    responses((status = 200, body = String), (status = 401, body = ErrorBody)))]
pub async fn list_purchases(State(_app): State<App>, AccountId(_account): AccountId) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    Err(ApiError::NotFound("purchases"))
}
