//! HTTP client for api.md: timeouts, typed errors carrying the server's code and message,
//! and retries with exponential backoff and jitter, for idempotent calls only (reads, and
//! writes that carry an idempotency key). A purchase retried after a lost response reuses
//! its key, so the server charges once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::error::ClientError;
use crate::limits;
use crate::wire::*;

const ATTEMPTS: u32 = 4;

#[derive(Clone)]
pub struct ApiClient {
    base: url::Url,
    http: reqwest::Client,
    token: SecretString,
}

/// Whether a call may be sent again after a failure that may or may not have reached the
/// server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Safe,
    Never,
}

/// An HTTP date (`Sun, 06 Dec 2026 12:00:00 GMT`, RFC 9110's preferred form); anything
/// else is no date.
pub fn http_date(s: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%a, %d %b %Y %H:%M:%S GMT")
        .ok()
        .map(|t| t.and_utc())
}

pub enum Conditional<T> {
    Modified { value: T, etag: Option<String> },
    NotModified,
}

/// Reads a server address. Plain `http://` is accepted only to this machine (`localhost`,
/// 127.0.0.0/8, `::1`): anywhere else the account token would cross the network in
/// cleartext on every request, so it takes the person's explicit `allow_insecure_http`.
/// Credentials in the address are refused: the address is kept in the cache, in clear.
pub fn parse_server_url(raw: &str, allow_insecure_http: bool) -> Result<url::Url, ClientError> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| ClientError::Invalid(format!("server URL `{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::Invalid(format!(
            "server URL `{raw}`: must start with http:// or https://"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ClientError::Invalid(format!(
            "server URL `{}`: must not contain a user name or password (the address is stored \
             in clear; the account token is the only credential)",
            url.host_str().unwrap_or(raw)
        )));
    }
    if is_cleartext(&url) && !allow_insecure_http {
        return Err(ClientError::Cleartext {
            url: url.to_string(),
        });
    }
    Ok(url)
}

/// Whether `url`'s host is this machine: `localhost`, an address in 127.0.0.0/8, or `::1`
/// (also written as `::ffff:127.x.y.z`). Traffic to it never leaves the machine.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            d.eq_ignore_ascii_case("localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// Whether requests to `url` would carry the token unencrypted over a network: `http://`
/// to anything but this machine.
pub fn is_cleartext(url: &url::Url) -> bool {
    url.scheme() == "http" && !is_loopback(url)
}

