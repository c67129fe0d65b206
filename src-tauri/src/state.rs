//! The app's state: one engine for commands, a live-sync task with its own engine (its
//! own cache connection; SQLite WAL lets both work at once), and the demo server if any.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use creditbar_client::keychain::{Keychain, SecretStore};
use creditbar_client::notify::{DesktopNotifier, Notifier};
use creditbar_client::{ClientError, Engine};
use tauri::{AppHandle, Manager};

#[cfg(feature = "demo")]
use crate::demo::DemoServer;

/// The log directory `creditbar_client::logs::init` made, if any.
pub struct LogDir(pub Option<PathBuf>);

pub struct Desktop {
    pub engine: tokio::sync::Mutex<Engine>,
    pub data_dir: PathBuf,
    pub secrets: Arc<dyn SecretStore>,
    pub watch: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// Keeps the embedded server (and its temporary database) alive in `--demo`.
    #[cfg(feature = "demo")]
    pub demo: Option<DemoServer>,
}

fn clock() -> creditbar_client::engine::Clock {
    Arc::new(chrono::Utc::now)
}

impl Desktop {
    /// The real app: the user's data directory and the OS keychain.
    pub fn open(started: Instant) -> Result<Desktop, ClientError> {
        let data_dir = creditbar_client::engine::data_dir()?;
        Self::with(data_dir, Arc::new(Keychain), started)
    }

    /// `--demo`: a throwaway data directory and an in-memory secret store, so nothing of
    /// the demo lands in the user's real cache or keychain.
    #[cfg(feature = "demo")]
    pub fn demo(demo: DemoServer, started: Instant) -> Result<Desktop, ClientError> {
        let data_dir = demo.dir.path().join("client");
        let mut desktop = Self::with(
            data_dir,
            Arc::new(creditbar_client::keychain::MemoryStore::default()),
            started,
        )?;
        desktop.demo = Some(demo);
        Ok(desktop)
    }

    fn with(
        data_dir: PathBuf,
        secrets: Arc<dyn SecretStore>,
        started: Instant,
    ) -> Result<Desktop, ClientError> {
        let (engine, opened) = Engine::open(&data_dir, Box::new(secrets.clone()), clock())?;
        if let creditbar_client::cache::Opened::Rebuilt { set_aside, reason } = opened {
            tracing::warn!(%reason, set_aside = %set_aside.display(), "the cache was unreadable and is rebuilt");
        }
        let _ = started;
        Ok(Desktop {
            engine: tokio::sync::Mutex::new(engine),
            data_dir,
            secrets,
            watch: Mutex::new(None),
            #[cfg(feature = "demo")]
            demo: None,
        })
    }

    pub fn signed_in(&self) -> bool {
        self.engine
            .try_lock()
            .map(|e| e.status().map(|s| s.server.is_some()).unwrap_or(false))
            .unwrap_or(true)
    }
}

/// Raises notifications natively and re-renders the tray after live sync changed the cache.
struct ShellNotifier {
    app: AppHandle,
}

impl Notifier for ShellNotifier {
    fn show(&self, alert: &creditbar_client::alerts::Alert) -> Result<(), ClientError> {
        tracing::info!(title = %alert.title, "notification");
        DesktopNotifier.show(alert)
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
    *slot = Some(tauri::async_runtime::spawn(async move {
        let mut engine = match Engine::open(&dir, Box::new(secrets), clock()) {
            Ok((e, _)) => e,
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
