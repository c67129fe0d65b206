//! `--demo`: an account with a month of realistic usage, so the tray, dashboard and
//! forecasts have something to show on first run.
//!
//! The ledger cannot go back in time, so every credit movement (the welcome bonus, a pack
//! bought with the saved test card, each usage charge) is a real posting at the current
//! time; only the usage history rows carry back-dated times, spread over the last 30 days.
//! The total is kept well inside the plan's allowance plus the bonus and the pack, so the
//! balance stays healthy and auto-refill (configured last) does not fire.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use creditbar_ledger::{
    price, Account, AutoRefillSettings, Catalog, Command, Credits, GrantReason, Usage, UsageKind,
    UsageStatus, MICROS_PER_CREDIT,
};

use crate::app::App;
use crate::error::ApiError;
use crate::gateway::CardInput;
use crate::secret::Secret;
use crate::store::{self, PaymentMethodRow};

pub const EMAIL: &str = "demo@creditbar.dev";
/// The plan the demo account is on: `pro` where the catalog has one, else its cheapest
/// paid plan, else its first.
fn demo_plan(c: &Catalog) -> String {
    if c.plan("pro").is_ok() {
        return "pro".into();
    }
    c.plans
        .iter()
        .filter(|p| p.price_cents.0 > 0)
        .min_by_key(|p| p.price_cents)
        .or_else(|| c.plans.first())
        .map(|p| p.id.clone())
        .unwrap_or_default()
}

/// The pack the demo buys and auto-refills: `pack_500` where there is one, else the first.
fn demo_pack(c: &Catalog) -> Option<String> {
    if c.pack("pack_500").is_ok() {
        return Some("pack_500".into());
    }
    c.packs.first().map(|p| p.id.clone())
}

/// The models the demo's history uses as its premium, standard and lite roles: the plan's
/// models from the dearest to the cheapest (one model plays every role).
fn demo_models(c: &Catalog, plan: &str) -> [String; 3] {
    let mut models: Vec<&creditbar_ledger::Model> = c
        .models
        .iter()
        .filter(|m| c.plan(plan).is_ok_and(|p| p.allows(&m.id)))
        .collect();
    models.sort_by_key(|m| {
        std::cmp::Reverse(
            m.request_price
                .map(|p| p.micros())
                .unwrap_or(m.output_rate + m.input_rate),
        )
    });
    let pick = |i: usize| {
        models
            .get(i.min(models.len().saturating_sub(1)))
            .map(|m| m.id.clone())
            .unwrap_or_default()
    };
    [pick(0), pick(models.len() / 2), pick(models.len())]
}
const TIMEZONE: Tz = chrono_tz::Europe::Paris;
/// Most the month of usage may cost, in credits: the account holds 505 (pro) + 100 (bonus)
/// + 500 (pack) when the history is charged.
const USAGE_BUDGET_CREDITS: i64 = 520;

/// Projects and their threads: 5 projects, 15 threads.
const THREADS: &[(&str, &str)] = &[
    ("storefront", "checkout-flow-refactor"),
    ("storefront", "product-page-perf"),
    ("storefront", "cart-bug-safari"),
    ("storefront", "a11y-audit"),
    ("api", "rate-limiter"),
    ("api", "postgres-migration"),
    ("api", "webhook-retries"),
    ("api", "openapi-cleanup"),
    ("mobile", "offline-sync"),
    ("mobile", "push-notifications"),
    ("mobile", "login-crash"),
    ("data-pipeline", "nightly-etl"),
    ("data-pipeline", "dedupe-events"),
    ("docs", "getting-started-rewrite"),
    ("docs", "api-reference"),
];

/// A small deterministic generator: the demo is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct DemoEvent {
    id: String,
    at: DateTime<Utc>,
    local_day: String,
    project: &'static str,
    thread: &'static str,
    usage: Usage,
}

fn kind_str(k: UsageKind) -> &'static str {
    match k {
        UsageKind::Chat => "chat",
        UsageKind::Agent => "agent",
        UsageKind::Edit => "edit",
        UsageKind::Summarization => "summarization",
    }
}

