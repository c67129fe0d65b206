//! The account state machine: applies commands at a given instant and returns the ledger
//! entries, notices and side effects they produce.
//!
//! Time is an input. `apply` first performs everything that fell due up to `now` (expiries,
//! hold lapses, daily and subscription resets, a pending plan change) and then the command.
//! The postings of time are returned even when the command itself is refused: time passing
//! is a fact, a refused charge is not. Every period is replayed one by one, so the ledger
//! does not depend on how often the caller advances time.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::plan_billing::{
    fallback_plan, prorate, retry_delay, PlanBilling, PlanDue, PlanQuote, PlanStatus,
    MAX_PLAN_ATTEMPTS,
};
use crate::schedule::{daily_window, local_month_key, BillingCycle};
use crate::{
    price, AutoRefill, AutoRefillSettings, Bucket, BurnOrder, Catalog, Cents, Credits, Hold,
    HoldStatus, LedgerError, Lot, Usage,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Grant,
    Usage,
    Settle,
    Expire,
    Purchase,
    Refill,
    /// Credits taken back by a refund of the purchase named in `ref`.
    Refund,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Grant => "grant",
            EntryKind::Usage => "usage",
            EntryKind::Settle => "settle",
            EntryKind::Expire => "expire",
            EntryKind::Purchase => "purchase",
            EntryKind::Refill => "refill",
            EntryKind::Refund => "refund",
        }
    }
}

/// One immutable ledger entry. `amount` is signed; `balance_after` is the account's ledger
/// balance (sum of every entry so far), holds not subtracted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    pub bucket: Bucket,
    pub amount: Credits,
    pub balance_after: Credits,
    pub grant_id: String,
    /// What caused it: a usage id, hold id, purchase id, grant reason.
    pub reference: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantReason {
    Admin,
    Promo,
    Community,
    Compensation,
    /// The catalog's grant to every new account.
    Signup,
}

impl GrantReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantReason::Admin => "admin",
            GrantReason::Promo => "promo",
            GrantReason::Community => "community",
            GrantReason::Compensation => "compensation",
            GrantReason::Signup => "signup",
        }
    }
}

/// Facts the server tells the client; the client decides what to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum NoticeKind {
    Reset {
        bucket: Bucket,
        amount: Credits,
        next_reset: DateTime<Utc>,
    },
    Exhausted {},
    RefillCharged {
        purchase_id: String,
        credits: Credits,
        price_cents: Cents,
    },
    RefillFailed {
        reason: String,
    },
    Grant {
        amount: Credits,
        reason: GrantReason,
        note: Option<String>,
    },
    Purchase {
        purchase_id: String,
        credits: Credits,
        price_cents: Cents,
    },
    ReviewResolved {
        review_id: String,
        grant_amount: Credits,
    },
    /// A purchase was refunded: its money returned, what was left of its credits removed.
    Refund {
        purchase_id: String,
        refunded_cents: Cents,
        credits_removed: Credits,
    },
    /// A plan's price was charged (an upgrade or a renewal); its credits follow.
    PlanCharged {
        purchase_id: String,
        plan: String,
        price_cents: Cents,
    },
    /// A renewal charge was declined: the plan is past due until `retry_at` (null: no
    /// more retries; the account moved to the free plan, told by `plan_changed`).
    PlanPaymentFailed {
        purchase_id: String,
        plan: String,
        reason: String,
        retry_at: Option<DateTime<Utc>>,
    },
    /// The account's plan changed (`reason`: `upgrade`, `downgrade`, `staff`,
    /// `payment_failed`).
    PlanChanged {
        plan: String,
        previous: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: NoticeKind,
}

