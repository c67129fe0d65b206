//! The app's state: one engine for commands (the writer, which may wait on the network),
//! a read-only view of the same cache for every read (the tray, the windows' data), a
//! live-sync task with its own engine (its own cache connection; SQLite WAL lets all three
//! work at once), and the demo server if any.
//!
//! The shell's modules are layered, each using only those above it: `state` → `tray` →
//! `windows` → `live` → `actions` → `commands` → `main`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use creditbar_client::engine::ServerSkew;
use creditbar_client::keychain::{Keychain, SecretStore};
use creditbar_client::views::Reader;
use creditbar_client::{ClientError, Engine};

#[cfg(feature = "demo")]
use crate::demo::DemoServer;

/// The log directory `creditbar_client::logs::init` made, if any.
pub struct LogDir(pub Option<PathBuf>);

pub struct Desktop {
    /// Writes and network calls; held across them.
    pub engine: tokio::sync::Mutex<Engine>,
    /// Reads: never waits for `engine`.
    pub reader: Reader,
    pub data_dir: PathBuf,
    pub secrets: Arc<dyn SecretStore>,
    pub watch: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// The server's clock as measured by any of the app's engines: the command engine, the
    /// live-sync engine and the reader all run on the server's time (docs/desktop.md).
    pub skew: ServerSkew,
    /// Keeps the embedded server (and its temporary database) alive in `--demo`.
    #[cfg(feature = "demo")]
    pub demo: Option<DemoServer>,
}

pub fn clock() -> creditbar_client::engine::Clock {
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
        let skew = ServerSkew::default();
        let engine = engine.with_server_skew(skew.clone());
        if let creditbar_client::cache::Opened::Rebuilt { set_aside, reason } = opened {
            tracing::warn!(%reason, set_aside = %set_aside.display(), "the cache was unreadable and is rebuilt");
        }
        let _ = started;
        let reader = engine.reader()?;
        Ok(Desktop {
            engine: tokio::sync::Mutex::new(engine),
            reader,
            data_dir,
            secrets,
            watch: Mutex::new(None),
            skew,
            #[cfg(feature = "demo")]
            demo: None,
        })
    }

    /// From the cache: never waits for a sync.
    pub fn signed_in(&self) -> bool {
        self.reader.signed_in()
    }
}
