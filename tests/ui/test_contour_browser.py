"""Semi-automatic contouring on the demo, over HTTP and in a real browser.

The browser test outlines the right kidney of a phantom CT roughly with the lasso (a polygon
around the ground truth grown by 3 pixels), presses S, and checks that the saved kidney matches
the ground truth closely, that the overlay on screen is the lighter (semi-automatic) shade and
that the panel says what happened. The HTTP test checks a refusal writes nothing and the
answer carries the new overlay and the stop reasons of auto-contouring.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
from PIL import Image
from scipy import ndimage
from skimage.measure import find_contours

from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import display_view
from ril_dash.core.volume import load_volume
from ril_dash.project.annotation_store import AnnotationStore

pytestmark = pytest.mark.browser

SERIES = "PHANTOM-003/CT-2026-01-14/portal-venous.nii.gz"
API_SERIES = "PHANTOM-002/CT-2026-01-14/non-contrast.nii.gz"
RIGHT_KIDNEY = 3
RIGHT_KIDNEY_LABELS = (8, 9, 10)
LIGHT_RED = (243, 165, 157)  # #e74c3c halfway to white
IDLE_AFTER_JS = """(n) => { const s = window.rilAnnotate.state();
    return s.edits > n && !s.busy && s.queued === 0; }"""


def dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def truth(demo_home, series):
    """The right kidney's ground truth (canonical) and its largest axial slice."""
    labels = load_volume(demo_home / "demo-project" / "ground_truth" / series).data[..., 0]
    kidney = np.isin(labels, RIGHT_KIDNEY_LABELS)
    return kidney, int(np.argmax(kidney.sum(axis=(0, 1))))


def stored(demo_home, series, shape):
    store = AnnotationStore(demo_home / "demo-project" / "annotations")
    state = store.series(series, shape).refresh()
    if RIGHT_KIDNEY not in state.slots:
        return state, np.zeros(shape, bool)
    return state, roi_mask(state.bits, state.slots[RIGHT_KIDNEY]).copy()


