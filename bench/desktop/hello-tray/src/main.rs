//! Hello-world tray-only Tauri 2 app (benchmark baseline): a tray icon with a two-item
//! menu, no window, and closing nothing quits it (only its Quit item does). Logs
//! `tray ready ms=N` (milliseconds since main started) to stderr like creditbar-desktop.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::RunEvent;

fn main() {
    let started = Instant::now();
    let app = tauri::Builder::default()
        .setup(move |app| {
            let hello = MenuItem::with_id(app, "hello", "Hello", true, None::<&str>)?;
            let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
            let menu = Menu::with_items(app, &[&hello, &quit])?;
            let icon = Image::from_bytes(include_bytes!("../../../../icons/tray-healthy.png"))?;
            TrayIconBuilder::with_id("hello")
                .icon(icon)
                .title("hello")
                .tooltip("hello")
                .menu(&menu)
                .show_menu_on_left_click(true)
                .on_menu_event(|app, event| {
                    if event.id().as_ref() == "quit" {
                        app.exit(0);
                    }
                })
                .build(app)?;
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            eprintln!(
                "INFO hello_tray: tray ready ms={} unix_ms={unix_ms}",
                started.elapsed().as_millis()
            );
            Ok(())
        })
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("hello-tray: {e}");
            std::process::exit(1)
        });
    app.run(|_, event| {
        if let RunEvent::ExitRequested { code: None, api, .. } = event {
            api.prevent_exit();
        }
    });
}
