#!/usr/bin/env bash
# Runs inside the private desktop session (tests/desktop/session.sh): signs the CLI in
# (same keychain and data dir as the app), fills the cache with one sync, starts the app
# (signed in: tray only), then opens the dashboard RUNS times by launching the app again
# (single instance: the running one opens the dashboard) and closes it as a window
# manager's close button does. Prints one "painted MS" line per opening.
# Usage: inside.sh APP CLI SERVER_URL TOKEN_FILE RUNS APP_LOG
set -euo pipefail; [ -n "${BENCH_TRACE:-}" ] && set -x
app="$1" cli="$2" url="$3" token="$4" runs="$5" log="$6"
here="$(cd "$(dirname "$0")" && pwd)"
"$cli" login --server "$url" --token-stdin <"$token" >&2
"$cli" sync >&2
RUST_LOG="${RUST_LOG:-info}" "$app" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q "tray ready" "$log" && break; sleep 0.1; done
grep -q "tray ready" "$log" || { cat "$log" >&2; echo "inside.sh: the app did not start" >&2; exit 1; }
sleep 2 # let the live sync's first round finish, as a user's idle app has
for run in $(seq 1 "$runs"); do
  "$app" >/dev/null 2>&1 || true
  for _ in $(seq 1 300); do
    [ "$(grep -c 'window painted' "$log")" -ge "$run" ] && break; sleep 0.05
  done
  line="$(grep 'window painted' "$log" | sed -n "${run}p")"
  [ -n "$line" ] || { tail -20 "$log" >&2; echo "inside.sh: no paint for opening $run" >&2; exit 1; }
  echo "painted $(printf '%s' "$line" | sed 's/\x1b\[[0-9;]*m//g' | sed -n 's/.* ms=\([0-9]*\).*/\1/p')"
  # Close it and wait until it is gone (xclose.py exits 1 when no such window is left).
  for _ in $(seq 1 100); do /usr/bin/python3 "$here/../desktop/xclose.py" "dashboard" >/dev/null || break; sleep 0.1; done
  sleep 0.5
done
