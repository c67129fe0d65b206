//! The client's reading of api.md: what the server sends. Unknown fields are ignored (the
//! server may extend the contract); missing or mistyped fields are a decode error that
//! names the field, never a panic.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub plan: String,
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    pub billing_anchor: DateTime<Utc>,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub next_daily_reset: DateTime<Utc>,
}

/// The account's plan as `GET /v1/account` (v1.1) describes it: what `creditbar plan`
/// shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanState {
    pub plan: String,
    pub period_end: DateTime<Utc>,
    /// `active` or `past_due`.
    #[serde(default = "active")]
    pub plan_status: String,
    /// A change waiting for `period_end` (a downgrade).
    #[serde(default)]
    pub next_plan: Option<String>,
    /// The card renewals are charged to; none for a free or staff-set plan.
    #[serde(default)]
    pub plan_payment_last4: Option<String>,
}

fn active() -> String {
    "active".into()
}

/// `GET /v1/plan/quote`: what changing plan would do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanQuote {
    pub plan: String,
    /// `upgrade`, `downgrade` or `same`.
    pub change: String,
    pub price_cents: i64,
    pub credits: i64,
    pub effective_at: DateTime<Utc>,
}

/// A plan of the catalog, as the plan chooser lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOffer {
    pub id: String,
    pub price_cents: i64,
    #[serde(default)]
    pub subscription: i64,
    #[serde(default)]
    pub daily: i64,
    /// `days30`, `monthly` or `yearly` (absent from older servers).
    #[serde(default)]
    pub cadence: Option<String>,
    /// The models the plan may use; none means every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCatalog {
    #[serde(default)]
    pub plans: Vec<PlanOffer>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketBalance {
    pub available: i64,
    pub next_reset: Option<DateTime<Utc>>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buckets {
    pub daily: BucketBalance,
    pub subscription: BucketBalance,
    pub bonus: BucketBalance,
    pub purchased: BucketBalance,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub available: i64,
    pub held: i64,
    pub buckets: Buckets,
    pub seq: u64,
    pub as_of: DateTime<Utc>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub bucket: String,
    pub amount: i64,
    pub balance_after: i64,
    pub grant_id: String,
    #[serde(rename = "ref")]
    pub reference: String,
    /// On an entry that opens a lot, when that lot expires (`Some(None)`: never). `None`:
    /// the server did not say (an entry that opens no lot, or a server from before this
    /// extension of the contract), which is not the same as "never".
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// A field that is present (even as `null`) is `Some`; an absent one stays the `default`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageGroup {
    pub key: String,
    pub charged: i64,
    pub events: i64,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UsageGroups {
    pub items: Vec<UsageGroup>,
}

/// One usage event (`GET /v1/usage/events`); `day` is its day in the account's timezone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    pub id: String,
    pub at: String,
    pub day: String,
    pub project: String,
    pub thread: String,
    pub model: String,
    pub kind: String,
    pub status: String,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    pub charged: i64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub id: String,
    pub credits: i64,
    pub price_cents: i64,
    pub status: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub pack: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PurchaseResult {
    pub id: String,
    pub credits: i64,
    pub price_cents: i64,
    pub status: String,
    pub balance: Available,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Available {
    pub available: i64,
}

/// The saved card as the server describes it; the payment token itself goes straight to
/// the keychain and is never kept in this struct.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSummary {
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoRefill {
    pub enabled: bool,
    /// Unset (null) until auto-refill is first configured.
    #[serde(default)]
    pub threshold: Option<i64>,
    #[serde(default)]
    pub pack: Option<String>,
    #[serde(default)]
    pub payment_token_last4: Option<String>,
    #[serde(default)]
    pub monthly_limit: Option<u32>,
    #[serde(default)]
    pub refills_this_month: u32,
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pack {
    pub id: String,
    pub credits: i64,
    pub price_cents: i64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomPricing {
    pub credits_per_dollar: i64,
    pub min_cents: i64,
    pub max_cents: i64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub packs: Vec<Pack>,
    pub custom: CustomPricing,
    /// What the platform's people read beside credits (absent from older servers).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub unit: Option<CatalogUnit>,
    /// The platform's models, in the catalog's order (the report form offers them).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub models: Vec<CatalogModel>,
}

/// A model of the catalog; its rates are the server's business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogModel {
    pub id: String,
}

/// The catalog's unit: `credits`, `tokens` (per credit) or `requests` (per credit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogUnit {
    pub kind: String,
    #[serde(default)]
    pub per_credit: Option<u64>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    /// `open` or `resolved`.
    pub status: String,
    pub thread: String,
    pub description: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub preview_failing: Option<bool>,
    #[serde(default)]
    pub thread_messages: Option<u32>,
    #[serde(default)]
    pub large_context: Option<bool>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Micro-credits granted back (bucket `bonus`); 0 or none when nothing was.
    #[serde(default)]
    pub grant_amount: Option<i64>,
    #[serde(default)]
    pub resolution_note: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// A usage review as the user reports it (product.md, "Usage review").
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRequest {
    pub thread: String,
    /// What the user was doing.
    pub description: String,
    pub model: Option<String>,
    pub preview_failing: Option<bool>,
    pub thread_messages: Option<u32>,
    pub large_context: Option<bool>,
}
