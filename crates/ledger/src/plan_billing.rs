//! Plans are paid for: when a plan's credits may be granted, and what a plan change costs.
//!
//! A plan the user chose with a card (`by_card`) is charged before its credits arrive: at
//! each renewal the ledger asks for the price (an [`crate::Effect::ChargePlan`]) and grants
//! the subscription allowance only once the payment is recorded. A decline makes the plan
//! past due; the charge is asked again 1 and 3 days after the renewal, and a third decline
//! moves the account to the catalog's free plan. A plan set by staff is comped: it renews
//! without a charge, as it always did.
//!
//! Nothing here talks to a processor: the server turns the effect into a payment intent and
//! answers with [`crate::Command::PlanPayment`]. At most one charge per period is ever in
//! flight, and a new attempt is asked for only after the previous one was declined, so a
//! period can never be paid twice.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{Cadence, Catalog, Cents, Credits, LedgerError, Plan};

/// Declines after which a past-due plan falls back to the free plan (the first charge and
/// its two retries).
pub const MAX_PLAN_ATTEMPTS: u32 = 3;

/// When the retries of a declined renewal are asked, counted from the renewal.
pub fn retry_delay(failures: u32) -> Option<Duration> {
    match failures {
        1 => Some(Duration::days(1)),
        2 => Some(Duration::days(3)),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    #[default]
    Active,
    PastDue,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Active => "active",
            PlanStatus::PastDue => "past_due",
        }
    }
}

/// A renewal charge the ledger waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDue {
    /// Names the period being paid for (`{account}:plan:{period start}`); every attempt
    /// for that period carries it, and a payment for another reference is refused.
    pub reference: String,
    pub plan: String,
    pub price_cents: Cents,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Declined attempts so far.
    pub failures: u32,
    /// An attempt was asked for and not answered yet.
    pub in_flight: bool,
    /// When the next attempt is asked (after a decline).
    pub retry_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlanBilling {
    /// The plan is paid by the user's card (chosen with `PUT /v1/plan`); false for plans
    /// set by staff, which renew free of charge.
    #[serde(default)]
    pub by_card: bool,
    #[serde(default)]
    pub status: PlanStatus,
    #[serde(default)]
    pub due: Option<PlanDue>,
}

impl PlanBilling {
    /// The instant the next attempt must be asked for, if one is waiting.
    pub fn next_retry(&self) -> Option<DateTime<Utc>> {
        self.due
            .as_ref()
            .filter(|d| !d.in_flight)
            .and_then(|d| d.retry_at)
    }
}

/// What changing to a plan would do now, shown before the user confirms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanQuote {
    /// Already on that plan (a pending downgrade would be cancelled).
    Same,
    /// At once: charge `price_cents` first, then grant `credits` until `period_end`.
    Upgrade {
        price_cents: Cents,
        credits: Credits,
        period_end: DateTime<Utc>,
    },
    /// At the next period, free.
    Downgrade { effective_at: DateTime<Utc> },
}

const YEAR_SECONDS: i128 = 365 * 86_400;

fn yearly_price(plan: &Plan) -> i128 {
    let per = plan.price_cents.0 as i128;
    match plan.cadence {
        Cadence::Days30 => per * 365 / 30,
        Cadence::Monthly => per * 12,
        Cadence::Yearly => per,
    }
}

/// The prorated difference between two plans for the time left in the period, floored
/// (to the micro-credit for credits, to the cent for money: never more than the plan's
/// own rate). Within one cadence it is the difference per period scaled by the time left;
/// across cadences (pro_annual to team) allowances and prices are compared per year.
pub fn prorate(
    old: &Plan,
    new: &Plan,
    period: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
    current_cadence: Cadence,
) -> Result<(Credits, Cents), LedgerError> {
    let (start, end) = period;
    let left = (end - now).num_seconds().max(0) as i128;
    let length = (end - start).num_seconds().max(1) as i128;
    let same_cadence = new.cadence == old.cadence && old.cadence == current_cadence;
    let (credits, cents) = if same_cadence {
        let credits =
            (new.subscription.micros() as i128 - old.subscription.micros() as i128).max(0) * left
                / length;
        let cents = (new.price_cents.0 as i128 - old.price_cents.0 as i128).max(0) * left / length;
        (credits, cents)
    } else {
        let credits =
            (new.yearly_allowance() - old.yearly_allowance()).max(0) * left / YEAR_SECONDS;
        let cents = (yearly_price(new) - yearly_price(old)).max(0) * left / YEAR_SECONDS;
        (credits, cents)
    };
    let credits = i64::try_from(credits).map_err(|_| LedgerError::Overflow)?;
    let cents = i64::try_from(cents).map_err(|_| LedgerError::Overflow)?;
    Ok((Credits::from_micros(credits), Cents(cents)))
}

/// The plan an account falls back to when its paid plan cannot be collected: the catalog's
/// free plan (price 0; `free` by name when several are free).
pub fn fallback_plan(catalog: &Catalog) -> Option<&Plan> {
    let free = || catalog.plans.iter().filter(|p| p.price_cents.0 == 0);
    free().find(|p| p.id == "free").or_else(|| free().next())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_upgrade_halfway_through_the_month_costs_half_the_difference() {
        let c = Catalog::default();
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap();
        let (credits, cents) = prorate(
            c.plan("pro").unwrap(),
            c.plan("team").unwrap(),
            (start, end),
            now,
            Cadence::Monthly,
        )
        .unwrap();
        assert_eq!(cents, Cents(4000)); // (10000 - 2000) / 2
        assert_eq!(
            credits,
            Credits::from_micros(1000 * crate::MICROS_PER_CREDIT)
        );
    }

    #[test]
    fn retries_come_one_and_three_days_after_the_renewal_then_stop() {
        assert_eq!(retry_delay(1), Some(Duration::days(1)));
        assert_eq!(retry_delay(2), Some(Duration::days(3)));
        assert_eq!(retry_delay(3), None);
        assert_eq!(fallback_plan(&Catalog::default()).unwrap().id, "free");
    }
}
