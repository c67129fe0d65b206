//! The alert policy: which notifications to raise, as a pure function of what was known
//! before, the user's settings, and what just arrived. No I/O, no clock; delivery lives in
//! `notify.rs`, persistence in the cache.
//!
//! Rules (product.md, "Notifications"):
//! - once per event, across restarts: notices are handled in `seq` order and the last
//!   handled seq is part of the persisted state;
//! - nothing fires at start for a state already known: the first pass only records;
//! - low balance is the client's call against the user's threshold, once per crossing,
//!   re-armed only when the balance is back above the threshold plus a margin (hysteresis),
//!   so a balance hovering at the threshold does not chatter;
//! - a burst is coalesced: several events of one kind become one notification, and more
//!   than `MAX_SEPARATE` notifications at once become one summary;
//! - each kind can be switched off; daily resets are off by default (they happen daily).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::{Balance, Notice};

/// Notices older than this when first seen are summarised, not told one by one.
pub const SUMMARISE_AFTER_HOURS: i64 = 24;

/// More notifications than this in one pass are folded into one summary.
pub const MAX_SEPARATE: usize = 3;

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum AlertKind {
    LowBalance,
    Exhausted,
    DailyReset,
    SubscriptionReset,
    RefillCharged,
    RefillFailed,
    BonusReceived,
    PurchaseCompleted,
    ReviewResolved,
    ExpiringSoon,
}

impl AlertKind {
    pub const ALL: [AlertKind; 10] = [
        AlertKind::LowBalance,
        AlertKind::Exhausted,
        AlertKind::DailyReset,
        AlertKind::SubscriptionReset,
        AlertKind::RefillCharged,
        AlertKind::RefillFailed,
        AlertKind::BonusReceived,
        AlertKind::PurchaseCompleted,
        AlertKind::ReviewResolved,
        AlertKind::ExpiringSoon,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlertKind::LowBalance => "low_balance",
            AlertKind::Exhausted => "exhausted",
            AlertKind::DailyReset => "daily_reset",
            AlertKind::SubscriptionReset => "subscription_reset",
            AlertKind::RefillCharged => "refill_charged",
            AlertKind::RefillFailed => "refill_failed",
            AlertKind::BonusReceived => "bonus_received",
            AlertKind::PurchaseCompleted => "purchase_completed",
            AlertKind::ReviewResolved => "review_resolved",
            AlertKind::ExpiringSoon => "expiring_soon",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Every kind is on until switched off, except the daily reset (it would fire daily).
    pub fn on_by_default(self) -> bool {
        self != AlertKind::DailyReset
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSettings {
    /// Low-balance threshold in micro-credits.
    pub low_threshold: i64,
    /// Kinds switched away from their default.
    #[serde(default)]
    pub overrides: BTreeMap<AlertKind, bool>,
    /// Opt-in: the desktop app opens the purchase dialog by itself when the low-balance or
    /// out-of-credits alert fires (seed 003: "the purchase panel appears by itself").
    #[serde(default)]
    pub open_purchase_at_low: bool,
    /// How long before plan credits expire (at the renewal) the "expiring soon" alert
    /// fires, in hours.
    #[serde(default = "default_expiry_lead_hours")]
    pub expiry_lead_hours: u32,
    /// More low-balance warnings below `low_threshold` (µcr), each told once per descent:
    /// "warn me at 50, again at 20 and at 5".
    #[serde(default)]
    pub also_below: Vec<i64>,
    /// Opt-in: the desktop draws the rounded balance into its tray icon, for trays that
    /// show only icons (KDE, Windows; Linux's AppIndicator shows no tooltip either).
    #[serde(default)]
    pub number_in_icon: bool,
}

/// A threshold re-arms a tenth above itself (at least one credit), so a balance hovering
/// around it does not warn on every wobble.
pub fn rearm_above(threshold: i64) -> i64 {
    threshold.saturating_add((threshold / 10).max(creditbar_ledger::MICROS_PER_CREDIT))
}

/// A day: enough to use the credits, not so early that it is forgotten.
pub const DEFAULT_EXPIRY_LEAD_HOURS: u32 = 24;

fn default_expiry_lead_hours() -> u32 {
    DEFAULT_EXPIRY_LEAD_HOURS
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            low_threshold: 50 * creditbar_ledger::MICROS_PER_CREDIT,
            overrides: BTreeMap::new(),
            open_purchase_at_low: false,
            expiry_lead_hours: DEFAULT_EXPIRY_LEAD_HOURS,
            also_below: Vec::new(),
            number_in_icon: false,
        }
    }
}

impl AlertSettings {
    pub fn enabled(&self, kind: AlertKind) -> bool {
        self.overrides
            .get(&kind)
            .copied()
            .unwrap_or(kind.on_by_default())
    }

