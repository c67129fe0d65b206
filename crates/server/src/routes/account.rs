//! The account, its balance, ledger and notices.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono_tz::Tz;
use creditbar_ledger::Command;
use sha2::{Digest, Sha256};

use crate::api::{
    AccountBody, BalanceBody, LedgerEntryBody, LedgerPage, NoticeBody, NoticePage, TimezoneRequest,
};
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AccountId, Body, PageQuery, Query};
use crate::store;

pub fn parse_timezone(s: &str) -> Result<Tz, ApiError> {
    s.parse::<Tz>().map_err(|_| {
        ApiError::invalid(format!(
            "timezone: `{}` is not an IANA timezone",
            s.chars().take(64).collect::<String>()
        ))
    })
}

#[utoipa::path(get, path = "/v1/account", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = AccountBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn get_account(
    State(app): State<App>,
    AccountId(id): AccountId,
) -> Result<Json<AccountBody>, ApiError> {
    Ok(Json(crate::routes::plan::account_body(&app, &id).await?))
}

#[utoipa::path(patch, path = "/v1/account", tag = "account", security(("bearer" = [])),
    request_body = TimezoneRequest,
    responses((status = 200, description = "Applies from the next daily reset", body = AccountBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn patch_account(
    State(app): State<App>,
    AccountId(id): AccountId,
    Body(req): Body<TimezoneRequest>,
) -> Result<Json<AccountBody>, ApiError> {
    let timezone = parse_timezone(&req.timezone)?;
    let body = app
        .writer
        .run(move |ctx| {
            ctx.apply(&id, Command::SetTimezone { timezone })?;
            let r = ctx.account(&id)?;
            Ok(AccountBody::of(&r.email, &r.state))
        })
        .await?;
    Ok(Json(body))
}

#[utoipa::path(get, path = "/v1/balance", tag = "account", security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a balance already held")),
    responses((status = 200, body = BalanceBody, headers(("ETag" = String), ("Date" = String, description = "The server's clock (an extension: under --test-clock, the test's time)"))),
        (status = 304, description = "Unchanged", headers(("Date" = String, description = "The server's clock"))),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn balance(
    State(app): State<App>,
    AccountId(id): AccountId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let view = app.view(&id).await?.ok_or(ApiError::NotFound("account"))?;
    let now = app.clock.now();
    // The answer's `Date` is the server's clock (hyper keeps a Date a handler sets), so a
    // client can follow the server's time even from a 304: countdowns and expiry warnings
    // are about the server's deadlines, and under `--test-clock` about the test's time.
    let date = (
        header::DATE,
        now.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
    );
    let mut body = BalanceBody::of(&view.state, now);
    // The ETag covers the balance, not the instant it was read.
    let as_of = std::mem::take(&mut body.as_of);
    let fingerprint = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let etag = format!("\"{}\"", hex(&Sha256::digest(&fingerprint)[..12]));
    body.as_of = as_of;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag), date]).into_response());
    }
    Ok(([(header::ETAG, etag), date], Json(body)).into_response())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[utoipa::path(get, path = "/v1/ledger", tag = "account", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, description = "Entries, oldest first; cursor = seq", body = LedgerPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn ledger(
    State(app): State<App>,
    AccountId(id): AccountId,
    Query(page): Query<PageQuery>,
) -> Result<Json<LedgerPage>, ApiError> {
    let (after, limit) = page.resolve()?;
    let rows = app
        .read(move |c| store::ledger_page(c, &id, after, limit + 1))
        .await?;
    let more = rows.len() > limit as usize;
    let items: Vec<LedgerEntryBody> = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| LedgerEntryBody {
            seq: r.seq,
            at: r.at,
            kind: r.kind,
            bucket: r.bucket,
            amount: r.amount,
            balance_after: r.balance_after,
            grant_id: r.grant_id,
            reference: r.reference,
            expires_at: r.lot_expires_at,
        })
        .collect();
    let next = if more {
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Json(LedgerPage { items, next }))
}

pub fn notice_body(raw: &str) -> Result<NoticeBody, ApiError> {
    serde_json::from_str(raw).map_err(|e| ApiError::Internal(format!("stored notice: {e}")))
}

#[utoipa::path(get, path = "/v1/notices", tag = "account", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, description = "Notices, oldest first; cursor = seq", body = NoticePage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn notices(
    State(app): State<App>,
    AccountId(id): AccountId,
    Query(page): Query<PageQuery>,
) -> Result<Json<NoticePage>, ApiError> {
    let (after, limit) = page.resolve()?;
    let rows = app
        .read(move |c| store::notices_page(c, &id, after, limit + 1))
        .await?;
    let more = rows.len() > limit as usize;
    let items = rows
        .iter()
        .take(limit as usize)
        .map(|(_, body)| notice_body(body))
        .collect::<Result<Vec<_>, _>>()?;
    let next = if more {
        items.last().map(|n| n.seq.to_string())
    } else {
        None
    };
    Ok(Json(NoticePage { items, next }))
}