fn local_instant(day: NaiveDate, hour: u32, minute: u32) -> Option<DateTime<Utc>> {
    let local = day.and_hms_opt(hour, minute, 0)?;
    TIMEZONE
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A month of usage ending at `now`: busy weekdays, quiet weekends, each thread active for
/// a stretch of days, premium for agent work, lite for quick edits.
fn history(now: DateTime<Utc>, models: &[String; 3]) -> Vec<DemoEvent> {
    let mut rng = Rng(0x00C0_FFEE);
    let today = now.with_timezone(&TIMEZONE).date_naive();
    let mut events = Vec::new();
    for back in (0..30).rev() {
        let day = today - Duration::days(back);
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let count = match (back, weekend) {
            // Today always has some, in the hours just before now.
            (0, _) => rng.range(3, 6),
            (_, true) => rng.range(0, 3),
            (_, false) => rng.range(6, 12),
        };
        // Threads live for about a week each, staggered over the month.
        let live: Vec<&(&str, &str)> = THREADS
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let start = (*i as i64 * 2) % 28;
                let age = 29 - back - start;
                (0..9).contains(&age)
            })
            .map(|(_, t)| t)
            .collect();
        let pool = if live.is_empty() {
            THREADS.iter().collect()
        } else {
            live
        };
        let mut times: Vec<DateTime<Utc>> = (0..count)
            .filter_map(|_| {
                if back == 0 {
                    Some(now - Duration::minutes(rng.range(2, 300) as i64))
                } else {
                    local_instant(day, rng.range(9, 19) as u32, rng.range(0, 59) as u32)
                }
            })
            .filter(|t| *t < now)
            .collect();
        times.sort();
        for at in times {
            let (project, thread) = *pool[rng.range(0, pool.len() as u64 - 1) as usize];
            let roll = rng.range(0, 99);
            let (kind, model) = match roll {
                0..=34 => (UsageKind::Agent, &models[0]),
                35..=59 => (UsageKind::Chat, &models[1]),
                60..=79 => (UsageKind::Edit, &models[2]),
                80..=91 => (UsageKind::Agent, &models[1]),
                _ => (UsageKind::Summarization, &models[2]),
            };
            let input = match kind {
                UsageKind::Agent => rng.range(20_000, 60_000),
                UsageKind::Chat => rng.range(4_000, 20_000),
                UsageKind::Edit => rng.range(2_000, 8_000),
                UsageKind::Summarization => rng.range(30_000, 90_000),
            };
            // Long threads hit the prompt cache hard.
            let cached = input * rng.range(40, 85) / 100;
            let output = match kind {
                UsageKind::Agent => rng.range(1_500, 6_000),
                UsageKind::Chat => rng.range(300, 2_000),
                UsageKind::Edit => rng.range(200, 1_200),
                UsageKind::Summarization => rng.range(500, 1_500),
            };
            let status = if rng.chance(4) {
                UsageStatus::Cancelled
            } else {
                UsageStatus::Completed
            };
            events.push(DemoEvent {
                id: format!("demo-{:04}", events.len() + 1),
                at,
                local_day: at.with_timezone(&TIMEZONE).format("%Y-%m-%d").to_string(),
                project,
                thread,
                usage: Usage {
                    model: model.clone(),
                    kind,
                    status,
                    input_tokens: input,
                    cached_input_tokens: cached,
                    output_tokens: output,
                },
            });
        }
    }
    events
}

fn demo_card(now: DateTime<Utc>) -> CardInput {
    CardInput {
        number: "4242424242424242".into(),
        exp_month: 12,
        exp_year: now.year() + 3,
        cvc: "123".into(),
    }
}

/// A new token for an account that exists; published once committed.
async fn issue_token(app: &App, account: String) -> Result<Secret, ApiError> {
    let token = app.ids.secret("cb_");
    let hash = token.hash();
    let app2 = app.clone();
    app.writer
        .run(move |ctx| {
            store::insert_token(ctx.tx, &hash, &account, ctx.now)?;
            ctx.after_commit(move || {
                app2.tokens
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, account);
            });
            Ok(())
        })
        .await?;
    Ok(token)
}

