//! What can be bought and used: plans, packs, custom pricing, model rates, the sign-up
//! grant, where bought credits land and the unit people read. A catalog comes from a file
//! (`catalogs/*.toml`, parsed by `catalog_file`); the default is `catalogs/default.toml`,
//! the catalog of api.md, so nothing here hard-codes a figure.

use serde::{Deserialize, Serialize};

use crate::{Bucket, Cadence, Cents, Credits, LedgerError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    /// Granted at each billing period start, expiring at the next.
    pub subscription: Credits,
    /// Granted at each local midnight, expiring at the next.
    pub daily: Credits,
    pub price_cents: Cents,
    pub cadence: Cadence,
    /// The models this plan may use; `None`: every model of the catalog.
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

impl Plan {
    pub fn allows(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == model))
    }

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
        if self.credits_per_dollar <= 0 {
            return Err(LedgerError::CustomAmountsNotSold);
        }
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
    /// Priced per request instead of per token: this much per completed request.
    #[serde(default)]
    pub request_price: Option<Credits>,
}

/// What the clients show beside credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unit {
    /// Credits only.
    #[default]
    Credits,
    /// "≈ 4.2 M tokens": one credit buys `per_credit` tokens.
    Tokens { per_credit: u64 },
    /// "≈ 130 requests": one credit is `per_credit` requests.
    Requests { per_credit: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The platform's name, for people.
    #[serde(default)]
    pub name: String,
    pub plans: Vec<Plan>,
    pub packs: Vec<Pack>,
    pub custom: CustomPricing,
    pub models: Vec<Model>,
    /// A bonus grant every new account receives (never expires).
    #[serde(default)]
    pub signup_grant: Credits,
    /// Where bought credits land: `purchased`, or `bonus` (seed 001). Never expire.
    #[serde(default = "purchased")]
    pub purchase_bucket: Bucket,
    #[serde(default)]
    pub unit: Unit,
}

fn purchased() -> Bucket {
    Bucket::Purchased
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

    /// Refuses a model the plan does not include, naming the plans that do.
    pub fn check_access(&self, plan: &str, model: &str) -> Result<(), LedgerError> {
        self.model(model)?;
        if self.plan(plan)?.allows(model) {
            return Ok(());
        }
        Err(LedgerError::ModelNotInPlan {
            model: model.to_owned(),
            plan: plan.to_owned(),
            plans: self
                .plans
                .iter()
                .filter(|p| p.allows(model))
                .map(|p| p.id.clone())
                .collect(),
        })
    }
}

impl Default for Catalog {
    /// The catalog of api.md: `catalogs/default.toml`, embedded at build time. Its parse is
    /// checked by a test, so it cannot fail in a build that passed them.
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        Catalog::from_toml(crate::catalog_file::DEFAULT_CATALOG_TOML)
            .expect("catalogs/default.toml is a valid catalog (tested)")
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
