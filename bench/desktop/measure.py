#!/usr/bin/python3
"""Numbers for scripts/bench-desktop: process-tree snapshots from /proc, log parsing, and
the final table.

  measure.py snap PID OUT.json       -- the process tree under PID (PID included): per
                                        process comm, Pss and Rss (kB, smaps_rollup) and
                                        CPU ticks (utime+stime+cutime+cstime)
  measure.py webkit PID              -- prints how many WebKit* processes are in the tree
  measure.py ready LOG PATTERN       -- prints N from the first "PATTERN ms=N" line of LOG
                                        (ANSI colours stripped), or nothing
  measure.py report WORK             -- prints the table from WORK/results/*
"""
import datetime
import json
import os
import re
import statistics
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TICK = os.sysconf("SC_CLK_TCK")


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(root):
    kids = children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def proc_info(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        mem = {}
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] in ("Pss:", "Rss:"):
                    mem[parts[0][:-1].lower()] = int(parts[1])
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2:].split()
    # Fields after the comm: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
    # ... starttime(22); rest[0] is field 3.
    ticks = sum(int(rest[i]) for i in (11, 12, 13, 14))
    return {
        "pid": pid,
        "ppid": int(rest[1]),
        "comm": comm,
        "pss_kb": mem.get("pss", 0),
        "rss_kb": mem.get("rss", 0),
        "ticks": ticks,
        "start": int(rest[19]),
    }


def snap(root):
    procs = [p for p in (proc_info(pid) for pid in tree(root)) if p]
    return {"root": root, "tick_hz": TICK, "procs": procs}


def ready(log, pattern):
    try:
        with open(log, errors="replace") as f:
            for line in f:
                line = ANSI.sub("", line)
                if pattern in line:
                    m = re.search(re.escape(pattern) + r".*?\bms=(\d+)", line)
                    if m:
                        return int(m.group(1)), line
    except OSError:
        pass
    return None, None


def wall_ms(line):
    """Wall-clock time of a ready line: the hello apps print unix_ms=; tracing lines start
    with an RFC 3339 UTC timestamp."""
    m = re.search(r"\bunix_ms=(\d+)", line)
    if m:
        return int(m.group(1))
    m = re.match(r"\s*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z", line)
    if m:
        ts = m.group(1)
        if "." in ts:
            head, frac = ts.split(".")
            ts = f"{head}.{frac[:6]:0<6}"
        dt = datetime.datetime.fromisoformat(ts).replace(tzinfo=datetime.timezone.utc)
        return dt.timestamp() * 1000
    return None


# ------------------------------------------------------------------------------ report

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def totals(s):
    if not s:
        return None
    procs = s["procs"]
    return {
        "pss": sum(p["pss_kb"] for p in procs) / 1024,
        "rss": sum(p["rss_kb"] for p in procs) / 1024,
        "n": len(procs),
        "webkit": sum(1 for p in procs if p["comm"].startswith("WebKit")),
        "comms": sorted(p["comm"] for p in procs),
    }


def cpu_percent(a, b, seconds):
    """CPU of the tree between snapshots a and b as % of one core: a process present in both
    (same pid and start time) counts its increase, a new one counts all its time."""
    if not a or not b:
        return None
    before = {(p["pid"], p["start"]): p["ticks"] for p in a["procs"]}
    ticks = 0
    for p in b["procs"]:
        ticks += p["ticks"] - before.get((p["pid"], p["start"]), 0)
    return 100.0 * ticks / b["tick_hz"] / seconds


