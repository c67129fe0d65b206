//! Charges per second through the account state machine, against pricing alone.
//!
//! The account holds a realistic mix of lots: today's daily allowance, the subscription,
//! three bonus grants with different expiries and two purchased packs. Each measured charge
//! starts from that same state (cloned outside the timing), so the mix does not drain as
//! the benchmark runs. `price` alone is the baseline: the difference is what the state
//! machine costs (duplicate check, burn order, entries, auto-refill decision).
//!
//! Run with `scripts/bench-ledger` for a table, or
//! `cargo bench -p creditbar-ledger --bench state_machine`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use creditbar_ledger::{
    price, Account, AutoRefillSettings, Catalog, Cents, Command, Credits, GrantReason, Reply,
    Usage, UsageKind, UsageStatus,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn usage(input: u64, cached: u64, output: u64) -> Usage {
    Usage {
        model: "premium".into(),
        kind: UsageKind::Agent,
        status: UsageStatus::Completed,
        input_tokens: input,
        cached_input_tokens: cached,
        output_tokens: output,
    }
}

fn credits(c: i64) -> Credits {
    Credits::from_credits(c).unwrap()
}

/// A pro account in New York with daily, subscription, three bonus and two purchased lots,
/// and auto-refill on (so every charge also asks the refill decision).
fn account(catalog: &Catalog, now: DateTime<Utc>) -> Account {
    let tz = "America/New_York".parse().unwrap();
    let (mut a, _) = Account::open(catalog, "bench", "pro", tz, now).unwrap();
    let grants = [
        ("promo", 50, Some(now + Duration::days(2))),
        ("community", 20, Some(now + Duration::days(10))),
        ("compensation", 100, None),
    ];
    for (id, amount, expires_at) in grants {
        let step = a.apply(
            catalog,
            Command::Grant {
                id: id.into(),
                amount: credits(amount),
                reason: GrantReason::Promo,
                expires_at,
                note: None,
            },
            now,
        );
        assert!(matches!(step.reply, Some(Ok(_))));
    }
    for id in ["pack-1", "pack-2"] {
        let step = a.apply(
            catalog,
            Command::Purchase {
                id: id.into(),
                credits: credits(500),
                price_cents: Cents(2000),
            },
            now,
        );
        assert!(matches!(step.reply, Some(Ok(_))));
    }
    a.apply(
        catalog,
        Command::ConfigureAutoRefill {
            settings: AutoRefillSettings {
                enabled: true,
                threshold: credits(10),
                pack: "pack_500".into(),
                monthly_limit: 3,
            },
        },
        now,
    );
    assert_eq!(a.lots.len(), 7);
    a
}

fn charges(c: &mut Criterion) {
    let catalog = Catalog::default();
    let now: DateTime<Utc> = "2026-11-21T18:00:00Z".parse().unwrap();
    let base = account(&catalog, now);
    // A typical agent turn: 12k input of which 8k cached, 1.5k output = 1.65 credits,
    // taken from the daily lot alone.
    let small = usage(12_000, 8_000, 1_500);
    // A long task: 1.7M tokens = 510 credits, spanning daily, subscription and one bonus.
    let spanning = usage(1_000_000, 0, 700_000);
    assert_eq!(price(&catalog, &spanning), Ok(credits(510)));

    let mut group = c.benchmark_group("charge");
    group.throughput(Throughput::Elements(1));
    group.bench_function("price only", |b| {
        b.iter(|| price(black_box(&catalog), black_box(&small)))
    });
    group.bench_function("apply, 1 lot", |b| {
        b.iter_batched(
            || base.clone(),
            |mut a| {
                let step = a.apply(
                    &catalog,
                    Command::Charge {
                        id: "u1".into(),
                        usage: small.clone(),
                    },
                    now,
                );
                debug_assert!(matches!(step.reply, Some(Ok(Reply::Charged(_)))));
                (a, step)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("apply, 3 lots", |b| {
        b.iter_batched(
            || base.clone(),
            |mut a| {
                let step = a.apply(
                    &catalog,
                    Command::Charge {
                        id: "u1".into(),
                        usage: spanning.clone(),
                    },
                    now,
                );
                debug_assert_eq!(step.entries.len(), 3);
                (a, step)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, charges);
criterion_main!(benches);
