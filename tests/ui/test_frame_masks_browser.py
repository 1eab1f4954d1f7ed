"""Masks per frame of a 4D series in a real browser (paint frame 2, export, copy to frames, undo)
and through the HTTP API (replies follow the frame, refusals, an old series with one mask).

The brush stroke is drawn with the mouse on the slice viewer at frame 2 (the frame slider dragged
to its end); the saved voxels are read back from the annotation store in this process and the
export is made from it: the mask has the source's 4D shape and affine, and only frame 2 set.
"""

from __future__ import annotations

import json
import types

import nibabel as nib
import numpy as np
import pytest
import requests

from ril_dash.core.planes import display_to_canonical
from ril_dash.core.raster import parse_svg_path, rasterize_brush
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.audit import AuditLog
from ril_dash.project.export import export_project, mask_folder_name
from ril_dash.project.frames import frame_masks, series_annotations
from ril_dash.project.project import Project

pytestmark = pytest.mark.browser

SERIES = "P1/cine.nii.gz"
PERF = "P1/perf.nii.gz"  # for the API test
OLD = "P1/old.nii.gz"  # annotated with one (X, Y, Z) mask before masks per frame
FILE_SHAPE = (24, 20, 6, 3)  # RAS: canonical (X, Y, Z) = the file's first three dimensions
SHAPE, FRAMES = FILE_SHAPE[:3], FILE_SHAPE[3]
DISPLAY = (20, 24)  # axial rows = Y, cols = X
INDEX = 2
AFFINE = np.diag([2.0, 2.0, 5.0, 1.0])
PROJECT_YAML = """\
name: Cine
images: {images}
rois:
  - {{name: Myocardium, color: "#c8763c", value: 1}}
  - {{name: Blood pool, color: "#3498db", value: 2}}
"""
IDLE_AFTER_JS = """(n) => { const s = window.rilAnnotate.state();
    return s.edits > n && !s.busy && s.queued === 0; }"""


@pytest.fixture(scope="module")
def cine(tmp_path_factory):
    from support import RunningServer  # tests/support.py

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("cine")
    images = root / "images"
    (images / "P1").mkdir(parents=True)
    data = np.random.default_rng(7).integers(0, 1000, FILE_SHAPE).astype(np.int16)
    for series in (SERIES, PERF, OLD):
        nib.save(nib.Nifti1Image(data, AFFINE), images / series)
    proj = init_project(root / "project", images)
    (proj.dir / "project.yaml").write_text(PROJECT_YAML.format(images=images))
    old = AnnotationStore(proj.dir / "annotations").series(OLD, SHAPE)
    after = np.zeros(SHAPE, np.uint8)
    after[3:6, 4, INDEX] = 1
    old.commit(0, types.SimpleNamespace(box=tuple((0, n) for n in SHAPE),
                                        before=np.zeros(SHAPE, np.uint8), after=after),
               {"user": "ana", "op": "paint"}, slots={1: 0})
    server = RunningServer(["serve", str(proj.dir)])
    server.project_dir = proj.dir
    yield server
    server.stop()


def _frames(cine) -> np.ndarray:
    project = Project.open(cine.project_dir)
    whole = series_annotations(AnnotationStore(project.config.annotations), SERIES, SHAPE, FRAMES)
    state = whole.refresh()
    return frame_masks(state.bits, SHAPE, FRAMES), state


def _annot(page) -> dict:
    return page.evaluate("window.rilAnnotate.state()")


def _overlay(cine, frame: int) -> str:
    return requests.get(f"{cine.url}/ril/api/overlay", timeout=30, params={
        "series": SERIES, "plane": "axial", "index": INDEX, "frame": frame, "style": "fill",
        "opacity": 0.4, "hidden": ""}).json()["overlay"]


