//! Test-only fault points of the payment machine: with the `fault-injection` feature (on
//! for the server's own tests, off in every build people run), `CREDITBAR_FAULT=<point>`
//! kills the process with SIGKILL at that point, as a power cut or an OOM kill would.
//! Without the feature these are empty functions.

/// The steps of an intent at which the process can die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The request was checked; nothing is recorded yet.
    BeforeRecord,
    /// The intent is recorded (pending, fsynced); the processor has not been asked.
    AfterRecord,
    /// The processor answered; the outcome is not recorded.
    AfterCharge,
    /// The outcome is recorded; the client has not been answered.
    AfterOutcome,
}

impl Point {
    pub fn name(self) -> &'static str {
        match self {
            Point::BeforeRecord => "before_record",
            Point::AfterRecord => "after_record",
            Point::AfterCharge => "after_charge",
            Point::AfterOutcome => "after_outcome",
        }
    }
}

/// Dies here if this run was told to.
pub fn at(point: Point) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("CREDITBAR_FAULT").is_ok_and(|v| v == point.name()) {
        eprintln!("fault injected: killed at {}", point.name());
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = point;
}
