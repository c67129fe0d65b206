//! When allowances reset: daily resets at local midnight across DST (including zones where
//! midnight is skipped or repeated, and half-hour shifts), billing periods on awkward
//! anchors, and the same schedules seen through the account's ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use creditbar_ledger::schedule::{daily_window, day_start, next_daily_reset};
use creditbar_ledger::*;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn tz(name: &str) -> Tz {
    name.parse().unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn credits(c: i64) -> Credits {
    Credits::from_credits(c).unwrap()
}

/// The local day of `day` in `zone` as `[start, end)`, both through `day_start` and through
/// `daily_window` at an instant inside it, which must agree.
fn day(zone: &str, day: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    let z = tz(zone);
    let d = date(day);
    let start = day_start(z, d);
    let end = day_start(z, d.succ_opt().unwrap());
    assert_eq!(
        daily_window(z, start),
        (start, end),
        "{zone} {day} at its start"
    );
    assert_eq!(
        daily_window(z, end - Duration::seconds(1)),
        (start, end),
        "{zone} {day} at its last second"
    );
    assert_eq!(next_daily_reset(z, start), end);
    (start, end)
}

// ---- daily resets across DST ----

#[test]
fn new_york_spring_forward_day_is_23_hours_and_starts_at_est_midnight() {
    let (start, end) = day("America/New_York", "2026-03-08");
    assert_eq!(start, utc("2026-03-08T05:00:00Z"));
    assert_eq!(end, utc("2026-03-09T04:00:00Z"));
    assert_eq!(end - start, Duration::hours(23));
}

#[test]
fn new_york_fall_back_day_is_25_hours() {
    let (start, end) = day("America/New_York", "2026-11-01");
    assert_eq!(start, utc("2026-11-01T04:00:00Z"));
    assert_eq!(end, utc("2026-11-02T05:00:00Z"));
    // Both 01:30s of the repeated hour belong to the same day.
    let z = tz("America/New_York");
    assert_eq!(next_daily_reset(z, utc("2026-11-01T05:30:00Z")), end);
    assert_eq!(next_daily_reset(z, utc("2026-11-01T06:30:00Z")), end);
}

#[test]
fn santiago_spring_forward_skips_midnight_so_the_day_starts_at_one() {
    // 2026-09-06 00:00 -04 does not exist: clocks jump to 01:00 -03 at 04:00Z.
    let (start, end) = day("America/Santiago", "2026-09-06");
    assert_eq!(start, utc("2026-09-06T04:00:00Z"));
    assert_eq!(end, utc("2026-09-07T03:00:00Z"));
    assert_eq!(end - start, Duration::hours(23));
    // The day before is a full 24 hours and ends where the short day starts.
    assert_eq!(
        day("America/Santiago", "2026-09-05"),
        (utc("2026-09-05T04:00:00Z"), start)
    );
}

#[test]
fn santiago_fall_back_at_midnight_repeats_the_last_hour_of_saturday() {
    // At 24:00 -03 clocks go back to 23:00 -04: Saturday gets 25 hours, Sunday starts once.
    let (start, end) = day("America/Santiago", "2026-04-04");
    assert_eq!(start, utc("2026-04-04T03:00:00Z"));
    assert_eq!(end, utc("2026-04-05T04:00:00Z"));
    assert_eq!(end - start, Duration::hours(25));
    // 23:30 happens twice (02:30Z and 03:30Z); both are still Saturday.
    let z = tz("America/Santiago");
    assert_eq!(next_daily_reset(z, utc("2026-04-05T02:30:00Z")), end);
    assert_eq!(next_daily_reset(z, utc("2026-04-05T03:30:00Z")), end);
}

#[test]
fn havana_repeated_midnight_starts_the_day_at_the_first_one() {
    // Cuba falls back from 01:00 CDT to 00:00 CST: midnight happens at 04:00Z and 05:00Z.
    let (start, end) = day("America/Havana", "2026-11-01");
    assert_eq!(start, utc("2026-11-01T04:00:00Z"));
    assert_eq!(end - start, Duration::hours(25));
    let z = tz("America/Havana");
    // During the second midnight hour it is still the same day: no second reset.
    assert_eq!(next_daily_reset(z, utc("2026-11-01T05:15:00Z")), end);
    assert_eq!(daily_window(z, utc("2026-11-01T05:00:00Z")).0, start);
}

#[test]
fn havana_skipped_midnight_starts_the_day_at_one() {
    let (start, end) = day("America/Havana", "2026-03-08");
    assert_eq!(start, utc("2026-03-08T05:00:00Z"));
    assert_eq!(end, utc("2026-03-09T04:00:00Z"));
}

#[test]
fn lord_howe_half_hour_shifts_make_days_of_24_and_a_half_and_23_and_a_half_hours() {
    // DST (+11) ends on 2026-04-05 at 02:00, back to +10:30.
    let (start, end) = day("Australia/Lord_Howe", "2026-04-05");
    assert_eq!(start, utc("2026-04-04T13:00:00Z"));
    assert_eq!(end, utc("2026-04-05T13:30:00Z"));
    assert_eq!(end - start, Duration::minutes(24 * 60 + 30));
    // DST starts on 2026-10-04 at 02:00, forward to 02:30.
    let (start, end) = day("Australia/Lord_Howe", "2026-10-04");
    assert_eq!(start, utc("2026-10-03T13:30:00Z"));
    assert_eq!(end, utc("2026-10-04T13:00:00Z"));
    assert_eq!(end - start, Duration::minutes(23 * 60 + 30));
}

#[test]
fn consecutive_days_tile_the_time_line_in_every_zone() {
    // Every instant belongs to exactly one day: each window ends where the next begins.
    for zone in [
        "America/New_York",
        "America/Santiago",
        "Australia/Lord_Howe",
        "America/Havana",
        "Pacific/Apia",
        "Asia/Kathmandu",
    ] {
        let z = tz(zone);
        let mut t = utc("2026-01-01T00:00:00Z");
        let (_, mut end) = daily_window(z, t);
        while t < utc("2027-01-01T00:00:00Z") {
            let (s, e) = daily_window(z, end);
            assert_eq!(s, end, "{zone}: a day starts where the previous ended");
            assert!(
                e - s >= Duration::hours(22) && e - s <= Duration::hours(26),
                "{zone}"
            );
            t = end;
            end = e;
        }
    }
}

// ---- billing periods ----

fn starts(anchor: &str, cadence: Cadence, n: i64) -> Vec<DateTime<Utc>> {
    let c = BillingCycle::new(utc(anchor), cadence);
    (0..n).map(|k| c.period_start(k).unwrap()).collect()
}

#[test]
fn monthly_anchor_on_the_29th_clamps_only_in_non_leap_february() {
    assert_eq!(
        starts("2027-01-29T10:00:00Z", Cadence::Monthly, 3),
        vec![
            utc("2027-01-29T10:00:00Z"),
            utc("2027-02-28T10:00:00Z"),
            utc("2027-03-29T10:00:00Z"),
        ]
    );
    assert_eq!(
        starts("2028-01-29T10:00:00Z", Cadence::Monthly, 3)[1],
        utc("2028-02-29T10:00:00Z")
    );
}

#[test]
fn monthly_anchor_on_the_30th_clamps_in_february_and_comes_back() {
    assert_eq!(
        starts("2027-01-30T23:59:59Z", Cadence::Monthly, 4),
        vec![
            utc("2027-01-30T23:59:59Z"),
            utc("2027-02-28T23:59:59Z"),
            utc("2027-03-30T23:59:59Z"),
            utc("2027-04-30T23:59:59Z"),
        ]
    );
    assert_eq!(
        starts("2028-01-30T00:00:00Z", Cadence::Monthly, 2)[1],
        utc("2028-02-29T00:00:00Z")
    );
}

#[test]
fn monthly_anchor_on_the_31st_follows_each_months_last_day_across_a_year_end() {
    assert_eq!(
        starts("2026-12-31T10:00:00Z", Cadence::Monthly, 6),
        vec![
            utc("2026-12-31T10:00:00Z"),
            utc("2027-01-31T10:00:00Z"),
            utc("2027-02-28T10:00:00Z"),
            utc("2027-03-31T10:00:00Z"),
            utc("2027-04-30T10:00:00Z"),
            utc("2027-05-31T10:00:00Z"),
        ]
    );
    assert_eq!(
        starts("2027-12-31T10:00:00Z", Cadence::Monthly, 3)[2],
        utc("2028-02-29T10:00:00Z")
    );
}

#[test]
fn yearly_anchor_on_february_29_falls_on_the_28th_until_the_next_leap_year() {
    assert_eq!(
        starts("2028-02-29T12:00:00Z", Cadence::Yearly, 5),
        vec![
            utc("2028-02-29T12:00:00Z"),
            utc("2029-02-28T12:00:00Z"),
            utc("2030-02-28T12:00:00Z"),
            utc("2031-02-28T12:00:00Z"),
            utc("2032-02-29T12:00:00Z"),
        ]
    );
}

#[test]
fn days30_cadence_is_exactly_30_days_of_utc_time_whatever_the_calendar() {
    let s = starts("2026-01-01T08:00:00Z", Cadence::Days30, 14);
    for pair in s.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::days(30));
    }
    assert_eq!(s[2], utc("2026-03-02T08:00:00Z"));
    assert_eq!(s[13], utc("2027-01-26T08:00:00Z")); // 390 days on
}

