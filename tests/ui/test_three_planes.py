"""The three-plane layout in a real browser: the two other planes beside the image through a
3D cursor, a click in a side view moves the main slice, and "Main" makes a side plane the one
painted, at the cursor: a brush stroke there saves voxels of that plane's slice."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.planes import canonical_to_display, display_to_canonical
from ril_dash.core.raster import parse_svg_path, rasterize_brush
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.ui import ids

pytestmark = pytest.mark.browser

SERIES = "P1/ct.nii.gz"
SHAPE = (40, 36, 24)  # canonical (X, Y, Z) = file order for an identity affine
SPACING = (1.0, 1.0, 2.0)
ROI = 1


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    import nibabel as nib
    from support import RunningServer  # tests/support.py

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("three-planes")
    (root / "images" / "P1").mkdir(parents=True)
    rng = np.random.default_rng(8)
    data = rng.integers(0, 300, SHAPE).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([*SPACING, 1.0])), root / "images" / SERIES)
    proj = init_project(root / "project", root / "images")
    server = RunningServer(["serve", str(proj.dir)])
    server.store = AnnotationStore(proj.dir / "annotations")
    server.images = root / "images"
    yield server
    server.stop()


def planes_state(page) -> dict:
    return page.evaluate("rilPlanes.state()")


def side_frame(page, plane: str):
    return page.locator(f"#{ids.SIDE_VIEWS} .ril-side-view[data-plane={plane}] .ril-side-frame")


def click_side(page, plane: str, row: float, col: float, rows: int, cols: int) -> None:
    box = side_frame(page, plane).bounding_box()
    page.mouse.click(box["x"] + (col + 0.5) / cols * box["width"],
                     box["y"] + (row + 0.5) / rows * box["height"])


def test_side_views_follow_the_cursor_and_a_side_plane_can_be_painted(page, project, ui):
    ui.open_viewer(page, project.url, SERIES, index=11)
    page.evaluate("window.localStorage.removeItem('ril.threePlanes')")
    page.click(f"#{ids.THREE_PLANES}")
    page.wait_for_function("() => { const s = rilPlanes.state(); return s.on && "
                           "Object.values(s.sides).length === 2 && "
                           "Object.values(s.sides).every(x => x.shown); }")
    s = planes_state(page)
    centre = [n // 2 for n in SHAPE]
    assert s["cursor"] == [centre[0], centre[1], 11]  # the main slice is the cursor's z
    assert s["sides"] == {"coronal": {"index": centre[1], "shown": True},
                          "sagittal": {"index": centre[0], "shown": True}}
    # the coronal side view shows the server's coronal slice through the cursor
    src = page.evaluate(f"document.querySelector('#{ids.SIDE_VIEWS} "
                        f".ril-side-view[data-plane=coronal] img').getAttribute('src')")
    wc, ww = ui.state(page)["wc"], ui.state(page)["ww"]
    assert np.array_equal(ui.decode_data_url(src), ui.expected_pixels(
        project.images / SERIES, "coronal", centre[1], wc, ww))

    # a click in the coronal view at a voxel: the cursor goes there, the main slice follows
    target = (7, 20, 5)  # canonical voxel
    index, row, col = canonical_to_display(SHAPE, "coronal", (target[0], centre[1], target[2]))
    assert index == centre[1]
    click_side(page, "coronal", row, col, SHAPE[2], SHAPE[0])
    ui.wait_full(page, index=target[2])
    s = planes_state(page)
    assert s["cursor"] == [target[0], centre[1], target[2]]
    assert s["sides"]["sagittal"]["index"] == target[0]

    # Main on the sagittal view: the sagittal plane is painted, at the cursor's x
    page.locator(f"#{ids.SIDE_VIEWS} .ril-side-view[data-plane=sagittal] .ril-side-main").click()
    ui.wait_full(page, plane="sagittal", index=target[0])
    assert set(planes_state(page)["sides"]) == {"axial", "coronal"}
    page.wait_for_function("() => window.rilAnnotate && rilAnnotate.state().summary")
    edits = page.evaluate("rilAnnotate.state().edits")
    ui.press(page, "b")
    page.wait_for_function("window.rilAnnotate.state().tool === 'brush'")
    page.wait_for_function("window.rilViewer.graph()._fullLayout.dragmode === 'drawopenpath'")
    points = [ui.client_point(page, r, c) for r, c in ((10, 12), (12, 18), (14, 24))]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()
    page.wait_for_function("(n) => { const s = rilAnnotate.state(); "
                           "return s.edits > n && !s.busy && s.queued === 0; }", arg=edits)
    summary = page.evaluate("rilAnnotate.state().summary")
    brush = summary["request"]["brush"]
    region = np.zeros((SHAPE[2], SHAPE[1]), bool)  # sagittal display: rows Z, cols Y
    for pts in parse_svg_path(summary["request"]["path"]):
        region |= rasterize_brush(pts, brush, brush, region.shape)
    expected = np.zeros(SHAPE, bool)
    rows, cols = np.nonzero(region)
    expected[display_to_canonical(SHAPE, "sagittal", target[0], rows, cols)] = True
    state = project.store.series(SERIES, SHAPE).refresh()
    from ril_dash.core.paint import roi_mask

    saved = roi_mask(state.bits, state.slots[ROI])
    assert saved.sum() > 10
    assert np.array_equal(saved, expected)  # only the sagittal slice x = 7 holds paint
    assert page.js_errors == []

