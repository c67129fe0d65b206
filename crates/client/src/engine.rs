//! The client engine: what the CLI and the desktop app do, without a window. It owns the
//! cache, reaches the keychain for secrets, talks to the server, and runs the alert policy.
//! Reads answer from the cache; writes go to the server and then refresh the cache.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use secrecy::SecretString;
use serde::Serialize;

use crate::alerts::{self, Alert, AlertSettings, AlertState};
use crate::api::{self, ApiClient, Conditional, PurchaseItem};
use crate::cache::{doc, meta, Cache, Opened};
use crate::error::ClientError;
use crate::keychain::{Item, SecretStore};
use crate::notify::Notifier;
use crate::sse::SseParser;
use crate::wire::*;

/// A read older than this is stale: `watch` hears a heartbeat every 15 s.
pub const STALE_AFTER_SECONDS: i64 = 60;

/// The longest lead time of the "expiring soon" alert: a month.
pub const MAX_EXPIRY_LEAD_HOURS: u32 = 31 * 24;

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Clocks within this of the server's are taken as agreeing: an HTTP `Date` has whole
/// seconds, so a smaller difference is measurement noise, not skew.
pub const SKEW_DEAD_BAND_MS: i64 = 2_000;

/// While the event stream is quiet, how often the server's clock is read again (a
/// conditional `GET /v1/balance`: a 304 of a few bytes carrying its `Date`).
pub const CLOCK_CHECK_EVERY: Duration = Duration::from_secs(60);

/// How far the server's clock is ahead of this machine's (negative: behind), in ms.
/// Deadlines are the server's (a renewal, a lot's expiry, the daily reset), so countdowns
/// and the "expiring soon" warning run on the server's time: this machine's clock plus
/// the skew, measured at every balance read. Cloned handles share one value, so every
/// engine and reader of a process that are given the same handle agree.
#[derive(Clone, Debug, Default)]
pub struct ServerSkew(Arc<AtomicI64>);

impl ServerSkew {
    pub fn millis(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Records a reading: the server's clock said `server` when this machine's said
    /// `local`. Within the dead band the clocks agree (skew 0), and a reading within it
    /// of the skew already held changes nothing (a `Date` has whole seconds: the reading
    /// wobbles by up to one). Returns the skew if it changed.
    pub fn record(&self, server: DateTime<Utc>, local: DateTime<Utc>) -> Option<i64> {
        let ms = (server - local).num_milliseconds();
        let ms = if ms.abs() < SKEW_DEAD_BAND_MS { 0 } else { ms };
        let before = self.millis();
        if (ms - before).abs() < SKEW_DEAD_BAND_MS && (ms == 0) == (before == 0) {
            return None;
        }
        self.set(ms);
        tracing::info!(skew_ms = ms, "following the server's clock");
        Some(ms)
    }

    fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    /// `base` corrected to the server's time.
    pub fn corrected(&self, base: Clock) -> Clock {
        let skew = self.clone();
        Arc::new(move || base() + chrono::Duration::milliseconds(skew.millis()))
    }
}

pub struct Engine {
    cache: Cache,
    secrets: Box<dyn SecretStore>,
    /// This machine's clock (injected in tests).
    local_clock: Clock,
    skew: ServerSkew,
    /// `local_clock` corrected by `skew`: the server's time, which every rule uses.
    clock: Clock,
    /// The data directory: the cache, and beside it the server address of the sign-in.
    dir: PathBuf,
}

/// The file beside the cache that remembers which server the keychain token belongs to, so
/// a cache that had to be rebuilt can be refilled without signing in again. Its first line
/// is the address; a second line `allow-insecure-http` records that choice with it.
const SERVER_FILE: &str = "server-url";
const INSECURE_MARK: &str = "allow-insecure-http";

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Low,
    Empty,
    Stale,
}

