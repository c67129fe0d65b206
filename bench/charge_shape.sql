-- creditbar's charge on PostgreSQL, statement for statement, for pgbench (scripts/bench-server
-- runs it on the creditbar database its servers made, after they stop): what PostgreSQL alone
-- does for one POST /v1/usage, with no HTTP server in front. Its throughput is the most
-- creditbar's present transaction shape can reach on this database, whatever the server does.
-- The statements are store.rs's (the token's lookup, then in one transaction the account's
-- lock, the usage id's record, the ledger entry, the usage event, the account's new state);
-- one more statement than creditbar sends picks the client's account (acct_n: n -> id, token
-- hash), and pg_notify's batched share is left out.
\set n (:client_id * 4 + random(0, 3))
\set seq random(1000000, 1000000000000)
SELECT id AS acc, hash AS h FROM acct_n WHERE n = :n \gset
SELECT account_id, expires_at FROM tokens WHERE hash = :h;
BEGIN;
SELECT email, state FROM accounts WHERE id = :acc FOR UPDATE;
SELECT 0, CASE WHEN hold_id IS NOT NULL THEN 1 ELSE 0 END, body_hash, response FROM usage_events WHERE account_id = :acc AND id = 'u' || :seq UNION ALL SELECT 1, 0, NULL, NULL FROM holds WHERE account_id = :acc AND id = 'u' || :seq ORDER BY 1 LIMIT 1;
INSERT INTO ledger (account_id, seq, at, type, bucket, amount, balance_after, grant_id, ref) VALUES (:acc, :seq, '2026-12-06T13:00:00.000Z', 'usage', 'bonus', -1000, 999999999000, 'g', 'u' || :seq);
INSERT INTO usage_events (account_id, id, at, local_day, project, thread, model, kind, status, input_tokens, cached_input_tokens, output_tokens, charged, hold_id, body_hash, response) VALUES (:acc, 'u' || :seq, '2026-12-06T13:00:00.000Z', '2026-12-06', 'bench', 't0', 'lite', 'chat', 'completed', 12, 0, 8, 1000, NULL, '\x0102'::bytea, '{"id":"u","charged":1000,"breakdown":{"bonus":1000},"balance":{"available":999999999000}}');
UPDATE accounts SET state = state, next_due = next_due WHERE id = :acc;
COMMIT;
