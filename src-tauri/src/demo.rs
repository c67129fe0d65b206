//! `--demo`: an embedded creditbar-server in this process, on a loopback port and a
//! temporary SQLite database with the test gateway, holding the demo account. Behind the
//! cargo feature `demo` (on by default, so `cargo run`/`cargo test`/scripts/run have it;
//! scripts/package builds without it), so the packaged app does not link the server.

use creditbar_server::secret::Secret;
use creditbar_server::store::Durability;

pub struct DemoServer {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub token: Secret,
}

pub async fn start() -> anyhow::Result<DemoServer> {
    let dir = tempfile::Builder::new()
        .prefix("creditbar-demo")
        .tempdir()?;
    let ids = creditbar_server::ids::IdGen::new(None);
    let running = creditbar_server::start(creditbar_server::Config {
        db: dir.path().join("server.db"),
        shared: None,
        listen: "127.0.0.1:0".into(),
        admin_token: ids.secret("cb_admin_"),
        test_clock: None,
        rate_limit: 0,
        durability: Durability::Process,
        seed: None,
        catalog: creditbar_server::Catalog::default(),
        limits: Default::default(),
    })
    .await?;
    let token = creditbar_server::demo::create(&running.app).await?;
    tracing::info!(addr = %running.addr, "demo server running");
    Ok(DemoServer {
        dir,
        url: format!("http://{}", running.addr),
        token,
    })
}
