"""Bad files and bad requests: clear messages, never a 500, never a dead server, images untouched.

One project in a temp folder holds a good volume beside broken ones (truncated, not NIfTI, 5D,
all NaN, an absurd header, a file reached through a symlink that leaves the images folder). The
images tree is hashed before the server starts and compared after every test of this module ran.
"""

from __future__ import annotations

import gzip
import json
import os
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode

import nibabel as nib
import numpy as np
import pytest
from support import tree_digest  # noqa: E402  (tests/support.py)

pytestmark = pytest.mark.browser

GOOD = "P1/good.nii.gz"
BAD = {
    # series id: words the error message must contain
    "P1/truncated.nii.gz": "truncated or corrupt",
    "P1/fake.nii": "not a readable NIfTI file",
    "P1/five_d.nii.gz": "5 dimensions",
    "P1/huge.nii": "more than the limit",
    "linked/escaped.nii.gz": "is not in project",
}
NAN_SERIES = "P1/all_nan.nii.gz"


def hand_header(path, dims, dtype=np.int16, payload=b"\0" * 64):
    """A NIfTI-2 header claiming ``dims`` (bypassing nibabel's checks) and a little data."""
    hdr = nib.Nifti2Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape((2,) * len(dims))
    hdr["dim"][0] = len(dims)
    hdr["dim"][1:1 + len(dims)] = dims
    hdr["vox_offset"] = hdr.single_vox_offset
    path.write_bytes(bytes(hdr.binaryblock) + b"\0" * 4 + payload)


def build_images(root):
    """Write the images folder (and the outside folder its symlink points to)."""
    images, outside = root / "images", root / "outside"
    (images / "P1").mkdir(parents=True)
    outside.mkdir()
    rng = np.random.default_rng(7)
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    good = rng.integers(-1000, 1500, (32, 28, 10)).astype(np.int16)
    nib.save(nib.Nifti1Image(good, affine), images / GOOD)

    # a real gzipped NIfTI, cut in half (noise hardly compresses, so the cut is in the voxels)
    whole = gzip.compress(nib.Nifti1Image(
        rng.integers(-1000, 1000, (64, 64, 32)).astype(np.int16), affine).to_bytes())
    (images / "P1" / "truncated.nii.gz").write_bytes(whole[: len(whole) // 2])
    (images / "P1" / "fake.nii").write_text("this is a text file, not an image\n" * 20)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 2, 2), np.float32), affine),
             images / "P1" / "five_d.nii.gz")
    nib.save(nib.Nifti1Image(np.full((16, 16, 4), np.nan, np.float32), affine),
             images / NAN_SERIES)
    hand_header(images / "P1" / "huge.nii", (10**9, 10**9, 10**9))
    nib.save(nib.Nifti1Image(good[:8, :8, :4], affine), outside / "escaped.nii.gz")
    os.symlink(outside, images / "linked", target_is_directory=True)
    return images, outside


@pytest.fixture(scope="module")
def bad_project(tmp_path_factory):
    from support import RunningServer  # tests/support.py

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("bad-input")
    images, outside = build_images(root)
    before = tree_digest(images, outside)
    project = init_project(root / "project", images)
    assert sorted(s.id for s in project.series) == sorted(
        [GOOD, NAN_SERIES] + [s for s in BAD if not s.startswith("linked/")])
    server = RunningServer(["serve", str(root / "project")])
    server.images, server.outside, server.digest_before = images, outside, before
    yield server
    server.stop()


def get(url: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def api(server, route: str, **params) -> tuple[int, str, bytes]:
    return get(f"{server.url}/ril/api/{route}?{urlencode(params)}")


def slice_params(series=GOOD, **extra):
    params = {"series": series, "plane": "axial", "index": 5, "frame": 0, "wc": 40, "ww": 400}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize("series", list(BAD))
def test_bad_series_shows_an_error_and_the_server_keeps_serving(page, bad_project, ui, series):
    page.goto(ui.view_url(bad_project.url, series))
    error = page.wait_for_selector("#viewer-error")
    text = error.inner_text()
    assert "This series cannot be shown." in text
    assert BAD[series] in text, text
    assert "Back to the project" in text
    assert page.locator("#viewer-graph").count() == 0
    # the slice API says the same, as a JSON error, not a 500
    status, ctype, body = api(bad_project, "slice", **slice_params(series))
    assert status in (404, 422), (status, body[:300])
    assert ctype.startswith("application/json")
    assert BAD[series] in json.loads(body)["error"]
    assert get(bad_project.url + "/")[0] == 200  # the server is alive
    assert page.js_errors == []


def test_all_nan_volume_opens_with_a_warning(page, bad_project, ui):
    s = ui.open_viewer(page, bad_project.url, NAN_SERIES, index=1)
    warning = page.locator("#viewer-warnings .ril-alert-warning")
    assert "no finite values" in warning.inner_text()
    assert page.locator("#viewer-error").count() == 0
    assert s["ww"] > 0
    assert not ui.screen_pixels(page).any()  # blank (NaN shows black)
    status, _, body = api(bad_project, "probe", series=NAN_SERIES, plane="axial", index=1,
                              row=3, col=4)
    assert status == 200 and json.loads(body)["value"] == "nan"
    assert page.js_errors == []


def test_good_series_still_opens_after_the_bad_ones(page, bad_project, ui):
    s = ui.open_viewer(page, bad_project.url, GOOD, index=4)
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(bad_project.images / GOOD, "axial", 4,
                                             s["wc"], s["ww"]))


