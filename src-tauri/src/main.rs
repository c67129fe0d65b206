//! creditbar-desktop: the balance in the tray, live, quiet. A thin shell over the client
//! engine (crates/client); `--demo` embeds a server with a demo account.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod actions;
mod commands;
mod demo;
mod exact;
mod ipc;
mod state;
mod tray;
mod windows;

use std::time::{Duration, Instant};

use tauri::{Manager, RunEvent};

use crate::state::{start_watch, Desktop};

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    // WebKitGTK's accelerated compositing paints our small, static pages slowly where there
    // is no GPU to help (software GL: Xvfb, VMs, many remote desktops): the dashboard's
    // first paint took 0.3–1.4 s with it and ~20 ms without (bench/README.md, "Dashboard").
    // Nothing here animates, so the app renders without it unless the user chose otherwise.
    // Set before any thread starts (WebKit reads it when its first web view is made).
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let demo = std::env::args().any(|a| a == "--demo");
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // A second launch focuses the first.
            let kind = if app.state::<Desktop>().signed_in() { windows::Kind::Dashboard } else { windows::Kind::SignIn };
            windows::open(app, kind);
        }))
        .plugin(tauri_plugin_autostart::init(tauri_plugin_autostart::MacosLauncher::LaunchAgent, None))
        .invoke_handler(tauri::generate_handler![
            commands::sign_in,
            commands::glance,
            commands::sync_now,
            commands::sign_out,
            commands::dashboard,
            commands::report_thread,
            commands::purchase_options,
            commands::add_card,
            commands::buy,
            commands::settings,
            commands::save_alerts,
            commands::save_auto_refill,
            commands::set_launch_at_login,
            commands::open_window,
            commands::painted
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let desktop = if demo {
                let server = tauri::async_runtime::block_on(demo::start())?;
                Desktop::demo(server, started)?
            } else {
                Desktop::open(started)?
            };
            app.manage(desktop);
            app.manage(windows::Opening::default());
            tauri::async_runtime::block_on(async {
                if let Some(d) = &handle.state::<Desktop>().demo {
                    let (url, token) = (d.url.clone(), secrecy::SecretString::from(d.token.expose().to_owned()));
                    handle.state::<Desktop>().engine.lock().await.login(&url, token, false).await?;
                }
                tray::create(&handle).await?;
                anyhow::Ok(())
            })?;
            tracing::info!(ms = started.elapsed().as_millis() as u64, "tray ready");
            let signed_in = handle.state::<Desktop>().signed_in();
            if signed_in {
                start_watch(&handle);
            } else {
                windows::open(&handle, windows::Kind::SignIn);
            }
            if !tray::host_present() {
                tracing::warn!("no system tray host (org.kde.StatusNotifierWatcher) on the session bus; creditbar keeps running with its window");
                if signed_in {
                    windows::open(&handle, windows::Kind::Dashboard);
                }
            }
            // Countdowns and freshness move with time; the diff keeps this nearly free.
            let ticker = handle.clone();
            tauri::async_runtime::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    tray::render(&ticker).await;
                }
            });
            Ok(())
        })
        .build(tauri::generate_context!())?;
    app.run(|_, event| {
        // Closing the last window leaves the tray running; only Quit exits.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    Ok(())
}
