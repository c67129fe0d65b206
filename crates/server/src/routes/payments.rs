//! Payment methods, purchases and auto-refill settings over HTTP. The money itself moves in
//! billing/ (the payment machine); these handlers check input and translate its results.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use creditbar_ledger::schedule::local_month_key;
use creditbar_ledger::{Account, AutoRefillSettings, Cents, Command, Credits};

use crate::api::{
    AutoRefillBody, AutoRefillRequest, AvailableBody, CardRequest, PaymentMethodBody, PurchaseBody,
    PurchaseItem, PurchasePage, PurchaseRequest,
};
use crate::app::App;
use crate::billing::intent::{self, Detail};
use crate::billing::purchase;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{body_hash, AccountId, Body, PageQuery, Path, Query};
use crate::gateway::{CardInput, GatewayError};
use crate::routes::usage::check_label;
use crate::secret::TokenHash;
use crate::store::{self, IntentRow, PaymentMethodRow};

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a gateway call off the async threads: a real processor is a network round trip.
async fn gateway<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&dyn crate::gateway::PaymentGateway) -> Result<T, GatewayError> + Send + 'static,
) -> Result<T, GatewayError> {
    let gw = app.gateway.clone();
    tokio::task::spawn_blocking(move || f(gw.as_ref()))
        .await
        .map_err(|e| GatewayError::Unavailable(format!("gateway task: {e}")))?
}

/// The saved card behind a payment token, if it is this account's.
pub(crate) async fn saved_method(
    app: &App,
    account: &str,
    token: TokenHash,
) -> Result<PaymentMethodRow, ApiError> {
    let method = app.read(move |c| store::payment_method(c, &token)).await?;
    method
        .filter(|m| m.account_id == account)
        .ok_or(ApiError::PaymentMethodRequired)
}

pub(crate) fn payment_token(field: &str, token: &str) -> Result<TokenHash, ApiError> {
    if token.is_empty() {
        return Err(ApiError::invalid(format!("{field}: must not be empty")));
    }
    Ok(TokenHash::of(token))
}

#[utoipa::path(post, path = "/v1/payment-methods", tag = "payments", security(("bearer" = [])),
    request_body = CardRequest,
    responses((status = 201, description = "The card is saved; the payment token is shown once", body = PaymentMethodBody),
        (status = 400, description = "invalid_request naming the field (bad number, expired, bad cvc)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, description = "card_declined: the card refuses charges", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "limit_reached: the account has 20 saved cards", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The payment gateway is unavailable", body = ErrorBody)))]
pub async fn post_payment_method(
    State(app): State<App>,
    AccountId(account): AccountId,
    Body(req): Body<CardRequest>,
) -> Result<(StatusCode, Json<PaymentMethodBody>), ApiError> {
    let card = CardInput {
        number: req
            .number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect(),
        exp_month: req.exp_month,
        exp_year: req.exp_year,
        cvc: req.cvc,
    };
    let now = app.clock.now();
    // The card input moves into the gateway call and is dropped there; only what the
    // gateway hands back (brand, last 4, behaviour) is kept.
    let saved = gateway(&app, move |g| g.save_card(&card, now)).await?;
    let token = app.ids.secret("pm_");
    let hash = token.hash();
    let row = PaymentMethodRow {
        account_id: account,
        id: app.ids.id("card"),
        brand: saved.brand,
        last4: saved.last4,
        exp_month: req.exp_month,
        exp_year: req.exp_year,
        behavior: saved.behavior,
    };
    let body = PaymentMethodBody {
        payment_token: token.expose().to_owned(),
        brand: row.brand.clone(),
        last4: row.last4.clone(),
        exp_month: row.exp_month,
        exp_year: row.exp_year,
    };
    app.writer
        .run(move |ctx| {
            ctx.account(&row.account_id)?;
            crate::limits::check_saved_cards(ctx.tx, &row.account_id)?;
            store::insert_payment_method(ctx.tx, &hash, &row, ctx.now)?;
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(body)))
}

/// The `Idempotency-Key` header: required, 1 to 200 characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::invalid("Idempotency-Key: the header is required"))?;
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key: must be visible ASCII"))?;
    check_label("Idempotency-Key", key)?;
    Ok(key.to_owned())
}

/// What a purchase request buys: (pack, credits, price).
fn priced(app: &App, req: &PurchaseRequest) -> Result<(Option<String>, Credits, Cents), ApiError> {
    match (&req.pack, req.custom_cents) {
        (Some(pack), None) => {
            let p = app.catalog.pack(pack)?;
            Ok((Some(p.id.clone()), p.credits, p.price_cents))
        }
        (None, Some(cents)) => {
            let credits = app.catalog.custom.credits_for(Cents(cents))?;
            Ok((None, credits, Cents(cents)))
        }
        _ => Err(ApiError::invalid(
            "body: give exactly one of pack or custom_cents",
        )),
    }
}

