//! The HTTP surface: every route of api.md, registered once for both routing and the
//! OpenAPI document (utoipa-axum), so the document cannot drift from what is served.

pub mod account;
pub mod admin;
pub mod meta;
pub mod ops;
pub mod payments;
pub mod plan;
pub mod refunds;
pub mod reviews;
pub mod usage;
pub mod usage_log;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::Json;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::error::ApiError;

/// Bodies over this are refused with 413 (api.md).
pub const MAX_BODY: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "creditbar API", version = "1", description = "The credit ledger and account API of creditbar (api.md)."),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("bearer", bearer());
        components.add_security_scheme("admin", bearer());
    }
}

pub fn router(app: App) -> axum::Router {
    let catalog = app.catalog.clone();
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(meta::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(meta::catalog))
        .routes(routes!(admin::create_account))
        .routes(routes!(admin::create_token, admin::list_tokens))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(admin::change_plan))
        .routes(routes!(admin::grant))
        .routes(routes!(admin::clock))
        .routes(routes!(account::get_account, account::patch_account))
        .routes(routes!(account::balance))
        .routes(routes!(account::ledger))
        .routes(routes!(account::notices))
        .routes(routes!(usage::post_usage, usage::get_usage))
        .routes(routes!(usage_log::usage_events))
        .routes(routes!(usage::post_hold))
        .routes(routes!(usage::settle_hold))
        .routes(routes!(usage::void_hold))
        .routes(routes!(payments::post_payment_method))
        .routes(routes!(payments::post_purchase, payments::list_purchases))
        .routes(routes!(payments::get_purchase))
        .routes(routes!(plan::put_plan))
        .routes(routes!(plan::quote))
        .routes(routes!(refunds::refund))
        .routes(routes!(refunds::reconciliation))
        .routes(routes!(
            payments::get_auto_refill,
            payments::put_auto_refill
        ))
        .routes(routes!(reviews::post_review, reviews::list_reviews))
        .routes(routes!(reviews::resolve_review))
        .routes(routes!(crate::events::events))
        .with_state(app)
        .split_for_parts();
    let mut doc = api.clone();
    list_catalog_ids(&mut doc, &catalog);
    router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || async move { Json(doc) }),
        )
        .fallback(|| async { ApiError::NotFound("route").into_response() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(ops::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::extract::Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(
                    |resp: &axum::response::Response, took: std::time::Duration, _: &tracing::Span| {
                        tracing::info!(status = resp.status().as_u16(), took_ms = took.as_secs_f64() * 1e3, "answered");
                    },
                )
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(RequestIds))
}

/// Every request has an id: the client's `X-Request-Id` when it sent one (so a request can
/// be followed from the client's logs into the server's), else 16 random hex digits. It is
/// echoed in the response and carried by every log line about the request (the span), with
/// the access line itself at `info` when the answer is sent.
#[derive(Clone, Copy)]
struct RequestIds;

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let id = format!("{:016x}", rand::random::<u64>());
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// The request fields that must name a plan, pack or model list the catalog's ids as their
/// `enum`, taken from the catalog the server runs with, so the document says what is
/// accepted and a client (or schemathesis) can send it. A field that may be null keeps null.
fn list_catalog_ids(doc: &mut utoipa::openapi::OpenApi, catalog: &creditbar_ledger::Catalog) {
    use serde_json::Value;
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    use utoipa::openapi::RefOr;
    let plans: Vec<Value> = catalog.plans.iter().map(|p| p.id.as_str().into()).collect();
    let packs: Vec<Value> = catalog.packs.iter().map(|p| p.id.as_str().into()).collect();
    let models: Vec<Value> = catalog
        .models
        .iter()
        .map(|m| m.id.as_str().into())
        .collect();
    let fields = [
        ("CreateAccountRequest", "plan", &plans),
        ("PlanRequest", "plan", &plans),
        ("UserPlanRequest", "plan", &plans),
        ("PurchaseRequest", "pack", &packs),
        ("AutoRefillRequest", "pack", &packs),
        ("UsageRequest", "model", &models),
        ("SettleRequest", "model", &models),
        ("ReviewRequest", "model", &models),
    ];
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (schema, field, values) in fields {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
            continue;
        };
        let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) else {
            continue;
        };
        let mut values = values.clone();
        if matches!(&property.schema_type, SchemaType::Array(types) if types.contains(&Type::Null))
        {
            values.push(Value::Null);
        }
        property.enum_values = Some(values);
    }
}