/// Work the caller must do outside the rules: buying a refill talks to a payment gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    BuyRefill {
        refill_id: String,
        pack: String,
    },
    /// Charge the plan's price for the period named by `reference` (see `plan_billing`).
    ChargePlan {
        reference: String,
        plan: String,
        price_cents: Cents,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefillOutcome {
    /// Charged as purchase `purchase_id`, whose lot carries that id.
    Charged {
        purchase_id: String,
        credits: Credits,
        price_cents: Cents,
    },
    Declined {
        reason: String,
    },
}

/// What the processor said about a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid,
    Declined { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A bonus grant (admin, promo, community, compensation).
    Grant {
        id: String,
        amount: Credits,
        reason: GrantReason,
        expires_at: Option<DateTime<Utc>>,
        note: Option<String>,
    },
    Charge {
        id: String,
        usage: Usage,
    },
    PlaceHold {
        id: String,
        amount: Credits,
        ttl_seconds: i64,
    },
    SettleHold {
        hold_id: String,
        usage: Usage,
    },
    VoidHold {
        hold_id: String,
    },
    /// A manual purchase the gateway already charged.
    Purchase {
        id: String,
        credits: Credits,
        price_cents: Cents,
    },
    RefillResult {
        refill_id: String,
        outcome: RefillOutcome,
    },
    /// A plan set by staff: at once when an upgrade (with the prorated credits), at the
    /// period end otherwise; renewals are comped (no charge).
    ChangePlan {
        plan: String,
    },
    /// The user chose `plan` and its upgrade charge (`purchase_id`, `price_cents`) has
    /// succeeded: it takes effect now and grants the `credits` quoted, until the period end.
    /// From now on renewals are charged to the user's card.
    UpgradePlan {
        plan: String,
        purchase_id: String,
        credits: Credits,
        price_cents: Cents,
    },
    /// The user chose `plan`, which is not an upgrade: it takes effect at the period end,
    /// free (choosing the current plan cancels a pending change). While the plan is past
    /// due, choosing it again asks for the overdue charge at once.
    SchedulePlan {
        plan: String,
    },
    /// The answer to a `ChargePlan` effect for `reference`.
    PlanPayment {
        reference: String,
        purchase_id: String,
        outcome: PaymentOutcome,
    },
    /// Refund `id` of purchase `purchase_id`: takes back what is left of the purchase's
    /// lot, never more.
    Refund {
        id: String,
        purchase_id: String,
        refunded_cents: Cents,
    },
    SetTimezone {
        timezone: Tz,
    },
    ConfigureAutoRefill {
        settings: AutoRefillSettings,
    },
    ResolveReview {
        review_id: String,
        grant_amount: Credits,
        note: Option<String>,
    },
    /// Only perform what is due.
    Advance,
}

/// One slice of a charge, as api.md's `breakdown` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargePart {
    pub bucket: Bucket,
    pub grant_id: String,
    pub amount: Credits,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeResult {
    pub charged: Credits,
    pub breakdown: Vec<ChargePart>,
    /// What a settle could not take because the credits were not there.
    pub uncollected: Credits,
    pub available: Credits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Granted {
        grant_id: String,
    },
    Charged(ChargeResult),
    HoldPlaced(Hold),
    Settled(ChargeResult),
    Voided,
    Purchased {
        available: Credits,
    },
    RefillRecorded,
    PlanPaymentRecorded,
    Refunded {
        credits_removed: Credits,
    },
    PlanChanged {
        plan: String,
        effective_at: DateTime<Utc>,
    },
    TimezoneSet,
    AutoRefillConfigured,
    ReviewResolved,
    Advanced,
}

/// Everything one `apply` produced.
#[derive(Debug, Default)]
pub struct Step {
    pub entries: Vec<Entry>,
    pub notices: Vec<Notice>,
    pub effects: Vec<Effect>,
    /// Lots created by this step (to be recorded as grants).
    pub new_lots: Vec<Lot>,
    /// Holds whose status changed (placed, settled, voided, lapsed).
    pub holds: Vec<Hold>,
    pub reply: Option<Result<Reply, LedgerError>>,
}

/// A bucket's part of the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketBalance {
    pub available: Credits,
    pub next_reset: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub available: Credits,
    pub held: Credits,
    pub daily: BucketBalance,
    pub subscription: BucketBalance,
    pub bonus: BucketBalance,
    pub purchased: BucketBalance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub plan: String,
    pub timezone: Tz,
    pub created_at: DateTime<Utc>,
    pub billing: BillingCycle,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub next_daily_reset: DateTime<Utc>,
    /// A downgrade (or sideways move) waiting for the period end.
    pub pending_plan: Option<String>,
    /// Lots with something left; spent or expired lots are dropped from memory (their
    /// history lives in the entries).
    pub lots: Vec<Lot>,
    pub holds: BTreeMap<String, Hold>,
    pub auto_refill: AutoRefill,
    /// Whether the plan is paid by card, and the renewal charge waited for.
    #[serde(default)]
    pub plan_billing: PlanBilling,
    /// Last sequence number used by an entry or notice.
    pub seq: u64,
    /// The instant the state has been advanced to.
    pub clock: DateTime<Utc>,
    /// Command ids applied while this state was in memory. The server keeps the durable
    /// record of ids (with the original responses); this set guards the rules themselves.
    #[serde(skip)]
    seen: HashSet<String>,
}

impl Account {
    /// Opens an account at `now`: the billing anchor is the sign-up instant, and the first
    /// daily and subscription grants are made at once.
    pub fn open(
        catalog: &Catalog,
        id: impl Into<String>,
        plan: &str,
        timezone: Tz,
        now: DateTime<Utc>,
    ) -> Result<(Account, Step), LedgerError> {
        let p = catalog.plan(plan)?;
        let billing = BillingCycle::new(now, p.cadence);
        let (period_start, period_end) = billing.period_at(now);
        let (day_start, day_end) = daily_window(timezone, now);
        let mut account = Account {
            id: id.into(),
            plan: p.id.clone(),
            timezone,
            created_at: now,
            billing,
            period_start,
            period_end,
            next_daily_reset: day_end,
            pending_plan: None,
            lots: Vec::new(),
            holds: BTreeMap::new(),
            auto_refill: AutoRefill::default(),
            plan_billing: PlanBilling::default(),
            seq: 0,
            clock: now,
            seen: HashSet::new(),
        };
        let mut step = Step::default();
        let (daily, sub) = (p.daily, p.subscription);
        let daily_id = format!("{}:daily:{}", account.id, day_start.timestamp());
        account.grant_scheduled(&mut step, Bucket::Daily, daily, daily_id, now, day_end)?;
        let sub_id = format!("{}:subscription:{}", account.id, period_start.timestamp());
        account.grant_scheduled(
            &mut step,
            Bucket::Subscription,
            sub,
            sub_id,
            now,
            period_end,
        )?;
        if catalog.signup_grant.is_positive() {
            let id = format!("{}:signup", account.id);
            let amount = catalog.signup_grant;
            account.grant_bonus(&mut step, id, amount, GrantReason::Signup, None, None, now)?;
        }
        step.reply = Some(Ok(Reply::Advanced));
        Ok((account, step))
    }

