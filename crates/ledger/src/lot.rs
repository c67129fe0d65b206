//! Lots (grants): every credit that enters an account arrives as a lot and leaves it
//! through ledger entries that reference the lot.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Bucket, Credits};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The grant id: client-chosen for admin grants, derived for scheduled grants.
    pub id: String,
    pub bucket: Bucket,
    pub amount: Credits,
    pub remaining: Credits,
    pub effective_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The account sequence number of the grant entry; breaks ties between lots granted at
    /// the same instant so the burn order is total.
    pub granted_seq: u64,
}

impl Lot {
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}