def test_snap_on_the_demo_in_the_browser(demo_server, demo_home, page, ui):
    kidney, z = truth(demo_home, SERIES)
    gt = display_view(kidney, "axial", z)
    grown = ndimage.binary_dilation(gt, iterations=3)
    outline = max(find_contours(grown.astype(float), 0.5), key=len)[::6]
    ui.open_viewer(page, demo_server.url, SERIES)
    page.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().summary")
    page.evaluate("(i) => window.rilViewer.goTo(i)", z)
    ui.wait_full(page, index=z)
    ui.press(page, "3")
    ui.press(page, "l")
    page.wait_for_function("() => { const s = window.rilAnnotate.state(); return s.tool === "
                           "'lasso' && s.roi === 3 && window.rilViewer.graph()._fullLayout"
                           ".dragmode === 'drawclosedpath'; }")
    edits = page.evaluate("window.rilAnnotate.state().edits")
    points = [ui.client_point(page, r, c) for r, c in outline]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:] + points[:1]:
        page.mouse.move(x, y, steps=2)
    page.mouse.up()
    page.wait_for_function(IDLE_AFTER_JS, arg=edits)
    state, rough = stored(demo_home, SERIES, kidney.shape)
    rough_dice = dice(display_view(rough, "axial", z), gt)
    assert rough_dice < 0.9, page.inner_text("#annot-message")
    version = state.version
    ui.press(page, "s")                                  # snap contour
    page.wait_for_function(IDLE_AFTER_JS, arg=edits + 1)
    state, snapped = stored(demo_home, SERIES, kidney.shape)
    assert state.version == version + 1
    assert dice(display_view(snapped, "axial", z), gt) > 0.93 > rough_dice
    assert state.provenance[("axial", z)]["tool"] == "snap"
    assert f"Snapped slice {z}." in page.inner_text("#annot-message")
    # the overlay on screen is the server's new one, in the lighter shade
    r = requests.get(f"{demo_server.url}/ril/api/overlay", timeout=30, params={
        "series": SERIES, "plane": "axial", "index": z, "style": "fill", "opacity": 0.4,
        "hidden": ""})
    src = r.json()["overlay"]
    page.wait_for_function("(src) => window.rilViewer.graph()"
                           ".data[window.rilViewer.trace('roi')].source === src", arg=src)
    with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as img:
        rgba = np.asarray(img.convert("RGBA"))
    inside = display_view(snapped, "axial", z)
    assert tuple(rgba[inside][:, :3].max(axis=0)) == LIGHT_RED
    # the CT preset was chosen for this CT (its values look like Hounsfield units)
    assert page.is_checked("#contour-preset input[value='ct']")
    # the history names the tool
    page.click("summary:has-text('History')")
    page.wait_for_function("(v) => [...document.querySelectorAll('#annot-history .ril-history-op')]"
                           ".some(e => e.textContent === 'contour · semi-auto:snap')", arg=version)
    # the panel's button and parameters: auto-contour at most 2 slices each way, band 5 px
    page.click("summary:has-text('Semi-automatic contouring')")
    page.fill("#contour-limit", "2")
    page.click("summary:has-text('Parameters')")
    page.fill("#contour-band", "5")
    page.click("button:has-text('Auto-contour (A)')")
    page.wait_for_function(IDLE_AFTER_JS, arg=edits + 2)
    state, auto = stored(demo_home, SERIES, kidney.shape)
    assert state.version == version + 2, page.inner_text("#annot-message")
    request = page.evaluate("window.rilAnnotate.state().summary")
    assert request["slices"] == [z - 2, z - 1, z + 1, z + 2]
    assert "stopped at slice %d (the slice limit was reached)" % (z + 3) in \
        page.inner_text("#annot-message")
    for i in request["slices"]:
        assert dice(display_view(auto, "axial", i), display_view(kidney, "axial", i)) > 0.9
        assert state.provenance[("axial", i)]["tool"] == "auto"
    assert page.js_errors == []


def test_contour_api_refuses_without_writing_and_reports_stops(demo_server, demo_home):
    kidney, z = truth(demo_home, API_SERIES)
    http = requests.Session()
    url = f"{demo_server.url}/ril/api/contour"
    base = {"series": API_SERIES, "roi": RIGHT_KIDNEY, "plane": "axial", "index": z,
            "parent": 0}
    r = http.post(url, json={**base, "tool": "snap"}, timeout=60)
    assert r.status_code == 422
    assert "has no voxels on this slice" in r.json()["error"]
    r = http.post(url, json={**base, "tool": "snap", "params": {"iterations": -3}}, timeout=60)
    assert r.status_code == 422 and "'iterations' must be between 1 and 500" in r.json()["error"]
    assert stored(demo_home, API_SERIES, kidney.shape)[0].version == 0
    # a good slice painted exactly, then auto-contouring (limited to 3 slices each way)
    gt = display_view(kidney, "axial", z)
    rows, cols = np.nonzero(gt)
    path = "".join(f"M{c},{r}" for r, c in zip(rows, cols))  # one dot per pixel
    edit = {**base, "tool": "brush", "path": path, "brush": 1}
    assert http.post(f"{demo_server.url}/ril/api/edit", json=edit, timeout=60).status_code == 200
    r = http.post(url, json={**base, "tool": "auto", "parent": 1, "limit": 3}, timeout=60)
    body = r.json()
    assert r.status_code == 200, body
    assert body["changed"] and body["version"] == 2
    assert body["slices"] == [z - 3, z - 2, z - 1, z + 1, z + 2, z + 3]
    assert "stopped at slice %d (the slice limit was reached)" % (z - 4) in body["message"]
    assert body["overlay"]["index"] == z and body["drafted"] == body["slices"]
    state, got = stored(demo_home, API_SERIES, kidney.shape)
    for i in body["slices"]:
        assert dice(display_view(got, "axial", i), display_view(kidney, "axial", i)) > 0.9
