//! The views: every figure, sentence and choice the app and the CLI show, computed here
//! from the cache (and, for plan choices, the server), so the shells render and never
//! decide. The desktop UI receives these types as generated TypeScript (ts-rs).
//!
//! `Reader` is the read side: its own read-only SQLite connection beside the engine's
//! writer. The tray, `status` and the windows read through it, so a read never waits for
//! a sync that is stuck on a slow server (the engine's writer may hold its lock across
//! network calls; the reader takes no lock of the engine at all).

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use creditbar_ledger::MICROS_PER_CREDIT;
use serde::Serialize;

use crate::alerts::{AlertKind, AlertSettings};
use crate::api;
use crate::cache::{doc, meta, Cache};
use crate::engine::{Clock, Level, Status, STALE_AFTER_SECONDS};
use crate::error::ClientError;
use crate::format::{credits_long, dollars, unit_hint};
use crate::glance::{glance_with, Glance};
use crate::wire::{
    AutoRefill, CardSummary, Catalog, CatalogUnit, CustomPricing, Pack, PlanOffer, PlanQuote,
    PlanState, Purchase, UsageGroup,
};

/// The cached status at `now`. Never touches the network.
pub fn status(cache: &Cache, now: DateTime<Utc>) -> Result<Status, ClientError> {
    let balance = cache.balance()?;
    let last_contact = cache.last_contact()?;
    let stale = last_contact.is_none_or(|t| (now - t).num_seconds() > STALE_AFTER_SECONDS);
    let low_threshold = alert_settings(cache)?.low_threshold;
    let level = match &balance {
        None => Level::Stale,
        Some(_) if stale => Level::Stale,
        Some(b) if b.available == 0 => Level::Empty,
        Some(b) if b.available < low_threshold => Level::Low,
        Some(_) => Level::Ok,
    };
    let server = cache.get_meta(meta::SERVER)?;
    let insecure_http = server
        .as_deref()
        .and_then(|s| url::Url::parse(s).ok())
        .is_some_and(|u| api::is_cleartext(&u));
    Ok(Status {
        server,
        account: cache.account()?,
        balance,
        last_contact,
        stale,
        level,
        low_threshold,
        now,
        insecure_http,
    })
}

pub(crate) fn alert_settings(cache: &Cache) -> Result<AlertSettings, ClientError> {
    Ok(cache.get_doc(doc::SETTINGS)?.unwrap_or_default())
}

/// The account's timezone (UTC before the first sync).
fn timezone(cache: &Cache) -> Result<chrono_tz::Tz, ClientError> {
    match cache.account()? {
        Some(a) => a.timezone.parse().map_err(|_| {
            ClientError::Cache(format!(
                "the cached account has an unknown timezone {}",
                a.timezone
            ))
        }),
        None => Ok(chrono_tz::UTC),
    }
}

/// Today in the account's timezone: usage days are keyed there.
pub fn today(cache: &Cache, now: DateTime<Utc>) -> Result<chrono::NaiveDate, ClientError> {
    Ok(now.with_timezone(&timezone(cache)?).date_naive())
}

/// The first day of a period of `days` calendar days ending `today`.
pub fn first_day(today: chrono::NaiveDate, days: u32) -> chrono::NaiveDate {
    let back = chrono::Days::new(u64::from(days.clamp(1, 36_600)) - 1);
    today
        .checked_sub_days(back)
        .unwrap_or(chrono::NaiveDate::MIN)
}

