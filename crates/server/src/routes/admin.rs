//! Admin endpoints: accounts, tokens, plans, grants, the test clock.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Duration;
use creditbar_ledger::{Account, Command, Credits};

use crate::api::{
    AccountBody, ClockBody, ClockRequest, CreateAccountRequest, CreatedAccount, GrantBody,
    GrantRequest, PlanRequest, TokenBody,
};
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{body_hash, Admin, Body, Path};
use crate::routes::account::parse_timezone;
use crate::routes::usage::check_label;
use crate::store::{self, ts};

/// The most a single clock request may move time; each day replays every account's resets.
const MAX_CLOCK_STEP_DAYS: i64 = 400;

fn check_email(email: &str) -> Result<(), ApiError> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("email: not an email address"))
    }
}

#[utoipa::path(post, path = "/v1/admin/accounts", tag = "admin", security(("admin" = [])), request_body = CreateAccountRequest,
    responses((status = 201, description = "The account, with the first daily and subscription grants made", body = CreatedAccount),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create_account(
    State(app): State<App>,
    _: Admin,
    Body(req): Body<CreateAccountRequest>,
) -> Result<(StatusCode, Json<CreatedAccount>), ApiError> {
    check_email(&req.email)?;
    let timezone = parse_timezone(&req.timezone)?;
    app.catalog.plan(&req.plan)?;
    let id = app.ids.id("acc");
    let token = app.ids.secret("cb_");
    let hash = token.hash();
    let app2 = app.clone();
    let account = app
        .writer
        .run(move |ctx| {
            let (state, step) =
                Account::open(ctx.catalog, id.clone(), &req.plan, timezone, ctx.now)?;
            let body = AccountBody::of(&req.email, &state);
            ctx.insert_account(req.email, state, step)?;
            store::insert_token(ctx.tx, &hash, &id, ctx.now)?;
            ctx.after_commit(move || {
                app2.tokens
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, id);
            });
            Ok(body)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccount {
            account,
            token: token.expose().to_owned(),
        }),
    ))
}

#[utoipa::path(post, path = "/v1/admin/accounts/{id}/tokens", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Account id")),
    responses((status = 201, body = TokenBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create_token(
    State(app): State<App>,
    _: Admin,
    Path(account): Path<String>,
) -> Result<(StatusCode, Json<TokenBody>), ApiError> {
    let token = app.ids.secret("cb_");
    let hash = token.hash();
    let app2 = app.clone();
    app.writer
        .run(move |ctx| {
            ctx.account(&account)?;
            store::insert_token(ctx.tx, &hash, &account, ctx.now)?;
            ctx.after_commit(move || {
                app2.tokens
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, account);
            });
            Ok(())
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenBody {
            token: token.expose().to_owned(),
        }),
    ))
}

#[utoipa::path(put, path = "/v1/admin/accounts/{id}/plan", tag = "admin", security(("admin" = [])), request_body = PlanRequest,
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, description = "Upgrade at once with a prorated grant; downgrade at the period end (pending_plan)", body = AccountBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn change_plan(
    State(app): State<App>,
    _: Admin,
    Path(account): Path<String>,
    Body(req): Body<PlanRequest>,
) -> Result<Json<AccountBody>, ApiError> {
    app.catalog.plan(&req.plan)?;
    let body = app
        .writer
        .run(move |ctx| {
            ctx.account(&account)?;
            ctx.apply(&account, Command::ChangePlan { plan: req.plan })?;
            let r = ctx.account(&account)?;
            Ok(AccountBody::of(&r.email, &r.state))
        })
        .await?;
    Ok(Json(body))
}

