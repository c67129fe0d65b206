//! The creditbar client engine: API client, OS keychain, offline SQLite cache, live sync,
//! the notification policy and its native delivery. The `creditbar` CLI and the desktop app
//! are thin shells over `Engine`. It speaks HTTP to the server and never imports it.

pub mod alerts;
pub mod api;
pub mod cache;
pub mod engine;
pub mod error;
pub mod format;
pub mod glance;
pub mod keychain;
pub mod limits;
pub mod logs;
pub mod notify;
pub mod sse;
pub mod views;
pub mod wire;

pub use engine::{Engine, Level, Status};
pub use error::ClientError;
