//! The server's errors and their one mapping to HTTP: status, `code`, message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use creditbar_ledger::LedgerError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("missing or invalid token")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("insufficient credits: {needed} needed, {available} available")]
    InsufficientCredits {
        needed: creditbar_ledger::Credits,
        available: creditbar_ledger::Credits,
    },
    #[error("the card was declined: {0}")]
    CardDeclined(String),
    #[error("a saved payment method is required: add a card first")]
    PaymentMethodRequired,
    /// The plan does not include the model (the message names the plans that do).
    #[error("{0}")]
    ModelNotInPlan(String),
    #[error("this idempotency key was already used with a different request")]
    IdempotencyConflict,
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("too many requests: slow down and retry shortly")]
    RateLimited,
    /// Too many failed authentications from this address; `Retry-After` says how long to wait.
    #[error("too many failed authentications from this address: retry in {0} s")]
    AuthBlocked(u64),
    #[error("at most {0} open event streams per token: close one first")]
    TooManyStreams(usize),
    /// A per-account limit of api.md ("Limits every deployment has").
    #[error("{0}")]
    LimitReached(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("storage is unavailable; the request was not applied")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

/// `{"error": {"code", "message"}}`, the error shape of api.md.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::InvalidRequest(message.into())
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::InsufficientCredits { .. } => {
                (StatusCode::PAYMENT_REQUIRED, "insufficient_credits")
            }
            ApiError::CardDeclined(_) => (StatusCode::PAYMENT_REQUIRED, "card_declined"),
            ApiError::PaymentMethodRequired => {
                (StatusCode::PAYMENT_REQUIRED, "payment_method_required")
            }
            ApiError::ModelNotInPlan(_) => (StatusCode::FORBIDDEN, "model_not_in_plan"),
            ApiError::IdempotencyConflict => (StatusCode::CONFLICT, "idempotency_conflict"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::RateLimited | ApiError::AuthBlocked(_) | ApiError::TooManyStreams(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            }
            ApiError::LimitReached(_) => (StatusCode::UNPROCESSABLE_ENTITY, "limit_reached"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (_, code) = self.status_and_code();
        ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let retry_after = match &self {
            ApiError::AuthBlocked(secs) => Some(*secs),
            ApiError::RateLimited => Some(1),
            _ => None,
        };
        let mut resp = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::InsufficientCredits { needed, available } => {
                ApiError::InsufficientCredits { needed, available }
            }
            LedgerError::HoldNotFound(_) => ApiError::NotFound("hold"),
            LedgerError::HoldNotActive { id, status } => {
                ApiError::Conflict(format!("hold `{id}` is {}, not active", status.as_str()))
            }
            LedgerError::Duplicate(_) => ApiError::IdempotencyConflict,
            LedgerError::UnknownModel(m) => {
                ApiError::invalid(format!("model: unknown model `{m}`"))
            }
            LedgerError::UnknownPlan(p) => ApiError::invalid(format!("plan: unknown plan `{p}`")),
            LedgerError::UnknownPack(p) => ApiError::invalid(format!("pack: unknown pack `{p}`")),
            LedgerError::CustomAmountOutOfRange { cents, min, max } => ApiError::invalid(format!(
                "custom_cents: {} is outside the allowed {}..={} cents",
                cents.0, min.0, max.0
            )),
            LedgerError::InvalidUsage(why) => ApiError::invalid(why),
            e @ LedgerError::CustomAmountsNotSold => {
                ApiError::invalid(format!("custom_cents: {e}"))
            }
            LedgerError::Overflow => ApiError::invalid("amount: out of range"),
            LedgerError::NonPositiveAmount => ApiError::invalid("amount: must be positive"),
            LedgerError::ExpiryNotAfterGrant => {
                ApiError::invalid("expires_at: must be in the future")
            }
            LedgerError::TimeWentBackwards => ApiError::invalid("now: time cannot go backwards"),
            e @ LedgerError::PlanPastDue(_) => ApiError::Conflict(e.to_string()),
            e @ LedgerError::ModelNotInPlan { .. } => ApiError::ModelNotInPlan(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::from(crate::store::Error::from(e))
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        // Lost connections, deadlocks and serialization failures: nothing was applied.
        if e.is_transient() {
            tracing::warn!(error = %e, "storage unavailable");
            return ApiError::Unavailable;
        }
        ApiError::Internal(e.to_string())
    }
}