#[utoipa::path(post, path = "/v1/admin/accounts/{id}/grants", tag = "admin", security(("admin" = [])), request_body = GrantRequest,
    params(("id" = String, Path, description = "Account id")),
    responses((status = 201, body = GrantBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn grant(
    State(app): State<App>,
    _: Admin,
    Path(account): Path<String>,
    Body(req): Body<GrantRequest>,
) -> Result<(StatusCode, Json<GrantBody>), ApiError> {
    check_label("id", &req.id)?;
    // The server's own grants (daily, subscription, upgrade, refill, review) have ids with
    // `:`; an admin grant taking one would make that grant fail, and the account with it.
    if req.id.contains(':') {
        return Err(ApiError::invalid(
            "id: must not contain `:`, which the server's own grants use",
        ));
    }
    if req.amount <= 0 {
        return Err(ApiError::invalid(
            "amount: must be a positive number of micro-credits",
        ));
    }
    if let Some(note) = &req.note {
        if note.chars().count() > 2000 {
            return Err(ApiError::invalid("note: longer than 2000 characters"));
        }
    }
    let hash = body_hash(&req);
    let (_, body) = app
        .writer
        .run(move |ctx| {
            ctx.account(&account)?;
            ctx.idempotent(&account, "grant", &req.id, &hash, |ctx| {
                if req.expires_at.is_some_and(|e| e <= ctx.now) {
                    return Err(ApiError::invalid("expires_at: must be in the future"));
                }
                // A purchase's credits are a lot named after the purchase (`pur_…`); a
                // grant under that id would be a second lot with the same name.
                if store::lot_exists(ctx.tx, &account, &req.id)? {
                    return Err(ApiError::Conflict(format!(
                        "id: `{}` is already the id of this account's purchase or grant",
                        req.id
                    )));
                }
                ctx.apply(
                    &account,
                    Command::Grant {
                        id: req.id.clone(),
                        amount: Credits::from_micros(req.amount),
                        reason: req.reason.ledger(),
                        expires_at: req.expires_at,
                        note: req.note.clone(),
                    },
                )?;
                let body = GrantBody {
                    id: req.id.clone(),
                    bucket: "bonus".into(),
                    amount: req.amount,
                    reason: req.reason,
                    effective_at: ts(ctx.now),
                    expires_at: req.expires_at.map(ts),
                    note: req.note.clone(),
                };
                Ok((
                    201,
                    serde_json::to_value(&body).map_err(|e| ApiError::Internal(e.to_string()))?,
                ))
            })
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::from_value(body).map_err(|e| ApiError::Internal(e.to_string()))?),
    ))
}

#[utoipa::path(post, path = "/v1/admin/clock", tag = "admin", security(("admin" = [])), request_body = ClockRequest,
    responses((status = 200, description = "Everything due by `now` has happened", body = ClockBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "Not started with --test-clock", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn clock(
    State(app): State<App>,
    _: Admin,
    Body(req): Body<ClockRequest>,
) -> Result<Json<ClockBody>, ApiError> {
    if !app.clock.is_test() {
        return Err(ApiError::NotFound(
            "test clock (start the server with --test-clock)",
        ));
    }
    let current = app.clock.now();
    let target = match (req.advance_seconds, req.now) {
        (Some(s), None) => {
            if s < 0 {
                return Err(ApiError::invalid("advance_seconds: must not be negative"));
            }
            Duration::try_seconds(s)
                .and_then(|d| current.checked_add_signed(d))
                .ok_or_else(|| ApiError::invalid("advance_seconds: out of range"))?
        }
        (None, Some(t)) => t,
        _ => {
            return Err(ApiError::invalid(
                "body: give exactly one of advance_seconds or now",
            ))
        }
    };
    if target < current {
        return Err(ApiError::invalid("now: time cannot go backwards"));
    }
    if target - current > Duration::days(MAX_CLOCK_STEP_DAYS) {
        return Err(ApiError::invalid(format!(
            "advance_seconds: at most {MAX_CLOCK_STEP_DAYS} days per request"
        )));
    }
    app.clock.set(target).map_err(ApiError::invalid)?;
    app.writer.run(|ctx| ctx.advance_due()).await?;
    Ok(Json(ClockBody { now: ts(target) }))
}
