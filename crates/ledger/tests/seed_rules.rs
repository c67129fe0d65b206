//! The credit rules of product.md, one by one, as a user would observe them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    let step = a.apply(
        &c,
        Command::Charge {
            id: "u1".into(),
            usage: usage("premium", 30_000, 0, 30_000),
        },
        utc("2026-11-21T18:01:00Z"),
    );
    let Some(Ok(Reply::Charged(r))) = step.reply else {
        panic!("{:?}", step.reply)
    };
    assert_eq!(r.charged, credits(18));
    let parts: Vec<_> = r.breakdown.iter().map(|p| (p.bucket, p.amount)).collect();
    assert_eq!(
        parts,
        vec![
            (Bucket::Daily, credits(5)),
            (Bucket::Subscription, credits(13))
        ]
    );
    assert_eq!(step.entries.len(), 2);
    assert_eq!(step.entries[1].balance_after, credits(487));
    assert_eq!(a.balance().available, credits(487));
}

#[test]
fn daily_allowance_does_not_roll_over() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    let step = a.apply(&c, Command::Advance, utc("2026-11-22T00:00:00Z"));
    let kinds: Vec<_> = step.entries.iter().map(|e| (e.kind, e.amount)).collect();
    assert_eq!(
        kinds,
        vec![
            (EntryKind::Expire, credits(-5)),
            (EntryKind::Grant, credits(5))
        ]
    );
    assert_eq!(a.balance().daily.available, credits(5));
}

#[test]
fn a_charge_larger_than_available_is_refused_and_changes_nothing() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    let before = a.clone();
    let step = a.apply(
        &c,
        Command::Charge {
            id: "u1".into(),
            usage: usage("premium", 1_000_000, 0, 0),
        },
        utc("2026-11-21T18:00:00Z"),
    );
    assert!(matches!(
        step.reply,
        Some(Err(LedgerError::InsufficientCredits { .. }))
    ));
    assert!(step.entries.is_empty());
    assert_eq!(a, before);
}

#[test]
fn purchased_credits_never_expire() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    a.apply(
        &c,
        Command::Purchase {
            id: "p1".into(),
            credits: credits(500),
            price_cents: Cents(2000),
        },
        utc("2026-11-21T18:00:00Z"),
    );
    a.apply(&c, Command::Advance, utc("2029-11-21T18:00:00Z"));
    assert_eq!(a.balance().purchased.available, credits(500));
    assert_eq!(a.balance().available, credits(605));
}

// ---- small builders ----

fn charge(id: &str, u: Usage) -> Command {
    Command::Charge {
        id: id.into(),
        usage: u,
    }
}

fn charged(step: &Step) -> ChargeResult {
    match &step.reply {
        Some(Ok(Reply::Charged(r))) | Some(Ok(Reply::Settled(r))) => r.clone(),
        other => panic!("expected a charge result, got {other:?}"),
    }
}

/// A usage of standard tokens costing exactly `c` credits (100 µcr per output token).
fn costing(c: i64) -> Usage {
    usage("standard", 0, 0, (c * 10_000) as u64)
}

fn hold(id: &str, amount: Credits, ttl_seconds: i64) -> Command {
    Command::PlaceHold {
        id: id.into(),
        amount,
        ttl_seconds,
    }
}

fn auto_refill(threshold: i64, monthly_limit: u32) -> Command {
    Command::ConfigureAutoRefill {
        settings: AutoRefillSettings {
            enabled: true,
            threshold: credits(threshold),
            pack: "pack_500".into(),
            monthly_limit,
        },
    }
}

fn refills(step: &Step) -> Vec<String> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::BuyRefill { refill_id, .. } => Some(refill_id.clone()),
            _ => None,
        })
        .collect()
}

fn refill_charged(refill_id: &str) -> Command {
    Command::RefillResult {
        refill_id: refill_id.into(),
        outcome: RefillOutcome::Charged {
            purchase_id: format!("pur-{refill_id}"),
            credits: credits(500),
            price_cents: Cents(2000),
        },
    }
}

