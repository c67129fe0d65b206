//! Payment gateway: one trait, so a real processor can replace the test gateway of api.md.
//!
//! The test gateway follows the test cards of api.md with Stripe's semantics: a card that
//! declines every charge is already declined when it is saved; `4000000000000341` saves
//! fine and declines every later charge. Charges are idempotent by key and recorded in the
//! gateway's own database (`<db>-gateway`, outside the ledger's transactions), as a real
//! processor would remember them: a purchase retried after a crash is never charged twice.
//! Raw card numbers and CVCs are never stored or logged.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Datelike, Utc};
use rusqlite::Connection;

use crate::secret::TokenHash;
use crate::store;

/// A card as typed by the user. `Debug` is redacted: the number and CVC must not reach a log.
pub struct CardInput {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: i32,
    pub cvc: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    pub brand: String,
    pub last4: String,
    /// Opaque to the server: how the gateway treats later charges.
    pub behavior: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GatewayError {
    /// The card itself is malformed; names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Declined(String),
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
}

impl From<GatewayError> for crate::error::ApiError {
    fn from(e: GatewayError) -> Self {
        use crate::error::ApiError;
        match e {
            GatewayError::Invalid(message) => ApiError::InvalidRequest(message),
            GatewayError::Declined(reason) => ApiError::CardDeclined(reason),
            GatewayError::Unavailable(detail) => {
                tracing::warn!(%detail, "payment gateway unavailable");
                ApiError::Unavailable
            }
        }
    }
}

/// One charge asked of the processor. `key` is the payment intent's id: the processor's
/// idempotency key, so asking again (after a crash, a timeout) never charges twice.
#[derive(Debug)]
pub struct ChargeRequest<'a> {
    pub key: &'a str,
    /// The account, as a processor's customer: what the reconciliation asks about.
    pub customer: &'a str,
    pub card: &'a TokenHash,
    pub behavior: &'a str,
    pub cents: i64,
}

/// What the processor remembers having done under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRecord {
    pub key: String,
    pub refund: bool,
    pub cents: i64,
    pub succeeded: bool,
    /// For a refund: the charge it returned money from.
    pub refund_of: Option<String>,
}

pub trait PaymentGateway: Send + Sync + 'static {
    fn save_card(&self, card: &CardInput, now: DateTime<Utc>) -> Result<SavedCard, GatewayError>;
    /// Charges a saved card. Idempotent by `key`: a repeat returns the first outcome and
    /// charges nothing.
    fn charge(&self, charge: &ChargeRequest<'_>, now: DateTime<Utc>) -> Result<(), GatewayError>;
    /// Returns `cents` of the charge made under `charge_key`. Idempotent by `key`.
    fn refund(
        &self,
        key: &str,
        customer: &str,
        charge_key: &str,
        cents: i64,
        now: DateTime<Utc>,
    ) -> Result<(), GatewayError>;
    /// Everything done for `customer`, as the processor recorded it: the independent side
    /// of the reconciliation.
    fn records(&self, customer: &str) -> Result<Vec<GatewayRecord>, GatewayError>;
}

pub struct TestGateway {
    conn: Mutex<Connection>,
}

impl TestGateway {
    /// Opens (or creates) the gateway's database next to the ledger's `db`:
    /// `<db>-gateway`.
    pub fn open(db: &Path) -> rusqlite::Result<Self> {
        Self::open_file(&Self::path_for(db))
    }

    /// Opens (or creates) the gateway's database at `path` (a shared ledger has no file
    /// to put it beside; every server process of one ledger opens the same file).
    pub fn open_file(path: &Path) -> rusqlite::Result<Self> {
        let conn = store::open_gateway(path)?;
        Ok(TestGateway {
            conn: Mutex::new(conn),
        })
    }

    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push("-gateway");
        db.with_file_name(name)
    }

    /// Runs `op` as the processor would under the mode a test set in the gateway's own
    /// database: `normal`; `timeout` (the operation happens and is recorded, but its answer
    /// is lost, as when a network call times out after the processor acted); `down`
    /// (nothing happens). `delay_ms` delays every call.
    fn call<T>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T, GatewayError>,
    ) -> Result<T, GatewayError> {
        let unavailable = |e: rusqlite::Error| GatewayError::Unavailable(e.to_string());
        let (mode, delay) = {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            store::gateway_mode(&conn).map_err(unavailable)?
        };
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay.min(60_000)));
        }
        if mode == "down" {
            return Err(GatewayError::Unavailable("the processor is down".into()));
        }
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let result = op(&conn);
        if mode == "timeout" {
            return Err(GatewayError::Unavailable(
                "the processor did not answer in time".into(),
            ));
        }
        result
    }
}

pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn brand(number: &str) -> &'static str {
    let two: u32 = number.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let four: u32 = number.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
    match () {
        _ if number.starts_with('4') => "visa",
        _ if (51..=55).contains(&two) || (2221..=2720).contains(&four) => "mastercard",
        _ if two == 34 || two == 37 => "amex",
        _ if number.starts_with("6011") || two == 65 => "discover",
        _ => "unknown",
    }
}

