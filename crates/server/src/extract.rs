//! Request extractors: authentication, JSON bodies with errors that name the field,
//! pagination. Every rejection becomes an `ApiError`, so every error has api.md's shape.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::admission::{self, Admission};
use crate::app::App;
use crate::error::ApiError;
use crate::secret::TokenHash;

fn bearer(parts: &Parts) -> Option<TokenHash> {
    bearer_hash(&parts.headers)
}

/// The hash of a request's bearer token, if it has a well-formed one.
pub fn bearer_hash(headers: &axum::http::HeaderMap) -> Option<TokenHash> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer x` is as good as `Bearer x`.
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    if token.is_empty() || token.len() > 512 {
        return None;
    }
    Some(TokenHash::of(token))
}

/// The address the request came from (the serve loop records it on every request; a
/// request built without it, in a unit test, counts as loopback).
fn client_addr(parts: &Parts) -> std::net::IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST))
}

/// The account a request's bearer token belongs to.
pub struct AccountId(pub String);

impl<S> FromRequestParts<S> for AccountId
where
    App: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = App::from_ref(state);
        let addr = client_addr(parts);
        // (A shared store is asked with the token's own lookup, in `admit`.)
        admission::refuse_blocked(&app, addr, false).await?;
        let Some(hash) = bearer(parts) else {
            return Err(admission::failed(&app, addr).await);
        };
        match admission::admit(&app, &hash, addr).await? {
            Admission::Account(account) => Ok(AccountId(account)),
            Admission::Unknown => Err(admission::failed(&app, addr).await),
            Admission::Blocked(wait) => Err(ApiError::AuthBlocked(admission::retry_secs(wait))),
            Admission::OverRate => Err(ApiError::RateLimited),
        }
    }
}

/// A request made with the admin token.
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    App: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = App::from_ref(state);
        let addr = client_addr(parts);
        admission::refuse_blocked(&app, addr, true).await?;
        let Some(hash) = bearer(parts).filter(|h| h.matches(&app.admin)) else {
            return Err(admission::failed(&app, addr).await);
        };
        // The admin token's rate is this process's (it is one operator's, not a client's).
        if !app.rate.allow(&hash) {
            return Err(ApiError::RateLimited);
        }
        Ok(Admin)
    }
}

/// A JSON body. Errors name the offending field (`input_tokens: invalid type ...`), bodies
/// over the limit are 413, and unknown fields are refused by the types themselves.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::invalid(format!("body: {}", e.body_text()))
                }
            })?;
        parse_json(&bytes).map(Body)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid("body: a JSON object is required"));
    }
    // Most bodies are fine: parse them plainly, and parse again with path tracking only to
    // name the field of an error.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // `?` is serde_path_to_error's unknown position (a syntax error between fields).
        if path.is_empty() || path == "." || path == "?" {
            ApiError::invalid(format!("body: {inner}"))
        } else {
            ApiError::invalid(format!("{path}: {inner}"))
        }
    })
}

/// The idempotency fingerprint of a request: SHA-256 of its canonical JSON, so formatting
/// and field order do not matter.
pub fn body_hash<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // The canonical JSON goes straight into the hash (no buffer). If serialising failed
    // half-way the hash would be of a prefix; as before, a failure hashes no bytes at all.
    let mut hasher = HashWriter(Sha256::new());
    match serde_json::to_writer(&mut hasher, value) {
        Ok(()) => hasher.0.finalize().to_vec(),
        Err(_) => Sha256::digest([]).to_vec(),
    }
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Cursor from a previous page's `next`.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub after: Option<String>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A list's `limit` (api.md: 1..=1000, default 100), validated.
pub fn page_limit(limit: Option<i64>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit: must be between 1 and 1000"));
    }
    Ok(limit as u32)
}

impl PageQuery {
    /// (cursor, limit), validated.
    pub fn resolve(&self) -> Result<(i64, u32), ApiError> {
        let limit = page_limit(self.limit)?;
        let after = match &self.after {
            None => 0,
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::invalid("after: not a cursor from this list"))?,
        };
        Ok((after, limit))
    }
}

/// A path parameter with api.md's error shape (axum's own rejection is plain text), e.g.
/// for an id that is not valid UTF-8 once percent-decoded.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e| ApiError::invalid(format!("path: {}", e.body_text())))
    }
}

/// Query string extraction with api.md's error shape.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_from(q).map(Query)
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::invalid("query: malformed"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| ApiError::invalid(format!("query: {}", e.body_text())))
}
