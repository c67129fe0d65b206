//! creditbar-desktop: the balance in the tray, live, quiet. A thin shell over the client
//! engine (crates/client); `--demo` (cargo feature `demo`) embeds a server with a demo
//! account.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod actions;
mod badge;
mod commands;
#[cfg(feature = "demo")]
mod demo;
mod exact;
mod ipc;
mod live;
mod state;
mod tray;
#[cfg(test)]
mod typescript;
mod windows;

use std::time::{Duration, Instant};

use clap::Parser;
use tauri::{Manager, RunEvent};

use crate::live::start_watch;
use crate::state::Desktop;

/// creditbar-desktop: your AI credits in the system tray, live.
///
/// Shows the balance in the tray, raises notifications (low balance, resets, auto-refill)
/// and opens the dashboard, purchase and settings windows from the tray menu. Sign in from
/// the window that opens on first start; the `creditbar` command-line tool shares the
/// sign-in and the offline cache.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Run against an embedded demo server (a temporary database, the test payment gateway
    /// and a demo account holding a month of usage) instead of your account.
    #[cfg(feature = "demo")]
    #[arg(long)]
    demo: bool,
    /// Passed by WebKitWebDriver when it starts the app for automated tests.
    #[arg(long, hide = true)]
    automation: bool,
}

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    // Before anything else, so `--help`/`--version` print and exit without a window.
    let args = Args::parse();
    // WebKitGTK's accelerated compositing paints our small, static pages slowly where there
    // is no GPU to help (software GL: Xvfb, VMs, many remote desktops): the dashboard's
    // first paint took 0.3–1.4 s with it and ~20 ms without (bench/README.md, "Dashboard").
    // Nothing here animates, so the app renders without it unless the user chose otherwise.
    // Set before any thread starts (WebKit reads it when its first web view is made).
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
    // Standard error and a rotated file in the XDG state directory: an app started at
    // login has nobody reading its standard error.
    let log_dir = creditbar_client::logs::init("creditbar-desktop", "info");
    if let Some(dir) = &log_dir {
        tracing::info!(version = env!("CARGO_PKG_VERSION"), dir = %dir.display(), "logging");
    }
    #[cfg(feature = "demo")]
    let demo = args.demo;
    #[cfg(not(feature = "demo"))]
    let demo = false;
    let _ = args.automation;
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
            commands::reviews,
            commands::purchase_options,
            commands::quote_custom,
            commands::plan_choices,
            commands::change_plan,
            commands::set_timezone,
            commands::add_card,
            commands::buy,
            commands::settings,
            commands::save_alerts,
            commands::save_auto_refill,
            commands::set_launch_at_login,
            commands::open_window,
            commands::painted,
            commands::open_logs
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let desktop = if demo {
                demo_desktop(started)?
            } else {
                Desktop::open(started)?
            };
            app.manage(desktop);
            app.manage(state::LogDir(log_dir.clone()));
            app.manage(windows::Opening::default());
            tauri::async_runtime::block_on(async {
                #[cfg(feature = "demo")]
                demo_sign_in(&handle).await?;
                tray::create(&handle, actions::on_menu).await?;
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

/// Signs the app's engine in to the embedded server with the demo account's token.
#[cfg(feature = "demo")]
async fn demo_sign_in(app: &tauri::AppHandle) -> anyhow::Result<()> {
    let desktop = app.state::<Desktop>();
    if let Some(d) = &desktop.demo {
        let token = secrecy::SecretString::from(d.token.expose().to_owned());
        desktop
            .engine
            .lock()
            .await
            .login(&d.url, token, false)
            .await?;
    }
    Ok(())
}

#[cfg(feature = "demo")]
fn demo_desktop(started: Instant) -> anyhow::Result<Desktop> {
    let server = tauri::async_runtime::block_on(demo::start())?;
    Ok(Desktop::demo(server, started)?)
}

#[cfg(not(feature = "demo"))]
fn demo_desktop(_started: Instant) -> anyhow::Result<Desktop> {
    anyhow::bail!("this build has no --demo (built without the `demo` feature)")
}
