-- The smallest charge one transaction can be on PostgreSQL, on creditbar's own columns: the
-- floor of the issue-14 design (each account command is one transaction that locks the
-- account's row and applies the ledger crate to what it read). scripts/bench-server makes
-- these tables beside the baseline's (psql -v accounts=N) and measures the shape twice:
-- with pgbench alone (bench/charge_floor_pgbench.sql) and behind the HTTP stack of
-- examples/pg_http_floor.rs (its `charge` shape).
--
-- What a charge cannot do without: lock and read the account's state (the lots the ledger
-- crate burns from), append its ledger entry (immutable: the trigger), record the usage
-- event under its id (the idempotency record and GET /v1/usage/events), write the account's
-- new state back. In two round trips: BEGIN with the lock and read, then one statement of
-- data-modifying CTEs with COMMIT. Left out, though creditbar has them: the token's lookup,
-- the foreign-key checks, the holds' table, pg_notify, the next_due column's update.
CREATE TABLE floor_accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    next_due TEXT
);
CREATE INDEX floor_accounts_due ON floor_accounts (next_due);
-- 1.2 KB of state, as a creditbar account's JSON document.
INSERT INTO floor_accounts
    SELECT g::text, 'bench@example.com', '2026-12-06T00:00:00.000Z', repeat('s', 1200),
           '2026-12-31T00:00:00.000Z'
    FROM generate_series(0, :accounts - 1) g;
CREATE TABLE floor_ledger (
    account_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    bucket TEXT NOT NULL,
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    grant_id TEXT NOT NULL,
    ref TEXT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE FUNCTION floor_ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable';
END
$$;
CREATE TRIGGER floor_ledger_no_update BEFORE UPDATE OR DELETE ON floor_ledger
    FOR EACH ROW EXECUTE FUNCTION floor_ledger_immutable();
CREATE TABLE floor_usage (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    local_day TEXT NOT NULL,
    project TEXT NOT NULL,
    thread TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    charged BIGINT NOT NULL,
    hold_id TEXT,
    body_hash BYTEA,
    response TEXT,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX floor_usage_by_time ON floor_usage (account_id, at);
