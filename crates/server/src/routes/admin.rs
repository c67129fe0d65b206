//! Admin endpoints: accounts, tokens, plans, grants, the test clock.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Duration;
use creditbar_ledger::{Account, Command, Credits};

use crate::api::{
    AccountBody, ClockBody, ClockRequest, CreateAccountRequest, CreateTokenRequest, CreatedAccount,
    GrantBody, GrantRequest, PlanRequest, TokenBody, TokenInfo, TokenList,
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
    let (account, token_id) = app
        .writer
        .run(move |ctx| {
            let (state, step) =
                Account::open(ctx.catalog, id.clone(), &req.plan, timezone, ctx.now)?;
            let body = AccountBody::of(&req.email, &state);
            ctx.insert_account(req.email, state, step)?;
            let token_id = store::insert_token_expiring(ctx.tx, &hash, &id, ctx.now, None)?;
            ctx.after_commit(move || {
                app2.tokens
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, id);
            });
            Ok((body, token_id))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccount {
            account,
            token: token.expose().to_owned(),
            token_id,
        }),
    ))
}

/// The longest a token may be made to last, in days (ten years).
const MAX_TOKEN_DAYS: i64 = 3650;

#[utoipa::path(post, path = "/v1/admin/accounts/{id}/tokens", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Account id")),
    request_body(content = Option<CreateTokenRequest>, description = "Optional: `{}` or no body makes a token that never expires"),
    responses((status = 201, body = TokenBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create_token(
    State(app): State<App>,
    _: Admin,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<TokenBody>), ApiError> {
    // No body is as good as `{}`: the request predates the expiry and clients send none.
    let req: CreateTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateTokenRequest::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let days = match req.expires_in_days {
        None => None,
        Some(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => Some(d),
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "expires_in_days: must be between 1 and {MAX_TOKEN_DAYS}"
            )))
        }
    };
    let token = app.ids.secret("cb_");
    let hash = token.hash();
    let app2 = app.clone();
    let (token_id, expires_at) = app
        .writer
        .run(move |ctx| {
            ctx.account(&account)?;
            let expires_at = days.map(|d| ctx.now + Duration::days(d));
            let id = store::insert_token_expiring(ctx.tx, &hash, &account, ctx.now, expires_at)?;
            ctx.after_commit(move || {
                if let Some(at) = expires_at {
                    app2.token_expiry
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(hash, at);
                }
                app2.tokens
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, account);
            });
            Ok((id, expires_at))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenBody {
            token_id,
            token: token.expose().to_owned(),
            expires_at: expires_at.map(ts),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/admin/accounts/{id}/tokens", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, description = "The account's tokens, oldest first, without their secrets", body = TokenList),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn list_tokens(
    State(app): State<App>,
    _: Admin,
    Path(account): Path<String>,
) -> Result<Json<TokenList>, ApiError> {
    if app.view(&account).await?.is_none() {
        return Err(ApiError::NotFound("account"));
    }
    let rows = app.read(move |c| store::list_tokens(c, &account)).await?;
    let used = app
        .token_used
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let items = rows
        .into_iter()
        .map(|r| TokenInfo {
            // Use since the last save is newer than what the store has.
            last_used_at: used.get(&r.hash).map(|t| ts(*t)).or(r.last_used_at),
            token_id: r.id,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
        .collect();
    Ok(Json(TokenList { items }))
}

#[utoipa::path(delete, path = "/v1/admin/accounts/{id}/tokens/{token_id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Account id"), ("token_id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked: the token gets 401 from the next request on"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn revoke_token(
    State(app): State<App>,
    _: Admin,
    Path((account, token_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app2 = app.clone();
    app.writer
        .run(move |ctx| {
            ctx.account(&account)?;
            let hash = store::delete_token(ctx.tx, &account, &token_id)?
                .ok_or(ApiError::NotFound("token"))?;
            ctx.after_commit(move || app2.forget_token(&hash));
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
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
