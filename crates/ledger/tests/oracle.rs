//! Daily resets checked against an independent oracle: `oracle/daily_resets.py` asks
//! Python's `zoneinfo` (the system tzdata) for the first instant of every local day of
//! 2026–2027 in zones with awkward rules, by searching the UTC time line rather than
//! reasoning about wall-clock times. Our `day_start` and `next_daily_reset` must agree.
//!
//! python3 is required: without it this test fails, because a skipped oracle proves nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use creditbar_ledger::schedule::{daily_window, day_start, next_daily_reset};

/// The zones compared. All of the oracle's defaults are kept: chrono-tz's tzdata and the
/// system's (both 2025b when this was written) agree on every one of them for these two
/// years. Should a later tzdata change a zone in one and not the other, drop that zone
/// here and say why, rather than loosen the comparison.
const ZONES: [&str; 9] = [
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Europe/London",
    "Asia/Kolkata",
    "Pacific/Apia",
    "UTC",
    "Asia/Tehran",
    "America/Havana",
];

struct Line {
    zone: Tz,
    date: NaiveDate,
    start: DateTime<Utc>,
}

fn run_oracle() -> Vec<Line> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/daily_resets.py");
    let output = match Command::new("python3").arg(&script).args(ZONES).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run the daily-reset oracle: `python3 {}` failed to start ({e}). \
             Install Python 3.9+ (it needs the standard `zoneinfo` module and system tzdata).",
            script.display()
        ),
    };
    assert!(
        output.status.success(),
        "the daily-reset oracle failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("oracle prints UTF-8");
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "malformed oracle line `{line}`");
            Line {
                zone: fields[0].parse().expect("zone"),
                date: fields[1].parse().expect("date"),
                start: DateTime::from_timestamp(fields[2].parse().expect("seconds"), 0)
                    .expect("instant"),
            }
        })
        .collect()
}

#[test]
fn every_local_midnight_of_two_years_matches_python_zoneinfo() {
    let lines = run_oracle();
    let days = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .iter_days()
        .take_while(|d| *d <= NaiveDate::from_ymd_opt(2027, 12, 31).unwrap())
        .count();
    assert_eq!(lines.len(), ZONES.len() * days, "one line per zone and day");

    let mut mismatches = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let ours = day_start(line.zone, line.date);
        if ours != line.start {
            mismatches.push(format!(
                "day_start({}, {}) = {ours}, oracle says {}",
                line.zone, line.date, line.start
            ));
        }
        // The reset after any instant of the previous day is this day's start.
        if let Some(prev) = i.checked_sub(1).map(|j| &lines[j]) {
            if prev.zone == line.zone {
                for probe in [
                    prev.start,
                    prev.start + (line.start - prev.start) / 2,
                    line.start - Duration::seconds(1),
                ] {
                    let next = next_daily_reset(line.zone, probe);
                    if next != line.start {
                        mismatches.push(format!(
                            "next_daily_reset({}, {probe}) = {next}, oracle says {}",
                            line.zone, line.start
                        ));
                    }
                }
                let window = daily_window(line.zone, prev.start);
                if window != (prev.start, line.start) {
                    mismatches.push(format!(
                        "daily_window({}, {}) = {window:?}, oracle says ({}, {})",
                        line.zone, prev.start, prev.start, line.start
                    ));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches with the oracle, first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_oracle_sees_the_awkward_days_it_is_meant_to_check() {
    // Guards the oracle itself: if it printed local midnights naively these would differ.
    let lines = run_oracle();
    let find = |zone: &str, date: &str| {
        let zone: Tz = zone.parse().unwrap();
        let date: NaiveDate = date.parse().unwrap();
        lines
            .iter()
            .find(|l| l.zone == zone && l.date == date)
            .map(|l| l.start)
            .unwrap()
    };
    let utc = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    // Santiago springs forward at midnight: the day starts at 01:00 (-03).
    assert_eq!(
        find("America/Santiago", "2026-09-06"),
        utc("2026-09-06T04:00:00Z")
    );
    // Havana falls back from 01:00 to 00:00: the first of the two midnights (-04).
    assert_eq!(
        find("America/Havana", "2026-11-01"),
        utc("2026-11-01T04:00:00Z")
    );
    // Havana springs forward at midnight: the day starts at 01:00 (-04).
    assert_eq!(
        find("America/Havana", "2026-03-08"),
        utc("2026-03-08T05:00:00Z")
    );
}
