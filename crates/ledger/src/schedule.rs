//! Reset schedules: when daily allowances and billing periods start and end.
//!
//! Every function takes "now" as an argument; nothing here reads a clock. Daily resets
//! happen at local midnight in the account's IANA timezone. Where midnight does not exist
//! (a DST gap at 00:00, as in America/Santiago) the day starts at its first instant; where
//! midnight happens twice (a fall-back at 00:00) it starts at the first one.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The first instant of `date` in `tz`, in UTC.
pub fn day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut day = date;
    // A whole local day can be missing (Pacific/Apia skipped 2011-12-30); then the next
    // day's start is the first instant at or after it. Two tries are enough in tzdata.
    for _ in 0..3 {
        let mut local = day.and_time(NaiveTime::MIN);
        // Gaps fall on whole minutes in every modern zone; step until a time exists.
        while local.date() == day {
            match tz.from_local_datetime(&local) {
                LocalResult::Single(t) => return t.with_timezone(&Utc),
                LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
                LocalResult::None => local += chrono::Duration::minutes(1),
            }
        }
        day = day.succ_opt().unwrap_or(day);
    }
    // Unreachable with real tzdata; fall back to UTC midnight rather than panic.
    date.and_time(NaiveTime::MIN).and_utc()
}

/// The local day containing `now`: `[start, end)`, both local midnights in UTC.
///
/// Computed from the midnights around the local date instead of from the local date alone,
/// because in a fall-back at midnight the local date can read "yesterday" after today's
/// first midnight has already passed.
pub fn daily_window(tz: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let local_date = now.with_timezone(&tz).date_naive();
    let mut starts = [None; 4];
    for (i, offset) in (-1i64..=2).enumerate() {
        let date = if offset < 0 {
            local_date.checked_sub_days(Days::new(offset.unsigned_abs()))
        } else {
            local_date.checked_add_days(Days::new(offset as u64))
        };
        starts[i] = date.map(|d| day_start(tz, d));
    }
    let starts: Vec<_> = starts.into_iter().flatten().collect();
    let start = starts
        .iter()
        .copied()
        .filter(|s| *s <= now)
        .max()
        .unwrap_or(now);
    let end = starts
        .iter()
        .copied()
        .filter(|s| *s > now)
        .min()
        .unwrap_or(now + chrono::Duration::days(1));
    (start, end)
}

/// The next daily reset strictly after `now`.
pub fn next_daily_reset(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    daily_window(tz, now).1
}

/// How often a plan's subscription allowance renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Every 30 days from the anchor (the free plan).
    Days30,
    /// Monthly on the anchor's day of month (clamped to the month's last day) at the
    /// anchor's UTC time of day.
    Monthly,
    /// Yearly on the anchor's date (Feb 29 clamped to Feb 28) at its UTC time of day.
    Yearly,
}

/// A billing cycle: periods laid from an anchor instant with a cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingCycle {
    pub anchor: DateTime<Utc>,
    pub cadence: Cadence,
}

impl BillingCycle {
    pub fn new(anchor: DateTime<Utc>, cadence: Cadence) -> Self {
        BillingCycle { anchor, cadence }
    }

    /// Start of period `k` (k = 0 is the anchor). `None` only beyond chrono's range.
    pub fn period_start(&self, k: i64) -> Option<DateTime<Utc>> {
        match self.cadence {
            Cadence::Days30 => self
                .anchor
                .checked_add_signed(chrono::Duration::try_days(k.checked_mul(30)?)?),
            Cadence::Monthly => add_months_clamped(self.anchor, k),
            Cadence::Yearly => add_months_clamped(self.anchor, k.checked_mul(12)?),
        }
    }

    /// The period containing `now`: `[start, end)`. Before the anchor, period 0 is returned,
    /// since no account has a period before it signed up.
    pub fn period_at(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let mut k = self.estimate(now).max(0);
        let start_of = |k| self.period_start(k).unwrap_or(DateTime::<Utc>::MAX_UTC);
        while k > 0 && start_of(k) > now {
            k -= 1;
        }
        while start_of(k + 1) <= now {
            k += 1;
        }
        (start_of(k), start_of(k + 1))
    }

