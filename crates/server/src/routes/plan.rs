//! The user's own plan: what a change would cost, and the change itself (billing/plan.rs).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use creditbar_ledger::PlanQuote;

use crate::api::{AccountBody, PlanQuoteBody, PlanQuoteQuery, UserPlanRequest};
use crate::app::App;
use crate::billing::{intent, plan};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AccountId, Body, Query};
use crate::routes::payments::{payment_token, saved_method};
use crate::store::{self, ts};

/// The account as `GET /v1/account` shows it, with the plan's card.
pub async fn account_body(app: &App, account: &str) -> Result<AccountBody, ApiError> {
    let view = app
        .view(account)
        .await?
        .ok_or(ApiError::NotFound("account"))?;
    let a = account.to_owned();
    let last4 = app
        .read(move |c| match store::plan_method(c, &a)? {
            Some(hash) => Ok(store::payment_method(c, &hash)?.map(|m| m.last4)),
            None => Ok(None),
        })
        .await?;
    Ok(AccountBody::of(&view.email, &view.state).with_plan_card(&view.state, last4))
}

#[utoipa::path(get, path = "/v1/plan/quote", tag = "account", security(("bearer" = [])), params(PlanQuoteQuery),
    responses((status = 200, description = "What `PUT /v1/plan` would do now", body = PlanQuoteBody),
        (status = 400, description = "invalid_request: unknown plan", body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn quote(
    State(app): State<App>,
    AccountId(account): AccountId,
    Query(q): Query<PlanQuoteQuery>,
) -> Result<Json<PlanQuoteBody>, ApiError> {
    let now = app.clock.now();
    let body = match plan::quote(&app, &account, &q.plan).await? {
        PlanQuote::Same => PlanQuoteBody {
            plan: q.plan,
            change: "same".into(),
            price_cents: 0,
            credits: 0,
            effective_at: ts(now),
        },
        PlanQuote::Upgrade {
            price_cents,
            credits,
            ..
        } => PlanQuoteBody {
            plan: q.plan,
            change: "upgrade".into(),
            price_cents: price_cents.0,
            credits: credits.micros(),
            effective_at: ts(now),
        },
        PlanQuote::Downgrade { effective_at } => PlanQuoteBody {
            plan: q.plan,
            change: "downgrade".into(),
            price_cents: 0,
            credits: 0,
            effective_at: ts(effective_at),
        },
    };
    Ok(Json(body))
}

#[utoipa::path(put, path = "/v1/plan", tag = "account", security(("bearer" = [])), request_body = UserPlanRequest,
    responses((status = 200, description = "The account: an upgrade is paid and in effect; a downgrade is `next_plan`", body = AccountBody),
        (status = 202, description = "The upgrade's charge is recorded, its outcome not known yet; the plan changes once it succeeds", body = AccountBody),
        (status = 400, description = "invalid_request: unknown plan, empty payment token", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, description = "card_declined (nothing changed), or payment_method_required", body = ErrorBody),
        (status = 409, description = "conflict: the plan is past due, or another change is being paid for", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "Nothing was recorded and no card was touched", body = ErrorBody)))]
pub async fn put_plan(
    State(app): State<App>,
    AccountId(account): AccountId,
    Body(req): Body<UserPlanRequest>,
) -> Result<(StatusCode, Json<AccountBody>), ApiError> {
    app.catalog.plan(&req.plan)?;
    let card = match &req.payment_token {
        Some(t) => {
            let hash = payment_token("payment_token", t)?;
            saved_method(&app, &account, hash).await?;
            Some(hash)
        }
        None => None,
    };
    let task = {
        let (app, account) = (app.clone(), account.clone());
        tokio::spawn(async move { plan::choose(&app, &account, req.plan, card).await })
    };
    let charge = task
        .await
        .map_err(|e| ApiError::Internal(format!("plan task: {e}")))??;
    let status = match &charge {
        Some(row) if row.status == intent::FAILED => {
            let reason = intent::Detail::of(row)?
                .failure
                .unwrap_or_else(|| "card declined".into());
            return Err(ApiError::CardDeclined(reason));
        }
        Some(row) if row.status == intent::PENDING => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    Ok((status, Json(account_body(&app, &account).await?)))
}
