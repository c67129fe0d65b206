//! Bad input, table-driven: every row is a request a careless or hostile client could send.
//! Each must be a 4xx in api.md's error shape whose message names what was wrong, and the
//! whole table together must leave the account exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};

#[derive(Clone, Copy)]
enum Who {
    Account,
    Admin,
}

struct Case {
    what: &'static str,
    who: Who,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
    /// A word the message must contain: the field at fault.
    names: &'static str,
}

fn case(what: &'static str, method: &'static str, path: &str, body: Option<Vec<u8>>) -> Case {
    Case {
        what,
        who: Who::Account,
        method,
        path: path.to_owned(),
        body,
        status: 400,
        code: "invalid_request",
        names: "",
    }
}

impl Case {
    fn names(mut self, field: &'static str) -> Self {
        self.names = field;
        self
    }
    fn is(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
    fn admin(mut self) -> Self {
        self.who = Who::Admin;
        self
    }
}

fn valid_usage() -> Value {
    json!({"id": "u-new", "project": "p", "thread": "t", "model": "lite", "kind": "chat", "status": "completed",
           "input_tokens": 10, "cached_input_tokens": 0, "output_tokens": 10})
}

fn valid_settle() -> Value {
    let mut v = valid_usage();
    v.as_object_mut().unwrap().remove("id");
    v
}

/// `base` with `field` set to `value` (raw JSON text, so numbers beyond i64 survive).
fn with(base: &Value, field: &str, value: &str) -> Option<Vec<u8>> {
    let mut v = base.clone();
    v[field] = json!("__PLACEHOLDER__");
    Some(
        v.to_string()
            .replace("\"__PLACEHOLDER__\"", value)
            .into_bytes(),
    )
}

fn without(base: &Value, field: &str) -> Option<Vec<u8>> {
    let mut v = base.clone();
    v.as_object_mut().unwrap().remove(field);
    Some(v.to_string().into_bytes())
}

fn raw(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

/// Everything the account shows: compared byte for byte before and after the table.
fn snapshot(s: &Server, token: &str) -> Vec<String> {
    [
        "/v1/ledger?limit=1000",
        "/v1/balance",
        "/v1/notices?limit=1000",
        "/v1/account",
        "/v1/usage?group_by=day",
        "/v1/usage?group_by=model",
        "/v1/usage?group_by=project",
        "/v1/usage?group_by=thread",
    ]
    .iter()
    .map(|p| format!("{p}: {}", s.text(p, token)))
    .collect()
}

/// Why an answer is not the refusal a row expects, if it is not.
fn verdict(c: &Case, status: u16, body: &Value) -> Result<(), String> {
    if !(400..500).contains(&status) {
        return Err("not a 4xx".into());
    }
    if status != c.status {
        return Err(format!("expected {}", c.status));
    }
    let shape_ok = body.as_object().is_some_and(|o| o.len() == 1)
        && body["error"].as_object().is_some_and(|e| e.len() == 2);
    if !shape_ok {
        return Err("not {\"error\": {\"code\", \"message\"}}".into());
    }
    if body["error"]["code"] != json!(c.code) {
        return Err(format!("expected code {}", c.code));
    }
    let message = body["error"]["message"].as_str().unwrap_or("");
    if message.trim().is_empty() || !message.contains(c.names) {
        return Err(format!("the message does not name `{}`", c.names));
    }
    Ok(())
}

#[test]
fn bad_input_is_a_4xx_naming_the_field_and_changes_nothing() {
    let s = Server::start();
    let (id, t) = s.account("pro", "UTC");
    // Existing objects for the conflict and settle rows.
    let (st, _) = s.call(
        "POST",
        "/v1/usage",
        Some(&t),
        Some(usage("u-old", "lite", 0, 0, 10)),
    );
    assert_eq!(st, 201);
    let (st, _) = s.call(
        "POST",
        "/v1/holds",
        Some(&t),
        Some(json!({"id": "h-old", "amount": CREDIT})),
    );
    assert_eq!(st, 201);
    let before = snapshot(&s, &t);

    let u = valid_usage();
    let hold = json!({"id": "h-new", "amount": CREDIT});
    let settle = valid_settle();
    let long_id = "x".repeat(10 * 1024);
    let huge_body = format!(
        r#"{{"id": "big", "project": "{}"}}"#,
        "p".repeat(100 * 1024)
    );
    let grants = format!("/v1/admin/accounts/{id}/grants");
    let plan = format!("/v1/admin/accounts/{id}/plan");
    let new_account = json!({"email": "new@example.com", "plan": "pro", "timezone": "UTC"});
    let grant = json!({"id": "g-new", "amount": CREDIT, "reason": "admin"});
    let usage_path = "/v1/usage";

    let table = vec![
        // -------------------------------------------------------------- POST /v1/usage
        case("malformed JSON", "POST", usage_path, raw(r#"{"id": "x","#)).names("body"),
        case("not an object", "POST", usage_path, raw("[]")).names("body"),
        case("null", "POST", usage_path, raw("null")).names("body"),
        case("empty body", "POST", usage_path, raw("")).names("body"),
        case("no body at all", "POST", usage_path, None).names("body"),
        case(
            "tokens as text",
            "POST",
            usage_path,
            with(&u, "input_tokens", r#""ten""#),
        )
        .names("input_tokens"),
        case("id as a number", "POST", usage_path, with(&u, "id", "42")).names("id"),
        case(
            "fractional tokens",
            "POST",
            usage_path,
            with(&u, "output_tokens", "1.5"),
        )
        .names("output_tokens"),
        case(
            "tokens as exponent",
            "POST",
            usage_path,
            with(&u, "output_tokens", "1e3"),
        )
        .names("output_tokens"),
        case(
            "null project",
            "POST",
            usage_path,
            with(&u, "project", "null"),
        )
        .names("project"),
        case(
            "unknown field",
            "POST",
            usage_path,
            with(&u, "colour", r#""red""#),
        )
        .names("colour"),
        case("missing model", "POST", usage_path, without(&u, "model")).names("model"),
        case("missing thread", "POST", usage_path, without(&u, "thread")).names("thread"),
        case(
            "negative tokens",
            "POST",
            usage_path,
            with(&u, "input_tokens", "-1"),
        )
        .names("input_tokens"),
        case(
            "tokens beyond i64",
            "POST",
            usage_path,
            with(&u, "output_tokens", "9223372036854775808"),
        )
        .names("output_tokens"),
        case(
            "tokens beyond u64",
            "POST",
            usage_path,
            with(&u, "output_tokens", "18446744073709551616"),
        )
        .names("output_tokens"),
        case(
            "tokens beyond the per-event bound, on a free event",
            "POST",
            usage_path,
            Some(
                json!({"id": "u-free", "project": "p", "thread": "t", "model": "lite", "kind": "chat",
                       "status": "cancelled", "input_tokens": 0, "cached_input_tokens": 0,
                       "output_tokens": 1_000_000_000_001u64})
                .to_string()
                .into_bytes(),
            ),
        )
        .names("output_tokens"),
        case(
            "a charge beyond i64",
            "POST",
            usage_path,
            with(&u, "output_tokens", "9223372036854775807"),
        )
        .names("output_tokens"),
        case(
            "unknown model",
            "POST",
            usage_path,
            with(&u, "model", r#""gpt-17""#),
        )
        .names("model"),
        case(
            "cached above input",
            "POST",
            usage_path,
            with(&u, "cached_input_tokens", "11"),
        )
        .names("cached_input_tokens"),
        case("empty id", "POST", usage_path, with(&u, "id", r#""""#)).names("id"),
        case(
            "10 KB id",
            "POST",
            usage_path,
            with(&u, "id", &format!("\"{long_id}\"")),
        )
        .names("id"),
        case(
            "control character in project",
            "POST",
            usage_path,
            with(&u, "project", r#""a\u0007b""#),
        )
        .names("project"),
        case(
            "newline in thread",
            "POST",
            usage_path,
            with(&u, "thread", r#""line\nbreak""#),
        )
        .names("thread"),
        case(
            "lone surrogate in id",
            "POST",
            usage_path,
            with(&u, "id", r#""\ud800""#),
        )
        .names("id"),
        case(
            "invalid UTF-8",
            "POST",
            usage_path,
            Some(b"{\"id\": \"\xff\xfe\"}".to_vec()),
        )
        .names("id"),
        case(
            "unknown kind",
            "POST",
            usage_path,
            with(&u, "kind", r#""dance""#),
        )
        .names("kind"),
        case(
            "unknown status",
            "POST",
            usage_path,
            with(&u, "status", r#""done""#),
        )
        .names("status"),
        case(
            "duplicate field",
            "POST",
            usage_path,
            raw(r#"{"id": "a", "id": "b"}"#),
        )
        .names("id"),
        case("100 KB body", "POST", usage_path, raw(&huge_body))
            .is(413, "payload_too_large")
            .names("64 KiB"),
        case(
            "same id, other body",
            "POST",
            usage_path,
            Some(usage("u-old", "lite", 0, 0, 11).to_string().into_bytes()),
        )
        .is(409, "idempotency_conflict")
        .names("idempotency"),
        case(
            "more than available",
            "POST",
            usage_path,
            Some(
                usage("u-big", "premium", 0, 0, 10_000_000)
                    .to_string()
                    .into_bytes(),
            ),
        )
        .is(402, "insufficient_credits")
        .names("insufficient"),
        // -------------------------------------------------------------- POST /v1/holds
        case("zero hold", "POST", "/v1/holds", with(&hold, "amount", "0")).names("amount"),
        case(
            "negative hold",
            "POST",
            "/v1/holds",
            with(&hold, "amount", "-1"),
        )
        .names("amount"),
        case(
            "hold beyond i64",
            "POST",
            "/v1/holds",
            with(&hold, "amount", "9223372036854775808"),
        )
        .names("amount"),
        case(
            "hold amount as text",
            "POST",
            "/v1/holds",
            with(&hold, "amount", r#""100""#),
        )
        .names("amount"),
        case(
            "fractional hold",
            "POST",
            "/v1/holds",
            with(&hold, "amount", "1.5"),
        )
        .names("amount"),
        case(
            "missing amount",
            "POST",
            "/v1/holds",
            without(&hold, "amount"),
        )
        .names("amount"),
        case(
            "zero ttl",
            "POST",
            "/v1/holds",
            with(&hold, "ttl_seconds", "0"),
        )
        .names("ttl_seconds"),
        case(
            "negative ttl",
            "POST",
            "/v1/holds",
            with(&hold, "ttl_seconds", "-5"),
        )
        .names("ttl_seconds"),
        case(
            "ttl of 30 years",
            "POST",
            "/v1/holds",
            with(&hold, "ttl_seconds", "1000000000"),
        )
        .names("ttl_seconds"),
        case(
            "empty hold id",
            "POST",
            "/v1/holds",
            with(&hold, "id", r#""""#),
        )
        .names("id"),
        case(
            "hold above available",
            "POST",
            "/v1/holds",
            with(&hold, "amount", "600000000"),
        )
        .is(402, "insufficient_credits")
        .names("insufficient"),
        case(
            "same hold id, other amount",
            "POST",
            "/v1/holds",
            raw(r#"{"id": "h-old", "amount": 2000000}"#),
        )
        .is(409, "idempotency_conflict")
        .names("idempotency"),
        // -------------------------------------------------------------- settle and void
        case(
            "settle: unknown model",
            "POST",
            "/v1/holds/h-old/settle",
            with(&settle, "model", r#""gpt-17""#),
        )
        .names("model"),
        case(
            "settle: cached above input",
            "POST",
            "/v1/holds/h-old/settle",
            with(&settle, "cached_input_tokens", "11"),
        )
        .names("cached_input_tokens"),
        case(
            "settle: an id field",
            "POST",
            "/v1/holds/h-old/settle",
            with(&settle, "id", r#""x""#),
        )
        .names("id"),
        case(
            "settle: malformed",
            "POST",
            "/v1/holds/h-old/settle",
            raw("{"),
        )
        .names("body"),
        case(
            "settle: 10 KB hold id",
            "POST",
            &format!("/v1/holds/{long_id}/settle"),
            Some(settle.to_string().into_bytes()),
        )
        .names("id"),
        case(
            "void: 10 KB hold id",
            "POST",
            &format!("/v1/holds/{long_id}/void"),
            None,
        )
        .names("id"),
        case(
            "void: hold id not UTF-8",
            "POST",
            "/v1/holds/%FF/void",
            None,
        )
        .names("id"),
        case(
            "settle: hold id not UTF-8",
            "POST",
            "/v1/holds/%FF%FE/settle",
            Some(settle.to_string().into_bytes()),
        )
        .names("id"),
        case(
            "tokens: account id not UTF-8",
            "POST",
            "/v1/admin/accounts/%C3%28/tokens",
            None,
        )
        .admin()
        .names("id"),
        // -------------------------------------------------------------- PATCH /v1/account
        case(
            "unknown timezone",
            "PATCH",
            "/v1/account",
            raw(r#"{"timezone": "Mars/Olympus"}"#),
        )
        .names("timezone"),
        case(
            "empty timezone",
            "PATCH",
            "/v1/account",
            raw(r#"{"timezone": ""}"#),
        )
        .names("timezone"),
        case(
            "timezone as a number",
            "PATCH",
            "/v1/account",
            raw(r#"{"timezone": 5}"#),
        )
        .names("timezone"),
        case(
            "offset, not a zone",
            "PATCH",
            "/v1/account",
            raw(r#"{"timezone": "+02:00"}"#),
        )
        .names("timezone"),
        case("missing timezone", "PATCH", "/v1/account", raw("{}")).names("timezone"),
        case(
            "a plan through the account",
            "PATCH",
            "/v1/account",
            raw(r#"{"timezone": "UTC", "plan": "team"}"#),
        )
        .names("plan"),
        // -------------------------------------------------------------- queries
        case(
            "from is not a time",
            "GET",
            "/v1/usage?from=yesterday",
            None,
        )
        .names("from"),
        case("from is a date", "GET", "/v1/usage?from=2026-11-21", None).names("from"),
        case(
            "to is not a date",
            "GET",
            "/v1/usage?to=2026-13-01T00:00:00Z",
            None,
        )
        .names("to"),
        case("unknown grouping", "GET", "/v1/usage?group_by=week", None).names("group_by"),
        case(
            "unknown query parameter",
            "GET",
            "/v1/usage?colour=red",
            None,
        )
        .names("colour"),
        case("limit is text", "GET", "/v1/ledger?limit=abc", None).names("limit"),
        case("limit is negative", "GET", "/v1/ledger?limit=-1", None).names("limit"),
        case("limit is zero", "GET", "/v1/ledger?limit=0", None).names("limit"),
        case("limit is 1001", "GET", "/v1/ledger?limit=1001", None).names("limit"),
        case(
            "limit beyond u64",
            "GET",
            "/v1/ledger?limit=99999999999999999999",
            None,
        )
        .names("limit"),
        case("cursor is text", "GET", "/v1/ledger?after=abc", None).names("after"),
        case("cursor is negative", "GET", "/v1/ledger?after=-5", None).names("after"),
        case("notices limit 5000", "GET", "/v1/notices?limit=5000", None).names("limit"),
        // -------------------------------------------------------------- admin
        case(
            "account: bad timezone",
            "POST",
            "/v1/admin/accounts",
            with(&new_account, "timezone", r#""Europe/Atlantis""#),
        )
        .admin()
        .names("timezone"),
        case(
            "account: unknown plan",
            "POST",
            "/v1/admin/accounts",
            with(&new_account, "plan", r#""platinum""#),
        )
        .admin()
        .names("plan"),
        case(
            "account: not an email",
            "POST",
            "/v1/admin/accounts",
            with(&new_account, "email", r#""nobody""#),
        )
        .admin()
        .names("email"),
        case(
            "account: missing timezone",
            "POST",
            "/v1/admin/accounts",
            without(&new_account, "timezone"),
        )
        .admin()
        .names("timezone"),
        case(
            "grant: negative",
            "POST",
            &grants,
            with(&grant, "amount", "-1"),
        )
        .admin()
        .names("amount"),
        case("grant: zero", "POST", &grants, with(&grant, "amount", "0"))
            .admin()
            .names("amount"),
        case(
            "grant: beyond i64",
            "POST",
            &grants,
            with(&grant, "amount", "9223372036854775808"),
        )
        .admin()
        .names("amount"),
        case(
            "grant: overflowing the balance",
            "POST",
            &grants,
            with(&grant, "amount", "9223372036854775807"),
        )
        .admin()
        .names("amount"),
        case(
            "grant: fractional",
            "POST",
            &grants,
            with(&grant, "amount", "0.5"),
        )
        .admin()
        .names("amount"),
        case(
            "grant: unknown reason",
            "POST",
            &grants,
            with(&grant, "reason", r#""gift""#),
        )
        .admin()
        .names("reason"),
        case(
            "grant: expiry not a time",
            "POST",
            &grants,
            with(&grant, "expires_at", r#""tomorrow""#),
        )
        .admin()
        .names("expires_at"),
        case(
            "grant: expiry in the past",
            "POST",
            &grants,
            with(&grant, "expires_at", r#""2020-01-01T00:00:00Z""#),
        )
        .admin()
        .names("expires_at"),
        case(
            "grant: 3,000-character note",
            "POST",
            &grants,
            with(&grant, "note", &format!("\"{}\"", "n".repeat(3000))),
        )
        .admin()
        .names("note"),
        case(
            "grant: a server-reserved id",
            "POST",
            &grants,
            with(&grant, "id", r#""x:daily:1""#),
        )
        .admin()
        .names("id"),
        case(
            "grant: 10 KB id",
            "POST",
            &grants,
            with(&grant, "id", &format!("\"{long_id}\"")),
        )
        .admin()
        .names("id"),
        case(
            "plan: unknown",
            "PUT",
            &plan,
            raw(r#"{"plan": "platinum"}"#),
        )
        .admin()
        .names("plan"),
        case("plan: a number", "PUT", &plan, raw(r#"{"plan": 3}"#))
            .admin()
            .names("plan"),
        case(
            "clock: backwards",
            "POST",
            "/v1/admin/clock",
            raw(r#"{"now": "2026-11-21T17:59:59Z"}"#),
        )
        .admin()
        .names("backwards"),
        case(
            "clock: negative step",
            "POST",
            "/v1/admin/clock",
            raw(r#"{"advance_seconds": -5}"#),
        )
        .admin()
        .names("advance_seconds"),
        case(
            "clock: a huge step",
            "POST",
            "/v1/admin/clock",
            raw(r#"{"advance_seconds": 1000000000000}"#),
        )
        .admin()
        .names("advance_seconds"),
        case(
            "clock: not a time",
            "POST",
            "/v1/admin/clock",
            raw(r#"{"now": "soon"}"#),
        )
        .admin()
        .names("now"),
        case(
            "clock: both",
            "POST",
            "/v1/admin/clock",
            raw(r#"{"now": "2027-01-01T00:00:00Z", "advance_seconds": 1}"#),
        )
        .admin()
        .names("advance_seconds"),
        case(
            "admin: 100 KB body",
            "POST",
            "/v1/admin/accounts",
            raw(&huge_body),
        )
        .admin()
        .is(413, "payload_too_large"),
    ];

    let mut failures = Vec::new();
    for c in &table {
        let token = match c.who {
            Who::Account => t.as_str(),
            Who::Admin => ADMIN,
        };
        let mut req = s
            .http
            .request(
                reqwest::Method::from_bytes(c.method.as_bytes()).unwrap(),
                s.url(&c.path),
            )
            .bearer_auth(token);
        if let Some(body) = &c.body {
            req = req
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if let Err(why) = verdict(c, status, &body) {
            failures.push(format!(
                "{}: {why}: {status} {}",
                c.what,
                text.chars().take(300).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );

    assert_eq!(snapshot(&s, &t), before, "bad input changed the account");
    let (ok, report) = s.check_db();
    assert!(ok, "{report}");
}

/// Free (cancelled) events at the per-event bound are taken, and the report sums them
/// exactly; with i64::MAX allowed per event, two of them made `GET /v1/usage` answer 500
/// (SQLite's `SUM` overflowed: found by schemathesis).
#[test]
fn usage_sums_stay_exact_at_the_per_event_bound() {
    let s = Server::start();
    let (_, token) = s.account("free", "UTC");
    let max = 1_000_000_000_000u64;
    // A free (cancelled) event: nothing is charged, whatever the counts.
    let free_event = |id: &str, input: u64, output: u64| {
        s.call(
            "POST",
            "/v1/usage",
            Some(&token),
            Some(
                json!({"id": id, "project": "p", "thread": "t", "model": "lite", "kind": "chat",
                   "status": "cancelled", "input_tokens": input, "cached_input_tokens": input,
                   "output_tokens": output}),
            ),
        )
    };
    // Two of these made the report overflow; each is now refused by name.
    for id in ["huge-1", "huge-2"] {
        let (st, body) = free_event(id, 0, 5_000_000_000_000_000_000);
        assert_eq!(st, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("output_tokens"),
            "{body}"
        );
    }
    for id in ["big-1", "big-2", "big-3"] {
        let (st, body) = free_event(id, max, max);
        assert_eq!(st, 201, "{body}");
    }
    let (st, body) = s.call("GET", "/v1/usage?group_by=project", Some(&token), None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["items"][0]["output_tokens"], json!(3 * max), "{body}");
    assert_eq!(body["items"][0]["events"], json!(3), "{body}");
}
