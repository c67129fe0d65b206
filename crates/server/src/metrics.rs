//! What `GET /metrics` shows (Prometheus text, api.md "Operations"), on the `metrics` facade
//! with `metrics-exporter-prometheus` rendering it. The functions here are the only way the
//! rest of the server records a metric, so the names live in one place:
//!
//! - `creditbar_http_requests_total{method, route, status}`: every answered request, by
//!   the route's template (`/v1/holds/{id}/settle`), never the raw path (ids would make a
//!   series per object);
//! - `creditbar_http_request_duration_seconds{method, route}`: a histogram, every route;
//! - `creditbar_charge_duration_seconds`: a histogram of charges (`POST /v1/usage`, a hold's
//!   settle), from request to answer;
//! - `creditbar_writer_batch_size`: a histogram of the jobs per writer commit;
//! - `creditbar_pending_purchases`: purchases whose outcome is not known yet;
//! - `creditbar_refills_total{outcome}`: auto-refills by outcome.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, in seconds: a charge takes ~0.1-1 ms on a quiet server, group commit
/// and fsync move it to milliseconds, anything past a second is an incident.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Jobs per commit: 1 when quiet, up to the writer's batch cap under load.
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Installs the recorder, once per process (a desktop app that starts a second embedded
/// server shares it). Returns false when another recorder was installed first: then the
/// metrics go there, and `/metrics` says so.
pub fn install() -> bool {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("creditbar_writer_batch_size".into()),
                        BATCH,
                    )
                })
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .is_some()
}

fn describe() {
    metrics::describe_counter!(
        "creditbar_http_requests_total",
        "Requests answered, by route and status"
    );
    metrics::describe_histogram!(
        "creditbar_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from request to answer, by route"
    );
    metrics::describe_histogram!(
        "creditbar_charge_duration_seconds",
        metrics::Unit::Seconds,
        "Time from request to answer of a charge (POST /v1/usage, settling a hold)"
    );
    metrics::describe_histogram!(
        "creditbar_writer_batch_size",
        metrics::Unit::Count,
        "Jobs committed together by the single writer"
    );
    metrics::describe_gauge!(
        "creditbar_pending_purchases",
        "Purchases whose outcome is not known yet"
    );
    metrics::describe_counter!("creditbar_refills_total", "Auto-refills by outcome");
    for outcome in ["succeeded", "declined", "failed"] {
        metrics::counter!("creditbar_refills_total", "outcome" => outcome).increment(0);
    }
}

/// The Prometheus text of every metric, or None when this process's recorder is not ours.
pub fn render() -> Option<String> {
    HANDLE.get().and_then(|h| h.as_ref()).map(|h| h.render())
}

/// The metric handles of one (method, route, status): looked up once, then used without
/// building a key, allocating or hashing labels again (a request would otherwise pay for
/// six allocations and three registry lookups).
struct RequestHandles {
    requests: metrics::Counter,
    duration: metrics::Histogram,
    charge: Option<metrics::Histogram>,
}

type HandleMap = HashMap<(&'static str, &'static str, u16), Arc<RequestHandles>>;

static HANDLES: OnceLock<RwLock<HandleMap>> = OnceLock::new();
static ROUTES: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();

/// A route template as a `&'static str`. Only templates the router registered (and
/// `unmatched`) get here, a few dozen, so what is leaked is bounded.
fn intern(route: &str) -> &'static str {
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(r) = routes.read().unwrap_or_else(|p| p.into_inner()).get(route) {
        return r;
    }
    let mut w = routes.write().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = w.get(route) {
        return r;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    w.insert(leaked);
    leaked
}

fn method_str(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn handles(method: &'static str, route: &'static str, status: u16) -> Arc<RequestHandles> {
    let map = HANDLES.get_or_init(Default::default);
    if let Some(h) = map
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(method, route, status))
    {
        return h.clone();
    }
    let charge = method == "POST" && (route == "/v1/usage" || route == "/v1/holds/{id}/settle");
    let h = Arc::new(RequestHandles {
        requests: metrics::counter!(
            "creditbar_http_requests_total",
            "method" => method,
            "route" => route,
            "status" => status.to_string()
        ),
        duration: metrics::histogram!(
            "creditbar_http_request_duration_seconds",
            "method" => method,
            "route" => route
        ),
        charge: charge.then(|| metrics::histogram!("creditbar_charge_duration_seconds")),
    });
    map.write()
        .unwrap_or_else(|p| p.into_inner())
        .insert((method, route, status), h.clone());
    h
}

/// One answered request. `route` is the matched template, or `unmatched`.
pub fn request(method: &axum::http::Method, route: &str, status: u16, took: Duration) {
    let h = handles(method_str(method), intern(route), status);
    h.requests.increment(1);
    h.duration.record(took.as_secs_f64());
    if let Some(c) = &h.charge {
        c.record(took.as_secs_f64());
    }
}

/// One commit of the writer, of `jobs` jobs.
pub fn writer_batch(jobs: usize) {
    metrics::histogram!("creditbar_writer_batch_size").record(jobs as f64);
}

/// How many purchases are pending now (the billing code, or the periodic count).
pub fn set_pending_purchases(n: u64) {
    metrics::gauge!("creditbar_pending_purchases").set(n as f64);
}

/// An auto-refill ended: `succeeded`, `declined` (the card refused) or `failed` (anything
/// else, retried later).
pub fn refill_outcome(outcome: &'static str) {
    metrics::counter!("creditbar_refills_total", "outcome" => outcome).increment(1);
}
