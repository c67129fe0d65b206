//! What crosses the IPC boundary: the one serialisable error of every command, and the
//! TypeScript declarations of the types the UI receives, generated from Rust (ts-rs) into
//! ui/src/generated so they are never written twice.

use serde::Serialize;
use ts_rs::TS;

use creditbar_client::ClientError;

/// Every command's error: a code the UI can branch on and a sentence it can show.
#[derive(Debug, Clone, Serialize, TS)]
pub struct IpcError {
    pub code: String,
    pub message: String,
}

impl From<ClientError> for IpcError {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Api { code, .. } => code.clone(),
            ClientError::Unreachable { .. } => "unreachable".into(),
            ClientError::Decode { .. } => "bad_response".into(),
            ClientError::Cleartext { .. } => "insecure_http".into(),
            ClientError::TooMuch { .. } => "server_sent_too_much".into(),
            ClientError::NotSignedIn => "not_signed_in".into(),
            ClientError::NoCard => "no_card".into(),
            ClientError::KeychainUnavailable { .. } => "keychain_unavailable".into(),
            ClientError::Keychain(_) => "keychain".into(),
            ClientError::Cache(_) => "cache".into(),
            ClientError::Invalid(_) => "invalid".into(),
        };
        IpcError {
            code,
            message: e.to_string(),
        }
    }
}

/// Writes (or, with `check`, compares) the UI's generated declarations. Returns the names
/// of files that differ. Called by the test below.
#[cfg_attr(not(test), allow(dead_code))]
pub fn export_types(dir: &std::path::Path, check: bool) -> std::io::Result<Vec<String>> {
    use creditbar_client::{alerts, engine, glance, wire};
    // 64-bit integers cross as decimal strings (crate::exact), and are declared so.
    let cfg = ts_rs::Config::new().with_large_int("string");
    let decls: Vec<(&str, Result<String, ts_rs::ExportError>)> = vec![
        ("IpcError", IpcError::export_to_string(&cfg)),
        ("Glance", glance::Glance::export_to_string(&cfg)),
        ("Level", engine::Level::export_to_string(&cfg)),
        ("Status", engine::Status::export_to_string(&cfg)),
        ("Account", wire::Account::export_to_string(&cfg)),
        ("Balance", wire::Balance::export_to_string(&cfg)),
        ("Buckets", wire::Buckets::export_to_string(&cfg)),
        ("BucketBalance", wire::BucketBalance::export_to_string(&cfg)),
        ("UsageGroup", wire::UsageGroup::export_to_string(&cfg)),
        ("Purchase", wire::Purchase::export_to_string(&cfg)),
        ("AutoRefill", wire::AutoRefill::export_to_string(&cfg)),
        ("CardSummary", wire::CardSummary::export_to_string(&cfg)),
        ("Catalog", wire::Catalog::export_to_string(&cfg)),
        ("Pack", wire::Pack::export_to_string(&cfg)),
        ("CustomPricing", wire::CustomPricing::export_to_string(&cfg)),
        ("AlertKind", alerts::AlertKind::export_to_string(&cfg)),
        (
            "AlertSettings",
            alerts::AlertSettings::export_to_string(&cfg),
        ),
        ("ReviewRequest", wire::ReviewRequest::export_to_string(&cfg)),
        (
            "DashboardData",
            crate::commands::DashboardData::export_to_string(&cfg),
        ),
        (
            "FirstDashboard",
            crate::commands::FirstDashboard::export_to_string(&cfg),
        ),
        (
            "PurchaseOptions",
            crate::commands::PurchaseOptions::export_to_string(&cfg),
        ),
        (
            "PurchaseChoice",
            crate::commands::PurchaseChoice::export_to_string(&cfg),
        ),
        (
            "PurchaseOutcome",
            crate::commands::PurchaseOutcome::export_to_string(&cfg),
        ),
        (
            "SettingsData",
            crate::commands::SettingsData::export_to_string(&cfg),
        ),
    ];
    std::fs::create_dir_all(dir)?;
    let mut differing = Vec::new();
    for (name, decl) in decls {
        let decl = decl.map_err(std::io::Error::other)?;
        let path = dir.join(format!("{name}.ts"));
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != decl {
            differing.push(name.to_owned());
            if !check {
                std::fs::write(&path, decl)?;
            }
        }
    }
    Ok(differing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The UI compiles against ui/src/generated; it must match the Rust types. Run with
    /// CREDITBAR_WRITE_TS=1 to regenerate.
    #[test]
    fn the_ui_types_match_the_rust_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/generated");
        let write = std::env::var_os("CREDITBAR_WRITE_TS").is_some();
        let differing = super::export_types(&dir, !write).unwrap();
        assert!(
            write || differing.is_empty(),
            "out of date: {differing:?}; run CREDITBAR_WRITE_TS=1 cargo test -p creditbar-desktop"
        );
    }
}
