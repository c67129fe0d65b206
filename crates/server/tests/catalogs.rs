//! One product, five platforms: each seed platform's catalog (catalogs/*.toml) run by the
//! real server binary, replaying what its seed page says, sentence by sentence
//! (docs/catalogs.md maps each sentence to its assertion here).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};

const CREDIT: i64 = 1_000_000;
const DAY: i64 = 86_400;
const VISA: &str = "4242424242424242";
const DECLINES_LATER: &str = "4000000000000341";

fn catalog_path(name: &str) -> String {
    format!("{}/../../catalogs/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

fn platform(name: &str) -> Server {
    Server::start_with(Options {
        extra: vec!["--catalog".into(), catalog_path(name)],
        ..Default::default()
    })
}

fn charge(s: &Server, t: &str, body: Value) -> (u16, Value) {
    s.call("POST", "/v1/usage", Some(t), Some(body))
}

fn event(id: &str, model: &str, input: u64, cached: u64, output: u64) -> Value {
    json!({"id": id, "project": "p", "thread": "t", "model": model, "kind": "agent",
        "status": "completed", "input_tokens": input, "cached_input_tokens": cached,
        "output_tokens": output})
}

fn charged(s: &Server, t: &str, body: Value) -> i64 {
    let (st, v) = charge(s, t, body);
    assert_eq!(st, 201, "{v}");
    v["charged"].as_i64().unwrap()
}

fn card(s: &Server, t: &str, number: &str) -> String {
    let body = json!({"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"});
    let (st, v) = s.call("POST", "/v1/payment-methods", Some(t), Some(body));
    assert_eq!(st, 201, "{v}");
    v["payment_token"].as_str().unwrap().to_owned()
}

fn buy(s: &Server, t: &str, key: &str, body: Value) -> (u16, Value) {
    let r = s
        .http
        .post(s.url("/v1/purchases"))
        .bearer_auth(t)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().unwrap())
}

fn bucket(s: &Server, t: &str, name: &str) -> i64 {
    s.get("/v1/balance", t)["buckets"][name]["available"]
        .as_i64()
        .unwrap()
}

/// `PUT /v1/plan` with a saved card; the change must be accepted.
fn choose_plan(s: &Server, t: &str, plan: &str, pm: &str) -> Value {
    let (st, v) = s.call(
        "PUT",
        "/v1/plan",
        Some(t),
        Some(json!({"plan": plan, "payment_token": pm})),
    );
    assert_eq!(st, 200, "{v}");
    v
}

fn until_period_end(s: &Server, t: &str) -> i64 {
    let end = time_of(&s.get("/v1/account", t)["period_end"]);
    (end - s.now()).num_seconds() + 1
}

#[test]
fn every_shipped_catalog_loads_and_a_bad_one_is_refused_naming_line_and_field() {
    for name in [
        "default", "kodezi", "seed001", "seed002", "seed003", "easycoda",
    ] {
        let s = platform(name);
        let (_, t) = s.account("free", "UTC");
        let c = s.get("/v1/catalog", &t);
        assert!(!c["plans"].as_array().unwrap().is_empty(), "{name}: {c}");
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(catalog_path("easycoda"))
        .unwrap()
        .replace("cadence = \"monthly\"", "cadence = \"fortnightly\"");
    std::fs::write(&bad, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_creditbar-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN,
            "--catalog",
        ])
        .arg(&bad)
        .arg("--db")
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line ") && err.contains("cadence") && err.contains("fortnightly"),
        "{err}"
    );
    assert!(!dir.path().join("db").exists(), "nothing was created");
}

