//! A purchase of credits by hand: a pack or a custom amount, charged to a saved card under
//! the client's idempotency key.

use creditbar_ledger::{Cents, Credits};

use crate::app::App;
use crate::billing::fault::{self, Point};
use crate::billing::intent::{self, Detail, Source, PENDING};
use crate::billing::machine;
use crate::error::ApiError;
use crate::secret::TokenHash;
use crate::store::{self, IntentRow};

/// What the client asked for, checked and priced.
pub struct Order {
    pub pack: Option<String>,
    pub credits: Credits,
    pub cents: Cents,
    pub card: TokenHash,
    /// The client's `Idempotency-Key`, and the fingerprint of the request it names.
    pub key: String,
    pub body_hash: Vec<u8>,
}

/// Buys `order` for `account`: records the intent (or finds the one its key already names),
/// then drives it. Returns the intent as far as it got: `succeeded`, `failed`, or `pending`
/// when the outcome is not known yet (the reconciler finishes it).
///
/// `Unavailable` only when nothing was recorded, so the card was not touched.
pub async fn buy(app: &App, account: &str, order: Order) -> Result<IntentRow, ApiError> {
    fault::at(Point::BeforeRecord);
    let a = account.to_owned();
    let row = app
        .writer
        .run_durable(move |ctx| {
            ctx.account(&a)?;
            if let Some(existing) = store::intent_by_key(ctx.tx, &a, &order.key)? {
                if existing.body_hash.as_deref() != Some(order.body_hash.as_slice()) {
                    return Err(ApiError::IdempotencyConflict);
                }
                return Ok(existing);
            }
            let mut row = intent::pending(
                &a,
                intent::new_id("pur"),
                Source::Manual,
                order.pack,
                order.credits.micros(),
                order.cents.0,
                Some(order.card),
                &Detail::default(),
                ctx.now,
            )?;
            row.idem_key = Some(order.key);
            row.body_hash = Some(order.body_hash);
            store::insert_intent(ctx.tx, &row)?;
            Ok(row)
        })
        .await?;
    if row.status != PENDING {
        return Ok(row);
    }
    match machine::drive(app, account, &row.id).await {
        Ok(done) => Ok(done),
        // Recorded, so not "unavailable": the answer is "pending", and it will finish.
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => {
            tracing::warn!(intent = %row.id, error = ?e, "purchase left pending");
            Ok(row)
        }
        Err(e) => Err(e),
    }
}