fn notice_kinds(step: &Step) -> Vec<NoticeKind> {
    step.notices.iter().map(|n| n.kind.clone()).collect()
}

// ---- free usage ----

#[test]
fn cache_hits_summarisation_and_cancelled_tasks_cost_nothing_and_post_nothing() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:05:00Z");
    let before = a.balance();
    let mut summary = usage("premium", 50_000, 0, 20_000);
    summary.kind = UsageKind::Summarization;
    let mut cancelled = usage("premium", 50_000, 0, 20_000);
    cancelled.status = UsageStatus::Cancelled;
    for (id, u) in [
        ("cache-hit", usage("premium", 80_000, 80_000, 0)),
        ("summary", summary),
        ("cancelled", cancelled),
    ] {
        let step = a.apply(&c, charge(id, u.clone()), now);
        let r = charged(&step);
        assert_eq!(r.charged, Credits::ZERO, "{id}");
        assert!(r.breakdown.is_empty(), "{id}");
        assert!(step.entries.is_empty(), "{id} posted entries");
        assert_eq!(a.balance(), before, "{id} moved credits");
        // Recorded all the same: the same id again is a replay, not a new event.
        let again = a.apply(&c, charge(id, u), now);
        assert!(
            matches!(again.reply, Some(Err(LedgerError::Duplicate(_)))),
            "{id}"
        );
    }
}

#[test]
fn only_the_uncached_part_of_the_input_is_charged() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    // 30,000 input of which 20,000 cached, 5,000 output, standard: 15,000 × 100 µcr.
    let step = a.apply(
        &c,
        charge("u1", usage("standard", 30_000, 20_000, 5_000)),
        utc("2026-11-21T18:00:00Z"),
    );
    assert_eq!(charged(&step).charged, Credits::from_micros(1_500_000));
    assert_eq!(
        a.balance().available,
        Credits::from_micros(505_000_000 - 1_500_000)
    );
}

// ---- buckets, burn order, expiry ----

#[test]
fn subscription_credits_do_not_roll_over_at_period_end() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    a.apply(&c, charge("u1", costing(105)), utc("2026-11-21T18:00:00Z"));
    assert_eq!(a.balance().subscription.available, credits(400));
    let step = a.apply(&c, Command::Advance, utc("2026-12-21T18:00:00Z"));
    let subs: Vec<_> = step
        .entries
        .iter()
        .filter(|e| e.bucket == Bucket::Subscription)
        .map(|e| (e.at, e.kind, e.amount))
        .collect();
    assert_eq!(
        subs,
        vec![
            (
                utc("2026-12-21T18:00:00Z"),
                EntryKind::Expire,
                credits(-400)
            ),
            (utc("2026-12-21T18:00:00Z"), EntryKind::Grant, credits(500)),
        ]
    );
    assert_eq!(a.balance().subscription.available, credits(500));
    assert!(step.notices.iter().any(|n| n.kind
        == NoticeKind::Reset {
            bucket: Bucket::Subscription,
            amount: credits(500),
            next_reset: utc("2027-01-21T18:00:00Z"),
        }));
}

#[test]
fn purchased_credits_outlive_every_reset_and_burn_last() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    a.apply(
        &c,
        Command::Purchase {
            id: "p1".into(),
            credits: credits(500),
            price_cents: Cents(2000),
        },
        utc("2026-11-21T18:00:00Z"),
    );
    // 505 of plan credits go first; 10 more come from the pack.
    let r = charged(&a.apply(&c, charge("u1", costing(515)), utc("2026-11-21T19:00:00Z")));
    let buckets: Vec<_> = r.breakdown.iter().map(|p| (p.bucket, p.amount)).collect();
    assert_eq!(
        buckets,
        vec![
            (Bucket::Daily, credits(5)),
            (Bucket::Subscription, credits(500)),
            (Bucket::Purchased, credits(10)),
        ]
    );
    let step = a.apply(&c, Command::Advance, utc("2028-01-01T00:00:00Z"));
    assert!(step.entries.iter().all(|e| e.bucket != Bucket::Purchased));
    assert_eq!(a.balance().purchased.available, credits(490));
}

