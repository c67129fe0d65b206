fn main() {
    // Declaring the app's commands makes Tauri generate one permission per command, so each
    // window's capability can grant exactly the commands that window uses.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "sign_in",
            "glance",
            "sync_now",
            "sign_out",
            "dashboard",
            "report_thread",
            "reviews",
            "purchase_options",
            "quote_custom",
            "plan_choices",
            "change_plan",
            "set_timezone",
            "add_card",
            "buy",
            "settings",
            "save_alerts",
            "save_auto_refill",
            "set_launch_at_login",
            "open_window",
            "painted",
            "open_logs",
        ]),
    ))
    .unwrap_or_else(|e| panic!("tauri build: {e:#}"));
}
