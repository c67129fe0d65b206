//! Payment methods, purchases and auto-refill: the only handlers that talk to the payment
//! gateway. A charge is slow I/O, so it happens outside the writer, keyed so that a retry
//! never charges twice; its result then enters the ledger through the writer like any write.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use creditbar_ledger::schedule::local_month_key;
use creditbar_ledger::{
    Account, AutoRefillSettings, Cents, Command, Credits, RefillOutcome, Reply,
};
use rusqlite::Connection;

use crate::api::{
    AutoRefillBody, AutoRefillRequest, AvailableBody, CardRequest, PaymentMethodBody, PurchaseBody,
    PurchaseItem, PurchasePage, PurchaseRequest,
};
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{body_hash, AccountId, Body, PageQuery, Query};
use crate::gateway::{CardInput, GatewayError};
use crate::routes::usage::check_label;
use crate::secret::TokenHash;
use crate::store::{self, ts, PaymentMethodRow};

/// Attempts at the gateway before an auto-refill counts as declined (the gateway was down).
const REFILL_ATTEMPTS: u32 = 3;

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
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
async fn saved_method(
    app: &App,
    account: &str,
    token: TokenHash,
) -> Result<PaymentMethodRow, ApiError> {
    let method = app.read(move |c| store::payment_method(c, &token)).await?;
    method
        .filter(|m| m.account_id == account)
        .ok_or(ApiError::PaymentMethodRequired)
}

fn payment_token(field: &str, token: &str) -> Result<TokenHash, ApiError> {
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

/// Holds the per-(account, key) turn, so parallel retries of one purchase run one at a
/// time and only the first reaches the gateway. Dropping it frees the map entry once no
/// one else waits for it.
struct PurchaseTurn {
    app: App,
    name: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl PurchaseTurn {
    async fn take(app: &App, account: &str, key: &str) -> PurchaseTurn {
        let name = format!("{account}\u{0}{key}");
        let lock = {
            let mut map = app.purchase_locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(name.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        PurchaseTurn {
            app: app.clone(),
            name,
            lock,
            guard: Some(guard),
        }
    }
}

impl Drop for PurchaseTurn {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self
            .app
            .purchase_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // The map's reference and ours: nobody else waits.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.name);
        }
    }
}

#[utoipa::path(post, path = "/v1/purchases", tag = "payments", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Client-chosen, 1 to 200 characters; a retry with the same key and body returns the original purchase and never charges twice")),
    request_body = PurchaseRequest,
    responses((status = 201, body = PurchaseBody),
        (status = 400, description = "invalid_request: missing Idempotency-Key, not exactly one of pack/custom_cents, unknown pack, custom amount out of range", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, description = "card_declined, or payment_method_required for an unknown payment token", body = ErrorBody),
        (status = 409, description = "idempotency_conflict: the key was used with another body", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "The payment gateway is unavailable; nothing was charged or recorded", body = ErrorBody)))]
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
    let method = saved_method(&app, &account, token).await?;
    // Run to the end even if the client hangs up: once the card is charged, the purchase
    // must be recorded.
    let task = tokio::spawn(async move {
        let _turn = PurchaseTurn::take(&app, &account, &key).await;
        let (a, k) = (account.clone(), key.clone());
        if let Some(stored) = app
            .read(move |c| store::idempotent_get(c, &a, "purchase", &k))
            .await?
        {
            if stored.body_hash != hash {
                return Err(ApiError::IdempotencyConflict);
            }
            return serde_json::from_str(&stored.response)
                .map_err(|e| ApiError::Internal(format!("stored response: {e}")));
        }
        // Keyed by the body too: after a decline (never stored), the same key with another
        // card is a new charge, not a replay of the decline.
        let charge_key = format!("{account}:{key}:{}", hex(&hash[..8]));
        let now = app.clock.now();
        let behavior = method.behavior;
        gateway(&app, move |g| {
            g.charge(&charge_key, &token, &behavior, cents.0, now)
        })
        .await?;
        let id = app.ids.id("pur");
        let (_, body) = app
            .writer
            .run(move |ctx| {
                ctx.idempotent(&account, "purchase", &key, &hash, |ctx| {
                    let command = Command::Purchase {
                        id: id.clone(),
                        credits,
                        price_cents: cents,
                    };
                    let Reply::Purchased { available } = ctx.apply(&account, command)? else {
                        return Err(ApiError::Internal("unexpected reply to a purchase".into()));
                    };
                    store::insert_purchase(
                        ctx.tx,
                        &account,
                        &id,
                        ctx.now,
                        "manual",
                        pack.as_deref(),
                        credits.micros(),
                        cents.0,
                        "succeeded",
                    )?;
                    let body = PurchaseBody {
                        id: id.clone(),
                        credits: credits.micros(),
                        price_cents: cents.0,
                        status: "succeeded".into(),
                        balance: AvailableBody {
                            available: available.micros(),
                        },
                        source: "manual".into(),
                        pack: pack.clone(),
                        created_at: ts(ctx.now),
                    };
                    Ok((201, json(&body)?))
                })
            })
            .await?;
        Ok(body)
    });
    let body = task
        .await
        .map_err(|e| ApiError::Internal(format!("purchase task: {e}")))??;
    Ok((StatusCode::CREATED, Json(from_json(body)?)))
}

