//! Health, catalog.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::Health;
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::AccountId;

#[utoipa::path(get, path = "/v1/health", tag = "meta",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct PlanBody {
    pub id: String,
    pub subscription: i64,
    pub daily: i64,
    pub price_cents: i64,
    /// days30, monthly or yearly.
    pub cadence: String,
    /// The models this plan may use; null: every model.
    pub models: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct PackBody {
    pub id: String,
    pub credits: i64,
    pub price_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CustomBody {
    pub credits_per_dollar: i64,
    pub min_cents: i64,
    pub max_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ModelBody {
    pub id: String,
    pub input_rate: i64,
    pub output_rate: i64,
    pub cached_input_rate: i64,
    /// Micro-credits per completed request when the model is priced per request (then the
    /// rates are 0); null when priced per token.
    pub request_price: Option<i64>,
}

/// What clients show beside credits.
#[derive(Serialize, ToSchema)]
pub struct UnitBody {
    /// `credits`, `tokens` or `requests`.
    pub kind: String,
    /// Tokens or requests one credit stands for; null for `credits`.
    pub per_credit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct CatalogBody {
    /// The platform's name.
    pub name: String,
    pub unit: UnitBody,
    /// Micro-credits every new account receives as a bonus grant.
    pub signup_grant: i64,
    /// The bucket bought credits land in: `purchased` or `bonus`.
    pub purchase_bucket: String,
    pub plans: Vec<PlanBody>,
    pub packs: Vec<PackBody>,
    pub custom: CustomBody,
    pub models: Vec<ModelBody>,
}

#[utoipa::path(get, path = "/v1/catalog", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = CatalogBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn catalog(State(app): State<App>, _: AccountId) -> Result<Json<CatalogBody>, ApiError> {
    let c = &app.catalog;
    let unit = match c.unit {
        creditbar_ledger::Unit::Credits => UnitBody {
            kind: "credits".into(),
            per_credit: None,
        },
        creditbar_ledger::Unit::Tokens { per_credit } => UnitBody {
            kind: "tokens".into(),
            per_credit: Some(per_credit),
        },
        creditbar_ledger::Unit::Requests { per_credit } => UnitBody {
            kind: "requests".into(),
            per_credit: Some(per_credit),
        },
    };
    Ok(Json(CatalogBody {
        name: c.name.clone(),
        unit,
        signup_grant: c.signup_grant.micros(),
        purchase_bucket: c.purchase_bucket.as_str().into(),
        plans: c
            .plans
            .iter()
            .map(|p| PlanBody {
                id: p.id.clone(),
                subscription: p.subscription.micros(),
                daily: p.daily.micros(),
                price_cents: p.price_cents.0,
                cadence: match p.cadence {
                    creditbar_ledger::Cadence::Days30 => "days30",
                    creditbar_ledger::Cadence::Monthly => "monthly",
                    creditbar_ledger::Cadence::Yearly => "yearly",
                }
                .into(),
                models: p.models.clone(),
            })
            .collect(),
        packs: c
            .packs
            .iter()
            .map(|p| PackBody {
                id: p.id.clone(),
                credits: p.credits.micros(),
                price_cents: p.price_cents.0,
            })
            .collect(),
        custom: CustomBody {
            credits_per_dollar: c.custom.credits_per_dollar,
            min_cents: c.custom.min_cents.0,
            max_cents: c.custom.max_cents.0,
        },
        models: c
            .models
            .iter()
            .map(|m| ModelBody {
                id: m.id.clone(),
                input_rate: m.input_rate,
                output_rate: m.output_rate,
                cached_input_rate: m.cached_input_rate,
                request_price: m.request_price.map(|p| p.micros()),
            })
            .collect(),
    }))
}