fn day_key(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Days the pace is measured over: a week smooths out a weekend.
pub const PACE_WINDOW_DAYS: u32 = 7;

/// Credits spent per day over the last week (µcr/day, rounded down), today included.
pub fn pace(cache: &Cache, now: DateTime<Utc>) -> Result<i64, ClientError> {
    let from = day_key(first_day(today(cache, now)?, PACE_WINDOW_DAYS));
    let spent: i64 = cache
        .usage("day", Some(&from))?
        .iter()
        .map(|d| d.charged)
        .sum();
    Ok(spent / i64::from(PACE_WINDOW_DAYS))
}

/// The catalog as last cached, if any.
pub fn cached_catalog(cache: &Cache) -> Option<Catalog> {
    cache.get_doc::<Catalog>("catalog").ok().flatten()
}

/// The glance of the cache now: the status, the catalog's unit, the pace.
pub fn glance_of(cache: &Cache, now: DateTime<Utc>) -> Result<Glance, ClientError> {
    let status = status(cache, now)?;
    let refill: Option<AutoRefill> = cache.get_doc(doc::AUTO_REFILL)?;
    let unit = cached_catalog(cache).and_then(|c| c.unit);
    let pace = pace(cache, now).ok();
    let mut g = glance_with(&status, refill.as_ref(), unit.as_ref(), pace);
    let settings: AlertSettings = cache.get_doc(doc::SETTINGS)?.unwrap_or_default();
    if settings.number_in_icon {
        g.icon_number = status
            .balance
            .as_ref()
            .map(|b| crate::format::icon_number(b.available));
    }
    Ok(g)
}

/// The glance shown when the cache cannot be read at all.
pub fn unavailable_glance() -> Glance {
    Glance {
        title: "— cr".into(),
        level: Level::Stale,
        lines: vec!["Cache unavailable".into()],
        auto_refill_on: None,
        signed_in: false,
        tooltip: "creditbar — cache unavailable".into(),
        icon_number: None,
    }
}

/// How the balance lasts at the current pace, for the dashboard to word (in the person's
/// language; the arithmetic is done here).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Forecast {
    /// Nothing left; more arrives at `reset_at` if the plan renews.
    Out { reset_at: Option<DateTime<Utc>> },
    /// No usage in the pace window: nothing to forecast.
    NoUsage,
    /// The balance runs out in about `left` — before `reset_at` when that is set.
    RunsOut {
        left: About,
        reset_at: Option<DateTime<Utc>>,
    },
    /// The balance lasts past the plan's renewal at `reset_at`.
    LastsPastReset { reset_at: DateTime<Utc> },
}

/// A rounded duration: `about 3 days`, `about 5 hours`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct About {
    pub n: u32,
    /// `hour` or `day`.
    pub unit: &'static str,
}

/// `minutes` rounded to hours under a day, to days after; never "0 hours".
pub fn about(minutes: i64) -> About {
    if minutes < 1440 {
        let hours = (minutes.saturating_add(30) / 60).max(1);
        About {
            n: u32::try_from(hours).unwrap_or(u32::MAX),
            unit: "hour",
        }
    } else {
        About {
            n: u32::try_from(minutes.saturating_add(720) / 1440).unwrap_or(u32::MAX),
            unit: "day",
        }
    }
}

/// Minutes the balance lasts at `per_day` µcr a day (integer arithmetic, no float).
pub fn minutes_left(available: i64, per_day: i64) -> Option<i64> {
    (available > 0 && per_day > 0).then(|| {
        let m = i128::from(available) * 1440 / i128::from(per_day);
        i64::try_from(m).unwrap_or(i64::MAX)
    })
}

/// A century: a forecast further out is "lasts", and date arithmetic stays in range.
const MAX_FORECAST_MINUTES: i64 = 100 * 366 * 1440;

/// The forecast, measured against the plan's renewal (when most credits arrive; the daily
/// top-up is small and would make every forecast end "tomorrow").
pub fn forecast(
    available: i64,
    per_day: i64,
    now: DateTime<Utc>,
    next_reset: Option<DateTime<Utc>>,
) -> Forecast {
    if available <= 0 {
        return Forecast::Out {
            reset_at: next_reset,
        };
    }
    let Some(minutes) = minutes_left(available, per_day) else {
        return Forecast::NoUsage;
    };
    match next_reset {
        Some(reset)
            if now
                .checked_add_signed(chrono::Duration::minutes(minutes.min(MAX_FORECAST_MINUTES)))
                .is_none_or(|out| out >= reset) =>
        {
            Forecast::LastsPastReset { reset_at: reset }
        }
        reset_at => Forecast::RunsOut {
            left: about(minutes),
            reset_at,
        },
    }
}

/// Everything the dashboard shows, from the cache alone (the live sync keeps it current).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct DashboardView {
    pub status: Status,
    pub glance: Glance,
    /// The chosen grouping within the period.
    pub group_by: String,
    pub period_days: Option<u32>,
    pub groups: Vec<UsageGroup>,
    /// One bar per calendar day of the period, oldest first (zero where nothing was spent).
    pub chart_days: Vec<UsageGroup>,
    /// False when the cache is stale (the server has not answered lately).
    pub fresh: bool,
    /// The purchases of the period, oldest first; one still in flight is always shown.
    pub purchases: Vec<Purchase>,
    pub timezone: String,
    /// `1,234.50 credits`.
    pub available_text: Option<String>,
    /// The balance in the catalog's unit: `≈ 4.2 M tokens`, `≈ 130 requests`.
    pub unit_hint: Option<String>,
    pub forecast: Option<Forecast>,
    /// Each bucket's lots with their exact expiry.
    pub lots: Vec<Lot>,
    /// The period's most recent charges, each with what every bucket paid.
    pub charges: Vec<Charge>,
    /// The models the report form offers: the platform's catalog (as last cached), or,
    /// before the catalog was ever cached, the models seen in the cached usage.
    pub report_models: Vec<String>,
}

