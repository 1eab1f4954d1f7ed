"""Slice-viewer benchmarks on a 512×512×300 int16 CT (the issue's figures, with baselines).

1. Opening the series: click in the project viewer → full-resolution first slice on screen,
   cold (fresh server process) and on reopening; clicks come once the project page has settled
   (its background loading of plotly.js done), and once right as it appears; baseline: bare
   nibabel load + one PNG.
2. Full-resolution slice round trip on loopback: ``/ril/api/slice`` against a bare Dash callback
   returning the same slice as a Pillow-encoded PNG, interleaved, after warm-up.
3. Scrolling in headless Chromium: key presses at 60 Hz for 3 s; rendered slices per second
   counted from what is painted (requestAnimationFrame); baseline: a bare Dash app that fetches
   every slice through a server callback.

Run: ``python tests/benchmarks/bench_viewer.py`` (``RIL_DASH_BENCH_DIR`` sets the data folder).
"""

from __future__ import annotations

import http.client
import io
import json
import random
import sys
from pathlib import Path
from urllib.parse import quote

import nibabel as nib
import numpy as np
from common import (
    BENCH_DIR,
    CT_SERIES,
    HERE,
    RunningServer,
    launch_browser,
    make_ct_volume,
    median,
    percentile,
    timer,
    write_results,
)
from PIL import Image

SERIES = CT_SERIES
MID = 149
COLD_RUNS = 3
REOPENS = 4
SETTLE_MS = 500
ROUND_TRIPS = 150


def bench_project() -> Path:
    from ril_dash.project.project import init_project

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    make_ct_volume(BENCH_DIR)
    project = BENCH_DIR / "project"
    if not (project / "project.yaml").exists():
        init_project(project, BENCH_DIR / "images")
    return project


def baseline_open(volume: Path) -> float:
    start = timer()
    data = np.asanyarray(nib.load(volume).dataobj)
    plane = np.clip((data[:, :, MID].T.astype(np.float32) + 160) * (255 / 400), 0, 255)
    Image.fromarray(plane.astype(np.uint8)).save(io.BytesIO(), format="PNG", compress_level=1)
    return timer() - start


def ril_load_volume(volume: Path) -> float:
    from ril_dash.core.volume import load_volume

    start = timer()
    load_volume(volume)
    return timer() - start


# timed inside the page, from the mouse press on the series to the first frame showing its
# full-resolution slice (the page's preview of it, loaded and shown, or ``seen``: its <image>
# in the drawn figure), then to the graph taking
# edits (``painted``: dcc.Graph's first resize done, the tool set; a stroke can start); the
# test driver's own overhead around the click is not counted
CLICK_CLOCK = """() => { window.__t_click = null; window.__t_shown = null; window.__t_ready = null;
    document.addEventListener('mousedown', () => { window.__t_click = performance.now(); },
                              {capture: true, once: true}); }"""
WAIT_SHOWN = """([mid, before]) => {
    const s = window.rilViewer && rilViewer.state();
    const p = document.querySelector('.ril-preview');  // the new page's: the old one has gone
    const preview = p && !p.hidden && p.complete && p.naturalWidth > 0 &&
        p.getAttribute('data-ril-shows') === mid + 'f';
    if (!(preview || (s && s.gen > before && s.seen === mid + 'f'))) { return false; }
    if (window.__t_shown === null) { window.__t_shown = performance.now(); }
    if (s.painted !== mid + 'f') { return false; }
    if (window.__t_ready === null) { window.__t_ready = performance.now(); }
    return true;
}"""


def settle(page) -> None:
    """The project page is on screen and its background loading (plotly.js) is done."""
    page.wait_for_selector(".ag-row [col-id=name]")
    page.wait_for_function("window.Plotly !== undefined", timeout=30_000)
    page.wait_for_timeout(SETTLE_MS)


