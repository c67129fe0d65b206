//! The limits of api.md "Limits every deployment has" when several processes share one
//! PostgreSQL ledger: requests per token, failed authentications per address, open event
//! streams per token. One process keeps them in memory (rate_limit.rs, events.rs); processes
//! that share a ledger must count together, or a client would get each limit once per
//! process. So they are counted in the database, in UNLOGGED tables (postgres.rs, migration
//! 2), on the database's clock.
//!
//! The rates are GCRA, as `governor` does in memory: a key's row holds its *theoretical
//! arrival time* (`tat`); a request is allowed when `max(tat, now) + interval - burst ≤ now`,
//! and then moves `tat` on by one interval. One upsert decides and records, under the row's
//! lock, so two processes never both take the last place. The per-token rate rides in the
//! statement that looks the token up, so a shared ledger pays no round trip for it.
//!
//! PostgreSQL only: these statements use its upserts' `WHERE` and advisory locks.

use chrono::{DateTime, Utc};

use super::db::{Db, Error, Result};
use crate::params;
use crate::secret::TokenHash;

/// A GCRA quota in microseconds: one request per `interval`, bursts of `burst / interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    pub interval: i64,
    pub burst: i64,
}

impl Gcra {
    /// `n` per `period` microseconds, bursts of up to `n` (governor's `Quota::per_…(n)
    /// .allow_burst(n)`).
    pub fn per(n: u32, period: i64) -> Option<Gcra> {
        let n = i64::from(n);
        if n == 0 {
            return None;
        }
        let interval = (period / n).max(1);
        Some(Gcra {
            interval,
            burst: interval * n,
        })
    }
}

/// What the store says of a request's token, from its address.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenAdmission {
    /// The address is refused for this many more microseconds (its token is not looked at).
    Blocked(i64),
    /// No such token.
    Unknown,
    /// The token's account and expiry; `within_rate` false when the token is over its rate.
    Known {
        account: String,
        expires_at: Option<DateTime<Utc>>,
        within_rate: bool,
    },
}

/// The database's clock in microseconds since the epoch: every process's limits count on
/// it, so their clocks need not agree.
const NOW: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)";

/// Looks a token up for a request from `address`, and counts the request against the
/// token's rate (`rate` None: no limit): one statement.
pub fn admit_token(
    conn: Db<'_>,
    hash: &TokenHash,
    address: &str,
    rate: Option<Gcra>,
) -> Result<TokenAdmission> {
    let (interval, burst) = rate.map_or((0, 0), |g| (g.interval, g.burst));
    let sql = format!(
        "WITH clock AS (SELECT {NOW} AS now, CAST(?3 AS BIGINT) AS t, CAST(?4 AS BIGINT) AS tau),
         blocked AS (
             SELECT f.blocked_until - clock.now AS wait FROM address_failures f, clock
             WHERE f.address = ?2 AND f.blocked_until > clock.now),
         tok AS (
             SELECT account_id, expires_at FROM tokens
             WHERE hash = ?1 AND NOT EXISTS (SELECT 1 FROM blocked)),
         rated AS (
             INSERT INTO token_rates AS r (account_id, hash, tat)
             SELECT tok.account_id, ?1, clock.now + clock.t FROM tok, clock WHERE clock.t > 0
             ON CONFLICT (account_id, hash) DO UPDATE
                 SET tat = GREATEST(r.tat, EXCLUDED.tat - ?3) + ?3
                 WHERE GREATEST(r.tat, EXCLUDED.tat - ?3) + ?3 - ?4 <= EXCLUDED.tat - ?3
             RETURNING 1)
         SELECT (SELECT wait FROM blocked), tok.account_id, tok.expires_at,
                CASE WHEN ?3 = 0 OR EXISTS (SELECT 1 FROM rated) THEN 1 ELSE 0 END
         FROM (SELECT 1) AS one LEFT JOIN tok ON TRUE"
    );
    let row: (Option<i64>, Option<String>, Option<String>, i64) = conn
        .prepare_cached(&sql)?
        .query_row(params![hash.0.as_slice(), address, interval, burst], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    Ok(match row {
        (Some(wait), _, _, _) => TokenAdmission::Blocked(wait),
        (None, None, _, _) => TokenAdmission::Unknown,
        (None, Some(account), expires_at, within) => TokenAdmission::Known {
            account,
            expires_at: expires_at.as_deref().map(super::parse_ts).transpose()?,
            within_rate: within == 1,
        },
    })
}

/// How many more microseconds `address` is refused, if it is (for requests that look no
/// token up: the admin token is compared in memory).
pub fn blocked_for(conn: Db<'_>, address: &str) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT blocked_until - {NOW} FROM address_failures
         WHERE address = ?1 AND blocked_until > {NOW}"
    );
    conn.prepare_cached(&sql)?
        .query_opt(params![address], |r| r.get(0))
}

