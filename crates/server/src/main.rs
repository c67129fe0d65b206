//! `creditbar-server`: parses the command line (and the config file, and the environment)
//! and runs the server, or one of its maintenance commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use creditbar_server::secret::Secret;
use creditbar_server::store::Durability;
use creditbar_server::{start, Config};

/// jemalloc instead of glibc's malloc for the server binary (the library leaves the choice
/// to whoever embeds it). A charge allocates and frees a few dozen small objects, many of
/// them on another thread than the one that made them (the job and its reply cross between
/// the HTTP workers and the writer); glibc's malloc took ~10% of the CPU per charge there.
/// mimalloc was measured too and dropped: as fast, but its p99 at 64 connections was
/// 50-100 ms instead of 10-15 (bench/README.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The shortest admin token accepted (api.md "Limits every deployment has").
const MIN_ADMIN_TOKEN: usize = 32;

/// The creditbar account server: the credit ledger and account API over HTTP.
///
/// Every option can also be set in the environment (the name in brackets) or in a TOML file
/// given with --config (keys are the long option names, e.g. `listen = "0.0.0.0:8787"`).
/// The command line wins over the environment, which wins over the file.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// A TOML file of options (see above).
    #[arg(long, env = "CREDITBAR_CONFIG")]
    config: Option<PathBuf>,
    /// Where the ledger is: a SQLite database file [default: the platform data
    /// directory]/creditbar/server.db, or a PostgreSQL URL (`postgres://…` or
    /// `postgresql://…`, several hosts with `target_session_attrs=read-write` for failover)
    /// that any number of server processes may share.
    #[arg(long, env = "CREDITBAR_DB", hide_env_values = true)]
    db: Option<PathBuf>,
    /// With a PostgreSQL ledger: the test payment gateway's database file, one every process
    /// of the ledger opens [default: the platform data directory]/creditbar/gateway.db.
    /// (With SQLite it is `<db>-gateway`.)
    #[arg(long, env = "CREDITBAR_GATEWAY_DB")]
    gateway_db: Option<PathBuf>,
    /// With a PostgreSQL ledger: how many transactions this process runs at once (one
    /// connection each).
    #[arg(long, env = "CREDITBAR_PG_CONNECTIONS", default_value_t = 16,
        value_parser = clap::value_parser!(u64).range(1..=512))]
    pg_connections: u64,
    /// Address to listen on; port 0 picks a free port (the real address is printed).
    #[arg(long, env = "CREDITBAR_LISTEN", default_value = "127.0.0.1:8787")]
    listen: String,
    /// Admin token for /v1/admin/* and /metrics, at least 32 characters. Prefer
    /// --admin-token-file: a command line is visible to every local user. Without either, the
    /// token is read from (or generated into) `admin-token` beside the database, mode 0600.
    #[arg(long, env = "CREDITBAR_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A file holding the admin token (surrounding whitespace is ignored), e.g. a systemd
    /// credential.
    #[arg(
        long,
        env = "CREDITBAR_ADMIN_TOKEN_FILE",
        conflicts_with = "admin_token"
    )]
    admin_token_file: Option<PathBuf>,
    /// Let POST /v1/admin/clock move time (for tests). Time starts at the real now, or at
    /// CREDITBAR_TEST_CLOCK_START (RFC 3339). Only then is CREDITBAR_SEED honoured.
    #[arg(long, env = "CREDITBAR_TEST_CLOCK")]
    test_clock: bool,
    /// Create a demo account with a month of usage and print its token.
    #[arg(long, env = "CREDITBAR_DEMO")]
    demo: bool,
    /// Requests per second allowed per token (0 = no limit).
    #[arg(long, env = "CREDITBAR_RATE_LIMIT", default_value_t = 100)]
    rate_limit: u32,
    /// What an acknowledged write survives: `process` (kill -9) or `power` (power loss).
    #[arg(
        long,
        env = "CREDITBAR_DURABILITY",
        value_enum,
        default_value = "process"
    )]
    durability: Durability,
    /// The catalog to sell and charge from (plans, packs, models, sign-up grant, unit): a
    /// TOML file like catalogs/*.toml [default: catalogs/default.toml, built in].
    #[arg(long, env = "CREDITBAR_CATALOG")]
    catalog: Option<PathBuf>,
    /// Verify that every account's balance equals the sum of its ledger, then exit. Opens the
    /// database read-only and migrates nothing.
    #[arg(long)]
    check: bool,
    /// Seconds a connection has to send a complete request head (also the most a keep-alive
    /// connection may sit idle between requests).
    #[arg(long, env = "CREDITBAR_HEADER_READ_TIMEOUT", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout: u64,
    /// Most open connections at once [default: what the descriptor limit leaves, at most 4096].
    #[arg(long, env = "CREDITBAR_MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,
    /// Failed authentications allowed per client address per minute, in bursts of as many;
    /// past it the address gets 429 with Retry-After (0 = no limit). Behind a reverse proxy
    /// every client has the proxy's address: raise it there, and limit at the proxy.
    #[arg(long, env = "CREDITBAR_AUTH_FAILURES_PER_MINUTE", default_value_t = 30)]
    auth_failures_per_minute: u32,
    /// Log lines on standard error as `text` (for a terminal) or `json` (one object per
    /// line, with the request's id, for a log pipeline). RUST_LOG filters them (default info).
    #[arg(long, env = "CREDITBAR_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// A consistent copy of a database, taken while the server runs (SQLite's online backup).
    Backup {
        /// The database to copy.
        #[arg(long)]
        db: PathBuf,
        /// Where the copy goes; must not exist yet.
        #[arg(long)]
        to: PathBuf,
    },
}

