"""A held key in the slice viewer, as a keyboard sends it (issue figures, with a baseline).

Trusted key events (Chromium's ``Input.dispatchKeyEvent`` with auto-repeat, as a held key
sends them; not synthetic in-page events) at 30 and 60 Hz for 3 s on the 512×512×300 CT, from
the first slice upwards:

- **first pass**: slices never visited (the viewer shows their thumbnails, then full slices);
- **second pass**: the same slices again, their full slices cached (the first 150).

Counted in the page: distinct images actually loaded by the browser (``load`` events of the
plotly ``<image>``, distinct sources) per second from the first one, those at full resolution,
the share of key presses whose slice was drawn, the delay of the first image, the longest time
without a new image, and the slice reached against the key presses sent (see
:func:`summarise`). Baseline in the same run: a bare Dash
app whose key handler asks a server callback for each slice (``baseline_app.py slice``), same
keys, counting the ``load`` events of its ``<img>``.

Run: ``python tests/benchmarks/bench_keys.py`` (``RIL_DASH_BENCH_DIR`` sets the data folder).
"""

from __future__ import annotations

import sys
import time
from urllib.parse import quote

from common import BENCH_DIR, CT_SERIES, HERE, RunningServer, launch_browser, median, write_results

SECONDS = 3.0
RATES = (30, 60)
REPEATS = 3

#: records every image the page loads: time, source tail, full resolution or not
COUNT_LOADS = """(sel) => {
    window.__loads = []; const t0 = performance.now();
    document.addEventListener('load', (ev) => {
        const t = ev.target;
        if (!t || !t.matches || !t.matches(sel)) { return; }
        const src = t.getAttribute('href') || t.getAttribute('src') || '';
        const v = window.rilViewer && rilViewer.state();
        window.__loads.push([performance.now() - t0, src.length + ':' + src.slice(-32),
                             v ? v.shown : 'f']);
    }, true);
}"""


#: slices cached before the second pass (the viewer keeps 160 full slices)
PRIMED = 150
PRIME = """async (n) => {
    const cache = rilLayers.get('image').cache;
    for (let i = 0; i < n; i++) {
        rilViewer.goTo(i);
        while (!cache.has(i)) { await new Promise(r => setTimeout(r, 5)); }
    }
}"""


def hold(cdp, hz: float, seconds: float) -> int:
    """Hold ArrowUp for ``seconds``: key-down events with auto-repeat at ``hz``; return the
    number sent."""
    down = {"type": "rawKeyDown", "key": "ArrowUp", "code": "ArrowUp",
            "windowsVirtualKeyCode": 38, "nativeVirtualKeyCode": 38}
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        cdp.send("Input.dispatchKeyEvent", dict(down, autoRepeat=n > 0))
        n += 1
        while time.perf_counter() < start + n / hz:
            time.sleep(0.0005)
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "ArrowUp", "code": "ArrowUp",
                                        "windowsVirtualKeyCode": 38})
    return n


def summarise(loads: list, sent: int, reached: int) -> dict:
    """Figures of one held key from the page's image loads ``[ms, source, shown tag]``.

    - ``images/s``: distinct images loaded in a window of the hold's length that starts with
      the first image (the pipeline's delay is reported apart, as ``first image (ms)``);
    - ``presses drawn (%)``: distinct slices drawn (thumbnail or full) until 1 s after the key
      is released, of the presses sent (each press is one slice further);
    - ``longest wait (ms)``: the longest time without a new image while the key is held.
    """
    if not loads:
        return {"images/s": 0.0, "full-res/s": 0.0, "presses drawn (%)": 0.0,
                "first image (ms)": None, "longest wait (ms)": round(SECONDS * 1000),
                "keys sent": sent, "slice reached": reached}
    first = loads[0][0]
    window = [x for x in loads if x[0] <= first + SECONDS * 1000]
    held = [x[0] for x in loads if x[0] <= SECONDS * 1000]
    gaps = [b - a for a, b in zip([0.0] + held, held + [SECONDS * 1000])]
    # the slice of each image: the viewer's shown tag ("12f", "12t"); the baseline's source
    slices = {str(x[2])[:-1] if str(x[2])[:-1].isdigit() else x[1] for x in loads} - {"0"}
    return {"images/s": round(len({x[1] for x in window}) / SECONDS, 1),
            "full-res/s": round(len({x[1] for x in window if str(x[2]).endswith("f")}) / SECONDS, 1),
            "presses drawn (%)": round(100 * min(len(slices), sent) / sent, 1),
            "first image (ms)": round(first), "longest wait (ms)": round(max(gaps)),
            "keys sent": sent, "slice reached": reached}


