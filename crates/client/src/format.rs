//! Words and numbers for people: short balances for bars and trays, countdowns to resets.

use chrono::{DateTime, Utc};
use creditbar_ledger::{Credits, MICROS_PER_CREDIT};

/// `487 cr` — whole credits, rounded down, for a tray title or a status bar.
pub fn credits_short(micros: i64) -> String {
    format!("{} cr", micros.div_euclid(MICROS_PER_CREDIT))
}

/// `487.25 credits`, exact.
pub fn credits_long(micros: i64) -> String {
    Credits::from_micros(micros).to_string()
}

/// `4 h 12 min`, `3 d 2 h`, `45 s`: how long until `to`.
pub fn countdown(now: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let secs = (to - now).num_seconds().max(0);
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// `12 s ago`, `3 min ago`, `2 h ago`.
pub fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn countdowns_read_naturally() {
        let now = t("2026-11-21T18:00:00Z");
        assert_eq!(countdown(now, t("2026-11-21T22:12:30Z")), "4 h 12 min");
        assert_eq!(countdown(now, t("2026-11-24T20:00:00Z")), "3 d 2 h");
        assert_eq!(countdown(now, t("2026-11-21T18:00:45Z")), "45 s");
        assert_eq!(countdown(now, t("2026-11-21T17:00:00Z")), "0 s");
        assert_eq!(ago(now, t("2026-11-21T17:59:48Z")), "12 s ago");
        assert_eq!(credits_short(487_999_999), "487 cr");
        assert_eq!(credits_long(3_500_000), "3.5 credits");
    }
}

/// What `micros` credits stand for in the catalog's own unit, rounded down (never more than
/// is there): "≈ 4.2 M tokens", "≈ 130 requests"; `None` when the unit is credits.
pub fn unit_hint(micros: i64, unit: &crate::wire::CatalogUnit) -> Option<String> {
    let per = i128::from(unit.per_credit?);
    let whole = i128::from(micros.max(0)) * per / i128::from(creditbar_ledger::MICROS_PER_CREDIT);
    let noun = match unit.kind.as_str() {
        "tokens" => "tokens",
        "requests" => "requests",
        _ => return None,
    };
    let scaled = |div: i128, suffix: &str| {
        let tenths = whole * 10 / div;
        format!("≈ {}.{} {suffix} {noun}", tenths / 10, tenths % 10)
    };
    Some(match whole {
        w if w >= 1_000_000_000 => scaled(1_000_000_000, "G"),
        w if w >= 1_000_000 => scaled(1_000_000, "M"),
        w if w >= 10_000 => scaled(1_000, "k"),
        w => format!("≈ {w} {noun}"),
    })
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use crate::wire::CatalogUnit;

    #[test]
    fn a_balance_reads_in_the_catalogs_unit_rounded_down() {
        let tokens = CatalogUnit {
            kind: "tokens".into(),
            per_credit: Some(10_000),
        };
        let requests = CatalogUnit {
            kind: "requests".into(),
            per_credit: Some(1),
        };
        let credits = CatalogUnit {
            kind: "credits".into(),
            per_credit: None,
        };
        let cr = creditbar_ledger::MICROS_PER_CREDIT;
        assert_eq!(
            unit_hint(500 * cr, &tokens).as_deref(),
            Some("≈ 5.0 M tokens")
        );
        assert_eq!(
            unit_hint(429 * cr + 999_999, &tokens).as_deref(),
            Some("≈ 4.2 M tokens")
        );
        assert_eq!(
            unit_hint(130 * cr + 999_999, &requests).as_deref(),
            Some("≈ 130 requests")
        );
        assert_eq!(
            unit_hint(25 * cr, &requests).as_deref(),
            Some("≈ 25 requests")
        );
        assert_eq!(unit_hint(500 * cr, &credits), None);
    }
}