    /// Sum of every lot's remainder: the ledger balance.
    pub fn ledger_balance(&self) -> Credits {
        Credits::from_micros(self.lots.iter().map(|l| l.remaining.micros()).sum())
    }

    pub fn held(&self) -> Credits {
        Credits::from_micros(
            self.holds
                .values()
                .filter(|h| h.status == HoldStatus::Active)
                .map(|h| h.amount.micros())
                .sum(),
        )
    }

    /// What can be spent: lots minus holds, never below zero (a lot can expire under a hold;
    /// the hold's settle then records what it cannot collect).
    pub fn available(&self) -> Credits {
        Credits::from_micros((self.ledger_balance().micros() - self.held().micros()).max(0))
    }

    pub fn balance(&self) -> Balance {
        let bucket = |b: Bucket, next_reset| BucketBalance {
            available: Credits::from_micros(
                self.lots
                    .iter()
                    .filter(|l| l.bucket == b)
                    .map(|l| l.remaining.micros())
                    .sum(),
            ),
            next_reset,
        };
        Balance {
            available: self.available(),
            held: self.held(),
            daily: bucket(Bucket::Daily, Some(self.next_daily_reset)),
            subscription: bucket(Bucket::Subscription, Some(self.period_end)),
            bonus: bucket(Bucket::Bonus, None),
            purchased: bucket(Bucket::Purchased, None),
        }
    }

    /// The earliest instant at which something falls due; the scheduler sleeps until then.
    pub fn next_due(&self) -> DateTime<Utc> {
        let lots = self.lots.iter().filter_map(|l| l.expires_at);
        let holds = self
            .holds
            .values()
            .filter(|h| h.status == HoldStatus::Active)
            .map(|h| h.expires_at);
        lots.chain(holds)
            .chain(self.plan_billing.next_retry())
            .chain([self.next_daily_reset, self.period_end])
            .min()
            .unwrap_or(self.next_daily_reset)
    }

    /// Whether `key` (a namespaced command id) was applied while in memory.
    pub fn has_seen(&self, key: &str) -> bool {
        self.seen.contains(key)
    }

    /// Drops the in-memory record of applied ids. A caller that keeps its own durable
    /// record of ids (the server's idempotency table) calls this after each commit, so the
    /// state stays small however many commands an account has seen.
    pub fn forget_applied_ids(&mut self) {
        self.seen.clear();
    }

    /// Applies `command` at `now`, after performing whatever fell due before it.
    pub fn apply(&mut self, catalog: &Catalog, command: Command, now: DateTime<Utc>) -> Step {
        let mut step = Step::default();
        let now = now.max(self.clock);
        if let Err(e) = self.advance_to(catalog, now, &mut step) {
            step.reply = Some(Err(e));
            return step;
        }
        let before = self.available();
        let reply = self.command(catalog, command, now, &mut step);
        if reply.is_ok() {
            self.after_change(before, now, &mut step);
        }
        step.reply = Some(reply);
        step
    }

