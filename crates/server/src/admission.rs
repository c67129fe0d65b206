//! Who may make a request: its token, the limits of its address and of its token (api.md
//! "Limits every deployment has"). One process decides in memory (rate_limit.rs, the token
//! cache); processes sharing a PostgreSQL ledger decide in the database
//! (store/shared_limits.rs), so a client gets each limit once, not once per process.

use std::net::IpAddr;
use std::time::Duration;

use crate::app::App;
use crate::error::ApiError;
use crate::secret::TokenHash;
use crate::store::shared_limits::{self, TokenAdmission};

/// What a request's token may do.
pub enum Admission {
    Account(String),
    /// No such token, or an expired one.
    Unknown,
    /// The address failed authentication too often; refused for this long.
    Blocked(Duration),
    /// The token is over its rate.
    OverRate,
}

/// Looks the token up and counts the request against its rate.
pub async fn admit(app: &App, token: &TokenHash, addr: IpAddr) -> Result<Admission, ApiError> {
    if !app.shared {
        let Some(account) = app.authenticate(token).await? else {
            return Ok(Admission::Unknown);
        };
        if !app.rate.allow(token) {
            return Ok(Admission::OverRate);
        }
        return Ok(Admission::Account(account));
    }
    let (hash, address, quota) = (*token, address_key(addr), app.rate.token_quota);
    let found = app
        .read(move |c| shared_limits::admit_token(c, &hash, &address, quota))
        .await?;
    Ok(match found {
        TokenAdmission::Blocked(us) => {
            let wait = micros(us);
            app.rate.block(addr, wait);
            Admission::Blocked(wait)
        }
        TokenAdmission::Unknown => Admission::Unknown,
        TokenAdmission::Known {
            expires_at: Some(at),
            ..
        } if at <= app.clock.now() => Admission::Unknown,
        TokenAdmission::Known {
            within_rate: false, ..
        } => Admission::OverRate,
        TokenAdmission::Known { account, .. } => {
            app.note_use(token);
            Admission::Account(account)
        }
    })
}

/// 429 for an address that failed authentication too often, before any token is looked
/// at: this process's own record, then (shared ledger, when `ask_store`) the database's.
pub async fn refuse_blocked(app: &App, addr: IpAddr, ask_store: bool) -> Result<(), ApiError> {
    if let Some(wait) = app.rate.blocked_for(addr) {
        return Err(ApiError::AuthBlocked(retry_secs(wait)));
    }
    if app.shared && ask_store && app.rate.failure_quota.is_some() {
        let address = address_key(addr);
        if let Some(us) = app
            .read(move |c| shared_limits::blocked_for(c, &address))
            .await?
        {
            let wait = micros(us);
            app.rate.block(addr, wait);
            return Err(ApiError::AuthBlocked(retry_secs(wait)));
        }
    }
    Ok(())
}

/// Counts a failed authentication: the answer is 401, or 429 once the address is over its
/// limit (503 if a shared store cannot count it).
pub async fn failed(app: &App, addr: IpAddr) -> ApiError {
    let wait = match (app.shared, app.rate.failure_quota) {
        (true, Some(quota)) => {
            let address = address_key(addr);
            match app
                .read(move |c| shared_limits::count_failure(c, &address, quota))
                .await
            {
                Ok(found) => found.map(|us| {
                    let wait = micros(us);
                    app.rate.block(addr, wait);
                    wait
                }),
                Err(e) => return e,
            }
        }
        (true, None) => None,
        (false, _) => app.rate.failed(addr),
    };
    match wait {
        Some(wait) => {
            tracing::warn!(%addr, "failed authentications over the limit; address refused for a while");
            ApiError::AuthBlocked(retry_secs(wait))
        }
        None => ApiError::Unauthorized,
    }
}

/// An address as the shared store keys it: its limiting key (an IPv6 client's /64).
fn address_key(addr: IpAddr) -> String {
    crate::rate_limit::key(addr).to_string()
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// `Retry-After` counts whole seconds, rounded up.
pub fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