    fn estimate(&self, now: DateTime<Utc>) -> i64 {
        let months = (now.year() as i64 - self.anchor.year() as i64) * 12
            + (now.month() as i64 - self.anchor.month() as i64);
        match self.cadence {
            Cadence::Days30 => (now - self.anchor).num_days() / 30,
            Cadence::Monthly => months,
            Cadence::Yearly => months / 12,
        }
    }
}

/// `t` moved by `k` months, keeping its day of month (clamped to the target month's last
/// day) and its UTC time of day. Months are counted from `t`, never chained, so Jan 31 →
/// Feb 28 → Mar 31.
fn add_months_clamped(t: DateTime<Utc>, k: i64) -> Option<DateTime<Utc>> {
    let total = t.year() as i64 * 12 + (t.month0() as i64) + k;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = total.rem_euclid(12) as u32 + 1;
    let last = last_day_of_month(year, month)?;
    let date = NaiveDate::from_ymd_opt(year, month, t.day().min(last))?;
    Some(date.and_time(t.time()).and_utc())
}

fn last_day_of_month(year: i32, month: u32) -> Option<u32> {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    first_next.pred_opt().map(|d| d.day())
}

/// The calendar month of `now` in `tz`, as `year * 12 + month0`; the auto-refill monthly
/// limit counts refills per such month, as the user reads their calendar.
pub fn local_month_key(tz: Tz, now: DateTime<Utc>) -> i64 {
    let local = now.with_timezone(&tz);
    local.year() as i64 * 12 + local.month0() as i64
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn monthly_anchor_on_the_31st_clamps_and_comes_back() {
        let c = BillingCycle::new(utc("2027-01-31T10:00:00Z"), Cadence::Monthly);
        assert_eq!(c.period_start(1), Some(utc("2027-02-28T10:00:00Z")));
        assert_eq!(c.period_start(2), Some(utc("2027-03-31T10:00:00Z")));
        assert_eq!(c.period_start(3), Some(utc("2027-04-30T10:00:00Z")));
        let leap = BillingCycle::new(utc("2028-01-31T10:00:00Z"), Cadence::Monthly);
        assert_eq!(leap.period_start(1), Some(utc("2028-02-29T10:00:00Z")));
    }

    #[test]
    fn period_at_finds_the_containing_period() {
        let c = BillingCycle::new(utc("2027-01-31T10:00:00Z"), Cadence::Monthly);
        assert_eq!(
            c.period_at(utc("2027-02-28T09:59:59Z")),
            (utc("2027-01-31T10:00:00Z"), utc("2027-02-28T10:00:00Z"))
        );
        assert_eq!(
            c.period_at(utc("2027-02-28T10:00:00Z")),
            (utc("2027-02-28T10:00:00Z"), utc("2027-03-31T10:00:00Z"))
        );
        let free = BillingCycle::new(utc("2027-01-01T00:00:00Z"), Cadence::Days30);
        assert_eq!(
            free.period_at(utc("2027-03-05T00:00:00Z")),
            (utc("2027-03-02T00:00:00Z"), utc("2027-04-01T00:00:00Z"))
        );
        let yearly = BillingCycle::new(utc("2028-02-29T12:00:00Z"), Cadence::Yearly);
        assert_eq!(
            yearly.period_at(utc("2029-06-01T00:00:00Z")),
            (utc("2029-02-28T12:00:00Z"), utc("2030-02-28T12:00:00Z"))
        );
        assert_eq!(yearly.period_start(4), Some(utc("2032-02-29T12:00:00Z")));
    }

    #[test]
    fn new_york_days_are_23_and_25_hours_long_across_dst() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let (s, e) = daily_window(tz, utc("2027-03-14T12:00:00Z"));
        assert_eq!(
            (s, e),
            (utc("2027-03-14T05:00:00Z"), utc("2027-03-15T04:00:00Z"))
        );
        let (s, e) = daily_window(tz, utc("2027-11-07T12:00:00Z"));
        assert_eq!(
            (s, e),
            (utc("2027-11-07T04:00:00Z"), utc("2027-11-08T05:00:00Z"))
        );
    }
}
