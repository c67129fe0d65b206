//! Tauri commands: typed input, one engine call (a read through `Desktop::reader`, or a
//! write through the engine), a tray refresh after a write, typed result. The view models
//! come from creditbar_client::views: nothing here computes what the UI shows.

use creditbar_client::glance::Glance;
use secrecy::SecretString;
use tauri::{AppHandle, State};

use crate::exact::Exact;
use crate::ipc::IpcError;
use crate::state::{Desktop, LogDir};

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
    Ok(state.reader.glance())
}

/// From the cache, through the read-only handle: never waits for a sync. (Async commands
/// run off the main thread, so no read ever holds up the event loop.)
#[tauri::command]
pub async fn glance(state: State<'_, Desktop>) -> Result<Glance, IpcError> {
    Ok(state.reader.glance())
}

#[tauri::command]
pub async fn sync_now(app: AppHandle, state: State<'_, Desktop>) -> Result<Glance, IpcError> {
    state.engine.lock().await.sync().await?;
    crate::tray::render(&app).await;
    Ok(state.reader.glance())
}

#[tauri::command]
pub async fn sign_out(app: AppHandle) -> Result<(), IpcError> {
    crate::actions::sign_out(&app).await;
    Ok(())
}

use creditbar_client::alerts::AlertKind;
use creditbar_client::api::PurchaseItem;
use creditbar_client::views::{
    self, CustomQuote, DashboardView, PlanChoices, PurchaseOptions, SettingsView,
};
use creditbar_client::wire::{AutoRefill, CardSummary, ReviewRequest};
use serde::{Deserialize, Serialize};
use tauri_plugin_autostart::ManagerExt;
use ts_rs::TS;

/// The dashboard from the cache alone, through the read-only handle: the window opens at
/// once, offline too and while a sync waits on the server; the live sync keeps the cache
/// current and the window reloads on each change (the glance event).
#[tauri::command]
pub async fn dashboard(
    state: State<'_, Desktop>,
    group_by: String,
    period_days: Option<u32>,
) -> Result<Exact<DashboardView>, IpcError> {
    Ok(Exact(state.reader.dashboard(&group_by, period_days)?))
}

/// The account's usage reviews with their outcome (the server's, or the cache offline).
#[tauri::command]
pub async fn reviews(state: State<'_, Desktop>) -> Result<Exact<Vec<views::ReviewView>>, IpcError> {
    Ok(Exact(state.engine.lock().await.reviews().await?))
}

#[tauri::command]
pub async fn report_thread(
    state: State<'_, Desktop>,
    review: ReviewRequest,
) -> Result<String, IpcError> {
    Ok(state.engine.lock().await.report(&review).await?.id)
}

#[tauri::command]
pub async fn purchase_options(
    state: State<'_, Desktop>,
) -> Result<Exact<PurchaseOptions>, IpcError> {
    Ok(Exact(state.engine.lock().await.purchase_options().await?))
}

/// What a custom amount typed in the purchase dialog buys (the cached catalog's pricing).
#[tauri::command]
pub async fn quote_custom(
    state: State<'_, Desktop>,
    raw: String,
) -> Result<Exact<CustomQuote>, IpcError> {
    Ok(Exact(state.reader.quote_custom(&raw)?))
}

/// The plan chooser: the plans with the server's quote for each (network).
#[tauri::command]
pub async fn plan_choices(state: State<'_, Desktop>) -> Result<Exact<PlanChoices>, IpcError> {
    Ok(Exact(state.engine.lock().await.plan_choices().await?))
}

/// Changes the plan (paid with the saved card); returns the chooser as it is now. The
/// engine holds its lock across the change, so a second click waits and then finds the
/// plan already changed: the server is asked once per change, and an upgrade charged once.
#[tauri::command]
pub async fn change_plan(
    app: AppHandle,
    state: State<'_, Desktop>,
    plan: String,
) -> Result<Exact<PlanChoices>, IpcError> {
    let choices = {
        let mut engine = state.engine.lock().await;
        let current = engine.plan().await?;
        // The same plan again is a past-due plan's retry ("pay now"); otherwise nothing.
        if current.plan != plan || current.plan_status == "past_due" {
            engine.change_plan(&plan).await?;
        }
        engine.plan_choices().await?
    };
    crate::tray::render(&app).await;
    Ok(Exact(choices))
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

/// The settings window: the engine's view and what only the shell knows.
#[derive(Debug, Serialize, TS)]
pub struct SettingsData {
    #[serde(flatten)]
    pub view: SettingsView,
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
    let card = {
        let mut engine = state.engine.lock().await;
        // Live sync does not re-read the auto-refill settings when a refill is charged or
        // the server turns auto-refill off, so the window would show a stale count and no
        // reason: a short sync first (which also refreshes the cached catalog's packs).
        // Offline (or slow), the cache answers.
        let _ = tokio::time::timeout(SETTINGS_SYNC_WAIT, async {
            let _ = engine.sync().await;
            let _ = engine.catalog().await;
        })
        .await;
        engine.card()?
    };
    let data = SettingsData {
        view: state.reader.settings(card)?,
        launch_at_login: app.autolaunch().is_enabled().unwrap_or(false),
        log_dir: logs.0.as_ref().map(|d| d.display().to_string()),
    };
    // The sync may have changed what the tray shows (the auto-refill toggle).
    crate::tray::render(&app).await;
    Ok(Exact(data))
}

/// How long opening the settings window waits for the server before showing the cache.
const SETTINGS_SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The alert settings as the settings window sends them: the threshold as the decimal
/// string of the generated type (or a number), and each kind's switch; the engine keeps
/// only the switches away from their default.
#[derive(Debug, Deserialize)]
pub struct AlertsInput {
    #[serde(deserialize_with = "crate::exact::input::i64")]
    low_threshold: i64,
    #[serde(default)]
    kinds: std::collections::BTreeMap<AlertKind, bool>,
    #[serde(default)]
    open_purchase_at_low: bool,
    #[serde(default = "default_lead")]
    expiry_lead_hours: u32,
    /// More thresholds below the main one, µcr as decimal strings (or numbers).
    #[serde(default)]
    also_below: Vec<Micros>,
    #[serde(default)]
    number_in_icon: bool,
}

fn default_lead() -> u32 {
    creditbar_client::alerts::DEFAULT_EXPIRY_LEAD_HOURS
}

#[tauri::command]
pub async fn save_alerts(
    app: AppHandle,
    state: State<'_, Desktop>,
    alerts: AlertsInput,
) -> Result<(), IpcError> {
    let settings = views::alert_settings_from(
        alerts.low_threshold,
        &alerts.kinds,
        alerts.open_purchase_at_low,
        alerts.expiry_lead_hours,
        alerts.also_below.iter().map(|m| m.0).collect(),
        alerts.number_in_icon,
    );
    state.engine.lock().await.set_settings(&settings)?;
    // The tray's icon follows the setting at once.
    crate::tray::render(&app).await;
    Ok(())
}

/// Sets the account's timezone; returns the settings as they are now.
#[tauri::command]
pub async fn set_timezone(
    app: AppHandle,
    state: State<'_, Desktop>,
    timezone: String,
) -> Result<Exact<SettingsView>, IpcError> {
    state.engine.lock().await.set_timezone(&timezone).await?;
    let card = state.engine.lock().await.card()?;
    crate::tray::render(&app).await;
    Ok(Exact(state.reader.settings(card)?))
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
