//! The app's windows. Each is created on demand and destroyed when closed, so the app idles
//! as a tray process with no web view at all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

/// When each window still waiting for its first paint was asked for, by label: open →
/// first paint is the figure the dashboard benchmark reads from the log (bench/README.md).
#[derive(Default)]
pub struct Opening(Mutex<HashMap<String, Instant>>);

impl Opening {
    /// The time since `label` was opened, once: later paints of the same window are not
    /// an opening.
    pub fn painted(&self, label: &str) -> Option<std::time::Duration> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(label).map(|at| at.elapsed())
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

pub fn open(app: &AppHandle, kind: Kind) {
    if let Some(w) = app.get_webview_window(kind.label()) {
        let _ = w.unminimize();
        let _ = w.set_focus();
        return;
    }
    let asked = Instant::now();
    let (title, w, h, page) = match kind {
        Kind::SignIn => ("Sign in to creditbar", 440.0, 420.0, "signin.html"),
        Kind::Dashboard => ("creditbar — dashboard", 980.0, 760.0, "dashboard.html"),
        Kind::Purchase => ("Buy credits", 460.0, 620.0, "purchase.html"),
        Kind::Settings => ("creditbar — settings", 560.0, 700.0, "settings.html"),
    };
    let built = WebviewWindowBuilder::new(app, kind.label(), WebviewUrl::App(page.into()))
        .title(title)
        .inner_size(w, h)
        .min_inner_size(360.0, 320.0)
        .build();
    match built {
        Ok(_) => {
            if let Some(opening) = app.try_state::<Opening>() {
                let mut open = opening.0.lock().unwrap_or_else(|e| e.into_inner());
                open.insert(kind.label().to_owned(), asked);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot open a window"),
    }
}