#[test]
fn daily_credits_burn_before_a_bonus_that_expires_sooner() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    a.apply(
        &c,
        Command::Grant {
            id: "promo".into(),
            amount: credits(20),
            reason: GrantReason::Promo,
            expires_at: Some(utc("2026-11-21T19:00:00Z")),
            note: None,
        },
        now,
    );
    let r = charged(&a.apply(&c, charge("u1", costing(3)), now));
    assert_eq!(r.breakdown.len(), 1);
    assert_eq!(r.breakdown[0].bucket, Bucket::Daily);
}

#[test]
fn a_bonus_with_an_expiry_leaves_through_an_expire_entry_and_one_without_stays() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    let grant = |id: &str, amount, expires_at| Command::Grant {
        id: id.into(),
        amount: credits(amount),
        reason: GrantReason::Compensation,
        expires_at,
        note: Some("sorry".into()),
    };
    let step = a.apply(&c, grant("forever", 30, None), now);
    assert_eq!(
        notice_kinds(&step),
        vec![NoticeKind::Grant {
            amount: credits(30),
            reason: GrantReason::Compensation,
            note: Some("sorry".into()),
        }]
    );
    a.apply(
        &c,
        grant("week", 10, Some(utc("2026-11-28T18:00:00Z"))),
        now,
    );
    a.apply(&c, grant("day", 10, Some(utc("2026-11-22T18:00:00Z"))), now);
    // Spend all plan credits and 4 bonus credits: the one expiring soonest goes first.
    let r = charged(&a.apply(&c, charge("u1", costing(509)), now));
    let bonus: Vec<_> = r
        .breakdown
        .iter()
        .filter(|p| p.bucket == Bucket::Bonus)
        .map(|p| (p.grant_id.as_str(), p.amount))
        .collect();
    assert_eq!(bonus, vec![("day", credits(4))]);

    let step = a.apply(&c, Command::Advance, utc("2026-11-29T00:00:00Z"));
    let expired: Vec<_> = step
        .entries
        .iter()
        .filter(|e| e.bucket == Bucket::Bonus)
        .map(|e| (e.at, e.kind, e.grant_id.as_str(), e.amount))
        .collect();
    assert_eq!(
        expired,
        vec![
            (
                utc("2026-11-22T18:00:00Z"),
                EntryKind::Expire,
                "day",
                credits(-6)
            ),
            (
                utc("2026-11-28T18:00:00Z"),
                EntryKind::Expire,
                "week",
                credits(-10)
            ),
        ]
    );
    assert_eq!(a.balance().bonus.available, credits(30));
}

#[test]
fn a_bonus_cannot_expire_before_it_is_granted() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let before = a.clone();
    let step = a.apply(
        &c,
        Command::Grant {
            id: "late".into(),
            amount: credits(10),
            reason: GrantReason::Admin,
            expires_at: Some(utc("2026-11-21T18:00:00Z")),
            note: None,
        },
        utc("2026-11-21T18:00:00Z"),
    );
    assert_eq!(step.reply, Some(Err(LedgerError::ExpiryNotAfterGrant)));
    assert_eq!(a, before);
}

// ---- holds ----

#[test]
fn a_hold_lowers_available_without_posting_and_a_void_gives_it_back() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    let step = a.apply(&c, hold("h1", credits(100), 900), now);
    assert!(step.entries.is_empty());
    assert_eq!(a.balance().available, credits(405));
    assert_eq!(a.balance().held, credits(100));
    assert_eq!(a.ledger_balance(), credits(505));
    // Nothing can be charged out of what is held.
    let refused = a.apply(&c, charge("u1", costing(406)), now);
    assert_eq!(
        refused.reply,
        Some(Err(LedgerError::InsufficientCredits {
            needed: credits(406),
            available: credits(405),
        }))
    );
    let step = a.apply(
        &c,
        Command::VoidHold {
            hold_id: "h1".into(),
        },
        now,
    );
    assert_eq!(step.reply, Some(Ok(Reply::Voided)));
    assert_eq!(step.holds[0].status, HoldStatus::Voided);
    assert_eq!(a.balance().available, credits(505));
    let again = a.apply(
        &c,
        Command::VoidHold {
            hold_id: "h1".into(),
        },
        now,
    );
    assert!(matches!(again.reply, Some(Err(_))));
}

