#!/usr/bin/env python3
"""How long a charge takes to reach a live event stream (GET /v1/events), across processes.

Usage: event_latency.py BASE_A BASE_B TOKEN [N]

Charges the token's account N times (default 200), one at a time, through process A
(`POST /v1/usage`), and times each from the moment it is sent until its `balance` event
(the balance after it) is read from a stream. Two streams are open, one on A and one on B,
and the charges alternate which one is timed, so both are measured in the same run under
the same load:

- `same process` (the peer): the stream on A, fed by A's writer directly;
- `across processes`: the stream on B, fed through PostgreSQL (A's announcer's pg_notify,
  B's listener).

Prints one line per side: `side=... n=... p50_ms=... p99_ms=... max_ms=...`.
Standard library only (scripts/bench-server runs it with Debian's python3).
"""

import http.client
import json
import sys
import time
import urllib.parse


def connect(base):
    u = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


class Stream:
    def __init__(self, base, token):
        self.conn = connect(base)
        self.conn.request(
            "GET",
            "/v1/events",
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        )
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            sys.exit(f"event stream on {base}: HTTP {self.resp.status}")

    def balance(self):
        """The next `balance` event's data."""
        event = None
        while True:
            line = self.resp.readline()
            if not line:
                sys.exit("event stream ended")
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "balance":
                return json.loads(line[5:])
            elif line == "":
                event = None

    def until(self, available):
        while self.balance()["available"] != available:
            pass


def percentile(xs, p):
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(len(xs) * p) - 1))]


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base_a, base_b, token = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    streams = {"same process": Stream(base_a, token), "across processes": Stream(base_b, token)}
    # Each stream opens with the current balance.
    opening = {side: s.balance()["available"] for side, s in streams.items()}
    available = opening["same process"]
    charger = connect(base_a)
    times = {side: [] for side in streams}
    tag = f"lat-{time.time_ns()}"
    for i in range(n):
        side = "same process" if i % 2 == 0 else "across processes"
        body = json.dumps({
            "id": f"{tag}-{i}", "project": "bench", "thread": "t", "model": "lite",
            "kind": "chat", "status": "completed", "input_tokens": 12,
            "cached_input_tokens": 0, "output_tokens": 8,
        })
        sent = time.perf_counter()
        charger.request("POST", "/v1/usage", body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        resp = charger.getresponse()
        answer = json.loads(resp.read())
        if resp.status != 201:
            sys.exit(f"charge {i}: HTTP {resp.status} {answer}")
        available = answer["balance"]["available"]
        streams[side].until(available)
        times[side].append((time.perf_counter() - sent) * 1000)
        # The other stream catches up before the next timed charge is sent.
        other = [s for k, s in streams.items() if k != side][0]
        other.until(available)
    for side, xs in times.items():
        print(f"side={side.replace(' ', '_')} n={len(xs)} p50_ms={percentile(xs, 0.5):.2f} "
              f"p99_ms={percentile(xs, 0.99):.2f} max_ms={max(xs):.2f}")


if __name__ == "__main__":
    main()