#[test]
fn period_at_switches_exactly_at_the_boundary_instant() {
    for (anchor, cadence) in [
        ("2027-01-31T10:00:00Z", Cadence::Monthly),
        ("2028-02-29T12:00:00Z", Cadence::Yearly),
        ("2026-01-29T00:00:00Z", Cadence::Days30),
    ] {
        let c = BillingCycle::new(utc(anchor), cadence);
        for k in 0..30 {
            let (s, e) = (c.period_start(k).unwrap(), c.period_start(k + 1).unwrap());
            assert!(s < e, "{anchor} {cadence:?} period {k}");
            assert_eq!(c.period_at(s), (s, e), "{anchor} {cadence:?} at start {k}");
            assert_eq!(c.period_at(e - Duration::seconds(1)), (s, e));
        }
    }
}

// ---- through the account ----

fn open(plan: &str, zone: &str, at: &str) -> (Catalog, Account) {
    let catalog = Catalog::default();
    let (account, _) = Account::open(&catalog, "acc", plan, tz(zone), utc(at)).unwrap();
    (catalog, account)
}

/// (instant, kind, bucket, amount) of every entry an advance to `to` produced.
fn advance(
    c: &Catalog,
    a: &mut Account,
    to: &str,
) -> Vec<(DateTime<Utc>, EntryKind, Bucket, Credits)> {
    let step = a.apply(c, Command::Advance, utc(to));
    assert_eq!(step.reply, Some(Ok(Reply::Advanced)));
    step.entries
        .iter()
        .map(|e| (e.at, e.kind, e.bucket, e.amount))
        .collect()
}

