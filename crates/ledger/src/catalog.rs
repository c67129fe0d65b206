//! What can be bought and used: plans, packs, custom pricing, model rates. The defaults are
//! the catalog of api.md; a server may load another, so nothing else hard-codes these figures.

use serde::{Deserialize, Serialize};

use crate::{Cadence, Cents, Credits, LedgerError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    /// Granted at each billing period start, expiring at the next.
    pub subscription: Credits,
    /// Granted at each local midnight, expiring at the next.
    pub daily: Credits,
    pub price_cents: Cents,
    pub cadence: Cadence,
}

impl Plan {
    /// The subscription allowance over a year, used to tell an upgrade from a downgrade
    /// across cadences (pro monthly and pro_annual both give 6,000 a year).
    pub fn yearly_allowance(&self) -> i128 {
        let per = self.subscription.micros() as i128;
        match self.cadence {
            Cadence::Days30 => per * 365 / 30,
            Cadence::Monthly => per * 12,
            Cadence::Yearly => per,
        }
    }

    /// An upgrade gives strictly more: a larger yearly allowance, or the same with a larger
    /// daily allowance. Anything else (including a sideways move) waits for the period end.
    pub fn is_upgrade_from(&self, old: &Plan) -> bool {
        (self.yearly_allowance(), self.daily) > (old.yearly_allowance(), old.daily)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pack {
    pub id: String,
    pub credits: Credits,
    pub price_cents: Cents,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomPricing {
    pub credits_per_dollar: i64,
    pub min_cents: Cents,
    pub max_cents: Cents,
}

impl CustomPricing {
    /// Credits bought for `cents`, or why that amount cannot be bought. Exact: 25 credits
    /// per dollar is 250,000 µcr per cent, so no rounding happens with the default rate.
    pub fn credits_for(&self, cents: Cents) -> Result<Credits, LedgerError> {
        if cents < self.min_cents || cents > self.max_cents {
            return Err(LedgerError::CustomAmountOutOfRange {
                cents,
                min: self.min_cents,
                max: self.max_cents,
            });
        }
        let micros = (cents.0 as i128) * (self.credits_per_dollar as i128) * 1_000_000 / 100;
        i64::try_from(micros)
            .map(Credits::from_micros)
            .map_err(|_| LedgerError::Overflow)
    }
}

/// Model rates in micro-credits per token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    pub input_rate: i64,
    pub output_rate: i64,
    pub cached_input_rate: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub plans: Vec<Plan>,
    pub packs: Vec<Pack>,
    pub custom: CustomPricing,
    pub models: Vec<Model>,
}

impl Catalog {
    pub fn plan(&self, id: &str) -> Result<&Plan, LedgerError> {
        self.plans
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| LedgerError::UnknownPlan(id.to_owned()))
    }

    pub fn pack(&self, id: &str) -> Result<&Pack, LedgerError> {
        self.packs
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| LedgerError::UnknownPack(id.to_owned()))
    }

    pub fn model(&self, id: &str) -> Result<&Model, LedgerError> {
        self.models
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| LedgerError::UnknownModel(id.to_owned()))
    }
}

fn credits(whole: i64) -> Credits {
    Credits::from_micros(whole * crate::MICROS_PER_CREDIT)
}

impl Default for Catalog {
    /// The catalog of api.md.
    fn default() -> Self {
        let plan = |id: &str, sub: i64, daily: i64, cents: i64, cadence| Plan {
            id: id.to_owned(),
            subscription: credits(sub),
            daily: credits(daily),
            price_cents: Cents(cents),
            cadence,
        };
        let pack = |id: &str, c: i64, cents: i64| Pack {
            id: id.to_owned(),
            credits: credits(c),
            price_cents: Cents(cents),
        };
        let model = |id: &str, rate: i64| Model {
            id: id.to_owned(),
            input_rate: rate,
            output_rate: rate,
            cached_input_rate: 0,
        };
        Catalog {
            plans: vec![
                plan("free", 100, 5, 0, Cadence::Days30),
                plan("pro", 500, 5, 2000, Cadence::Monthly),
                plan("pro_annual", 6000, 5, 20000, Cadence::Yearly),
                plan("team", 2500, 10, 10000, Cadence::Monthly),
            ],
            packs: vec![
                pack("pack_500", 500, 2000),
                pack("pack_2500", 2500, 10000),
                pack("pack_12500", 12500, 50000),
            ],
            custom: CustomPricing {
                credits_per_dollar: 25,
                min_cents: Cents(500),
                max_cents: Cents(100_000),
            },
            models: vec![
                model("lite", 50),
                model("standard", 100),
                model("premium", 300),
            ],
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_custom_price_at_25_credits_per_dollar() {
        let c = Catalog::default();
        for p in &c.packs {
            assert_eq!(
                c.custom.credits_for(p.price_cents),
                Ok(p.credits),
                "{}",
                p.id
            );
        }
        assert_eq!(
            c.custom.credits_for(Cents(501)),
            Ok(Credits::from_micros(125_250_000))
        );
        assert!(c.custom.credits_for(Cents(499)).is_err());
        assert!(c.custom.credits_for(Cents(100_001)).is_err());
    }

    #[test]
    fn upgrades_are_told_from_downgrades_across_cadences() {
        let c = Catalog::default();
        let p = |id| c.plan(id).unwrap();
        assert!(p("pro").is_upgrade_from(p("free")));
        assert!(p("team").is_upgrade_from(p("pro")));
        assert!(p("team").is_upgrade_from(p("pro_annual")));
        assert!(!p("pro_annual").is_upgrade_from(p("pro")));
        assert!(!p("pro").is_upgrade_from(p("pro_annual")));
        assert!(!p("free").is_upgrade_from(p("pro")));
    }
}