    pub fn set(&mut self, kind: AlertKind, on: bool) {
        if on == kind.on_by_default() {
            self.overrides.remove(&kind);
        } else {
            self.overrides.insert(kind, on);
        }
    }

    /// The balance at which low-balance alerts re-arm: the threshold plus a tenth of it
    /// (at least one credit).
    pub fn rearm_at(&self) -> i64 {
        rearm_above(self.low_threshold)
    }

    /// The extra thresholds that apply: below the main one, positive, highest first.
    pub fn extra_thresholds(&self) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .also_below
            .iter()
            .copied()
            .filter(|t| *t > 0 && *t < self.low_threshold)
            .collect();
        t.sort_unstable_by(|a, b| b.cmp(a));
        t.dedup();
        t
    }
}

/// What the policy remembers between passes (persisted in the cache).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertState {
    pub initialized: bool,
    pub last_notice_seq: u64,
    /// True while a low-balance alert may fire.
    pub low_armed: bool,
    /// The expiry (a plan renewal) already warned about: each is told once.
    #[serde(default)]
    pub expiry_told: Option<chrono::DateTime<chrono::Utc>>,
    /// The extra thresholds (`also_below`) already told in this descent.
    #[serde(default)]
    pub below_told: Vec<i64>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kinds: Vec<AlertKind>,
    pub title: String,
    pub body: String,
}

/// What a notification offers to do, as buttons on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    Buy,
    OpenDashboard,
}

impl AlertAction {
    /// The action's key in the notification (org.freedesktop.Notifications `actions`).
    pub fn key(self) -> &'static str {
        match self {
            AlertAction::Buy => "buy",
            AlertAction::OpenDashboard => "dashboard",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AlertAction::Buy => "Buy credits",
            AlertAction::OpenDashboard => "Open dashboard",
        }
    }

    pub fn parse(key: &str) -> Option<AlertAction> {
        [AlertAction::Buy, AlertAction::OpenDashboard]
            .into_iter()
            .find(|a| a.key() == key)
    }
}

impl Alert {
    /// Running low, out of credits, or a failed refill: the moment to buy, so the
    /// notification offers it (and the dashboard, to see where the credits went).
    pub fn is_buying_moment(&self) -> bool {
        self.kinds.iter().any(|k| {
            matches!(
                k,
                AlertKind::LowBalance | AlertKind::Exhausted | AlertKind::RefillFailed
            )
        })
    }

    pub fn actions(&self) -> Vec<AlertAction> {
        if self.is_buying_moment() {
            vec![AlertAction::Buy, AlertAction::OpenDashboard]
        } else {
            Vec::new()
        }
    }
}

/// Amounts in notifications follow product.md "Amounts shown to people", as the tray and
/// the CLI do: two decimals rounded down, grouped by the user's locale.
fn credits(micros: i64) -> String {
    crate::format::credits_long(micros)
}

fn data_i64(n: &Notice, field: &str) -> i64 {
    n.data.get(field).and_then(|v| v.as_i64()).unwrap_or(0)
}

fn data_str<'a>(n: &'a Notice, field: &str) -> &'a str {
    n.data.get(field).and_then(|v| v.as_str()).unwrap_or("")
}

fn dollars(cents: i64) -> String {
    crate::format::dollars(cents)
}