    fn command(
        &mut self,
        catalog: &Catalog,
        command: Command,
        now: DateTime<Utc>,
        step: &mut Step,
    ) -> Result<Reply, LedgerError> {
        match command {
            Command::Advance => Ok(Reply::Advanced),
            Command::Grant {
                id,
                amount,
                reason,
                expires_at,
                note,
            } => {
                let key = format!("grant:{id}");
                self.check_new(&key)?;
                if expires_at.is_some_and(|e| e <= now) {
                    return Err(LedgerError::ExpiryNotAfterGrant);
                }
                self.grant_bonus(step, id.clone(), amount, reason, expires_at, note, now)?;
                self.seen.insert(key);
                Ok(Reply::Granted { grant_id: id })
            }
            Command::Charge { id, usage } => {
                let key = format!("usage:{id}");
                self.check_new(&key)?;
                catalog.check_access(&self.plan, &usage.model)?;
                let charge = price(catalog, &usage)?;
                let available = self.available();
                if charge > available {
                    return Err(LedgerError::InsufficientCredits {
                        needed: charge,
                        available,
                    });
                }
                let result = self.burn(step, charge, crate::EntryKind::Usage, &id, now)?;
                self.seen.insert(key);
                Ok(Reply::Charged(result))
            }
            Command::PlaceHold {
                id,
                amount,
                ttl_seconds,
            } => {
                let key = format!("hold:{id}");
                self.check_new(&key)?;
                // `seen` does not survive serialisation; the active holds do, and an id in
                // use must never replace the reservation it names.
                if self.holds.contains_key(&id) {
                    return Err(LedgerError::Duplicate(key));
                }
                if !amount.is_positive() || ttl_seconds <= 0 {
                    return Err(LedgerError::NonPositiveAmount);
                }
                let available = self.available();
                if amount > available {
                    return Err(LedgerError::InsufficientCredits {
                        needed: amount,
                        available,
                    });
                }
                let expires_at = chrono::Duration::try_seconds(ttl_seconds)
                    .and_then(|d| now.checked_add_signed(d))
                    .ok_or(LedgerError::Overflow)?;
                let hold = Hold {
                    id: id.clone(),
                    amount,
                    created_at: now,
                    expires_at,
                    status: HoldStatus::Active,
                };
                self.holds.insert(id, hold.clone());
                self.seen.insert(key);
                step.holds.push(hold.clone());
                Ok(Reply::HoldPlaced(hold))
            }
            Command::SettleHold { hold_id, usage } => {
                catalog.check_access(&self.plan, &usage.model)?;
                let charge = price(catalog, &usage)?;
                let mut hold = self.active_hold(&hold_id)?.clone();
                self.holds.remove(&hold_id);
                // What is there: the lots, less the other holds.
                let take = charge.min(self.available());
                let mut result = self.burn(step, take, crate::EntryKind::Settle, &hold_id, now)?;
                result.charged = take;
                result.uncollected = charge.checked_sub(take)?;
                hold.status = HoldStatus::Settled;
                step.holds.push(hold);
                Ok(Reply::Settled(result))
            }
            Command::VoidHold { hold_id } => {
                let mut hold = self.active_hold(&hold_id)?.clone();
                self.holds.remove(&hold_id);
                hold.status = HoldStatus::Voided;
                step.holds.push(hold);
                Ok(Reply::Voided)
            }
            Command::Purchase {
                id,
                credits,
                price_cents,
            } => {
                let key = format!("purchase:{id}");
                self.check_new(&key)?;
                self.credit_purchase(
                    catalog,
                    step,
                    &id,
                    credits,
                    price_cents,
                    crate::EntryKind::Purchase,
                    now,
                )?;
                self.seen.insert(key);
                Ok(Reply::Purchased {
                    available: self.available(),
                })
            }
            Command::RefillResult { refill_id, outcome } => {
                if self.auto_refill.in_flight.as_deref() != Some(refill_id.as_str()) {
                    return Err(LedgerError::Duplicate(refill_id));
                }
                match outcome {
                    RefillOutcome::Charged {
                        purchase_id,
                        credits,
                        price_cents,
                    } => {
                        // Validate the credit before touching the in-flight marker, so a
                        // refused answer leaves the refill waiting for a good one.
                        if !credits.is_positive() {
                            return Err(LedgerError::NonPositiveAmount);
                        }
                        self.ledger_balance().checked_add(credits)?;
                        // A refill counts in the month it was charged, not the month it
                        // was decided: one decided on Jan 31 and charged on Feb 1 is a
                        // February refill.
                        self.auto_refill
                            .roll_month(local_month_key(self.timezone, now));
                        self.auto_refill.settle(&refill_id, true, None);
                        self.credit_purchase(
                            catalog,
                            step,
                            &purchase_id,
                            credits,
                            price_cents,
                            crate::EntryKind::Refill,
                            now,
                        )?;
                    }
                    RefillOutcome::Declined { reason } => {
                        self.auto_refill
                            .settle(&refill_id, false, Some(reason.clone()));
                        self.notice(step, now, NoticeKind::RefillFailed { reason });
                    }
                }
                Ok(Reply::RefillRecorded)
            }
            Command::ChangePlan { plan } => {
                let previous = self.plan.clone();
                let reply = self.change_plan(catalog, &plan, now, step)?;
                // Staff set it: renewals are comped, nothing is overdue any more.
                self.plan_billing = PlanBilling::default();
                if self.plan != previous {
                    let plan = self.plan.clone();
                    self.plan_changed(step, now, plan, previous, "staff");
                }
                Ok(reply)
            }
            Command::UpgradePlan {
                plan,
                purchase_id,
                credits,
                price_cents,
            } => self.upgrade_paid(
                catalog,
                &plan,
                &purchase_id,
                credits,
                price_cents,
                now,
                step,
            ),
            Command::SchedulePlan { plan } => {
                let new = catalog.plan(&plan)?;
                if new.id == self.plan {
                    self.pending_plan = None;
                    if let Some(due) = self.plan_billing.due.as_mut() {
                        // "Pay now": ask for the overdue charge at once.
                        if !due.in_flight {
                            due.retry_at = Some(now);
                        }
                    }
                    self.advance_to(catalog, now, step)?;
                    return Ok(Reply::PlanChanged {
                        plan: new.id.clone(),
                        effective_at: now,
                    });
                }
                if self.plan_billing.status == PlanStatus::PastDue {
                    return Err(LedgerError::PlanPastDue(self.plan.clone()));
                }
                self.pending_plan = Some(new.id.clone());
                Ok(Reply::PlanChanged {
                    plan: new.id.clone(),
                    effective_at: self.period_end,
                })
            }
            Command::PlanPayment {
                reference,
                purchase_id,
                outcome,
            } => self.plan_payment(catalog, &reference, &purchase_id, outcome, now, step),
            Command::Refund {
                id,
                purchase_id,
                refunded_cents,
            } => {
                let key = format!("refund:{id}");
                self.check_new(&key)?;
                let removed = match self.lots.iter().position(|l| l.id == purchase_id) {
                    Some(i) => {
                        let left = self.lots[i].remaining;
                        if left.is_positive() {
                            self.post(
                                step,
                                now,
                                crate::EntryKind::Refund,
                                i,
                                left.checked_neg()?,
                                &purchase_id,
                            )?;
                        }
                        self.lots.retain(|l| l.remaining.is_positive());
                        left
                    }
                    // Spent to nothing (or never credited): there is nothing left to take.
                    None => Credits::ZERO,
                };
                self.notice(
                    step,
                    now,
                    NoticeKind::Refund {
                        purchase_id,
                        refunded_cents,
                        credits_removed: removed,
                    },
                );
                self.seen.insert(key);
                Ok(Reply::Refunded {
                    credits_removed: removed,
                })
            }
            Command::SetTimezone { timezone } => {
                // Applies from the next daily reset: today's allowance keeps its expiry.
                self.timezone = timezone;
                Ok(Reply::TimezoneSet)
            }
            Command::ConfigureAutoRefill { settings } => {
                catalog.pack(&settings.pack)?;
                self.auto_refill.configure(settings);
                Ok(Reply::AutoRefillConfigured)
            }
            Command::ResolveReview {
                review_id,
                grant_amount,
                note,
            } => {
                let key = format!("review:{review_id}");
                self.check_new(&key)?;
                if grant_amount.is_negative() {
                    return Err(LedgerError::NonPositiveAmount);
                }
                if grant_amount.is_positive() {
                    let grant_id = format!("review:{review_id}");
                    self.grant_bonus(
                        step,
                        grant_id,
                        grant_amount,
                        GrantReason::Compensation,
                        None,
                        note,
                        now,
                    )?;
                }
                self.notice(
                    step,
                    now,
                    NoticeKind::ReviewResolved {
                        review_id,
                        grant_amount,
                    },
                );
                self.seen.insert(key);
                Ok(Reply::ReviewResolved)
            }
        }
    }

