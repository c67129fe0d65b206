//! The server's notion of "now". The system clock in production; with `--test-clock` a
//! clock that only moves when an admin moves it, so black-box tests never sleep.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

#[derive(Clone)]
pub enum Clock {
    System,
    /// Milliseconds since the epoch, moved by `POST /v1/admin/clock`.
    Test(Arc<AtomicI64>),
}

impl Clock {
    pub fn test_starting_at(now: DateTime<Utc>) -> Clock {
        Clock::Test(Arc::new(AtomicI64::new(now.timestamp_millis())))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Test(ms) => {
                DateTime::from_timestamp_millis(ms.load(Ordering::SeqCst)).unwrap_or_default()
            }
        }
    }

    pub fn is_test(&self) -> bool {
        matches!(self, Clock::Test(_))
    }

    /// Moves a test clock forward to `to`. Refuses to go backwards: the ledger is ordered
    /// by time.
    pub fn set(&self, to: DateTime<Utc>) -> Result<(), &'static str> {
        match self {
            Clock::System => Err("the server was not started with --test-clock"),
            Clock::Test(ms) => {
                let to = to.timestamp_millis();
                let mut current = ms.load(Ordering::SeqCst);
                loop {
                    if to < current {
                        return Err("time cannot go backwards");
                    }
                    match ms.compare_exchange(current, to, Ordering::SeqCst, Ordering::SeqCst) {
                        Ok(_) => return Ok(()),
                        Err(seen) => current = seen,
                    }
                }
            }
        }
    }
}
