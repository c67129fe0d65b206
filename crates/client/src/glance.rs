//! The glance: what the tray (and a status bar) shows, as a pure function of the cached
//! status and `now`. The desktop shell renders it and touches the OS only when it differs
//! from what is already shown.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::{Level, Status};
use crate::format::countdown;
use crate::wire::{AutoRefill, BucketBalance, CatalogUnit};

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Glance {
    /// The tray title: `487 cr`.
    pub title: String,
    pub level: Level,
    /// Read-only menu lines: total, buckets with countdowns, freshness.
    pub lines: Vec<String>,
    /// `Some(on)` when auto-refill has been set up, for the menu's toggle.
    pub auto_refill_on: Option<bool>,
    pub signed_in: bool,
    /// The tray icon's tooltip: the balance where the tray shows only icons (KDE,
    /// Windows), where the title is not drawn.
    pub tooltip: String,
    /// The balance to draw into the tray icon (`505`, `12k`, `3M`) when the person asked
    /// for it (`AlertSettings::number_in_icon`); the icon is redrawn only when it changes.
    pub icon_number: Option<String>,
}

/// The first menu line while the server is reached over plain http:// across a network.
pub const INSECURE_LINE: &str = "⚠ Not encrypted: your token travels in cleartext (http://)";

/// `3.50`: credits with two decimals, rounded down, grouped by the user's locale (the
/// same rule as the UI and the CLI: `crate::format::NumberLocale`).
pub fn credits_2dp(micros: i64) -> String {
    crate::format::NumberLocale::user().credits(micros)
}

/// Freshness in steps that change rarely (10 s under a minute, then minutes, then hours),
/// so the tray is not rewritten every second.
pub fn freshness(now: DateTime<Utc>, last: DateTime<Utc>) -> String {
    let s = (now - last).num_seconds().max(0);
    match s {
        s if s < 10 => "Updated just now".to_owned(),
        s if s < 60 => format!("Updated {} s ago", s / 10 * 10),
        s if s < 3600 => format!("Updated {} min ago", s / 60),
        s => format!("Updated {} h ago", s / 3600),
    }
}

fn bucket_line(name: &str, b: &BucketBalance, now: DateTime<Utc>) -> String {
    match b.next_reset {
        Some(t) => format!(
            "{name} {} · resets in {}",
            credits_2dp(b.available),
            countdown(now, t)
        ),
        None => format!("{name} {}", credits_2dp(b.available)),
    }
}

pub fn glance(status: &Status, auto_refill: Option<&AutoRefill>) -> Glance {
    glance_with(status, auto_refill, None, None)
}

/// The pace line: how long the balance lasts at the last week's spending (µcr/day).
pub fn pace_line(available: i64, per_day: i64) -> Option<String> {
    let left = crate::views::about(crate::views::minutes_left(available, per_day)?);
    let unit = if left.n == 1 {
        left.unit.to_owned()
    } else {
        format!("{}s", left.unit)
    };
    Some(format!("≈ {} {unit} left at this pace", left.n))
}

