//! The credit rules of product.md, one by one, as a user would observe them.

use chrono::{DateTime, Utc};
use creditbar_ledger::*;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn usage(model: &str, input: u64, cached: u64, output: u64) -> Usage {
    Usage {
        model: model.into(),
        kind: UsageKind::Chat,
        status: UsageStatus::Completed,
        input_tokens: input,
        cached_input_tokens: cached,
        output_tokens: output,
    }
}

fn credits(c: i64) -> Credits {
    Credits::from_credits(c).unwrap()
}

fn open(plan: &str, tz: &str, at: &str) -> (Catalog, Account) {
    let catalog = Catalog::default();
    let (account, _) = Account::open(&catalog, "acc", plan, tz.parse().unwrap(), utc(at)).unwrap();
    (catalog, account)
}

#[test]
fn a_new_account_has_its_daily_and_subscription_allowance() {
    let (_, a) = open("pro", "Europe/Paris", "2026-11-21T18:00:00Z");
    let b = a.balance();
    assert_eq!(b.daily.available, credits(5));
    assert_eq!(b.subscription.available, credits(500));
    assert_eq!(b.available, credits(505));
    assert_eq!(b.daily.next_reset, Some(utc("2026-11-21T23:00:00Z")));
    assert_eq!(b.subscription.next_reset, Some(utc("2026-12-21T18:00:00Z")));
}

#[test]
fn daily_credits_burn_first_and_a_spanning_charge_records_one_entry_per_lot() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    // 60,000 premium tokens = 18 credits: 5 daily + 13 subscription.
    let step = a.apply(&c, Command::Charge { id: "u1".into(), usage: usage("premium", 30_000, 0, 30_000) }, utc("2026-11-21T18:01:00Z"));
    let Some(Ok(Reply::Charged(r))) = step.reply else { panic!("{:?}", step.reply) };
    assert_eq!(r.charged, credits(18));
    let parts: Vec<_> = r.breakdown.iter().map(|p| (p.bucket, p.amount)).collect();
    assert_eq!(parts, vec![(Bucket::Daily, credits(5)), (Bucket::Subscription, credits(13))]);
    assert_eq!(step.entries.len(), 2);
    assert_eq!(step.entries[1].balance_after, credits(487));
    assert_eq!(a.balance().available, credits(487));
}

#[test]
fn daily_allowance_does_not_roll_over() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    let step = a.apply(&c, Command::Advance, utc("2026-11-22T00:00:00Z"));
    let kinds: Vec<_> = step.entries.iter().map(|e| (e.kind, e.amount)).collect();
    assert_eq!(kinds, vec![(EntryKind::Expire, credits(-5)), (EntryKind::Grant, credits(5))]);
    assert_eq!(a.balance().daily.available, credits(5));
}

#[test]
fn a_charge_larger_than_available_is_refused_and_changes_nothing() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    let before = a.clone();
    let step = a.apply(&c, Command::Charge { id: "u1".into(), usage: usage("premium", 1_000_000, 0, 0) }, utc("2026-11-21T18:00:00Z"));
    assert!(matches!(step.reply, Some(Err(LedgerError::InsufficientCredits { .. }))));
    assert!(step.entries.is_empty());
    assert_eq!(a, before);
}

#[test]
fn purchased_credits_never_expire() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    a.apply(&c, Command::Purchase { id: "p1".into(), credits: credits(500), price_cents: Cents(2000) }, utc("2026-11-21T18:00:00Z"));
    a.apply(&c, Command::Advance, utc("2029-11-21T18:00:00Z"));
    assert_eq!(a.balance().purchased.available, credits(500));
    assert_eq!(a.balance().available, credits(605));
}
