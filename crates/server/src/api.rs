//! The wire types of api.md, with their OpenAPI schemas. Amounts are integer micro-credits,
//! money integer cents, times RFC 3339 UTC. Request types refuse unknown fields.

use chrono::{DateTime, Utc};
use creditbar_ledger::{self as ledger, Account, Credits};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::ts;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct AccountBody {
    pub id: String,
    pub email: String,
    pub plan: String,
    pub timezone: String,
    pub created_at: String,
    pub billing_anchor: String,
    pub period_start: String,
    pub period_end: String,
    pub next_daily_reset: String,
    /// A plan that takes effect at `period_end` (a downgrade), if any.
    pub pending_plan: Option<String>,
    /// The same as `pending_plan` (api.md v1.1 names it so).
    pub next_plan: Option<String>,
    /// `active`, or `past_due` while a renewal charge is declined (no subscription credits
    /// until it is paid; retried after 1 and 3 days, then the plan falls back to free).
    pub plan_status: String,
    /// Last 4 digits of the card the plan's renewals are charged to; null when the plan is
    /// not paid by card (free, or set by staff).
    pub plan_payment_last4: Option<String>,
}

impl AccountBody {
    pub fn of(email: &str, a: &Account) -> Self {
        AccountBody {
            id: a.id.clone(),
            email: email.to_owned(),
            plan: a.plan.clone(),
            timezone: a.timezone.name().to_owned(),
            created_at: ts(a.created_at),
            billing_anchor: ts(a.billing.anchor),
            period_start: ts(a.period_start),
            period_end: ts(a.period_end),
            next_daily_reset: ts(a.next_daily_reset),
            pending_plan: a.pending_plan.clone(),
            next_plan: a.pending_plan.clone(),
            plan_status: a.plan_billing.status.as_str().to_owned(),
            plan_payment_last4: None,
        }
    }

    /// With the last 4 digits of the plan's card, when the plan is paid by card.
    pub fn with_plan_card(mut self, a: &Account, last4: Option<String>) -> Self {
        if a.plan_billing.by_card {
            self.plan_payment_last4 = last4;
        }
        self
    }
}