/// Seed 004, EasyCoda.
#[test]
fn easycoda_replays_its_credits_page() {
    let s = platform("easycoda");
    let (account, t) = s.account("free", "UTC");
    let c = s.get("/v1/catalog", &t);
    // "Credits × 10,000 = Total Tokens."
    assert_eq!(c["unit"], json!({"kind": "tokens", "per_credit": 10000}));
    // "Your initial account comes with 500 free credits, which equals 5,000,000 tokens."
    let start = s.available(&t);
    assert_eq!(start, 500 * CREDIT);
    assert_eq!(start / CREDIT * 10_000, 5_000_000);
    // "We only charge for output tokens and cache-miss tokens": cache hits are free.
    assert_eq!(
        charged(&s, &t, event("hit", "agent-team", 40_000, 40_000, 0)),
        0
    );
    // 10,000 cache-miss input + 10,000 output tokens = 2 credits, whatever the model.
    assert_eq!(
        charged(&s, &t, event("miss", "agent-team", 30_000, 20_000, 10_000)),
        2 * CREDIT
    );
    // "If you cancel a task mid-session, the tokens will not be counted."
    let mut cancelled = event("cancel", "agent-team", 50_000, 0, 50_000);
    cancelled["status"] = json!("cancelled");
    assert_eq!(charged(&s, &t, cancelled), 0);
    // "Tokens consumed by conversation summarization are not counted."
    let mut summary = event("sum", "agent-team", 50_000, 0, 50_000);
    summary["kind"] = json!("summarization");
    assert_eq!(charged(&s, &t, summary), 0);
    // "Credits are only deducted when you chat with AI agents": reading changes nothing.
    let before = s.available(&t);
    s.get("/v1/account", &t);
    s.get("/v1/ledger", &t);
    assert_eq!(s.available(&t), before);
    // "Separately purchased credits never expire and will not be cleared if unused."
    let pm = card(&s, &t, VISA);
    let (st, v) = buy(
        &s,
        &t,
        "k",
        json!({"pack": "credits_500", "payment_token": pm}),
    );
    assert_eq!(st, 201, "{v}");
    s.advance(95 * DAY);
    assert_eq!(bucket(&s, &t, "purchased"), 500 * CREDIT);
    // "Included credits are added after each successful monthly billing cycle", and
    // "unused plan credits expire at the end of the month".
    choose_plan(&s, &t, "standard", &pm);
    let sub_before = bucket(&s, &t, "subscription");
    s.advance(until_period_end(&s, &t));
    within(30, "the renewal is paid and credited", || {
        bucket(&s, &t, "subscription") == 2000 * CREDIT
    });
    let paid = s.notices(&t);
    let charged_at = paid.iter().find(|n| n["type"] == "plan_charged").unwrap()["seq"]
        .as_i64()
        .unwrap();
    let granted_at = s
        .ledger(&t)
        .into_iter()
        .rfind(|e| e["type"] == "grant" && e["bucket"] == "subscription")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    assert!(granted_at > charged_at, "credits after the payment");
    let _ = sub_before;
    let charges = |s: &Server| {
        s.notices(&t)
            .iter()
            .filter(|n| n["type"] == "plan_charged")
            .count()
    };
    let charged_before = charges(&s);
    s.advance(until_period_end(&s, &t));
    // The renewal expires the old plan credits and then charges the card; the card is
    // replaced below only once that charge is paid, so the declined card is the one the
    // *next* renewal meets.
    within(30, "next renewal paid", || {
        s.ledger(&t)
            .iter()
            .any(|e| e["type"] == "expire" && e["bucket"] == "subscription")
            && charges(&s) == charged_before + 1
            && bucket(&s, &t, "subscription") == 2000 * CREDIT
    });
    // A renewal the card declines brings no plan credits.
    let bad = card(&s, &t, DECLINES_LATER);
    let (st, _) = s.call(
        "PUT",
        "/v1/plan",
        Some(&t),
        Some(json!({"plan": "standard", "payment_token": bad})),
    );
    assert_eq!(st, 200);
    s.advance(until_period_end(&s, &t));
    within(30, "past due", || {
        s.get("/v1/account", &t)["plan_status"] == "past_due"
    });
    assert_eq!(bucket(&s, &t, "subscription"), 0);
    assert_eq!(bucket(&s, &t, "purchased"), 500 * CREDIT);
    // "Credits cannot be redeemed for cash or transferred to another account."
    for path in ["/v1/transfers", "/v1/cash-out", "/v1/credits/transfer"] {
        let (st, _) = s.call("POST", path, Some(&t), Some(json!({"to": account})));
        assert_eq!(st, 404, "{path}");
    }
    assert!(s.check_db().0);
}

