//! Where the app and the CLI log: standard error as before, and a file in the user's state
//! directory (`$XDG_STATE_HOME/creditbar/logs`, i.e. `~/.local/state/creditbar/logs`),
//! rotated daily with the last 7 days kept, so an app started at login (whose standard
//! error goes nowhere) still leaves its log where a user or a bug report can find it.

use std::path::PathBuf;

use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::ClientError;

/// Log files kept per program (one a day).
pub const KEEP_DAYS: usize = 7;

/// The log directory: `CREDITBAR_LOG_DIR`; else `logs` in `CREDITBAR_DATA_DIR` when that is
/// set (tests and throwaway runs keep everything in one place); else the XDG state
/// directory's `creditbar/logs`.
pub fn log_dir() -> Result<PathBuf, ClientError> {
    if let Some(d) = std::env::var_os("CREDITBAR_LOG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("CREDITBAR_DATA_DIR") {
        return Ok(PathBuf::from(d).join("logs"));
    }
    let dirs = directories::ProjectDirs::from("dev", "creditbar", "creditbar")
        .ok_or_else(|| ClientError::Invalid("no home directory: set CREDITBAR_LOG_DIR".into()))?;
    // `state_dir` is Linux's XDG state directory; elsewhere the data directory stands in.
    let base = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir());
    Ok(base.join("logs"))
}

/// Installs the global subscriber: `RUST_LOG` (else `stderr_default`) on standard error,
/// `RUST_LOG` (else `info`) in `<log dir>/<program>.<date>.log`. Returns the log directory,
/// or None when it could not be made (then only standard error is logged, and a warning
/// says why).
pub fn init(program: &str, stderr_default: &str) -> Option<PathBuf> {
    let filter = |default: &str| {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter(stderr_default));
    let file = log_dir().and_then(|dir| {
        // Made here first: tracing-appender lists the directory to prune old files before
        // it creates it, and prints an error on standard error when it is missing.
        std::fs::create_dir_all(&dir)
            .map_err(|e| ClientError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        let appender = RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix(program)
            .filename_suffix("log")
            .max_log_files(KEEP_DAYS)
            .build(&dir)
            .map_err(|e| ClientError::Invalid(format!("cannot log to {}: {e}", dir.display())))?;
        Ok((dir, appender))
    });
    match file {
        Ok((dir, appender)) => {
            let file = tracing_subscriber::fmt::layer()
                .with_writer(appender)
                .with_ansi(false)
                .with_filter(filter("info"));
            tracing_subscriber::registry()
                .with(stderr)
                .with(file)
                .init();
            Some(dir)
        }
        Err(e) => {
            tracing_subscriber::registry().with(stderr).init();
            tracing::warn!(error = %e, "logging to standard error only");
            None
        }
    }
}
