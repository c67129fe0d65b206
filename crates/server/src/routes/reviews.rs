//! Usage reviews: a user reports a thread that cost too much; an admin resolves it, with a
//! `compensation` bonus grant when one is due. The grant and its notice come from the ledger
//! (`Command::ResolveReview`); this module keeps the report itself.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use creditbar_ledger::{Command, Credits};

use crate::api::{ResolveQuery, ResolveRequest, ReviewBody, ReviewPage, ReviewRequest};
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{body_hash, AccountId, Admin, Body, PageQuery, Path, Query};
use crate::routes::usage::check_label;
use crate::store::{self, ts};

const MAX_DESCRIPTION: usize = 4000;
const MAX_NOTE: usize = 2000;

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

fn stored_review(raw: &str) -> Result<ReviewBody, ApiError> {
    serde_json::from_str(raw).map_err(|e| ApiError::Internal(format!("stored review: {e}")))
}

fn check_review(app: &App, req: &ReviewRequest) -> Result<(), ApiError> {
    check_label("id", &req.id)?;
    check_label("thread", &req.thread)?;
    let len = req.description.chars().count();
    if len == 0 || len > MAX_DESCRIPTION {
        return Err(ApiError::invalid(format!(
            "description: must be 1 to {MAX_DESCRIPTION} characters"
        )));
    }
    if let Some(model) = &req.model {
        app.catalog.model(model)?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/usage-reviews", tag = "reviews", security(("bearer" = [])),
    request_body = ReviewRequest,
    responses((status = 201, description = "The review, open; a repeat with the same id and body returns it unchanged", body = ReviewBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "idempotency_conflict: the id was used with another body", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "limit_reached: the account has 1,000 open reviews", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn post_review(
    State(app): State<App>,
    AccountId(account): AccountId,
    Body(req): Body<ReviewRequest>,
) -> Result<(StatusCode, Json<ReviewBody>), ApiError> {
    check_review(&app, &req)?;
    let hash = body_hash(&req);
    let (_, body) = app
        .writer
        .run(move |ctx| {
            ctx.account(&account)?;
            ctx.idempotent(&account, "review", &req.id, &hash, |ctx| {
                crate::limits::check_open_reviews(ctx.tx, &account)?;
                let review = ReviewBody {
                    id: req.id.clone(),
                    status: "open".into(),
                    thread: req.thread.clone(),
                    description: req.description.clone(),
                    model: req.model.clone(),
                    preview_failing: req.preview_failing,
                    thread_messages: req.thread_messages,
                    large_context: req.large_context,
                    created_at: ts(ctx.now),
                    resolved_at: None,
                    grant_amount: None,
                    resolution_note: None,
                };
                let body = json(&review)?;
                store::insert_review(ctx.tx, &account, &req.id, &body.to_string())?;
                Ok((201, body))
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(from_json(body)?)))
}

#[utoipa::path(get, path = "/v1/usage-reviews", tag = "reviews", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, description = "The account's reviews, oldest first", body = ReviewPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn list_reviews(
    State(app): State<App>,
    AccountId(account): AccountId,
    Query(page): Query<PageQuery>,
) -> Result<Json<ReviewPage>, ApiError> {
    let (after, limit) = page.resolve()?;
    let rows = app
        .read(move |c| store::reviews_page(c, &account, after, limit + 1))
        .await?;
    let more = rows.len() > limit as usize;
    let page: Vec<_> = rows.into_iter().take(limit as usize).collect();
    let next = if more {
        page.last().map(|(n, _)| n.to_string())
    } else {
        None
    };
    let items = page
        .iter()
        .map(|(_, raw)| stored_review(raw))
        .collect::<Result<_, _>>()?;
    Ok(Json(ReviewPage { items, next }))
}

#[utoipa::path(post, path = "/v1/admin/usage-reviews/{id}/resolve", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Review id"), ResolveQuery),
    request_body = ResolveRequest,
    responses((status = 200, description = "The review, resolved; with a `compensation` bonus grant when grant_amount > 0", body = ReviewBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Resolved before with another body, or the id exists in several accounts (pass ?account=)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn resolve_review(
    State(app): State<App>,
    _: Admin,
    Path(id): Path<String>,
    Query(q): Query<ResolveQuery>,
    Body(req): Body<ResolveRequest>,
) -> Result<Json<ReviewBody>, ApiError> {
    check_label("id", &id)?;
    if req.grant_amount < 0 {
        return Err(ApiError::invalid(
            "grant_amount: must be at least 0 micro-credits",
        ));
    }
    if req
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE)
    {
        return Err(ApiError::invalid(format!(
            "note: longer than {MAX_NOTE} characters"
        )));
    }
    let review_id = id.clone();
    let holders = app
        .read(move |c| store::reviews_by_id(c, &review_id))
        .await?;
    let mut accounts = holders
        .into_iter()
        .map(|(account, _)| account)
        .filter(|a| q.account.as_ref().is_none_or(|wanted| wanted == a));
    let account = match (accounts.next(), accounts.next()) {
        (Some(a), None) => a,
        (None, _) => return Err(ApiError::NotFound("usage review")),
        (Some(_), Some(_)) => {
            return Err(ApiError::Conflict(format!(
                "usage review `{id}` exists in several accounts: say which with ?account=<id>"
            )))
        }
    };
    let hash = body_hash(&req);
    let (_, body) = app
        .writer
        .run(move |ctx| {
            ctx.idempotent(&account, "review_resolve", &id, &hash, |ctx| {
                let raw = store::review_get(ctx.tx, &account, &id)?
                    .ok_or(ApiError::NotFound("usage review"))?;
                let mut review = stored_review(&raw)?;
                if review.status != "open" {
                    return Err(ApiError::Conflict(format!(
                        "usage review `{id}` is already {}",
                        review.status
                    )));
                }
                ctx.apply(
                    &account,
                    Command::ResolveReview {
                        review_id: id.clone(),
                        grant_amount: Credits::from_micros(req.grant_amount),
                        note: req.note.clone(),
                    },
                )?;
                review.status = "resolved".into();
                review.resolved_at = Some(ts(ctx.now));
                review.grant_amount = Some(req.grant_amount);
                review.resolution_note = req.note.clone();
                let body = json(&review)?;
                store::update_review(ctx.tx, &account, &id, &body.to_string())?;
                Ok((200, body))
            })
        })
        .await?;
    Ok(Json(from_json(body)?))
}