/// A lot: what is left of one grant, purchase or refill in a bucket, and when it expires.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lot {
    pub bucket: String,
    pub available: i64,
    pub granted_at: Option<DateTime<Utc>>,
    /// Exact, where known.
    pub expires_at: Option<DateTime<Utc>>,
    /// `at_reset` (daily and plan credits: at the bucket's next reset), `at` (a bonus grant
    /// with an expiry: exactly `expires_at`), `never` (bought credits, or a bonus grant
    /// the server says never expires), `not_reported` (a bonus grant from a server that
    /// does not report expiries: older than the ledger's `expires_at` extension).
    pub expiry: String,
}

/// One charge with what each bucket paid for it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    pub id: String,
    pub at: Option<DateTime<Utc>>,
    pub model: String,
    pub thread: String,
    pub charged: i64,
    pub by_bucket: Vec<BucketAmount>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketAmount {
    pub bucket: String,
    pub amount: i64,
}

/// How many recent charges the dashboard lists with their breakdown.
pub const RECENT_CHARGES: u32 = 50;

fn parse_at(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The models a thread can be reported against: the catalog's, else those used.
pub fn report_models(cache: &Cache) -> Result<Vec<String>, ClientError> {
    let listed: Vec<String> = cached_catalog(cache)
        .map(|c| c.models.into_iter().map(|m| m.id).collect())
        .unwrap_or_default();
    if !listed.is_empty() {
        return Ok(listed);
    }
    cache.used_models()
}

/// Every lot with credits left, with its expiry.
pub fn lots(cache: &Cache) -> Result<Vec<Lot>, ClientError> {
    let balance = cache.balance()?;
    let reset_of = |bucket: &str| {
        balance.as_ref().and_then(|b| match bucket {
            "daily" => b.buckets.daily.next_reset,
            "subscription" => b.buckets.subscription.next_reset,
            _ => None,
        })
    };
    Ok(cache
        .lots()?
        .into_iter()
        .map(|lot| {
            let (expires_at, expiry) = match (lot.bucket.as_str(), &lot.expires_at) {
                ("daily" | "subscription", _) => (reset_of(&lot.bucket), "at_reset"),
                ("purchased", _) => (None, "never"),
                (_, Some(Some(at))) => (parse_at(at), "at"),
                (_, Some(None)) => (None, "never"),
                (_, None) => (None, "not_reported"),
            };
            Lot {
                granted_at: parse_at(&lot.first_at),
                expires_at,
                expiry: expiry.to_owned(),
                bucket: lot.bucket,
                available: lot.remaining,
            }
        })
        .collect())
}

/// The most recent charges of the period with their breakdown by bucket.
pub fn charges(cache: &Cache, from_day: Option<&str>) -> Result<Vec<Charge>, ClientError> {
    cache
        .recent_charges(from_day, RECENT_CHARGES)?
        .into_iter()
        .map(|(id, at, model, thread, charged)| {
            let by_bucket = cache
                .charge_breakdown(&id)?
                .into_iter()
                .map(|(bucket, amount)| BucketAmount { bucket, amount })
                .collect();
            Ok(Charge {
                at: parse_at(&at),
                id,
                model,
                thread,
                charged,
                by_bucket,
            })
        })
        .collect()
}

/// The dashboard's first choice: usage by day over the last 30 days.
pub const FIRST_GROUP_BY: &str = "day";
pub const FIRST_PERIOD_DAYS: u32 = 30;
/// All time spans at most this many chart days (ten years).
const MAX_CHART_DAYS: i64 = 3660;

pub fn dashboard(
    cache: &Cache,
    now: DateTime<Utc>,
    group_by: &str,
    period_days: Option<u32>,
) -> Result<DashboardView, ClientError> {
    let tz = timezone(cache)?;
    let today = now.with_timezone(&tz).date_naive();
    let from = period_days.map(|d| first_day(today, d));
    let from_key = from.map(day_key);
    let groups = cache.usage(group_by, from_key.as_deref())?;
    let days = if group_by == "day" {
        groups.clone()
    } else {
        cache.usage("day", from_key.as_deref())?
    };
    let status = status(cache, now)?;
    let glance = glance_of(cache, now)?;
    // The chart spans the whole period; all time starts at the first day with usage.
    let first = match from {
        Some(f) => f,
        None => days
            .first()
            .and_then(|d| chrono::NaiveDate::parse_from_str(&d.key, "%Y-%m-%d").ok())
            .map(|f| f.max(today - chrono::Days::new(MAX_CHART_DAYS as u64 - 1)))
            .unwrap_or(today),
    };
    let mut by_day: std::collections::HashMap<&str, &UsageGroup> =
        days.iter().map(|d| (d.key.as_str(), d)).collect();
    let chart_days = first
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|d| {
            let key = day_key(d);
            match by_day.remove(key.as_str()) {
                Some(g) => g.clone(),
                None => UsageGroup {
                    key,
                    charged: 0,
                    events: 0,
                    input_tokens: 0,
                    cached_input_tokens: 0,
                    output_tokens: 0,
                },
            }
        })
        .collect();
    let purchases = cache
        .purchases()?
        .into_iter()
        .filter(|p| match (from, p.created_at) {
            (Some(f), Some(at)) => at.with_timezone(&tz).date_naive() >= f,
            _ => true,
        })
        .collect();
    let unit = cached_catalog(cache).and_then(|c| c.unit);
    let (available_text, hint, forecast) = match &status.balance {
        Some(b) => {
            let reset = b
                .buckets
                .subscription
                .next_reset
                .or(b.buckets.daily.next_reset);
            (
                Some(credits_long(b.available)),
                unit.as_ref().and_then(|u| unit_hint(b.available, u)),
                Some(forecast(b.available, pace(cache, now)?, now, reset)),
            )
        }
        None => (None, None, None),
    };
    Ok(DashboardView {
        report_models: report_models(cache)?,
        lots: lots(cache)?,
        charges: charges(cache, from_key.as_deref())?,
        fresh: !status.stale,
        timezone: tz.name().to_owned(),
        status,
        glance,
        group_by: group_by.to_owned(),
        period_days,
        groups,
        chart_days,
        purchases,
        available_text,
        unit_hint: hint,
        forecast,
    })
}

