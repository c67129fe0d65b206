//! Integer amounts. Credits are micro-credits over `i64`; money is US cents over `i64`.
//! Every arithmetic step is checked: an overflow is an error the caller sees, never a wrap
//! or a panic, because a wrapped balance would silently mint or destroy credits.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::LedgerError;

/// Micro-credits in one credit.
pub const MICROS_PER_CREDIT: i64 = 1_000_000;

/// An amount of credits in micro-credits (1 credit = 1,000,000 µcr). Signed, so a ledger
/// entry can carry a debit; balances are kept non-negative by the rules, not by the type.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Credits(i64);

impl Credits {
    pub const ZERO: Credits = Credits(0);

    pub const fn from_micros(micros: i64) -> Self {
        Credits(micros)
    }

    /// Whole credits; `None` when `credits` × 1,000,000 does not fit.
    pub fn from_credits(credits: i64) -> Option<Self> {
        credits.checked_mul(MICROS_PER_CREDIT).map(Credits)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Credits) -> Result<Credits, LedgerError> {
        self.0
            .checked_add(other.0)
            .map(Credits)
            .ok_or(LedgerError::Overflow)
    }

    pub fn checked_sub(self, other: Credits) -> Result<Credits, LedgerError> {
        self.0
            .checked_sub(other.0)
            .map(Credits)
            .ok_or(LedgerError::Overflow)
    }

    pub fn checked_neg(self) -> Result<Credits, LedgerError> {
        self.0
            .checked_neg()
            .map(Credits)
            .ok_or(LedgerError::Overflow)
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Sum of an iterator, failing on overflow.
    pub fn sum<I: IntoIterator<Item = Credits>>(items: I) -> Result<Credits, LedgerError> {
        items
            .into_iter()
            .try_fold(Credits::ZERO, |acc, c| acc.checked_add(c))
    }

    /// Exact decimal without unit: `487.25`, `-0.000001`, `5`.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / MICROS_PER_CREDIT as u64;
        let frac = abs % MICROS_PER_CREDIT as u64;
        if frac == 0 {
            format!("{sign}{whole}")
        } else {
            let digits = format!("{frac:06}");
            format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Display for Credits {
    /// For people: `487.25 credits`, `1 credit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.0 == MICROS_PER_CREDIT {
            "credit"
        } else {
            "credits"
        };
        write!(f, "{} {unit}", self.to_decimal_string())
    }
}

/// Why a typed amount of credits was refused; each says what was typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseCreditsError {
    #[error("`{0}` is not an amount of credits (e.g. 50 or 12.5)")]
    NotAnAmount(String),
    #[error("`{0}` has more than 6 decimals (the smallest amount is 0.000001 credits)")]
    TooPrecise(String),
    #[error("`{0}` is too large an amount of credits")]
    TooLarge(String),
}

impl FromStr for Credits {
    type Err = ParseCreditsError;

    /// Credits as a person types them (`50`, `12.5`, `-3.5`, `0.000001`) to micro-credits,
    /// exactly: decimal digits with at most 6 decimals, no exponent, no grouping, so the
    /// inverse of [`Credits::to_decimal_string`]. Surrounding spaces are ignored.
    fn from_str(typed: &str) -> Result<Credits, ParseCreditsError> {
        let s = typed.trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(frac)
            || (digits.contains('.') && frac.is_empty())
        {
            return Err(ParseCreditsError::NotAnAmount(typed.to_owned()));
        }
        if frac.len() > 6 {
            return Err(ParseCreditsError::TooPrecise(typed.to_owned()));
        }
        let too_large = || ParseCreditsError::TooLarge(typed.to_owned());
        // Digits only, at most 6: both parses succeed unless the whole part overflows.
        let whole: i64 = whole.parse().map_err(|_| too_large())?;
        let frac: i64 = format!("{frac:0<6}").parse().map_err(|_| too_large())?;
        let micros = whole
            .checked_mul(MICROS_PER_CREDIT)
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(too_large)?;
        Ok(Credits(if negative { -micros } else { micros }))
    }
}

/// Money in integer US cents.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl fmt::Display for Cents {
    /// For people: `$20.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_exactly_for_people() {
        assert_eq!(
            Credits::from_micros(487_250_000).to_string(),
            "487.25 credits"
        );
        assert_eq!(Credits::from_micros(1_000_000).to_string(), "1 credit");
        assert_eq!(Credits::from_micros(1).to_string(), "0.000001 credits");
        assert_eq!(Credits::from_micros(-3_500_000).to_string(), "-3.5 credits");
        assert_eq!(Credits::ZERO.to_string(), "0 credits");
        assert_eq!(
            Credits::from_micros(i64::MIN).to_decimal_string(),
            "-9223372036854.775808"
        );
        assert_eq!(Cents(2000).to_string(), "$20.00");
        assert_eq!(Cents(5).to_string(), "$0.05");
    }

    #[test]
    fn parses_what_people_type_exactly() {
        let p = |s: &str| s.parse::<Credits>().map(Credits::micros);
        assert_eq!(p("50"), Ok(50_000_000));
        assert_eq!(p(" 12.5 "), Ok(12_500_000));
        assert_eq!(p("0.000001"), Ok(1));
        assert_eq!(p("-3.5"), Ok(-3_500_000));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(
            p("1.2345678"),
            Err(ParseCreditsError::TooPrecise("1.2345678".into()))
        );
        for bad in [
            "", "abc", "1.", ".5", "1e3", "1,5", "+1", "--1", "1.2.3", "½",
        ] {
            assert_eq!(
                p(bad),
                Err(ParseCreditsError::NotAnAmount(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            p("99999999999999999"),
            Err(ParseCreditsError::TooLarge("99999999999999999".into()))
        );
        assert_eq!(
            p("9223372036854.775808"),
            Err(ParseCreditsError::TooLarge("9223372036854.775808".into()))
        );
        // The inverse of to_decimal_string.
        for micros in [1, 487_250_000, -3_500_000, i64::MAX] {
            let c = Credits::from_micros(micros);
            assert_eq!(c.to_decimal_string().parse::<Credits>(), Ok(c));
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let max = Credits::from_micros(i64::MAX);
        assert_eq!(
            max.checked_add(Credits::from_micros(1)),
            Err(LedgerError::Overflow)
        );
        assert_eq!(
            Credits::from_micros(i64::MIN).checked_neg(),
            Err(LedgerError::Overflow)
        );
        assert!(Credits::from_credits(i64::MAX / 1000).is_none());
        assert_eq!(
            Credits::sum([max, Credits::from_micros(1)]),
            Err(LedgerError::Overflow)
        );
    }
}