/// Counts a failed authentication from `address`; how many microseconds it is now refused,
/// if this failure put it (or found it) over its quota. At least a second: `Retry-After`
/// counts whole seconds.
pub fn count_failure(conn: Db<'_>, address: &str, quota: Gcra) -> Result<Option<i64>> {
    // g = the tat this failure would move to; conforming when g - burst <= now.
    // (EXCLUDED.tat - ?2 is now: the inserted row's tat is now + interval.)
    let sql = format!(
        "INSERT INTO address_failures AS f (address, tat, blocked_until)
         SELECT ?1, c.now + CAST(?2 AS BIGINT), 0 FROM (SELECT {NOW} AS now) c
         ON CONFLICT (address) DO UPDATE SET
           tat = CASE
               WHEN GREATEST(f.tat, EXCLUDED.tat - ?2) + ?2 - ?3 <= EXCLUDED.tat - ?2
               THEN GREATEST(f.tat, EXCLUDED.tat - ?2) + ?2
               ELSE f.tat END,
           blocked_until = CASE
               WHEN GREATEST(f.tat, EXCLUDED.tat - ?2) + ?2 - ?3 <= EXCLUDED.tat - ?2
               THEN f.blocked_until
               ELSE GREATEST(f.blocked_until, EXCLUDED.tat - ?2 + GREATEST(
                   GREATEST(f.tat, EXCLUDED.tat - ?2) + ?2 - ?3 - (EXCLUDED.tat - ?2),
                   1000000)) END
         RETURNING f.blocked_until - {NOW}"
    );
    let left: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params![address, quota.interval, quota.burst], |r| r.get(0))?;
    Ok((left > 0).then_some(left))
}

/// Takes one of a token's `max` stream places for this process's stream `id`, unless they
/// are all taken; a place is held until `lease` microseconds from now (renewed by
/// `renew_streams`), so a process that dies frees its places when their lease runs out.
pub fn open_stream(
    conn: Db<'_>,
    account: &str,
    hash: &TokenHash,
    process: &str,
    id: &str,
    max: usize,
    lease: i64,
) -> Result<bool> {
    let Db::Pg(session) = conn else {
        return Err(Error::corrupt("open_stream", "PostgreSQL only"));
    };
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    // Counting and taking must not interleave with another process's: a lock per token.
    let mut key = [0u8; 8];
    key.copy_from_slice(&hash.0[..8]);
    let key = i64::from_be_bytes(key);
    session.begin();
    let taken = (|| {
        conn.prepare_cached("SELECT pg_advisory_xact_lock(?1)")?
            .execute_deferred(params![key])?;
        let sql = format!(
            "WITH clock AS (SELECT {NOW} AS now),
             gone AS (
                 DELETE FROM open_streams s USING clock
                 WHERE s.account_id = ?1 AND s.hash = ?2 AND s.lease_until < clock.now)
             INSERT INTO open_streams (account_id, hash, process, id, lease_until)
             SELECT ?1, ?2, ?3, ?4, clock.now + CAST(?5 AS BIGINT) FROM clock
             WHERE (SELECT COUNT(*) FROM open_streams s
                    WHERE s.account_id = ?1 AND s.hash = ?2 AND s.lease_until >= clock.now)
                   < ?6"
        );
        conn.prepare_cached(&sql)?.execute(params![
            account,
            hash.0.as_slice(),
            process,
            id,
            lease,
            max
        ])
    })();
    match taken {
        Ok(n) => {
            session.commit()?;
            Ok(n == 1)
        }
        Err(e) => {
            let _ = session.rollback();
            Err(e)
        }
    }
}

/// Gives a stream's place back.
pub fn close_stream(
    conn: Db<'_>,
    account: &str,
    hash: &TokenHash,
    process: &str,
    id: &str,
) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM open_streams WHERE account_id = ?1 AND hash = ?2 AND process = ?3 AND id = ?4",
    )?
    .execute(params![account, hash.0.as_slice(), process, id])?;
    Ok(())
}

/// Extends the leases of this process's open streams to `lease` microseconds from now.
pub fn renew_streams(conn: Db<'_>, process: &str, lease: i64) -> Result<()> {
    let sql = format!(
        "UPDATE open_streams SET lease_until = {NOW} + CAST(?2 AS BIGINT) WHERE process = ?1"
    );
    conn.prepare_cached(&sql)?
        .execute(params![process, lease])?;
    Ok(())
}

/// Forgets what limits no one any more: rates back at their full burst, blocks and
/// failures past, streams whose lease ran out.
pub fn prune(conn: Db<'_>) -> Result<()> {
    for sql in [
        format!("DELETE FROM token_rates WHERE tat < {NOW}"),
        format!("DELETE FROM address_failures WHERE tat < {NOW} AND blocked_until < {NOW}"),
        format!("DELETE FROM open_streams WHERE lease_until < {NOW}"),
    ] {
        conn.prepare_cached(&sql)?.execute(params![])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_governors() {
        assert_eq!(Gcra::per(0, 1_000_000), None);
        assert_eq!(
            Gcra::per(100, 1_000_000),
            Some(Gcra {
                interval: 10_000,
                burst: 1_000_000
            })
        );
        assert_eq!(
            Gcra::per(30, 60_000_000),
            Some(Gcra {
                interval: 2_000_000,
                burst: 60_000_000
            })
        );
    }
}