/// One notice as the kind of alert it is and a line describing it.
fn describe(n: &Notice) -> Option<(AlertKind, String)> {
    let line = match n.kind.as_str() {
        "reset" => {
            let amount = credits(data_i64(n, "amount"));
            return Some(match data_str(n, "bucket") {
                "daily" => (AlertKind::DailyReset, format!("Your daily {amount} are ready.")),
                _ => (AlertKind::SubscriptionReset, format!("Your plan renewed: {amount} for this period.")),
            });
        }
        "exhausted" => (AlertKind::Exhausted, "You are out of credits. AI requests are paused until you buy credits or your allowance resets.".to_owned()),
        "refill_charged" => (
            AlertKind::RefillCharged,
            format!("Auto-refill bought {} for {}.", credits(data_i64(n, "credits")), dollars(data_i64(n, "price_cents"))),
        ),
        "refill_failed" => (
            AlertKind::RefillFailed,
            format!("Auto-refill failed ({}) and is now off. Buy credits or update your card.", data_str(n, "reason")),
        ),
        "grant" => {
            let note = data_str(n, "note");
            let reason = data_str(n, "reason");
            let why = if note.is_empty() { reason.to_owned() } else { format!("{reason}: {note}") };
            (AlertKind::BonusReceived, format!("You received {} ({why}).", credits(data_i64(n, "amount"))))
        }
        "purchase" => (
            AlertKind::PurchaseCompleted,
            format!("Purchase complete: {} for {}.", credits(data_i64(n, "credits")), dollars(data_i64(n, "price_cents"))),
        ),
        "review_resolved" => {
            let amount = data_i64(n, "grant_amount");
            let id = data_str(n, "review_id");
            let which = if id.is_empty() { String::new() } else { format!(" ({id})") };
            let line = if amount > 0 {
                format!("Your usage review{which} was resolved with {} back.", credits(amount))
            } else {
                format!("Your usage review{which} was resolved without credits back; the reviewers' note is in the dashboard and `creditbar reviews`.")
            };
            (AlertKind::ReviewResolved, line)
        }
        _ => return None,
    };
    Some(line)
}

fn title(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::LowBalance => "Credits running low",
        AlertKind::Exhausted => "Out of credits",
        AlertKind::DailyReset => "Daily credits reset",
        AlertKind::SubscriptionReset => "Plan credits renewed",
        AlertKind::RefillCharged => "Auto-refill charged",
        AlertKind::RefillFailed => "Auto-refill failed",
        AlertKind::BonusReceived => "Bonus credits received",
        AlertKind::PurchaseCompleted => "Purchase complete",
        AlertKind::ReviewResolved => "Usage review resolved",
        AlertKind::ExpiringSoon => "Credits expiring soon",
    }
}

