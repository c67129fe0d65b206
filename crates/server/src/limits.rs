//! Per-account limits of api.md ("Limits every deployment has"): what one account may
//! accumulate, so one account cannot grow the database or a staff queue without bound.
//! Checked inside the writer's transaction, so parallel requests cannot pass them together.

use crate::error::ApiError;
use crate::store;

/// Open usage reviews per account (a staff queue; resolving one frees its place).
pub const MAX_OPEN_REVIEWS: i64 = 1000;
/// Saved cards per account.
pub const MAX_SAVED_CARDS: i64 = 20;

/// 422 `limit_reached` when the account already has `MAX_OPEN_REVIEWS` open reviews.
pub fn check_open_reviews(tx: crate::store::Db<'_>, account: &str) -> Result<(), ApiError> {
    if store::count_open_reviews(tx, account)? >= MAX_OPEN_REVIEWS {
        return Err(ApiError::LimitReached(format!(
            "this account already has {MAX_OPEN_REVIEWS} open usage reviews; wait until some \
             are resolved"
        )));
    }
    Ok(())
}

/// 422 `limit_reached` when the account already has `MAX_SAVED_CARDS` saved cards.
pub fn check_saved_cards(tx: crate::store::Db<'_>, account: &str) -> Result<(), ApiError> {
    if store::count_payment_methods(tx, account)? >= MAX_SAVED_CARDS {
        return Err(ApiError::LimitReached(format!(
            "this account already has {MAX_SAVED_CARDS} saved cards, the most it may have"
        )));
    }
    Ok(())
}
