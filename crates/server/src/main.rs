//! `creditbar-server`: parses the command line and runs the server.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
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

/// The creditbar account server: the credit ledger and account API over HTTP.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// SQLite database file [default: the platform data directory]/creditbar/server.db
    #[arg(long)]
    db: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port (the real address is printed).
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    /// Admin token for /v1/admin/*; generated and printed once when not given.
    #[arg(long, env = "CREDITBAR_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Let POST /v1/admin/clock move time (for tests). Time starts at the real now, or at
    /// CREDITBAR_TEST_CLOCK_START (RFC 3339).
    #[arg(long)]
    test_clock: bool,
    /// Create a demo account with a month of usage and print its token.
    #[arg(long)]
    demo: bool,
    /// Requests per second allowed per token (0 = no limit).
    #[arg(long, default_value_t = 100)]
    rate_limit: u32,
    /// What an acknowledged write survives: `process` (kill -9) or `power` (power loss).
    #[arg(long, value_enum, default_value = "process")]
    durability: Durability,
    /// The catalog to sell and charge from (plans, packs, models, sign-up grant, unit): a
    /// TOML file like catalogs/*.toml [default: catalogs/default.toml, built in].
    #[arg(long, env = "CREDITBAR_CATALOG")]
    catalog: Option<PathBuf>,
    /// Verify that every account's balance equals the sum of its ledger, then exit.
    #[arg(long)]
    check: bool,
}

fn default_db() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("dev", "creditbar", "creditbar")
        .context("no home directory to keep the database in; pass --db")?;
    let dir = dirs.data_dir();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join("server.db"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let db = match args.db {
        Some(p) => p,
        None => default_db()?,
    };
    if args.check {
        let conn = creditbar_server::store::open(&db, Durability::Process)
            .with_context(|| format!("cannot open {}", db.display()))?;
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
        let mut problems = creditbar_server::store::check(&conn)?;
        let (money, pending) =
            creditbar_server::billing::report::check_files(&conn, before, gateway.as_ref())?;
        problems.extend(money);
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
    let admin_token = match args.admin_token {
        Some(t) if !t.trim().is_empty() => Secret::new(t),
        _ => {
            let t = creditbar_server::ids::IdGen::new(None).secret("cb_admin_");
            println!("admin token (shown once): {}", t.expose());
            t
        }
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
    let seed = std::env::var("CREDITBAR_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let catalog = match &args.catalog {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the catalog {}", path.display()))?;
            creditbar_ledger::Catalog::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("catalog {}: {e}", path.display()))?
        }
        None => creditbar_ledger::Catalog::default(),
    };
    let running = start(Config {
        db,
        listen: args.listen,
        admin_token,
        test_clock,
        rate_limit: args.rate_limit,
        durability: args.durability,
        seed,
        catalog,
    })
    .await?;
    println!("listening on http://{}", running.addr);
    if args.demo {
        let token = creditbar_server::demo::create(&running.app).await?;
        println!("demo account token: {}", token.expose());
    }
    use std::io::Write;
    std::io::stdout().flush().ok();
    tokio::select! {
        _ = running.serve => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