async fn purchase_body(app: &App, row: &IntentRow) -> Result<PurchaseBody, ApiError> {
    let detail = Detail::of(row)?;
    let available = match detail.available_after {
        Some(a) => a,
        None => app
            .view(&row.account_id)
            .await?
            .map(|v| v.state.available().micros())
            .unwrap_or(0),
    };
    Ok(PurchaseBody {
        id: row.id.clone(),
        credits: row.credits,
        price_cents: row.price_cents,
        status: row.status.clone(),
        balance: AvailableBody { available },
        source: row.source.clone(),
        pack: row.pack.clone(),
        created_at: row.created_at.clone(),
        completed_at: row.completed_at.clone(),
    })
}

/// A failed intent as the error the client gets.
fn declined(row: &IntentRow) -> ApiError {
    let reason = Detail::of(row)
        .ok()
        .and_then(|d| d.failure)
        .unwrap_or_else(|| "card declined".into());
    ApiError::CardDeclined(reason)
}

#[utoipa::path(post, path = "/v1/purchases", tag = "payments", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Client-chosen, 1 to 200 characters; a retry with the same key and body returns the original purchase and never charges twice")),
    request_body = PurchaseRequest,
    responses((status = 201, description = "Charged and credited", body = PurchaseBody),
        (status = 202, description = "Recorded, the charge's outcome not known yet (`status: pending`); the server finishes it by itself", body = PurchaseBody),
        (status = 400, description = "invalid_request: missing Idempotency-Key, not exactly one of pack/custom_cents, unknown pack, custom amount out of range", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, description = "card_declined (the purchase is recorded as failed and its key freed), or payment_method_required for an unknown payment token", body = ErrorBody),
        (status = 409, description = "idempotency_conflict: the key names a pending or succeeded purchase with another body", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "The purchase could not be recorded; the card was not touched", body = ErrorBody)))]
pub async fn post_purchase(
    State(app): State<App>,
    AccountId(account): AccountId,
    headers: HeaderMap,
    Body(req): Body<PurchaseRequest>,
) -> Result<(StatusCode, Json<PurchaseBody>), ApiError> {
    let key = idempotency_key(&headers)?;
    let (pack, credits, cents) = priced(&app, &req)?;
    let token = payment_token("payment_token", &req.payment_token)?;
    // The fingerprint names the card by its token's hash: the token itself is stored nowhere.
    let hash = body_hash(&(&req.pack, req.custom_cents, hex(&token.0)));
    saved_method(&app, &account, token).await?;
    let order = purchase::Order {
        pack,
        credits,
        cents,
        card: token,
        key,
        body_hash: hash.to_vec(),
    };
    // Run to the end even if the client hangs up: the outcome must be recorded.
    let task = {
        let app = app.clone();
        tokio::spawn(async move { purchase::buy(&app, &account, order).await })
    };
    let row = task
        .await
        .map_err(|e| ApiError::Internal(format!("purchase task: {e}")))??;
    match row.status.as_str() {
        intent::FAILED => Err(declined(&row)),
        intent::PENDING => Ok((StatusCode::ACCEPTED, Json(purchase_body(&app, &row).await?))),
        _ => Ok((StatusCode::CREATED, Json(purchase_body(&app, &row).await?))),
    }
}

fn purchase_item(row: IntentRow) -> PurchaseItem {
    let detail = Detail::of(&row).unwrap_or_default();
    PurchaseItem {
        id: row.id,
        credits: row.credits,
        price_cents: row.price_cents,
        status: row.status,
        source: row.source,
        pack: row.pack,
        created_at: row.created_at,
        completed_at: row.completed_at,
        failure_reason: detail.failure,
        plan: detail.plan,
    }
}

#[utoipa::path(get, path = "/v1/purchases", tag = "payments", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, description = "Purchases oldest first: manual, auto-refills and plan charges, in every status", body = PurchasePage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn list_purchases(
    State(app): State<App>,
    AccountId(account): AccountId,
    Query(page): Query<PageQuery>,
) -> Result<Json<PurchasePage>, ApiError> {
    let (after, limit) = page.resolve()?;
    let rows = app
        .read(move |c| store::purchases_page(c, &account, after, limit + 1))
        .await?;
    let more = rows.len() > limit as usize;
    let last = rows
        .get(..limit as usize)
        .unwrap_or(&rows)
        .last()
        .map(|r| r.n);
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(purchase_item)
        .collect();
    let next = if more {
        last.map(|n| n.to_string())
    } else {
        None
    };
    Ok(Json(PurchasePage { items, next }))
}