fn default_db() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("dev", "creditbar", "creditbar")
        .context("no home directory to keep the database in; pass --db")?;
    let dir = dirs.data_dir();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join("server.db"))
}

/// Parses the command line, with the config file's values as defaults (so the command line
/// and the environment win over them).
fn parse_args() -> anyhow::Result<Args> {
    let mut cmd = Args::command();
    if let Some(path) = config_path() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
        let known: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .filter(|l| !matches!(l.as_str(), "config" | "help" | "version" | "check"))
            .collect();
        for (key, value) in table {
            let long = key.replace('_', "-");
            if !known.contains(&long) {
                anyhow::bail!(
                    "{}: unknown option `{key}` (known: {})",
                    path.display(),
                    known.join(", ")
                );
            }
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => anyhow::bail!(
                    "{}: `{key}` must be a string, a number or true/false, not {}",
                    path.display(),
                    other.type_str()
                ),
            };
            let id = long.replace('-', "_");
            cmd = cmd.mut_arg(id, |a| a.default_value(value));
        }
    }
    let matches = cmd.get_matches();
    Ok(Args::from_arg_matches(&matches)?)
}

/// `--config FILE`, `--config=FILE` or CREDITBAR_CONFIG, found before clap parses.
fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(rest) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(PathBuf::from(rest));
        }
    }
    std::env::var_os("CREDITBAR_CONFIG").map(PathBuf::from)
}

fn check_admin_token(token: String, from: &str) -> anyhow::Result<Secret> {
    let token = token.trim().to_owned();
    let n = token.chars().count();
    if n < MIN_ADMIN_TOKEN {
        anyhow::bail!(
            "the admin token ({from}) is {n} characters long; at least {MIN_ADMIN_TOKEN} are \
             required (for example `head -c 32 /dev/urandom | base64`)"
        );
    }
    if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        anyhow::bail!("the admin token ({from}) contains whitespace or control characters");
    }
    Ok(Secret::new(token))
}

fn read_token_file(path: &Path) -> anyhow::Result<Secret> {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:o}"),
                "the admin token file is readable by other users; chmod 600 it"
            );
        }
    }
    check_admin_token(text, &path.display().to_string())
}

/// The admin token of a server started without one: `admin-token` beside the database,
/// generated (mode 0600) on the first start and reused after. Never printed: the path is.
fn stored_admin_token(db: &Path) -> anyhow::Result<Secret> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let path = dir.join("admin-token");
    if path.exists() {
        tracing::info!(file = %path.display(), "admin token read from its file");
        return read_token_file(&path);
    }
    let token = creditbar_server::ids::IdGen::new(None).secret("cb_admin_");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create the admin token file {}", path.display()))?;
    writeln!(file, "{}", token.expose())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the admin token file {}", path.display()))?;
    eprintln!("admin token generated into {} (mode 0600)", path.display());
    Ok(token)
}

fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .init(),
    }
}

/// `--check` of a PostgreSQL ledger: the same checks as of a SQLite file, on one snapshot.
fn check_shared(shared: &creditbar_server::SharedLedger) -> anyhow::Result<()> {
    let session = creditbar_server::store::PgSession::connect(&shared.url)
        .context("cannot connect to the PostgreSQL ledger")?;
    let gateway = match shared.gateway_db.exists() {
        true => Some(creditbar_server::store::open_reader(&shared.gateway_db)?),
        false => None,
    };
    let before = match &gateway {
        Some(g) => creditbar_server::store::gateway_records(g, None)?,
        None => Vec::new(),
    };
    let (problems, pending) = creditbar_server::store::Db::Pg(&session).snapshot(|ledger| {
        let mut problems = creditbar_server::store::check(ledger)?;
        let (money, pending) =
            creditbar_server::billing::report::check_files(ledger, before, gateway.as_ref())?;
        problems.extend(money);
        Ok((problems, pending))
    })?;
    report_check(problems, pending)
}

