//! Drives one payment intent from `pending` to its outcome: a durable read-back, one
//! question to the processor under the intent's id, one fsynced commit of the answer with
//! its effect on the ledger. Safe to run any number of times, from any process, at any
//! moment: the processor answers a repeated key with its first answer, and only a `pending`
//! intent can be completed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use creditbar_ledger::{Cents, Command, Credits, PaymentOutcome, RefillOutcome, Reply};

use crate::app::App;
use crate::billing::fault::{self, Point};
use crate::billing::intent::{Detail, Source, FAILED, PENDING, REFUNDED, SUCCEEDED};
use crate::error::ApiError;
use crate::gateway::{ChargeRequest, GatewayError};
use crate::store::{self, IntentRow};
use crate::writer::Ctx;

/// Per-intent turns inside this process, so parallel retries of one purchase wait for the
/// first instead of all asking the processor (which would still charge once).
#[derive(Default)]
pub struct Turns {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct Turn<'a> {
    turns: &'a Turns,
    id: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Turns {
    async fn take(&self, id: &str) -> Turn<'_> {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(id.to_owned()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        Turn {
            turns: self,
            id: id.to_owned(),
            lock,
            guard: Some(guard),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.turns.map.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference and ours: nobody else waits.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.id);
        }
    }
}

/// What the processor said, in the machine's words.
enum Answer {
    Paid,
    Refused(String),
    /// No answer (timeout, processor down): the intent stays pending.
    Unknown,
}

/// Drives intent `id` of `account` as far as it can go now and returns its row: completed,
/// or still `pending` when the processor did not answer.
pub async fn drive(app: &App, account: &str, id: &str) -> Result<IntentRow, ApiError> {
    let _turn = app.billing_turns.take(id).await;
    // Durable before the card is touched: the read-back is a fsynced commit, so the
    // intent (recorded maybe by a usage charge's ordinary commit) cannot vanish in a power
    // cut after the processor took the money.
    let (a, i) = (account.to_owned(), id.to_owned());
    let (row, behavior) = app
        .writer
        .run_durable(move |ctx| {
            let row = store::intent(ctx.tx, &a, &i)?.ok_or(ApiError::NotFound("purchase"))?;
            let behavior = match &row.card {
                Some(card) => store::payment_method(ctx.tx, card)?.map(|m| m.behavior),
                None => None,
            };
            Ok((row, behavior))
        })
        .await?;
    if row.status != PENDING {
        return Ok(row);
    }
    fault::at(Point::AfterRecord);
    let answer = ask(app, &row, behavior).await?;
    let outcome = match answer {
        Answer::Paid => PaymentOutcome::Paid,
        Answer::Refused(reason) => PaymentOutcome::Declined { reason },
        Answer::Unknown => return Ok(row),
    };
    fault::at(Point::AfterCharge);
    let (a, i) = (account.to_owned(), id.to_owned());
    let row = app
        .writer
        .run_durable(move |ctx| complete(ctx, &a, &i, outcome))
        .await?;
    fault::at(Point::AfterOutcome);
    Ok(row)
}

/// Asks the processor once, off the async threads.
async fn ask(app: &App, row: &IntentRow, behavior: Option<String>) -> Result<Answer, ApiError> {
    let source = Source::parse(&row.source)?;
    let detail = Detail::of(row)?;
    let (gw, now, row2) = (app.gateway.clone(), app.clock.now(), row.clone());
    let result = tokio::task::spawn_blocking(move || {
        let row = row2;
        if source == Source::Refund {
            let of = detail.refund_of.unwrap_or_default();
            return gw.refund(&row.id, &row.account_id, &of, row.price_cents, now);
        }
        let (Some(card), Some(behavior)) = (&row.card, &behavior) else {
            let what = match source {
                Source::AutoRefill => "no card is set for auto-refill",
                Source::Plan => "no card is set for the plan",
                _ => "the saved card is gone",
            };
            return Err(GatewayError::Declined(what.into()));
        };
        if row.price_cents <= 0 {
            return Err(GatewayError::Declined("nothing to charge".into()));
        }
        let charge = ChargeRequest {
            key: &row.id,
            customer: &row.account_id,
            card,
            behavior,
            cents: row.price_cents,
        };
        gw.charge(&charge, now)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("gateway task: {e}")))?;
    Ok(match result {
        Ok(()) => Answer::Paid,
        Err(GatewayError::Declined(r)) | Err(GatewayError::Invalid(r)) => Answer::Refused(r),
        Err(GatewayError::Unavailable(e)) => {
            tracing::warn!(intent = %row.id, error = %e, "payment processor did not answer; the intent stays pending");
            Answer::Unknown
        }
    })
}