#[utoipa::path(get, path = "/v1/purchases", tag = "payments", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, description = "Purchases oldest first, auto-refills included (declined refills too)", body = PurchasePage),
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
        .map(|r| PurchaseItem {
            id: r.id,
            credits: r.credits,
            price_cents: r.price_cents,
            status: r.status,
            source: r.source,
            pack: r.pack,
            created_at: r.created_at,
        })
        .collect();
    let next = if more {
        last.map(|n| n.to_string())
    } else {
        None
    };
    Ok(Json(PurchasePage { items, next }))
}

/// The last 4 digits of the card auto-refill charges, if one is set.
fn refill_card_last4(conn: &Connection, account: &str) -> rusqlite::Result<Option<String>> {
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
        .views
        .get(&account)
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
            Ok(auto_refill_body(
                &ctx.account(&account)?.state,
                Some(last4),
                ctx.now,
            ))
        })
        .await?;
    Ok(Json(body))
}

/// Asks the gateway for a refill the ledger decided on; never fails, a failure is a decline.
async fn refill_outcome(
    app: &App,
    account: &str,
    refill_id: &str,
    pack: &str,
) -> (RefillOutcome, i64, i64) {
    let Ok(p) = app.catalog.pack(pack) else {
        let reason = format!("pack `{pack}` is no longer offered");
        return (RefillOutcome::Declined { reason }, 0, 0);
    };
    let (credits, cents) = (p.credits, p.price_cents);
    let declined = |reason: String| {
        (
            RefillOutcome::Declined { reason },
            credits.micros(),
            cents.0,
        )
    };
    let a = account.to_owned();
    let method = app
        .read(move |c| match store::auto_refill_method(c, &a)? {
            Some(hash) => Ok(store::payment_method(c, &hash)?.map(|m| (hash, m))),
            None => Ok(None),
        })
        .await;
    let (hash, method) = match method {
        Ok(Some(found)) => found,
        Ok(None) => return declined("no card is set for auto-refill".into()),
        Err(e) => {
            tracing::warn!(error = %e, "auto-refill: cannot read the card");
            return declined("the saved card could not be read".into());
        }
    };
    for attempt in 1..=REFILL_ATTEMPTS {
        let (key, behavior, now) = (
            refill_id.to_owned(),
            method.behavior.clone(),
            app.clock.now(),
        );
        match gateway(app, move |g| g.charge(&key, &hash, &behavior, cents.0, now)).await {
            Ok(()) => {
                let outcome = RefillOutcome::Charged {
                    credits,
                    price_cents: cents,
                };
                return (outcome, credits.micros(), cents.0);
            }
            Err(GatewayError::Declined(reason)) | Err(GatewayError::Invalid(reason)) => {
                return declined(reason)
            }
            Err(GatewayError::Unavailable(e)) => {
                tracing::warn!(error = %e, attempt, "auto-refill: payment gateway unavailable");
                if attempt < REFILL_ATTEMPTS {
                    tokio::time::sleep(std::time::Duration::from_secs(1 << attempt)).await;
                }
            }
        }
    }
    declined("the payment gateway was unavailable".into())
}

/// Handles an auto-refill the writer decided on: charge the saved card (keyed by the refill
/// id, so running it twice charges once), then record the outcome in the ledger. A decline
/// turns auto-refill off in the ledger and tells the user (`refill_failed`).
pub async fn run_refill(app: App, account: String, refill_id: String, pack: String) {
    let (outcome, credits, cents) = refill_outcome(&app, &account, &refill_id, &pack).await;
    let status = match outcome {
        RefillOutcome::Charged { .. } => "succeeded",
        RefillOutcome::Declined { .. } => "declined",
    };
    for attempt in 1..=REFILL_ATTEMPTS {
        let (account, id, pack, outcome) = (
            account.clone(),
            refill_id.clone(),
            pack.clone(),
            outcome.clone(),
        );
        let recorded = app
            .writer
            .run(move |ctx| {
                let command = Command::RefillResult {
                    refill_id: id.clone(),
                    outcome,
                };
                match ctx.apply(&account, command) {
                    Ok(_) => {}
                    // Not the refill in flight: this answer was already recorded.
                    Err(ApiError::IdempotencyConflict) => return Ok(()),
                    Err(e) => return Err(e),
                }
                store::insert_purchase(
                    ctx.tx,
                    &account,
                    &id,
                    ctx.now,
                    "auto_refill",
                    Some(&pack),
                    credits,
                    cents,
                    status,
                )?;
                Ok(())
            })
            .await;
        match recorded {
            Ok(()) => return,
            // Storage trouble (the batch was rolled back): the same answer can be recorded
            // again. Anything else will not get better by retrying.
            Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => {
                tracing::warn!(error = %e, attempt, %refill_id, "auto-refill: cannot record the outcome");
                tokio::time::sleep(std::time::Duration::from_secs(1 << attempt)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, %refill_id, "auto-refill: outcome refused by the ledger");
                return;
            }
        }
    }
}

/// Restarts the refills that were in flight when the server stopped. The gateway remembers
/// each refill id, so a refill that was charged before the stop is recorded, not charged
/// again.
pub async fn resume_refills(app: &App) {
    let pending = app
        .writer
        .run(|ctx| {
            Ok(ctx
                .memory
                .accounts
                .values()
                .filter_map(|r| {
                    let ar = &r.state.auto_refill;
                    let pack = ar.settings.as_ref()?.pack.clone();
                    Some((r.state.id.clone(), ar.in_flight.clone()?, pack))
                })
                .collect::<Vec<_>>())
        })
        .await;
    match pending {
        Ok(pending) => {
            for (account, refill_id, pack) in pending {
                tokio::spawn(run_refill(app.clone(), account, refill_id, pack));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot resume the refills in flight"),
    }
}
