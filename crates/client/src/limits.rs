//! How much the client takes from a server before it stops reading. The server is trusted
//! with the account, not with the client's memory: a broken or hostile server that sends
//! more gets a clear error naming the limit, and the cache keeps answering. Each limit is
//! far above what api.md's answers need (docs/desktop.md, "Limits on what the server sends").

/// One answer's body. The largest api.md answers are pages of at most 1,000 items
/// (usage events: ~300 bytes each, so ~300 KiB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The body of an error answer: a `{error: {code, message}}` of a few hundred bytes.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// One event of the live stream (a notice or a balance: well under 2 KiB).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Events the live stream may bring in one second. The server sends one per committed
/// change; a reconnect replays only the notices since the sync that precedes it.
pub const MAX_EVENTS_PER_SECOND: u32 = 1_000;

/// Events decoded and held in memory before they are written to the cache together.
pub const MAX_EVENTS_PER_BATCH: usize = 256;

/// `8 MiB`, `64 KiB`: a limit for people.
pub fn bytes(n: usize) -> String {
    match n {
        n if n >= 1024 * 1024 && n % (1024 * 1024) == 0 => format!("{} MiB", n / (1024 * 1024)),
        n if n >= 1024 && n % 1024 == 0 => format!("{} KiB", n / 1024),
        n => format!("{n} bytes"),
    }
}

/// Usage reviews a client lists: far more than a person files, and a bound on a server that
/// pages forever.
pub const MAX_REVIEWS: usize = 10_000;
