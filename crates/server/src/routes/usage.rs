//! Usage charges, usage history, holds.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use creditbar_ledger::{Command, Credits, Reply, DEFAULT_HOLD_TTL_SECONDS};

use crate::api::{
    self, HoldBody, HoldRequest, JsonText, SettleRequest, SettleResult, UsageGroupBody,
    UsageGroups, UsageQuery, UsageRequest, UsageResult, VoidResult,
};
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{body_hash, AccountId, Body, Path, Query};
use crate::store::{self, ts, UsageGrouping, UsageRecord};
use crate::writer::Ctx;

/// Client-chosen ids and labels: non-empty, at most 200 characters, no control characters.
pub fn check_label(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(format!("{field}: must not be empty")));
    }
    if value.chars().count() > 200 {
        return Err(ApiError::invalid(format!(
            "{field}: longer than 200 characters"
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() || is_invisible(*c)) {
        let what = if c.is_control() {
            "a control character"
        } else {
            "an invisible or text-direction character"
        };
        return Err(ApiError::invalid(format!(
            "{field}: contains {what} (U+{:04X}), which would make it display as something \
             it is not",
            c as u32
        )));
    }
    Ok(())
}

/// Characters that change how a label reads without being seen (api.md "Limits every
/// deployment has"): the bidirectional overrides, embeddings, isolates and marks
/// (`inv\u{202e}gnp.exe` shows as `invexe.png`), and the zero-width ones (two labels that
/// look the same but differ). Unicode's `Default_Ignorable_Code_Point` formats, in short.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}'                      // Arabic letter mark
        | '\u{115F}' | '\u{1160}'        // Hangul fillers
        | '\u{180B}'..='\u{180F}'        // Mongolian variation selectors, vowel separator
        | '\u{200B}'..='\u{200F}'        // zero-width space/non-joiner/joiner, LRM, RLM
        | '\u{202A}'..='\u{202E}'        // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}'        // word joiner, invisible operators, bidi isolates
        | '\u{3164}'                      // Hangul filler
        | '\u{FE00}'..='\u{FE0F}'        // variation selectors
        | '\u{FEFF}'                      // zero-width no-break space (BOM)
        | '\u{FFA0}'                      // halfwidth Hangul filler
        | '\u{FFF0}'..='\u{FFF8}'        // unassigned specials
        | '\u{E0000}'..='\u{E0FFF}'      // tags, variation selectors supplement
    )
}

fn check_tokens(input: u64, cached: u64, output: u64) -> Result<(), ApiError> {
    const MAX: u64 = crate::api::MAX_TOKENS_PER_EVENT;
    for (field, v) in [
        ("input_tokens", input),
        ("cached_input_tokens", cached),
        ("output_tokens", output),
    ] {
        if v > MAX {
            return Err(ApiError::invalid(format!(
                "{field}: out of range (at most {MAX} tokens per event)"
            )));
        }
    }
    if cached > input {
        return Err(ApiError::invalid(
            "cached_input_tokens: larger than input_tokens",
        ));
    }
    Ok(())
}