def open_in_browser(page, server, wait: bool = True, ready: list | None = None
                    ) -> tuple[float, list[float]]:
    """Seconds from the click on the series to its full-res slice on screen: the first (cold)
    opening in a fresh server, then REOPENS re-openings from the project page. With ``wait``
    each click comes once the project page has settled; without, right after it appears.
    ``ready`` collects the seconds to a graph that takes a stroke (the first opening's, then
    the re-openings')."""
    page.goto(server.url + "/")
    page.wait_for_selector(".ag-row [col-id=name]")
    if wait:
        settle(page)
    times = []
    for _ in range(1 + REOPENS):
        before = page.evaluate("window.rilViewer ? rilViewer.state().gen : 0")
        page.evaluate(CLICK_CLOCK)
        page.click(".ag-row [col-id=name]")
        page.wait_for_function(WAIT_SHOWN, arg=[MID, before], polling="raf", timeout=60_000)
        times.append(page.evaluate("window.__t_shown - window.__t_click") / 1e3)
        if ready is not None:
            ready.append(page.evaluate("window.__t_ready - window.__t_click") / 1e3)
        page.click(".ril-nav-link")
        settle(page)
    return times[0], times[1:]


def round_trips(ril_url: str, base_url: str) -> tuple[list[float], list[float]]:
    def conn(url):
        host, port = url.split("//")[1].split(":")
        return http.client.HTTPConnection(host, int(port), timeout=30)

    ril, base = conn(ril_url), conn(base_url)
    q = f"series={quote(SERIES, safe='')}&plane=axial&frame=0&wc=40&ww=400"
    rng = random.Random(1)
    ril_times, base_times = [], []

    def ril_get(i):
        ril.request("GET", f"/ril/api/slice?{q}&index={i}")
        body = ril.getresponse().read()
        assert body.startswith(b"data:image/png"), body[:200]

    def base_get(i):
        payload = json.dumps({"output": "img.src", "outputs": {"id": "img", "property": "src"},
                              "inputs": [{"id": "idx", "property": "value", "value": i}],
                              "changedPropIds": ["idx.value"], "state": []})
        base.request("POST", "/_dash-update-component", payload,
                     {"Content-Type": "application/json"})
        body = base.getresponse().read()
        assert b"data:image" in body, body[:200]

    for i in range(20):  # warm-up
        ril_get(i)
        base_get(i)
    for _ in range(ROUND_TRIPS):
        i = rng.randrange(300)
        for fn, out in ((ril_get, ril_times), (base_get, base_times)):
            start = timer()
            fn(i)
            out.append(timer() - start)
    return ril_times, base_times


SAMPLER = """() => {
    window.__painted = []; let last = null; const t0 = performance.now();
    const probe = window.__probe;
    function tick() { const s = probe(); if (s !== last) { last = s; window.__painted.push(performance.now() - t0); }
                      if (performance.now() - t0 < 3400) requestAnimationFrame(tick); }
    requestAnimationFrame(tick);
}"""

PRESS_60HZ = """(key) => new Promise(done => {
    let n = 0; const id = setInterval(() => {
        document.dispatchEvent(new KeyboardEvent('keydown', {key: key, bubbles: true}));
        if (++n >= 180) { clearInterval(id); done(n); }
    }, 1000 / 60);
})"""


def painted_per_second(page) -> float:
    painted = page.evaluate("window.__painted")
    window = [t for t in painted if t <= 3000]
    return len(window) / 3.0


def scroll_ril(page, server) -> tuple[float, dict]:
    page.goto(f"{server.url}/view?series={quote(SERIES, safe='')}")
    page.wait_for_function("window.rilViewer && rilViewer.state().thumbs === 300", timeout=60_000)
    page.focus("#ril-viewport")  # the viewer's keys: the image has the keyboard
    page.keyboard.press("Home")
    page.wait_for_function("rilViewer.state().painted === '0f'")
    page.evaluate("window.__probe = () => rilViewer.state().painted")
    page.evaluate(SAMPLER)
    page.evaluate(PRESS_60HZ, "ArrowUp")
    page.wait_for_timeout(500)
    return painted_per_second(page), page.evaluate("rilViewer.state()")