/// Records the processor's answer for a pending intent and what it means for the ledger,
/// in the writer's transaction. An intent no longer pending is returned as it is: someone
/// (another request, the reconciler, another process) completed it first.
pub fn complete(
    ctx: &mut Ctx<'_>,
    account: &str,
    id: &str,
    outcome: PaymentOutcome,
) -> Result<IntentRow, ApiError> {
    // The account first: on a shared database its lock orders this completion after any
    // other process's, so the status read next is the one that process committed.
    ctx.account(account)?;
    let row = store::intent(ctx.tx, account, id)?.ok_or(ApiError::NotFound("purchase"))?;
    if row.status != PENDING {
        return Ok(row);
    }
    let mut detail = Detail::of(&row)?;
    let source = Source::parse(&row.source)?;
    let (credits, cents) = (Credits::from_micros(row.credits), Cents(row.price_cents));
    let paid = outcome == PaymentOutcome::Paid;
    if let PaymentOutcome::Declined { reason } = &outcome {
        detail.failure = Some(reason.clone());
    }
    match source {
        Source::Manual => {
            if paid {
                let command = Command::Purchase {
                    id: row.id.clone(),
                    credits,
                    price_cents: cents,
                };
                if let Reply::Purchased { available } = ctx.apply(account, command)? {
                    detail.available_after = Some(available.micros());
                }
            }
        }
        Source::AutoRefill => {
            let refill_id = detail.refill_ref.clone().unwrap_or_default();
            let outcome = match &outcome {
                PaymentOutcome::Paid => RefillOutcome::Charged {
                    purchase_id: row.id.clone(),
                    credits,
                    price_cents: cents,
                },
                PaymentOutcome::Declined { reason } => RefillOutcome::Declined {
                    reason: reason.clone(),
                },
            };
            ctx.apply(account, Command::RefillResult { refill_id, outcome })?;
            crate::metrics::refill_outcome(if paid { "succeeded" } else { "failed" });
        }
        Source::Plan => {
            let plan = detail.plan.clone().unwrap_or_default();
            if detail.upgrade {
                if paid {
                    let command = Command::UpgradePlan {
                        plan,
                        purchase_id: row.id.clone(),
                        credits,
                        price_cents: cents,
                    };
                    ctx.apply(account, command)?;
                }
            } else {
                let command = Command::PlanPayment {
                    reference: detail.plan_reference.clone().unwrap_or_default(),
                    purchase_id: row.id.clone(),
                    outcome: outcome.clone(),
                };
                ctx.apply(account, command)?;
            }
        }
        Source::Refund => {
            if paid {
                let purchase_id = detail.refund_of.clone().unwrap_or_default();
                let command = Command::Refund {
                    id: row.id.clone(),
                    purchase_id: purchase_id.clone(),
                    refunded_cents: cents,
                };
                if let Reply::Refunded { credits_removed } = ctx.apply(account, command)? {
                    detail.credits_removed = Some(credits_removed.micros());
                }
                store::complete_intent(
                    ctx.tx,
                    account,
                    &purchase_id,
                    SUCCEEDED,
                    REFUNDED,
                    ctx.now,
                    &store::intent(ctx.tx, account, &purchase_id)?
                        .map(|p| p.detail)
                        .unwrap_or_else(|| "{}".into()),
                )?;
            }
        }
    }
    let status = if paid { SUCCEEDED } else { FAILED };
    store::complete_intent(
        ctx.tx,
        account,
        id,
        PENDING,
        status,
        ctx.now,
        &detail.to_json()?,
    )?;
    store::intent(ctx.tx, account, id)?.ok_or(ApiError::NotFound("purchase"))
}