/// Several events of one kind in one notification: identical lines once with a count,
/// different ones each on its own line (two grants of different amounts are not "the
/// last one, twice").
fn merge_lines(lines: &[String]) -> String {
    let mut counted: Vec<(&str, usize)> = Vec::new();
    for line in lines {
        match counted.iter_mut().find(|(l, _)| *l == line.as_str()) {
            Some((_, n)) => *n += 1,
            None => counted.push((line, 1)),
        }
    }
    counted
        .iter()
        .map(|(l, n)| match n {
            1 => (*l).to_owned(),
            n => format!("{l} ({n} times)"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Plan credits that expire at the renewal within the lead time: the renewal and a line.
/// Daily credits are left out (they expire every day; a daily warning would be noise),
/// bought credits never expire.
fn expiring(
    b: &Balance,
    settings: &AlertSettings,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(chrono::DateTime<chrono::Utc>, String)> {
    let sub = &b.buckets.subscription;
    let at = sub.next_reset?;
    let lead = chrono::Duration::hours(i64::from(settings.expiry_lead_hours));
    (sub.available > 0 && at > now && at - now <= lead).then(|| {
        (
            at,
            format!(
                "{} from your plan expire at the renewal, in {} ({}).",
                credits(sub.available),
                crate::format::countdown(now, at),
                at.format("%Y-%m-%d %H:%M UTC")
            ),
        )
    })
}

/// One pass of the policy. `notices` may include ones already handled (they are skipped by
/// seq); `balance` is the latest known balance, if any.
pub fn decide(
    state: &AlertState,
    settings: &AlertSettings,
    notices: &[Notice],
    balance: Option<&Balance>,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<Alert>, AlertState) {
    let mut next = state.clone();
    let newest = notices.iter().map(|n| n.seq).max().unwrap_or(0);
    next.last_notice_seq = next.last_notice_seq.max(newest);
    let expiring = balance.and_then(|b| expiring(b, settings, now));
    if !state.initialized {
        // First sight: record what is already true, announce nothing.
        next.initialized = true;
        next.low_armed = balance.is_none_or(|b| b.available >= settings.low_threshold);
        next.expiry_told = expiring.map(|(at, _)| at);
        next.below_told = match balance {
            Some(b) => settings
                .extra_thresholds()
                .into_iter()
                .filter(|t| b.available < *t)
                .collect(),
            None => Vec::new(),
        };
        return (Vec::new(), next);
    }
    let mut fresh: Vec<&Notice> = notices
        .iter()
        .filter(|n| n.seq > state.last_notice_seq)
        .collect();
    fresh.sort_by_key(|n| n.seq);
    let mut lines: BTreeMap<AlertKind, Vec<String>> = BTreeMap::new();
    // Notices older than a day (the machine was off, the app closed) are summarised in one
    // notification, never replayed one by one. Their age is measured on the server's clock
    // (the balance's `as_of`, read at the same sync), so a skewed client clock neither
    // summarises fresh news nor replays old news.
    let server_now = balance.map_or(now, |b| b.as_of);
    let mut old: BTreeMap<AlertKind, usize> = BTreeMap::new();
    let mut oldest: Option<chrono::DateTime<chrono::Utc>> = None;
    for n in fresh {
        if let Some((kind, line)) = describe(n) {
            if server_now - n.at > chrono::Duration::hours(SUMMARISE_AFTER_HOURS) {
                if settings.enabled(kind) {
                    *old.entry(kind).or_default() += 1;
                    oldest = Some(oldest.map_or(n.at, |o| o.min(n.at)));
                }
            } else {
                lines.entry(kind).or_default().push(line);
            }
        }
    }
    if let Some(b) = balance {
        // The lowest threshold crossed in this pass is the one told (crossing 50 and 20
        // at once is one warning, "below your 20 threshold").
        let mut crossed: Option<i64> = None;
        if next.low_armed && b.available < settings.low_threshold {
            next.low_armed = false;
            crossed = Some(settings.low_threshold);
        } else if !next.low_armed && b.available >= settings.rearm_at() {
            next.low_armed = true;
        }
        for t in settings.extra_thresholds() {
            let told = next.below_told.contains(&t);
            if !told && b.available < t {
                next.below_told.push(t);
                crossed = Some(crossed.map_or(t, |c| c.min(t)));
            } else if told && b.available >= rearm_above(t) {
                next.below_told.retain(|x| *x != t);
            }
        }
        if let Some(t) = crossed {
            if b.available > 0 && !lines.contains_key(&AlertKind::Exhausted) {
                lines
                    .entry(AlertKind::LowBalance)
                    .or_default()
                    .push(format!(
                        "{} left, below your {} threshold.",
                        credits(b.available),
                        credits(t)
                    ));
            }
        }
    }
    if let Some((at, line)) = expiring {
        if state.expiry_told != Some(at) {
            next.expiry_told = Some(at);
            lines.entry(AlertKind::ExpiringSoon).or_default().push(line);
        }
    }
    lines.retain(|k, _| settings.enabled(*k));
    let mut alerts: Vec<Alert> = lines
        .into_iter()
        .map(|(kind, lines)| {
            let body = merge_lines(&lines);
            Alert {
                kinds: vec![kind],
                title: title(kind).to_owned(),
                body,
            }
        })
        .collect();
    if let Some(since) = oldest {
        let total: usize = old.values().sum();
        let parts: Vec<String> = old
            .iter()
            .map(|(k, n)| format!("{n} × {}", title(*k).to_lowercase()))
            .collect();
        alerts.insert(
            0,
            Alert {
                kinds: old.keys().copied().collect(),
                title: "While you were away".to_owned(),
                body: format!(
                    "{total} credit update{} since {}: {}. The dashboard has the details.",
                    if total == 1 { "" } else { "s" },
                    since.format("%Y-%m-%d"),
                    parts.join(", ")
                ),
            },
        );
    }
    if alerts.len() > MAX_SEPARATE {
        let kinds = alerts.iter().flat_map(|a| a.kinds.clone()).collect();
        let body = alerts
            .iter()
            .map(|a| format!("{}: {}", a.title, a.body))
            .collect::<Vec<_>>()
            .join("\n");
        alerts = vec![Alert {
            kinds,
            title: format!("{} credit updates", alerts.len()),
            body,
        }];
    }
    (alerts, next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::{BucketBalance, Buckets};
    use chrono::Utc;
    use serde_json::json;

    const CR: i64 = creditbar_ledger::MICROS_PER_CREDIT;

    fn balance(available: i64) -> Balance {
        let b = |a| BucketBalance {
            available: a,
            next_reset: None,
        };
        Balance {
            available,
            held: 0,
            buckets: Buckets {
                daily: b(0),
                subscription: b(available),
                bonus: b(0),
                purchased: b(0),
            },
            seq: 1,
            as_of: Utc::now(),
        }
    }

    fn notice(seq: u64, kind: &str, data: serde_json::Value) -> Notice {
        Notice {
            seq,
            at: Utc::now(),
            kind: kind.into(),
            data,
        }
    }

    fn started(available: i64) -> (AlertState, AlertSettings) {
        let settings = AlertSettings {
            low_threshold: 50 * CR,
            ..Default::default()
        };
        let (alerts, state) = decide(
            &AlertState::default(),
            &settings,
            &[],
            Some(&balance(available)),
            Utc::now(),
        );
        assert!(alerts.is_empty());
        (state, settings)
    }

    #[test]
    fn nothing_fires_at_start_even_when_already_low_or_with_old_notices() {
        let settings = AlertSettings::default();
        let old = [
            notice(3, "exhausted", json!({})),
            notice(
                4,
                "purchase",
                json!({"purchase_id": "p", "credits": 500 * CR, "price_cents": 2000}),
            ),
        ];
        let (alerts, state) = decide(
            &AlertState::default(),
            &settings,
            &old,
            Some(&balance(CR)),
            Utc::now(),
        );
        assert!(alerts.is_empty());
        assert_eq!(state.last_notice_seq, 4);
        assert!(!state.low_armed);
        let (again, _) = decide(&state, &settings, &old, Some(&balance(CR)), Utc::now());
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn low_balance_fires_once_per_crossing_with_hysteresis() {
        let (s, settings) = started(100 * CR);
        let (a, s) = decide(&s, &settings, &[], Some(&balance(49 * CR)), Utc::now());
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kinds, vec![AlertKind::LowBalance]);
        assert!(a[0].body.contains("49.00 credits left"), "{}", a[0].body);
        let (a, s) = decide(&s, &settings, &[], Some(&balance(40 * CR)), Utc::now());
        assert!(a.is_empty());
        // Back to the threshold but not above the margin: still quiet when it dips again.
        let (_, s) = decide(&s, &settings, &[], Some(&balance(52 * CR)), Utc::now());
        let (a, s) = decide(&s, &settings, &[], Some(&balance(45 * CR)), Utc::now());
        assert!(a.is_empty());
        let (_, s) = decide(&s, &settings, &[], Some(&balance(60 * CR)), Utc::now());
        let (a, _) = decide(&s, &settings, &[], Some(&balance(10 * CR)), Utc::now());
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn each_notice_fires_once_and_kinds_can_be_switched_off() {
        let (s, mut settings) = started(100 * CR);
        let n = [notice(
            10,
            "grant",
            json!({"amount": 10 * CR, "reason": "compensation", "note": "sorry"}),
        )];
        let (a, s2) = decide(&s, &settings, &n, Some(&balance(110 * CR)), Utc::now());
        assert_eq!(a.len(), 1);
        assert!(
            a[0].body.contains("10.00 credits") && a[0].body.contains("sorry"),
            "{}",
            a[0].body
        );
        let (a, _) = decide(&s2, &settings, &n, Some(&balance(110 * CR)), Utc::now());
        assert!(a.is_empty());
        settings.set(AlertKind::BonusReceived, false);
        let (a, _) = decide(&s, &settings, &n, Some(&balance(110 * CR)), Utc::now());
        assert!(a.is_empty());
    }

    #[test]
    fn daily_resets_are_off_by_default_and_bursts_coalesce() {
        let (s, mut settings) = started(100 * CR);
        let resets: Vec<_> = (1..=3)
            .map(|i| {
                notice(
                    10 + i,
                    "reset",
                    json!({"bucket": "daily", "amount": 5 * CR}),
                )
            })
            .collect();
        assert!(decide(&s, &settings, &resets, None, Utc::now())
            .0
            .is_empty());
        settings.set(AlertKind::DailyReset, true);
        let (a, _) = decide(&s, &settings, &resets, None, Utc::now());
        assert_eq!(a.len(), 1);
        assert!(a[0].body.contains("(3 times)"), "{}", a[0].body);
        let burst = vec![
            notice(
                20,
                "reset",
                json!({"bucket": "subscription", "amount": 500 * CR}),
            ),
            notice(21, "grant", json!({"amount": CR, "reason": "promo"})),
            notice(
                22,
                "purchase",
                json!({"credits": 500 * CR, "price_cents": 2000}),
            ),
            notice(
                23,
                "refill_charged",
                json!({"credits": 500 * CR, "price_cents": 2000}),
            ),
            notice(24, "review_resolved", json!({"grant_amount": 0})),
        ];
        let (a, _) = decide(&s, &settings, &burst, None, Utc::now());
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].kinds.len(), 5);
        assert_eq!(a[0].title, "5 credit updates");
    }

    #[test]
    fn exhausted_replaces_low_balance_in_the_same_pass() {
        let (s, settings) = started(100 * CR);
        let (a, _) = decide(
            &s,
            &settings,
            &[notice(5, "exhausted", json!({}))],
            Some(&balance(0)),
            Utc::now(),
        );
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kinds, vec![AlertKind::Exhausted]);
    }

    #[test]
    fn grants_of_different_amounts_in_one_pass_are_each_told() {
        let (s, settings) = started(100 * CR);
        let n = [
            notice(7, "grant", json!({"amount": 5 * CR, "reason": "promo"})),
            notice(8, "grant", json!({"amount": CR, "reason": "community"})),
        ];
        let (a, _) = decide(&s, &settings, &n, Some(&balance(106 * CR)), Utc::now());
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            a[0].body,
            "You received 5.00 credits (promo).\nYou received 1.00 credits (community)."
        );
    }

    /// The "expiring soon" alert fires at the minute the lead time begins, once per renewal,
    /// exact to the micro-credit; never for an empty bucket. Time is injected (no sleeps).
    #[test]
    fn plan_credits_expiring_are_told_once_at_the_lead_time() {
        let renewal: chrono::DateTime<Utc> = "2026-12-20T00:00:00Z".parse().unwrap();
        let mut b = balance(12_345_678);
        b.buckets.subscription.next_reset = Some(renewal);
        let settings = AlertSettings {
            expiry_lead_hours: 6,
            ..Default::default()
        };
        let at = |s: &str| s.parse::<chrono::DateTime<Utc>>().unwrap();
        let (_, s) = decide(
            &AlertState::default(),
            &settings,
            &[],
            Some(&b),
            at("2026-12-19T12:00:00Z"),
        );
        let (a, s) = decide(&s, &settings, &[], Some(&b), at("2026-12-19T17:59:00Z"));
        assert!(a.is_empty(), "a minute early: {a:?}");
        let (a, s) = decide(&s, &settings, &[], Some(&b), at("2026-12-19T18:00:00Z"));
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].kinds, vec![AlertKind::ExpiringSoon]);
        assert_eq!(
            a[0].body,
            "12.34 credits from your plan expire at the renewal, in 6 h 0 min (2026-12-20 00:00 UTC)."
        );
        let (again, s) = decide(&s, &settings, &[], Some(&b), at("2026-12-19T20:00:00Z"));
        assert!(again.is_empty(), "told once: {again:?}");
        // The next period's renewal is a new expiry, told again at its own lead time.
        let mut next = b.clone();
        next.buckets.subscription.next_reset = Some(at("2027-01-20T00:00:00Z"));
        let (a, _) = decide(&s, &settings, &[], Some(&next), at("2027-01-19T18:00:00Z"));
        assert_eq!(a.len(), 1);
        // Nothing left to expire: nothing told.
        let mut empty = next.clone();
        empty.buckets.subscription.available = 0;
        let (a, _) = decide(&s, &settings, &[], Some(&empty), at("2027-01-19T18:00:00Z"));
        assert!(a.is_empty());
    }

    /// Several thresholds: each is told once per descent, the lowest crossed in a pass is
    /// the one told, and each re-arms a tenth above itself.
    #[test]
    fn several_low_balance_thresholds_each_warn_once_per_descent() {
        let settings = AlertSettings {
            low_threshold: 50 * CR,
            also_below: vec![5 * CR, 20 * CR, 80 * CR, 0],
            ..Default::default()
        };
        assert_eq!(settings.extra_thresholds(), vec![20 * CR, 5 * CR]);
        let step = |s: &AlertState, available: i64| {
            decide(s, &settings, &[], Some(&balance(available)), Utc::now())
        };
        let told = |a: &[Alert]| -> Vec<String> { a.iter().map(|a| a.body.clone()).collect() };
        let (_, s) = step(&AlertState::default(), 100 * CR);
        let (a, s) = step(&s, 45 * CR);
        assert_eq!(
            told(&a),
            ["45.00 credits left, below your 50.00 credits threshold."]
        );
        let (a, s) = step(&s, 30 * CR);
        assert!(a.is_empty());
        let (a, s) = step(&s, 19 * CR);
        assert_eq!(
            told(&a),
            ["19.00 credits left, below your 20.00 credits threshold."]
        );
        let (a, s) = step(&s, 18 * CR);
        assert!(a.is_empty(), "once per descent");
        // A jump past two thresholds at once: the lowest is told.
        let (_, s) = step(&s, 23 * CR);
        let (a, s) = step(&s, 4 * CR);
        assert_eq!(
            told(&a),
            ["4.00 credits left, below your 5.00 credits threshold."]
        );
        // Back up: everything re-arms, and the next descent warns again.
        let (_, s) = step(&s, 100 * CR);
        let (a, _) = step(&s, 10 * CR);
        assert_eq!(
            told(&a),
            ["10.00 credits left, below your 20.00 credits threshold."]
        );
    }

    /// Notices older than a day at launch: one summary, never one notification each; the
    /// recent ones are told as usual.
    #[test]
    fn notices_older_than_a_day_are_summarised_once() {
        let settings = AlertSettings::default();
        let now = Utc::now();
        let aged = |seq: u64, hours: i64, kind: &str, data: serde_json::Value| {
            let mut n = notice(seq, kind, data);
            n.at = now - chrono::Duration::hours(hours);
            n
        };
        let (_, s) = decide(
            &AlertState::default(),
            &settings,
            &[],
            Some(&balance(100 * CR)),
            now,
        );
        let notices = [
            aged(
                1,
                72,
                "grant",
                serde_json::json!({"amount": CR, "reason": "promo"}),
            ),
            aged(
                2,
                50,
                "grant",
                serde_json::json!({"amount": CR, "reason": "promo"}),
            ),
            aged(
                3,
                30,
                "purchase",
                serde_json::json!({"credits": 500 * CR, "price_cents": 2000}),
            ),
            aged(
                4,
                25,
                "reset",
                serde_json::json!({"bucket": "daily", "amount": 5 * CR}),
            ),
            aged(
                5,
                1,
                "grant",
                serde_json::json!({"amount": 2 * CR, "reason": "promo"}),
            ),
        ];
        let (a, s) = decide(&s, &settings, &notices, Some(&balance(100 * CR)), now);
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!(a[0].title, "While you were away");
        // The daily reset is off by default: not counted.
        assert!(
            a[0].body.starts_with("3 credit updates since "),
            "{}",
            a[0].body
        );
        assert!(
            a[0].body
                .contains("2 × bonus credits received, 1 × purchase complete"),
            "{}",
            a[0].body
        );
        assert_eq!(a[1].title, "Bonus credits received");
        let (again, _) = decide(&s, &settings, &notices, Some(&balance(100 * CR)), now);
        assert!(again.is_empty());
    }
}
