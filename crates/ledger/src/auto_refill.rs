//! The auto-refill decision: when a falling balance buys exactly one pack.
//!
//! One refill per downward crossing of the threshold, never two in flight, re-armed only
//! once the balance is back at or above the threshold, at most `monthly_limit` a month, and
//! turned off by a decline. The rules live here so the server's concurrency cannot bend them:
//! the single writer asks `decide` after every change of the available balance.

use serde::{Deserialize, Serialize};

use crate::Credits;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoRefillSettings {
    pub enabled: bool,
    pub threshold: Credits,
    pub pack: String,
    pub monthly_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoRefill {
    pub settings: Option<AutoRefillSettings>,
    /// True once the balance has been at or above the threshold since the last refill.
    pub armed: bool,
    /// The refill bought but not yet answered by the payment gateway.
    pub in_flight: Option<String>,
    /// Successful refills in `month_key`.
    pub refills_this_month: u32,
    pub month_key: i64,
    /// Why the account turned auto-refill off (a decline), shown to the user.
    pub disabled_reason: Option<String>,
}

impl Default for AutoRefill {
    fn default() -> Self {
        AutoRefill {
            settings: None,
            armed: true,
            in_flight: None,
            refills_this_month: 0,
            month_key: 0,
            disabled_reason: None,
        }
    }
}

impl AutoRefill {
    pub fn enabled(&self) -> bool {
        self.settings.as_ref().is_some_and(|s| s.enabled)
    }

    /// New settings from the user. Turning it on arms it, so the next charge while already
    /// below the threshold buys a refill: that is why people turn it on. Saving settings
    /// that were already on (a new limit, a new pack) does not re-arm it: only the balance
    /// coming back to the threshold does, or the next refill would not follow a crossing.
    pub fn configure(&mut self, settings: AutoRefillSettings) {
        if settings.enabled && !self.enabled() {
            self.armed = true;
            self.disabled_reason = None;
        }
        self.settings = Some(settings);
    }

    /// Starts counting a new month's refills when `month_key` is not the month counted.
    pub(crate) fn roll_month(&mut self, month_key: i64) {
        if self.month_key != month_key {
            self.month_key = month_key;
            self.refills_this_month = 0;
        }
    }

    /// Called after every change of the available balance caused by spending (a charge, a
    /// hold, a settle, an expiry) and after credits arrive. Returns the pack to buy, having
    /// marked it in flight under `refill_id`, or `None`.
    pub fn decide(
        &mut self,
        available: Credits,
        month_key: i64,
        refill_id: impl FnOnce() -> String,
    ) -> Option<String> {
        self.roll_month(month_key);
        let settings = self.settings.as_ref()?;
        if available >= settings.threshold {
            self.armed = true;
            return None;
        }
        if !settings.enabled
            || !self.armed
            || self.in_flight.is_some()
            || self.refills_this_month >= settings.monthly_limit
        {
            return None;
        }
        let pack = settings.pack.clone();
        self.armed = false;
        self.in_flight = Some(refill_id());
        Some(pack)
    }

    /// Rearms only (credits arrived); never buys.
    pub fn observe_credit(&mut self, available: Credits) {
        if let Some(s) = &self.settings {
            if available >= s.threshold {
                self.armed = true;
            }
        }
    }

    /// The gateway answered for `refill_id`. Returns false when that refill is not the one
    /// in flight (a stale or repeated answer), which then changes nothing.
    pub fn settle(&mut self, refill_id: &str, charged: bool, reason: Option<String>) -> bool {
        if self.in_flight.as_deref() != Some(refill_id) {
            return false;
        }
        self.in_flight = None;
        if charged {
            self.refills_this_month += 1;
        } else {
            if let Some(s) = &mut self.settings {
                s.enabled = false;
            }
            self.disabled_reason = reason.or_else(|| Some("card declined".into()));
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn on(threshold: i64, limit: u32) -> AutoRefill {
        let mut a = AutoRefill::default();
        a.configure(AutoRefillSettings {
            enabled: true,
            threshold: Credits::from_micros(threshold),
            pack: "pack_500".into(),
            monthly_limit: limit,
        });
        a
    }

    #[test]
    fn one_refill_per_crossing_and_rearm_only_above_threshold() {
        let mut a = on(100, 10);
        assert_eq!(a.decide(Credits::from_micros(150), 1, || "r1".into()), None);
        assert_eq!(
            a.decide(Credits::from_micros(90), 1, || "r1".into()),
            Some("pack_500".into())
        );
        // Still below, and in flight: nothing.
        assert_eq!(a.decide(Credits::from_micros(80), 1, || "r2".into()), None);
        assert!(a.settle("r1", true, None));
        // Still below after the refill: not re-armed, nothing.
        assert_eq!(a.decide(Credits::from_micros(70), 1, || "r2".into()), None);
        a.observe_credit(Credits::from_micros(100));
        assert_eq!(
            a.decide(Credits::from_micros(99), 1, || "r2".into()),
            Some("pack_500".into())
        );
    }

    #[test]
    fn a_decline_turns_it_off_and_a_stale_answer_changes_nothing() {
        let mut a = on(100, 10);
        assert!(a.decide(Credits::ZERO, 1, || "r1".into()).is_some());
        assert!(!a.settle("other", false, None));
        assert!(a.settle("r1", false, Some("card_declined".into())));
        assert!(!a.enabled());
        assert_eq!(a.disabled_reason.as_deref(), Some("card_declined"));
        a.observe_credit(Credits::from_micros(500));
        assert_eq!(a.decide(Credits::ZERO, 1, || "r2".into()), None);
    }

    #[test]
    fn the_monthly_limit_counts_per_month() {
        let mut a = on(100, 1);
        assert!(a.decide(Credits::ZERO, 1, || "r1".into()).is_some());
        a.settle("r1", true, None);
        a.observe_credit(Credits::from_micros(200));
        assert_eq!(a.decide(Credits::ZERO, 1, || "r2".into()), None);
        assert!(a.decide(Credits::ZERO, 2, || "r2".into()).is_some());
    }
}
