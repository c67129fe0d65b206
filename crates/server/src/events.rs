//! The live event stream (`GET /v1/events`): `notice` events as facts happen, `balance`
//! events after every committed change. `id:` is the account's `seq`, shared by notices and
//! ledger entries, so `Last-Event-ID` resumes exactly where the client stopped: missed
//! notices are replayed from the database, then the current balance, then live events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use creditbar_ledger::{Account, Notice};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::{broadcast, mpsc};

use crate::api::BalanceBody;
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{bearer_hash, AccountId};
use crate::secret::TokenHash;
use crate::store;
use crate::store::shared_limits;
use crate::writer::Publish;

#[derive(Debug)]
pub struct Event {
    pub account: String,
    pub seq: u64,
    pub kind: &'static str,
    pub data: String,
}

/// The writer's side: turns committed facts into broadcast events and queued effects.
pub struct Publisher {
    pub events: broadcast::Sender<Arc<Event>>,
    pub intents: mpsc::UnboundedSender<(String, String)>,
    pub clock: crate::clock::Clock,
}

impl Publish for Publisher {
    fn notice(&self, account: &str, notice: &Notice) {
        if self.events.receiver_count() == 0 {
            return;
        }
        if let Ok(data) = serde_json::to_string(notice) {
            let _ = self.events.send(Arc::new(Event {
                account: account.to_owned(),
                seq: notice.seq,
                kind: "notice",
                data,
            }));
        }
    }

    fn balance(&self, account: &Account) {
        if self.events.receiver_count() == 0 {
            return;
        }
        if let Ok(data) = serde_json::to_string(&BalanceBody::of(account, self.clock.now())) {
            let _ = self.events.send(Arc::new(Event {
                account: account.id.clone(),
                seq: account.seq,
                kind: "balance",
                data,
            }));
        }
    }

    fn intent(&self, account: &str, intent: &str) {
        let _ = self.intents.send((account.to_owned(), intent.to_owned()));
    }
}

/// How many event streams each token has open, to cap them (api.md: 8 per token). A slot
/// is taken when a stream is accepted and given back when the stream ends or its client
/// goes away (the guard lives in the stream).
pub struct StreamSlots {
    max: usize,
    open: std::sync::Mutex<std::collections::HashMap<TokenHash, usize>>,
    /// On a shared ledger, this process's name among the places counted in the database
    /// (every process's streams count against one limit; store/shared_limits.rs).
    process: Option<String>,
}

/// How long a stream's place is held in the database without being renewed: a process that
/// dies frees its places within this (the live ones renew every 10 s, lib.rs maintenance).
pub const STREAM_LEASE: Duration = Duration::from_secs(30);

impl StreamSlots {
    pub fn new(max: usize, process: Option<String>) -> Self {
        StreamSlots {
            max,
            open: Default::default(),
            process,
        }
    }

    async fn take(app: &App, account: &str, token: TokenHash) -> Result<StreamSlot, ApiError> {
        let max = app.streams.max;
        if let Some(process) = app.streams.process.clone() {
            let place = SharedPlace {
                account: account.to_owned(),
                process,
                id: app.ids.id("stream"),
            };
            let p = place.clone();
            let taken = app
                .read(move |c| {
                    shared_limits::open_stream(
                        c,
                        &p.account,
                        &token,
                        &p.process,
                        &p.id,
                        max,
                        lease_micros(),
                    )
                })
                .await?;
            if !taken {
                return Err(ApiError::TooManyStreams(max));
            }
            return Ok(StreamSlot {
                app: app.clone(),
                token,
                shared: Some(place),
            });
        }
        let mut open = app.streams.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(token).or_insert(0);
        if *n >= max {
            return Err(ApiError::TooManyStreams(max));
        }
        *n += 1;
        Ok(StreamSlot {
            app: app.clone(),
            token,
            shared: None,
        })
    }

