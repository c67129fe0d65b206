//! Hello-world Tauri 2 app with one window (benchmark baseline): the window comes from
//! tauri.conf.json and shows a static page. Logs `window ready ms=N` (milliseconds since
//! main started; the window exists) and `page loaded ms=N` to stderr.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tauri::webview::PageLoadEvent;

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn main() {
    let started = Instant::now();
    tauri::Builder::default()
        .on_page_load(move |_, payload| {
            if let PageLoadEvent::Finished = payload.event() {
                eprintln!(
                    "INFO hello_window: page loaded ms={} unix_ms={}",
                    started.elapsed().as_millis(),
                    unix_ms()
                );
            }
        })
        .setup(move |_| {
            // Windows from tauri.conf.json are built before this runs.
            eprintln!(
                "INFO hello_window: window ready ms={} unix_ms={}",
                started.elapsed().as_millis(),
                unix_ms()
            );
            Ok(())
        })
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("hello-window: {e}");
            std::process::exit(1)
        });
}
