//! Words and numbers for people: short balances for bars and trays, countdowns to resets.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use creditbar_ledger::MICROS_PER_CREDIT;

/// How a locale writes numbers: the digit-group separator and the decimal mark. The UI
/// takes these from `Intl` (navigator.language, from LANG); the tray and the CLI take them
/// from the same environment (`LC_ALL`, `LC_NUMERIC`, `LANG`), for the languages below.
/// Words stay English either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberLocale {
    pub group: &'static str,
    pub decimal: char,
}

impl NumberLocale {
    /// `1,234.50`: English, and C/POSIX or anything unknown.
    pub const EN: NumberLocale = NumberLocale {
        group: ",",
        decimal: '.',
    };

    /// The conventions of a POSIX locale name (`de_DE.UTF-8`) or a BCP 47 tag (`de-DE`),
    /// as CLDR (and so `Intl`) has them for each language.
    pub fn of(name: &str) -> NumberLocale {
        let tag = name.split(['.', '@']).next().unwrap_or("");
        let lang = tag
            .split(['_', '-'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let region = tag
            .split(['_', '-'])
            .nth(1)
            .unwrap_or("")
            .to_ascii_uppercase();
        let nb = |group| NumberLocale {
            group,
            decimal: ',',
        };
        match (lang.as_str(), region.as_str()) {
            ("de", "CH") | ("de", "LI") => NumberLocale {
                group: "\u{2019}",
                decimal: '.',
            },
            (
                "de" | "es" | "it" | "nl" | "pt" | "da" | "id" | "tr" | "el" | "ro" | "sl" | "hr"
                | "sr",
                _,
            ) => nb("."),
            ("fr", _) => nb("\u{202f}"),
            (
                "ru" | "pl" | "cs" | "sk" | "sv" | "nb" | "no" | "fi" | "uk" | "hu" | "bg" | "lt"
                | "lv" | "et",
                _,
            ) => nb("\u{a0}"),
            _ => NumberLocale::EN,
        }
    }

    /// The user's: the first of `LC_ALL`, `LC_NUMERIC`, `LANG` that is set and not empty.
    pub fn from_env() -> NumberLocale {
        ["LC_ALL", "LC_NUMERIC", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .map_or(NumberLocale::EN, |v| NumberLocale::of(&v))
    }

    /// This process's, read once.
    pub fn user() -> NumberLocale {
        static USER: OnceLock<NumberLocale> = OnceLock::new();
        *USER.get_or_init(NumberLocale::from_env)
    }

    /// `1,234.50`: micro-credits with two decimals, rounded down (toward zero: never more
    /// than is there), digits grouped by three.
    pub fn credits(self, micros: i64) -> String {
        let hundredths = micros.unsigned_abs() / (MICROS_PER_CREDIT as u64 / 100);
        let whole = (hundredths / 100).to_string();
        let mut grouped = String::new();
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push_str(self.group);
            }
            grouped.push(digit);
        }
        let sign = if micros < 0 && hundredths > 0 {
            "-"
        } else {
            ""
        };
        format!("{sign}{grouped}{}{:02}", self.decimal, hundredths % 100)
    }
}

/// `487 cr` — whole credits, rounded down, for a tray title or a status bar.
pub fn credits_short(micros: i64) -> String {
    format!("{} cr", micros.div_euclid(MICROS_PER_CREDIT))
}

/// The balance for a tray icon, at most four characters, rounded down (never more than is
/// there): `505`, `12k` (12,000–12,999), `3M`; `0` for nothing left.
pub fn icon_number(micros: i64) -> String {
    let n = micros.max(0).div_euclid(MICROS_PER_CREDIT);
    match n {
        n if n < 1_000 => n.to_string(),
        n if n < 1_000_000 => format!("{}k", n / 1_000),
        n if n < 1_000_000_000 => format!("{}M", n / 1_000_000),
        _ => "999M".to_owned(),
    }
}

/// `1,234.50 credits`: two decimals, rounded down, grouped by the user's locale (product.md
/// "Amounts shown to people"); exact micro-credits only in `--json`.
pub fn credits_long(micros: i64) -> String {
    format!("{} credits", NumberLocale::user().credits(micros))
}

/// `$1,000.00`: cents grouped like credits (a cent is 10,000 µcr of two-decimal digits).
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs().min(i64::MAX as u64 / 10_000) as i64;
    format!("{sign}${}", NumberLocale::user().credits(abs * 10_000))
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
    fn the_icon_number_is_rounded_down_and_at_most_four_characters() {
        let cr = MICROS_PER_CREDIT;
        for (micros, text) in [
            (0, "0"),
            (-5 * cr, "0"),
            (cr - 1, "0"),
            (505 * cr + 999_999, "505"),
            (999 * cr, "999"),
            (1_000 * cr, "1k"),
            (12_999 * cr, "12k"),
            (999_999 * cr, "999k"),
            (3_400_000 * cr, "3M"),
            (i64::MAX, "999M"),
        ] {
            assert_eq!(icon_number(micros), text, "{micros}");
        }
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
    }

    #[test]
    fn amounts_have_two_decimals_rounded_down_in_two_locales() {
        let en = NumberLocale::of("en_US.UTF-8");
        let de = NumberLocale::of("de_DE.UTF-8");
        assert_eq!(en, NumberLocale::EN);
        assert_eq!(en.credits(663_307_700), "663.30");
        assert_eq!(en.credits(133_829_750), "133.82");
        assert_eq!(en.credits(1_234_509_999), "1,234.50");
        assert_eq!(en.credits(12_345_678_000_000), "12,345,678.00");
        assert_eq!(en.credits(999_999), "0.99");
        assert_eq!(en.credits(-3_456_000), "-3.45");
        assert_eq!(en.credits(-9_999), "0.00");
        assert_eq!(en.credits(i64::MIN), "-9,223,372,036,854.77");
        assert_eq!(de.credits(1_234_509_999), "1.234,50");
        assert_eq!(
            NumberLocale::of("de-CH").credits(1_234_509_999),
            "1\u{2019}234.50"
        );
        assert_eq!(
            NumberLocale::of("fr_FR").credits(1_234_509_999),
            "1\u{202f}234,50"
        );
        assert_eq!(NumberLocale::of("C.UTF-8"), NumberLocale::EN);
        assert_eq!(NumberLocale::of(""), NumberLocale::EN);
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
