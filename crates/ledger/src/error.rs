//! What can go wrong when applying the credit rules.

use crate::{Cents, Credits, HoldStatus};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient credits: {needed} needed, {available} available")]
    InsufficientCredits { needed: Credits, available: Credits },
    #[error("amount out of range: the arithmetic would overflow")]
    Overflow,
    #[error("amount must be positive")]
    NonPositiveAmount,
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    #[error("unknown plan `{0}`")]
    UnknownPlan(String),
    #[error("unknown pack `{0}`")]
    UnknownPack(String),
    #[error("custom amount {cents} is outside {min}..={max}")]
    CustomAmountOutOfRange {
        cents: Cents,
        min: Cents,
        max: Cents,
    },
    #[error("this platform sells no custom amounts: choose a pack")]
    CustomAmountsNotSold,
    #[error("invalid usage: {0}")]
    InvalidUsage(&'static str),
    #[error("hold `{0}` not found")]
    HoldNotFound(String),
    #[error("hold `{id}` is {status:?}, not active")]
    HoldNotActive { id: String, status: HoldStatus },
    #[error("`{0}` was already applied")]
    Duplicate(String),
    #[error("expiry must be after the grant time")]
    ExpiryNotAfterGrant,
    #[error("time cannot go backwards")]
    TimeWentBackwards,
    #[error("model `{model}` is not in the `{plan}` plan; plans that include it: {}", plans.join(", "))]
    ModelNotInPlan {
        model: String,
        plan: String,
        plans: Vec<String>,
    },
    #[error("the `{0}` plan is past due: pay it (choose it again) before changing plans")]
    PlanPastDue(String),
}