#[test]
fn a_hold_larger_than_available_is_refused() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    let step = a.apply(
        &c,
        hold("h1", credits(106), 900),
        utc("2026-11-21T18:00:00Z"),
    );
    assert!(matches!(
        step.reply,
        Some(Err(LedgerError::InsufficientCredits { .. }))
    ));
    assert_eq!(a.held(), Credits::ZERO);
}

#[test]
fn settling_a_hold_charges_the_real_usage_and_releases_the_rest() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    a.apply(&c, hold("h1", credits(100), 900), now);
    let step = a.apply(
        &c,
        Command::SettleHold {
            hold_id: "h1".into(),
            usage: costing(30),
        },
        now,
    );
    let r = charged(&step);
    assert_eq!((r.charged, r.uncollected), (credits(30), Credits::ZERO));
    assert!(step.entries.iter().all(|e| e.kind == EntryKind::Settle));
    assert_eq!(a.balance().held, Credits::ZERO);
    assert_eq!(a.balance().available, credits(475));
}

#[test]
fn a_settle_that_overruns_takes_what_is_there_and_records_the_rest_uncollected() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    a.apply(&c, hold("h1", credits(50), 900), now);
    a.apply(&c, hold("h2", credits(40), 900), now);
    // 105 in the lots; h2 keeps its 40, so h1 can take at most 65 of the 80 it costs.
    let step = a.apply(
        &c,
        Command::SettleHold {
            hold_id: "h1".into(),
            usage: costing(80),
        },
        now,
    );
    let r = charged(&step);
    assert_eq!(r.charged, credits(65));
    assert_eq!(r.uncollected, credits(15));
    assert_eq!(a.ledger_balance(), credits(40));
    assert_eq!(a.balance().available, Credits::ZERO);
    assert!(step
        .notices
        .iter()
        .any(|n| n.kind == NoticeKind::Exhausted {}));
    // h2 then overruns everything: the ledger reaches zero, never below.
    let r = charged(&a.apply(
        &c,
        Command::SettleHold {
            hold_id: "h2".into(),
            usage: costing(1000),
        },
        now,
    ));
    assert_eq!((r.charged, r.uncollected), (credits(40), credits(960)));
    assert_eq!(a.ledger_balance(), Credits::ZERO);
}

#[test]
fn an_unsettled_hold_lapses_after_its_ttl() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    a.apply(
        &c,
        hold("h1", credits(100), 900),
        utc("2026-11-21T18:00:00Z"),
    );
    let step = a.apply(&c, Command::Advance, utc("2026-11-21T18:14:59Z"));
    assert!(step.holds.is_empty());
    assert_eq!(a.balance().available, credits(405));
    let step = a.apply(&c, Command::Advance, utc("2026-11-21T18:15:00Z"));
    assert_eq!(step.holds.len(), 1);
    assert_eq!(step.holds[0].status, HoldStatus::Lapsed);
    assert!(step.entries.is_empty());
    assert_eq!(a.balance().available, credits(505));
    let late = a.apply(
        &c,
        Command::SettleHold {
            hold_id: "h1".into(),
            usage: costing(1),
        },
        utc("2026-11-21T18:16:00Z"),
    );
    assert!(matches!(late.reply, Some(Err(_))));
    assert_eq!(a.balance().available, credits(505));
}

#[test]
fn a_hold_id_in_use_is_refused_even_after_the_state_was_reloaded() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    a.apply(&c, hold("h1", credits(100), 900), now);
    // The server stores the state as JSON; the in-memory set of seen ids does not survive.
    let mut reloaded: Account = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    let step = reloaded.apply(&c, hold("h1", credits(1), 86_400), now);
    assert!(matches!(step.reply, Some(Err(LedgerError::Duplicate(_)))));
    assert_eq!(reloaded.holds["h1"].amount, credits(100));
    assert_eq!(reloaded.balance().available, credits(405));
}

