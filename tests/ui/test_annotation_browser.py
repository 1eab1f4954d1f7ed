"""Annotating in a real browser: keyboard tools, brush and lasso strokes, undo/redo, history,
conflicts between two tabs, statistics and point ROIs.

The mouse draws on the plotly graph of the slice viewer; the voxels the server saved are read
back from the annotation store in this process and compared with the exact rasterisation of the
path the browser sent (``rilAnnotate.state().summary.request.path``). Each test uses its own
series of a small temp project served by one server process for the module.
"""

from __future__ import annotations

import base64
import io
import re

import nibabel as nib
import numpy as np
import pytest
import requests
from PIL import Image
from skimage.draw import polygon as sk_polygon

from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import display_to_canonical
from ril_dash.core.raster import parse_svg_path, rasterize_brush
from ril_dash.project.annotation_store import AnnotationStore

pytestmark = pytest.mark.browser

DRAW, CONFLICT, POINTS = "P1/draw.nii.gz", "P1/conflict.nii.gz", "P1/points.nii.gz"
FILE_SHAPE = (48, 40, 9)
SHAPE = FILE_SHAPE  # canonical (LAS flipped to RAS keeps the shape)
DISPLAY = (40, 48)  # axial rows = Y, cols = X
MIDDLE = 4
LIVER, KIDNEY, LESION = 1, 2, 3
PROJECT_YAML = """\
name: Browser annotation
images: {images}
rois:
  - {{name: Liver, color: "#c8763c", value: 1}}
  - {{name: Kidney, color: "#3498db", value: 2, locked: true}}
  - {{name: Lesion, color: "#2ecc71", value: 3, type: point}}
"""

ANNOT = "window.rilAnnotate.state()"
IDLE_AFTER_JS = """(n) => { const s = window.rilAnnotate.state();
    return s.edits > n && !s.busy && s.queued === 0; }"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from support import RunningServer  # tests/support.py

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("annot-browser")
    images = root / "images"
    (images / "P1").mkdir(parents=True)
    rng = np.random.default_rng(5)
    for series in (DRAW, CONFLICT, POINTS):
        data = rng.integers(0, 200, FILE_SHAPE).astype(np.int16)
        nib.save(nib.Nifti1Image(data, np.diag([-1.0, 1.0, 2.5, 1.0])), images / series)
    proj = init_project(root / "project", images)
    (proj.dir / "project.yaml").write_text(PROJECT_YAML.format(images=images))
    server = RunningServer(["serve", str(proj.dir)])
    server.store = AnnotationStore(proj.dir / "annotations")
    yield server
    server.stop()


def annot(page) -> dict:
    return page.evaluate(ANNOT)


def stored(project, series, value=LIVER):
    state = project.store.series(series, SHAPE).refresh()
    if value not in state.slots:
        return state, np.zeros(SHAPE, bool)
    return state, roi_mask(state.bits, state.slots[value]).copy()


def to_canonical(region2d, index=MIDDLE):
    out = np.zeros(SHAPE, bool)
    rows, cols = np.nonzero(region2d)
    out[display_to_canonical(SHAPE, "axial", index, rows, cols)] = True
    return out


def open_series(page, project, ui, series):
    ui.open_viewer(page, project.url, series, index=MIDDLE)
    page.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().summary")
    return annot(page)


def choose(page, ui, *keys, tool, roi):
    for key in keys:
        ui.press(page, key)
    page.wait_for_function("([tool, roi]) => { const s = window.rilAnnotate.state(); "
                           "return s.tool === tool && s.roi === roi; }", arg=[tool, roi])
    mode = {"brush": "drawopenpath", "eraser": "drawopenpath", "lasso": "drawclosedpath"}
    if tool in mode:
        page.wait_for_function(
            "(m) => window.rilViewer.graph()._fullLayout.dragmode === m", arg=mode[tool])


def draw(page, ui, pixels, steps=6):
    """Press the mouse at the first display pixel (row, col), drag through the others, release."""
    points = [ui.client_point(page, r, c) for r, c in pixels]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def saved_after(page, edits) -> dict:
    """Wait until the edit queue has answered after ``edits`` edits; return the state."""
    page.wait_for_function(IDLE_AFTER_JS, arg=edits)
    return annot(page)


def brush_region(path, brush):
    region = np.zeros(DISPLAY, bool)
    for pts in parse_svg_path(path):
        region |= rasterize_brush(pts, brush, brush, DISPLAY)
    return region


def lasso_region(path):
    region = np.zeros(DISPLAY, bool)
    for pts in parse_svg_path(path):
        rr, cc = sk_polygon(pts[:, 1], pts[:, 0], DISPLAY)
        region[rr, cc] = True
    return region


def shown_overlay(page, project, ui, series, index=MIDDLE) -> np.ndarray:
    """Wait until the overlay trace shows the server's current overlay; return its RGBA."""
    r = requests.get(f"{project.url}/ril/api/overlay", timeout=30, params={
        "series": series, "plane": "axial", "index": index, "style": "fill", "opacity": 0.4,
        "hidden": ""})
    expected = r.json()["overlay"]
    assert expected.startswith("data:image/png;base64,")
    page.wait_for_function("(src) => window.rilViewer.graph()"
                           ".data[window.rilViewer.trace('roi')].source === src", arg=expected)
    with Image.open(io.BytesIO(base64.b64decode(expected.split(",", 1)[1]))) as img:
        return np.asarray(img.convert("RGBA")).copy()