#[test]
fn daily_credits_reset_at_local_midnight_across_new_york_dst() {
    let (c, mut a) = open("pro_annual", "America/New_York", "2026-03-07T15:00:00Z");
    let daily = |at: &str| {
        vec![
            (utc(at), EntryKind::Expire, Bucket::Daily, credits(-5)),
            (utc(at), EntryKind::Grant, Bucket::Daily, credits(5)),
        ]
    };
    let entries = advance(&c, &mut a, "2026-03-09T12:00:00Z");
    assert_eq!(
        entries,
        [daily("2026-03-08T05:00:00Z"), daily("2026-03-09T04:00:00Z")].concat()
    );
    assert_eq!(
        a.balance().daily.next_reset,
        Some(utc("2026-03-10T04:00:00Z"))
    );

    let (c, mut a) = open("pro_annual", "America/New_York", "2026-10-31T15:00:00Z");
    let entries = advance(&c, &mut a, "2026-11-02T12:00:00Z");
    assert_eq!(
        entries,
        [daily("2026-11-01T04:00:00Z"), daily("2026-11-02T05:00:00Z")].concat()
    );
}

#[test]
fn daily_credits_reset_at_the_first_instant_of_a_santiago_day_without_midnight() {
    let (c, mut a) = open("pro_annual", "America/Santiago", "2026-09-05T12:00:00Z");
    let step = a.apply(&c, Command::Advance, utc("2026-09-07T12:00:00Z"));
    let grants: Vec<_> = step
        .new_lots
        .iter()
        .map(|l| (l.bucket, l.effective_at, l.expires_at))
        .collect();
    assert_eq!(
        grants,
        vec![
            (
                Bucket::Daily,
                utc("2026-09-06T04:00:00Z"),
                Some(utc("2026-09-07T03:00:00Z"))
            ),
            (
                Bucket::Daily,
                utc("2026-09-07T03:00:00Z"),
                Some(utc("2026-09-08T03:00:00Z"))
            ),
        ]
    );
    let resets: Vec<_> = step
        .notices
        .iter()
        .map(|n| (n.at, n.kind.clone()))
        .collect();
    assert_eq!(
        resets[0],
        (
            utc("2026-09-06T04:00:00Z"),
            NoticeKind::Reset {
                bucket: Bucket::Daily,
                amount: credits(5),
                next_reset: utc("2026-09-07T03:00:00Z"),
            }
        )
    );
}

