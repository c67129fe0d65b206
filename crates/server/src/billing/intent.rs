//! What a payment intent is: its source, its status, and the details each source needs,
//! over the `purchases` rows of the store. Also where the ledger's requests for money
//! (effects) become intents, inside the transaction that decided them.

use chrono::{DateTime, Utc};
use creditbar_ledger::{Catalog, Effect};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::store::{self, ts, IntentRow};

pub const PENDING: &str = "pending";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const REFUNDED: &str = "refunded";

/// Where the money movement came from (the `source` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Manual,
    AutoRefill,
    Plan,
    Refund,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Manual => "manual",
            Source::AutoRefill => "auto_refill",
            Source::Plan => "plan",
            Source::Refund => "refund",
        }
    }

    pub fn parse(s: &str) -> Result<Source, ApiError> {
        Ok(match s {
            "manual" => Source::Manual,
            "auto_refill" => Source::AutoRefill,
            "plan" => Source::Plan,
            "refund" => Source::Refund,
            other => {
                return Err(ApiError::Internal(format!(
                    "unknown intent source `{other}`"
                )))
            }
        })
    }
}

/// What each source needs to finish its intent, kept as JSON on the row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// Auto-refill: the ledger's name for the refill in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill_ref: Option<String>,
    /// Plan: the plan charged for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Plan renewal: the ledger's name for the period paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_reference: Option<String>,
    /// Plan: an upgrade chosen by the user (its credits are the quoted `credits`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upgrade: bool,
    /// Refund: the purchase whose money goes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why the processor refused (failed intents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Refund: the credits it took back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_removed: Option<i64>,
    /// Manual purchase: the available balance right after its credits arrived, so a replay
    /// answers with the original body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_after: Option<i64>,
}

impl Detail {
    pub fn of(row: &IntentRow) -> Result<Detail, ApiError> {
        serde_json::from_str(&row.detail)
            .map_err(|e| ApiError::Internal(format!("intent {} detail: {e}", row.id)))
    }

    pub fn to_json(&self) -> Result<String, ApiError> {
        serde_json::to_string(self).map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// A new intent id, which is also the processor's idempotency key. Always from the OS's
/// randomness, even when `CREDITBAR_SEED` makes other ids reproducible: a key must never
/// come round again, not after a restart nor after a restore from an older backup.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let tail: String = (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}

/// A pending intent's row, ready to insert.
#[allow(clippy::too_many_arguments)]
pub fn pending(
    account: &str,
    id: String,
    source: Source,
    pack: Option<String>,
    credits: i64,
    price_cents: i64,
    card: Option<crate::secret::TokenHash>,
    detail: &Detail,
    now: DateTime<Utc>,
) -> Result<IntentRow, ApiError> {
    Ok(IntentRow {
        n: 0,
        account_id: account.to_owned(),
        id,
        kind: if source == Source::Refund {
            "refund".into()
        } else {
            "charge".into()
        },
        source: source.as_str().into(),
        pack,
        credits,
        price_cents,
        status: PENDING.into(),
        created_at: ts(now),
        completed_at: None,
        idem_key: None,
        body_hash: None,
        card,
        detail: detail.to_json()?,
    })
}

/// Records the payment intent for a request for money the ledger made while applying a
/// command; returns its id. The card is the one set for that purpose now; with none, the
/// intent fails when driven, without asking any processor.
pub fn record_effect(
    tx: crate::store::Db<'_>,
    catalog: &Catalog,
    account: &str,
    effect: Effect,
    now: DateTime<Utc>,
) -> Result<String, ApiError> {
    let row = match effect {
        Effect::BuyRefill { refill_id, pack } => {
            let (credits, cents) = catalog
                .pack(&pack)
                .map(|p| (p.credits.micros(), p.price_cents.0))
                .unwrap_or((0, 0));
            let card = store::auto_refill_method(tx, account)?;
            let detail = Detail {
                refill_ref: Some(refill_id),
                ..Detail::default()
            };
            let id = new_id("pur");
            pending(
                account,
                id,
                Source::AutoRefill,
                Some(pack),
                credits,
                cents,
                card,
                &detail,
                now,
            )?
        }
        Effect::ChargePlan {
            reference,
            plan,
            price_cents,
        } => {
            let credits = catalog
                .plan(&plan)
                .map(|p| p.subscription.micros())
                .unwrap_or(0);
            let card = store::plan_method(tx, account)?;
            let detail = Detail {
                plan: Some(plan),
                plan_reference: Some(reference),
                ..Detail::default()
            };
            pending(
                account,
                new_id("pur"),
                Source::Plan,
                None,
                credits,
                price_cents.0,
                card,
                &detail,
                now,
            )?
        }
    };
    store::insert_intent(tx, &row)?;
    Ok(row.id)
}
