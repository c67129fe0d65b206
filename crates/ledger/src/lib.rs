//! creditbar's credit rules, with no I/O and no clock: amounts, lots, the burn order,
//! holds, usage pricing, reset schedules, plan changes and the auto-refill decision, all
//! driven by one account state machine ([`Account::apply`]).
//!
//! The server persists what a step produced; the client uses the schedules for countdowns.
//! Nothing here knows about HTTP, SQL or a UI.

mod account;
mod amount;
mod auto_refill;
mod bucket;
mod burn;
mod catalog;
mod catalog_file;
mod error;
mod hold;
mod lot;
mod plan_billing;
mod pricing;
pub mod schedule;

pub use account::{
    Account, Balance, BucketBalance, ChargePart, ChargeResult, Command, Effect, Entry, EntryKind,
    GrantReason, Notice, NoticeKind, PaymentOutcome, RefillOutcome, Reply, Step,
};
pub use amount::{Cents, Credits, MICROS_PER_CREDIT};
pub use auto_refill::{AutoRefill, AutoRefillSettings};
pub use bucket::Bucket;
pub use burn::{BurnOrder, BurnSlice};
pub use catalog::{Catalog, CustomPricing, Model, Pack, Plan, Unit};
pub use catalog_file::{CatalogError, DEFAULT_CATALOG_TOML};
pub use error::LedgerError;
pub use hold::{Hold, HoldStatus, DEFAULT_HOLD_TTL_SECONDS};
pub use lot::Lot;
pub use plan_billing::{
    fallback_plan, prorate, retry_delay, PlanBilling, PlanDue, PlanQuote, PlanStatus,
    MAX_PLAN_ATTEMPTS,
};
pub use pricing::{price, Usage, UsageKind, UsageStatus};
pub use schedule::{BillingCycle, Cadence};