impl Level {
    /// Exit code of `creditbar status`: 0 ok, 10 low, 11 empty, 12 stale (1 and 2 stay
    /// free for errors and usage errors).
    pub fn exit_code(self) -> i32 {
        match self {
            Level::Ok => 0,
            Level::Low => 10,
            Level::Empty => 11,
            Level::Stale => 12,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub server: Option<String>,
    pub account: Option<Account>,
    pub balance: Option<Balance>,
    pub last_contact: Option<DateTime<Utc>>,
    pub stale: bool,
    pub level: Level,
    pub low_threshold: i64,
    pub now: DateTime<Utc>,
    /// The server is reached over plain http:// across a network (signed in with
    /// `--allow-insecure-http`): the token travels in cleartext. Shown as a warning.
    pub insecure_http: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub new_entries: usize,
    pub new_notices: usize,
}

/// The data directory: `CREDITBAR_DATA_DIR`, else the platform's data directory.
pub fn data_dir() -> Result<PathBuf, ClientError> {
    if let Some(d) = std::env::var_os("CREDITBAR_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    directories::ProjectDirs::from("dev", "creditbar", "creditbar")
        .map(|d| d.data_dir().to_owned())
        .ok_or_else(|| ClientError::Invalid("no home directory: set CREDITBAR_DATA_DIR".into()))
}

impl Engine {
    pub fn open(
        dir: &Path,
        secrets: Box<dyn SecretStore>,
        clock: Clock,
    ) -> Result<(Engine, Opened), ClientError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClientError::Cache(format!("cannot create {}: {e}", dir.display())))?;
        let (cache, opened) = Cache::open(&dir.join("cache.db"))?;
        let skew = ServerSkew::default();
        // The last measurement, until this process reads the server's clock itself.
        if let Some(ms) = cache
            .get_meta(meta::SERVER_SKEW_MS)?
            .and_then(|v| v.parse().ok())
        {
            skew.set(ms);
        }
        Ok((
            Engine {
                cache,
                secrets,
                clock: skew.corrected(clock.clone()),
                local_clock: clock,
                skew,
                dir: dir.to_owned(),
            },
            opened,
        ))
    }

    /// Shares `skew` with this engine (the desktop's command engine, its live-sync engine
    /// and their reader follow one measurement of the server's clock).
    pub fn with_server_skew(mut self, skew: ServerSkew) -> Engine {
        skew.set(self.skew.millis());
        self.clock = skew.corrected(self.local_clock.clone());
        self.skew = skew;
        self
    }

    pub fn server_skew(&self) -> ServerSkew {
        self.skew.clone()
    }

    fn record_server_time(&self, server: Option<DateTime<Utc>>) -> Result<(), ClientError> {
        if let Some(changed) = server.and_then(|at| self.skew.record(at, (self.local_clock)())) {
            self.cache
                .set_meta(meta::SERVER_SKEW_MS, &changed.to_string())?;
        }
        Ok(())
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The server of the sign-in and whether plain http:// to it was allowed.
    fn server(&self) -> Result<Option<(String, bool)>, ClientError> {
        if let Some(s) = self.cache.get_meta(meta::SERVER)? {
            let allow = self.cache.get_meta(meta::ALLOW_INSECURE_HTTP)?.as_deref() == Some("1");
            return Ok(Some((s, allow)));
        }
        // A rebuilt cache has forgotten the server; the sign-in has not.
        let Ok(file) = std::fs::read_to_string(self.dir.join(SERVER_FILE)) else {
            return Ok(None);
        };
        let mut lines = file.lines().map(str::trim);
        let Some(s) = lines.next().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let allow = lines.any(|l| l == INSECURE_MARK);
        self.remember_server(s, allow)?;
        Ok(Some((s.to_owned(), allow)))
    }

    fn remember_server(&self, server: &str, allow_insecure_http: bool) -> Result<(), ClientError> {
        self.cache.set_meta(meta::SERVER, server)?;
        self.cache.set_meta(
            meta::ALLOW_INSECURE_HTTP,
            if allow_insecure_http { "1" } else { "0" },
        )
    }

    fn client(&self) -> Result<ApiClient, ClientError> {
        let (server, allow) = self.server()?.ok_or(ClientError::NotSignedIn)?;
        let token = self
            .secrets
            .get(Item::AccountToken)?
            .ok_or(ClientError::NotSignedIn)?;
        ApiClient::new(api::parse_server_url(&server, allow)?, token)
    }

    pub fn settings(&self) -> Result<AlertSettings, ClientError> {
        crate::views::alert_settings(&self.cache)
    }

    pub fn set_settings(&self, settings: &AlertSettings) -> Result<(), ClientError> {
        if settings.low_threshold < 0 {
            return Err(ClientError::Invalid(
                "low-balance threshold must not be negative".into(),
            ));
        }
        if settings.also_below.iter().any(|t| *t < 0) {
            return Err(ClientError::Invalid(
                "low-balance thresholds must not be negative".into(),
            ));
        }
        if !(1..=MAX_EXPIRY_LEAD_HOURS).contains(&settings.expiry_lead_hours) {
            return Err(ClientError::Invalid(format!(
                "the expiry warning's lead time is 1 to {MAX_EXPIRY_LEAD_HOURS} hours"
            )));
        }
        self.cache.put_doc(doc::SETTINGS, settings, self.now())
    }

    /// Signs in: checks the token against the server, then keeps it in the keychain and
    /// makes a first full sync. A cache of another account or server is cleared first.
    /// `allow_insecure_http` is the person's explicit choice to use plain http:// to a
    /// server that is not this machine; it is kept with the address for later commands.
    pub async fn login(
        &mut self,
        server: &str,
        token: SecretString,
        allow_insecure_http: bool,
    ) -> Result<Account, ClientError> {
        let url = api::parse_server_url(server, allow_insecure_http)?;
        let client = ApiClient::new(url.clone(), token.clone())?;
        let account = client.account().await?;
        let same = self.cache.get_meta(meta::ACCOUNT_ID)?.as_deref() == Some(account.id.as_str())
            && self.cache.get_meta(meta::SERVER)?.as_deref() == Some(url.as_str());
        if !same {
            self.cache.clear()?;
        }
        self.secrets.set(Item::AccountToken, &token)?;
        self.remember_server(url.as_str(), allow_insecure_http)?;
        let mut file = format!("{url}\n");
        if allow_insecure_http {
            file.push_str(INSECURE_MARK);
            file.push('\n');
        }
        std::fs::write(self.dir.join(SERVER_FILE), file)
            .map_err(|e| ClientError::Cache(format!("cannot write {}: {e}", self.dir.display())))?;
        self.cache.set_meta(meta::ACCOUNT_ID, &account.id)?;
        self.sync().await?;
        // The catalog's unit reads beside every balance (the tray, the dashboard): cached
        // now rather than at the first purchase dialog. A server without it still signs in.
        if let Err(e) = self.catalog().await {
            tracing::debug!(error = %e, "no catalog at sign-in");
        }
        Ok(account)
    }

    /// Signs out: removes both keychain items and everything cached.
    pub fn logout(&mut self) -> Result<(), ClientError> {
        self.secrets.delete(Item::AccountToken)?;
        self.secrets.delete(Item::PaymentToken)?;
        match std::fs::remove_file(self.dir.join(SERVER_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ClientError::Cache(format!(
                    "cannot remove {}: {e}",
                    self.dir.join(SERVER_FILE).display()
                )))
            }
            _ => {}
        }
        self.cache.clear()
    }

    /// A full first sync, then incremental by cursor. It decides no alerts: those are for
    /// the notifier (`watch`), which works from the cache, so whatever learns of a notice
    /// first, the notifier still announces it. The first sync records what is already true.
    pub async fn sync(&mut self) -> Result<SyncReport, ClientError> {
        let client = self.client()?;
        let now = self.now();
        let account = client.account().await?;
        self.cache.put_doc(doc::ACCOUNT, &account, now)?;
        self.refresh_balance(&client).await?;
        let new_entries = self.pull_ledger(&client).await?;
        let notices = self.pull_notices(&client).await?;
        let mut purchases = Vec::new();
        let mut after = 0;
        loop {
            let page = client.purchases(after, 1000).await?;
            purchases.extend(page.items);
            match page.next.and_then(|n| n.parse().ok()) {
                Some(n) => after = n,
                None => break,
            }
        }
        self.cache.replace_purchases(&purchases)?;
        match client.auto_refill().await {
            Ok(a) => self.cache.put_doc(doc::AUTO_REFILL, &a, now)?,
            Err(e) if e.code() == Some("not_found") => {}
            Err(e) => return Err(e),
        }
        self.cache.touch_contact(self.now())?;
        let known: AlertState = self.cache.get_doc(doc::ALERTS)?.unwrap_or_default();
        if !known.initialized {
            // First sight announces nothing; it only records the state.
            self.run_alerts()?;
        }
        Ok(SyncReport {
            new_entries,
            new_notices: notices.len(),
        })
    }

    async fn refresh_balance(&mut self, client: &ApiClient) -> Result<(), ClientError> {
        let etag = self.cache.get_meta(meta::BALANCE_ETAG)?;
        let have = self.cache.balance()?.is_some();
        let etag = if have { etag } else { None };
        let (answer, server_time) = client.balance(etag.as_deref()).await?;
        self.record_server_time(server_time)?;
        if let Conditional::Modified { value, etag } = answer {
            self.cache.put_balance(&value, self.now())?;
            if let Some(e) = etag {
                self.cache.set_meta(meta::BALANCE_ETAG, &e)?;
            }
        }
        Ok(())
    }

    /// New ledger entries and usage events, fetched side by side (two page streams) and
    /// stored by one consumer as the pages arrive; returns how many ledger entries came.
    async fn pull_ledger(&mut self, client: &ApiClient) -> Result<usize, ClientError> {
        use tokio::sync::mpsc;
        let ledger_from = self.cache.ledger_cursor()?;
        let usage_since = self.cache.usage_resume_point()?;
        let (ledger_tx, mut ledger_rx) = mpsc::channel::<Vec<LedgerEntry>>(4);
        let (usage_tx, mut usage_rx) = mpsc::channel::<Vec<UsageEvent>>(4);
        let fetch_ledger = async move {
            let mut after = ledger_from;
            loop {
                let page = client.ledger(after, 1000).await?;
                let last = page.items.last().map(|e| e.seq);
                let more = page.next.is_some();
                if ledger_tx.send(page.items).await.is_err() {
                    return Ok(());
                }
                match last {
                    Some(seq) if more => after = seq,
                    _ => return Ok::<_, ClientError>(()),
                }
            }
        };
        let fetch_usage = async move {
            let mut after: Option<String> = None;
            loop {
                let page = client
                    .usage_events(usage_since.as_deref(), after.as_deref(), 1000)
                    .await?;
                if usage_tx.send(page.items).await.is_err() {
                    return Ok(());
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => return Ok::<_, ClientError>(()),
                }
            }
        };
        let cache = &mut self.cache;
        let store = async move {
            let (mut count, mut ledger_open, mut usage_open) = (0, true, true);
            while ledger_open || usage_open {
                tokio::select! {
                    page = ledger_rx.recv(), if ledger_open => match page {
                        Some(items) => {
                            count += items.len();
                            cache.insert_ledger(&items)?;
                        }
                        None => ledger_open = false,
                    },
                    page = usage_rx.recv(), if usage_open => match page {
                        Some(items) => cache.insert_usage_events(&items)?,
                        None => usage_open = false,
                    },
                }
            }
            Ok::<_, ClientError>(count)
        };
        // The store ends first on an error and drops its receivers, which ends the fetches.
        let (ledger, usage, stored) = tokio::join!(fetch_ledger, fetch_usage, store);
        let count = stored?;
        ledger?;
        usage?;
        Ok(count)
    }

    async fn pull_notices(&mut self, client: &ApiClient) -> Result<Vec<Notice>, ClientError> {
        let mut fresh = Vec::new();
        loop {
            let page = client.notices(self.cache.notice_cursor()?, 1000).await?;
            fresh.extend(self.cache.insert_notices(&page.items)?);
            if page.next.is_none() {
                return Ok(fresh);
            }
        }
    }

    /// Runs the alert policy over what the cache holds that the policy has not seen (the
    /// notices after its cursor, the latest balance) and persists its state before anything
    /// is shown: a crash between the two loses a notification rather than repeating one.
    /// Decides the alerts due now (recording them as told) without showing them: for a
    /// shell that shows them itself, and for tests with an injected clock.
    pub fn alerts_due(&self) -> Result<Vec<Alert>, ClientError> {
        self.run_alerts()
    }

    /// One pass of the alert policy as one IMMEDIATE transaction of the cache: every
    /// process on the machine (the app's live sync, `creditbar watch`) shares the alert
    /// state in the same file, and the transaction makes "read what was told, decide,
    /// record" atomic across them, so a notice or a crossing is told by one process only.
    /// The alerts are shown after the commit (at most once, never twice).
    fn run_alerts(&self) -> Result<Vec<Alert>, ClientError> {
        let conn = self.cache.conn();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let decided = (|| {
            let state: AlertState = self.cache.get_doc(doc::ALERTS)?.unwrap_or_default();
            let settings = self.settings()?;
            let balance = self.cache.balance()?;
            let notices = self.cache.notices_after(state.last_notice_seq)?;
            let (alerts, next) =
                alerts::decide(&state, &settings, &notices, balance.as_ref(), self.now());
            if next != state {
                self.cache.put_doc(doc::ALERTS, &next, self.now())?;
            }
            Ok(alerts)
        })();
        match decided {
            Ok(alerts) => {
                conn.execute_batch("COMMIT")?;
                Ok(alerts)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// A short sync, then the status. When the server cannot be reached (or not within
    /// `wait`), the cache answers and is marked stale however recent its last contact: the
    /// user is offline now, and the figure is not confirmed.
    pub async fn fresh_status(&mut self, wait: Duration) -> Result<Status, ClientError> {
        let reached = matches!(tokio::time::timeout(wait, self.sync()).await, Ok(Ok(_)));
        let mut status = self.status()?;
        if !reached {
            status.stale = true;
            status.level = Level::Stale;
        }
        Ok(status)
    }

    /// What the cache says now, with its staleness. Never touches the network.
    pub fn status(&self) -> Result<Status, ClientError> {
        crate::views::status(&self.cache, self.now())
    }

    /// A read-only handle on this engine's cache with its clock: reads through it never
    /// wait for this engine (crate::views::Reader).
    pub fn reader(&self) -> Result<crate::views::Reader, ClientError> {
        crate::views::Reader::open(&self.dir, self.clock.clone())
    }

    /// All cached usage, grouped (`creditbar usage`).
    pub fn usage(&self, group_by: &str) -> Result<Vec<UsageGroup>, ClientError> {
        self.cache.usage(group_by, None)
    }

    /// Pulls new usage events (and ledger entries) when the server answers; the cache
    /// answers either way.
    pub async fn refresh_usage(&mut self) -> Result<(), ClientError> {
        let client = self.client()?;
        self.pull_ledger(&client).await?;
        self.cache.touch_contact(self.now())
    }

    /// Cached usage of the last `period_days` days (today included, days in the account's
    /// timezone), or of all time: no network, so it answers at once and offline. Whether
    /// the cache is fresh is `status().stale` (the live sync keeps it so).
    pub fn usage_in(
        &self,
        group_by: &str,
        period_days: Option<u32>,
    ) -> Result<Vec<UsageGroup>, ClientError> {
        let from_day = match period_days {
            None => None,
            Some(days) => Some(self.first_day_of(days)?),
        };
        self.cache.usage(group_by, from_day.as_deref())
    }

    /// The first day (YYYY-MM-DD, account timezone) of a period of `days` ending today.
    fn first_day_of(&self, days: u32) -> Result<String, ClientError> {
        let today = crate::views::today(&self.cache, self.now())?;
        Ok(crate::views::first_day(today, days)
            .format("%Y-%m-%d")
            .to_string())
    }

    /// The catalog (packs, custom pricing), refreshed when online, cached for offline use.
    pub async fn catalog(&mut self) -> Result<Catalog, ClientError> {
        if let Ok(c) = self.client() {
            if let Ok(catalog) = c.catalog().await {
                self.cache.put_doc("catalog", &catalog, self.now())?;
                return Ok(catalog);
            }
        }
        self.cache.get_doc("catalog")?.ok_or_else(|| {
            ClientError::Invalid("the catalog is not cached yet: connect once to the server".into())
        })
    }

    /// The catalog's unit as last cached (no network): what a balance reads as beside
    /// credits on this platform.
    pub fn cached_unit(&self) -> Option<CatalogUnit> {
        self.cache
            .get_doc::<Catalog>("catalog")
            .ok()
            .flatten()
            .and_then(|c| c.unit)
    }

    /// Refuses a pack the catalog does not sell, or a custom amount outside its range, before
    /// anything else is looked at (the saved card included), so a typo is named as one
    /// (`creditbar buy 0` said "no saved card"). Without a catalog (never online) the
    /// server's own check stands alone.
    async fn check_item(&mut self, item: &PurchaseItem) -> Result<(), ClientError> {
        let Ok(catalog) = self.catalog().await else {
            return Ok(());
        };
        match item {
            PurchaseItem::Pack(id) if !catalog.packs.iter().any(|p| &p.id == id) => {
                let ids: Vec<&str> = catalog.packs.iter().map(|p| p.id.as_str()).collect();
                Err(ClientError::Invalid(format!(
                    "unknown pack `{id}`: choose {}",
                    ids.join(", ")
                )))
            }
            PurchaseItem::CustomCents(cents)
                if !(catalog.custom.min_cents..=catalog.custom.max_cents).contains(cents) =>
            {
                Err(ClientError::Invalid(format!(
                    "a custom amount must be {} to {}",
                    creditbar_ledger::Cents(catalog.custom.min_cents),
                    creditbar_ledger::Cents(catalog.custom.max_cents)
                )))
            }
            _ => Ok(()),
        }
    }

    /// The saved card's brand and last 4, if a card was saved on this machine.
    pub fn card(&self) -> Result<Option<CardSummary>, ClientError> {
        if self.secrets.get(Item::PaymentToken)?.is_none() {
            return Ok(None);
        }
        self.cache.card()
    }

    /// Buys with a key chosen by the caller: the purchase dialog makes one key per opening,
    /// so a double click or a retry in the same dialog never buys twice.
    pub async fn buy_with_key(
        &mut self,
        key: &str,
        item: PurchaseItem,
    ) -> Result<PurchaseResult, ClientError> {
        if key.is_empty() || key.len() > 200 {
            return Err(ClientError::Invalid(
                "purchase key must be 1 to 200 characters".into(),
            ));
        }
        self.check_item(&item).await?;
        let client = self.client()?;
        let payment = self
            .secrets
            .get(Item::PaymentToken)?
            .ok_or(ClientError::NoCard)?;
        let result = client.purchase(key, &item, &payment).await?;
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "refresh after purchase failed");
        }
        Ok(result)
    }

    /// Saves a card with the server; the payment token goes straight to the keychain.
    pub async fn add_card(
        &mut self,
        number: SecretString,
        exp_month: u32,
        exp_year: i32,
        cvc: SecretString,
    ) -> Result<CardSummary, ClientError> {
        let client = self.client()?;
        let (token, card) = client.add_card(&number, exp_month, exp_year, &cvc).await?;
        self.secrets.set(Item::PaymentToken, &token)?;
        self.cache.put_doc(doc::CARD, &card, self.now())?;
        Ok(card)
    }

    /// Buys a pack or a custom amount. The idempotency key is written to the cache before
    /// the request: a retry (even after a crash) of the same unfinished purchase reuses
    /// it, so the server charges once.
    pub async fn buy(&mut self, item: PurchaseItem) -> Result<PurchaseResult, ClientError> {
        self.check_item(&item).await?;
        let client = self.client()?;
        let payment = self
            .secrets
            .get(Item::PaymentToken)?
            .ok_or(ClientError::NoCard)?;
        let item_key =
            serde_json::to_string(&item).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let key = match self.cache.pending_purchase(&item_key)? {
            Some(k) => k,
            None => {
                let k = format!("buy-{}", uuid_like());
                self.cache.begin_purchase(&k, &item_key, self.now())?;
                k
            }
        };
        match client.purchase(&key, &item, &payment).await {
            // Recorded, the charge's outcome not known yet: the server finishes it. The key
            // stays pending here, so asking again joins that purchase, never a new one.
            Ok(result) if result.status == "pending" => Ok(result),
            Ok(result) => {
                self.cache.finish_purchase(&key, "done")?;
                // The purchase is done; a failed refresh only leaves the cache a little behind.
                if let Err(e) = self.sync().await {
                    tracing::warn!(error = %e, "refresh after purchase failed");
                }
                Ok(result)
            }
            Err(e @ ClientError::Api { .. }) if !e.is_transient() => {
                // A definite answer (declined, invalid): this attempt is over.
                self.cache.finish_purchase(&key, "failed")?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The account's plan, from the server.
    pub async fn plan(&mut self) -> Result<PlanState, ClientError> {
        self.client()?.plan().await
    }

    /// Sets the account's timezone (an IANA name: `Europe/Paris`). Checked here first, so a
    /// typo is named and nothing is sent; the server applies it from the next daily reset.
    pub async fn set_timezone(&mut self, timezone: &str) -> Result<Account, ClientError> {
        let tz = timezone.trim();
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(ClientError::Invalid(format!(
                "unknown timezone `{tz}`: use an IANA name such as Europe/Paris or America/New_York"
            )));
        }
        let account = self.client()?.set_timezone(tz).await?;
        self.cache.put_doc(doc::ACCOUNT, &account, self.now())?;
        Ok(account)
    }

    /// The plans the catalog offers.
    pub async fn plan_offers(&mut self) -> Result<Vec<PlanOffer>, ClientError> {
        Ok(self.client()?.plan_catalog().await?.plans)
    }

    /// What changing to `plan` would do now (price and credits of an upgrade), to show
    /// before the person confirms.
    pub async fn plan_quote(&mut self, plan: &str) -> Result<PlanQuote, ClientError> {
        self.client()?.plan_quote(plan).await
    }

    /// Changes the plan, paid with the saved card (which becomes the plan's card). Returns
    /// the plan and whether an upgrade's charge is still being confirmed.
    pub async fn change_plan(&mut self, plan: &str) -> Result<(PlanState, bool), ClientError> {
        let client = self.client()?;
        let payment = self.secrets.get(Item::PaymentToken)?;
        let result = client.set_plan(plan, payment.as_ref()).await?;
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "refresh after a plan change failed");
        }
        Ok(result)
    }

    /// Every purchase the cache holds (after a sync: all of them), oldest first.
    pub fn purchases(&self) -> Result<Vec<Purchase>, ClientError> {
        self.cache.purchases()
    }

    pub async fn set_auto_refill(
        &mut self,
        enabled: bool,
        threshold: i64,
        pack: &str,
        monthly_limit: u32,
    ) -> Result<AutoRefill, ClientError> {
        let client = self.client()?;
        let payment = self.secrets.get(Item::PaymentToken)?;
        if enabled && payment.is_none() {
            return Err(ClientError::NoCard);
        }
        let settings = client
            .set_auto_refill(enabled, threshold, pack, payment.as_ref(), monthly_limit)
            .await?;
        self.cache
            .put_doc(doc::AUTO_REFILL, &settings, self.now())?;
        Ok(settings)
    }

    /// Turns auto-refill on or off keeping its other settings (the tray's toggle and
    /// `creditbar auto-refill off`): the pack chosen before, else the catalog's first.
    pub async fn toggle_auto_refill(&mut self, on: bool) -> Result<AutoRefill, ClientError> {
        let current = self.auto_refill()?;
        let packs = match self.catalog().await {
            Ok(c) => c.packs,
            Err(_) => Vec::new(),
        };
        let pack = crate::views::default_pack(current.as_ref(), &packs).ok_or_else(|| {
            ClientError::Invalid("the catalog sells no pack for auto-refill to buy".into())
        })?;
        let threshold = current.as_ref().and_then(|c| c.threshold).unwrap_or(0);
        let limit = current
            .as_ref()
            .and_then(|c| c.monthly_limit)
            .unwrap_or(1)
            .max(1);
        self.set_auto_refill(on, threshold, &pack, limit).await
    }

    /// The plan chooser's view: the plan, every plan of the catalog with what choosing it
    /// does now (the server's quote: the prorated price and credits of an upgrade).
    pub async fn plan_choices(&mut self) -> Result<crate::views::PlanChoices, ClientError> {
        let client = self.client()?;
        let state = client.plan().await?;
        let offers = client.plan_catalog().await?.plans;
        let mut quotes = Vec::new();
        for o in offers.iter().filter(|o| o.id != state.plan) {
            quotes.push(client.plan_quote(&o.id).await?);
        }
        Ok(crate::views::plan_choices(&state, &offers, &quotes))
    }

    /// The purchase dialog's view: the catalog (refreshed when online), the card and the
    /// current balance.
    pub async fn purchase_options(&mut self) -> Result<crate::views::PurchaseOptions, ClientError> {
        let catalog = self.catalog().await?;
        let available = self.status()?.balance.map(|b| b.available);
        Ok(crate::views::purchase_options(
            catalog,
            self.card()?,
            available,
        ))
    }

    pub fn auto_refill(&self) -> Result<Option<AutoRefill>, ClientError> {
        self.cache.get_doc(doc::AUTO_REFILL)
    }

    /// The account's usage reviews with their outcome, newest first: from the server when it
    /// answers (and cached), else from the cache.
    pub async fn reviews(&mut self) -> Result<Vec<crate::views::ReviewView>, ClientError> {
        match self.client()?.reviews().await {
            Ok(list) => self.cache.put_doc(doc::REVIEWS, &list, self.now())?,
            Err(e) => tracing::debug!(error = %e, "reviews from the cache"),
        }
        crate::views::reviews(&self.cache)
    }

    pub async fn report(&mut self, review: &ReviewRequest) -> Result<Review, ClientError> {
        if review.thread.trim().is_empty() || review.description.trim().is_empty() {
            return Err(ClientError::Invalid(
                "a thread and a description are required".into(),
            ));
        }
        // The server takes a review of any thread; one with no usage at all is almost
        // surely a typo, so it is refused here, naming the threads there are. Only after a
        // sync: the cache then holds every usage event, so "not there" means none exist.
        if self.sync().await.is_ok() {
            let threads = self.cache.usage("thread", None)?;
            if !threads.iter().any(|g| g.key == review.thread) {
                let known: Vec<&str> = threads.iter().map(|g| g.key.as_str()).collect();
                return Err(ClientError::Invalid(unknown_thread(&review.thread, known)));
            }
        }
        let client = self.client()?;
        client
            .report(&format!("review-{}", uuid_like()), review)
            .await
    }

    /// Live sync until `stop` resolves: the event stream with Last-Event-ID resume and
    /// reconnect with backoff; polling with If-None-Match when the stream is refused.
    /// Alerts go to `notifier` as they are decided.
    pub async fn watch(
        &mut self,
        notifier: &dyn Notifier,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), ClientError> {
        tokio::pin!(stop);
        let mut failures = 0u32;
        let mut polling = false;
        loop {
            let round = async {
                self.sync().await?;
                show(notifier, &self.run_alerts()?);
                if polling {
                    self.poll_round(notifier).await
                } else {
                    self.stream_round(notifier).await
                }
            };
            let result = tokio::select! {
                _ = &mut stop => return Ok(()),
                r = round => r,
            };
            match result {
                Ok(()) => failures = 0,
                Err(ClientError::Api {
                    status: 404 | 405 | 501,
                    ..
                }) => polling = true,
                Err(
                    e @ (ClientError::NotSignedIn
                    | ClientError::KeychainUnavailable { .. }
                    | ClientError::Cleartext { .. }),
                ) => return Err(e),
                Err(ClientError::Api {
                    status: 401,
                    code,
                    message,
                }) => {
                    return Err(ClientError::Api {
                        status: 401,
                        code,
                        message,
                    })
                }
                // A server that sends more than the client takes is worth telling about.
                Err(e @ ClientError::TooMuch { .. }) => {
                    failures += 1;
                    tracing::warn!("live sync interrupted: {e}; retrying");
                }
                Err(e) => {
                    failures += 1;
                    tracing::info!(error = %e, "live sync interrupted; retrying");
                }
            }
            let wait = api::backoff(failures.min(6));
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One connection of the event stream, until it ends. What the server sends is bounded
    /// (crate::limits): each event's size, how many come in a second, and how many are held
    /// decoded before they reach the cache.
    async fn stream_round(&mut self, notifier: &dyn Notifier) -> Result<(), ClientError> {
        let client = self.client()?;
        let resume = self.cache.notice_cursor()?;
        let resp = client.events(resume).await?;
        let mut parser = SseParser::default();
        let mut rate = EventRate::default();
        // The round's sync has just read the server's clock.
        let mut clock_read = tokio::time::Instant::now();
        let mut body = resp.bytes_stream();
        let too_much = |what: String| ClientError::TooMuch {
            url: client.base().to_string(),
            what,
        };
        // No byte for this long (heartbeats come every 15 s) means the connection is dead.
        let silence = Duration::from_secs(45);
        loop {
            let chunk = match tokio::time::timeout(silence, body.next()).await {
                Err(_) => {
                    return Err(ClientError::Unreachable {
                        url: client.base().to_string(),
                        detail: "event stream went silent".into(),
                    })
                }
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => {
                    return Err(ClientError::Unreachable {
                        url: client.base().to_string(),
                        detail: e.without_url().to_string(),
                    })
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            // The server's clock, read again now and then: a stream of heartbeats says
            // nothing of it, and a deadline is the server's. A changed balance is left to
            // its event (the ledger behind it is cached first).
            if clock_read.elapsed() >= CLOCK_CHECK_EVERY {
                clock_read = tokio::time::Instant::now();
                let etag = self.cache.get_meta(meta::BALANCE_ETAG)?;
                let (_, server_time) = client.balance(etag.as_deref()).await?;
                self.record_server_time(server_time)?;
            }
            self.cache.touch_contact(self.now())?;
            // Every chunk (a heartbeat comes each 15 s): alerts that depend on the time
            // alone ("expiring soon") fire within seconds of their minute.
            let due = self.run_alerts()?;
            if !due.is_empty() {
                show(notifier, &due);
            }
            parser.feed(&chunk);
            loop {
                let mut batch = Vec::new();
                while batch.len() < crate::limits::MAX_EVENTS_PER_BATCH {
                    match parser.next_event() {
                        Ok(Some(ev)) => {
                            if !rate.admit(tokio::time::Instant::now()) {
                                return Err(too_much(format!(
                                    "more than {} events in one second",
                                    crate::limits::MAX_EVENTS_PER_SECOND
                                )));
                            }
                            batch.push(ev);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            return Err(too_much(format!(
                                "an event larger than {}",
                                crate::limits::bytes(e.limit)
                            )))
                        }
                    }
                }
                if batch.is_empty() {
                    break;
                }
                self.apply_events(&client, notifier, batch).await?;
            }
        }
    }

    /// Writes a batch of stream events to the cache, then runs the alert policy.
    async fn apply_events(
        &mut self,
        client: &ApiClient,
        notifier: &dyn Notifier,
        events: Vec<crate::sse::SseEvent>,
    ) -> Result<(), ClientError> {
        let mut notices = Vec::new();
        let mut balance: Option<Balance> = None;
        for ev in events {
            match ev.event.as_str() {
                "balance" => balance = Some(decode("balance event", &ev.data)?),
                "notice" => notices.push(decode::<Notice>("notice event", &ev.data)?),
                _ => {}
            }
        }
        let ledger_behind = match &balance {
            Some(b) => b.seq > self.cache.ledger_cursor()?.max(self.cache.notice_cursor()?),
            None => false,
        };
        let fresh = self.cache.insert_notices(&notices)?;
        // The entries behind a balance are cached before the balance itself, so whoever
        // reads the cache never sees a balance that is not the sum of its ledger.
        if ledger_behind || !fresh.is_empty() {
            self.pull_ledger(client).await?;
        }
        // A refill (or its failure, which turns auto-refill off) changes the settings
        // the tray's toggle shows: re-read them.
        if fresh
            .iter()
            .any(|n| n.kind == "refill_charged" || n.kind == "refill_failed")
        {
            let settings = client.auto_refill().await?;
            self.cache
                .put_doc(doc::AUTO_REFILL, &settings, self.now())?;
        }
        // A resolved review: its outcome is listed at once (the dashboard, `reviews`).
        if fresh.iter().any(|n| n.kind == "review_resolved") {
            match client.reviews().await {
                Ok(list) => self.cache.put_doc(doc::REVIEWS, &list, self.now())?,
                Err(e) => tracing::debug!(error = %e, "reviews not refreshed"),
            }
        }
        if let Some(b) = balance {
            self.cache.put_balance(&b, self.now())?;
        }
        let alerts = self.run_alerts()?;
        show(notifier, &alerts);
        Ok(())
    }

    /// Polling fallback: the balance every 30 s with If-None-Match, a full sync on change.
    async fn poll_round(&mut self, notifier: &dyn Notifier) -> Result<(), ClientError> {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let client = self.client()?;
            let etag = self.cache.get_meta(meta::BALANCE_ETAG)?;
            let (answer, server_time) = client.balance(etag.as_deref()).await?;
            self.record_server_time(server_time)?;
            let changed = matches!(answer, Conditional::Modified { .. });
            self.cache.touch_contact(self.now())?;
            if changed {
                self.sync().await?;
                show(notifier, &self.run_alerts()?);
            }
        }
    }
}

/// Counts stream events in one-second windows: false once a window has had more than
/// `MAX_EVENTS_PER_SECOND`.
#[derive(Default)]
struct EventRate {
    window: Option<tokio::time::Instant>,
    count: u32,
}

impl EventRate {
    fn admit(&mut self, now: tokio::time::Instant) -> bool {
        match self.window {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        self.count <= crate::limits::MAX_EVENTS_PER_SECOND
    }
}

fn show(notifier: &dyn Notifier, alerts: &[Alert]) {
    notifier.changed();
    for a in alerts {
        if let Err(e) = notifier.show(a) {
            tracing::warn!(error = %e, "could not show a notification");
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, data: &str) -> Result<T, ClientError> {
    serde_json::from_str(data).map_err(|e| ClientError::Decode {
        what: what.into(),
        detail: e.to_string(),
    })
}

/// Why a report of `thread` is refused when it has no usage: the threads that have some,
/// sorted, at most ten of them.
fn unknown_thread(thread: &str, mut known: Vec<&str>) -> String {
    if known.is_empty() {
        return format!("no usage recorded for thread `{thread}`: this account has no usage yet");
    }
    known.sort_unstable();
    let shown = known[..known.len().min(10)].join(", ");
    match known.len().saturating_sub(10) {
        0 => format!("no usage recorded for thread `{thread}`; threads with usage: {shown}"),
        more => format!(
            "no usage recorded for thread `{thread}`; threads with usage: {shown} and {more} more \
             (`creditbar usage --by thread`)"
        ),
    }
}

/// A random 128-bit id in hex: idempotency keys and review ids.
pub fn uuid_like() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

#[cfg(test)]
mod tests {
    use super::{unknown_thread, EventRate, ServerSkew};
    use crate::limits::MAX_EVENTS_PER_SECOND;
    use std::time::Duration;

    /// The skew follows a real change of the server's clock and ignores the wobble of a
    /// whole-second `Date`; clocks within 2 s agree.
    #[test]
    fn the_server_skew_follows_jumps_and_ignores_the_second_wobble() {
        #![allow(clippy::unwrap_used)]
        let t = |s: &str| -> chrono::DateTime<chrono::Utc> { s.parse().unwrap() };
        let skew = ServerSkew::default();
        let local = t("2026-12-06T12:00:00.700Z");
        assert_eq!(skew.record(t("2026-12-06T12:00:01Z"), local), None);
        assert_eq!(
            skew.record(t("2026-12-21T12:00:00Z"), local),
            Some(1_295_999_300)
        );
        assert_eq!(skew.record(t("2026-12-21T12:00:01Z"), local), None);
        assert_eq!(skew.millis(), 1_295_999_300);
        let base: super::Clock = std::sync::Arc::new(move || local);
        assert_eq!(skew.corrected(base)(), t("2026-12-21T12:00:00Z"));
        assert_eq!(skew.record(t("2026-12-06T12:00:00Z"), local), Some(0));
    }

    #[test]
    fn the_stream_takes_a_thousand_events_a_second_and_no_more() {
        let t0 = tokio::time::Instant::now();
        let mut rate = EventRate::default();
        for _ in 0..MAX_EVENTS_PER_SECOND {
            assert!(rate.admit(t0 + Duration::from_millis(999)));
        }
        assert!(
            !rate.admit(t0 + Duration::from_millis(999)),
            "one more in the same second"
        );
        let mut rate = EventRate::default();
        for i in 0..3 * MAX_EVENTS_PER_SECOND {
            // Three seconds at the limit, spread evenly: always admitted.
            let at = t0
                + Duration::from_micros(
                    u64::from(i) * 1_000_000 / u64::from(MAX_EVENTS_PER_SECOND),
                );
            assert!(rate.admit(at), "event {i}");
        }
    }

    #[test]
    fn an_unknown_thread_is_named_with_the_threads_that_have_usage() {
        assert_eq!(
            unknown_thread("x", vec![]),
            "no usage recorded for thread `x`: this account has no usage yet"
        );
        assert_eq!(
            unknown_thread("x", vec!["b", "a"]),
            "no usage recorded for thread `x`; threads with usage: a, b"
        );
        let many: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
        let message = unknown_thread("x", many.iter().map(String::as_str).rev().collect());
        assert_eq!(
            message,
            "no usage recorded for thread `x`; threads with usage: t00, t01, t02, t03, t04, t05, \
             t06, t07, t08, t09 and 2 more (`creditbar usage --by thread`)"
        );
    }
}