    /// Renews the leases of this process's places (shared ledger; nothing otherwise).
    pub async fn renew(app: &App) {
        let Some(process) = app.streams.process.clone() else {
            return;
        };
        if let Err(e) = app
            .read(move |c| shared_limits::renew_streams(c, &process, lease_micros()))
            .await
        {
            tracing::warn!(error = %e, "renewing the event streams' places failed");
        }
    }
}

fn lease_micros() -> i64 {
    i64::try_from(STREAM_LEASE.as_micros()).unwrap_or(i64::MAX)
}

#[derive(Clone)]
struct SharedPlace {
    account: String,
    process: String,
    id: String,
}

struct StreamSlot {
    app: App,
    token: TokenHash,
    shared: Option<SharedPlace>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Some(p) = self.shared.take() {
            // Given back in the database, off this (synchronous) drop; if the runtime is
            // already gone the place's lease runs out instead.
            let (app, token) = (self.app.clone(), self.token);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let closed = app
                        .read(move |c| {
                            shared_limits::close_stream(c, &p.account, &token, &p.process, &p.id)
                        })
                        .await;
                    if let Err(e) = closed {
                        tracing::debug!(error = %e, "giving a stream's place back failed");
                    }
                });
            }
            return;
        }
        let mut open = self
            .app
            .streams
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.token) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

fn sse(kind: &str, seq: u64, data: String) -> SseEvent {
    SseEvent::default()
        .event(kind)
        .id(seq.to_string())
        .data(data)
}

fn balance_event(view: &crate::view::AccountView, now: chrono::DateTime<chrono::Utc>) -> SseEvent {
    let body = BalanceBody::of(&view.state, now);
    sse(
        "balance",
        view.state.seq,
        serde_json::to_string(&body).unwrap_or_default(),
    )
}

/// Notices after `after`, then the current balance: what a (re)connecting client needs. A
/// fresh connection (no `after`) starts at the current balance. Returns the seq up to which
/// notices are accounted for (live ones at or below it are dropped): the last notice
/// replayed, or the fresh balance's seq. Never the balance's seq after a replay: a notice
/// committed between the replay and the balance would then be dropped and never told.
async fn catch_up(
    app: &App,
    account: &str,
    after: Option<u64>,
) -> Result<(Vec<SseEvent>, u64), ApiError> {
    let mut out = Vec::new();
    let Some(after) = after else {
        let Some(view) = app.view(account).await? else {
            return Ok((out, 0));
        };
        out.push(balance_event(&view, app.clock.now()));
        return Ok((out, view.state.seq));
    };
    let mut cursor = after as i64;
    loop {
        let id = account.to_owned();
        let page = app
            .read(move |c| store::notices_page(c, &id, cursor, 1000))
            .await?;
        let full = page.len() == 1000;
        for (seq, body) in page {
            let n = crate::routes::account::notice_body(&body)?;
            out.push(sse(
                "notice",
                seq as u64,
                serde_json::to_string(&n).unwrap_or_default(),
            ));
            cursor = seq;
        }
        if !full {
            break;
        }
    }
    if let Some(view) = app.view(account).await? {
        out.push(balance_event(&view, app.clock.now()));
    }
    Ok((out, cursor.max(0) as u64))
}

/// One event of `GET /v1/events` as it is sent, for the OpenAPI document: what an SSE client
/// (EventSource, schemathesis) reads is `{event, id, data}` with `data` a JSON text, not the
/// JSON value itself. Before OpenAPI 3.2's `itemSchema`, a `text/event-stream` schema
/// describes one event.
pub struct StreamEvent;

impl utoipa::PartialSchema for StreamEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let event = |name: &str, what: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "event",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([name])),
                )
                .required("event")
                .property(
                    "id",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^[0-9]+$"))
                        .description(Some(
                            "The account's seq: send it back as Last-Event-ID to resume",
                        )),
                )
                .required("id")
                .property(
                    "data",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .content_media_type("application/json")
                        .description(Some(what)),
                )
                .required("data")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .build()
        };
        OneOfBuilder::new()
            .item(event(
                "balance",
                "The balance after a committed change, as JSON: the body of GET /v1/balance (BalanceBody)",
            ))
            .item(event(
                "notice",
                "A notice as JSON: an item of GET /v1/notices (NoticeBody)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for StreamEvent {
    fn name() -> std::borrow::Cow<'static, str> {
        "StreamEvent".into()
    }
}

