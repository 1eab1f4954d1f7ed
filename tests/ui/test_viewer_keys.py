"""The viewer's keys in a real browser, as an analyst presses them: form controls clicked in the
side panel do not keep the arrow keys (a wrong-label stroke was one keypress away), clicking the
image gives the keyboard back, and quick ``]`` presses each count."""

from __future__ import annotations

import pytest

from ril_dash.ui import ids

pytestmark = pytest.mark.browser

SERIES = "PHANTOM-002/CT-2026-01-14/portal-venous.nii.gz"
MIDDLE = 19


@pytest.fixture
def viewer(page, demo_server, ui):
    ui.open_viewer(page, demo_server.url, SERIES, index=MIDDLE)
    page.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().summary")
    return page


def annot(page) -> dict:
    return page.evaluate("window.rilAnnotate.state()")


def test_arrow_keys_after_clicking_an_roi_or_a_plane_move_the_slice(viewer, ui):
    page = viewer
    radios = page.locator(f"#{ids.ANNOT_ROI} input[type=radio]")
    assert radios.count() >= 3
    radios.nth(1).click()
    page.wait_for_function("(v) => window.rilAnnotate.state().roi === v",
                           arg=int(radios.nth(1).get_attribute("value")))
    roi = annot(page)["roi"]
    assert page.evaluate("document.activeElement.type") == "radio"  # the click kept the focus
    page.keyboard.press("ArrowDown")  # the key a radiologist presses for the previous slice
    page.keyboard.press("ArrowDown")
    ui.wait_full(page, index=MIDDLE - 2)
    assert annot(page)["roi"] == roi  # not Aorta, Left kidney…
    page.keyboard.press("b")
    page.wait_for_function("window.rilAnnotate.state().tool === 'brush'")
    page.keyboard.press("n")
    page.wait_for_function("window.rilAnnotate.state().tool === 'navigate'")

    planes = page.locator(f"#{ids.PLANE} input[type=radio]")
    planes.nth(0).click()  # the plane already shown: the view stays
    page.keyboard.press("ArrowUp")
    ui.wait_full(page, index=MIDDLE - 1, plane="axial")
    assert annot(page)["roi"] == roi


def test_a_number_box_keeps_its_keys_until_the_image_is_clicked(viewer, ui):
    page = viewer
    box = page.locator(f"#{ids.WINDOW_CENTER}")
    box.click()
    before = ui.state(page)
    page.keyboard.press("ArrowUp")  # typing in a box goes to the box
    page.wait_for_timeout(200)
    assert ui.state(page)["index"] == before["index"]
    viewport = page.locator(f"#{ids.VIEWPORT}").bounding_box()
    page.mouse.click(viewport["x"] + viewport["width"] / 2, viewport["y"] + viewport["height"] / 2)
    assert page.evaluate("document.activeElement.id") == ids.VIEWPORT
    page.keyboard.press("ArrowUp")
    ui.wait_full(page, index=before["index"] + 1)


def test_quick_bracket_presses_each_change_the_brush(viewer):
    page = viewer
    page.locator(f"#{ids.VIEWPORT}").focus()
    page.keyboard.press("b")
    page.wait_for_function("window.rilAnnotate.state().tool === 'brush'")
    start = annot(page)["brush"]
    for _ in range(3):
        page.keyboard.press("]")  # no wait between presses: as fast as fingers go
    page.wait_for_function(
        "(v) => document.querySelector('#annot-brush [role=slider]').getAttribute('aria-valuenow') === v",
        arg=str(start + 3))
    assert annot(page)["brush"] == start + 3
    page.keyboard.press("[")
    page.keyboard.press("[")
    page.wait_for_function(
        "(v) => document.querySelector('#annot-brush [role=slider]').getAttribute('aria-valuenow') === v",
        arg=str(start + 1))
    page.keyboard.press("n")


SAMPLE_FRAMES = """() => { window.__frames = []; const stop = performance.now() + 8000;
    (function tick() {
        const s = rilViewer.state(), text = document.querySelector('#viewer-position').textContent;
        window.__frames.push([text, s.shown]);
        if (performance.now() < stop && !window.__stopFrames) { requestAnimationFrame(tick); }
    }()); }"""


