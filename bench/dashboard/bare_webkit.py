#!/usr/bin/python3
"""The dashboard page in a bare WebKitGTK view, without Tauri: for measuring what the page
itself costs (modules, mount, layout, paint) and trying changes to it without a release
build of the app. Used for the font-family and layout experiments in bench/README.md
("Dashboard").

Serves DIST (a `vite build` output, e.g. ui/dist) through a `tauri://` scheme as the app
does, hands the page synthetic first data (30 days of usage) as the app's initialization
script would, stubs the IPC (calls never answer), and prints, per run, the page's clock at
"main" (modules evaluated) and "after-paint" (a task after the first frame that shows the
chart) and their difference. Each run opens the page twice in one process and reports the
second, as the app does after its first window.

Usage (under a display: xvfb-run -a):
  WEBKIT_DISABLE_COMPOSITING_MODE=1 /usr/bin/python3 bench/dashboard/bare_webkit.py ui/dist [RUNS]
  EXTRA_CSS="body{font-family: system-ui, sans-serif !important}" ...   a user style sheet on top
"""
import json
import mimetypes
import os
import statistics
import subprocess
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gio, GLib, Gtk, WebKit2  # noqa: E402


def first_data():
    day = lambda d: {"key": d, "charged": 1_000_000 * int(d[-2:]), "events": 100, "input_tokens": 1,
                     "cached_input_tokens": 0, "output_tokens": 1}
    days = [day(f"2026-10-{d:02d}") for d in range(23, 32)] + [day(f"2026-11-{d:02d}") for d in range(1, 22)]
    bucket = lambda a, r: {"available": a, "next_reset": r}
    account = {"id": "acc_1", "email": "a@example.com", "plan": "pro", "timezone": "Europe/Paris",
               "created_at": "2026-08-01T00:00:00Z", "billing_anchor": "2026-08-01T00:00:00Z",
               "period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z",
               "next_daily_reset": "2026-11-23T00:00:00Z"}
    balance = {"available": 123_456_789, "held": 0, "seq": 5, "as_of": "2026-11-22T00:00:00Z",
               "buckets": {"daily": bucket(1_000_000, "2026-11-23T00:00:00Z"),
                           "subscription": bucket(100_000_000, "2026-12-01T00:00:00Z"),
                           "bonus": bucket(0, None), "purchased": bucket(22_456_789, None)}}
    status = {"server": "http://127.0.0.1:1", "account": account, "balance": balance,
              "last_contact": "2026-11-22T00:00:00Z", "stale": False, "level": "ok",
              "low_threshold": 100_000_000, "now": "2026-11-22T01:00:00Z"}
    glance = {"title": "123 cr", "level": "ok", "lines": ["123 cr", "Updated just now"],
              "auto_refill_on": None, "signed_in": True}
    return {"group_by": "day", "period_days": 30,
            "data": {"status": status, "glance": glance, "groups": days, "days": days, "fresh": True,
                     "purchases": [], "timezone": "Europe/Paris"}}


PAGE_SCRIPT = (
    # A task after the first frame that shows the chart has been painted.
    "requestAnimationFrame(function f() { if (!document.querySelector('canvas')) return requestAnimationFrame(f);"
    " setTimeout(() => performance.mark('after-paint'), 0); });"
    "window.__TAURI_INTERNALS__ = { invoke: () => new Promise(() => {}), transformCallback: () => 0,"
    " metadata: { currentWindow: { label: 'dashboard' }, currentWebview: { label: 'dashboard' } } };"
    "window.__CREDITBAR_FIRST__ = JSON.parse(%s);" % json.dumps(json.dumps(first_data()))
)


def one_run(dist):
    """Opens the page twice; returns the second opening's marks."""
    ctx = WebKit2.WebContext.get_default()

    def serve(req):
        path = req.get_path().lstrip("/")
        body = open(os.path.join(dist, path), "rb").read()
        mime = "text/javascript" if path.endswith(".js") else (mimetypes.guess_type(path)[0] or "text/plain")
        req.finish(Gio.MemoryInputStream.new_from_bytes(GLib.Bytes.new(body)), len(body), mime)

    ctx.register_uri_scheme("tauri", serve)
    ctx.get_security_manager().register_uri_scheme_as_secure("tauri")
    ucm = WebKit2.UserContentManager()
    ucm.add_script(WebKit2.UserScript.new(PAGE_SCRIPT, WebKit2.UserContentInjectedFrames.TOP_FRAME,
                                          WebKit2.UserScriptInjectionTime.START, None, None))
    if os.environ.get("EXTRA_CSS"):
        ucm.add_style_sheet(WebKit2.UserStyleSheet.new(os.environ["EXTRA_CSS"], WebKit2.UserContentInjectedFrames.TOP_FRAME,
                                                       WebKit2.UserStyleLevel.AUTHOR, None, None))
    state = {"opened": 0, "marks": None}

    def open_page():
        state["window"] = window = Gtk.Window()
        window.set_default_size(980, 760)
        view = WebKit2.WebView.new_with_user_content_manager(ucm)
        window.add(view)
        window.show_all()
        view.connect("load-changed", lambda v, e: e == WebKit2.LoadEvent.FINISHED and GLib.timeout_add(1500, read, v))
        view.load_uri("tauri://localhost/dashboard.html")

    def read(view):
        js = "JSON.stringify(Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime])))"
        view.run_javascript(js, None, got, None)
        return False

    def got(view, result, _):
        state["opened"] += 1
        if state["opened"] < 2:
            state["window"].destroy()
            GLib.timeout_add(500, lambda: open_page() and False)
            return
        state["marks"] = json.loads(view.run_javascript_finish(result).get_js_value().to_string())
        Gtk.main_quit()

    open_page()
    Gtk.main()
    return state["marks"]


if __name__ == "__main__":
    dist = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] != "--one":
        # Each run in a fresh process: WebKit's context cannot be reset inside one.
        spans = []
        for _ in range(int(sys.argv[2])):
            out = subprocess.run([sys.executable, __file__, dist, "--one"], capture_output=True, text=True)
            marks = json.loads(out.stdout.strip().splitlines()[-1])
            spans.append(marks["after-paint"] - marks["main"])
            print(f"main {marks['main']:.0f} ms, after-paint {marks['after-paint']:.0f} ms, between {spans[-1]:.0f} ms")
        print(f"median between: {statistics.median(spans):.0f} ms ({min(spans):.0f}-{max(spans):.0f}), n={len(spans)}")
    else:
        print(json.dumps(one_run(dist)))