def report(work):
    res = os.path.join(work, "results")

    def read(name, conv):
        try:
            with open(os.path.join(res, name)) as f:
                text = f.read().strip()
            return conv(text) if text and text != "None" else None
        except (OSError, ValueError):
            return None

    apps = {}
    for role in ("creditbar", "creditbar-signedin", "hello-tray", "hello-window", "creditbar-signin"):
        runs = read(f"{role}.runs", lambda t: [json.loads(l) for l in t.splitlines() if l.strip()]) or []
        apps[role] = {
            "size": read(f"{role}.size", int),
            "runs": runs,
            "cpu": read(f"{role}.cpu", float),
            "rss_growth": read(f"{role}.rssgrowth", float),
        }
    meta = {"idle_seconds": read("idle_seconds", int)}

    def runs(role):
        return apps.get(role, {}).get("runs", [])

    def stat(role, key):
        vals = [r.get(key) for r in runs(role)]
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        return (statistics.median(vals), min(vals), max(vals), len(vals))

    def fmt_ms(role, key):
        s = stat(role, key)
        if not s:
            return "n/a"
        m, lo, hi, n = s
        return f"{m:.0f} ms ({lo:.0f}–{hi:.0f}, n={n})" if n > 1 else f"{m:.0f} ms"

    def fmt_mb(role, key):
        s = stat(role, key)
        if not s:
            return "n/a"
        m, lo, hi, n = s
        return f"{m:.1f} MB" + (f" ({lo:.1f}–{hi:.1f})" if n > 1 and hi - lo >= 0.5 else "")

    def fmt_int(role, key):
        s = stat(role, key)
        return "n/a" if not s else f"{s[0]:.0f}"

    def cpu(role):
        v = apps.get(role, {}).get("cpu")
        return v

    def fmt_cpu(role):
        v = cpu(role)
        return "n/a" if v is None else f"{v:.3f} %"

    def size(role):
        b = apps.get(role, {}).get("size")
        return "n/a" if b is None else f"{b / 1e6:.1f} MB"

    rows = []
    yes = lambda ok: "n/a" if ok is None else ("yes" if ok else "**NO**")
    cb, sd, tr, win, si = "creditbar", "creditbar-signedin", "hello-tray", "hello-window", "creditbar-signin"
    na = "—"
    demo = "`--demo` (server in process)"
    signed = "signed in (server out of process)"

    rows.append(["binary size (release)", size(cb), size(tr), size(win), na, na])

    def launch(role, label, hello=True):
        s = stat(role, "ready_ms")
        rows.append([f"launch → tray ready, logged: {label}", fmt_ms(role, "ready_ms"),
                     fmt_ms(tr, "ready_ms") if hello else na,
                     fmt_ms(win, "ready_ms") + " (window ready)" if hello else na,
                     "< 500 ms", yes(s and s[0] < 500)])
    launch(cb, demo)
    launch(sd, signed, hello=False)
    launch(si, "not signed in (opens the sign-in window)", hello=False)
    rows.append(["exec → ready line, wall clock (+ loading libraries): " + demo,
                 fmt_ms(cb, "exec_ms"), fmt_ms(tr, "exec_ms"), fmt_ms(win, "exec_ms") + " (window ready)", na, na])
    rows.append(["exec → ready line, wall clock (+ loading libraries): " + signed,
                 fmt_ms(sd, "exec_ms"), na, fmt_ms(win, "page_exec_ms") + " (page loaded)", na, na])

    def idle_mem(role, label):
        a, b = stat(role, "pss"), stat(tr, "pss")
        diff = (a[0] - b[0]) if a and b else None
        rows.append([f"idle, windows closed, PSS of process tree: {label}", fmt_mb(role, "pss"), fmt_mb(tr, "pss"),
                     na, "≤ hello tray + 15 MB",
                     yes(None if diff is None else diff <= 15) + ("" if diff is None else f" ({diff:+.1f} MB)")])
    idle_mem(cb, demo)
    idle_mem(sd, signed)
    rows.append([f"idle, windows closed, RSS of process tree: {demo}", fmt_mb(cb, "rss"), fmt_mb(tr, "rss"), na, na, na])
    rows.append([f"idle, windows closed, RSS of process tree: {signed}", fmt_mb(sd, "rss"), fmt_mb(tr, "rss"), na, na, na])
    for role, label in ((cb, demo), (sd, signed)):
        wk = stat(role, "webkit")
        rows.append([f"idle, windows closed, processes in tree (WebKit*): {label}",
                     f"{fmt_int(role, 'n')} ({fmt_int(role, 'webkit')})", f"{fmt_int(tr, 'n')} ({fmt_int(tr, 'webkit')})",
                     na, "0 WebKit*", yes(None if not wk else wk[2] == 0)])
    rows.append(["sign-in window open (hello: its window), PSS of process tree", fmt_mb(si, "pss"), na, fmt_mb(win, "pss"), na, na])
    rows.append(["sign-in window open (hello: its window), RSS of process tree", fmt_mb(si, "rss"), na, fmt_mb(win, "rss"), na, na])
    rows.append(["sign-in window open (hello: its window), processes in tree (WebKit*)",
                 f"{fmt_int(si, 'n')} ({fmt_int(si, 'webkit')})", na,
                 f"{fmt_int(win, 'n')} ({fmt_int(win, 'webkit')})", na, na])
    idle_s = meta.get("idle_seconds")
    for role, label in ((cb, demo), (sd, signed)):
        c = cpu(role)
        rows.append([f"idle CPU over {idle_s} s, windows closed, % of one core: {label}", fmt_cpu(role), fmt_cpu(tr), na,
                     "< 0.1 %", yes(None if c is None else c < 0.1)])
    rows.append([f"idle CPU over {idle_s} s, window open, % of one core", fmt_cpu(si), na, fmt_cpu(win), na, na])
    growth = lambda role: "n/a" if apps.get(role, {}).get("rss_growth") is None else f"{apps[role]['rss_growth']:+.1f} MB"
    rows.append([f"RSS change of the tree over the {idle_s} s idle",
                 f"{growth(cb)} (--demo), {growth(sd)} (signed in), {growth(si)} (sign-in window)",
                 growth(tr), growth(win), na, na])

    head = ["metric", "creditbar-desktop", "hello tray-only", "hello window", "goal", "met?"]
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))

    # What each tree holds (the last run's snapshot), PSS per process.
    print()
    for role in (cb, sd, tr, si, win):
        last = runs(role)[-1] if runs(role) else None
        if last and last.get("procs"):
            print(f"{role}: " + ", ".join(f"{c} {p:.1f} MB" for c, p in last["procs"]))