// ---- plan changes ----

#[test]
fn an_upgrade_halfway_through_the_period_grants_the_prorated_difference() {
    // Pro from 2027-02-01T00:00Z: the period is February, 28 days.
    let (c, mut a) = open("pro", "UTC", "2027-02-01T00:00:00Z");
    let (start, end) = (a.period_start, a.period_end);
    assert_eq!(end, utc("2027-03-01T00:00:00Z"));
    let at = utc("2027-02-15T00:00:00Z");
    let step = a.apply(
        &c,
        Command::ChangePlan {
            plan: "team".into(),
        },
        at,
    );
    assert_eq!(
        step.reply,
        Some(Ok(Reply::PlanChanged {
            plan: "team".into(),
            effective_at: at,
        }))
    );
    assert_eq!(a.plan, "team");
    // floor((2500 − 500) × remaining / length) = 1000 credits at exactly halfway.
    let remaining = (end - at).num_seconds() as i128;
    let length = (end - start).num_seconds() as i128;
    let expected = (2_000_000_000i128 * remaining / length) as i64;
    assert_eq!(expected, credits(1000).micros());
    let grants: Vec<_> = step
        .new_lots
        .iter()
        .filter(|l| l.bucket == Bucket::Subscription)
        .map(|l| (l.bucket, l.amount, l.expires_at))
        .collect();
    assert_eq!(
        grants,
        vec![(
            Bucket::Subscription,
            Credits::from_micros(expected),
            Some(end)
        )]
    );
    assert_eq!(a.balance().subscription.available, credits(1500));
    // From the next period on, team's full allowance.
    let step = a.apply(&c, Command::Advance, end);
    assert!(step
        .new_lots
        .iter()
        .any(|l| l.bucket == Bucket::Subscription && l.amount == credits(2500)));
}

#[test]
fn an_upgrade_a_second_into_the_period_floors_to_the_micro_credit() {
    let (c, mut a) = open("pro", "UTC", "2027-02-01T00:00:00Z");
    let at = utc("2027-02-01T00:00:01Z");
    let step = a.apply(
        &c,
        Command::ChangePlan {
            plan: "team".into(),
        },
        at,
    );
    let length = 28 * 86_400i128;
    let expected = (2_000_000_000i128 * (length - 1) / length) as i64; // 1999.999173...
    assert_eq!(step.new_lots[0].amount, Credits::from_micros(expected));
    assert_eq!(expected, 1_999_999_173);
}

#[test]
fn an_upgrade_from_an_annual_plan_grants_the_difference_for_the_rest_of_the_year() {
    // pro_annual gives 6,000 a year; team gives 2,500 a month, 30,000 a year. Halfway
    // through a 365-day year, the rest of it at team's rate is 12,000 more than pro_annual's.
    let (c, mut a) = open("pro_annual", "UTC", "2026-01-01T00:00:00Z");
    assert_eq!(a.period_end, utc("2027-01-01T00:00:00Z"));
    let step = a.apply(
        &c,
        Command::ChangePlan {
            plan: "team".into(),
        },
        utc("2026-07-02T12:00:00Z"),
    );
    assert_eq!(a.plan, "team");
    let grants: Vec<_> = step
        .new_lots
        .iter()
        .filter(|l| l.bucket == Bucket::Subscription)
        .map(|l| l.amount)
        .collect();
    assert_eq!(grants, vec![credits(12_000)]);
    // Monthly periods start where the annual one ends.
    let step = a.apply(&c, Command::Advance, utc("2027-01-01T00:00:00Z"));
    assert!(step
        .new_lots
        .iter()
        .any(|l| l.bucket == Bucket::Subscription
            && l.amount == credits(2500)
            && l.expires_at == Some(utc("2027-02-01T00:00:00Z"))));
}