/// Creates the demo account (or, when the database already has it, a new token for it)
/// and returns its account token.
pub async fn create(app: &App) -> Result<Secret, ApiError> {
    let existing = app
        .writer
        .run(|ctx| {
            Ok(ctx
                .memory
                .accounts
                .values()
                .find(|r| r.email == EMAIL)
                .map(|r| r.state.id.clone()))
        })
        .await?;
    if let Some(account) = existing {
        return issue_token(app, account).await;
    }

    let account = app.ids.id("acc");
    let now = app.clock.now();
    let gateway = app.gateway.clone();
    let card = tokio::task::spawn_blocking(move || gateway.save_card(&demo_card(now), now))
        .await
        .map_err(|e| ApiError::Internal(format!("gateway task: {e}")))??;
    let card_token = app.ids.secret("pm_");
    let card_hash = card_token.hash();
    let method = PaymentMethodRow {
        account_id: account.clone(),
        id: app.ids.id("card"),
        brand: card.brand,
        last4: card.last4,
        exp_month: 12,
        exp_year: now.year() + 3,
        behavior: card.behavior,
    };

    // The account, its token, a welcome bonus and the saved card.
    let token = app.ids.secret("cb_");
    let hash = token.hash();
    let (id, app2) = (account.clone(), app.clone());
    app.writer
        .run(move |ctx| {
            let plan = demo_plan(ctx.catalog);
            let (state, step) = Account::open(ctx.catalog, id.clone(), &plan, TIMEZONE, ctx.now)?;
            ctx.insert_account(EMAIL.to_owned(), state, step)?;
            store::insert_token(ctx.tx, &hash, &id, ctx.now)?;
            ctx.apply(
                &id,
                Command::Grant {
                    id: "demo-welcome".into(),
                    amount: Credits::from_micros(100 * MICROS_PER_CREDIT),
                    reason: GrantReason::Promo,
                    expires_at: None,
                    note: Some("Welcome to creditbar".into()),
                },
            )?;
            store::insert_payment_method(ctx.tx, &card_hash, &method, ctx.now)?;
            ctx.after_commit(move || {
                app2.tokens
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, id);
            });
            Ok(())
        })
        .await?;

    // A pack bought with the saved card, through the payment machine like any purchase,
    // and auto-refill on with it (where the catalog sells packs).
    let pack = demo_pack(&app.catalog);
    if let Some(pack_id) = &pack {
        let p = app.catalog.pack(pack_id)?.clone();
        let order = crate::billing::purchase::Order {
            pack: Some(pack_id.clone()),
            credits: p.credits,
            cents: p.price_cents,
            card: card_hash,
            key: "demo-pack".into(),
            body_hash: pack_id.as_bytes().to_vec(),
        };
        let bought = crate::billing::purchase::buy(app, &account, order).await?;
        if bought.status != crate::billing::intent::SUCCEEDED {
            return Err(ApiError::Internal(format!(
                "the demo purchase is {}",
                bought.status
            )));
        }
    }
    let models = demo_models(&app.catalog, &demo_plan(&app.catalog));
    let events = history(now, &models);
    app.writer
        .run(move |ctx| {
            charge_history(ctx, &account, events)?;
            store::set_auto_refill_method(ctx.tx, &account, &card_hash)?;
            if let Some(pack) = pack {
                let settings = AutoRefillSettings {
                    enabled: true,
                    threshold: Credits::from_micros(100 * MICROS_PER_CREDIT),
                    pack,
                    monthly_limit: 3,
                };
                ctx.apply(&account, Command::ConfigureAutoRefill { settings })?;
            }
            Ok(())
        })
        .await?;
    Ok(token)
}

/// Charges each history event now and records it at its back-dated time, within budget.
fn charge_history(
    ctx: &mut crate::writer::Ctx<'_>,
    account: &str,
    events: Vec<DemoEvent>,
) -> Result<(), ApiError> {
    let mut left = USAGE_BUDGET_CREDITS * MICROS_PER_CREDIT;
    for e in events {
        let cost = price(ctx.catalog, &e.usage)?.micros();
        // Within the budget and what the account holds under this catalog.
        if cost > left || cost > ctx.account(account)?.state.available().micros() {
            continue;
        }
        left -= cost;
        ctx.apply(
            account,
            Command::Charge {
                id: e.id.clone(),
                usage: e.usage.clone(),
            },
        )?;
        let status = match e.usage.status {
            UsageStatus::Completed => "completed",
            UsageStatus::Cancelled => "cancelled",
        };
        store::insert_usage(
            ctx.tx,
            account,
            &store::UsageRow {
                id: &e.id,
                at: e.at,
                local_day: e.local_day,
                project: e.project,
                thread: e.thread,
                model: &e.usage.model,
                kind: kind_str(e.usage.kind),
                status,
                input_tokens: e.usage.input_tokens,
                cached_input_tokens: e.usage.cached_input_tokens,
                output_tokens: e.usage.output_tokens,
                charged: cost,
                hold_id: None,
                body_hash: None,
                response: None,
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_spans_a_month_of_threads_projects_and_models_within_budget() {
        let now: DateTime<Utc> = "2026-11-21T18:00:00Z".parse().unwrap_or_default();
        let catalog = creditbar_ledger::Catalog::default();
        let roles = demo_models(&catalog, &demo_plan(&catalog));
        assert_eq!(roles, ["premium", "standard", "lite"]);
        let events = history(now, &roles);
        let total: i64 = events
            .iter()
            .map(|e| price(&catalog, &e.usage).map(|c| c.micros()).unwrap_or(0))
            .sum();
        let days: std::collections::BTreeSet<_> = events.iter().map(|e| &e.local_day).collect();
        let threads: std::collections::BTreeSet<_> = events.iter().map(|e| e.thread).collect();
        let projects: std::collections::BTreeSet<_> = events.iter().map(|e| e.project).collect();
        let models: std::collections::BTreeSet<_> =
            events.iter().map(|e| e.usage.model.as_str()).collect();
        assert!(events
            .iter()
            .all(|e| e.at < now && e.at > now - Duration::days(31)));
        assert!(days.len() >= 20, "{} days", days.len());
        assert_eq!(threads.len(), THREADS.len());
        assert_eq!(projects.len(), 5);
        assert_eq!(models.len(), 3);
        // All of it fits the budget: no event is skipped.
        assert!(total > 300 * MICROS_PER_CREDIT, "total {total}");
        assert!(
            total <= USAGE_BUDGET_CREDITS * MICROS_PER_CREDIT,
            "total {total}"
        );
    }
}
