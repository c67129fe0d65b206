//! The burn order: which lots a charge consumes, and how much from each.
//!
//! daily → subscription → bonus → purchased; inside a bucket, earliest expiry first (a lot
//! without expiry last), then the oldest. Spending what expires soonest first is what keeps
//! a user from losing credits they could have used.

use std::cmp::Ordering;

use crate::{Credits, LedgerError, Lot};

/// One slice of a charge taken from one lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurnSlice {
    pub lot_index: usize,
    pub amount: Credits,
}

pub struct BurnOrder;

impl BurnOrder {
    /// Orders two lots: `Less` burns first.
    pub fn compare(a: &Lot, b: &Lot) -> Ordering {
        a.bucket
            .cmp(&b.bucket)
            .then_with(|| match (a.expires_at, b.expires_at) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| a.effective_at.cmp(&b.effective_at))
            .then_with(|| a.granted_seq.cmp(&b.granted_seq))
    }

    /// Plans taking up to `amount` from `lots`, in burn order. Returns the slices and what
    /// could not be covered (zero when the lots suffice). Lots with nothing left are skipped.
    pub fn plan(lots: &[Lot], amount: Credits) -> Result<(Vec<BurnSlice>, Credits), LedgerError> {
        let mut order: Vec<usize> = (0..lots.len())
            .filter(|&i| lots[i].remaining.is_positive())
            .collect();
        order.sort_by(|&a, &b| Self::compare(&lots[a], &lots[b]));
        let mut left = amount;
        let mut slices = Vec::new();
        for i in order {
            if !left.is_positive() {
                break;
            }
            let take = left.min(lots[i].remaining);
            slices.push(BurnSlice {
                lot_index: i,
                amount: take,
            });
            left = left.checked_sub(take)?;
        }
        Ok((slices, left))
    }
}