def test_brush_stroke_saves_exact_voxels_and_shows_overlay(page, project, ui):
    s = open_series(page, project, ui, DRAW)
    v0, edits = s["version"], s["edits"]
    choose(page, ui, "b", "2", tool="brush", roi=KIDNEY)  # the keys reach the panel ...
    choose(page, ui, "1", tool="brush", roi=LIVER)        # ... and 1 picks the first ROI
    draw(page, ui, [(10.2, 8.7), (14.6, 20.3), (25.1, 30.4)])
    s = saved_after(page, edits)
    assert s["version"] == v0 + 1, page.inner_text("#annot-message")
    req = s["summary"]["request"]
    assert (req["tool"], req["roi"], req["plane"], req["index"], req["brush"]) == (
        "brush", LIVER, "axial", MIDDLE, 5.0)
    region = brush_region(req["path"], req["brush"])
    state, got = stored(project, DRAW)
    assert state.version == v0 + 1
    assert np.array_equal(got, to_canonical(region))
    # the painted voxels follow the mouse: the stroke's ends are painted, far corners are not
    assert region[10, 9] and region[25, 30] and not region[0, 0] and not region[39, 47]
    assert 60 < region.sum() < 400
    # the overlay trace shows the ROI on exactly those pixels
    rgba = shown_overlay(page, project, ui, DRAW)
    assert np.array_equal(rgba[..., 3] > 0, region)
    assert (rgba[region][:, :3] == (200, 118, 60)).all()
    # the slice indicator has one Liver segment at this slice
    seg = page.locator("#slice-indicator .ril-indicator-seg")
    seg.first.wait_for()
    assert seg.count() == 1
    assert seg.first.get_attribute("title") == f"Liver: slices {MIDDLE + 1}–{MIDDLE + 1}"
    assert page.js_errors == []


def test_lasso_undo_redo_history_rollback_and_statistics(page, project, ui):
    s = open_series(page, project, ui, DRAW)
    v0, edits = s["version"], s["edits"]
    _, before = stored(project, DRAW)
    choose(page, ui, "l", tool="lasso", roi=LIVER)
    draw(page, ui, [(20.3, 5.2), (22.1, 18.7), (35.6, 16.4), (33.2, 4.1), (20.8, 5.0)])
    s = saved_after(page, edits)
    assert s["version"] == v0 + 1, page.inner_text("#annot-message")
    path = s["summary"]["request"]["path"]
    assert path.rstrip().endswith("Z")
    region = lasso_region(path)
    assert region.sum() > 80
    _, after = stored(project, DRAW)
    assert np.array_equal(after, before | to_canonical(region))
    shown = shown_overlay(page, project, ui, DRAW)[..., 3] > 0
    assert shown[region].all()

    # Ctrl+Z removes the lasso, Ctrl+Shift+Z brings it back (new versions, store follows)
    ui.press(page, "Control+z")
    s = saved_after(page, s["edits"])
    assert s["version"] == v0 + 2
    assert np.array_equal(stored(project, DRAW)[1], before)
    ui.press(page, "Control+Shift+Z")
    s = saved_after(page, s["edits"])
    assert s["version"] == v0 + 3
    assert np.array_equal(stored(project, DRAW)[1], after)

    # the history lists the versions; rolling back to the state before the lasso
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("details.ril-annot-section > summary:has-text('History')")
    row = page.locator(".ril-history-row").filter(
        has=page.locator(".ril-history-id", has_text=re.compile(rf"^v{v0}$")))
    row.wait_for()
    top = page.locator(".ril-history-row").first
    top.filter(has_text=f"v{v0 + 3}").wait_for()
    assert "redo" in top.inner_text()
    row.get_by_role("button", name="Roll back").click()
    s = saved_after(page, s["edits"])
    assert s["version"] == v0 + 4
    state, now = stored(project, DRAW)
    assert np.array_equal(now, before)
    assert np.array_equal(state.bits, project.store.series(DRAW, SHAPE).state_at(v0).bits)
    info = project.store.series(DRAW, SHAPE).versions(limit=1)[0]
    assert (info.op, info.target) == ("rollback", v0)
    page.locator(".ril-history-row").first.filter(has_text=f"v{v0 + 4}").wait_for()

    # statistics of the stored ROI
    page.click("details.ril-annot-section > summary:has-text('Statistics')")
    page.click("#stats-run")
    voxels = page.locator(".ril-stats-table tr", has_text="Voxels").locator("td").nth(1)
    voxels.wait_for()
    assert voxels.inner_text() == str(int(now.sum()))
    page.wait_for_function(  # the histogram: a bar chart, drawn by plotly.js's cartesian bundle
        "() => { const g = document.querySelector('#stats-histogram .js-plotly-plot');"
        " return !!g && !!g._fullData && g._fullData[0].type === 'bar'; }")
    assert page.js_errors == []