def main():
    cmd = sys.argv[1]
    if cmd == "snap":
        s = snap(int(sys.argv[2]))
        with open(sys.argv[3], "w") as f:
            json.dump(s, f)
    elif cmd == "webkit":
        t = totals(snap(int(sys.argv[2])))
        print(t["webkit"])
    elif cmd == "ready":
        ms, _ = ready(sys.argv[2], sys.argv[3])
        if ms is not None:
            print(ms)
    elif cmd == "run":
        # run ROLE LOG PATTERN LAUNCH_NS SNAP.json [PAGE_PATTERN]: one launch's numbers, JSON
        role, log, pattern, launch_ns, snapfile = sys.argv[2:7]
        page = sys.argv[7] if len(sys.argv) > 7 else None
        ms, line = ready(log, pattern)
        out = {"role": role, "ready_ms": ms}
        launch_ms = int(open(launch_ns).read().strip()) / 1e6
        w = wall_ms(line) if line else None
        out["exec_ms"] = None if w is None else w - launch_ms
        if page:
            _, pline = ready(log, page)
            pw = wall_ms(pline) if pline else None
            out["page_exec_ms"] = None if pw is None else pw - launch_ms
        t = totals(load(snapfile))
        if t:
            out.update({k: t[k] for k in ("pss", "rss", "n", "webkit")})
            out["procs"] = sorted(((p["comm"], p["pss_kb"] / 1024) for p in load(snapfile)["procs"]),
                                  key=lambda x: -x[1])
        print(json.dumps(out))
    elif cmd == "cpu":
        # cpu A.json B.json SECONDS -> percent; rssgrowth A.json B.json -> MB
        print(cpu_percent(load(sys.argv[2]), load(sys.argv[3]), float(sys.argv[4])))
    elif cmd == "rssgrowth":
        a, b = totals(load(sys.argv[2])), totals(load(sys.argv[3]))
        print(b["rss"] - a["rss"])
    elif cmd == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
