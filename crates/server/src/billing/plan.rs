//! The user's plan changes (`PUT /v1/plan`): an upgrade is charged its prorated price
//! first and takes effect only once that charge succeeded; a downgrade waits for the
//! period end and costs nothing. The card given becomes the plan's card for renewals.

use creditbar_ledger::{Command, PlanQuote, PlanStatus};

use crate::app::App;
use crate::billing::intent::{self, Detail, Source, PENDING};
use crate::billing::machine;
use crate::error::ApiError;
use crate::secret::TokenHash;
use crate::store::{self, IntentRow};

/// The quote for changing `account` to `plan` now.
pub async fn quote(app: &App, account: &str, plan: &str) -> Result<PlanQuote, ApiError> {
    let view = app
        .view(account)
        .await?
        .ok_or(ApiError::NotFound("account"))?;
    Ok(view.state.plan_quote(&app.catalog, plan, app.clock.now())?)
}

/// Changes the plan of `account` as its user asked. Returns the upgrade's charge when there
/// is one (as far as it got), `None` when the change needed no charge.
pub async fn choose(
    app: &App,
    account: &str,
    plan: String,
    card: Option<TokenHash>,
) -> Result<Option<IntentRow>, ApiError> {
    let a = account.to_owned();
    let charge = app
        .writer
        .run_durable(move |ctx| {
            let state = ctx.account(&a)?.state.clone();
            if let Some(card) = &card {
                store::set_plan_method(ctx.tx, &a, card)?;
            }
            match state.plan_quote(ctx.catalog, &plan, ctx.now)? {
                PlanQuote::Same | PlanQuote::Downgrade { .. } => {
                    ctx.apply(&a, Command::SchedulePlan { plan })?;
                    Ok(None)
                }
                PlanQuote::Upgrade {
                    price_cents,
                    credits,
                    ..
                } => {
                    if state.plan_billing.status == PlanStatus::PastDue {
                        return Err(creditbar_ledger::LedgerError::PlanPastDue(state.plan).into());
                    }
                    // One upgrade at a time: a repeat of the same choice (a double click)
                    // joins the charge in flight; another plan waits for it.
                    for r in store::intents_of(ctx.tx, &a)? {
                        let d = Detail::of(&r)?;
                        if r.status == PENDING && r.source == Source::Plan.as_str() && d.upgrade {
                            if d.plan.as_deref() == Some(plan.as_str()) {
                                return Ok(Some(r));
                            }
                            return Err(ApiError::Conflict(format!(
                                "a change to `{}` is being paid for; wait for it to finish",
                                d.plan.unwrap_or_default()
                            )));
                        }
                    }
                    if price_cents.0 == 0 {
                        let command = Command::UpgradePlan {
                            plan,
                            purchase_id: intent::new_id("upg"),
                            credits,
                            price_cents,
                        };
                        ctx.apply(&a, command)?;
                        return Ok(None);
                    }
                    let card =
                        store::plan_method(ctx.tx, &a)?.ok_or(ApiError::PaymentMethodRequired)?;
                    let detail = Detail {
                        plan: Some(plan),
                        upgrade: true,
                        ..Detail::default()
                    };
                    let row = intent::pending(
                        &a,
                        intent::new_id("pur"),
                        Source::Plan,
                        None,
                        credits.micros(),
                        price_cents.0,
                        Some(card),
                        &detail,
                        ctx.now,
                    )?;
                    store::insert_intent(ctx.tx, &row)?;
                    Ok(Some(row))
                }
            }
        })
        .await?;
    let Some(row) = charge else {
        return Ok(None);
    };
    if row.status != PENDING {
        return Ok(Some(row));
    }
    match machine::drive(app, account, &row.id).await {
        Ok(done) => Ok(Some(done)),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => {
            tracing::warn!(intent = %row.id, error = %e, "plan charge left pending");
            Ok(Some(row))
        }
        Err(e) => Err(e),
    }
}
