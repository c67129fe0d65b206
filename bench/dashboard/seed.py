#!/usr/bin/python3
"""Seeds an account with usage events through the real API of a `creditbar-server
--test-clock` (stdlib only): N events spread evenly over DAYS days ending at the server's
start time + DAYS days, across 5 projects, 2,000 threads and the 3 models.

Usage: seed.py BASE_URL ADMIN_TOKEN N DAYS TOKEN_FILE
Writes the account token to TOKEN_FILE. 8 threads, one keep-alive connection each.
"""
import http.client
import json
import sys
import threading
import urllib.parse

base, admin, n, days, token_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
url = urllib.parse.urlsplit(base)
MODELS = ["lite", "standard", "premium"]
KINDS = ["chat", "agent", "edit", "summarization"]


def connect():
    return http.client.HTTPConnection(url.hostname, url.port, timeout=60)


def call(conn, method, path, token, body):
    conn.request(method, path, body=json.dumps(body), headers={"authorization": f"Bearer {token}",
                                                               "content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        sys.exit(f"seed: {method} {path} -> {resp.status} {data[:300]!r}")
    return json.loads(data) if data else None


c = connect()
made = call(c, "POST", "/v1/admin/accounts", admin,
            {"email": "bench@example.com", "plan": "team", "timezone": "Europe/Paris"})
token, account = made["token"], made["account"]["id"]
# Enough bonus credits that no event is refused (each costs 0.05–0.6 credits).
call(c, "POST", f"/v1/admin/accounts/{account}/grants", admin,
     {"id": "bench-bonus", "amount": max(n, 1000) * 1_000_000, "reason": "promo"})


errors = []


def post(start, stop):
    try:
        post_range(start, stop)
    except BaseException as e:  # SystemExit in a thread would only end that thread
        errors.append(str(e))


def post_range(start, stop):
    conn = connect()
    for i in range(start, stop):
        call(conn, "POST", "/v1/usage", token, {
            "id": f"bench-{i}", "project": f"project-{i % 5}", "thread": f"thread-{(i * 7) % 2000}",
            "model": MODELS[i % 3], "kind": KINDS[i % 4], "status": "cancelled" if i % 50 == 0 else "completed",
            "input_tokens": 1200 + i % 700, "cached_input_tokens": 400, "output_tokens": 300 + i % 900})


done = 0
for day in range(days):
    todo = n * (day + 1) // days - done
    step = (todo + 7) // 8
    threads = [threading.Thread(target=post, args=(done + k * step, min(done + todo, done + (k + 1) * step)))
               for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(errors[0])
    done += todo
    call(c, "POST", "/v1/admin/clock", admin, {"advance_seconds": 86400})
with open(token_file, "w") as f:
    f.write(token + "\n")
print(f"seeded {done} usage events over {days} days", file=sys.stderr)
