//! What the tray menu's actions do: a few lines each over the engine and the windows.

use tauri::{AppHandle, Manager};

use crate::live::{start_watch, stop_watch};
use crate::state::Desktop;
use crate::windows;

pub fn on_menu(app: &AppHandle, id: &str) {
    let app = app.clone();
    match id {
        "quit" => app.exit(0),
        "sign_in" => windows::open(&app, windows::Kind::SignIn),
        "dashboard" => windows::open(&app, windows::Kind::Dashboard),
        "buy" => windows::open(&app, windows::Kind::Purchase),
        "auto_refill_setup" => windows::open(&app, windows::Kind::Settings),
        "sync" => {
            tauri::async_runtime::spawn(async move {
                let state = app.state::<Desktop>();
                let result = state.engine.lock().await.sync().await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "sync failed");
                }
                crate::tray::render(&app).await;
            });
        }
        "auto_refill" => {
            tauri::async_runtime::spawn(async move {
                let state = app.state::<Desktop>();
                let on = state.reader.glance().auto_refill_on;
                if let Some(on) = on {
                    let result = state.engine.lock().await.toggle_auto_refill(!on).await;
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "auto-refill toggle failed");
                    }
                }
                crate::tray::render(&app).await;
            });
        }
        "sign_out" => {
            tauri::async_runtime::spawn(async move {
                sign_out(&app).await;
            });
        }
        _ => {}
    }
}

pub async fn sign_out(app: &AppHandle) {
    stop_watch(app);
    let state = app.state::<Desktop>();
    if let Err(e) = state.engine.lock().await.logout() {
        tracing::warn!(error = %e, "sign out failed");
    }
    crate::tray::render(app).await;
    windows::open(app, windows::Kind::SignIn);
}

/// Live sync starts; the sign-in window stays and turns into the signed-in glance, so the
/// person sees their balance at once and closes it when they like.
pub fn after_sign_in(app: &AppHandle) {
    start_watch(app);
}