/// One notification kind as the settings window lists it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertChoice {
    pub kind: AlertKind,
    pub on: bool,
    pub on_by_default: bool,
}

/// What the settings window shows that the engine knows (the shell adds launch-at-login
/// and the log directory).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub alerts: AlertSettings,
    pub kinds: Vec<AlertChoice>,
    pub auto_refill: Option<AutoRefill>,
    pub card: Option<CardSummary>,
    pub packs: Vec<Pack>,
    /// The pack auto-refill buys unless the person chose one: the one set before, else the
    /// catalog's first.
    pub default_pack: Option<String>,
    /// The account's timezone (daily resets and usage days), once synced.
    pub timezone: Option<String>,
    /// When the daily credits next reset (a new timezone applies from then).
    pub next_daily_reset: Option<DateTime<Utc>>,
}

pub fn settings(
    cache: &Cache,
    catalog: Option<&Catalog>,
    card: Option<CardSummary>,
) -> Result<SettingsView, ClientError> {
    let alerts = alert_settings(cache)?;
    let kinds = AlertKind::ALL
        .into_iter()
        .map(|kind| AlertChoice {
            kind,
            on: alerts.enabled(kind),
            on_by_default: kind.on_by_default(),
        })
        .collect();
    let auto_refill: Option<AutoRefill> = cache.get_doc(doc::AUTO_REFILL)?;
    let packs = catalog.map(|c| c.packs.clone()).unwrap_or_default();
    let account = cache.account()?;
    Ok(SettingsView {
        timezone: account.as_ref().map(|a| a.timezone.clone()),
        next_daily_reset: account.as_ref().map(|a| a.next_daily_reset),
        default_pack: default_pack(auto_refill.as_ref(), &packs),
        alerts,
        kinds,
        auto_refill,
        card,
        packs,
    })
}

/// The pack an auto-refill toggled on buys: the one chosen before, else the catalog's
/// first (catalogs name their packs differently; there is no universal `pack_500`).
pub fn default_pack(current: Option<&AutoRefill>, packs: &[Pack]) -> Option<String> {
    current
        .and_then(|a| a.pack.clone())
        .or_else(|| packs.first().map(|p| p.id.clone()))
}