fn report_check(problems: Vec<String>, pending: usize) -> anyhow::Result<()> {
    if problems.is_empty() {
        println!("ok: every balance equals the sum of its ledger");
        println!(
            "ok: every payment the processor made is in the ledger, credited once \
             ({pending} pending, finished at the next start)"
        );
        return Ok(());
    }
    for p in &problems {
        println!("{p}");
    }
    anyhow::bail!("{} problem(s) found", problems.len());
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Whatever this process creates (the database, its WAL and shared memory, the gateway's
    // database, the admin token) is for its own user only.
    // SAFETY: umask only sets the process's file mode mask; no memory is involved.
    unsafe {
        libc::umask(0o077);
    }
    let args = parse_args()?;
    init_logs(args.log_format);
    if let Some(Cmd::Backup { db, to }) = args.command {
        let pages = creditbar_server::store::backup(&db, &to)
            .with_context(|| format!("cannot back up {} to {}", db.display(), to.display()))?;
        println!(
            "ok: {} copied to {} ({pages} pages)",
            db.display(),
            to.display()
        );
        return Ok(());
    }
    let db = match args.db {
        Some(p) => p,
        None => default_db()?,
    };
    let shared = match db.to_str() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            url.parse::<postgres::Config>()
                .map_err(|e| anyhow::anyhow!("--db is not a valid PostgreSQL URL: {e}"))?;
            let gateway_db = match &args.gateway_db {
                Some(p) => p.clone(),
                None => default_db()?.with_file_name("gateway.db"),
            };
            Some(creditbar_server::SharedLedger {
                url: url.to_owned(),
                connections: args.pg_connections as usize,
                gateway_db,
            })
        }
        _ => None,
    };
    if let Some(shared) = &shared {
        if args.check {
            // The PostgreSQL client blocks: off the async threads.
            let shared = shared.clone();
            return tokio::task::spawn_blocking(move || check_shared(&shared)).await?;
        }
    }
    if args.check {
        let conn = creditbar_server::store::open_reader(&db)
            .with_context(|| format!("cannot open {} read-only", db.display()))?;
        // Money: the ledger against the payment processor's own record beside it, read
        // before and after the ledger (billing::report::compare says why).
        let gateway_path = creditbar_server::gateway::TestGateway::path_for(&db);
        let gateway = match gateway_path.exists() {
            true => Some(creditbar_server::store::open_reader(&gateway_path)?),
            false => None,
        };
        let before = match &gateway {
            Some(g) => creditbar_server::store::gateway_records(g, None)?,
            None => Vec::new(),
        };
        // One read transaction: a consistent snapshot even while a server writes.
        conn.execute_batch("BEGIN")?;
        let ledger = creditbar_server::store::Db::Lite(&conn);
        let mut problems = creditbar_server::store::check(ledger)?;
        let (money, pending) =
            creditbar_server::billing::report::check_files(ledger, before, gateway.as_ref())?;
        problems.extend(money);
        return report_check(problems, pending);
    }
    let admin_token = match (args.admin_token, &args.admin_token_file) {
        (Some(t), _) => check_admin_token(t, "--admin-token")?,
        (None, Some(file)) => read_token_file(file)?,
        // A shared ledger's processes must agree on the token: it is kept beside the
        // gateway's file, which they share too.
        (None, None) => match &shared {
            Some(s) => stored_admin_token(&s.gateway_db)?,
            None => stored_admin_token(&db)?,
        },
    };
    let test_clock = if args.test_clock {
        Some(match std::env::var("CREDITBAR_TEST_CLOCK_START") {
            Ok(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .context("CREDITBAR_TEST_CLOCK_START is not an RFC 3339 time")?
                .with_timezone(&chrono::Utc),
            Err(_) => chrono::Utc::now(),
        })
    } else {
        None
    };
    // A seed makes every token predictable: tests only.
    let seed = match std::env::var("CREDITBAR_SEED") {
        Ok(s) if args.test_clock => Some(
            s.parse()
                .context("CREDITBAR_SEED is not a number (0..=18446744073709551615)")?,
        ),
        Ok(_) => {
            tracing::warn!("CREDITBAR_SEED is ignored without --test-clock");
            None
        }
        Err(_) => None,
    };
    let catalog = match &args.catalog {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the catalog {}", path.display()))?;
            creditbar_ledger::Catalog::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("catalog {}: {e}", path.display()))?
        }
        None => creditbar_ledger::Catalog::default(),
    };
    let mut running = start(Config {
        db,
        shared,
        listen: args.listen,
        admin_token,
        test_clock,
        rate_limit: args.rate_limit,
        durability: args.durability,
        seed,
        catalog,
        limits: creditbar_server::serve::Limits {
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            max_connections: args.max_connections.map(|n| n as usize),
            auth_failures_per_minute: args.auth_failures_per_minute,
            ..Default::default()
        },
    })
    .await?;
    println!("listening on http://{}", running.addr);
    if args.demo {
        let token = creditbar_server::demo::create(&running.app).await?;
        println!("demo account token: {}", token.expose());
    }
    std::io::stdout().flush().ok();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let mut serve = running.serve;
    tokio::select! {
        _ = &mut serve => anyhow::bail!("the server stopped serving"),
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
    running.serve = serve;
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}
