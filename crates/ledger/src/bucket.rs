//! The four buckets a lot can belong to, in burn order.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a lot came from. The declaration order *is* the burn order: credits that expire
/// soonest by nature (daily) go first, credits the user paid for (purchased) go last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Daily,
    Subscription,
    Bonus,
    Purchased,
}

impl Bucket {
    pub const ALL: [Bucket; 4] = [
        Bucket::Daily,
        Bucket::Subscription,
        Bucket::Bonus,
        Bucket::Purchased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Daily => "daily",
            Bucket::Subscription => "subscription",
            Bucket::Bonus => "bonus",
            Bucket::Purchased => "purchased",
        }
    }

    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