/// Prices the usage up front, so a charge too large to represent names the token counts
/// that caused it, not an internal amount.
fn check_price(app: &App, usage: &creditbar_ledger::Usage) -> Result<(), ApiError> {
    match creditbar_ledger::price(&app.catalog, usage) {
        Err(creditbar_ledger::LedgerError::Overflow) => Err(ApiError::invalid(
            "input_tokens, output_tokens: the charge for these tokens is out of range",
        )),
        other => other.map(|_| ()).map_err(ApiError::from),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

#[utoipa::path(post, path = "/v1/usage", tag = "usage", security(("bearer" = [])), request_body = UsageRequest,
    responses((status = 201, body = UsageResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, description = "insufficient_credits", body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn post_usage(
    State(app): State<App>,
    AccountId(account): AccountId,
    Body(req): Body<UsageRequest>,
) -> Result<(StatusCode, JsonText), ApiError> {
    check_label("id", &req.id)?;
    check_label("project", &req.project)?;
    check_label("thread", &req.thread)?;
    check_tokens(req.input_tokens, req.cached_input_tokens, req.output_tokens)?;
    app.catalog.model(&req.model)?;
    let usage = api::usage_of(
        &req.model,
        req.kind,
        req.status,
        req.input_tokens,
        req.cached_input_tokens,
        req.output_tokens,
    );
    check_price(&app, &usage)?;
    let hash = body_hash(&req);
    let (status, body) = app
        .writer
        .run(move |ctx| charge(ctx, &account, &req, usage, &hash))
        .await?;
    Ok((
        StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
        JsonText(body),
    ))
}

/// The writer's side of `POST /v1/usage`: at most once per (account, usage id). The usage
/// row is the charge's idempotency record (its request fingerprint and response), so a
/// charge costs one lookup and the inserts of what it records.
fn charge(
    ctx: &mut Ctx<'_>,
    account: &str,
    req: &UsageRequest,
    usage: creditbar_ledger::Usage,
    hash: &[u8],
) -> Result<(u16, String), ApiError> {
    // The account first (on a shared database, its row lock): a retry racing its original
    // in another transaction then finds the original's record. (The record's read leaves
    // with the lock, after it: one round trip for both.)
    store::usage_record_ahead(ctx.tx, account, &req.id)?;
    ctx.account(account)?;
    match store::usage_record(ctx.tx, account, &req.id)? {
        Some(UsageRecord::Charge {
            body_hash,
            response,
        }) => {
            return if body_hash == hash {
                Ok((201, response))
            } else {
                Err(ApiError::IdempotencyConflict)
            };
        }
        // A settled hold is recorded as a usage event under the hold's id, so usage and
        // hold ids share one namespace.
        Some(UsageRecord::SettledHold | UsageRecord::Hold) => {
            return Err(ApiError::IdempotencyConflict)
        }
        Some(UsageRecord::Legacy) => {
            return match store::idempotent_get(ctx.tx, account, "usage", &req.id)? {
                Some(stored) if stored.body_hash == hash => Ok((stored.status, stored.response)),
                // Another body, or an event recorded without a request to compare with.
                _ => Err(ApiError::IdempotencyConflict),
            };
        }
        None => {}
    }
    let reply = ctx.apply(
        account,
        Command::Charge {
            id: req.id.clone(),
            usage,
        },
    )?;
    let Reply::Charged(r) = reply else {
        return Err(ApiError::Internal("unexpected reply to a charge".into()));
    };
    let response = serde_json::to_string(&UsageResult {
        id: req.id.clone(),
        charged: r.charged.micros(),
        breakdown: api::breakdown(&r),
        balance: api::AvailableBody {
            available: r.available.micros(),
        },
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let tz = ctx.account(account)?.state.timezone;
    let local_day = ctx.local_day(tz);
    store::insert_usage(
        ctx.tx,
        account,
        &store::UsageRow {
            id: &req.id,
            at: ctx.now,
            local_day,
            project: &req.project,
            thread: &req.thread,
            model: &req.model,
            kind: api::kind_str(req.kind),
            status: api::status_str(req.status),
            input_tokens: req.input_tokens,
            cached_input_tokens: req.cached_input_tokens,
            output_tokens: req.output_tokens,
            charged: r.charged.micros(),
            hold_id: None,
            body_hash: Some(hash),
            response: Some(&response),
        },
    )?;
    Ok((201, response))
}

pub fn parse_time(field: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::invalid(format!("{field}: not an RFC 3339 time")))
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/usage", tag = "usage", security(("bearer" = [])), params(UsageQuery),
    responses((status = 200, body = UsageGroups), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn get_usage(
    State(app): State<App>,
    AccountId(account): AccountId,
    Query(q): Query<UsageQuery>,
) -> Result<Json<UsageGroups>, ApiError> {
    let group = match q.group_by.as_deref().unwrap_or("day") {
        "day" => UsageGrouping::Day,
        "model" => UsageGrouping::Model,
        "project" => UsageGrouping::Project,
        "thread" => UsageGrouping::Thread,
        other => {
            return Err(ApiError::invalid(format!(
                "group_by: `{}` is not one of day, model, project, thread",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    let from = parse_time("from", &q.from)?;
    let to = parse_time("to", &q.to)?;
    let rows = app
        .read(move |c| store::usage_groups(c, &account, from, to, group))
        .await?;
    Ok(Json(UsageGroups {
        items: rows
            .into_iter()
            .map(|g| UsageGroupBody {
                key: g.key,
                charged: g.charged,
                events: g.events,
                input_tokens: g.input_tokens,
                cached_input_tokens: g.cached_input_tokens,
                output_tokens: g.output_tokens,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/holds", tag = "holds", security(("bearer" = [])), request_body = HoldRequest,
    responses((status = 201, body = HoldBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn post_hold(
    State(app): State<App>,
    AccountId(account): AccountId,
    Body(req): Body<HoldRequest>,
) -> Result<(StatusCode, Json<HoldBody>), ApiError> {
    check_label("id", &req.id)?;
    if req.amount <= 0 {
        return Err(ApiError::invalid(
            "amount: must be a positive number of micro-credits",
        ));
    }
    let ttl = req.ttl_seconds.unwrap_or(DEFAULT_HOLD_TTL_SECONDS);
    if !(1..=86_400).contains(&ttl) {
        return Err(ApiError::invalid(
            "ttl_seconds: must be between 1 and 86400",
        ));
    }
    let hash = body_hash(&req);
    let (_, body) = app
        .writer
        .run(move |ctx| {
            ctx.idempotent(&account, "hold", &req.id, &hash, |ctx| {
                if store::usage_exists(ctx.tx, &account, &req.id)? {
                    return Err(ApiError::IdempotencyConflict);
                }
                let reply = ctx.apply(
                    &account,
                    Command::PlaceHold {
                        id: req.id.clone(),
                        amount: Credits::from_micros(req.amount),
                        ttl_seconds: ttl,
                    },
                )?;
                let Reply::HoldPlaced(h) = reply else {
                    return Err(ApiError::Internal("unexpected reply to a hold".into()));
                };
                Ok((
                    201,
                    json(&HoldBody {
                        id: h.id,
                        amount: h.amount.micros(),
                        expires_at: ts(h.expires_at),
                        status: "active".into(),
                    })?,
                ))
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(from_json(body)?)))
}

/// A hold that is not active: 404 if it never existed for this account, else 409 naming
/// what happened to it.
fn hold_gone(ctx: &crate::writer::Ctx<'_>, account: &str, id: &str, e: ApiError) -> ApiError {
    if !matches!(e, ApiError::NotFound(_)) {
        return e;
    }
    match store::hold_status(ctx.tx, account, id) {
        Ok(Some(status)) => ApiError::Conflict(format!("hold `{id}` is {status}, not active")),
        Ok(None) => ApiError::NotFound("hold"),
        Err(e) => ApiError::from(e),
    }
}

#[utoipa::path(post, path = "/v1/holds/{id}/settle", tag = "holds", security(("bearer" = [])), request_body = SettleRequest,
    params(("id" = String, Path, description = "Hold id")),
    responses((status = 200, body = SettleResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn settle_hold(
    State(app): State<App>,
    AccountId(account): AccountId,
    Path(hold_id): Path<String>,
    Body(req): Body<SettleRequest>,
) -> Result<Json<SettleResult>, ApiError> {
    check_label("id", &hold_id)?;
    check_label("project", &req.project)?;
    check_label("thread", &req.thread)?;
    check_tokens(req.input_tokens, req.cached_input_tokens, req.output_tokens)?;
    app.catalog.model(&req.model)?;
    check_price(
        &app,
        &api::usage_of(
            &req.model,
            req.kind,
            req.status,
            req.input_tokens,
            req.cached_input_tokens,
            req.output_tokens,
        ),
    )?;
    let hash = body_hash(&req);
    let (_, body) = app
        .writer
        .run(move |ctx| {
            ctx.idempotent(&account, "settle", &hold_id, &hash, |ctx| {
                let usage = api::usage_of(
                    &req.model,
                    req.kind,
                    req.status,
                    req.input_tokens,
                    req.cached_input_tokens,
                    req.output_tokens,
                );
                let reply = ctx
                    .apply(
                        &account,
                        Command::SettleHold {
                            hold_id: hold_id.clone(),
                            usage,
                        },
                    )
                    .map_err(|e| hold_gone(ctx, &account, &hold_id, e))?;
                let Reply::Settled(r) = reply else {
                    return Err(ApiError::Internal("unexpected reply to a settle".into()));
                };
                let tz = ctx.account(&account)?.state.timezone;
                let local_day = ctx.local_day(tz);
                store::insert_usage(
                    ctx.tx,
                    &account,
                    &store::UsageRow {
                        id: &hold_id,
                        at: ctx.now,
                        local_day,
                        project: &req.project,
                        thread: &req.thread,
                        model: &req.model,
                        kind: api::kind_str(req.kind),
                        status: api::status_str(req.status),
                        input_tokens: req.input_tokens,
                        cached_input_tokens: req.cached_input_tokens,
                        output_tokens: req.output_tokens,
                        charged: r.charged.micros(),
                        hold_id: Some(&hold_id),
                        body_hash: None,
                        response: None,
                    },
                )?;
                Ok((
                    200,
                    json(&SettleResult {
                        id: hold_id.clone(),
                        charged: r.charged.micros(),
                        uncollected: r.uncollected.micros(),
                        breakdown: api::breakdown(&r),
                        balance: api::AvailableBody {
                            available: r.available.micros(),
                        },
                        status: "settled".into(),
                    })?,
                ))
            })
        })
        .await?;
    Ok(Json(from_json(body)?))
}

#[utoipa::path(post, path = "/v1/holds/{id}/void", tag = "holds", security(("bearer" = [])),
    params(("id" = String, Path, description = "Hold id")),
    responses((status = 200, body = VoidResult), (status = 400, description = "The hold id is not a valid id", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn void_hold(
    State(app): State<App>,
    AccountId(account): AccountId,
    Path(hold_id): Path<String>,
) -> Result<Json<VoidResult>, ApiError> {
    check_label("id", &hold_id)?;
    let (_, body) = app
        .writer
        .run(move |ctx| {
            ctx.idempotent(&account, "void", &hold_id, &[], |ctx| {
                ctx.apply(
                    &account,
                    Command::VoidHold {
                        hold_id: hold_id.clone(),
                    },
                )
                .map_err(|e| hold_gone(ctx, &account, &hold_id, e))?;
                Ok((
                    200,
                    json(&VoidResult {
                        id: hold_id.clone(),
                        status: "voided".into(),
                    })?,
                ))
            })
        })
        .await?;
    Ok(Json(from_json(body)?))
}