def hold_key(page, key: str, code: int, presses: int, hz: float) -> None:
    """Hold ``key`` like a keyboard does: trusted key-down events with auto-repeat at ``hz``."""
    import time

    cdp = page.context.new_cdp_session(page)
    down = {"type": "rawKeyDown", "key": key, "code": key, "windowsVirtualKeyCode": code,
            "nativeVirtualKeyCode": code}
    start = time.perf_counter()
    for n in range(presses):
        cdp.send("Input.dispatchKeyEvent", dict(down, autoRepeat=n > 0))
        while time.perf_counter() < start + (n + 1) / hz:
            time.sleep(0.001)
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": key,
                                        "windowsVirtualKeyCode": code})
    cdp.detach()


def test_a_held_key_moves_every_press_and_the_number_matches_the_image(viewer, ui):
    page = viewer
    ui.press(page, "Home")
    ui.wait_full(page, index=0)
    page.evaluate(SAMPLE_FRAMES)
    hold_key(page, "ArrowUp", 38, presses=30, hz=60)
    s = ui.wait_full(page, index=30)  # every press counted, the last slice drawn in full
    ui.wait_text(page, "#viewer-position", "Axial  31 / 40")
    page.evaluate("window.__stopFrames = true")
    frames = page.evaluate("window.__frames")
    assert len(frames) > 5
    for text, shown in frames:  # at every frame the number is that of the image on screen
        assert text == f"Axial  {int(shown[:-1]) + 1} / 40", (text, shown)
    assert s["shown"] == "30f"
    assert page.js_errors == []


def test_the_number_waits_for_an_image_that_is_slow_to_come(page, demo_server, ui):
    """Slices never seen, no thumbnails yet and a slow server: the image stays, and so does
    the number (it used to run ahead of the image on screen)."""
    import re

    page.route(re.compile(r"/ril/api/thumbs\?"), lambda route: route.abort("connectionrefused"))
    ui.open_viewer(page, demo_server.url, SERIES, index=MIDDLE)
    last = MIDDLE + 6  # the neighbours fetched after the first slice
    page.wait_for_function(f"rilLayers.get('image').cache.has({last})")
    held, release = [], []

    def slow_server(route):
        held.append(route) if not release else route.continue_()

    page.route(re.compile(r"/ril/api/slice\?"), slow_server)
    page.evaluate(SAMPLE_FRAMES)
    hold_key(page, "ArrowUp", 38, presses=10, hz=60)
    page.wait_for_function("() => rilViewer.state().index === 29")
    page.wait_for_timeout(300)
    shown = int(ui.state(page)["shown"][:-1])  # a cached slice on the way; the keys went on
    assert MIDDLE < shown <= last
    assert page.text_content("#viewer-position") == f"Axial  {shown + 1} / 40"
    page.unroute(re.compile(r"/ril/api/thumbs\?"))
    release.append(True)
    for route in held:
        route.continue_()
    ui.wait_full(page, index=29)
    ui.wait_text(page, "#viewer-position", "Axial  30 / 40")
    page.evaluate("window.__stopFrames = true")
    for text, shown in page.evaluate("window.__frames"):
        if shown and shown[:-1].isdigit():
            assert text == f"Axial  {int(shown[:-1]) + 1} / 40", (text, shown)
    assert page.js_errors == []