def test_paint_frame_2_export_copy_to_frames_and_undo(page, cine, ui, tmp_path):
    ui.open_viewer(page, cine.url, SERIES, index=INDEX, frame=0)
    page.wait_for_function("() => window.rilAnnotate && window.rilAnnotate.state().summary")
    ui.drag_slider_to_end(page, "frame-slider")  # frame 2 of 3
    ui.wait_full(page, frame=2, index=INDEX)
    page.wait_for_function("() => window.rilAnnotate.state().summary")
    edits = _annot(page)["edits"]
    ui.press(page, "b")
    ui.press(page, "1")
    page.wait_for_function("() => { const s = window.rilAnnotate.state(); "
                           "return s.tool === 'brush' && s.roi === 1; }")
    page.wait_for_function("() => window.rilViewer.graph()._fullLayout.dragmode === 'drawopenpath'")
    points = [ui.client_point(page, r, c) for r, c in [(5.2, 4.7), (9.6, 12.3), (14.1, 18.4)]]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()
    page.wait_for_function(IDLE_AFTER_JS, arg=edits)
    s = _annot(page)
    assert s["version"] == 1, page.inner_text("#annot-message")
    req = s["summary"]["request"]
    assert (req["frame"], req["index"], req["roi"]) == (2, INDEX, 1)

    # the store: exactly the brush's voxels, in frame 2 only
    region = np.zeros(DISPLAY, bool)
    for pts in parse_svg_path(req["path"]):
        region |= rasterize_brush(pts, req["brush"], req["brush"], DISPLAY)
    expected = np.zeros(SHAPE, bool)
    rows, cols = np.nonzero(region)
    expected[display_to_canonical(SHAPE, "axial", INDEX, rows, cols)] = True
    assert 20 < expected.sum() < 300
    frames, state = _frames(cine)
    assert np.array_equal((frames[..., 2] >> state.slots[1]) & 1 == 1, expected)
    assert not frames[..., :2].any()
    # the overlays follow the frame: the one on screen is frame 2's; frame 0 has none
    shown = _overlay(cine, 2)
    assert shown.startswith("data:image/png;base64,") and _overlay(cine, 0) == ""
    page.wait_for_function("(src) => window.rilViewer.graph()"
                           ".data[window.rilViewer.trace('roi')].source === src", arg=shown)

    # export: the source's 4D shape and affine, only frame 2 set
    export_project(Project.open(cine.project_dir), tmp_path / "out")
    folder = tmp_path / "out" / "masks" / mask_folder_name(SERIES)
    img = nib.load(folder / "Myocardium.nii.gz")
    src = nib.load(cine.project_dir.parent / "images" / SERIES)
    assert img.shape == src.shape == FILE_SHAPE
    assert np.array_equal(img.affine, src.affine)
    data = np.asanyarray(img.dataobj)
    assert np.array_equal(data[..., 2] == 1, expected)  # RAS: file order = canonical
    assert not data[..., :2].any()

    # "Copy to frames…" 0 to 1: one version; undo takes it back in one step
    edits = _annot(page)["edits"]
    page.fill("#annot-copy-first", "0")
    page.fill("#annot-copy-last", "1")
    page.get_by_role("button", name="Copy to frames…").click()
    page.wait_for_function(IDLE_AFTER_JS, arg=edits)
    assert _annot(page)["version"] == 2, page.inner_text("#annot-message")
    frames, _ = _frames(cine)
    for t in range(FRAMES):
        assert np.array_equal(frames[..., t] & 1 == 1, expected)
    edits = _annot(page)["edits"]
    ui.press(page, "Control+z")
    page.wait_for_function(IDLE_AFTER_JS, arg=edits)
    assert _annot(page)["version"] == 3
    frames, _ = _frames(cine)
    assert not frames[..., :2].any() and np.array_equal(frames[..., 2] & 1 == 1, expected)
    assert page.js_errors == []


def _post(cine, route, body):
    r = requests.post(f"{cine.url}/ril/api/{route}", data=json.dumps(body), timeout=60,
                      headers={"Content-Type": "application/json"})
    return r.status_code, r.json()


def _ranges(cine, series, frame):
    r = requests.get(f"{cine.url}/ril/api/annotations", timeout=30,
                     params={"series": series, "plane": "axial", "frame": frame})
    return r.status_code, r.json()


def test_api_follows_the_frame_and_refuses_bad_copies(cine):
    stroke = {"series": PERF, "tool": "brush", "roi": 1, "plane": "axial", "index": INDEX,
              "path": "M3,3L8,9", "brush": 2, "parent": 0}
    status, body = _post(cine, "edit", dict(stroke, frame=1))
    assert status == 200 and body["version"] == 1
    assert body["ranges"] == {"1": [[INDEX, INDEX + 1]]}  # the reply is frame 1's
    assert _ranges(cine, PERF, 1)[1]["ranges"] == {"1": [[INDEX, INDEX + 1]]}
    assert _ranges(cine, PERF, 0)[1]["ranges"] == {}
    status, body = _post(cine, "edit", dict(stroke, frame=3, parent=1))
    assert status == 422 and "Frame 3 is outside 0..2" in body["error"]
    # copy to frames: refusals say what to do; nothing is saved
    copy = {"series": PERF, "roi": 1, "frame": 1, "first": 0, "last": 2, "parent": 1}
    assert _post(cine, "copy_frames", dict(copy, first=2, last=0))[0] == 422
    status, body = _post(cine, "copy_frames", dict(copy, frame=0))
    assert status == 422 and "no voxels in frame 0" in body["error"]
    assert _post(cine, "copy_frames", dict(copy, parent=0))[0] == 409
    assert _post(cine, "copy_frames", dict(copy, first=-1))[0] == 400
    status, body = _post(cine, "copy_frames", copy)
    assert status == 200 and body["version"] == 2 and body["can_undo"]
    last = AuditLog.for_project(cine.project_dir).read()[0]  # newest first
    assert (last["action"], last["series"]) == ("save", PERF), last
    for frame in range(FRAMES):
        assert _ranges(cine, PERF, frame)[1]["ranges"] == {"1": [[INDEX, INDEX + 1]]}
    # undo answers with the frame's state: frame 0 is empty again after one undo
    status, body = _post(cine, "undo", {"series": PERF, "parent": 2, "frame": 0})
    assert status == 200 and body["version"] == 3 and body["ranges"] == {}
    assert _ranges(cine, PERF, 1)[1]["ranges"] == {"1": [[INDEX, INDEX + 1]]}
    # an old series keeps its one mask for all frames: an edit on frame 2 shows on frame 0
    assert _ranges(cine, OLD, 0)[1]["ranges"] == {"1": [[INDEX, INDEX + 1]]}
    status, body = _post(cine, "edit", dict(stroke, series=OLD, index=4, frame=2, parent=1))
    assert status == 200 and body["version"] == 2
    assert _ranges(cine, OLD, 0)[1]["ranges"] == {"1": [[INDEX, INDEX + 1], [4, 5]]}
    status, body = _post(cine, "copy_frames", dict(copy, series=OLD, parent=2))
    assert status == 422 and "one mask for all its frames" in body["error"]
