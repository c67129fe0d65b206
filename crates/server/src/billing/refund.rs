//! Refunds (staff only): the purchase's money goes back through the processor, and what is
//! left of its credits leaves the ledger through a `refund` entry, never more than is left.

use crate::app::App;
use crate::billing::intent::{self, Detail, Source, PENDING, SUCCEEDED};
use crate::billing::machine;
use crate::error::ApiError;
use crate::store::{self, IntentRow};

/// Refunds purchase `purchase_id` as refund `id` (the idempotency key). Returns the refund
/// intent as far as it got.
pub async fn refund(
    app: &App,
    id: String,
    purchase_id: String,
    reason: String,
    body_hash: Vec<u8>,
) -> Result<IntentRow, ApiError> {
    let p = purchase_id.clone();
    let purchase = app
        .read(move |c| store::intent_any_account(c, &p))
        .await?
        .filter(|r| r.kind == "charge")
        .ok_or(ApiError::NotFound("purchase"))?;
    let account = purchase.account_id.clone();
    let a = account.clone();
    let row = app
        .writer
        .run_durable(move |ctx| {
            // Locks the account before reading its intents (see machine::complete).
            ctx.account(&a)?;
            if let Some(existing) = store::intent_by_key(ctx.tx, &a, &id)? {
                if existing.kind != "refund"
                    || existing.body_hash.as_deref() != Some(body_hash.as_slice())
                {
                    return Err(ApiError::IdempotencyConflict);
                }
                return Ok(existing);
            }
            let purchase =
                store::intent(ctx.tx, &a, &purchase_id)?.ok_or(ApiError::NotFound("purchase"))?;
            if purchase.status != SUCCEEDED {
                return Err(ApiError::Conflict(format!(
                    "purchase `{purchase_id}` is {}: only a succeeded purchase can be refunded",
                    purchase.status
                )));
            }
            let in_progress = store::intents_of(ctx.tx, &a)?.into_iter().any(|r| {
                r.kind == "refund"
                    && r.status != intent::FAILED
                    && Detail::of(&r).is_ok_and(|d| d.refund_of.as_deref() == Some(&purchase_id))
            });
            if in_progress {
                return Err(ApiError::Conflict(format!(
                    "purchase `{purchase_id}` already has a refund"
                )));
            }
            let detail = Detail {
                refund_of: Some(purchase_id.clone()),
                reason: Some(reason),
                ..Detail::default()
            };
            let mut row = intent::pending(
                &a,
                intent::new_id("ref"),
                Source::Refund,
                purchase.pack.clone(),
                purchase.credits,
                purchase.price_cents,
                None,
                &detail,
                ctx.now,
            )?;
            row.idem_key = Some(id);
            row.body_hash = Some(body_hash);
            store::insert_intent(ctx.tx, &row)?;
            Ok(row)
        })
        .await?;
    if row.status != PENDING {
        return Ok(row);
    }
    match machine::drive(app, &account, &row.id).await {
        Ok(done) => Ok(done),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => {
            tracing::warn!(intent = %row.id, error = %e, "refund left pending");
            Ok(row)
        }
        Err(e) => Err(e),
    }
}
