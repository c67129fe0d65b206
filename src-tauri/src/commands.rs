//! Tauri commands: typed input, one engine call, typed result.

use creditbar_client::glance::{glance as glance_of, Glance};
use secrecy::SecretString;
use tauri::{AppHandle, Manager, State};

use crate::exact::Exact;
use crate::ipc::IpcError;
use crate::state::{Desktop, LogDir};

async fn current(state: &Desktop) -> Result<Glance, IpcError> {
    let engine = state.engine.lock().await;
    let status = engine.status()?;
    Ok(glance_of(&status, engine.auto_refill()?.as_ref()))
}

/// Signs in; the token goes straight to the keychain through the engine. Plain http:// to
/// another machine needs the window's explicit "Allow unencrypted http" (`allow_insecure_http`).
#[tauri::command]
pub async fn sign_in(
    app: AppHandle,
    state: State<'_, Desktop>,
    server: String,
    token: String,
    allow_insecure_http: bool,
) -> Result<Glance, IpcError> {
    state
        .engine
        .lock()
        .await
        .login(&server, SecretString::from(token), allow_insecure_http)
        .await?;
    crate::actions::after_sign_in(&app);
    crate::tray::render(&app).await;
    current(&state).await
}

#[tauri::command]
pub async fn glance(state: State<'_, Desktop>) -> Result<Glance, IpcError> {
    current(&state).await
}

#[tauri::command]
pub async fn sync_now(app: AppHandle, state: State<'_, Desktop>) -> Result<Glance, IpcError> {
    state.engine.lock().await.sync().await?;
    crate::tray::render(&app).await;
    current(&state).await
}

#[tauri::command]
pub async fn sign_out(app: AppHandle) -> Result<(), IpcError> {
    crate::actions::sign_out(&app).await;
    Ok(())
}

use creditbar_client::alerts::AlertSettings;
use creditbar_client::api::PurchaseItem;
use creditbar_client::wire::{
    AutoRefill, CardSummary, Catalog, Purchase, ReviewRequest, UsageGroup,
};
use creditbar_client::Status;
use serde::{Deserialize, Serialize};
use tauri_plugin_autostart::ManagerExt;
use ts_rs::TS;

/// Everything the dashboard shows, from the cache alone (the live sync keeps it current).
#[derive(Debug, Serialize, TS)]
pub struct DashboardData {
    pub status: Status,
    pub glance: Glance,
    /// The chosen grouping within the period.
    pub groups: Vec<UsageGroup>,
    /// Spending per day in the period, for the chart and the forecast.
    pub days: Vec<UsageGroup>,
    /// False when the cache is stale (the server has not answered lately).
    pub fresh: bool,
    pub purchases: Vec<Purchase>,
    pub timezone: String,
}

/// What the dashboard shows first: usage by day over the last 30 days. The page starts
/// from the same choice (`ui/src/dashboard/Dashboard.svelte`).
pub const FIRST_GROUP_BY: &str = "day";
pub const FIRST_PERIOD_DAYS: u32 = 30;

#[tauri::command]
pub async fn dashboard(
    state: State<'_, Desktop>,
    group_by: String,
    period_days: Option<u32>,
) -> Result<Exact<DashboardData>, IpcError> {
    // From the cache only: the window opens at once, offline too; the live sync keeps the
    // cache current and the window reloads on each change (the glance event).
    dashboard_data(&*state.engine.lock().await, &group_by, period_days).map(Exact)
}

fn dashboard_data(
    engine: &creditbar_client::Engine,
    group_by: &str,
    period_days: Option<u32>,
) -> Result<DashboardData, IpcError> {
    let started = std::time::Instant::now();
    let groups = engine.usage_in(group_by, period_days)?;
    let days = if group_by == "day" {
        groups.clone()
    } else {
        engine.usage_in("day", period_days)?
    };
    let status = engine.status()?;
    let fresh = !status.stale;
    let glance = glance_of(&status, engine.auto_refill()?.as_ref());
    let timezone = status
        .account
        .as_ref()
        .map(|a| a.timezone.clone())
        .unwrap_or_else(|| "UTC".into());
    let purchases = engine.cache().purchases()?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        rows = groups.len(),
        "dashboard data read"
    );
    Ok(DashboardData {
        status,
        glance,
        groups,
        days,
        fresh,
        purchases,
        timezone,
    })
}