/// The alert settings from the window's switches: only kinds away from their default are
/// kept, so a later change of a default reaches everyone who never touched it.
pub fn alert_settings_from(
    low_threshold: i64,
    kinds: &std::collections::BTreeMap<AlertKind, bool>,
    open_purchase_at_low: bool,
    expiry_lead_hours: u32,
    also_below: Vec<i64>,
    number_in_icon: bool,
) -> AlertSettings {
    let mut s = AlertSettings {
        low_threshold,
        overrides: Default::default(),
        open_purchase_at_low,
        expiry_lead_hours,
        also_below,
        number_in_icon,
    };
    for (k, on) in kinds {
        s.set(*k, *on);
    }
    s
}

/// What the purchase dialog shows before anything is chosen.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct PurchaseOptions {
    pub catalog: Catalog,
    pub card: Option<CardSummary>,
    pub available: Option<i64>,
    /// The current balance, as the dialog shows it before buying.
    pub available_text: Option<String>,
    pub unit_hint: Option<String>,
    /// Each pack's credits in the catalog's unit, by pack id.
    pub pack_hints: std::collections::BTreeMap<String, String>,
}

pub fn purchase_options(
    catalog: Catalog,
    card: Option<CardSummary>,
    available: Option<i64>,
) -> PurchaseOptions {
    let hint = |m: i64| catalog.unit.as_ref().and_then(|u| unit_hint(m, u));
    let pack_hints = catalog
        .packs
        .iter()
        .filter_map(|p| Some((p.id.clone(), hint(p.credits)?)))
        .collect();
    PurchaseOptions {
        available_text: available.map(credits_long),
        unit_hint: available.and_then(hint),
        pack_hints,
        available,
        card,
        catalog,
    }
}

/// What a custom amount buys, or why it cannot be bought (the dialog asks as the person
/// types).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CustomQuote {
    Ok {
        cents: i64,
        credits: i64,
        /// `$25.00 buys 625.00 credits`.
        text: String,
    },
    Problem {
        message: String,
    },
}

/// Parses dollars as typed (`12`, `12.5`, `$12.50`) into cents.
pub fn parse_dollars(raw: &str) -> Option<i64> {
    let s = raw.trim();
    let s = s.strip_prefix('$').unwrap_or(s).trim();
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| f.len() <= 2 && digits(f));
    let frac = frac.unwrap_or("");
    if !digits(whole) || whole.len() > 7 || !frac_ok {
        return None;
    }
    let cents: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole.parse::<i64>().ok()? * 100 + cents)
}

pub fn quote_custom(raw: &str, pricing: &CustomPricing) -> CustomQuote {
    let problem = |m: String| CustomQuote::Problem { message: m };
    if raw.trim().is_empty() {
        return problem("Enter an amount in dollars.".into());
    }
    let Some(cents) = parse_dollars(raw) else {
        return problem("Enter dollars and cents, like 25 or 25.50.".into());
    };
    if cents < pricing.min_cents {
        return problem(format!(
            "The smallest custom amount is {}.",
            dollars(pricing.min_cents)
        ));
    }
    if cents > pricing.max_cents {
        return problem(format!(
            "The largest custom amount is {}.",
            dollars(pricing.max_cents)
        ));
    }
    // cents × credits/dollar × 10^6 / 100: exact for the catalog's whole-number rate.
    let micros =
        i128::from(cents) * i128::from(pricing.credits_per_dollar) * i128::from(MICROS_PER_CREDIT)
            / 100;
    let Ok(credits) = i64::try_from(micros) else {
        return problem("That amount buys more credits than an account can hold.".into());
    };
    CustomQuote::Ok {
        cents,
        credits,
        text: format!("{} buys {}", dollars(cents), credits_long(credits)),
    }
}

/// A usage review as the app and the CLI list it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewView {
    pub id: String,
    pub thread: String,
    pub description: String,
    pub created_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved: bool,
    pub grant_amount: i64,
    /// `Open: we are looking at it`, `Resolved: 12.00 credits back — note`, `Resolved
    /// without credits — note`.
    pub outcome: String,
    /// The details sent with it, as one line: `model premium · 40 messages · preview
    /// failing · large context`.
    pub details: String,
}

pub fn review_view(r: &crate::wire::Review) -> ReviewView {
    let grant = r.grant_amount.unwrap_or(0);
    let note = r
        .resolution_note
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .map(|n| format!(" — {n}"))
        .unwrap_or_default();
    let resolved = r.status == "resolved";
    let outcome = match (resolved, grant > 0) {
        (false, _) => "Open: we are looking at it".to_owned(),
        (true, true) => format!("Resolved: {} back{note}", credits_long(grant)),
        (true, false) => format!("Resolved without credits{note}"),
    };
    let mut details = Vec::new();
    if let Some(m) = &r.model {
        details.push(format!("model {m}"));
    }
    if let Some(n) = r.thread_messages {
        details.push(format!("{n} messages"));
    }
    if r.preview_failing == Some(true) {
        details.push("preview failing".into());
    }
    if r.large_context == Some(true) {
        details.push("large context".into());
    }
    ReviewView {
        id: r.id.clone(),
        thread: r.thread.clone(),
        description: r.description.clone(),
        created_at: r.created_at,
        resolved_at: r.resolved_at,
        resolved,
        grant_amount: grant,
        outcome,
        details: details.join(" · "),
    }
}