def scroll_baseline(page, server) -> float:
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelector('#img') && document.querySelector('#img').src")
    page.evaluate("""() => { window.__i = 0; document.addEventListener('keydown', () => {
        window.__i += 1; window.dash_clientside.set_props('idx', {value: window.__i}); }); }""")
    page.evaluate("window.__probe = () => document.querySelector('#img').src.length + ':' + "
                  "document.querySelector('#img').src.slice(-40)")
    page.evaluate(SAMPLER)
    page.evaluate(PRESS_60HZ, "ArrowUp")
    page.wait_for_timeout(500)
    return painted_per_second(page)


def main() -> None:
    from playwright.sync_api import sync_playwright

    project = bench_project()
    volume = BENCH_DIR / "images" / SERIES
    figures: dict = {"volume": "512x512x300 int16 .nii.gz, "
                               f"{volume.stat().st_size / 1e6:.0f} MB compressed, 157 MB voxels"}
    base_open = [baseline_open(volume) for _ in range(COLD_RUNS)]
    ril_load = [ril_load_volume(volume) for _ in range(COLD_RUNS)]
    cold, reopen, cold_ready, reopen_ready = [], [], [], []
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        for _ in range(COLD_RUNS):
            server = RunningServer(["serve", str(project)])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            try:
                ready = []
                c, r = open_in_browser(page, server, ready=ready)
                cold_ready.append(ready[0])
                reopen_ready.extend(ready[1:])
                cold.append(c)
                reopen.extend(r)
            finally:
                page.close()
                server.stop()
        server = RunningServer(["serve", str(project)])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            ready = []
            impatient = open_in_browser(page, server, wait=False, ready=ready)[0]
        finally:
            page.close()
            server.stop()
        figures["open cold: click -> full-res slice on screen (s, median)"] = round(median(cold), 3)
        figures["open cold: runs (s)"] = [round(t, 3) for t in cold]
        figures["open cold, clicking the moment the project page appears (s)"] = \
            round(impatient, 3)
        figures["open cold: click -> graph takes a stroke (s, median); impatient"] = \
            [round(median(cold_ready), 3), round(ready[0], 3)]
        figures["reopen: click -> full-res slice on screen (s, median)"] = round(median(reopen), 3)
        figures["reopen: runs (s)"] = [round(t, 3) for t in reopen]
        figures["reopen: click -> graph takes a stroke (s, median)"] = round(median(reopen_ready), 3)
        figures["baseline: bare nibabel load + 1 PNG, in-process (s, median)"] = \
            round(median(base_open), 3)
        figures["ril_dash load_volume alone, in-process (s, median)"] = round(median(ril_load), 3)

        server = RunningServer(["serve", str(project)])
        base = RunningServer(["slice", str(volume)],
                             command=[sys.executable, str(HERE / "baseline_app.py")])
        try:
            ril_t, base_t = round_trips(server.url, base.url)
            figures["slice round trip ril_dash p50 (ms)"] = round(median(ril_t) * 1e3, 1)
            figures["slice round trip ril_dash p95 (ms)"] = round(percentile(ril_t, 95) * 1e3, 1)
            figures["slice round trip bare Dash callback p50 (ms)"] = round(median(base_t) * 1e3, 1)
            figures["slice round trip bare Dash callback p95 (ms)"] = \
                round(percentile(base_t, 95) * 1e3, 1)
            figures["slice round trip ratio ril/bare (p50)"] = round(median(ril_t) / median(base_t), 2)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            fps, state = scroll_ril(page, server)
            page.close()
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            base_fps = scroll_baseline(page, base)
            page.close()
            figures["scrolling ril_dash, painted slices/s (60 Hz keys)"] = round(fps, 1)
            figures["scrolling ril_dash final index (of 180 key presses)"] = state["index"]
            figures["scrolling baseline: server round trip per slice, slices/s"] = round(base_fps, 1)
        finally:
            server.stop()
            base.stop()
        browser.close()
    write_results("viewer", figures)


if __name__ == "__main__":
    main()