/// The dashboard's first data as a script for its new web view (`windows::open`), which
/// sets `window.__CREDITBAR_FIRST__` before the page's code runs. None when the engine is
/// busy (a sync holds it) or the cache cannot be read: the page then asks over IPC, as it
/// does for every later reload.
pub async fn first_dashboard(app: &AppHandle) -> Option<String> {
    let state = app.try_state::<Desktop>()?;
    // Waiting for a running sync would hold the window back; the page can wait instead.
    let engine = tokio::time::timeout(std::time::Duration::from_millis(50), state.engine.lock())
        .await
        .ok()?;
    let data = dashboard_data(&engine, FIRST_GROUP_BY, Some(FIRST_PERIOD_DAYS))
        .map_err(|e| tracing::debug!(error = %e.message, "no first data for the dashboard"))
        .ok()?;
    drop(engine);
    first_script(data)
}

/// The dashboard's data handed to its new page before the page's code runs.
#[derive(Debug, Serialize, TS)]
pub struct FirstDashboard {
    pub group_by: String,
    pub period_days: Option<u32>,
    pub data: DashboardData,
}

/// `window.__CREDITBAR_FIRST__ = FirstDashboard` as JavaScript. The JSON travels as a
/// string literal through `JSON.parse`, so nothing in it is ever read as code.
fn first_script(data: DashboardData) -> Option<String> {
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

#[tauri::command]
pub async fn report_thread(
    state: State<'_, Desktop>,
    review: ReviewRequest,
) -> Result<String, IpcError> {
    Ok(state.engine.lock().await.report(&review).await?.id)
}

#[derive(Debug, Serialize, TS)]
pub struct PurchaseOptions {
    pub catalog: Catalog,
    pub card: Option<CardSummary>,
    pub available: Option<i64>,
}

#[tauri::command]
pub async fn purchase_options(
    state: State<'_, Desktop>,
) -> Result<Exact<PurchaseOptions>, IpcError> {
    let mut engine = state.engine.lock().await;
    let catalog = engine.catalog().await?;
    let available = engine.status()?.balance.map(|b| b.available);
    Ok(Exact(PurchaseOptions {
        catalog,
        card: engine.card()?,
        available,
    }))
}

/// The number and CVC pass through once to the engine; only the payment token is kept,
/// in the keychain.
#[tauri::command]
pub async fn add_card(
    state: State<'_, Desktop>,
    number: String,
    exp_month: u32,
    exp_year: i32,
    cvc: String,
) -> Result<CardSummary, IpcError> {
    let mut engine = state.engine.lock().await;
    Ok(engine
        .add_card(
            SecretString::from(number),
            exp_month,
            exp_year,
            SecretString::from(cvc),
        )
        .await?)
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseChoice {
    Pack(String),
    /// Cents as the decimal string of the other 64-bit amounts (or a number).
    CustomCents(#[ts(type = "string")] Micros),
}

#[derive(Debug, Serialize, TS)]
pub struct PurchaseOutcome {
    pub credits: i64,
    pub price_cents: i64,
    pub available: i64,
}

/// Buys with the dialog's key: one key per opened dialog, so a double click or a retry in
/// the same dialog buys once.
#[tauri::command]
pub async fn buy(
    app: AppHandle,
    state: State<'_, Desktop>,
    key: String,
    choice: PurchaseChoice,
) -> Result<Exact<PurchaseOutcome>, IpcError> {
    let item = match choice {
        PurchaseChoice::Pack(p) => PurchaseItem::Pack(p),
        PurchaseChoice::CustomCents(c) => PurchaseItem::CustomCents(c.0),
    };
    let r = state.engine.lock().await.buy_with_key(&key, item).await?;
    crate::tray::render(&app).await;
    Ok(Exact(PurchaseOutcome {
        credits: r.credits,
        price_cents: r.price_cents,
        available: r.balance.available,
    }))
}

#[derive(Debug, Serialize, TS)]
pub struct SettingsData {
    pub alerts: AlertSettings,
    pub auto_refill: Option<AutoRefill>,
    pub card: Option<CardSummary>,
    pub packs: Vec<creditbar_client::wire::Pack>,
    pub launch_at_login: bool,
    /// Where the app writes its log (the XDG state directory), shown under "Open logs";
    /// None when it could not be made (then the log goes to standard error only).
    pub log_dir: Option<String>,
}

#[tauri::command]
pub async fn settings(
    app: AppHandle,
    state: State<'_, Desktop>,
    logs: State<'_, LogDir>,
) -> Result<Exact<SettingsData>, IpcError> {
    let data = {
        let mut engine = state.engine.lock().await;
        // Live sync does not re-read the auto-refill settings when a refill is charged or
        // the server turns auto-refill off, so the window would show a stale count and no
        // reason: a short sync first. Offline (or slow), the cache answers.
        let _ = tokio::time::timeout(SETTINGS_SYNC_WAIT, engine.sync()).await;
        let packs = engine.catalog().await.map(|c| c.packs).unwrap_or_default();
        SettingsData {
            alerts: engine.settings()?,
            auto_refill: engine.auto_refill()?,
            card: engine.card()?,
            packs,
            launch_at_login: app.autolaunch().is_enabled().unwrap_or(false),
            log_dir: logs.0.as_ref().map(|d| d.display().to_string()),
        }
    };
    // The sync may have changed what the tray shows (the auto-refill toggle).
    crate::tray::render(&app).await;
    Ok(Exact(data))
}

/// How long opening the settings window waits for the server before showing the cache.
const SETTINGS_SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The alert settings as the settings window sends them: `AlertSettings` with its threshold
/// as the decimal string of the generated type (or a number).
#[derive(Debug, Deserialize)]
pub struct AlertsInput {
    #[serde(deserialize_with = "crate::exact::input::i64")]
    low_threshold: i64,
    #[serde(default)]
    overrides: std::collections::BTreeMap<creditbar_client::alerts::AlertKind, bool>,
}

#[tauri::command]
pub async fn save_alerts(state: State<'_, Desktop>, alerts: AlertsInput) -> Result<(), IpcError> {
    let alerts = AlertSettings {
        low_threshold: alerts.low_threshold,
        overrides: alerts.overrides,
    };
    Ok(state.engine.lock().await.set_settings(&alerts)?)
}

/// A 64-bit amount from the UI (micro-credits, cents): a decimal string, or a number.
#[derive(Debug, Clone, Deserialize)]
pub struct Micros(#[serde(deserialize_with = "crate::exact::input::i64")] pub i64);

#[tauri::command]
pub async fn save_auto_refill(
    app: AppHandle,
    state: State<'_, Desktop>,
    enabled: bool,
    threshold: Micros,
    pack: String,
    monthly_limit: u32,
) -> Result<Exact<AutoRefill>, IpcError> {
    let a = state
        .engine
        .lock()
        .await
        .set_auto_refill(enabled, threshold.0, &pack, monthly_limit)
        .await?;
    crate::tray::render(&app).await;
    Ok(Exact(a))
}

#[tauri::command]
pub fn set_launch_at_login(app: AppHandle, on: bool) -> Result<bool, IpcError> {
    let launcher = app.autolaunch();
    let result = if on {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| IpcError {
        code: "autostart".into(),
        message: format!("launch at login: {e}"),
    })?;
    Ok(launcher.is_enabled().unwrap_or(on))
}

/// Opens the log directory in the file manager (`xdg-open`, the desktop's own choice).
#[tauri::command]
pub fn open_logs(logs: State<'_, LogDir>) -> Result<(), IpcError> {
    let dir = logs.0.as_ref().ok_or_else(|| IpcError {
        code: "logs".into(),
        message: "the app logs to standard error only: its log directory could not be made".into(),
    })?;
    std::process::Command::new("xdg-open")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| IpcError {
            code: "logs".into(),
            message: format!("cannot open {} (xdg-open: {e})", dir.display()),
        })?;
    Ok(())
}

/// The page's first paint with its data (two animation frames after it rendered): logs how
/// long the window took from being asked for, once per opening. The times are the page's
/// own wall clock (`performance.timeOrigin` + `now()`), so the IPC call that reports them
/// is not counted.
#[tauri::command]
pub fn painted(
    window: tauri::WebviewWindow,
    opening: State<'_, crate::windows::Opening>,
    at_ms: f64,
    origin_ms: f64,
    marks: Option<String>,
) {
    let page = crate::windows::Painted { at_ms, origin_ms };
    if let Some(took) = opening.painted(window.label(), page) {
        tracing::info!(
            window = window.label(),
            ms = took.paint.as_millis() as u64,
            navigation_ms = took.navigation.as_millis() as u64,
            reported_ms = took.reported.as_millis() as u64,
            marks = marks.as_deref().unwrap_or(""),
            "window painted"
        );
    }
}

#[tauri::command]
pub fn open_window(app: AppHandle, which: String) -> Result<(), IpcError> {
    let kind = match which.as_str() {
        "dashboard" => crate::windows::Kind::Dashboard,
        "purchase" => crate::windows::Kind::Purchase,
        "settings" => crate::windows::Kind::Settings,
        other => {
            return Err(IpcError {
                code: "invalid".into(),
                message: format!("no window called {other}"),
            })
        }
    };
    crate::windows::open(&app, kind);
    Ok(())
}
