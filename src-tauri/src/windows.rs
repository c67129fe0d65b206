//! The app's windows. Each is created on demand and destroyed when closed, so the app idles
//! as a tray process with no web view at all.
//!
//! The dashboard is built with its first data already in the page: the app reads its first
//! view from the cache (~9 ms over 100,000 usage events) and hands it to the new web view
//! as an initialization script, so the page paints without waiting on an IPC round trip
//! (docs/desktop.md, "Opening the dashboard").

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use creditbar_client::views::{DashboardView, FIRST_GROUP_BY, FIRST_PERIOD_DAYS};
use serde::Serialize;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};
use ts_rs::TS;

use crate::exact::Exact;
use crate::state::Desktop;

/// The dashboard's first data as a script for its new web view, which sets
/// `window.__CREDITBAR_FIRST__` before the page's code runs. Read through the cache's
/// read-only handle, so a running sync never holds the window back. None when the cache
/// cannot be read: the page then asks over IPC, as it does for every later reload.
pub fn first_dashboard(app: &AppHandle) -> Option<String> {
    let state = app.try_state::<Desktop>()?;
    let data = state
        .reader
        .dashboard(FIRST_GROUP_BY, Some(FIRST_PERIOD_DAYS))
        .map_err(|e| tracing::debug!(error = %e, "no first data for the dashboard"))
        .ok()?;
    first_script(data)
}

/// The dashboard's data handed to its new page before the page's code runs.
#[derive(Debug, Serialize, TS)]
pub struct FirstDashboard {
    pub group_by: String,
    pub period_days: Option<u32>,
    pub data: DashboardView,
}

/// `window.__CREDITBAR_FIRST__ = FirstDashboard` as JavaScript. The JSON travels as a
/// string literal through `JSON.parse`, so nothing in it is ever read as code.
fn first_script(data: DashboardView) -> Option<String> {
    let first = FirstDashboard {
        group_by: FIRST_GROUP_BY.into(),
        period_days: Some(FIRST_PERIOD_DAYS),
        data,
    };
    // Exact, like every command's answer: the page reads the same types either way.
    let json = serde_json::to_string(&Exact(&first)).ok()?;
    let literal = serde_json::to_string(&json).ok()?;
    Some(format!(
        "window.__CREDITBAR_FIRST__ = JSON.parse({literal});"
    ))
}

/// Windows being opened: those still being built (a second request while one is being
/// built only waits for it) and, by label, when each window still waiting for its first
/// paint was asked for — open → first paint is the figure the dashboard benchmark reads
/// from the log (bench/README.md).
#[derive(Default)]
pub struct Opening {
    asked: Mutex<HashMap<String, SystemTime>>,
    building: Mutex<HashSet<&'static str>>,
}

/// When a page says it painted, measured on the page's own clock.
pub struct Painted {
    /// Wall-clock time of the painted frame (the page's `performance.timeOrigin + now()`).
    pub at_ms: f64,
    /// Wall-clock time the page's navigation started (`performance.timeOrigin`).
    pub origin_ms: f64,
}

/// How a window's opening went, for the log line.
pub struct OpeningTimes {
    /// Open request → painted frame.
    pub paint: Duration,
    /// Open request → the page's navigation start: making the window and its web process.
    pub navigation: Duration,
    /// Open request → this report arriving over IPC.
    pub reported: Duration,
}

fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn since(asked_ms: f64, at_ms: f64) -> Duration {
    Duration::try_from_secs_f64((at_ms - asked_ms) / 1000.0).unwrap_or_default()
}

impl Opening {
    /// How long `label`'s opening took, once: later paints of the same window are not an
    /// opening.
    pub fn painted(&self, label: &str, page: Painted) -> Option<OpeningTimes> {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        let at = asked.remove(label)?;
        let asked_ms = epoch_ms(at);
        Some(OpeningTimes {
            paint: since(asked_ms, page.at_ms),
            navigation: since(asked_ms, page.origin_ms),
            reported: at.elapsed().unwrap_or_default(),
        })
    }

    /// False when `label` is already being built.
    fn begin(&self, label: &'static str) -> bool {
        let mut building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if !building.insert(label) {
            return false;
        }
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked.insert(label.to_owned(), SystemTime::now());
        true
    }

    fn end(&self, label: &'static str, built: bool) {
        self.building
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(label);
        if !built {
            let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
            asked.remove(label);
        }
    }
}

#[derive(Clone, Copy)]
pub enum Kind {
    SignIn,
    Dashboard,
    Purchase,
    Settings,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::SignIn => "signin",
            Kind::Dashboard => "dashboard",
            Kind::Purchase => "purchase",
            Kind::Settings => "settings",
        }
    }
}

/// Shows the window of `kind`: brings it forward if it is open, builds it otherwise.
pub fn open(app: &AppHandle, kind: Kind) {
    if let Some(w) = app.get_webview_window(kind.label()) {
        let _ = w.unminimize();
        let _ = w.set_focus();
        return;
    }
    let Some(opening) = app.try_state::<Opening>() else {
        build(app, kind, None);
        return;
    };
    if !opening.begin(kind.label()) {
        return;
    }
    match kind {
        Kind::Dashboard => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let started = std::time::Instant::now();
                let first = first_dashboard(&app);
                let read = started.elapsed();
                let built = build(&app, kind, first.as_deref());
                tracing::debug!(
                    first_data_ms = read.as_secs_f64() * 1000.0,
                    first_bytes = first.as_ref().map_or(0, |s| s.len()),
                    built_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "dashboard window built"
                );
                app.state::<Opening>().end(kind.label(), built);
            });
        }
        _ => {
            let built = build(app, kind, None);
            opening.end(kind.label(), built);
        }
    }
}

/// Builds the window; `script` runs in its page before the page's own code.
fn build(app: &AppHandle, kind: Kind, script: Option<&str>) -> bool {
    let (title, w, h, page) = match kind {
        Kind::SignIn => ("Sign in to creditbar", 440.0, 420.0, "signin.html"),
        Kind::Dashboard => ("creditbar — dashboard", 980.0, 760.0, "dashboard.html"),
        Kind::Purchase => ("Buy credits", 460.0, 620.0, "purchase.html"),
        Kind::Settings => ("creditbar — settings", 560.0, 700.0, "settings.html"),
    };
    let mut builder = WebviewWindowBuilder::new(app, kind.label(), WebviewUrl::App(page.into()))
        .title(title)
        .inner_size(w, h)
        .min_inner_size(360.0, 320.0);
    if let Some(script) = script {
        builder = builder.initialization_script(script);
    }
    match builder.build() {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open a window");
            false
        }
    }
}