/// Seed 003: credits as pro agent requests.
#[test]
fn seed003_replays_its_credits_page() {
    let s = platform("seed003");
    let (_, t) = s.account("free", "UTC");
    let c = s.get("/v1/catalog", &t);
    assert_eq!(c["unit"], json!({"kind": "requests", "per_credit": 1}));
    // "$20 – 500 pro agent requests; $100 – 2500; $500 – 12500."
    let packs: Vec<(i64, i64)> = c["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["price_cents"].as_i64().unwrap(),
                p["credits"].as_i64().unwrap() / CREDIT,
            )
        })
        .collect();
    assert_eq!(packs, [(2000, 500), (10000, 2500), (50000, 12500)]);
    // "Once your balance reaches zero, any feature that requires credits is disabled."
    let (st, v) = charge(&s, &t, event("r0", "agent", 10, 0, 10));
    assert_eq!(st, 402, "{v}");
    // "... until you purchase more": buying works at zero; "a custom amount" too.
    let pm = card(&s, &t, VISA);
    let (st, v) = buy(
        &s,
        &t,
        "k1",
        json!({"pack": "pack_500", "payment_token": pm}),
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = buy(
        &s,
        &t,
        "k2",
        json!({"custom_cents": 1000, "payment_token": pm}),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(s.available(&t), 750 * CREDIT);
    // A credit is one agent request, whatever its size.
    assert_eq!(charged(&s, &t, event("r1", "agent", 10, 0, 10)), CREDIT);
    assert_eq!(
        charged(&s, &t, event("r2", "agent", 2_000_000, 0, 500_000)),
        CREDIT
    );
    // "Auto-refill will automatically recharge credits once your balance drops below a
    // certain threshold."
    let (st, v) = s.call(
        "PUT",
        "/v1/auto-refill",
        Some(&t),
        Some(
            json!({"enabled": true, "threshold": 1000 * CREDIT, "pack": "pack_500",
            "payment_token": pm, "monthly_limit": 2}),
        ),
    );
    assert_eq!(st, 200, "{v}");
    charged(&s, &t, event("r3", "agent", 10, 0, 10));
    within(30, "the refill", || {
        s.available(&t) == (750 - 3 + 500) * CREDIT
    });
    // "Pro plans include a monthly credit allowance."
    choose_plan(&s, &t, "pro", &pm);
    s.advance(until_period_end(&s, &t));
    within(30, "the monthly allowance", || {
        bucket(&s, &t, "subscription") == 500 * CREDIT
    });
    // "Credits cannot be transferred between users."
    let (st, _) = s.call("POST", "/v1/transfers", Some(&t), Some(json!({})));
    assert_eq!(st, 404);
    assert!(s.check_db().0);
}

/// Seed 001.
#[test]
fn seed001_replays_its_credits_page() {
    let s = platform("seed001");
    let (_, t) = s.account("free", "America/New_York");
    // "Daily credits renew at midnight in your account timezone."
    let next = time_of(&s.get("/v1/balance", &t)["buckets"]["daily"]["next_reset"]);
    let local = next.with_timezone(&chrono_tz::America::New_York);
    assert_eq!(local.format("%H:%M").to_string(), "00:00");
    // Better models only on premium tiers: free may not use `advanced`, and the refusal
    // names the plans that include it.
    let (st, v) = charge(&s, &t, event("a1", "advanced", 100, 0, 100));
    assert_eq!(st, 403, "{v}");
    assert_eq!(v["error"]["code"], "model_not_in_plan");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("pro") && msg.contains("premium"), "{msg}");
    assert_eq!(charged(&s, &t, event("b1", "basic", 100, 0, 100)), 10_000);
    // "Credits are added to your account as bonus credits", "no expiration".
    let pm = card(&s, &t, VISA);
    let (st, v) = buy(
        &s,
        &t,
        "b",
        json!({"pack": "bundle_500", "payment_token": pm}),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(bucket(&s, &t, "bonus"), 500 * CREDIT);
    assert_eq!(bucket(&s, &t, "purchased"), 0);
    // "Daily credits are used first, subscription after, bonus last."
    let daily = bucket(&s, &t, "daily");
    let sub = bucket(&s, &t, "subscription");
    let (st, v) = charge(
        &s,
        &t,
        event("big", "basic", 0, 0, (daily + sub) as u64 / 50 + 2000),
    );
    assert_eq!(st, 201, "{v}");
    let buckets: Vec<&str> = v["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(buckets, ["daily", "subscription", "bonus"]);
    s.advance(200 * DAY);
    assert!(bucket(&s, &t, "bonus") > 0, "bonus bundles never expire");
    // "Upgrade takes effect immediately; credits are prorated", and better models follow.
    let quote = s.get("/v1/plan/quote?plan=pro", &t);
    assert_eq!(quote["change"], "upgrade");
    let v = choose_plan(&s, &t, "pro", &pm);
    assert_eq!(v["plan"], "pro");
    assert_eq!(charged(&s, &t, event("a2", "advanced", 0, 0, 100)), 15_000);
    // "Custom plans: custom credit allocations, monthly or annual."
    let plans: Vec<String> = s.get("/v1/catalog", &t)["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p["id"].as_str().unwrap(),
                p["cadence"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        plans.contains(&"custom_monthly:monthly".to_owned()),
        "{plans:?}"
    );
    assert!(
        plans.contains(&"custom_annual:yearly".to_owned()),
        "{plans:?}"
    );
    assert!(s.check_db().0);
}

/// Seed 000, Kodezi Code.
#[test]
fn kodezi_replays_its_credits_page() {
    let s = platform("kodezi");
    let (_, t) = s.account("free", "UTC");
    let account = s.get("/v1/account", &t);
    // "Free plan resets every 30 days."
    let created = time_of(&account["created_at"]);
    assert_eq!(
        time_of(&account["period_end"]) - created,
        chrono::Duration::days(30)
    );
    // "Any feature powered by Chronos-1 uses credits", and only that model exists.
    let (st, v) = charge(&s, &t, event("x", "gpt-5", 10, 0, 10));
    assert_eq!(st, 400, "{v}");
    // "Each AI action consumes credits depending on the size of the request."
    let small = charged(&s, &t, event("small", "chronos-1", 200, 0, 100));
    let large = charged(&s, &t, event("large", "chronos-1", 20_000, 0, 10_000));
    assert!(small > 0 && large > small * 50, "{small} {large}");
    // "Your balance updates instantly after every AI action."
    assert_eq!(s.available(&t), 100 * CREDIT - small - large);
    // "Unused credits do not roll over": they expire at the reset, a new allowance comes.
    s.advance(until_period_end(&s, &t));
    assert_eq!(bucket(&s, &t, "subscription"), 100 * CREDIT);
    assert!(s
        .ledger(&t)
        .iter()
        .any(|e| e["type"] == "expire" && e["bucket"] == "subscription"));
    // "If your credits reach zero: AI features pause; your workspace remains accessible."
    let (st, v) = charge(&s, &t, event("huge", "chronos-1", 0, 0, 2_000_000));
    assert_eq!(st, 402, "{v}");
    s.get("/v1/account", &t);
    s.get("/v1/usage?group_by=day", &t);
    // "You can upgrade your plan or wait": no packs, no custom amounts on sale.
    let pm = card(&s, &t, VISA);
    let (st, v) = buy(
        &s,
        &t,
        "k",
        json!({"pack": "pack_500", "payment_token": pm}),
    );
    assert_eq!(st, 400, "{v}");
    let (st, v) = buy(
        &s,
        &t,
        "k2",
        json!({"custom_cents": 1000, "payment_token": pm}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("custom"));
    // "Pro and paid plans reset monthly on your billing date."
    choose_plan(&s, &t, "pro", &pm);
    s.advance(until_period_end(&s, &t));
    within(30, "pro's allowance", || {
        bucket(&s, &t, "subscription") == 1000 * CREDIT
    });
    let a = s.get("/v1/account", &t);
    let (start, end) = (time_of(&a["period_start"]), time_of(&a["period_end"]));
    use chrono::Datelike;
    assert_eq!(
        start.day(),
        end.day(),
        "monthly on the billing date: {start} {end}"
    );
    assert!(s.check_db().0);
}

/// Seed 002.
#[test]
fn seed002_replays_its_credits_page() {
    let s = platform("seed002");
    let (_, t) = s.account("free", "UTC");
    // "Each model offers a different balance of speed, quality, and credit cost."
    let light = charged(&s, &t, event("l", "light", 1000, 0, 1000));
    let balanced = charged(&s, &t, event("b", "balanced", 1000, 0, 1000));
    let powerful = charged(&s, &t, event("p", "powerful", 1000, 0, 1000));
    assert!(
        light < balanced && balanced < powerful,
        "{light} {balanced} {powerful}"
    );
    // "Switch freely between them within the same project": all on the free plan.
    // "Purchase additional credit packs anytime ... without upgrading your plan."
    let pm = card(&s, &t, VISA);
    let (st, v) = buy(
        &s,
        &t,
        "k",
        json!({"pack": "pack_100", "payment_token": pm}),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(s.get("/v1/account", &t)["plan"], "free");
    // "Credits automatically reset at the start of each month based on your plan."
    choose_plan(&s, &t, "starter", &pm);
    s.advance(until_period_end(&s, &t));
    within(30, "the monthly credits", || {
        bucket(&s, &t, "subscription") == 250 * CREDIT
    });
    assert_eq!(bucket(&s, &t, "purchased"), 100 * CREDIT);
    assert!(s.check_db().0);
}

/// `creditbar-server --demo --catalog catalogs/X.toml` starts a demo of that platform: an
/// account on one of its plans with a month of usage of its own models.
#[test]
fn each_platform_runs_as_a_demo() {
    use std::io::{BufRead, BufReader};
    for name in ["kodezi", "seed001", "seed002", "seed003", "easycoda"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_creditbar-server"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-token",
                ADMIN,
                "--demo",
                "--catalog",
            ])
            .arg(catalog_path(name))
            .arg("--db")
            .arg(dir.path().join("db"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut base, mut token) = (String::new(), String::new());
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(a) = line.strip_prefix("listening on ") {
                base = a.trim().to_owned();
            }
            if let Some(t) = line.strip_prefix("demo account token: ") {
                token = t.trim().to_owned();
                break;
            }
        }
        assert!(!token.is_empty(), "{name}: no demo token");
        let http = client();
        let get = |path: &str| -> Value {
            http.get(format!("{base}{path}"))
                .bearer_auth(&token)
                .send()
                .unwrap()
                .json()
                .unwrap()
        };
        let models: Vec<String> = get("/v1/catalog")["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        let used = get("/v1/usage?group_by=model");
        let items = used["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{name}: no usage: {used}");
        for i in items {
            assert!(
                models.contains(&i["key"].as_str().unwrap().to_owned()),
                "{name}: {i}"
            );
        }
        assert!(
            get("/v1/balance")["available"].as_i64().unwrap() > 0,
            "{name}"
        );
        child.kill().ok();
        child.wait().ok();
    }
}