@pytest.fixture(scope="module")
def annotated_server(tmp_path_factory):
    """A served project with one series whose ROI covers slices 4–25 (imported as a mask)."""
    import subprocess
    import sys

    import nibabel as nib
    import numpy as np
    from support import RunningServer  # tests/support.py

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("annotated")
    (root / "images" / "P1").mkdir(parents=True)
    data = np.random.default_rng(3).integers(0, 400, (64, 64, 30)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), root / "images" / "P1" / "ct.nii.gz")
    project = init_project(root / "project", root / "images")
    mask = np.zeros(data.shape, np.uint8)
    mask[20:40, 20:40, 4:26] = 1
    (root / "masks" / "P1").mkdir(parents=True)
    nib.save(nib.Nifti1Image(mask, np.eye(4)), root / "masks" / "P1" / "ct.nii.gz")
    done = subprocess.run([sys.executable, "-m", "ril_dash", "import-masks", str(project.dir),
                           "--masks", str(root / "masks")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    server = RunningServer(["serve", str(project.dir)])
    yield server
    server.stop()


def test_a_held_key_asks_for_each_overlay_once(page, annotated_server, ui):
    """With the slices cached the viewer asks for the neighbours at every key; the overlays of
    annotated slices are requested once each, not once per key."""
    import re
    from urllib.parse import parse_qs, urlparse

    ui.open_viewer(page, annotated_server.url, "P1/ct.nii.gz", index=14)
    page.wait_for_function("() => window.rilAnnotate && rilAnnotate.state().summary")
    assert page.evaluate("Object.keys(rilAnnotate.state().summary.ranges).length") == 1
    for i in range(14 - 6, 14 + 7):
        page.wait_for_function(f"rilLayers.get('image').cache.has({i})")
    asked: list[int] = []
    page.on("request", lambda r: re.search(r"/ril/api/overlay\?", r.url) and asked.append(
        int(parse_qs(urlparse(r.url).query)["index"][0])))
    page.evaluate("rilLayers.get('roi').cache.clear()")  # every overlay must come again
    hold_key(page, "ArrowUp", 38, presses=4, hz=60)
    ui.wait_full(page, index=18)
    page.wait_for_timeout(500)
    assert asked, "overlays were requested"
    assert len(asked) == len(set(asked)), sorted(asked)
    # every layer's <image> shows what the figure says, the ROI overlay of slice 18 among them
    page.wait_for_function("rilLayers.get('roi').cache.has(18)")
    page.wait_for_timeout(300)
    shown = page.evaluate("""() => { const gd = document.querySelector('#viewer-graph .js-plotly-plot');
        return [...gd.querySelectorAll('.imagelayer image')].map((e) => [
            e.getAttribute('href'), gd.data[e.parentNode.__data__[0].trace.index].source]); }""")
    assert all(href == source for href, source in shown)
    overlay = page.evaluate("rilLayers.get('roi').cache.get(18).src")
    assert overlay in [href for href, _ in shown]


IMAGE_JS = "document.querySelector('#viewer-graph .imagelayer image')"
BOX_JS = f"(() => {{ const e = {IMAGE_JS}; return ['x', 'y', 'width', 'height'].map(" \
         "(k) => Math.round(Number(e.getAttribute(k)))); })()"


def test_a_held_key_swaps_the_image_source_and_plotly_redraws_keep_it(viewer, ui):
    """Scrolling gives the image trace each slice without a plotly restyle (6-12 ms each); a
    zoom and a full redraw afterwards show the same slice over the same area."""
    page = viewer
    box = page.evaluate(BOX_JS)
    page.evaluate("""() => { window.__restyles = 0; const orig = Plotly.restyle;
        Plotly.restyle = function (gd, values, traces) {
            if (!traces || traces.indexOf(0) >= 0) { window.__restyles += 1; }
            return orig.apply(this, arguments); }; }""")
    hold_key(page, "ArrowUp", 38, presses=6, hz=30)
    ui.wait_full(page, index=MIDDLE + 6)
    src = page.evaluate("rilLayers.get('image').cache.get(rilViewer.state().index).src")
    assert page.evaluate(f"{IMAGE_JS}.getAttribute('href')") == src
    assert page.evaluate("window.__restyles") == 0
    assert page.evaluate(BOX_JS) == box

    gd = "document.querySelector('#viewer-graph .js-plotly-plot')"
    ranges = page.evaluate(f"[{gd}.layout.xaxis.range.slice(), {gd}.layout.yaxis.range.slice()]")
    (x0, x1), (y0, y1) = ranges
    page.evaluate(f"Plotly.relayout({gd}, {{'xaxis.range': [{x0 / 2 + x1 / 2}, {x1}], "
                  f"'yaxis.range': [{y0 / 2 + y1 / 2}, {y1}]}})")
    page.wait_for_function(f"{BOX_JS}[2] > {box[2] * 1.5}")
    assert page.evaluate(f"{IMAGE_JS}.getAttribute('href')") == src
    page.evaluate(f"Plotly.relayout({gd}, {{'xaxis.range': {ranges[0]}, "
                  f"'yaxis.range': {ranges[1]}}})")
    page.wait_for_function(f"{BOX_JS}[2] === {box[2]}")
    page.evaluate(f"Plotly.redraw({gd})")  # computed again from the figure's data
    page.wait_for_timeout(300)
    assert page.evaluate(BOX_JS) == box
    assert page.evaluate(f"{IMAGE_JS}.getAttribute('href')") == src
    assert ui.state(page)["shown"] == f"{MIDDLE + 6}f"
    assert page.js_errors == []