/// The cached reviews, newest first.
pub fn reviews(cache: &Cache) -> Result<Vec<ReviewView>, ClientError> {
    let list: Vec<crate::wire::Review> = cache.get_doc(doc::REVIEWS)?.unwrap_or_default();
    Ok(list.iter().rev().map(review_view).collect())
}

/// One plan the person can choose, with what choosing it does now.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanChoice {
    pub id: String,
    pub price_cents: i64,
    pub cadence: Option<String>,
    pub subscription: i64,
    pub daily: i64,
    /// The models the plan may use; None for every model.
    pub models: Option<Vec<String>>,
    pub current: bool,
    /// `upgrade`, `downgrade` or `same`.
    pub change: String,
    /// Charged now for an upgrade (prorated); 0 otherwise.
    pub charge_now_cents: i64,
    /// Credits an upgrade adds now (prorated).
    pub credits_now: i64,
    pub effective_at: Option<DateTime<Utc>>,
    /// `$20.00 now for 1,000.00 credits; then $20.00 a month` — what confirming does.
    pub summary: String,
}

/// The plan chooser: the account's plan and the choices.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanChoices {
    pub current: String,
    /// `active` or `past_due`.
    pub plan_status: String,
    /// Set when the last renewal charge failed: what to do about it.
    pub fix: Option<String>,
    pub next_plan: Option<String>,
    pub period_end: DateTime<Utc>,
    pub card_last4: Option<String>,
    pub choices: Vec<PlanChoice>,
}

fn cadence_word(c: Option<&str>) -> &'static str {
    match c {
        Some("yearly") => "a year",
        Some("days30") => "every 30 days",
        _ => "a month",
    }
}

pub fn plan_choices(state: &PlanState, offers: &[PlanOffer], quotes: &[PlanQuote]) -> PlanChoices {
    let choices = offers
        .iter()
        .map(|o| {
            let q = quotes.iter().find(|q| q.plan == o.id);
            let current = o.id == state.plan;
            let change = if current {
                "same".to_owned()
            } else {
                q.map(|q| q.change.clone())
                    .unwrap_or_else(|| "change".into())
            };
            let (charge_now_cents, credits_now) = match q {
                Some(q) if q.change == "upgrade" => (q.price_cents, q.credits),
                _ => (0, 0),
            };
            let then = if o.price_cents > 0 {
                format!(
                    "{} {}",
                    dollars(o.price_cents),
                    cadence_word(o.cadence.as_deref())
                )
            } else {
                "free".into()
            };
            let summary = match change.as_str() {
                "same" => format!("Your plan: {then}"),
                "upgrade" => format!(
                    "{} now for {}; then {then}",
                    dollars(charge_now_cents),
                    credits_long(credits_now)
                ),
                "downgrade" => match q {
                    Some(q) => format!(
                        "From {} (the end of this period); then {then}",
                        q.effective_at.format("%Y-%m-%d")
                    ),
                    None => format!("At the end of this period; then {then}"),
                },
                _ => then,
            };
            PlanChoice {
                id: o.id.clone(),
                price_cents: o.price_cents,
                cadence: o.cadence.clone(),
                subscription: o.subscription,
                daily: o.daily,
                models: o.models.clone(),
                current,
                change,
                charge_now_cents,
                credits_now,
                effective_at: q.map(|q| q.effective_at),
                summary,
            }
        })
        .collect();
    let fix = (state.plan_status == "past_due").then(|| {
        "The last renewal charge failed: add or replace your card, then choose your plan again to retry.".to_owned()
    });
    PlanChoices {
        current: state.plan.clone(),
        plan_status: state.plan_status.clone(),
        fix,
        next_plan: state.next_plan.clone(),
        period_end: state.period_end,
        card_last4: state.plan_payment_last4.clone(),
        choices,
    }
}

/// The read side of the engine: its own read-only connection to the cache and the
/// engine's clock. Every read answers from the cache in milliseconds, whatever the writer
/// is doing.
pub struct Reader {
    cache: Mutex<Cache>,
    clock: Clock,
}