#[derive(Serialize, ToSchema)]
pub struct BucketBody {
    pub available: i64,
    pub next_reset: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Buckets {
    pub daily: BucketBody,
    pub subscription: BucketBody,
    pub bonus: BucketBody,
    pub purchased: BucketBody,
}

#[derive(Serialize, ToSchema)]
pub struct BalanceBody {
    pub available: i64,
    pub held: i64,
    pub buckets: Buckets,
    pub seq: u64,
    pub as_of: String,
}

impl BalanceBody {
    pub fn of(a: &Account, as_of: DateTime<Utc>) -> Self {
        let b = a.balance();
        let bucket = |x: ledger::BucketBalance| BucketBody {
            available: x.available.micros(),
            next_reset: x.next_reset.map(ts),
        };
        BalanceBody {
            available: b.available.micros(),
            held: b.held.micros(),
            buckets: Buckets {
                daily: bucket(b.daily),
                subscription: bucket(b.subscription),
                bonus: bucket(b.bonus),
                purchased: bucket(b.purchased),
            },
            seq: a.seq,
            as_of: ts(as_of),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AvailableBody {
    pub available: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerEntryBody {
    pub seq: i64,
    pub at: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub bucket: String,
    pub amount: i64,
    pub balance_after: i64,
    pub grant_id: String,
    #[serde(rename = "ref")]
    #[schema(rename = "ref")]
    pub reference: String,
    /// An extension of the contract: on an entry that opens a lot (a grant, purchase or
    /// refill; `amount` > 0), when that lot expires; `null` when it never does. Absent on
    /// every other entry, and from servers before the extension, so a client tells "never"
    /// from "not reported".
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, nullable, required = false)]
    pub expires_at: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerPage {
    pub items: Vec<LedgerEntryBody>,
    pub next: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NoticeBody {
    pub seq: u64,
    pub at: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub data: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct NoticePage {
    pub items: Vec<NoticeBody>,
    pub next: Option<String>,
}

/// The schema of a client-chosen id or label, as `routes::usage::check_label` checks it:
/// 1 to 200 characters, none of them a control character (Unicode Cc) nor an invisible or
/// text-direction one (`routes::usage::is_invisible`; the pattern lists those of the Basic
/// Multilingual Plane, JSON Schema's regexes have no astral escapes everywhere).
fn label() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(
            "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u115F\\u1160\\u180B-\\u180F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u206F\\u3164\\uFE00-\\uFE0F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8]*$",
        ))
        .description(Some(
            "1 to 200 characters, no control, invisible or text-direction characters.",
        ))
        .build()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageKindBody {
    Chat,
    Agent,
    Edit,
    Summarization,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageStatusBody {
    Completed,
    Cancelled,
}

/// The most tokens one usage event may report in any of its counts. Far above any model's
/// context (10^7), and low enough that the sums `GET /v1/usage` reports stay exact in an
/// i64 for 9 million such events: with i64::MAX allowed, two free (cancelled) events made
/// SQLite's `SUM` overflow and the report fail.
pub const MAX_TOKENS_PER_EVENT: u64 = 1_000_000_000_000;

/// POST /v1/usage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    /// Client-chosen, unique per account.
    #[schema(schema_with = label)]
    pub id: String,
    #[schema(schema_with = label)]
    pub project: String,
    #[schema(schema_with = label)]
    pub thread: String,
    /// A model of `GET /v1/catalog` (the document lists them).
    pub model: String,
    pub kind: UsageKindBody,
    pub status: UsageStatusBody,
    #[schema(maximum = 1e12)]
    pub input_tokens: u64,
    #[schema(maximum = 1e12)]
    pub cached_input_tokens: u64,
    #[schema(maximum = 1e12)]
    pub output_tokens: u64,
}

/// POST /v1/holds/{id}/settle: the usage fields without `id`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    #[schema(schema_with = label)]
    pub project: String,
    #[schema(schema_with = label)]
    pub thread: String,
    /// A model of `GET /v1/catalog` (the document lists them).
    pub model: String,
    pub kind: UsageKindBody,
    pub status: UsageStatusBody,
    #[schema(maximum = 1e12)]
    pub input_tokens: u64,
    #[schema(maximum = 1e12)]
    pub cached_input_tokens: u64,
    #[schema(maximum = 1e12)]
    pub output_tokens: u64,
}

pub fn usage_of(
    model: &str,
    kind: UsageKindBody,
    status: UsageStatusBody,
    input: u64,
    cached: u64,
    output: u64,
) -> ledger::Usage {
    ledger::Usage {
        model: model.to_owned(),
        kind: match kind {
            UsageKindBody::Chat => ledger::UsageKind::Chat,
            UsageKindBody::Agent => ledger::UsageKind::Agent,
            UsageKindBody::Edit => ledger::UsageKind::Edit,
            UsageKindBody::Summarization => ledger::UsageKind::Summarization,
        },
        status: match status {
            UsageStatusBody::Completed => ledger::UsageStatus::Completed,
            UsageStatusBody::Cancelled => ledger::UsageStatus::Cancelled,
        },
        input_tokens: input,
        cached_input_tokens: cached,
        output_tokens: output,
    }
}

pub fn kind_str(k: UsageKindBody) -> &'static str {
    match k {
        UsageKindBody::Chat => "chat",
        UsageKindBody::Agent => "agent",
        UsageKindBody::Edit => "edit",
        UsageKindBody::Summarization => "summarization",
    }
}

pub fn status_str(s: UsageStatusBody) -> &'static str {
    match s {
        UsageStatusBody::Completed => "completed",
        UsageStatusBody::Cancelled => "cancelled",
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BreakdownPart {
    pub bucket: String,
    pub grant_id: String,
    pub amount: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UsageResult {
    pub id: String,
    pub charged: i64,
    pub breakdown: Vec<BreakdownPart>,
    pub balance: AvailableBody,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SettleResult {
    pub id: String,
    pub charged: i64,
    /// What the hold's task cost beyond what was there to take.
    pub uncollected: i64,
    pub breakdown: Vec<BreakdownPart>,
    pub balance: AvailableBody,
    pub status: String,
}

pub fn breakdown(r: &ledger::ChargeResult) -> Vec<BreakdownPart> {
    r.breakdown
        .iter()
        .map(|p| BreakdownPart {
            bucket: p.bucket.as_str().to_owned(),
            grant_id: p.grant_id.clone(),
            amount: p.amount.micros(),
        })
        .collect()
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// Inclusive start (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Exclusive end (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// day (in the account's timezone), model, project or thread; default day.
    #[param(pattern = "^(day|model|project|thread)$")]
    pub group_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageGroupBody {
    pub key: String,
    pub charged: i64,
    pub events: i64,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageGroups {
    pub items: Vec<UsageGroupBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    #[schema(schema_with = label)]
    pub id: String,
    /// Micro-credits to reserve, at least 1.
    #[schema(minimum = 1)]
    pub amount: i64,
    /// 1 to 86,400; default 3,600.
    #[schema(minimum = 1, maximum = 86400)]
    pub ttl_seconds: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct HoldBody {
    pub id: String,
    pub amount: i64,
    pub expires_at: String,
    pub status: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct VoidResult {
    pub id: String,
    pub status: String,
}

/// POST /v1/admin/accounts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    #[schema(max_length = 254, example = "dev@example.com")]
    pub email: String,
    /// A plan of `GET /v1/catalog` (the document lists them).
    pub plan: String,
    /// An IANA timezone name.
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedAccount {
    pub account: AccountBody,
    /// Shown once; the server keeps only its hash.
    pub token: String,
    /// The token's id, for listing and revoking it.
    pub token_id: String,
}

/// A new token: the secret (shown once) and its id.
#[derive(Serialize, ToSchema)]
pub struct TokenBody {
    pub token_id: String,
    /// Shown once; the server keeps only its hash.
    pub token: String,
    /// When it stops working; null: never (until revoked).
    pub expires_at: Option<String>,
}

/// POST /v1/admin/accounts/{id}/tokens (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// The token stops working this many days after it is made (1..=3650); absent: never.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
}

/// One token of an account, without its secret.
#[derive(Serialize, ToSchema)]
pub struct TokenInfo {
    pub token_id: String,
    pub created_at: String,
    /// Within a minute: use is recorded in memory and saved once a minute.
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenInfo>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub plan: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantReasonBody {
    Admin,
    Promo,
    Community,
    Compensation,
}

impl GrantReasonBody {
    pub fn ledger(self) -> ledger::GrantReason {
        match self {
            GrantReasonBody::Admin => ledger::GrantReason::Admin,
            GrantReasonBody::Promo => ledger::GrantReason::Promo,
            GrantReasonBody::Community => ledger::GrantReason::Community,
            GrantReasonBody::Compensation => ledger::GrantReason::Compensation,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// 1 to 200 characters, no control characters and no `:` (the server's own grants use it).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^:\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub id: String,
    /// Micro-credits, at least 1.
    #[schema(minimum = 1)]
    pub amount: i64,
    pub reason: GrantReasonBody,
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct GrantBody {
    pub id: String,
    pub bucket: String,
    pub amount: i64,
    pub reason: GrantReasonBody,
    pub effective_at: String,
    pub expires_at: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimezoneRequest {
    /// An IANA timezone name.
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    #[schema(minimum = 0)]
    pub advance_seconds: Option<i64>,
    pub now: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ClockBody {
    pub now: String,
}

pub fn credits(c: Credits) -> i64 {
    c.micros()
}

// ---------------------------------------------------------------- payments and reviews

/// Takes a string without ever echoing the value in an error: a card number sent as a JSON
/// number must not come back in a 400 message (or reach a log through one).
fn secret_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(serde::de::Error::custom("must be a string of digits")),
    }
}

/// POST /v1/payment-methods. No `Debug`: it holds a card number and CVC.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardRequest {
    /// 12 to 19 digits (spaces and dashes are ignored); must pass the Luhn check.
    #[serde(deserialize_with = "secret_string")]
    #[schema(pattern = "^[0-9][0-9 -]{10,30}[0-9]$")]
    pub number: String,
    #[schema(minimum = 1, maximum = 12)]
    pub exp_month: u32,
    #[schema(minimum = 2000, maximum = 2100)]
    pub exp_year: i32,
    /// 3 or 4 digits.
    #[serde(deserialize_with = "secret_string")]
    #[schema(pattern = "^[0-9]{3,4}$")]
    pub cvc: String,
}

impl std::fmt::Debug for CardRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardRequest([redacted])")
    }
}

#[derive(Serialize, ToSchema)]
pub struct PaymentMethodBody {
    /// Shown once: the client keeps it (in the OS keychain) and sends it with purchases. The
    /// server stores only its hash.
    pub payment_token: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
}

/// POST /v1/purchases: exactly one of `pack` and `custom_cents`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// A pack of `GET /v1/catalog` (the document lists them); exactly one of `pack` and
    /// `custom_cents`.
    pub pack: Option<String>,
    /// A custom amount in cents, bought at the catalog's credits per dollar.
    pub custom_cents: Option<i64>,
    #[schema(min_length = 1)]
    pub payment_token: String,
}

impl std::fmt::Debug for PurchaseRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurchaseRequest")
            .field("pack", &self.pack)
            .field("custom_cents", &self.custom_cents)
            .field("payment_token", &"[redacted]")
            .finish()
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PurchaseBody {
    pub id: String,
    pub credits: i64,
    pub price_cents: i64,
    /// `succeeded` (201), or `pending` (202) while the outcome of the charge is not known:
    /// the server finishes it by itself within seconds (`GET /v1/purchases/{id}`).
    pub status: String,
    pub balance: AvailableBody,
    /// `manual`.
    pub source: String,
    /// The pack bought, or null for a custom amount.
    pub pack: Option<String>,
    pub created_at: String,
    /// When the outcome was recorded; null while pending.
    pub completed_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PurchaseItem {
    pub id: String,
    /// Micro-credits bought (for a plan charge: the plan's credits it pays for).
    pub credits: i64,
    pub price_cents: i64,
    /// `pending`, `succeeded`, `failed` (nothing was charged) or `refunded`.
    pub status: String,
    /// `manual`, `auto_refill` or `plan`.
    pub source: String,
    pub pack: Option<String>,
    pub created_at: String,
    /// When the outcome was recorded; null while pending.
    pub completed_at: Option<String>,
    /// Why the charge failed, for a failed one.
    pub failure_reason: Option<String>,
    /// The plan a `plan` charge paid for.
    pub plan: Option<String>,
}

/// PUT /v1/plan.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPlanRequest {
    /// A plan of `GET /v1/catalog`.
    pub plan: String,
    /// A saved card's payment token: it becomes the plan's card (upgrade and renewals).
    pub payment_token: Option<String>,
}

impl std::fmt::Debug for UserPlanRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPlanRequest")
            .field("plan", &self.plan)
            .field("payment_token", &"[redacted]")
            .finish()
    }
}

/// GET /v1/plan/quote: what `PUT /v1/plan` would do now, to show before confirming.
#[derive(Serialize, ToSchema)]
pub struct PlanQuoteBody {
    pub plan: String,
    /// `upgrade` (charged now, credits now), `downgrade` (at `effective_at`, free) or `same`.
    pub change: String,
    /// Cents charged now: the prorated price difference for the rest of the period.
    pub price_cents: i64,
    /// Micro-credits granted now: the prorated allowance difference, until `period_end`.
    pub credits: i64,
    pub effective_at: String,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PlanQuoteQuery {
    pub plan: String,
}

/// POST /v1/admin/purchases/{id}/refund.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The refund's id: its idempotency key.
    #[schema(min_length = 1, max_length = 200)]
    pub id: String,
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RefundBody {
    pub id: String,
    pub purchase_id: String,
    pub refunded_cents: i64,
    /// Micro-credits taken back: what was left of the purchase's credits.
    pub credits_removed: i64,
    /// `succeeded`, or `pending` (202) while the processor has not answered.
    pub status: String,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationQuery {
    pub account: String,
}

#[derive(Serialize, ToSchema)]
pub struct PurchasePage {
    pub items: Vec<PurchaseItem>,
    pub next: Option<String>,
}

/// GET/PUT /v1/auto-refill. Fields are null until auto-refill was first configured.
#[derive(Serialize, ToSchema)]
pub struct AutoRefillBody {
    pub enabled: bool,
    /// Micro-credits: a charge that takes the available balance below this buys one pack.
    pub threshold: Option<i64>,
    pub pack: Option<String>,
    /// Last 4 digits of the card refills are charged to.
    pub payment_token_last4: Option<String>,
    pub monthly_limit: Option<u32>,
    /// Successful refills this calendar month, in the account's timezone.
    pub refills_this_month: u32,
    /// Why auto-refill turned itself off (a declined refill); cleared by turning it on.
    pub disabled_reason: Option<String>,
}

/// PUT /v1/auto-refill. `payment_token` may be left out only when turning auto-refill off
/// after a card was set before.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoRefillRequest {
    pub enabled: bool,
    /// Micro-credits, at least 0.
    #[schema(minimum = 0)]
    pub threshold: i64,
    pub pack: String,
    pub payment_token: Option<String>,
    /// Refills allowed per calendar month, 1 to 100.
    #[schema(minimum = 1, maximum = 100)]
    pub monthly_limit: i64,
}

impl std::fmt::Debug for AutoRefillRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoRefillRequest")
            .field("enabled", &self.enabled)
            .field("threshold", &self.threshold)
            .field("pack", &self.pack)
            .field(
                "payment_token",
                &self.payment_token.as_ref().map(|_| "[redacted]"),
            )
            .field("monthly_limit", &self.monthly_limit)
            .finish()
    }
}

/// POST /v1/usage-reviews: a user reports a thread that cost too much.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Client-chosen, unique per account; repeating it with the same body is a no-op.
    #[schema(min_length = 1, max_length = 200)]
    pub id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub thread: String,
    /// What the user was doing, 1 to 4000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub description: String,
    pub model: Option<String>,
    /// Whether a preview or build was failing while the thread ran.
    pub preview_failing: Option<bool>,
    /// How many messages the thread had.
    pub thread_messages: Option<u32>,
    /// Whether the thread worked with a large context.
    pub large_context: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReviewBody {
    pub id: String,
    /// `open` or `resolved`.
    pub status: String,
    pub thread: String,
    pub description: String,
    pub model: Option<String>,
    pub preview_failing: Option<bool>,
    pub thread_messages: Option<u32>,
    pub large_context: Option<bool>,
    pub created_at: String,
    pub resolved_at: Option<String>,
    /// Micro-credits granted as `compensation` (bucket `bonus`); 0 when none.
    pub grant_amount: Option<i64>,
    pub resolution_note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewPage {
    pub items: Vec<ReviewBody>,
    pub next: Option<String>,
}

/// POST /v1/admin/usage-reviews/{id}/resolve.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// Micro-credits; > 0 makes a `compensation` bonus grant.
    #[schema(minimum = 0)]
    pub grant_amount: i64,
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    /// The review's account, when the same review id exists in several accounts.
    pub account: Option<String>,
}

/// A response body already serialised to JSON. A usage charge's response is serialised
/// once, in the writer, stored as the charge's idempotency record and sent as is, so a
/// replay answers byte for byte what the original did.
pub struct JsonText(pub String);

impl axum::response::IntoResponse for JsonText {
    fn into_response(self) -> axum::response::Response {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.0,
        )
            .into_response()
    }
}
