//! `creditbar`: the client engine from a terminal or a status bar.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use creditbar_client::alerts::AlertKind;
use creditbar_client::api::PurchaseItem;
use creditbar_client::cache::Opened;
use creditbar_client::engine::{data_dir, Engine, Status};
use creditbar_client::format::{ago, countdown, credits_long, credits_short};
use creditbar_client::keychain::Keychain;
use creditbar_client::notify::DesktopNotifier;
use creditbar_ledger::Credits;
use secrecy::SecretString;

/// `println!` that returns an error instead of panicking when stdout is closed
/// (`creditbar status --json | head -1`); `main` ends such a run quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// creditbar: your AI credits, from the terminal.
#[derive(Parser)]
#[command(
    name = "creditbar",
    version,
    after_help = "Environment: CREDITBAR_DATA_DIR (the offline cache; default \
                  ~/.local/share/creditbar), CREDITBAR_LOG_DIR (logs; default \
                  ~/.local/state/creditbar/logs), RUST_LOG (log detail, e.g. debug)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sign in with an account token (asked for, or read from stdin; never an argument).
    Login {
        /// The account server's address, e.g. https://credits.example.com.
        #[arg(long, value_name = "URL", value_hint = clap::ValueHint::Url)]
        server: String,
        /// Read the token from standard input instead of prompting.
        #[arg(long)]
        token_stdin: bool,
        /// Allow a plain http:// server that is not this machine: the token then travels
        /// unencrypted. `status` and the tray keep warning about it.
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// Sign out: remove the keychain items and the local cache.
    Logout,
    /// The balance. Exit code: 0 ok, 10 low, 11 empty, 12 stale.
    Status {
        /// The status as JSON (exact micro-credits), for scripts.
        #[arg(long, conflicts_with = "waybar")]
        json: bool,
        /// One line of JSON for waybar's custom module.
        #[arg(long)]
        waybar: bool,
        /// Answer from the cache without contacting the server.
        #[arg(long)]
        offline: bool,
    },
    /// Sync the cache with the server once.
    Sync,
    /// Stay in sync live and raise notifications until stopped.
    Watch,
    /// Usage grouped by day, model, project or thread.
    Usage {
        /// How to group the usage.
        #[arg(long, value_enum, default_value_t = UsageBy::Day)]
        by: UsageBy,
        /// The groups as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Manage the saved card.
    Card {
        #[command(subcommand)]
        action: CardCmd,
    },
    /// Buy a pack (pack_500, pack_2500, pack_12500) or a custom amount.
    Buy {
        /// The pack to buy, as the server's catalog names it (e.g. pack_500).
        #[arg(
            value_name = "PACK",
            required_unless_present = "custom_cents",
            conflicts_with = "custom_cents"
        )]
        pack: Option<String>,
        /// A custom amount in US cents (25 credits per dollar).
        #[arg(long)]
        custom_cents: Option<i64>,
    },
    /// Show the plan, or change it: `creditbar plan pro` shows the price and the prorated
    /// credits of the change and asks before charging the saved card.
    Plan {
        /// The plan to change to (with none: show the plan and the choices).
        plan: Option<String>,
        /// Change without asking (needed when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Show the account's timezone, or set it (an IANA name such as Europe/Paris): daily
    /// credits reset at midnight there, from the next daily reset on.
    Timezone {
        /// The timezone to set (with none: show it).
        timezone: Option<String>,
    },
    /// Every purchase: packs, auto-refills and plan charges, with their status
    /// (pending, succeeded, failed, refunded).
    Purchases {
        /// The purchases as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show or change auto-refill (with no subcommand: show it).
    AutoRefill {
        #[command(subcommand)]
        action: Option<RefillCmd>,
    },
    /// Report a thread that cost more than it should have.
    Report {
        /// The thread's id, as `creditbar usage --by thread` lists it.
        thread: String,
        /// What went wrong, in your words (sent to the reviewers).
        #[arg(long)]
        description: String,
        /// The model the thread used.
        #[arg(long)]
        model: Option<String>,
        /// A preview or build was failing while the thread ran.
        #[arg(long)]
        preview_failing: bool,
        /// How many messages the thread had.
        #[arg(long, value_name = "N")]
        thread_messages: Option<u32>,
        /// The thread had a large context.
        #[arg(long)]
        large_context: bool,
    },
    /// Your usage reviews and their outcome (open; resolved, with or without credits back).
    Reviews {
        /// As JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show or change notification settings.
    Settings {
        /// Low-balance threshold in credits (e.g. 50 or 12.5).
        #[arg(long, value_name = "CREDITS", value_parser = credits_arg, allow_hyphen_values = true)]
        low_threshold: Option<Credits>,
        /// Turn a notification kind on (repeatable).
        #[arg(long, value_enum, value_name = "KIND")]
        enable: Vec<AlertKind>,
        /// Turn a notification kind off (repeatable).
        #[arg(long, value_enum, value_name = "KIND")]
        disable: Vec<AlertKind>,
        /// Warn this many hours before plan credits expire at the renewal (1 to 744).
        #[arg(long, value_name = "HOURS")]
        expiry_lead_hours: Option<u32>,
        /// Warn again below this balance (credits; repeatable; replaces the list; 0 clears
        /// it): `--also-below 20 --also-below 5`.
        #[arg(long, value_name = "CREDITS", value_parser = credits_arg)]
        also_below: Vec<Credits>,
    },
    /// Write the shell completions (bash, zsh, fish) and man pages into a directory; the
    /// packages install them (scripts/package).
    #[command(hide = true)]
    GenerateAssets {
        /// The directory to write into (made if missing).
        #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        out: PathBuf,
    },
}

/// The groupings of `creditbar usage`.
#[derive(Clone, Copy, ValueEnum)]
enum UsageBy {
    /// One row per calendar day, in the account's timezone.
    Day,
    Model,
    Project,
    Thread,
}

impl UsageBy {
    fn name(self) -> &'static str {
        match self {
            UsageBy::Day => "day",
            UsageBy::Model => "model",
            UsageBy::Project => "project",
            UsageBy::Thread => "thread",
        }
    }
}

#[derive(Subcommand)]
enum CardCmd {
    /// Add a card (number, expiry and CVC are asked for; only a token is kept, in the keychain).
    Add,
}

#[derive(Subcommand)]
enum RefillCmd {
    /// The current setting, after a sync.
    Show,
    /// Turn auto-refill on, charging the saved card (`creditbar card add`).
    On {
        /// Refill when the balance falls below this many credits (e.g. 50 or 12.5).
        #[arg(long, value_name = "CREDITS", value_parser = credits_arg, allow_hyphen_values = true)]
        threshold: Credits,
        /// The pack each refill buys (pack_500, pack_2500, pack_12500).
        #[arg(long, value_name = "PACK", default_value = "pack_500")]
        pack: String,
        /// At most this many refills a month.
        #[arg(long, value_name = "N", default_value_t = 3)]
        limit: u32,
    },
    /// Turn auto-refill off, keeping its threshold, pack and limit for next time.
    Off,
}

/// A threshold typed by a person (`50`, `12.5`): credits, exactly, and not negative.
fn credits_arg(s: &str) -> Result<Credits, String> {
    let c = s.parse::<Credits>().map_err(|e| e.to_string())?;
    if c.is_negative() {
        return Err(format!(
            "`{s}` is negative: a threshold is 0 or more credits"
        ));
    }
    Ok(c)
}

/// The completions and man pages the packages install: `completions/creditbar.bash`,
/// `completions/_creditbar` (zsh), `completions/creditbar.fish`, and `man/creditbar.1` with
/// one page per subcommand (`creditbar-usage.1`, ...).
fn generate_assets(out: &Path) -> anyhow::Result<()> {
    use clap_complete::Shell;
    let completions = out.join("completions");
    let man = out.join("man");
    for dir in [&completions, &man] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "creditbar", &completions)?;
    }
    clap_mangen::generate_to(Cli::command(), &man)?;
    Ok(())
}

