//! Holds: a reservation of credits for a long task, like a card authorisation. A hold does
//! not move credits; it lowers what is available until it is settled, voided or lapses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Credits;

/// Default time to live of a hold, in seconds (api.md).
pub const DEFAULT_HOLD_TTL_SECONDS: i64 = 900;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Active,
    Settled,
    Voided,
    Lapsed,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Settled => "settled",
            HoldStatus::Voided => "voided",
            HoldStatus::Lapsed => "lapsed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub amount: Credits,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: HoldStatus,
}
