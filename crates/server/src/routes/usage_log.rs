//! `GET /v1/usage/events`: the account's usage events one by one (an extension of api.md),
//! so a client can keep them in its own cache and aggregate any period offline — the
//! aggregates of `GET /v1/usage` answer one question per request and need the network.
//!
//! Order and cursor: events come in (at, id) order; `next` names the last event's (at, id).
//! One writer applies and commits each account's commands in time order (the ledger refuses
//! time going backwards), so a later commit never carries an earlier `at` — except for events
//! within the same millisecond, whose ids may sort either way. A client resuming later
//! therefore asks with `since` a little before the newest `at` it holds and keeps events by
//! id; `since` alone, without `after`, starts a listing at a time.

use axum::extract::State;
use axum::Json;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, AccountId, Query};
use crate::routes::usage::parse_time;
use crate::store;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageEventsQuery {
    /// Only events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Cursor from a previous page's `next`.
    pub after: Option<String>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One usage event as recorded: `day` is its day in the account's timezone when it was
/// charged (the key `GET /v1/usage?group_by=day` groups by).
#[derive(Serialize, ToSchema)]
pub struct UsageEventBody {
    pub id: String,
    pub at: String,
    pub day: String,
    pub project: String,
    pub thread: String,
    pub model: String,
    pub kind: String,
    pub status: String,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    pub charged: i64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageEventPage {
    pub items: Vec<UsageEventBody>,
    pub next: Option<String>,
}

/// The cursor: `<at>|<id>` of the last event of a page. `at` never contains `|`.
fn parse_cursor(s: &str) -> Result<(String, String), ApiError> {
    s.split_once('|')
        .filter(|(at, id)| DateTime::parse_from_rfc3339(at).is_ok() && !id.is_empty())
        .map(|(at, id)| (at.to_owned(), id.to_owned()))
        .ok_or_else(|| ApiError::invalid("after: not a cursor from this list"))
}

#[utoipa::path(get, path = "/v1/usage/events", tag = "usage", security(("bearer" = [])), params(UsageEventsQuery),
    responses((status = 200, description = "Usage events in (at, id) order", body = UsageEventPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn usage_events(
    State(app): State<App>,
    AccountId(account): AccountId,
    Query(q): Query<UsageEventsQuery>,
) -> Result<Json<UsageEventPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let since = parse_time("since", &q.since)?;
    let after = q.after.as_deref().map(parse_cursor).transpose()?;
    let rows = app
        .read(move |c| {
            let after = after.as_ref().map(|(a, i)| (a.as_str(), i.as_str()));
            store::usage_events_page(c, &account, since, after, limit + 1)
        })
        .await?;
    let more = rows.len() > limit as usize;
    let items: Vec<UsageEventBody> = rows
        .into_iter()
        .take(limit as usize)
        .map(|e| UsageEventBody {
            id: e.id,
            at: e.at,
            day: e.local_day,
            project: e.project,
            thread: e.thread,
            model: e.model,
            kind: e.kind,
            status: e.status,
            input_tokens: e.input_tokens,
            cached_input_tokens: e.cached_input_tokens,
            output_tokens: e.output_tokens,
            charged: e.charged,
        })
        .collect();
    let next = if more {
        items.last().map(|e| format!("{}|{}", e.at, e.id))
    } else {
        None
    };
    Ok(Json(UsageEventPage { items, next }))
}