/// The glance with the catalog's unit (a line "≈ 4.2 M tokens" under the total) and the
/// pace ("≈ 3 days left at this pace"), when known.
pub fn glance_with(
    status: &Status,
    auto_refill: Option<&AutoRefill>,
    unit: Option<&CatalogUnit>,
    pace: Option<i64>,
) -> Glance {
    let now = status.now;
    let signed_in = status.server.is_some();
    let Some(b) = &status.balance else {
        return Glance {
            title: "— cr".into(),
            level: Level::Stale,
            lines: vec![if signed_in {
                "Waiting for the first sync…".into()
            } else {
                "Not signed in".into()
            }],
            auto_refill_on: None,
            signed_in,
            tooltip: if signed_in {
                "creditbar — waiting for the first sync".into()
            } else {
                "creditbar — not signed in".into()
            },
            icon_number: None,
        };
    };
    let mut lines = Vec::new();
    if status.insecure_http {
        lines.push(INSECURE_LINE.to_owned());
    }
    lines.push(format!("{} credits available", credits_2dp(b.available)));
    let hint = unit.and_then(|u| crate::format::unit_hint(b.available, u));
    if let Some(h) = &hint {
        lines.push(h.clone());
    }
    if let Some(p) = pace.and_then(|p| pace_line(b.available, p)) {
        lines.push(p);
    }
    if b.held > 0 {
        lines.push(format!("{} held for running tasks", credits_2dp(b.held)));
    }
    lines.push(bucket_line("Daily", &b.buckets.daily, now));
    lines.push(bucket_line("Subscription", &b.buckets.subscription, now));
    if b.buckets.bonus.available > 0 {
        lines.push(bucket_line("Bonus", &b.buckets.bonus, now));
    }
    if b.buckets.purchased.available > 0 {
        lines.push(bucket_line("Purchased", &b.buckets.purchased, now));
    }
    lines.push(match (status.stale, status.last_contact) {
        (false, Some(t)) => freshness(now, t),
        _ => "Offline — showing cached".into(),
    });
    let tooltip = format!(
        "creditbar — {} credits available{}{}",
        credits_2dp(b.available),
        hint.map(|h| format!(" ({h})")).unwrap_or_default(),
        if status.stale { " · offline" } else { "" }
    );
    Glance {
        tooltip,
        title: crate::format::credits_short(b.available),
        level: status.level,
        lines,
        auto_refill_on: auto_refill
            .filter(|a| a.threshold.is_some())
            .map(|a| a.enabled),
        signed_in,
        icon_number: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::{Balance, Buckets};

    const CR: i64 = 1_000_000;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn status(available: i64, stale: bool, level: Level) -> Status {
        let now = t("2026-11-21T18:47:48Z");
        let b = |a, r: Option<&str>| BucketBalance {
            available: a,
            next_reset: r.map(t),
        };
        Status {
            server: Some("http://127.0.0.1:8787/".into()),
            account: None,
            balance: Some(Balance {
                available,
                held: 0,
                buckets: Buckets {
                    daily: b(3_500_000, Some("2026-11-21T23:00:00Z")),
                    subscription: b(available - 3_500_000, Some("2026-12-21T18:00:00Z")),
                    bonus: b(0, None),
                    purchased: b(0, None),
                },
                seq: 9,
                as_of: now,
            }),
            last_contact: Some(t("2026-11-21T18:47:36Z")),
            stale,
            level,
            low_threshold: 50 * CR,
            now,
            insecure_http: false,
        }
    }

    #[test]
    fn the_glance_shows_title_buckets_with_countdowns_and_freshness() {
        let g = glance(&status(487_250_000, false, Level::Ok), None);
        assert_eq!(g.title, "487 cr");
        assert_eq!(g.level, Level::Ok);
        assert_eq!(
            g.lines,
            vec![
                "487.25 credits available",
                "Daily 3.50 · resets in 4 h 12 min",
                "Subscription 483.75 · resets in 29 d 23 h",
                "Updated 10 s ago",
            ]
        );
        assert_eq!(g.auto_refill_on, None);
    }

    #[test]
    fn a_stale_glance_says_offline_and_keeps_the_figure() {
        let g = glance(&status(10 * CR, true, Level::Stale), None);
        assert_eq!(g.title, "10 cr");
        assert_eq!(g.level, Level::Stale);
        assert_eq!(g.lines.last().unwrap(), "Offline — showing cached");
    }

    #[test]
    fn an_unencrypted_server_is_the_first_line() {
        let mut s = status(487_250_000, false, Level::Ok);
        s.insecure_http = true;
        let g = glance(&s, None);
        assert_eq!(g.lines[0], INSECURE_LINE);
        assert_eq!(g.lines[1], "487.25 credits available");
    }

    #[test]
    fn signed_out_has_no_figure() {
        let mut s = status(0, true, Level::Stale);
        s.balance = None;
        s.server = None;
        let g = glance(&s, None);
        assert_eq!((g.title.as_str(), g.signed_in), ("— cr", false));
    }
}