def test_two_tabs_stale_edit_is_refused_and_reloaded(page, browser, project, ui):
    other = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page_b = other.new_page()
        page_b.set_default_timeout(20_000)
        errors_b: list[str] = []
        page_b.on("pageerror", lambda exc: errors_b.append(str(exc)))
        a = open_series(page, project, ui, CONFLICT)
        b = open_series(page_b, project, ui, CONFLICT)
        v0 = a["version"]
        assert b["version"] == v0
        choose(page, ui, "b", tool="brush", roi=LIVER)
        choose(page_b, ui, "b", tool="brush", roi=LIVER)

        draw(page, ui, [(5.0, 5.0), (5.0, 15.0)])
        a = saved_after(page, a["edits"])
        assert a["version"] == v0 + 1
        _, first = stored(project, CONFLICT)

        draw(page_b, ui, [(30.0, 30.0), (30.0, 40.0)])  # B still shows v0
        page_b.wait_for_function(
            "(v) => { const s = window.rilAnnotate.state(); return !s.busy && s.version === v; }",
            arg=v0 + 1)
        message = page_b.inner_text("#annot-message")
        assert "changed" in message and "Reloaded the latest version" in message
        assert "ril-annot-warn" in page_b.get_attribute("#annot-message", "class")
        state, now = stored(project, CONFLICT)
        assert state.version == v0 + 1 and np.array_equal(now, first)
        # B now sees A's stroke, and its next stroke is saved on top of it
        assert annot(page_b)["summary"]["ranges"] == {str(LIVER): [[MIDDLE, MIDDLE + 1]]}
        b = annot(page_b)
        draw(page_b, ui, [(30.0, 30.0), (30.0, 40.0)])
        b = saved_after(page_b, b["edits"])
        assert b["version"] == v0 + 2
        region = brush_region(b["summary"]["request"]["path"], 5.0)
        assert np.array_equal(stored(project, CONFLICT)[1], first | to_canonical(region))
        assert errors_b == []
    finally:
        other.close()
    assert page.js_errors == []


def test_point_roi_click_adds_a_point(page, project, ui):
    s = open_series(page, project, ui, POINTS)
    choose(page, ui, "3", "p", tool="point", roi=LESION)
    row, col = 12, 31
    page.mouse.click(*ui.client_point(page, row, col))
    s = saved_after(page, s["edits"])
    xyz = [int(c) for c in display_to_canonical(SHAPE, "axial", MIDDLE, row, col)]
    assert s["summary"]["points"] == [{"roi": LESION, "xyz": xyz, "index": MIDDLE,
                                       "row": row, "col": col}]
    assert project.store.series(POINTS, SHAPE).refresh().points == {LESION: [xyz]}
    # the point is drawn on the marker trace
    page.wait_for_function("([r, c]) => { const t = window.rilViewer.graph()"
                           ".data[window.rilViewer.trace('points')]; "
                           "return t.x.length === 1 && t.x[0] === c && t.y[0] === r; }",
                           arg=[row, col])
    assert page.js_errors == []