impl ApiClient {
    pub fn new(base: url::Url, token: SecretString) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder();
        if base.scheme() == "http" && is_loopback(&base) {
            // Plain http is accepted to this machine because it never leaves it; a proxy
            // from the environment (`http_proxy`) would carry the token, in cleartext, to
            // wherever the proxy is.
            builder = builder.no_proxy();
        }
        let http = builder
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("creditbar/", env!("CARGO_PKG_VERSION")))
            // An API answer never redirects; following one could carry the token to another
            // scheme or host than the one the person chose.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Invalid(format!("HTTP client: {e}")))?;
        Ok(ApiClient { base, http, token })
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<url::Url, ClientError> {
        self.base
            .join(path)
            .map_err(|e| ClientError::Invalid(format!("URL for {path}: {e}")))
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        // reqwest's Display may include the URL but never headers, so no token leaks.
        ClientError::Unreachable {
            url: self.base.to_string(),
            detail: e.without_url().to_string(),
        }
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        Ok(self
            .http
            .request(method, self.url(path)?)
            .bearer_auth(self.token.expose_secret()))
    }

    async fn send(
        &self,
        retry: Retry,
        build: impl Fn() -> Result<reqwest::RequestBuilder, ClientError>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match build()?.send().await {
                Ok(resp) => check(resp).await,
                Err(e) => Err(self.unreachable(e)),
            };
            match result {
                Err(e) if retry == Retry::Safe && e.is_transient() && attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        what: &str,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        let bytes = read_limited(resp, limits::MAX_BODY_BYTES)
            .await
            .map_err(|e| match e {
                Read::TooLarge => ClientError::TooMuch {
                    url: self.base.to_string(),
                    what: format!(
                        "an answer to {} larger than {}",
                        what.split('?').next().unwrap_or(what),
                        limits::bytes(limits::MAX_BODY_BYTES)
                    ),
                },
                Read::Failed(e) => self.unreachable(e),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            detail: e.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self
            .send(Retry::Safe, || self.request(Method::GET, path))
            .await?;
        self.json(path, resp).await
    }

    pub async fn account(&self) -> Result<Account, ClientError> {
        self.get("/v1/account").await
    }

    /// The balance, or `NotModified` when it still matches `etag`.
    /// The balance (or that it is unchanged since `etag`), with the server's clock at the
    /// answer: its `Date` header, which the server sets from its own clock on this route
    /// (`--test-clock` included).
    pub async fn balance(
        &self,
        etag: Option<&str>,
    ) -> Result<(Conditional<Balance>, Option<DateTime<Utc>>), ClientError> {
        let resp = self
            .send(Retry::Safe, || {
                let mut r = self.request(Method::GET, "/v1/balance")?;
                if let Some(e) = etag {
                    r = r.header(reqwest::header::IF_NONE_MATCH, e);
                }
                Ok(r)
            })
            .await?;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(http_date);
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok((Conditional::NotModified, date));
        }
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let value = self.json("/v1/balance", resp).await?;
        Ok((Conditional::Modified { value, etag }, date))
    }

    pub async fn ledger(&self, after: u64, limit: u32) -> Result<Page<LedgerEntry>, ClientError> {
        self.get(&format!("/v1/ledger?after={after}&limit={limit}"))
            .await
    }

    pub async fn notices(&self, after: u64, limit: u32) -> Result<Page<Notice>, ClientError> {
        self.get(&format!("/v1/notices?after={after}&limit={limit}"))
            .await
    }

    pub async fn usage(&self, group_by: &str) -> Result<UsageGroups, ClientError> {
        self.get(&format!("/v1/usage?group_by={group_by}")).await
    }

    /// Usage events at or after `since` (if any), after the cursor `after` (if any).
    pub async fn usage_events(
        &self,
        since: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<UsageEvent>, ClientError> {
        let mut url = self.url("/v1/usage/events")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            if let Some(s) = since {
                q.append_pair("since", s);
            }
            if let Some(a) = after {
                q.append_pair("after", a);
            }
        }
        let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        self.get(&path).await
    }

    /// Usage grouped within `[from, to)`.
    pub async fn usage_between(
        &self,
        group_by: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<UsageGroups, ClientError> {
        let mut url = self.url("/v1/usage")?;
        url.query_pairs_mut()
            .append_pair("group_by", group_by)
            .append_pair(
                "from",
                &from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .append_pair("to", &to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        self.get(&path).await
    }

    pub async fn purchases(&self, after: u64, limit: u32) -> Result<Page<Purchase>, ClientError> {
        self.get(&format!("/v1/purchases?after={after}&limit={limit}"))
            .await
    }

    /// Every usage review of the account, oldest first (all pages).
    pub async fn reviews(&self) -> Result<Vec<Review>, ClientError> {
        let mut all = Vec::new();
        let mut path = "/v1/usage-reviews?limit=500".to_owned();
        loop {
            let page: Page<Review> = self.get(&path).await?;
            all.extend(page.items);
            match page.next {
                Some(next) if all.len() < crate::limits::MAX_REVIEWS => {
                    let next: String =
                        url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                    path = format!("/v1/usage-reviews?limit=500&after={next}");
                }
                _ => return Ok(all),
            }
        }
    }

    pub async fn catalog(&self) -> Result<Catalog, ClientError> {
        self.get("/v1/catalog").await
    }

    pub async fn auto_refill(&self) -> Result<AutoRefill, ClientError> {
        self.get("/v1/auto-refill").await
    }

    pub async fn plan(&self) -> Result<PlanState, ClientError> {
        self.get("/v1/account").await
    }

    /// `PATCH /v1/account {timezone}`: the server applies it from the next daily reset.
    pub async fn set_timezone(&self, timezone: &str) -> Result<Account, ClientError> {
        let body = json!({ "timezone": timezone });
        let resp = self
            .send(Retry::Safe, || {
                Ok(self.request(Method::PATCH, "/v1/account")?.json(&body))
            })
            .await?;
        self.json("/v1/account", resp).await
    }

    pub async fn plan_catalog(&self) -> Result<PlanCatalog, ClientError> {
        self.get("/v1/catalog").await
    }

    pub async fn plan_quote(&self, plan: &str) -> Result<PlanQuote, ClientError> {
        let plan: String = url::form_urlencoded::byte_serialize(plan.as_bytes()).collect();
        let path = format!("/v1/plan/quote?plan={plan}");
        self.get(&path).await
    }

    /// Changes the plan. PUT is idempotent (choosing the plan again charges nothing more),
    /// so it is retried. Returns the plan and whether its charge is still being confirmed.
    pub async fn set_plan(
        &self,
        plan: &str,
        payment_token: Option<&SecretString>,
    ) -> Result<(PlanState, bool), ClientError> {
        let mut body = json!({ "plan": plan });
        if let Some(t) = payment_token {
            body["payment_token"] = json!(t.expose_secret());
        }
        let resp = self
            .send(Retry::Safe, || {
                Ok(self.request(Method::PUT, "/v1/plan")?.json(&body))
            })
            .await?;
        let pending = resp.status() == StatusCode::ACCEPTED;
        Ok((self.json("/v1/plan", resp).await?, pending))
    }

    pub async fn set_auto_refill(
        &self,
        enabled: bool,
        threshold: i64,
        pack: &str,
        payment_token: Option<&SecretString>,
        monthly_limit: u32,
    ) -> Result<AutoRefill, ClientError> {
        let mut body = json!({"enabled": enabled, "threshold": threshold, "pack": pack, "monthly_limit": monthly_limit});
        if let Some(t) = payment_token {
            body["payment_token"] = json!(t.expose_secret());
        }
        // Setting the same settings twice is harmless: PUT is idempotent.
        let resp = self
            .send(Retry::Safe, || {
                Ok(self.request(Method::PUT, "/v1/auto-refill")?.json(&body))
            })
            .await?;
        self.json("/v1/auto-refill", resp).await
    }

    /// Saves a card; returns the payment token (for the keychain) and what may be shown.
    /// Never retried: a card save is not idempotent, and the number must travel once.
    pub async fn add_card(
        &self,
        number: &SecretString,
        exp_month: u32,
        exp_year: i32,
        cvc: &SecretString,
    ) -> Result<(SecretString, CardSummary), ClientError> {
        #[derive(serde::Deserialize)]
        struct Saved {
            payment_token: String,
            brand: String,
            last4: String,
            exp_month: u32,
            exp_year: i32,
        }
        let body = json!({"number": number.expose_secret(), "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc.expose_secret()});
        let resp = self
            .send(Retry::Never, || {
                Ok(self
                    .request(Method::POST, "/v1/payment-methods")?
                    .json(&body))
            })
            .await?;
        let saved: Saved = self.json("/v1/payment-methods", resp).await?;
        Ok((
            SecretString::from(saved.payment_token),
            CardSummary {
                brand: saved.brand,
                last4: saved.last4,
                exp_month: saved.exp_month,
                exp_year: saved.exp_year,
            },
        ))
    }

    /// Buys credits. Retried safely: the idempotency key makes a repeat charge nothing.
    pub async fn purchase(
        &self,
        idempotency_key: &str,
        item: &PurchaseItem,
        payment_token: &SecretString,
    ) -> Result<PurchaseResult, ClientError> {
        let mut body = match item {
            PurchaseItem::Pack(p) => json!({"pack": p}),
            PurchaseItem::CustomCents(c) => json!({"custom_cents": c}),
        };
        body["payment_token"] = json!(payment_token.expose_secret());
        let resp = self
            .send(Retry::Safe, || {
                Ok(self
                    .request(Method::POST, "/v1/purchases")?
                    .header("Idempotency-Key", idempotency_key)
                    .json(&body))
            })
            .await?;
        self.json("/v1/purchases", resp).await
    }

    pub async fn report(&self, id: &str, review: &ReviewRequest) -> Result<Review, ClientError> {
        let mut body =
            serde_json::to_value(review).map_err(|e| ClientError::Invalid(e.to_string()))?;
        body["id"] = json!(id);
        if let Some(map) = body.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        let resp = self
            .send(Retry::Safe, || {
                Ok(self.request(Method::POST, "/v1/usage-reviews")?.json(&body))
            })
            .await?;
        self.json("/v1/usage-reviews", resp).await
    }

    /// Opens the live event stream, resuming after `last_event_id`.
    pub async fn events(&self, last_event_id: u64) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .http
            .get(self.url("/v1/events")?)
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            // The stream lives for hours; heartbeats every 15 s keep it honest instead.
            .timeout(Duration::from_secs(60 * 60 * 24 * 365));
        if last_event_id > 0 {
            req = req.header("Last-Event-ID", last_event_id.to_string());
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        check(resp).await
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum PurchaseItem {
    Pack(String),
    CustomCents(i64),
}

enum Read {
    TooLarge,
    Failed(reqwest::Error),
}

/// The body, or `TooLarge` as soon as it passes `limit` bytes (announced or sent): reading
/// stops there, so a server cannot make the client hold more.
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, Read> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Read::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Read::Failed)? {
        if body.len() + chunk.len() > limit {
            return Err(Read::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns an error status into a typed error with the server's code and message.
async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    // An error body larger than any api.md error is read no further and not shown.
    let bytes = read_limited(resp, limits::MAX_ERROR_BODY_BYTES)
        .await
        .unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => (
            format!("http_{}", status.as_u16()),
            format!("the server answered {status}"),
        ),
    };
    Err(ClientError::Api {
        status: status.as_u16(),
        code,
        message,
    })
}

/// Exponential backoff with full jitter: 0..(200 ms × 2^attempt), capped at 5 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    Duration::from_millis(rand::random_range(cap / 4..=cap))
}
