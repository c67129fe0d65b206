-- wrk script for POST /v1/usage: one unique usage id per request.
-- Usage: wrk -c N -t T -d 10s --latency -s bench/usage.lua http://ADDR/v1/usage -- TOKEN RUNTAG
-- Each thread numbers its own requests; the id is "<RUNTAG>-<thread>-<n>", so no two
-- requests of a run (or of two runs with different tags) share an id, and every one is a
-- fresh charge (never an idempotent replay). Any response other than 201 is counted and
-- makes the run fail (printed as non201= on the RESULT line).
--
-- With a third argument `health` it sends `GET /v1/health` instead and expects 200: the
-- same load generator doing the same per-request Lua work against an endpoint that touches
-- no storage, i.e. the most any request can do through this HTTP stack on this machine
-- (the "HTTP ceiling" row of scripts/bench-server). non201= then counts answers other than 200.
--
-- With a third argument `purchase` and a fourth, a payment token, it sends `POST
-- /v1/purchases` (pack_500) with a fresh Idempotency-Key per request: every request is a
-- new payment intent, recorded and completed with fsync, and a charge of the test gateway.

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local token, tag, health, purchase, card
local tokens = {}
local expected = 201
local n = 0
non201 = 0
first_bad = ""

function init(args)
  token = args[1] or error("usage.lua: pass the account token after --")
  -- Several tokens, comma-separated: requests go to their accounts in turn (the
  -- PostgreSQL rows of scripts/bench-server, where one account's row lock would otherwise
  -- serialize every charge, as one hot row would the pgbench baseline).
  for t in string.gmatch(token, "[^,]+") do table.insert(tokens, t) end
  token = tokens[1]
  tag = args[2] or "run"
  health = args[3] == "health"
  purchase = args[3] == "purchase"
  card = args[4]
  if health then
    expected = 200
    return
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  n = n + 1
  if health then
    return wrk.format("GET", "/v1/health")
  end
  if purchase then
    local key = string.format("%s-%d-%d", tag, tid, n)
    local body = string.format('{"pack":"pack_500","payment_token":"%s"}', card)
    -- wrk.format's headers replace wrk.headers: give all of them.
    local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
      ["Idempotency-Key"] = key,
    }
    return wrk.format("POST", "/v1/purchases", headers, body)
  end
  local body = string.format(
    '{"id":"%s-%d-%d","project":"bench","thread":"t%d","model":"lite","kind":"chat",' ..
    '"status":"completed","input_tokens":12,"cached_input_tokens":0,"output_tokens":8}',
    tag, tid, n, tid)
  if #tokens > 1 then
    local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[(n * 2 + tid) % #tokens + 1],
    }
    return wrk.format("POST", "/v1/usage", headers, body)
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= expected then
    non201 = non201 + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non201")
    local fb = t:get("first_bad")
    if sample == "" and fb ~= nil and fb ~= "" then sample = fb end
  end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d non201=%d socket_errors=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max, bad, socket_errors))
  if sample ~= "" then
    io.write("FIRST_BAD " .. sample:gsub("\n", " ") .. "\n")
  end
end