/// Checks what any gateway would check before talking to a processor.
pub fn validate_card(card: &CardInput, now: DateTime<Utc>) -> Result<(), GatewayError> {
    let n = &card.number;
    if !(12..=19).contains(&n.len()) || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GatewayError::Invalid(
            "number: must be 12 to 19 digits".into(),
        ));
    }
    if !luhn_valid(n) {
        return Err(GatewayError::Invalid(
            "number: not a valid card number (Luhn check failed)".into(),
        ));
    }
    if !(1..=12).contains(&card.exp_month) {
        return Err(GatewayError::Invalid("exp_month: must be 1 to 12".into()));
    }
    if !(2000..=2100).contains(&card.exp_year) {
        return Err(GatewayError::Invalid(
            "exp_year: must be a four-digit year".into(),
        ));
    }
    let (y, m) = (now.year(), now.month());
    if card.exp_year < y || (card.exp_year == y && card.exp_month < m) {
        return Err(GatewayError::Invalid(
            "exp_year: the card has expired".into(),
        ));
    }
    if !(3..=4).contains(&card.cvc.len()) || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GatewayError::Invalid("cvc: must be 3 or 4 digits".into()));
    }
    Ok(())
}

impl PaymentGateway for TestGateway {
    fn save_card(&self, card: &CardInput, now: DateTime<Utc>) -> Result<SavedCard, GatewayError> {
        validate_card(card, now)?;
        let behavior = match card.number.as_str() {
            "4000000000000002" => return Err(GatewayError::Declined("card declined".into())),
            "4000000000009995" => return Err(GatewayError::Declined("insufficient funds".into())),
            "4000000000000341" => "decline_charges",
            _ => "succeed",
        };
        let last4 = card.number[card.number.len() - 4..].to_owned();
        Ok(SavedCard {
            brand: brand(&card.number).to_owned(),
            last4,
            behavior: behavior.to_owned(),
        })
    }

    fn charge(&self, c: &ChargeRequest<'_>, now: DateTime<Utc>) -> Result<(), GatewayError> {
        self.call(|conn| {
            let unavailable = |e: rusqlite::Error| GatewayError::Unavailable(e.to_string());
            let outcome = match store::gateway_get(conn, c.key).map_err(unavailable)? {
                Some(previous) => previous.outcome,
                None => {
                    let outcome = if c.behavior == "succeed" {
                        "succeeded"
                    } else {
                        "declined"
                    };
                    let row = store::GatewayRow {
                        key: c.key.to_owned(),
                        customer: c.customer.to_owned(),
                        kind: "charge".into(),
                        cents: c.cents,
                        outcome: outcome.into(),
                        refund_of: None,
                    };
                    store::gateway_put(conn, &row, Some(c.card), now).map_err(unavailable)?;
                    outcome.to_owned()
                }
            };
            if outcome == "succeeded" {
                Ok(())
            } else {
                Err(GatewayError::Declined("card declined".into()))
            }
        })
    }

    fn refund(
        &self,
        key: &str,
        customer: &str,
        charge_key: &str,
        cents: i64,
        now: DateTime<Utc>,
    ) -> Result<(), GatewayError> {
        self.call(|conn| {
            let unavailable = |e: rusqlite::Error| GatewayError::Unavailable(e.to_string());
            let outcome = match store::gateway_get(conn, key).map_err(unavailable)? {
                Some(previous) => previous.outcome,
                None => {
                    // Only money that was taken, and not already returned, can go back.
                    let charged = store::gateway_get(conn, charge_key)
                        .map_err(unavailable)?
                        .filter(|c| c.kind == "charge" && c.outcome == "succeeded");
                    let returned: i64 = store::gateway_records(conn, Some(customer))
                        .map_err(unavailable)?
                        .iter()
                        .filter(|r| {
                            r.refund_of.as_deref() == Some(charge_key) && r.outcome == "succeeded"
                        })
                        .map(|r| r.cents)
                        .sum();
                    let outcome = match charged {
                        Some(c) if cents > 0 && returned + cents <= c.cents => "succeeded",
                        _ => "declined",
                    };
                    let row = store::GatewayRow {
                        key: key.to_owned(),
                        customer: customer.to_owned(),
                        kind: "refund".into(),
                        cents,
                        outcome: outcome.into(),
                        refund_of: Some(charge_key.to_owned()),
                    };
                    store::gateway_put(conn, &row, None, now).map_err(unavailable)?;
                    outcome.to_owned()
                }
            };
            if outcome == "succeeded" {
                Ok(())
            } else {
                Err(GatewayError::Declined(
                    "nothing left to refund on that charge".into(),
                ))
            }
        })
    }

    fn records(&self, customer: &str) -> Result<Vec<GatewayRecord>, GatewayError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let rows = store::gateway_records(&conn, Some(customer))
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        Ok(rows.into_iter().map(GatewayRecord::from).collect())
    }
}

impl From<store::GatewayRow> for GatewayRecord {
    fn from(r: store::GatewayRow) -> Self {
        GatewayRecord {
            refund: r.kind == "refund",
            succeeded: r.outcome == "succeeded",
            key: r.key,
            cents: r.cents,
            refund_of: r.refund_of,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_typos() {
        assert!(luhn_valid("4242424242424242"));
        assert!(luhn_valid("4000000000000341"));
        assert!(!luhn_valid("4242424242424241"));
        assert_eq!(brand("4242424242424242"), "visa");
        assert_eq!(brand("5555555555554444"), "mastercard");
    }

    #[test]
    fn card_input_never_prints_its_number() {
        let c = CardInput {
            number: "4242424242424242".into(),
            exp_month: 1,
            exp_year: 2030,
            cvc: "123".into(),
        };
        assert!(!format!("{c:?}").contains("4242"));
    }
}
