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
        }
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

/// POST /v1/usage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    pub id: String,
    pub project: String,
    pub thread: String,
    pub model: String,
    pub kind: UsageKindBody,
    pub status: UsageStatusBody,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

/// POST /v1/holds/{id}/settle: the usage fields without `id`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    pub project: String,
    pub thread: String,
    pub model: String,
    pub kind: UsageKindBody,
    pub status: UsageStatusBody,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
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
    pub from: Option<String>,
    /// Exclusive end (RFC 3339).
    pub to: Option<String>,
    /// day (in the account's timezone), model, project or thread; default day.
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
    pub id: String,
    pub amount: i64,
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
    pub email: String,
    pub plan: String,
    pub timezone: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedAccount {
    pub account: AccountBody,
    /// Shown once; the server keeps only its hash.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenBody {
    pub token: String,
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
    pub id: String,
    pub amount: i64,
    pub reason: GrantReasonBody,
    pub expires_at: Option<DateTime<Utc>>,
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
    pub timezone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
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
