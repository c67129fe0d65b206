//! Live sync: a task with its own engine following the server, raising notifications and
//! re-rendering the tray when the cache changed.

use creditbar_client::alerts::AlertAction;
use creditbar_client::notify::{show_with_actions, Notifier};
use creditbar_client::{ClientError, Engine};
use tauri::{AppHandle, Manager};

use crate::state::{clock, Desktop};

/// Raises notifications natively and re-renders the tray after live sync changed the cache.
struct ShellNotifier {
    app: AppHandle,
}

impl Notifier for ShellNotifier {
    /// Buying moments carry "Buy credits" / "Open dashboard", which open the window from
    /// the notification; with the opt-in `open_purchase_at_low`, the purchase dialog opens
    /// at once as well.
    fn show(&self, alert: &creditbar_client::alerts::Alert) -> Result<(), ClientError> {
        tracing::info!(title = %alert.title, "notification");
        let app = self.app.clone();
        let shown = show_with_actions(alert, move |action| {
            tracing::info!(action = action.key(), "notification action");
            let kind = match action {
                AlertAction::Buy => crate::windows::Kind::Purchase,
                AlertAction::OpenDashboard => crate::windows::Kind::Dashboard,
            };
            let on_main = app.clone();
            if let Err(e) = app.run_on_main_thread(move || crate::windows::open(&on_main, kind)) {
                tracing::warn!(error = %e, "cannot open the window of a notification action");
            }
        });
        if alert.is_buying_moment()
            && !alert
                .kinds
                .contains(&creditbar_client::alerts::AlertKind::RefillFailed)
        {
            let state = self.app.state::<Desktop>();
            if state
                .reader
                .alert_settings()
                .is_ok_and(|s| s.open_purchase_at_low)
            {
                let app = self.app.clone();
                let _ = self.app.run_on_main_thread(move || {
                    crate::windows::open(&app, crate::windows::Kind::Purchase)
                });
            }
        }
        shown
    }

    fn changed(&self) {
        let app = self.app.clone();
        tauri::async_runtime::spawn(async move { crate::tray::render(&app).await });
    }
}

/// (Re)starts live sync.
pub fn start_watch(app: &AppHandle) {
    let state = app.state::<Desktop>();
    let mut slot = state.watch.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(old) = slot.take() {
        old.abort();
    }
    let (dir, secrets, app2) = (state.data_dir.clone(), state.secrets.clone(), app.clone());
    let skew = state.skew.clone();
    *slot = Some(tauri::async_runtime::spawn(async move {
        let mut engine = match Engine::open(&dir, Box::new(secrets), clock()) {
            Ok((e, _)) => e.with_server_skew(skew),
            Err(e) => return tracing::error!(error = %e, "live sync cannot open the cache"),
        };
        let notifier = ShellNotifier { app: app2 };
        if let Err(e) = engine.watch(&notifier, std::future::pending()).await {
            tracing::warn!(error = %e, "live sync stopped");
        }
    }));
}

pub fn stop_watch(app: &AppHandle) {
    let state = app.state::<Desktop>();
    let running = state.watch.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(h) = running {
        h.abort();
    }
}
