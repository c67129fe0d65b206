//! Plans are paid for, as properties over random histories: credits never before their
//! payment, never two charges for one period, and one time jump equal to many small steps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use creditbar_ledger::{
    Account, Bucket, Catalog, Command, Credits, Effect, EntryKind, PaymentOutcome, PlanQuote,
    PlanStatus, Step,
};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 31, 10, 0, 0).unwrap()
}

/// A free account upgraded to `pro` by card at sign-up.
fn paying(c: &Catalog) -> Account {
    let (mut a, _) = Account::open(c, "acc", "free", chrono_tz::UTC, t0()).unwrap();
    let PlanQuote::Upgrade {
        price_cents,
        credits,
        ..
    } = a.plan_quote(c, "pro", t0()).unwrap()
    else {
        panic!("free → pro is an upgrade");
    };
    let step = a.apply(
        c,
        Command::UpgradePlan {
            plan: "pro".into(),
            purchase_id: "up".into(),
            credits,
            price_cents,
        },
        t0(),
    );
    assert!(step.reply.unwrap().is_ok());
    a
}

#[derive(Debug, Clone)]
enum Op {
    /// Move time forward by this many hours.
    Wait(i64),
    /// The processor answers the charge in flight, if any.
    Answer { paid: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..24 * 40).prop_map(Op::Wait),
        any::<bool>().prop_map(|paid| Op::Answer { paid }),
    ]
}

fn charges(step: &Step) -> Vec<String> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::ChargePlan { reference, .. } => Some(reference.clone()),
            _ => None,
        })
        .collect()
}

fn subscription_grants(step: &Step) -> usize {
    step.entries
        .iter()
        .filter(|e| e.kind == EntryKind::Grant && e.bucket == Bucket::Subscription)
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn credits_never_come_before_their_payment_and_no_period_is_charged_twice(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let c = Catalog::default();
        let mut a = paying(&c);
        let mut now = t0();
        let mut in_flight: Option<(String, u64)> = None;
        let mut paid_for: Vec<String> = Vec::new();
        let (mut payments, mut grants) = (0usize, 0usize);
        for op in ops {
            let step = match op {
                Op::Wait(h) => {
                    now += Duration::hours(h);
                    a.apply(&c, Command::Advance, now)
                }
                Op::Answer { paid } => {
                    let Some((reference, _)) = in_flight.clone() else { continue };
                    let outcome = if paid {
                        PaymentOutcome::Paid
                    } else {
                        PaymentOutcome::Declined { reason: "declined".into() }
                    };
                    let step = a.apply(&c, Command::PlanPayment {
                        reference: reference.clone(),
                        purchase_id: format!("p{}", payments + grants),
                        outcome,
                    }, now);
                    prop_assert!(step.reply.as_ref().unwrap().is_ok());
                    in_flight = None;
                    if paid {
                        payments += 1;
                        prop_assert!(!paid_for.contains(&reference), "{reference} paid twice");
                        paid_for.push(reference);
                    }
                    step
                }
            };
            grants += subscription_grants(&step);
            for reference in charges(&step) {
                prop_assert!(in_flight.is_none(), "two plan charges in flight");
                prop_assert!(!paid_for.contains(&reference), "a paid period charged again");
                in_flight = Some((reference, a.seq));
            }
            // Paid-by-card subscription credits: only as many as payments (a fallback to
            // free grants free's allowance, which is no longer paid by card).
            if a.plan_billing.by_card {
                prop_assert!(grants <= payments, "{grants} grants for {payments} payments");
            }
            if a.plan_billing.status == PlanStatus::PastDue {
                prop_assert!(a.plan_billing.due.is_some());
            }
            prop_assert_eq!(
                a.ledger_balance().micros(),
                a.lots.iter().map(|l| l.remaining.micros()).sum::<i64>()
            );
        }
    }

    #[test]
    fn one_time_jump_equals_many_small_steps(
        hours in proptest::collection::vec(1i64..24 * 20, 1..20)
    ) {
        let c = Catalog::default();
        let (mut big, mut small) = (paying(&c), paying(&c));
        let total: i64 = hours.iter().sum();
        let end = t0() + Duration::hours(total);
        let jump = big.apply(&c, Command::Advance, end);
        let mut effects = charges(&jump);
        let mut stepped = Vec::new();
        let mut now = t0();
        for h in hours {
            now += Duration::hours(h);
            stepped.extend(charges(&small.apply(&c, Command::Advance, now)));
        }
        effects.sort();
        stepped.sort();
        prop_assert_eq!(effects, stepped);
        prop_assert_eq!(&big.plan_billing, &small.plan_billing);
        prop_assert_eq!(&big.plan, &small.plan);
        prop_assert_eq!(big.ledger_balance(), small.ledger_balance());
        prop_assert_eq!(big.period_end, small.period_end);
    }
}

#[test]
fn three_declines_move_the_account_to_free_and_grant_its_allowance() {
    let c = Catalog::default();
    let mut a = paying(&c);
    let renewal = a.period_end;
    let step = a.apply(&c, Command::Advance, renewal);
    let reference = charges(&step)
        .pop()
        .expect("the renewal asks for the price");
    assert_eq!(
        subscription_grants(&step),
        0,
        "no credits before the payment"
    );
    let decline = |a: &mut Account, at| {
        a.apply(
            &c,
            Command::PlanPayment {
                reference: reference.clone(),
                purchase_id: "p".into(),
                outcome: PaymentOutcome::Declined {
                    reason: "card declined".into(),
                },
            },
            at,
        )
    };
    decline(&mut a, renewal);
    assert_eq!(a.plan_billing.status, PlanStatus::PastDue);
    assert_eq!(
        a.plan_billing.next_retry(),
        Some(renewal + Duration::days(1))
    );
    let step = a.apply(&c, Command::Advance, renewal + Duration::days(1));
    assert_eq!(charges(&step), std::slice::from_ref(&reference));
    decline(&mut a, renewal + Duration::days(1));
    let step = a.apply(&c, Command::Advance, renewal + Duration::days(3));
    assert_eq!(charges(&step), std::slice::from_ref(&reference));
    let step = decline(&mut a, renewal + Duration::days(3));
    assert_eq!(a.plan, "free");
    assert_eq!(a.plan_billing.status, PlanStatus::Active);
    assert_eq!(subscription_grants(&step), 1);
    assert_eq!(
        a.balance().subscription.available,
        Credits::from_micros(100_000_000),
        "free's allowance, from now"
    );
}
