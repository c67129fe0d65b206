//! Rate limits that protect the server (wall-clock time, not the test clock: they are not
//! credit rules), on `governor`'s GCRA limiters:
//!
//! - per token: `rate` requests per second, bursts of up to `rate`;
//! - per client address, failed authentication: `auth_failures` per minute, bursts of as
//!   many. An address over it gets 429 with `Retry-After` on every authenticated route
//!   until then, before its token is even looked at, so guessing stops being possible
//!   rather than merely answered differently.
//!
//! Processes that share a PostgreSQL ledger count both in the database instead
//! (store/shared_limits.rs, admission.rs): the same quotas, held together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::secret::TokenHash;
use crate::store::shared_limits::Gcra;

pub struct RateLimiter {
    /// The quotas as configured, for a shared ledger that counts them in the database
    /// (store/shared_limits.rs) instead of in the limiters below.
    pub token_quota: Option<Gcra>,
    pub failure_quota: Option<Gcra>,
    per_token: Option<DefaultKeyedRateLimiter<TokenHash>>,
    auth_failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses over the failure limit, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl RateLimiter {
    /// `rate` requests per second per token, `auth_failures` failed authentications per
    /// minute per address; 0 turns either off.
    pub fn new(rate: u32, auth_failures: u32) -> Self {
        RateLimiter {
            token_quota: Gcra::per(rate, 1_000_000),
            failure_quota: Gcra::per(auth_failures, 60_000_000),
            per_token: NonZeroU32::new(rate)
                .map(|r| DefaultKeyedRateLimiter::keyed(Quota::per_second(r).allow_burst(r))),
            auth_failures: NonZeroU32::new(auth_failures)
                .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n).allow_burst(n))),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a request of this token may go on now.
    pub fn allow(&self, token: &TokenHash) -> bool {
        match &self.per_token {
            Some(l) => l.check_key(token).is_ok(),
            None => true,
        }
    }

    /// How long an address must wait before it may authenticate again, if it must.
    pub fn blocked_for(&self, addr: IpAddr) -> Option<Duration> {
        let addr = key(addr);
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(&addr)?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failed authentication; returns how long the address must now wait, if the
    /// failure put it over its limit.
    pub fn failed(&self, addr: IpAddr) -> Option<Duration> {
        let limiter = self.auth_failures.as_ref()?;
        let addr = key(addr);
        let wait = limiter
            .check_key(&addr)
            .err()?
            .wait_time_from(DefaultClock::default().now());
        // At least a second: Retry-After counts in whole seconds.
        let wait = wait.max(Duration::from_secs(1));
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr, Instant::now() + wait);
        Some(wait)
    }

    /// Remembers a block the shared store decided, so this process refuses the address
    /// before asking the store again.
    pub fn block(&self, addr: IpAddr, wait: Duration) {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key(addr), Instant::now() + wait);
    }

    /// Forgets what no longer limits anyone (the scheduler calls it), so the maps stay as
    /// small as the set of recent clients.
    pub fn prune(&self) {
        if let Some(l) = &self.per_token {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.auth_failures {
            l.retain_recent();
            l.shrink_to_fit();
        }
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}

/// The key of an address: an IPv6 client usually holds a whole /64, so that is one key.
pub fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_over_the_burst_block_the_address_only() {
        let l = RateLimiter::new(0, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([10, 0, 0, 1]));
        let b: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([10, 0, 0, 2]));
        assert!((0..3).all(|_| l.failed(a).is_none()));
        assert!(l.blocked_for(a).is_none());
        let wait = l.failed(a);
        assert!(wait.is_some_and(|w| w >= Duration::from_secs(1)));
        assert!(l.blocked_for(a).is_some());
        assert!(l.blocked_for(b).is_none());
        assert!(l.allow(&TokenHash::of("x")), "0 = no per-token limit");
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap_or(IpAddr::from([0u16; 8]));
        let y: IpAddr = "2001:db8:1:2::ffff"
            .parse()
            .unwrap_or(IpAddr::from([0u16; 8]));
        assert_eq!(key(x), key(y));
    }
}