#[test]
fn an_upgrade_from_free_to_annual_is_prorated_at_the_annual_rate_not_a_years_worth() {
    let (c, mut a) = open("free", "UTC", "2026-01-01T00:00:00Z");
    let step = a.apply(
        &c,
        Command::ChangePlan {
            plan: "pro_annual".into(),
        },
        utc("2026-01-16T00:00:00Z"),
    );
    // 15 days left: (6,000 − 100 × 365/30) × 15/365 ≈ 196.6 credits, not 5,900 × 15/30.
    let upgrade: Vec<_> = step
        .new_lots
        .iter()
        .filter(|l| l.bucket == Bucket::Subscription)
        .collect();
    assert_eq!(upgrade.len(), 1);
    let amount = upgrade[0].amount;
    assert!(amount > credits(196) && amount < credits(197), "{amount}");
}

#[test]
fn a_downgrade_waits_for_the_period_end() {
    let (c, mut a) = open("team", "UTC", "2027-02-01T00:00:00Z");
    let step = a.apply(
        &c,
        Command::ChangePlan { plan: "pro".into() },
        utc("2027-02-10T00:00:00Z"),
    );
    assert_eq!(
        step.reply,
        Some(Ok(Reply::PlanChanged {
            plan: "pro".into(),
            effective_at: utc("2027-03-01T00:00:00Z"),
        }))
    );
    assert!(step.entries.iter().all(|e| e.bucket == Bucket::Daily));
    assert!(step.new_lots.iter().all(|l| l.bucket == Bucket::Daily));
    assert_eq!(a.plan, "team");
    assert_eq!(a.balance().subscription.available, credits(2500));
    // Team's daily allowance until the period ends, pro's from then on.
    let step = a.apply(&c, Command::Advance, utc("2027-02-28T00:00:00Z"));
    assert_eq!(step.new_lots.last().unwrap().amount, credits(10));
    let step = a.apply(&c, Command::Advance, utc("2027-03-01T00:00:00Z"));
    assert_eq!(a.plan, "pro");
    let grants: Vec<_> = step.new_lots.iter().map(|l| (l.bucket, l.amount)).collect();
    assert_eq!(
        grants,
        vec![
            (Bucket::Subscription, credits(500)),
            (Bucket::Daily, credits(5)),
        ]
    );
}

// ---- auto-refill ----

#[test]
fn a_charge_crossing_the_threshold_buys_exactly_one_refill() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    a.apply(&c, auto_refill(100, 3), now);
    assert!(refills(&a.apply(&c, charge("u1", costing(400)), now)).is_empty());
    let step = a.apply(&c, charge("u2", costing(10)), now);
    let bought = refills(&step);
    assert_eq!(bought.len(), 1, "one refill for the crossing");
    assert_eq!(
        step.effects,
        vec![Effect::BuyRefill {
            refill_id: bought[0].clone(),
            pack: "pack_500".into(),
        }]
    );
    // Still below, refill in flight: nothing more.
    assert!(refills(&a.apply(&c, charge("u3", costing(10)), now)).is_empty());
    assert!(refills(&a.apply(&c, hold("h1", credits(10), 900), now)).is_empty());

    let step = a.apply(&c, refill_charged(&bought[0]), now);
    assert_eq!(step.reply, Some(Ok(Reply::RefillRecorded)));
    let entries: Vec<_> = step
        .entries
        .iter()
        .map(|e| (e.kind, e.bucket, e.amount))
        .collect();
    assert_eq!(
        entries,
        vec![(EntryKind::Refill, Bucket::Purchased, credits(500))]
    );
    assert_eq!(
        notice_kinds(&step),
        vec![NoticeKind::RefillCharged {
            // The purchase (payment intent) the server made for the refill.
            purchase_id: format!("pur-{}", bought[0]),
            credits: credits(500),
            price_cents: Cents(2000),
        }]
    );
    assert_eq!(a.balance().purchased.available, credits(500));
    // The same answer again changes nothing.
    let again = a.apply(&c, refill_charged(&bought[0]), now);
    assert!(again.entries.is_empty() && matches!(again.reply, Some(Err(_))));
    assert_eq!(a.auto_refill.refills_this_month, 1);
}

