//! The TypeScript declarations of the types the UI receives, generated from Rust (ts-rs)
//! into ui/src/generated so they are never written twice. Test-only: the top of the
//! shell's layers, it sees every type that crosses the IPC boundary.

use ts_rs::TS;

/// Writes (or, with `check`, compares) the UI's generated declarations. Returns the names
/// of files that differ. Called by the test below.
#[cfg_attr(not(test), allow(dead_code))]
pub fn export_types(dir: &std::path::Path, check: bool) -> std::io::Result<Vec<String>> {
    use creditbar_client::{alerts, engine, glance, views, wire};
    // 64-bit integers cross as decimal strings (crate::exact), and are declared so.
    let cfg = ts_rs::Config::new().with_large_int("string");
    let decls: Vec<(&str, Result<String, ts_rs::ExportError>)> = vec![
        ("IpcError", crate::ipc::IpcError::export_to_string(&cfg)),
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
            "DashboardView",
            views::DashboardView::export_to_string(&cfg),
        ),
        ("Forecast", views::Forecast::export_to_string(&cfg)),
        ("Lot", views::Lot::export_to_string(&cfg)),
        ("ReviewView", views::ReviewView::export_to_string(&cfg)),
        ("Charge", views::Charge::export_to_string(&cfg)),
        ("BucketAmount", views::BucketAmount::export_to_string(&cfg)),
        ("About", views::About::export_to_string(&cfg)),
        ("SettingsView", views::SettingsView::export_to_string(&cfg)),
        ("AlertChoice", views::AlertChoice::export_to_string(&cfg)),
        (
            "PurchaseOptions",
            views::PurchaseOptions::export_to_string(&cfg),
        ),
        ("CustomQuote", views::CustomQuote::export_to_string(&cfg)),
        ("PlanChoices", views::PlanChoices::export_to_string(&cfg)),
        ("PlanChoice", views::PlanChoice::export_to_string(&cfg)),
        (
            "FirstDashboard",
            crate::windows::FirstDashboard::export_to_string(&cfg),
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
