"""The annotation HTTP API (``/ril/api/edit``, overlays, undo/redo/rollback, versions) of a server.

One real server process serves a temp project (a small LAS NIfTI, three ROIs: an area ROI, a
locked one and a point ROI). Saved voxels are read back from the store in this process and
compared with the geometry computed here; bad requests must give a JSON 4xx, never a 500; the
images tree is hashed before the server starts and compared at the end.
"""

from __future__ import annotations

import base64
import io
import json

import nibabel as nib
import numpy as np
import pytest
import requests
from PIL import Image
from support import tree_digest  # noqa: E402  (tests/support.py)

from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import display_shape, display_to_canonical
from ril_dash.core.raster import parse_svg_path, rasterize_brush
from ril_dash.project.annotation_store import AnnotationStore

pytestmark = pytest.mark.browser

SERIES = "P1/ct.nii.gz"
OTHER = "P1/mr.nii.gz"
FILE_SHAPE = (24, 20, 8)
SHAPE = FILE_SHAPE  # LAS → RAS flips an axis, the shape stays
LIVER, KIDNEY, LESION = 1, 2, 3
LIVER_RGB = (200, 118, 60)
PROJECT_YAML = """\
name: API test
images: {images}
rois:
  - {{name: Liver, color: "#c8763c", value: 1}}
  - {{name: Kidney, color: "#3498db", value: 2, locked: true}}
  - {{name: Lesion, color: "#2ecc71", value: 3, type: point}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from support import RunningServer  # tests/support.py

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("annot-api")
    images = root / "images"
    (images / "P1").mkdir(parents=True)
    rng = np.random.default_rng(11)
    affine = np.diag([-1.2, 1.2, 3.0, 1.0])
    nib.save(nib.Nifti1Image(rng.integers(-100, 300, FILE_SHAPE).astype(np.int16), affine),
             images / SERIES)
    nib.save(nib.Nifti1Image(rng.random((10, 10, 4)).astype(np.float32), np.eye(4)),
             images / OTHER)
    project = init_project(root / "project", images)
    (root / "project" / "project.yaml").write_text(PROJECT_YAML.format(images=images))
    digest = tree_digest(images)
    srv = RunningServer(["serve", str(project.dir)])
    srv.images, srv.digest = images, digest
    srv.store = AnnotationStore(project.dir / "annotations")
    srv.http = requests.Session()
    yield srv
    srv.http.close()
    srv.stop()


def post(server, route, body=None, *, data=None, headers=None):
    if data is None:
        data = json.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
    r = server.http.post(f"{server.url}/ril/api/{route}", data=data, headers=headers, timeout=60)
    return r.status_code, r.json()


def get(server, route, **params):
    r = server.http.get(f"{server.url}/ril/api/{route}", params=params, timeout=60)
    return r.status_code, r.json()


def current(server, series=SERIES) -> int:
    status, body = get(server, "annotations", series=series, plane="axial")
    assert status == 200
    return body["version"]


def saved(server, value=LIVER, series=SERIES, shape=SHAPE):
    state = server.store.series(series, shape).refresh()
    if value not in state.slots:
        return state, np.zeros(shape, bool)
    return state, roi_mask(state.bits, state.slots[value])


def brush_mask(path, brush, plane, index, shape=SHAPE):
    region = np.zeros(display_shape(shape, plane), bool)
    for pts in parse_svg_path(path):
        region |= rasterize_brush(pts, brush, brush, region.shape)
    out = np.zeros(shape, bool)
    rows, cols = np.nonzero(region)
    out[display_to_canonical(shape, plane, index, rows, cols)] = True
    return region, out


def rgba_of(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix), data_url[:40]
    with Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):]))) as img:
        assert img.mode == "P" and "transparency" in img.info  # a palette with alpha
        return np.asarray(img.convert("RGBA")).copy()


def edit_body(parent, **fields):
    return {"series": SERIES, "tool": "brush", "roi": LIVER, "plane": "axial", "index": 4,
            "parent": parent, "brush": 3, **fields}


PATH1 = "M3.4,5.2L9.8,6.1L12.2,11.7"
PATH2 = "M15,2L17,16"


def test_edit_saves_a_version_and_returns_the_summary(server):
    assert current(server) == 0
    status, body = post(server, "edit", edit_body(0, path=PATH1))
    assert status == 200, body
    assert body["changed"] is True and body["version"] == 1 and body["shown_version"] == 1
    assert body["can_undo"] is True and body["can_redo"] is False
    assert body["ranges"] == {"1": [[4, 5]]} and body["points"] == []
    assert body["request"]["path"] == PATH1 and body["request"]["brush"] == 3.0
    _region, expected = brush_mask(PATH1, 3, "axial", 4)
    state, got = saved(server)
    assert state.version == 1 and expected.sum() > 10
    assert np.array_equal(got, expected)
    # coronal summary of the same version: the rows of Y that hold the stroke
    status, cor = get(server, "annotations", series=SERIES, plane="coronal")
    ys = np.flatnonzero(expected.any(axis=(0, 2)))
    assert cor["ranges"]["1"] == [[int(ys[0]), int(ys[-1]) + 1]]
    assert np.array_equal(np.diff(ys), np.ones(len(ys) - 1))


def test_overlay_png_has_the_roi_colour_at_the_painted_pixels(server):
    region, _ = brush_mask(PATH1, 3, "axial", 4)
    status, body = get(server, "overlay", series=SERIES, plane="axial", index=4, opacity=1)
    assert status == 200 and body["index"] == 4 and body["version"] == 1
    rgba = rgba_of(body["overlay"])
    assert rgba.shape == region.shape + (4,)
    assert np.array_equal(rgba[..., 3] > 0, region)
    assert (rgba[region][:, :3] == LIVER_RGB).all() and (rgba[region][:, 3] == 255).all()
    status, body = get(server, "overlay", series=SERIES, plane="axial", index=3)
    assert status == 200 and body["overlay"] == ""
    status, body = get(server, "overlay", series=SERIES, plane="axial", index=4, hidden="1")
    assert status == 200 and body["overlay"] == ""
    status, thumbs = get(server, "overlay_thumbs", series=SERIES, plane="axial", factor=2)
    assert status == 200 and list(thumbs["images"]) == ["4"]


def test_second_edit_old_version_overlay_differs(server):
    v = current(server)
    status, body = post(server, "edit", edit_body(v, path=PATH2, brush=2))
    assert status == 200 and body["version"] == v + 1
    _, old = get(server, "overlay", series=SERIES, plane="axial", index=4, version=v)
    _, new = get(server, "overlay", series=SERIES, plane="axial", index=4)
    assert old["version"] == v and new["version"] == v + 1
    assert old["overlay"] != new["overlay"]
    r1, _ = brush_mask(PATH1, 3, "axial", 4)
    r2, _ = brush_mask(PATH2, 2, "axial", 4)
    assert np.array_equal(rgba_of(old["overlay"])[..., 3] > 0, r1)
    assert np.array_equal(rgba_of(new["overlay"])[..., 3] > 0, r1 | r2)
    status, summary = get(server, "annotations", series=SERIES, plane="axial", version=0)
    assert status == 200 and summary["ranges"] == {} and summary["shown_version"] == 0


def test_undo_redo_rollback_and_versions(server):
    v = current(server)
    _, before = saved(server)
    before = before.copy()
    status, body = post(server, "undo", {"series": SERIES, "plane": "axial", "parent": v})
    assert status == 200 and body["changed"] and body["version"] == v + 1
    assert body["can_redo"] is True
    _, after_undo = saved(server)
    _, only_first = brush_mask(PATH1, 3, "axial", 4)
    assert np.array_equal(after_undo, only_first)
    status, body = post(server, "redo", {"series": SERIES, "parent": v + 1})
    assert status == 200 and body["version"] == v + 2
    assert np.array_equal(saved(server)[1], before)
    status, body = post(server, "redo", {"series": SERIES, "parent": v + 2})
    assert status == 200 and body["changed"] is False  # nothing left to redo
    status, body = post(server, "rollback", {"series": SERIES, "version": 1, "parent": v + 2})
    assert status == 200 and body["version"] == v + 3
    assert np.array_equal(saved(server)[1], only_first)
    status, body = get(server, "versions", series=SERIES)
    assert status == 200
    rows = body["versions"]
    assert [(r["id"], r["op"], r["target"]) for r in rows] == [
        (v + 3, "rollback", 1), (v + 2, "redo", v), (v + 1, "undo", v), (v, "paint", None),
        (1, "paint", None)]
    assert {r["user"] for r in rows} == {"local"} and rows[-1]["tool"] == "brush"
    assert rows[-1]["kind"] == "manual" and rows[-1]["roi"] == LIVER
    status, body = get(server, "versions", series=SERIES, limit=2)
    assert [r["id"] for r in body["versions"]] == [v + 3, v + 2]


def test_stale_parent_is_409_with_conflict_and_changes_nothing(server):
    v = current(server)
    before = saved(server)[1].copy()
    for route, body in [("edit", edit_body(v - 1, path="M1,1")),
                        ("undo", {"series": SERIES, "parent": v - 1}),
                        ("rollback", {"series": SERIES, "version": 0, "parent": v - 1})]:
        status, answer = post(server, route, body)
        assert status == 409, (route, answer)
        assert answer["conflict"] is True and "Reload" in answer["error"]
    assert current(server) == v and np.array_equal(saved(server)[1], before)


def test_locked_roi_and_rule_refusals_are_422(server):
    v = current(server)
    cases = [
        (edit_body(v, roi=KIDNEY, path="M2,2"), "Kidney is locked"),
        (edit_body(v, roi=LESION, path="M2,2"), "point ROI"),
        (edit_body(v, tool="point", row=1, col=1), "area ROI"),
        (edit_body(v, tool="fill", row=0, col=0), "not enclosed"),
        (edit_body(v, index=10**30, path="M2,2"), "outside"),
        (edit_body(v, roi=99, path="M2,2"), "No ROI has mask value 99"),
        (edit_body(v, path="M2,2", threshold=[5, -5]), "intensity window"),
    ]
    for body, words in cases:
        status, answer = post(server, "edit", body)
        assert status == 422, (body, answer)
        assert words in answer["error"]
    assert current(server) == v


def test_point_roi_through_the_api(server):
    v = current(server)
    status, body = post(server, "edit", {"series": SERIES, "tool": "point", "roi": LESION,
                                         "plane": "sagittal", "index": 7, "row": 2, "col": 5,
                                         "parent": v})
    assert status == 200 and body["version"] == v + 1
    xyz = [int(c) for c in display_to_canonical(SHAPE, "sagittal", 7, 2, 5)]
    assert body["points"] == [{"roi": LESION, "xyz": xyz, "index": 7, "row": 2, "col": 5}]
    assert body["ranges"]["3"] == [[7, 8]]
    assert server.store.series(SERIES, SHAPE).refresh().points == {LESION: [xyz]}


BAD_POSTS = {
    "malformed JSON": ("edit", b'{"series": "P1/ct.nii.gz", "tool": ', "json", 400),
    "not an object": ("edit", b"[1, 2, 3]", "json", 400),
    "form post": ("edit", b"series=P1/ct.nii.gz&tool=brush", "form", 400),
    "missing series": ("edit", {"tool": "brush", "roi": 1, "plane": "axial", "index": 1,
                                "parent": 0, "path": "M1,1"}, "json", 400),
    "series not a string": ("edit", {"series": 5}, "json", 400),
    "traversal series": ("edit", {**edit_body(0, path="M1,1"), "series": "../../etc/passwd"},
                         "json", 404),
    "absolute series": ("edit", {**edit_body(0, path="M1,1"), "series": "/etc/passwd"},
                        "json", 404),
    "unknown series": ("edit", {**edit_body(0, path="M1,1"), "series": "P9/x.nii.gz"},
                       "json", 404),
    "NaN brush": ("edit", (b'{"series": "P1/ct.nii.gz", "tool": "brush", "roi": 1, '
                           b'"plane": "axial", "index": 1, "parent": 0, "path": "M1,1", '
                           b'"brush": NaN}'), "json", 422),
    "Infinity index": ("edit", (b'{"series": "P1/ct.nii.gz", "tool": "brush", "roi": 1, '
                                b'"plane": "axial", "index": Infinity, "parent": 0, '
                                b'"path": "M1,1"}'), "json", 422),
    "NaN in path": ("edit", edit_body(0, path="M1,1LNaN,2"), "json", 422),
    # over the 4 MB body limit of the JSON API: refused before it is read
    "huge path": ("edit", edit_body(0, path="M1,1" + "L2,2" * 1_100_000), "json", 413),
    "path garbage": ("edit", edit_body(0, path="M1,1 <script>"), "json", 422),
    "unknown tool": ("edit", edit_body(0, tool="saw"), "json", 422),
    "undo parent not a number": ("undo", {"series": SERIES, "parent": "1"}, "json", 400),
    "undo bad plane": ("undo", {"series": SERIES, "plane": "oblique"}, "json", 400),
    "undo traversal": ("undo", {"series": "../../etc/passwd"}, "json", 404),
    "rollback to the future": ("rollback", {"series": SERIES, "version": 10**6}, "json", 400),
    "rollback bool": ("rollback", {"series": SERIES, "version": True}, "json", 400),
}


@pytest.mark.parametrize("case", list(BAD_POSTS))
def test_bad_posts_are_json_4xx(server, case):
    route, body, kind, expected = BAD_POSTS[case]
    v = current(server)
    if kind == "form":
        status, answer = post(server, route, data=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    elif isinstance(body, bytes):
        status, answer = post(server, route, data=body,
                              headers={"Content-Type": "application/json"})
    else:
        status, answer = post(server, route, body)
    assert status == expected, answer
    assert isinstance(answer.get("error"), str) and answer["error"]
    assert current(server) == v


BAD_GETS = {
    "overlay no series": ("overlay", {"plane": "axial", "index": 1}, 400),
    "overlay traversal": ("overlay", {"series": "../x", "plane": "axial", "index": 1}, 404),
    "overlay bad plane": ("overlay", {"series": SERIES, "plane": "x", "index": 1}, 400),
    "overlay index out of range": ("overlay", {"series": SERIES, "plane": "axial", "index": 8},
                                   400),
    "overlay bad version": ("overlay", {"series": SERIES, "plane": "axial", "index": 1,
                                        "version": "abc"}, 400),
    "overlay future version": ("overlay", {"series": SERIES, "plane": "axial", "index": 1,
                                           "version": 10**6}, 400),
    "overlay bad style": ("overlay", {"series": SERIES, "plane": "axial", "index": 1,
                                      "style": "glow"}, 400),
    "overlay nan opacity": ("overlay", {"series": SERIES, "plane": "axial", "index": 1,
                                        "opacity": "nan"}, 400),
    "overlay bad hidden": ("overlay", {"series": SERIES, "plane": "axial", "index": 1,
                                       "hidden": "a,b"}, 400),
    "thumbs bad factor": ("overlay_thumbs", {"series": SERIES, "plane": "axial", "factor": 0},
                          400),
    "summary bad plane": ("annotations", {"series": SERIES, "plane": ""}, 400),
    "versions no series": ("versions", {}, 400),
    "versions bad limit": ("versions", {"series": SERIES, "limit": "x"}, 400),
}


@pytest.mark.parametrize("case", list(BAD_GETS))
def test_bad_gets_are_json_4xx(server, case):
    route, params, expected = BAD_GETS[case]
    status, answer = get(server, route, **params)
    assert status == expected, answer
    assert isinstance(answer.get("error"), str) and answer["error"]


def test_other_series_is_independent_and_images_are_untouched(server):
    status, body = get(server, "annotations", series=OTHER, plane="axial")
    assert status == 200 and body["version"] == 0 and body["ranges"] == {}
    status, body = post(server, "edit", {**edit_body(0, path="M4,4", index=2), "series": OTHER})
    assert status == 200 and body["version"] == 1
    # nothing was ever written inside the images tree
    assert tree_digest(server.images) == server.digest
    annotations = server.store.root
    assert (annotations / (SERIES + ".ril")).is_dir() and (annotations / (OTHER + ".ril")).is_dir()
    assert requests.get(server.url + "/", timeout=30).status_code == 200
