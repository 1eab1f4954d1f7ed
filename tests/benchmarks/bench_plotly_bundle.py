"""plotly.js's cartesian bundle against the full one, as a user feels it (ril_dash.ui.plotly_bundle).

Two servers of the demo project run side by side: ours (the cartesian bundle) and a baseline
that serves the full bundle (the same code with the vendored bundle hidden). Runs alternate
between them, each in a browser page of a window that has loaded the app before (a warm cache:
a reload, or a link opened in a browser that has used the app):

1. A viewer opened by its link (``/view?series=…``): the first slice on screen (the page's
   preview, first frame after it is shown), plotly.js evaluated, the graph showing the slice
   (``rilViewer.state().seen``) and taking strokes (``painted``), and the longest task that
   held the main thread (the browser answers no input meanwhile).
2. The project page: its longest task in the 4 s after it opens, which is the background
   loading of plotly.js for the viewer (the page does not answer while it runs).

Run: ``python tests/benchmarks/bench_plotly_bundle.py [RUNS]`` (default 9 per server).
"""

from __future__ import annotations

import sys
from urllib.parse import quote

from common import RunningServer, launch_browser, median, write_results

SERIES = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 9

#: the baseline server: ril-dash with the vendored bundle hidden, so it serves the full one
FULL_PLOTLY = [sys.executable, "-c",
               "import sys, pathlib; import ril_dash.ui.plotly_bundle as b; "
               "b.BUNDLE = pathlib.Path('/nonexistent/plotly-cartesian.min.js'); "
               "from ril_dash.cli import main; sys.exit(main(sys.argv[1:]))"]

#: long tasks, and marks on the page's own clock (performance.now(), ms from navigation)
WATCH = """
window.__bench = {long: [], marks: {}};
new PerformanceObserver(list => list.getEntries().forEach(
    e => window.__bench.long.push([e.startTime, e.duration]))).observe({type: 'longtask', buffered: true});
new MutationObserver(() => {
    const m = window.__bench.marks, p = document.querySelector('#viewer-preview');
    if (p && !p.hidden && m.preview === undefined) {
        m.preview = -1;
        requestAnimationFrame(() => setTimeout(() => { m.preview = performance.now(); }, 0));
    }
    if (window.Plotly && m.plotly === undefined) { m.plotly = performance.now(); }
}).observe(document, {childList: true, subtree: true, attributes: true});
"""
SEEN = "() => window.rilViewer && window.rilViewer.state().seen"
PAINTED = "() => window.rilViewer && window.rilViewer.state().painted"


def open_viewer(context, url: str) -> dict:
    page = context.new_page()
    page.goto(url + "/view?series=" + quote(SERIES, safe=""))
    page.wait_for_function(SEEN, timeout=60_000)
    seen = page.evaluate("performance.now()")
    page.wait_for_function(PAINTED, timeout=60_000)
    painted = page.evaluate("performance.now()")
    page.wait_for_timeout(300)
    found = page.evaluate("window.__bench")
    page.close()
    return {"preview_s": found["marks"].get("preview", float("nan")) / 1000,
            "plotly_s": found["marks"].get("plotly", float("nan")) / 1000,
            "seen_s": seen / 1000, "painted_s": painted / 1000,
            "longest_task_s": max((d for _, d in found["long"]), default=0) / 1000}


def project_page_freeze(context, url: str) -> float:
    page = context.new_page()
    page.goto(url + "/")
    page.wait_for_timeout(4000)
    page.wait_for_function("() => !!window.Plotly", timeout=60_000)  # preloaded by then
    long = page.evaluate("window.__bench.long")
    page.close()
    return max((d for _, d in long), default=0) / 1000


def main() -> None:
    servers = {"cartesian": RunningServer(["demo"]),
               "full (baseline)": RunningServer(["demo"], command=FULL_PLOTLY)}
    figures: dict = {"runs": RUNS}
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = launch_browser(pw)
            contexts = {}
            for name, server in servers.items():
                contexts[name] = browser.new_context(viewport={"width": 1400, "height": 900})
                contexts[name].add_init_script(WATCH)
                open_viewer(contexts[name], server.url)  # the cache filled: warm from here
            rows: dict[str, list[dict]] = {name: [] for name in servers}
            freezes: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(RUNS):
                for name, server in servers.items():
                    rows[name].append(open_viewer(contexts[name], server.url))
                    freezes[name].append(project_page_freeze(contexts[name], server.url))
            browser.close()
    finally:
        for server in servers.values():
            server.stop()
    print(f"viewer opened by its link, warm cache, median of {RUNS} (s):")
    keys = ("preview_s", "plotly_s", "seen_s", "painted_s", "longest_task_s")
    print(f"  {'':16}" + "".join(f"{k:>16}" for k in keys))
    for name, found in rows.items():
        medians = {k: median([r[k] for r in found]) for k in keys}
        figures[name] = {"viewer": medians, "project_page_longest_task_s": median(freezes[name])}
        print(f"  {name:16}" + "".join(f"{medians[k]:16.3f}" for k in keys))
    ours, base = figures["cartesian"], figures["full (baseline)"]
    figures["painted_ratio"] = ours["viewer"]["painted_s"] / base["viewer"]["painted_s"]
    print(f"  takes strokes after {figures['painted_ratio']:.2f}× the baseline's time")
    print("project page, longest task in its first 4 s (plotly.js loaded for the viewer), "
          f"median of {RUNS}: cartesian {ours['project_page_longest_task_s']:.3f} s, full "
          f"{base['project_page_longest_task_s']:.3f} s")
    write_results("plotly_bundle", figures)


if __name__ == "__main__":
    main()