#[test]
fn a_declined_refill_turns_auto_refill_off_and_says_so() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    a.apply(&c, auto_refill(100, 3), now);
    let bought = refills(&a.apply(&c, charge("u1", costing(410)), now));
    assert_eq!(bought.len(), 1);
    let step = a.apply(
        &c,
        Command::RefillResult {
            refill_id: bought[0].clone(),
            outcome: RefillOutcome::Declined {
                reason: "card_declined".into(),
            },
        },
        now,
    );
    assert!(step.entries.is_empty());
    assert_eq!(
        notice_kinds(&step),
        vec![NoticeKind::RefillFailed {
            reason: "card_declined".into(),
        }]
    );
    assert!(!a.auto_refill.enabled());
    assert_eq!(
        a.auto_refill.disabled_reason.as_deref(),
        Some("card_declined")
    );
    // Credits coming back above the threshold and falling again buy nothing: it is off.
    a.apply(
        &c,
        Command::Purchase {
            id: "p1".into(),
            credits: credits(500),
            price_cents: Cents(2000),
        },
        now,
    );
    assert!(refills(&a.apply(&c, charge("u2", costing(550)), now)).is_empty());
}

#[test]
fn re_saving_enabled_settings_does_not_rearm_a_refill_below_the_threshold() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    a.apply(&c, auto_refill(700, 5), now);
    let bought = refills(&a.apply(&c, charge("u1", costing(5)), now)); // 500
    assert_eq!(bought.len(), 1);
    a.apply(&c, charge("u2", costing(350)), now); // 150, refill in flight
    a.apply(&c, refill_charged(&bought[0]), now); // 650: still below 700, not re-armed
    assert!(refills(&a.apply(&c, charge("u3", costing(1)), now)).is_empty());
    // The user raises the monthly limit; auto-refill stays on and nothing was crossed.
    a.apply(&c, auto_refill(700, 6), now);
    assert!(refills(&a.apply(&c, charge("u4", costing(1)), now)).is_empty());
    // Turning it off and on again is asking for a refill.
    let mut off = auto_refill(700, 6);
    if let Command::ConfigureAutoRefill { settings } = &mut off {
        settings.enabled = false;
    }
    a.apply(&c, off, now);
    a.apply(&c, auto_refill(700, 6), now);
    assert_eq!(
        refills(&a.apply(&c, charge("u5", costing(1)), now)).len(),
        1
    );
}

#[test]
fn the_monthly_limit_counts_a_refill_in_the_month_it_was_charged() {
    let (c, mut a) = open("pro", "UTC", "2027-01-20T00:00:00Z");
    a.apply(&c, auto_refill(100, 1), utc("2027-01-20T00:00:00Z"));
    // Bought on the last evening of January, charged by the gateway just after midnight.
    let bought = refills(&a.apply(&c, charge("u1", costing(410)), utc("2027-01-31T23:59:00Z")));
    assert_eq!(bought.len(), 1);
    a.apply(&c, refill_charged(&bought[0]), utc("2027-02-01T00:01:00Z"));
    assert_eq!(a.auto_refill.refills_this_month, 1);
    // Back above the threshold, then below again, still in February: the limit is reached.
    let left = a.balance().available.micros() / MICROS_PER_CREDIT;
    assert!(left >= 100);
    let step = a.apply(
        &c,
        charge("u2", costing(left - 50)),
        utc("2027-02-01T01:00:00Z"),
    );
    assert!(charged(&step).charged.is_positive());
    assert!(refills(&step).is_empty(), "a second refill in February");
    // March is a new month.
    a.apply(
        &c,
        Command::Purchase {
            id: "p1".into(),
            credits: credits(500),
            price_cents: Cents(2000),
        },
        utc("2027-03-02T00:00:00Z"),
    );
    let left = a.balance().available.micros() / MICROS_PER_CREDIT;
    let step = a.apply(
        &c,
        charge("u3", costing(left - 50)),
        utc("2027-03-02T00:00:00Z"),
    );
    assert!(charged(&step).charged.is_positive());
    assert_eq!(refills(&step).len(), 1);
}

