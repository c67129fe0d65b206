//! Usage pricing: what one AI event costs.
//!
//! `charge = (input − cached_input) × input_rate + output × output_rate`. Cache hits,
//! summarisation and cancelled tasks cost nothing, yet are still priced (to zero) so the
//! caller records them with their project, thread and model.

use serde::{Deserialize, Serialize};

use crate::{Catalog, Credits, LedgerError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageKind {
    Chat,
    Agent,
    Edit,
    Summarization,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageStatus {
    Completed,
    Cancelled,
}

/// The priced part of a usage event; project and thread are the caller's to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub model: String,
    pub kind: UsageKind,
    pub status: UsageStatus,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

/// Prices one usage event. An unknown model is an error even when the event is free, so a
/// typo never slips into the usage history unpriced.
pub fn price(catalog: &Catalog, usage: &Usage) -> Result<Credits, LedgerError> {
    let model = catalog.model(&usage.model)?;
    if usage.cached_input_tokens > usage.input_tokens {
        return Err(LedgerError::InvalidUsage(
            "cached_input_tokens is larger than input_tokens",
        ));
    }
    if usage.status == UsageStatus::Cancelled || usage.kind == UsageKind::Summarization {
        return Ok(Credits::ZERO);
    }
    if let Some(per_request) = model.request_price {
        return Ok(per_request);
    }
    let missed = (usage.input_tokens - usage.cached_input_tokens) as i128;
    let cached = usage.cached_input_tokens as i128;
    let total = missed * model.input_rate as i128
        + cached * model.cached_input_rate as i128
        + usage.output_tokens as i128 * model.output_rate as i128;
    i64::try_from(total)
        .map(Credits::from_micros)
        .map_err(|_| LedgerError::Overflow)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn usage(model: &str, input: u64, cached: u64, output: u64) -> Usage {
        Usage {
            model: model.into(),
            kind: UsageKind::Chat,
            status: UsageStatus::Completed,
            input_tokens: input,
            cached_input_tokens: cached,
            output_tokens: output,
        }
    }

    #[test]
    fn cache_hits_are_free() {
        let c = Catalog::default();
        assert_eq!(
            price(&c, &usage("standard", 1000, 1000, 0)),
            Ok(Credits::ZERO)
        );
        assert_eq!(
            price(&c, &usage("standard", 1000, 400, 10)),
            Ok(Credits::from_micros(600 * 100 + 10 * 100))
        );
    }

    #[test]
    fn summarization_and_cancelled_are_free_but_still_priced() {
        let c = Catalog::default();
        let mut u = usage("premium", 5000, 0, 5000);
        u.kind = UsageKind::Summarization;
        assert_eq!(price(&c, &u), Ok(Credits::ZERO));
        let mut u = usage("premium", 5000, 0, 5000);
        u.status = UsageStatus::Cancelled;
        assert_eq!(price(&c, &u), Ok(Credits::ZERO));
        u.model = "nope".into();
        assert_eq!(price(&c, &u), Err(LedgerError::UnknownModel("nope".into())));
    }

    #[test]
    fn model_rates_apply_per_token() {
        let c = Catalog::default();
        assert_eq!(
            price(&c, &usage("lite", 10, 0, 10)),
            Ok(Credits::from_micros(1000))
        );
        assert_eq!(
            price(&c, &usage("premium", 10, 0, 10)),
            Ok(Credits::from_micros(6000))
        );
    }

    #[test]
    fn absurd_token_counts_overflow_into_an_error() {
        let c = Catalog::default();
        assert_eq!(
            price(&c, &usage("premium", u64::MAX, 0, u64::MAX)),
            Err(LedgerError::Overflow)
        );
        assert!(price(&c, &usage("lite", 1, 2, 0)).is_err());
    }
}
