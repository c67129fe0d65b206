-- pgbench: the smallest charge one transaction can be (bench/charge_floor.sql has why), as
-- tightly as PostgreSQL takes it: two pipelined round trips. Each client charges its own
-- four accounts, as scripts/bench-server's other PostgreSQL sides.
\set n (:client_id * 4 + random(0, 3))
\set seq random(1, 1000000000000)
\startpipeline
BEGIN;
SELECT state FROM floor_accounts WHERE id = :n FOR UPDATE;
\endpipeline
\startpipeline
WITH a AS (UPDATE floor_accounts SET state = state WHERE id = :n RETURNING id), l AS (INSERT INTO floor_ledger (account_id, seq, at, type, bucket, amount, balance_after, grant_id, ref) SELECT id, :seq, '2026-12-06T13:00:00.000Z', 'usage', 'bonus', -1000, 999999999000, 'g', 'u' || :seq FROM a) INSERT INTO floor_usage (account_id, id, at, local_day, project, thread, model, kind, status, input_tokens, cached_input_tokens, output_tokens, charged, hold_id, body_hash, response) SELECT id, 'u' || :seq, '2026-12-06T13:00:00.000Z', '2026-12-06', 'bench', 't0', 'lite', 'chat', 'completed', 12, 0, 8, 1000, NULL, '\x0102'::bytea, '{"id":"u","charged":1000,"breakdown":{"bonus":1000},"balance":{"available":999999999000}}' FROM a;
COMMIT;
\endpipeline