#[utoipa::path(get, path = "/v1/purchases/{id}", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path, description = "A purchase id")),
    responses((status = 200, body = PurchaseItem),
        (status = 401, body = ErrorBody), (status = 404, description = "No such purchase in this account", body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn get_purchase(
    State(app): State<App>,
    AccountId(account): AccountId,
    Path(id): Path<String>,
) -> Result<Json<PurchaseItem>, ApiError> {
    let row = app
        .read(move |c| store::intent(c, &account, &id))
        .await?
        .filter(|r| r.kind == "charge")
        .ok_or(ApiError::NotFound("purchase"))?;
    Ok(Json(purchase_item(row)))
}

/// The last 4 digits of the card auto-refill charges, if one is set.
fn refill_card_last4(conn: store::Db<'_>, account: &str) -> store::Result<Option<String>> {
    let Some(hash) = store::auto_refill_method(conn, account)? else {
        return Ok(None);
    };
    Ok(store::payment_method(conn, &hash)?.map(|m| m.last4))
}

fn auto_refill_body(state: &Account, last4: Option<String>, now: DateTime<Utc>) -> AutoRefillBody {
    let ar = &state.auto_refill;
    let settings = ar.settings.as_ref();
    // The count belongs to the month it was made in; a new month starts at zero.
    let this_month = ar.month_key == local_month_key(state.timezone, now);
    AutoRefillBody {
        enabled: ar.enabled(),
        threshold: settings.map(|s| s.threshold.micros()),
        pack: settings.map(|s| s.pack.clone()),
        payment_token_last4: last4,
        monthly_limit: settings.map(|s| s.monthly_limit),
        refills_this_month: if this_month { ar.refills_this_month } else { 0 },
        disabled_reason: ar.disabled_reason.clone(),
    }
}

#[utoipa::path(get, path = "/v1/auto-refill", tag = "payments", security(("bearer" = [])),
    responses((status = 200, body = AutoRefillBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn get_auto_refill(
    State(app): State<App>,
    AccountId(account): AccountId,
) -> Result<Json<AutoRefillBody>, ApiError> {
    let view = app
        .view(&account)
        .await?
        .ok_or(ApiError::NotFound("account"))?;
    let last4 = app.read(move |c| refill_card_last4(c, &account)).await?;
    Ok(Json(auto_refill_body(&view.state, last4, app.clock.now())))
}

#[utoipa::path(put, path = "/v1/auto-refill", tag = "payments", security(("bearer" = [])),
    request_body = AutoRefillRequest,
    responses((status = 200, description = "The new settings", body = AutoRefillBody),
        (status = 400, description = "invalid_request naming the field", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, description = "payment_method_required: the payment token is not one of this account's cards", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn put_auto_refill(
    State(app): State<App>,
    AccountId(account): AccountId,
    Body(req): Body<AutoRefillRequest>,
) -> Result<Json<AutoRefillBody>, ApiError> {
    if req.threshold < 0 {
        return Err(ApiError::invalid(
            "threshold: must be at least 0 micro-credits",
        ));
    }
    let monthly_limit = u32::try_from(req.monthly_limit)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| ApiError::invalid("monthly_limit: must be between 1 and 100"))?;
    app.catalog.pack(&req.pack)?;
    let card = match &req.payment_token {
        Some(t) => {
            let hash = payment_token("payment_token", t)?;
            Some((hash, saved_method(&app, &account, hash).await?.last4))
        }
        None if req.enabled => {
            return Err(ApiError::invalid(
                "payment_token: required to turn auto-refill on",
            ))
        }
        None => None,
    };
    let settings = AutoRefillSettings {
        enabled: req.enabled,
        threshold: Credits::from_micros(req.threshold),
        pack: req.pack,
        monthly_limit,
    };
    let body = app
        .writer
        .run(move |ctx| {
            ctx.account(&account)?;
            let last4 = match card {
                Some((hash, last4)) => {
                    store::set_auto_refill_method(ctx.tx, &account, &hash)?;
                    last4
                }
                None => refill_card_last4(ctx.tx, &account)?.ok_or_else(|| {
                    ApiError::invalid("payment_token: required, no card is set for auto-refill yet")
                })?,
            };
            ctx.apply(&account, Command::ConfigureAutoRefill { settings })?;
            let now = ctx.now;
            Ok(auto_refill_body(
                &ctx.account(&account)?.state,
                Some(last4),
                now,
            ))
        })
        .await?;
    Ok(Json(body))
}