    fn check_new(&self, key: &str) -> Result<(), LedgerError> {
        if self.seen.contains(key) {
            Err(LedgerError::Duplicate(key.to_owned()))
        } else {
            Ok(())
        }
    }

    fn active_hold(&self, id: &str) -> Result<&Hold, LedgerError> {
        let hold = self
            .holds
            .get(id)
            .ok_or_else(|| LedgerError::HoldNotFound(id.to_owned()))?;
        if hold.status != HoldStatus::Active {
            return Err(LedgerError::HoldNotActive {
                id: id.to_owned(),
                status: hold.status,
            });
        }
        Ok(hold)
    }

    /// After a command: exhausted when spending reached zero; auto-refill asked after
    /// spending, re-armed when credits arrive.
    fn after_change(&mut self, before: Credits, now: DateTime<Utc>, step: &mut Step) {
        let after = self.available();
        if after < before {
            if after == Credits::ZERO {
                self.notice(step, now, NoticeKind::Exhausted {});
            }
            let month = local_month_key(self.timezone, now);
            let refill_id = format!("{}:refill:{}", self.id, self.seq + 1);
            if let Some(pack) = self.auto_refill.decide(after, month, || refill_id.clone()) {
                self.seq += 1; // reserve the number the refill id was made from
                step.effects.push(Effect::BuyRefill { refill_id, pack });
            }
        } else if after > before {
            self.auto_refill.observe_credit(after);
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn notice(&mut self, step: &mut Step, at: DateTime<Utc>, kind: NoticeKind) {
        let seq = self.next_seq();
        step.notices.push(Notice { seq, at, kind });
    }

    fn post(
        &mut self,
        step: &mut Step,
        at: DateTime<Utc>,
        kind: crate::EntryKind,
        lot_index: usize,
        amount: Credits,
        reference: &str,
    ) -> Result<(), LedgerError> {
        let lot = &mut self.lots[lot_index];
        lot.remaining = lot.remaining.checked_add(amount)?;
        let (bucket, grant_id) = (lot.bucket, lot.id.clone());
        let seq = self.next_seq();
        step.entries.push(Entry {
            seq,
            at,
            kind,
            bucket,
            amount,
            balance_after: self.ledger_balance(),
            grant_id,
            reference: reference.to_owned(),
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn add_lot(
        &mut self,
        step: &mut Step,
        id: String,
        bucket: Bucket,
        amount: Credits,
        at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        kind: crate::EntryKind,
        reference: &str,
    ) -> Result<(), LedgerError> {
        if !amount.is_positive() {
            return Err(LedgerError::NonPositiveAmount);
        }
        // Refuse before mutating if the balance could not hold it.
        self.ledger_balance().checked_add(amount)?;
        self.lots.push(Lot {
            id,
            bucket,
            amount,
            remaining: Credits::ZERO,
            effective_at: at,
            expires_at,
            granted_seq: self.seq + 1,
        });
        let index = self.lots.len() - 1;
        self.post(step, at, kind, index, amount, reference)?;
        let mut lot = self.lots[index].clone();
        lot.remaining = amount;
        step.new_lots.push(lot);
        Ok(())
    }

    fn grant_scheduled(
        &mut self,
        step: &mut Step,
        bucket: Bucket,
        amount: Credits,
        id: String,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        if amount.is_positive() {
            self.add_lot(
                step,
                id,
                bucket,
                amount,
                at,
                Some(expires_at),
                crate::EntryKind::Grant,
                bucket.as_str(),
            )?;
        }
        self.notice(
            step,
            at,
            NoticeKind::Reset {
                bucket,
                amount,
                next_reset: expires_at,
            },
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn grant_bonus(
        &mut self,
        step: &mut Step,
        id: String,
        amount: Credits,
        reason: GrantReason,
        expires_at: Option<DateTime<Utc>>,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.add_lot(
            step,
            id,
            Bucket::Bonus,
            amount,
            now,
            expires_at,
            crate::EntryKind::Grant,
            reason.as_str(),
        )?;
        self.notice(
            step,
            now,
            NoticeKind::Grant {
                amount,
                reason,
                note,
            },
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn credit_purchase(
        &mut self,
        catalog: &Catalog,
        step: &mut Step,
        id: &str,
        credits: Credits,
        price_cents: Cents,
        kind: crate::EntryKind,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        // Bought credits never expire, in whichever bucket the catalog puts them.
        self.add_lot(
            step,
            id.to_owned(),
            catalog.purchase_bucket,
            credits,
            now,
            None,
            kind,
            id,
        )?;
        let purchase_id = id.to_owned();
        let notice = if kind == crate::EntryKind::Refill {
            NoticeKind::RefillCharged {
                purchase_id,
                credits,
                price_cents,
            }
        } else {
            NoticeKind::Purchase {
                purchase_id,
                credits,
                price_cents,
            }
        };
        self.notice(step, now, notice);
        Ok(())
    }

    /// Takes `amount` from the lots in burn order, one entry per lot touched.
    fn burn(
        &mut self,
        step: &mut Step,
        amount: Credits,
        kind: crate::EntryKind,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<ChargeResult, LedgerError> {
        let (slices, short) = BurnOrder::plan(&self.lots, amount)?;
        debug_assert_eq!(short, Credits::ZERO);
        let mut breakdown = Vec::with_capacity(slices.len());
        for s in &slices {
            self.post(
                step,
                now,
                kind,
                s.lot_index,
                s.amount.checked_neg()?,
                reference,
            )?;
            let lot = &self.lots[s.lot_index];
            breakdown.push(ChargePart {
                bucket: lot.bucket,
                grant_id: lot.id.clone(),
                amount: s.amount,
            });
        }
        self.lots.retain(|l| l.remaining.is_positive());
        Ok(ChargeResult {
            charged: amount,
            breakdown,
            uncollected: Credits::ZERO,
            available: self.available(),
        })
    }

    /// What changing to `plan` would do at `now`: the price and credits of an upgrade, or
    /// when a downgrade takes effect. The server charges exactly the quoted price and the
    /// ledger grants exactly the quoted credits (`UpgradePlan`).
    pub fn plan_quote(
        &self,
        catalog: &Catalog,
        plan: &str,
        now: DateTime<Utc>,
    ) -> Result<PlanQuote, LedgerError> {
        let new = catalog.plan(plan)?;
        let old = catalog.plan(&self.plan)?;
        if new.id == old.id {
            return Ok(PlanQuote::Same);
        }
        if !new.is_upgrade_from(old) {
            return Ok(PlanQuote::Downgrade {
                effective_at: self.period_end,
            });
        }
        let now = now.max(self.clock);
        let (credits, price_cents) = prorate(
            old,
            new,
            (self.period_start, self.period_end),
            now,
            self.billing.cadence,
        )?;
        Ok(PlanQuote::Upgrade {
            price_cents,
            credits,
            period_end: self.period_end,
        })
    }

    fn plan_changed(
        &mut self,
        step: &mut Step,
        now: DateTime<Utc>,
        plan: String,
        previous: String,
        reason: &str,
    ) {
        self.notice(
            step,
            now,
            NoticeKind::PlanChanged {
                plan,
                previous,
                reason: reason.to_owned(),
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn upgrade_paid(
        &mut self,
        catalog: &Catalog,
        plan: &str,
        purchase_id: &str,
        credits: Credits,
        price_cents: Cents,
        now: DateTime<Utc>,
        step: &mut Step,
    ) -> Result<Reply, LedgerError> {
        let key = format!("upgrade:{purchase_id}");
        self.check_new(&key)?;
        let new = catalog.plan(plan)?;
        if credits.is_negative() {
            return Err(LedgerError::NonPositiveAmount);
        }
        let previous = self.plan.clone();
        self.plan = new.id.clone();
        self.pending_plan = None;
        self.plan_billing.by_card = true;
        if price_cents.0 > 0 {
            self.notice(
                step,
                now,
                NoticeKind::PlanCharged {
                    purchase_id: purchase_id.to_owned(),
                    plan: new.id.clone(),
                    price_cents,
                },
            );
        }
        if credits.is_positive() && self.period_end > now {
            let end = self.period_end;
            self.add_lot(
                step,
                format!("{purchase_id}:upgrade"),
                Bucket::Subscription,
                credits,
                now,
                Some(end),
                crate::EntryKind::Grant,
                "upgrade",
            )?;
        }
        self.plan_changed(step, now, new.id.clone(), previous, "upgrade");
        self.seen.insert(key);
        Ok(Reply::PlanChanged {
            plan: new.id.clone(),
            effective_at: now,
        })
    }

    fn plan_payment(
        &mut self,
        catalog: &Catalog,
        reference: &str,
        purchase_id: &str,
        outcome: PaymentOutcome,
        now: DateTime<Utc>,
        step: &mut Step,
    ) -> Result<Reply, LedgerError> {
        let Some(due) = self.plan_billing.due.clone() else {
            return Err(LedgerError::Duplicate(reference.to_owned()));
        };
        if due.reference != reference || !due.in_flight {
            return Err(LedgerError::Duplicate(reference.to_owned()));
        }
        match outcome {
            PaymentOutcome::Paid => {
                self.plan_billing.due = None;
                self.plan_billing.status = PlanStatus::Active;
                self.notice(
                    step,
                    now,
                    NoticeKind::PlanCharged {
                        purchase_id: purchase_id.to_owned(),
                        plan: due.plan.clone(),
                        price_cents: due.price_cents,
                    },
                );
                let plan = catalog.plan(&due.plan)?;
                // The credits of the period paid for, from the payment to the period end
                // (none if the period is already over: the next renewal charges again).
                if self.period_end == due.period_end && due.period_end > now {
                    let id = format!("{}:subscription:{}", self.id, due.period_start.timestamp());
                    self.grant_scheduled(
                        step,
                        Bucket::Subscription,
                        plan.subscription,
                        id,
                        now,
                        due.period_end,
                    )?;
                }
            }
            PaymentOutcome::Declined { reason } => {
                let failures = due.failures + 1;
                self.plan_billing.status = PlanStatus::PastDue;
                let retry_at = if failures < MAX_PLAN_ATTEMPTS {
                    retry_delay(failures)
                        .and_then(|d| due.period_start.checked_add_signed(d))
                        .map(|t| t.max(now))
                } else {
                    None
                };
                self.notice(
                    step,
                    now,
                    NoticeKind::PlanPaymentFailed {
                        purchase_id: purchase_id.to_owned(),
                        plan: due.plan.clone(),
                        reason,
                        retry_at,
                    },
                );
                match retry_at {
                    Some(at) => {
                        self.plan_billing.due = Some(PlanDue {
                            failures,
                            in_flight: false,
                            retry_at: Some(at),
                            ..due
                        });
                    }
                    None => self.fall_back_to_free(catalog, now, step)?,
                }
            }
        }
        Ok(Reply::PlanPaymentRecorded)
    }

    /// A paid plan that could not be collected: the account moves to the free plan now,
    /// with a new free period (and its allowance) starting at once.
    fn fall_back_to_free(
        &mut self,
        catalog: &Catalog,
        now: DateTime<Utc>,
        step: &mut Step,
    ) -> Result<(), LedgerError> {
        self.plan_billing = PlanBilling::default();
        let Some(free) = fallback_plan(catalog) else {
            return Ok(());
        };
        let previous = std::mem::replace(&mut self.plan, free.id.clone());
        self.pending_plan = None;
        self.billing = BillingCycle::new(now, free.cadence);
        let (start, end) = self.billing.period_at(now);
        self.period_start = start;
        self.period_end = end;
        let (amount, id) = (
            free.subscription,
            format!("{}:subscription:{}", self.id, start.timestamp()),
        );
        self.grant_scheduled(step, Bucket::Subscription, amount, id, now, end)?;
        self.plan_changed(step, now, free.id.clone(), previous, "payment_failed");
        Ok(())
    }

    fn change_plan(
        &mut self,
        catalog: &Catalog,
        plan: &str,
        now: DateTime<Utc>,
        step: &mut Step,
    ) -> Result<Reply, LedgerError> {
        let new = catalog.plan(plan)?;
        let old = catalog.plan(&self.plan)?;
        if new.id == old.id {
            self.pending_plan = None;
            return Ok(Reply::PlanChanged {
                plan: new.id.clone(),
                effective_at: now,
            });
        }
        if !new.is_upgrade_from(old) {
            self.pending_plan = Some(new.id.clone());
            return Ok(Reply::PlanChanged {
                plan: new.id.clone(),
                effective_at: self.period_end,
            });
        }
        // Upgrade: at once, with the prorated difference for the rest of this period,
        // floored to the micro-credit. The period keeps its end; the new cadence (if any)
        // starts there.
        let left = (self.period_end - now).num_seconds().max(0) as i128;
        let length = (self.period_end - self.period_start).num_seconds().max(1) as i128;
        let same_cadence = new.cadence == old.cadence && old.cadence == self.billing.cadence;
        let prorated = if same_cadence {
            let diff = new.subscription.micros() as i128 - old.subscription.micros() as i128;
            diff.max(0) * left / length
        } else {
            // Allowances per period cannot be compared across cadences (pro_annual's 6,000
            // a year against team's 2,500 a month): compare them per year, and grant the
            // difference for the time left at that yearly rate (365-day year).
            const YEAR_SECONDS: i128 = 365 * 86_400;
            let diff = new.yearly_allowance() - old.yearly_allowance();
            diff.max(0) * left / YEAR_SECONDS
        };
        let prorated = i64::try_from(prorated).map_err(|_| LedgerError::Overflow)?;
        self.plan = new.id.clone();
        self.pending_plan = None;
        if prorated > 0 {
            let id = format!("{}:upgrade:{}", self.id, self.seq + 1);
            let end = self.period_end;
            self.add_lot(
                step,
                id,
                Bucket::Subscription,
                Credits::from_micros(prorated),
                now,
                Some(end),
                crate::EntryKind::Grant,
                "upgrade",
            )?;
        }
        Ok(Reply::PlanChanged {
            plan: new.id.clone(),
            effective_at: now,
        })
    }

    /// Performs everything due up to and including `now`, instant by instant.
    fn advance_to(
        &mut self,
        catalog: &Catalog,
        now: DateTime<Utc>,
        step: &mut Step,
    ) -> Result<(), LedgerError> {
        loop {
            let due = self.next_due();
            if due > now {
                break;
            }
            let before = self.available();
            self.expire_lots(step, due)?;
            self.lapse_holds(step, due);
            if self.plan_billing.next_retry().is_some_and(|t| t <= due) {
                self.retry_plan_charge(step);
            }
            if self.period_end <= due {
                self.renew_period(catalog, step, due)?;
            }
            if self.next_daily_reset <= due {
                self.renew_day(catalog, step, due)?;
            }
            if self.available() > before {
                self.auto_refill.observe_credit(self.available());
            } else if self.available() == Credits::ZERO && before > Credits::ZERO {
                self.notice(step, due, NoticeKind::Exhausted {});
            }
        }
        self.clock = now;
        Ok(())
    }

    /// Asks again for the overdue plan charge (a retry after a decline).
    fn retry_plan_charge(&mut self, step: &mut Step) {
        if let Some(due) = self.plan_billing.due.as_mut() {
            due.in_flight = true;
            due.retry_at = None;
            step.effects.push(Effect::ChargePlan {
                reference: due.reference.clone(),
                plan: due.plan.clone(),
                price_cents: due.price_cents,
            });
        }
    }

    fn expire_lots(&mut self, step: &mut Step, at: DateTime<Utc>) -> Result<(), LedgerError> {
        for i in 0..self.lots.len() {
            if self.lots[i].is_expired_at(at) && self.lots[i].remaining.is_positive() {
                let amount = self.lots[i].remaining.checked_neg()?;
                let reference = self.lots[i].id.clone();
                self.post(step, at, crate::EntryKind::Expire, i, amount, &reference)?;
            }
        }
        self.lots.retain(|l| l.remaining.is_positive());
        Ok(())
    }

    fn lapse_holds(&mut self, step: &mut Step, at: DateTime<Utc>) {
        let lapsed: Vec<String> = self
            .holds
            .values()
            .filter(|h| h.status == HoldStatus::Active && h.expires_at <= at)
            .map(|h| h.id.clone())
            .collect();
        for id in lapsed {
            if let Some(mut hold) = self.holds.remove(&id) {
                hold.status = HoldStatus::Lapsed;
                step.holds.push(hold);
            }
        }
    }

    fn renew_period(
        &mut self,
        catalog: &Catalog,
        step: &mut Step,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        if let Some(pending) = self.pending_plan.take() {
            let previous = std::mem::replace(&mut self.plan, pending);
            if previous != self.plan {
                let plan = self.plan.clone();
                self.plan_changed(step, self.period_end, plan, previous, "downgrade");
            }
        }
        let plan = catalog.plan(&self.plan)?;
        if plan.cadence != self.billing.cadence {
            self.billing = BillingCycle::new(self.period_end, plan.cadence);
        }
        let (start, end) = self.billing.period_at(self.period_end);
        self.period_start = start;
        self.period_end = end;
        if self.plan_billing.by_card && plan.price_cents.0 > 0 {
            // Paid for first: the credits follow the payment (`plan_payment`). A charge
            // still unanswered from an earlier period is not doubled.
            if self.plan_billing.due.is_none() {
                let reference = format!("{}:plan:{}", self.id, start.timestamp());
                self.plan_billing.due = Some(PlanDue {
                    reference: reference.clone(),
                    plan: plan.id.clone(),
                    price_cents: plan.price_cents,
                    period_start: start,
                    period_end: end,
                    failures: 0,
                    in_flight: true,
                    retry_at: None,
                });
                step.effects.push(Effect::ChargePlan {
                    reference,
                    plan: plan.id.clone(),
                    price_cents: plan.price_cents,
                });
            }
            let _ = at;
            return Ok(());
        }
        let id = format!("{}:subscription:{}", self.id, start.timestamp());
        self.grant_scheduled(
            step,
            Bucket::Subscription,
            plan.subscription,
            id,
            start,
            end,
        )?;
        let _ = at;
        Ok(())
    }

    fn renew_day(
        &mut self,
        catalog: &Catalog,
        step: &mut Step,
        _at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let start = self.next_daily_reset;
        let (_, end) = daily_window(self.timezone, start);
        self.next_daily_reset = end;
        let amount = catalog.plan(&self.plan)?.daily;
        let id = format!("{}:daily:{}", self.id, start.timestamp());
        self.grant_scheduled(step, Bucket::Daily, amount, id, start, end)
    }
}