def test_viewer_without_or_with_an_unknown_series_explains(page, bad_project):
    page.goto(bad_project.url + "/view")
    assert "No series was given" in page.wait_for_selector("#viewer-error").inner_text()
    page.goto(bad_project.url + "/view?series=" + quote("../../etc/passwd", safe=""))
    assert "cannot be shown" in page.wait_for_selector("#viewer-error").inner_text()
    assert page.js_errors == []


BAD_REQUESTS = {
    "traversal": ("slice", slice_params("../../etc/passwd"), 404),
    "traversal inside the tree": ("slice", slice_params("P1/../P1/good.nii.gz"), 404),
    "absolute path": ("slice", slice_params("/etc/passwd"), 404),
    "absolute path to a series": ("slice", slice_params("/" + GOOD), 404),
    "unknown series": ("slice", slice_params("P9/nothing.nii.gz"), 404),
    "symlink outside": ("slice", slice_params("linked/escaped.nii.gz"), 404),
    "missing series": ("slice", slice_params(None), 400),
    "empty series": ("slice", slice_params(""), 400),
    "bad plane": ("slice", slice_params(plane="oblique"), 400),
    "missing plane": ("slice", slice_params(plane=None), 400),
    "index too large": ("slice", slice_params(index=10), 400),
    "negative index": ("slice", slice_params(index=-1), 400),
    "huge index": ("slice", slice_params(index=10**30), 400),
    "non-numeric index": ("slice", slice_params(index="five"), 400),
    "missing index": ("slice", slice_params(index=None), 400),
    "frame out of range": ("slice", slice_params(frame=1), 400),
    "non-numeric wc": ("slice", slice_params(wc="abc"), 400),
    "nan wc": ("slice", slice_params(wc="nan"), 400),
    "inf ww": ("slice", slice_params(ww="inf"), 400),
    "-inf wc": ("slice", slice_params(wc="-inf"), 400),
    "zero ww": ("slice", slice_params(ww=0), 400),
    "negative ww": ("slice", slice_params(ww=-10), 400),
    "missing ww": ("slice", slice_params(ww=None), 400),
    "thumbs bad plane": ("thumbs", slice_params(plane="x", index=None), 400),
    "thumbs nan ww": ("thumbs", slice_params(ww="NaN", index=None), 400),
    "thumbs of a 5D file": ("thumbs", slice_params("P1/five_d.nii.gz", index=None), 422),
    "probe outside": ("probe", {"series": GOOD, "plane": "axial", "index": 1, "row": 999,
                                "col": 0}, 400),
    "probe negative": ("probe", {"series": GOOD, "plane": "axial", "index": 1, "row": -1,
                                 "col": 0}, 400),
    "probe non-numeric": ("probe", {"series": GOOD, "plane": "axial", "index": 1, "row": "x",
                                    "col": 0}, 400),
    "probe truncated file": ("probe", {"series": "P1/truncated.nii.gz", "plane": "axial",
                                       "index": 1, "row": 1, "col": 1}, 422),
}


@pytest.mark.parametrize("route, params, status", list(BAD_REQUESTS.values()),
                         ids=list(BAD_REQUESTS))
def test_bad_api_requests_get_a_json_error(bad_project, route, params, status):
    got, ctype, body = api(bad_project, route, **params)
    assert got == status, body[:300]
    assert ctype.startswith("application/json")
    message = json.loads(body)["error"]
    assert isinstance(message, str) and len(message) > 10
    assert "Traceback" not in message


def test_extreme_but_finite_windows_do_not_fail(bad_project):
    for wc, ww in [(1e308, 1e308), (-1e308, 1e-300), (0, 5e-324)]:
        status, _, body = api(bad_project, "slice", **slice_params(wc=wc, ww=ww))
        assert status == 200, (wc, ww, body[:300])
        assert body.startswith(b"data:image/png;base64,")


def test_good_requests_still_answer(bad_project):
    status, _, body = api(bad_project, "slice", **slice_params())
    assert status == 200 and body.startswith(b"data:image/png;base64,")
    status, _, body = api(bad_project, "thumbs", **slice_params(index=None))
    assert status == 200 and len(json.loads(body)["images"]) == 10
    status, _, body = api(bad_project, "probe", series=GOOD, plane="axial", index=1, row=2,
                          col=3)
    assert status == 200 and set(json.loads(body)) == {"voxel", "world", "value"}


def test_zz_images_tree_is_untouched(bad_project):
    """Runs last in this module: every file, link and name is as it was before serving."""
    assert get(bad_project.url + "/")[0] == 200
    assert tree_digest(bad_project.images, bad_project.outside) == bad_project.digest_before