impl Reader {
    /// A reader of the cache in `dir` (the engine must have opened it once, which creates
    /// and migrates it).
    pub fn open(dir: &Path, clock: Clock) -> Result<Reader, ClientError> {
        Ok(Reader {
            cache: Mutex::new(Cache::open_reader(&dir.join("cache.db"))?),
            clock,
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Cache, DateTime<Utc>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        f(&cache, (self.clock)())
    }

    pub fn status(&self) -> Result<Status, ClientError> {
        self.read(status)
    }

    /// The glance, or the "cache unavailable" glance when the cache cannot be read.
    pub fn glance(&self) -> Glance {
        self.read(glance_of).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the cache for the glance");
            unavailable_glance()
        })
    }

    pub fn signed_in(&self) -> bool {
        self.read(|c, _| Ok(c.get_meta(meta::SERVER)?.is_some()))
            .unwrap_or(false)
    }

    pub fn dashboard(
        &self,
        group_by: &str,
        period_days: Option<u32>,
    ) -> Result<DashboardView, ClientError> {
        self.read(|c, now| dashboard(c, now, group_by, period_days))
    }

    /// The settings view from the cache; `card` comes from the engine (the keychain).
    pub fn settings(&self, card: Option<CardSummary>) -> Result<SettingsView, ClientError> {
        self.read(|c, _| settings(c, cached_catalog(c).as_ref(), card))
    }

    /// A custom amount against the cached catalog's pricing.
    pub fn quote_custom(&self, raw: &str) -> Result<CustomQuote, ClientError> {
        self.read(|c, _| {
            let catalog = cached_catalog(c).ok_or_else(|| {
                ClientError::Invalid(
                    "the catalog is not cached yet: connect once to the server".into(),
                )
            })?;
            Ok(quote_custom(raw, &catalog.custom))
        })
    }

    pub fn alert_settings(&self) -> Result<AlertSettings, ClientError> {
        self.read(|c, _| alert_settings(c))
    }