#[test]
fn a_new_timezone_applies_from_the_next_daily_reset() {
    let (c, mut a) = open("pro_annual", "UTC", "2026-06-01T10:00:00Z");
    a.apply(
        &c,
        Command::SetTimezone {
            timezone: tz("Asia/Tokyo"),
        },
        utc("2026-06-01T10:00:00Z"),
    );
    // Today's allowance keeps its UTC expiry; the next one lasts until Tokyo midnight.
    assert_eq!(
        a.balance().daily.next_reset,
        Some(utc("2026-06-02T00:00:00Z"))
    );
    let entries = advance(&c, &mut a, "2026-06-02T20:00:00Z");
    let at: Vec<_> = entries.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        at,
        vec![
            (utc("2026-06-02T00:00:00Z"), EntryKind::Expire),
            (utc("2026-06-02T00:00:00Z"), EntryKind::Grant),
            (utc("2026-06-02T15:00:00Z"), EntryKind::Expire),
            (utc("2026-06-02T15:00:00Z"), EntryKind::Grant),
        ]
    );
}

#[test]
fn subscription_renews_on_a_clamped_monthly_anchor_with_nothing_rolled_over() {
    let (c, mut a) = open("pro", "UTC", "2027-01-31T10:00:00Z");
    let subs: Vec<_> = advance(&c, &mut a, "2027-04-01T00:00:00Z")
        .into_iter()
        .filter(|e| e.2 == Bucket::Subscription)
        .collect();
    assert_eq!(
        subs,
        vec![
            (
                utc("2027-02-28T10:00:00Z"),
                EntryKind::Expire,
                Bucket::Subscription,
                credits(-500)
            ),
            (
                utc("2027-02-28T10:00:00Z"),
                EntryKind::Grant,
                Bucket::Subscription,
                credits(500)
            ),
            (
                utc("2027-03-31T10:00:00Z"),
                EntryKind::Expire,
                Bucket::Subscription,
                credits(-500)
            ),
            (
                utc("2027-03-31T10:00:00Z"),
                EntryKind::Grant,
                Bucket::Subscription,
                credits(500)
            ),
        ]
    );
    assert_eq!(a.period_end, utc("2027-04-30T10:00:00Z"));
}
