//! A per-token rate limit: a token bucket refilled at `rate` requests per second, holding
//! up to `rate` (so a burst of one second is allowed). Wall-clock time, not the test clock:
//! it protects the server, it is not a credit rule.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::secret::TokenHash;

pub struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<TokenHash, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` = 0 turns the limit off.
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn allow(&self, token: &TokenHash) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets.entry(*token).or_insert((self.rate, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