fn read_secret(prompt: &str) -> anyhow::Result<SecretString> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        read_line(prompt)?
    };
    Ok(SecretString::from(value.trim().to_owned()))
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

fn open() -> anyhow::Result<Engine> {
    let dir = data_dir()?;
    let (engine, opened) = Engine::open(&dir, Box::new(Keychain), Arc::new(chrono::Utc::now))?;
    if let Opened::Rebuilt { set_aside, reason } = opened {
        eprintln!("The local cache was unreadable ({reason}); it was set aside as {} and will be rebuilt from the server.", set_aside.display());
    }
    Ok(engine)
}

/// The warning `status` prints while the server is reached over plain http:// elsewhere.
fn insecure_warning(s: &Status) -> Option<String> {
    s.insecure_http.then(|| {
        format!(
            "Warning: not encrypted — {} is plain http:// (signed in with --allow-insecure-http); \
             your account token travels in cleartext.",
            s.server.as_deref().unwrap_or("the server")
        )
    })
}

fn print_status(
    s: &Status,
    unit: Option<&creditbar_client::wire::CatalogUnit>,
) -> std::io::Result<()> {
    if let Some(w) = insecure_warning(s) {
        out!("{w}");
    }
    let Some(b) = &s.balance else {
        out!("No balance yet: run `creditbar login --server URL`.");
        return Ok(());
    };
    let hint = unit
        .and_then(|u| creditbar_client::format::unit_hint(b.available, u))
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    out!(
        "{} available{hint}{}",
        credits_long(b.available),
        if b.held > 0 {
            format!(" ({} held)", credits_long(b.held))
        } else {
            String::new()
        }
    );
    let rows = [
        ("Daily", &b.buckets.daily),
        ("Subscription", &b.buckets.subscription),
        ("Bonus", &b.buckets.bonus),
        ("Purchased", &b.buckets.purchased),
    ];
    for (name, bucket) in rows {
        let reset = bucket
            .next_reset
            .map(|t| format!(" · resets in {}", countdown(s.now, t)))
            .unwrap_or_default();
        out!("  {name:<13}{}{reset}", credits_long(bucket.available));
    }
    match (s.stale, s.last_contact) {
        (false, Some(t)) => out!("Updated {}", ago(s.now, t)),
        (true, Some(t)) => out!("Offline — showing cached (last contact {})", ago(s.now, t)),
        (_, None) => out!("Offline — showing cached"),
    }
    Ok(())
}