    pub fn unit(&self) -> Option<CatalogUnit> {
        self.read(|c, _| Ok(cached_catalog(c).and_then(|c| c.unit)))
            .ok()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CR: i64 = MICROS_PER_CREDIT;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_forecast_is_integer_arithmetic_against_the_renewal() {
        let now = t("2026-12-01T12:00:00Z");
        let renewal = t("2026-12-20T00:00:00Z");
        let reset = Some(renewal);
        assert_eq!(
            forecast(0, CR, now, reset),
            Forecast::Out { reset_at: reset }
        );
        assert_eq!(forecast(10 * CR, 0, now, reset), Forecast::NoUsage);
        assert_eq!(
            forecast(30 * CR, 10 * CR, now, reset),
            Forecast::RunsOut {
                left: About { n: 3, unit: "day" },
                reset_at: reset
            }
        );
        assert_eq!(
            forecast(CR, 10 * CR, now, None),
            Forecast::RunsOut {
                left: About { n: 2, unit: "hour" },
                reset_at: None
            }
        );
        assert_eq!(
            forecast(1000 * CR, 10 * CR, now, reset),
            Forecast::LastsPastReset { reset_at: renewal }
        );
        // One micro-credit a day, a huge balance: no overflow.
        assert!(matches!(
            forecast(i64::MAX, 1, now, None),
            Forecast::RunsOut { .. }
        ));
    }

    #[test]
    fn custom_amounts_are_quoted_exactly_or_refused_with_the_reason() {
        let p = CustomPricing {
            credits_per_dollar: 25,
            min_cents: 500,
            max_cents: 100_000,
        };
        assert_eq!(
            quote_custom("$12.5", &p),
            CustomQuote::Ok {
                cents: 1250,
                credits: 312_500_000,
                text: "$12.50 buys 312.50 credits".into()
            }
        );
        for (raw, problem) in [
            ("", "Enter an amount"),
            ("12.345", "Enter dollars and cents"),
            ("-5", "Enter dollars and cents"),
            ("1e3", "Enter dollars and cents"),
            ("4.99", "smallest custom amount is $5.00"),
            ("1000.01", "largest custom amount is $1,000.00"),
        ] {
            match quote_custom(raw, &p) {
                CustomQuote::Problem { message } => {
                    assert!(message.contains(problem), "{raw}: {message}")
                }
                ok => panic!("{raw} quoted {ok:?}"),
            }
        }
    }

    #[test]
    fn plan_choices_show_the_prorated_upgrade_restrictions_and_a_past_due_fix() {
        let state = PlanState {
            plan: "free".into(),
            period_end: t("2026-12-31T00:00:00Z"),
            plan_status: "past_due".into(),
            next_plan: None,
            plan_payment_last4: None,
        };
        let offer = |id: &str, price: i64, models: Option<Vec<&str>>| PlanOffer {
            id: id.into(),
            price_cents: price,
            subscription: 1000 * CR,
            daily: 0,
            cadence: Some("monthly".into()),
            models: models.map(|m| m.into_iter().map(String::from).collect()),
        };
        let offers = [
            offer("free", 0, Some(vec!["basic"])),
            offer("pro", 2000, None),
        ];
        let quotes = [PlanQuote {
            plan: "pro".into(),
            change: "upgrade".into(),
            price_cents: 1000,
            credits: 500 * CR,
            effective_at: t("2026-12-16T00:00:00Z"),
        }];
        let v = plan_choices(&state, &offers, &quotes);
        assert!(v.fix.as_deref().unwrap().contains("card"));
        assert!(v.choices[0].current);
        assert_eq!(
            v.choices[0].models.as_deref(),
            Some(&["basic".to_owned()][..])
        );
        assert_eq!(v.choices[1].charge_now_cents, 1000);
        assert_eq!(
            v.choices[1].summary,
            "$10.00 now for 500.00 credits; then $20.00 a month"
        );
    }

    fn cache_in(tz: &str, dir: &Path) -> Cache {
        let (mut cache, _) = Cache::open(&dir.join("cache.db")).unwrap();
        let at = t("2026-11-01T00:00:00Z");
        let account = crate::wire::Account {
            id: "acc".into(),
            email: "a@example.com".into(),
            plan: "free".into(),
            timezone: tz.into(),
            created_at: at,
            billing_anchor: at,
            period_start: at,
            period_end: at,
            next_daily_reset: at,
        };
        cache.put_doc(doc::ACCOUNT, &account, at).unwrap();
        let purchase = |id: &str, created: Option<&str>| Purchase {
            id: id.into(),
            credits: 500 * CR,
            price_cents: 2000,
            status: "succeeded".into(),
            source: Some("manual".into()),
            pack: Some("pack_500".into()),
            created_at: created.map(t),
        };
        cache
            .replace_purchases(&[
                purchase("before", Some("2026-11-14T22:59:59Z")), // Nov 14, 23:59:59 in Paris
                purchase("first-day", Some("2026-11-14T23:00:00Z")), // Nov 15, 00:00 in Paris
                purchase("today", Some("2026-11-21T10:00:00Z")),
                purchase("in-flight", None),
            ])
            .unwrap();
        cache
    }

    fn ids(v: &DashboardView) -> Vec<&str> {
        v.purchases.iter().map(|p| p.id.as_str()).collect()
    }

    /// Ported from the UI's period.test.ts when the rule moved here.
    #[test]
    fn the_period_is_calendar_days_in_the_accounts_timezone() {
        let now = t("2026-11-21T12:00:00Z");
        let dir = tempfile::tempdir().unwrap();
        let paris = cache_in("Europe/Paris", dir.path());
        let v = dashboard(&paris, now, "day", Some(7)).unwrap();
        assert_eq!(ids(&v), ["first-day", "today", "in-flight"]);
        assert_eq!(v.chart_days.len(), 7);
        assert_eq!(v.chart_days[0].key, "2026-11-15");
        assert_eq!(v.chart_days[6].key, "2026-11-21");
        // All time keeps everything; a purchase still in flight is always there.
        let all = dashboard(&paris, now, "day", None).unwrap();
        assert_eq!(all.purchases.len(), 4);
        let later = dashboard(&paris, t("2030-01-01T12:00:00Z"), "day", Some(1)).unwrap();
        assert_eq!(ids(&later), ["in-flight"]);
        drop(paris);
        // In UTC both late-Nov-14 purchases fall on Nov 14, before the period.
        let dir = tempfile::tempdir().unwrap();
        let utc = cache_in("UTC", dir.path());
        let v = dashboard(&utc, now, "day", Some(7)).unwrap();
        assert_eq!(ids(&v), ["today", "in-flight"]);
    }

    #[test]
    fn dollars_parse_like_people_type_them() {
        assert_eq!(parse_dollars("12"), Some(1200));
        assert_eq!(parse_dollars(" $ 12.05 "), Some(1205));
        assert_eq!(parse_dollars("12."), None);
        assert_eq!(parse_dollars(".5"), None);
        assert_eq!(parse_dollars("12345678"), None);
    }
}
