//! Reconciliation: what the processor says it took and returned, against what the ledger
//! recorded and credited. Used by `GET /v1/admin/reconciliation` and `--check`.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::billing::intent::{self, Source};
use crate::gateway::GatewayRecord;
use crate::store::IntentRow;

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct GatewaySide {
    /// Cents the processor charged successfully.
    pub succeeded_cents: i64,
    /// Cents the processor returned.
    pub refunded_cents: i64,
    /// Successful charges.
    pub charges: i64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct LedgerSide {
    /// Cents of the purchases the ledger recorded as paid (refunded ones included).
    pub credited_cents: i64,
    pub refunded_cents: i64,
    /// Paid purchases (refunded ones included).
    pub purchases: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingIntent {
    pub id: String,
    pub source: String,
    pub price_cents: i64,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reconciliation {
    pub gateway: GatewaySide,
    pub ledger: LedgerSide,
    pub pending: Vec<PendingIntent>,
    /// One sentence per disagreement; empty when the two sides agree.
    pub mismatches: Vec<String>,
}

/// Compares one account's intents, the ledger entries that moved bought credits
/// (`(type, ref, amount)` of `purchase`, `refill`, `refund` entries), and the processor's
/// records. A pending intent is not a mismatch: it is listed, and will be finished.
///
/// The processor is read twice, `before` and `after` the ledger, so a live system compares
/// cleanly: an intent is recorded before its charge and completed after it, so every
/// charge in `before` has its intent in the ledger's snapshot, and every intent completed
/// in the snapshot has its charge in `after`.
pub fn compare(
    intents: &[IntentRow],
    entries: &[(String, String, i64)],
    before: &[GatewayRecord],
    after: &[GatewayRecord],
) -> Reconciliation {
    let gateway = after;
    let mut out = Reconciliation {
        gateway: GatewaySide::default(),
        ledger: LedgerSide::default(),
        pending: Vec::new(),
        mismatches: Vec::new(),
    };
    let by_key: HashMap<&str, &GatewayRecord> =
        gateway.iter().map(|g| (g.key.as_str(), g)).collect();
    let by_id: HashMap<&str, &IntentRow> = intents.iter().map(|i| (i.id.as_str(), i)).collect();
    for g in gateway.iter().filter(|g| g.succeeded) {
        if g.refund {
            out.gateway.refunded_cents += g.cents;
        } else {
            out.gateway.succeeded_cents += g.cents;
            out.gateway.charges += 1;
        }
    }
    for g in before.iter().filter(|g| g.succeeded) {
        match by_id.get(g.key.as_str()) {
            None => out.mismatches.push(format!(
                "{}: the processor took {} cents under this key, and the ledger has no such payment",
                g.key, g.cents
            )),
            Some(i) if i.status == intent::FAILED => out.mismatches.push(format!(
                "{}: the processor says it succeeded ({} cents); the ledger says failed",
                g.key, g.cents
            )),
            Some(i) if i.price_cents != g.cents => out.mismatches.push(format!(
                "{}: the processor moved {} cents; the ledger recorded {}",
                g.key, g.cents, i.price_cents
            )),
            Some(_) => {}
        }
    }
    for i in intents {
        if i.status == intent::PENDING {
            out.pending.push(PendingIntent {
                id: i.id.clone(),
                source: i.source.clone(),
                price_cents: i.price_cents,
                created_at: i.created_at.clone(),
            });
            continue;
        }
        let done = i.status == intent::SUCCEEDED || i.status == intent::REFUNDED;
        if !done {
            continue;
        }
        let refund = i.source == Source::Refund.as_str();
        if refund {
            out.ledger.refunded_cents += i.price_cents;
        } else {
            out.ledger.credited_cents += i.price_cents;
            out.ledger.purchases += 1;
        }
        if i.price_cents > 0 && !by_key.get(i.id.as_str()).is_some_and(|g| g.succeeded) {
            out.mismatches.push(format!(
                "{}: the ledger records a paid {} of {} cents the processor never made",
                i.id,
                if refund { "refund" } else { "charge" },
                i.price_cents
            ));
        }
        // Credits of a bought pack are posted exactly once, under the purchase's id.
        if i.source == Source::Manual.as_str() || i.source == Source::AutoRefill.as_str() {
            let credited: Vec<i64> = entries
                .iter()
                .filter(|(t, r, _)| (t == "purchase" || t == "refill") && r == &i.id)
                .map(|(_, _, a)| *a)
                .collect();
            if credited.len() != 1 || credited[0] != i.credits {
                out.mismatches.push(format!(
                    "{}: paid once, credited {:?} (expected one entry of {})",
                    i.id, credited, i.credits
                ));
            }
        }
    }
    out
}

/// `--check`'s side of the reconciliation: every account of the ledger's file against the
/// test gateway's file beside it (absent: nothing was ever charged). Returns the problems,
/// one line each, and how many intents are still pending (finished at the next start).
pub fn check_files(
    ledger: crate::store::Db<'_>,
    before: Vec<crate::store::GatewayRow>,
    gateway: Option<&rusqlite::Connection>,
) -> crate::store::Result<(Vec<String>, usize)> {
    // `before` was read before the ledger's snapshot (the caller's read transaction), the
    // processor is read again after it (see `compare`).
    let accounts = crate::store::account_ids(ledger)?;
    let mut intents_by_account = Vec::new();
    for account in &accounts {
        intents_by_account.push((
            crate::store::intents_of(ledger, account)?,
            crate::store::money_entries(ledger, account)?,
        ));
    }
    let records = match gateway {
        Some(g) => crate::store::gateway_records(g, None)?,
        None => Vec::new(),
    };
    let mut problems = Vec::new();
    let mut pending = 0;
    let of = |rows: &[crate::store::GatewayRow], account: &str| -> Vec<GatewayRecord> {
        rows.iter()
            .filter(|r| r.customer == account)
            .cloned()
            .map(GatewayRecord::from)
            .collect()
    };
    for (account, (intents, entries)) in accounts.iter().zip(&intents_by_account) {
        let r = compare(
            intents,
            entries,
            &of(&before, account),
            &of(&records, account),
        );
        pending += r.pending.len();
        problems.extend(r.mismatches.into_iter().map(|m| format!("{account}: {m}")));
    }
    for r in before.iter().filter(|r| {
        r.outcome == "succeeded" && !r.customer.is_empty() && !accounts.contains(&r.customer)
    }) {
        problems.push(format!(
            "{}: the processor took {} cents for `{}`, an account the ledger does not have",
            r.key, r.cents, r.customer
        ));
    }
    Ok((problems, pending))
}