#[test]
fn a_refill_answer_that_cannot_be_credited_keeps_the_refill_in_flight() {
    let (c, mut a) = open("pro", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    a.apply(&c, auto_refill(100, 3), now);
    let bought = refills(&a.apply(&c, charge("u1", costing(410)), now));
    let huge = Command::RefillResult {
        refill_id: bought[0].clone(),
        outcome: RefillOutcome::Charged {
            purchase_id: "pur-huge".into(),
            credits: Credits::from_micros(i64::MAX),
            price_cents: Cents(2000),
        },
    };
    let step = a.apply(&c, huge, now);
    assert_eq!(step.reply, Some(Err(LedgerError::Overflow)));
    assert_eq!(a.auto_refill.in_flight.as_deref(), Some(bought[0].as_str()));
    assert_eq!(a.auto_refill.refills_this_month, 0);
    // The corrected answer still lands.
    let step = a.apply(&c, refill_charged(&bought[0]), now);
    assert_eq!(step.reply, Some(Ok(Reply::RefillRecorded)));
}

// ---- exhausted ----

#[test]
fn spending_the_last_credit_tells_the_account_is_exhausted_once() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    let step = a.apply(&c, charge("u1", costing(100)), now);
    assert!(!notice_kinds(&step).contains(&NoticeKind::Exhausted {}));
    let step = a.apply(&c, charge("u2", costing(5)), now);
    assert_eq!(a.balance().available, Credits::ZERO);
    assert_eq!(notice_kinds(&step), vec![NoticeKind::Exhausted {}]);
    // A free event at zero is fine and says nothing new; a paid one is refused.
    let step = a.apply(&c, charge("u3", usage("standard", 10, 10, 0)), now);
    assert!(step.notices.is_empty() && matches!(step.reply, Some(Ok(_))));
    let step = a.apply(&c, charge("u4", costing(1)), now);
    assert!(matches!(
        step.reply,
        Some(Err(LedgerError::InsufficientCredits { .. }))
    ));
    // The next day's allowance brings it back.
    a.apply(&c, Command::Advance, utc("2026-11-22T00:00:00Z"));
    assert_eq!(a.balance().available, credits(5));
}

#[test]
fn a_hold_of_everything_or_an_expiry_to_zero_also_tells_exhausted() {
    let (c, mut a) = open("free", "UTC", "2026-11-21T18:00:00Z");
    let now = utc("2026-11-21T18:00:00Z");
    let step = a.apply(&c, hold("h1", credits(105), 900), now);
    assert_eq!(notice_kinds(&step), vec![NoticeKind::Exhausted {}]);
    a.apply(
        &c,
        Command::VoidHold {
            hold_id: "h1".into(),
        },
        now,
    );
    // Only a bonus lot is left, and it expires at 20:00.
    a.apply(
        &c,
        Command::Grant {
            id: "promo".into(),
            amount: credits(10),
            reason: GrantReason::Promo,
            expires_at: Some(utc("2026-11-21T20:00:00Z")),
            note: None,
        },
        now,
    );
    a.apply(&c, charge("u1", costing(105)), now);
    assert_eq!(a.balance().available, credits(10));
    let step = a.apply(&c, Command::Advance, utc("2026-11-21T21:00:00Z"));
    let told: Vec<_> = step
        .notices
        .iter()
        .map(|n| (n.at, n.kind.clone()))
        .collect();
    assert_eq!(
        told,
        vec![(utc("2026-11-21T20:00:00Z"), NoticeKind::Exhausted {})]
    );
    // The next day's allowance brings it back, with a reset notice and nothing else.
    let step = a.apply(&c, Command::Advance, utc("2026-11-22T00:00:00Z"));
    assert!(!notice_kinds(&step).contains(&NoticeKind::Exhausted {}));
    assert_eq!(a.balance().available, credits(5));
}