fn waybar(s: &Status) -> serde_json::Value {
    let text = s
        .balance
        .as_ref()
        .map(|b| credits_short(b.available))
        .unwrap_or_else(|| "— cr".into());
    let mut tooltip = Vec::new();
    if let Some(w) = insecure_warning(s) {
        tooltip.push(w);
    }
    if let Some(b) = &s.balance {
        tooltip.push(format!("{} available", credits_long(b.available)));
        for (name, bucket) in [
            ("Daily", &b.buckets.daily),
            ("Subscription", &b.buckets.subscription),
        ] {
            if let Some(t) = bucket.next_reset {
                tooltip.push(format!(
                    "{name} {} · resets in {}",
                    credits_long(bucket.available),
                    countdown(s.now, t)
                ));
            }
        }
    }
    if s.stale {
        tooltip.push("Offline — showing cached".into());
    }
    let class = serde_json::to_value(s.level).unwrap_or_default();
    serde_json::json!({"text": text, "tooltip": tooltip.join("\n"), "class": class, "alt": class})
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Login {
            server,
            token_stdin,
            allow_insecure_http,
        } => {
            let token = if token_stdin {
                let mut t = String::new();
                std::io::stdin().read_line(&mut t)?;
                SecretString::from(t.trim().to_owned())
            } else {
                read_secret("Account token: ")?
            };
            let mut engine = open()?;
            let account = engine.login(&server, token, allow_insecure_http).await?;
            out!("Signed in as {} ({} plan).", account.email, account.plan);
            if let Some(w) = insecure_warning(&engine.status()?) {
                eprintln!("{w}");
            }
        }
        Cmd::Logout => {
            open()?.logout()?;
            out!("Signed out: keychain items and cache removed.");
        }
        Cmd::Status {
            json,
            waybar: bar,
            offline,
        } => {
            let mut engine = open()?;
            // Best effort: a short sync, else the cache answers and says it is stale.
            let status = if offline {
                engine.status()?
            } else {
                engine
                    .fresh_status(std::time::Duration::from_secs(3))
                    .await?
            };
            if !offline && !json && !bar {
                // The unit the platform reads balances in; best effort, cached for offline.
                let _ = engine.catalog().await;
            }
            if json {
                out!("{}", serde_json::to_string_pretty(&status)?);
            } else if bar {
                out!("{}", waybar(&status));
            } else {
                print_status(&status, engine.cached_unit().as_ref())?;
            }
            return Ok(ExitCode::from(status.level.exit_code() as u8));
        }
        Cmd::Sync => {
            let mut engine = open()?;
            let report = engine.sync().await?;
            out!(
                "Synced: {} new ledger entries, {} new notices.",
                report.new_entries,
                report.new_notices
            );
        }
        Cmd::Watch => {
            let mut engine = open()?;
            eprintln!("Watching for changes; Ctrl-C to stop.");
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            engine.watch(&DesktopNotifier, stop).await?;
        }
        Cmd::Usage { by, json } => {
            let by = by.name();
            let mut engine = open()?;
            let fresh = engine.refresh_usage().await.is_ok();
            let rows = engine.usage(by)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                if !fresh {
                    out!("Offline — showing cached usage");
                }
                out!("{:<28} {:>16} {:>8}", by, "charged", "events");
                for r in rows {
                    out!(
                        "{:<28} {:>16} {:>8}",
                        r.key,
                        credits_long(r.charged),
                        r.events
                    );
                }
            }
        }
        Cmd::Card {
            action: CardCmd::Add,
        } => {
            let mut engine = open()?;
            let number = read_secret("Card number: ")?;
            let month: u32 = read_line("Expiry month (1-12): ")?
                .parse()
                .context("expiry month must be a number 1-12")?;
            let year: i32 = read_line("Expiry year (e.g. 2030): ")?
                .parse()
                .context("expiry year must be a four-digit year")?;
            let cvc = read_secret("CVC: ")?;
            let card = engine.add_card(number, month, year, cvc).await?;
            out!(
                "Saved {} ending in {} (expires {:02}/{}).",
                card.brand,
                card.last4,
                card.exp_month,
                card.exp_year
            );
        }
        Cmd::Buy { pack, custom_cents } => {
            let item = match (pack, custom_cents) {
                (Some(p), None) => PurchaseItem::Pack(p),
                (None, Some(c)) => PurchaseItem::CustomCents(c),
                _ => bail!("give a pack or --custom-cents"),
            };
            let mut engine = open()?;
            let r = engine.buy(item).await?;
            if r.status == "pending" {
                out!(
                    "The payment of {} for {} is being confirmed; the server finishes it \
                     by itself (see `creditbar purchases`). Running the same command again \
                     never buys twice.",
                    creditbar_ledger::Cents(r.price_cents),
                    credits_long(r.credits)
                );
            } else {
                out!(
                    "Bought {} for {}. Balance: {}.",
                    credits_long(r.credits),
                    creditbar_ledger::Cents(r.price_cents),
                    credits_long(r.balance.available)
                );
            }
        }
        Cmd::Plan { plan, yes } => {
            let mut engine = open()?;
            match plan {
                None => {
                    let p = engine.plan().await?;
                    out!("{}", plan_line(&p));
                    let v = engine.plan_choices().await?;
                    out!("Plans:");
                    for c in &v.choices {
                        let models = match &c.models {
                            Some(m) => format!(" — models: {}", m.join(", ")),
                            None => String::new(),
                        };
                        out!(
                            "  {}{}: {}{models}",
                            c.id,
                            if c.current { " (current)" } else { "" },
                            c.summary
                        );
                    }
                }
                Some(plan) => {
                    let q = engine.plan_quote(&plan).await?;
                    let what = match q.change.as_str() {
                        "upgrade" => format!(
                            "Upgrade to {} now: {} charged to the saved card today, and {} \
                             more until the period ends.",
                            q.plan,
                            creditbar_ledger::Cents(q.price_cents),
                            credits_long(q.credits)
                        ),
                        "downgrade" => format!(
                            "Change to {} at the end of this period ({}); nothing is charged.",
                            q.plan,
                            q.effective_at.format("%Y-%m-%d %H:%M UTC")
                        ),
                        _ => format!("You are on {} already.", q.plan),
                    };
                    out!("{what}");
                    if q.change != "same" && !yes && !confirm("Confirm?")? {
                        out!("Nothing changed.");
                        return Ok(ExitCode::SUCCESS);
                    }
                    let (p, pending) = engine.change_plan(&plan).await?;
                    if pending {
                        out!("The payment is being confirmed; the plan changes once it succeeds.");
                    }
                    out!("{}", plan_line(&p));
                }
            }
        }
        Cmd::Timezone { timezone } => {
            let mut engine = open()?;
            match timezone {
                None => {
                    let _ = engine.sync().await;
                    match engine.cache().account()? {
                        Some(a) => out!(
                            "Timezone: {} (daily credits next reset {})",
                            a.timezone,
                            a.next_daily_reset.format("%Y-%m-%d %H:%M UTC")
                        ),
                        None => out!("No account yet: run `creditbar login --server URL`."),
                    }
                }
                Some(tz) => {
                    let a = engine.set_timezone(&tz).await?;
                    out!(
                        "Timezone set to {}; it applies from the next daily reset ({}).",
                        a.timezone,
                        a.next_daily_reset.format("%Y-%m-%d %H:%M UTC")
                    );
                }
            }
        }
        Cmd::Purchases { json } => {
            let mut engine = open()?;
            if let Err(e) = engine.sync().await {
                eprintln!("creditbar: offline ({e}); showing the purchases last synced");
            }
            let purchases = engine.purchases()?;
            if json {
                out!("{}", serde_json::to_string_pretty(&purchases)?);
            } else if purchases.is_empty() {
                out!("No purchases yet.");
            } else {
                for p in purchases {
                    let when = p
                        .created_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default();
                    let what = p
                        .pack
                        .clone()
                        .unwrap_or_else(|| p.source.clone().unwrap_or_else(|| "custom".into()));
                    out!(
                        "{when}  {:<10} {:<12} {:>10}  {:>22}  {}",
                        p.status,
                        p.source.as_deref().unwrap_or("manual"),
                        creditbar_ledger::Cents(p.price_cents).to_string(),
                        credits_long(p.credits),
                        what
                    );
                }
            }
        }
        Cmd::AutoRefill { action } => {
            let mut engine = open()?;
            let settings = match action.unwrap_or(RefillCmd::Show) {
                RefillCmd::Show => {
                    let _ = engine.sync().await;
                    engine.auto_refill()?
                }
                RefillCmd::On {
                    threshold,
                    pack,
                    limit,
                } => Some(
                    engine
                        .set_auto_refill(true, threshold.micros(), &pack, limit)
                        .await?,
                ),
                RefillCmd::Off => Some(engine.toggle_auto_refill(false).await?),
            };
            match settings {
                Some(a) if a.enabled => out!(
                    "Auto-refill is on: when your balance falls below {}, {} is bought with the card ending in {} — at most {} times a month ({} so far).",
                    credits_long(a.threshold.unwrap_or(0)), a.pack.as_deref().unwrap_or("?"), a.payment_token_last4.as_deref().unwrap_or("?"), a.monthly_limit.unwrap_or(0), a.refills_this_month
                ),
                Some(a) => out!("Auto-refill is off{}.", a.disabled_reason.map(|r| format!(" (turned off: {r})")).unwrap_or_default()),
                None => out!("Auto-refill is off."),
            }
        }
        Cmd::Reviews { json } => {
            let mut engine = open()?;
            let reviews = engine.reviews().await?;
            if json {
                let text = serde_json::to_string_pretty(&reviews).context("reviews as JSON")?;
                out!("{text}");
            } else if reviews.is_empty() {
                out!(
                    "No usage reviews yet: `creditbar report THREAD --description …` asks for one."
                );
            } else {
                for r in &reviews {
                    out!("{}  thread {}: {}", r.id, r.thread, r.outcome);
                    if !r.details.is_empty() {
                        out!("    {}", r.details);
                    }
                }
            }
        }
        Cmd::Report {
            thread,
            description,
            model,
            preview_failing,
            thread_messages,
            large_context,
        } => {
            let mut engine = open()?;
            // Flags not given are not sent: "not said" is not "no".
            let review = engine
                .report(&creditbar_client::wire::ReviewRequest {
                    thread,
                    description,
                    model,
                    preview_failing: preview_failing.then_some(true),
                    thread_messages,
                    large_context: large_context.then_some(true),
                })
                .await?;
            out!(
                "Reported thread {}: review {} is {}.",
                review.thread,
                review.id,
                review.status
            );
        }
        Cmd::Settings {
            low_threshold,
            enable,
            disable,
            expiry_lead_hours,
            also_below,
        } => {
            let engine = open()?;
            let mut settings = engine.settings()?;
            if let Some(t) = low_threshold {
                settings.low_threshold = t.micros();
            }
            for (kinds, on) in [(enable, true), (disable, false)] {
                for kind in kinds {
                    settings.set(kind, on);
                }
            }
            if let Some(h) = expiry_lead_hours {
                settings.expiry_lead_hours = h;
            }
            if !also_below.is_empty() {
                settings.also_below = also_below
                    .iter()
                    .map(|c| c.micros())
                    .filter(|m| *m > 0)
                    .collect();
            }
            engine.set_settings(&settings)?;
            out!(
                "Low-balance threshold: {}",
                credits_long(settings.low_threshold)
            );
            let extra = settings.extra_thresholds();
            if !extra.is_empty() {
                let list: Vec<String> = extra.iter().map(|t| credits_long(*t)).collect();
                out!("Also warns below: {}", list.join(", "));
            }
            out!(
                "Expiring-soon warning: {} h before plan credits expire",
                settings.expiry_lead_hours
            );
            for kind in AlertKind::ALL {
                out!(
                    "  {:<20} {}",
                    kind.name(),
                    if settings.enabled(kind) { "on" } else { "off" }
                );
            }
        }
        Cmd::GenerateAssets { out } => generate_assets(&out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Cmd::GenerateAssets { .. }) {
        creditbar_client::logs::init("creditbar", "warn");
    }
    match run(cli).await {
        Ok(code) => code,
        // The reader went away (`| head`): what it wanted was printed; not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One line about the plan: status, renewal card, a change waiting.
fn plan_line(p: &creditbar_client::wire::PlanState) -> String {
    let mut line = format!("Plan: {}", p.plan);
    if p.plan_status == "past_due" {
        line.push_str(
            " — PAST DUE: the renewal charge was declined; `creditbar card add` then \
             `creditbar plan <current plan>` pays it now",
        );
    }
    match &p.plan_payment_last4 {
        Some(last4) => line.push_str(&format!(
            "; renews {} on the card ending {last4}",
            p.period_end.format("%Y-%m-%d")
        )),
        None => line.push_str(&format!(
            "; period ends {}",
            p.period_end.format("%Y-%m-%d")
        )),
    }
    if let Some(next) = &p.next_plan {
        line.push_str(&format!("; changes to {next} then"));
    }
    line
}

/// Asks a yes/no question on the terminal; refuses to guess when there is none.
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("standard input is not a terminal: pass --yes to confirm");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("creditbar").chain(args.iter().copied()))
    }

    #[test]
    fn clap_parses_the_choices_and_amounts() {
        Cli::command().debug_assert();
        let Cmd::Settings {
            low_threshold,
            enable,
            disable,
            ..
        } = parse(&[
            "settings",
            "--low-threshold",
            "12.5",
            "--enable",
            "daily_reset",
            "--disable",
            "low_balance",
        ])
        .unwrap()
        .command
        else {
            panic!("not settings")
        };
        assert_eq!(low_threshold, Some(Credits::from_micros(12_500_000)));
        assert_eq!(enable, vec![AlertKind::DailyReset]);
        assert_eq!(disable, vec![AlertKind::LowBalance]);
        let Cmd::AutoRefill {
            action: Some(RefillCmd::On { threshold, .. }),
        } = parse(&["auto-refill", "on", "--threshold", "0.000001"])
            .unwrap()
            .command
        else {
            panic!("not auto-refill on")
        };
        assert_eq!(threshold.micros(), 1);
        for bad in [
            &["usage", "--by", "week"][..],
            &["settings", "--enable", "everything"],
            &["settings", "--low-threshold", "-1"],
            &["settings", "--low-threshold", "1.2345678"],
            &["auto-refill", "on", "--threshold", "abc"],
        ] {
            let e = parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} was accepted"));
            assert!(
                matches!(
                    e.kind(),
                    clap::error::ErrorKind::InvalidValue | clap::error::ErrorKind::ValueValidation
                ),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                assert!(arg.get_help().is_some(), "{path} {id} has no help text");
            }
            for sub in cmd.get_subcommands() {
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no help text",
                    sub.get_name()
                );
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&Cli::command(), "creditbar");
    }
}