#[utoipa::path(get, path = "/v1/events", tag = "account", security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this seq")),
    responses((status = 200, description = "text/event-stream: `balance` and `notice` events (the schema describes one event as an SSE client reads it: `{event, id, data}`); `id:` is the seq; a comment heartbeat every 15 s; the stream ends when the server stops", content_type = "text/event-stream", body = StreamEvent),
        (status = 401, body = ErrorBody),
        (status = 429, description = "rate_limited: too many requests, or already 8 open streams for this token", body = ErrorBody)))]
pub async fn events(
    State(app): State<App>,
    AccountId(account): AccountId,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    // AccountId has checked the token; its hash is there.
    let token = bearer_hash(&headers).ok_or(ApiError::Unauthorized)?;
    let slot = StreamSlots::take(&app, &account, token).await?;
    // Subscribe before reading the backlog so nothing falls between the two.
    let rx = app.events.subscribe();
    let app_stopping = app.stopping.clone();
    let app_tokens = app.clone();
    let (backlog, last_notice) = catch_up(&app, &account, after).await?;
    let live = stream::unfold(
        (rx, app, account, last_notice),
        |(mut rx, app, account, mut last)| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.account == account => {
                        if ev.kind == "notice" && ev.seq <= last {
                            continue;
                        }
                        if ev.kind == "notice" {
                            last = ev.seq;
                        }
                        let out = vec![sse(ev.kind, ev.seq, ev.data.clone())];
                        return Some((stream::iter(out), (rx, app, account, last)));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Too slow for the live feed: replay from the database instead.
                        let (out, new_last) = catch_up(&app, &account, Some(last)).await.ok()?;
                        last = new_last.max(last);
                        return Some((stream::iter(out), (rx, app, account, last)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
    .flatten();
    // A stopping server ends its streams, so the stop does not wait for them; the client
    // reconnects (with `Last-Event-ID`) to whichever server comes up.
    // A revoked token's stream ends at its next event (the heartbeat is not one): what it
    // has not been sent yet, it may no longer see.
    // (Asked of the store itself on a shared database: another process may have revoked it.)
    let live = live.take_while(move |_| {
        let app = app_tokens.clone();
        // A store that cannot be asked ends the stream too; the client reconnects.
        async move { matches!(app.authenticate(&token).await, Ok(Some(_))) }
    });
    let mut stopping = app_stopping;
    let all = stream::iter(backlog)
        .chain(live)
        .map(move |e| {
            // The slot is the stream's: given back when the stream is dropped.
            let _ = &slot;
            Ok(e)
        })
        .take_until(async move {
            let _ = stopping.wait_for(|s| *s).await;
        });
    Ok(Sse::new(all).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("heartbeat"),
    ))
}

/// Sends this process's announcements of committed changes to the other processes, on a
/// thread and a connection of its own: every announcement waiting is sent together, a line
/// each, in one `pg_notify` (PostgreSQL's notifications are limited to 8,000 bytes, so at
/// most about 7,000 per notification). Not from inside the writers' transactions: PostgreSQL
/// commits transactions that notify one at a time, and every charge would wait for every
/// other's commit (measured: 1,757 charges/s at 16 connections, against 22,537 for the
/// guarded UPDATE baseline). A process that dies between a commit and its announcement
/// leaves the other processes' streams to learn of it with the account's next event or
/// their clients' next connection (the catch-up by `Last-Event-ID`).
pub fn start_announcer(url: String) -> std::sync::mpsc::Sender<String> {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let spawned = std::thread::Builder::new()
        .name("ledger-announcer".into())
        .spawn(move || {
            let mut session: Option<store::PgSession> = None;
            while let Ok(first) = rx.recv() {
                let mut waiting = vec![first];
                while let Ok(more) = rx.try_recv() {
                    waiting.push(more);
                }
                let mut chunks: Vec<String> = Vec::new();
                for a in waiting {
                    match chunks.last_mut() {
                        Some(c) if c.len() + a.len() < 7000 => {
                            c.push('\n');
                            c.push_str(&a);
                        }
                        _ => chunks.push(a),
                    }
                }
                if session.as_ref().is_none_or(|s| s.is_closed()) {
                    session = store::PgSession::connect(&url)
                        .map_err(
                            |e| tracing::warn!(error = %e, "announcer cannot reach the database"),
                        )
                        .ok();
                }
                let Some(s) = session.as_ref() else {
                    continue;
                };
                for c in chunks {
                    if let Err(e) = store::announce(store::Db::Pg(s), &c) {
                        tracing::warn!(error = %e, "announcement lost");
                        session = None;
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the announcer");
    }
    tx
}

/// A shared database's announcements (`pg_notify` from every process's announcer, see
/// `start_announcer`) turned into this process's live events, so a client may stream from any
/// process: each payload is `<process> <account> <first notice seq> <last notice seq>`; the
/// notices are read back from the database (the stored sequence, as a stream's catch-up
/// reads them) and the balance from the account's committed state. A process skips its own
/// announcements: its writer has published them already. Runs on a thread of its own and
/// reconnects if the database goes away (events missed meanwhile reach a client through
/// the catch-up of its next connection, by `Last-Event-ID`).
pub fn listen_shared(
    url: String,
    tag: String,
    events: broadcast::Sender<Arc<Event>>,
    clock: crate::clock::Clock,
) {
    let spawned = std::thread::Builder::new()
        .name("ledger-listener".into())
        .spawn(move || loop {
            if let Err(e) = listen_once(&url, &tag, &events, &clock) {
                tracing::warn!(error = %e, "event listener lost the database; reconnecting");
            }
            std::thread::sleep(Duration::from_millis(200));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the event listener");
    }
}

fn listen_once(
    url: &str,
    tag: &str,
    events: &broadcast::Sender<Arc<Event>>,
    clock: &crate::clock::Clock,
) -> Result<(), store::Error> {
    let mut listener = postgres::Client::connect(url, postgres::NoTls)?;
    listener.batch_execute("LISTEN creditbar_events")?;
    let reader = store::PgSession::connect(url)?;
    let publisher = Publisher {
        events: events.clone(),
        intents: tokio::sync::mpsc::unbounded_channel().0,
        clock: clock.clone(),
    };
    loop {
        let mut payloads = Vec::new();
        {
            use postgres::fallible_iterator::FallibleIterator;
            let mut notifications = listener.notifications();
            // Waits for one, then takes whatever else has arrived without waiting.
            let first = notifications
                .timeout_iter(Duration::from_secs(5))
                .next()?
                .map(|n| n.payload().to_owned());
            if let Some(first) = first {
                payloads.push(first);
                let mut arrived = notifications.iter();
                while let Some(n) = arrived.next()? {
                    payloads.push(n.payload().to_owned());
                    if payloads.len() >= 256 {
                        break;
                    }
                }
            }
        }
        if payloads.is_empty() {
            // A quiet minute and a lost connection look alike to the iterator.
            listener.batch_execute("SELECT 1")?;
            continue;
        }
        if events.receiver_count() == 0 {
            continue;
        }
        for p in payloads.iter().flat_map(|p| p.lines()) {
            let mut parts = p.split(' ');
            let (Some(from_process), Some(account), Some(first), Some(last)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if from_process == tag {
                continue;
            }
            let (first, last) = (first.parse().unwrap_or(0i64), last.parse().unwrap_or(0i64));
            let db = store::Db::Pg(&reader);
            if last > 0 {
                for (_, body) in store::notices_page(db, account, first - 1, 1000)?
                    .into_iter()
                    .filter(|(seq, _)| *seq <= last)
                {
                    if let Ok(notice) = serde_json::from_str::<Notice>(&body) {
                        publisher.notice(account, &notice);
                    }
                }
            }
            if let Some(a) = store::account_state(db, account)? {
                publisher.balance(&a.state);
            }
        }
    }
}