def home(page) -> None:
    """Go to the first slice and wait until it is drawn in full (once the graph shows one)."""
    page.wait_for_function("rilViewer.state().painted !== null", timeout=30_000)
    page.evaluate("rilViewer.goTo(0)")
    page.focus("#ril-viewport")
    page.wait_for_function("rilViewer.state().painted === '0f'", timeout=30_000)


def ril_run(page, server, hz: int, second_pass: bool) -> dict:
    page.goto(f"{server.url}/view?series={quote(CT_SERIES, safe='')}")
    page.wait_for_function("window.rilViewer && rilViewer.state().thumbs === 300", timeout=60_000)
    home(page)
    cdp = page.context.new_cdp_session(page)
    if second_pass:  # visit the slices first, one by one, until their full slices are cached
        page.evaluate(PRIME, PRIMED)
        home(page)
    page.evaluate(COUNT_LOADS, "#viewer-graph image")
    sent = hold(cdp, hz, SECONDS)
    page.wait_for_timeout(1000)
    cdp.detach()
    return summarise(page.evaluate("window.__loads"), sent, page.evaluate("rilViewer.state().index"))


def baseline_run(page, base, hz: int) -> dict:
    page.goto(base.url + "/")
    page.wait_for_function("document.querySelector('#img') && document.querySelector('#img').src")
    page.evaluate("""() => { window.__i = 0; document.addEventListener('keydown', () => {
        window.__i += 1; window.dash_clientside.set_props('idx', {value: window.__i}); }); }""")
    page.evaluate(COUNT_LOADS, "#img")
    page.focus("body")
    cdp = page.context.new_cdp_session(page)
    sent = hold(cdp, hz, SECONDS)
    page.wait_for_timeout(1000)
    cdp.detach()
    return summarise(page.evaluate("window.__loads"), sent, page.evaluate("window.__i"))


def med(runs: list[dict]) -> dict:
    return {k: median([r[k] for r in runs]) for k in runs[0]}


def main() -> None:
    from bench_viewer import bench_project
    from playwright.sync_api import sync_playwright

    project = bench_project()
    figures: dict = {}
    server = RunningServer(["serve", str(project)])
    base = RunningServer(["slice", str(BENCH_DIR / "images" / CT_SERIES)],
                         command=[sys.executable, str(HERE / "baseline_app.py")])
    try:
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            for hz in RATES:
                for second in (False, True):
                    runs = []
                    for _ in range(REPEATS):
                        page = browser.new_page(viewport={"width": 1400, "height": 900})
                        runs.append(ril_run(page, server, hz, second))
                        page.close()
                    name = f"ril_dash {hz} Hz, {'second pass (cached)' if second else 'first pass'}"
                    figures[name] = med(runs)
                    print(name, figures[name], flush=True)
                runs = []
                for _ in range(REPEATS):
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    runs.append(baseline_run(page, base, hz))
                    page.close()
                figures[f"baseline {hz} Hz (a server callback per key)"] = med(runs)
                print(f"baseline {hz} Hz", figures[f"baseline {hz} Hz (a server callback per key)"],
                      flush=True)
            browser.close()
    finally:
        server.stop()
        base.stop()
    write_results("keys", figures)


if __name__ == "__main__":
    main()
