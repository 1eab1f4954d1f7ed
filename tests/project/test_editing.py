"""Edits of one series: request validation and SeriesEditor under the project's rules.

A small synthetic LAS volume with anisotropic voxels is edited through ``parse_edit_request`` +
``SeriesEditor``; every result is compared voxel for voxel with the geometry computed here
(``rasterize_brush`` / ``skimage.draw.polygon`` + ``display_to_canonical``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import polygon as sk_polygon

from ril_dash.core.paint import roi_mask
from ril_dash.core.planes import display_shape, display_to_canonical
from ril_dash.core.raster import parse_svg_path, rasterize_brush
from ril_dash.core.volume import Volume
from ril_dash.errors import EditRefused, VersionConflict
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.editing import SeriesEditor, parse_edit_request
from ril_dash.project.schema import parse_project_yaml

SID = "P1/ct.nii.gz"
FILE_SHAPE = (10, 12, 6)
AFFINE = np.diag([-0.7, 1.1, 2.5, 1.0])  # LAS, anisotropic in every direction
LIVER, SPLEEN, LOCKED, LESION = 1, 2, 4, 8

ROIS_YAML = """\
rois:
  - {{name: Liver, color: "#ff0000", value: 1}}
  - {{name: Spleen, color: "#00ff00", value: 2}}
  - {{name: Kidney, color: "#0000ff", value: 4, locked: {locked}}}
  - {{name: Lesion, color: "#ffff00", value: 8, type: point}}
"""


def config_for(tmp_path, overlap="one_roi_per_voxel", locked=False, extra=""):
    text = (f"name: T\nimages: imgs\nsettings:\n  overlap: {overlap}\n"
            + ROIS_YAML.format(locked="true" if locked else "false") + extra)
    return parse_project_yaml(text, project_dir=tmp_path)


@pytest.fixture
def volume():
    data = np.random.default_rng(3).integers(-200, 400, FILE_SHAPE).astype(np.int16)
    return Volume(data, AFFINE)


@pytest.fixture
def series(tmp_path, volume):
    return AnnotationStore(tmp_path / "annotations").series(SID, volume.data.shape[:3])


@pytest.fixture
def editor(tmp_path, volume, series):
    return SeriesEditor(config_for(tmp_path), volume, series, "ann")


def edit(editor, parent=None, **fields):
    payload = {"roi": LIVER, "plane": "axial", "index": 3, **fields}
    payload["parent"] = editor.annotations.load().version if parent is None else parent
    return editor.apply(parse_edit_request(payload))


def mask(editor, value):
    state = editor.annotations.load()
    if value not in state.slots:
        return np.zeros(state.bits.shape, bool)
    return roi_mask(state.bits, state.slots[value])


def canonical(shape, plane, index, region2d):
    """Canonical boolean mask of a display-slice region."""
    out = np.zeros(shape, bool)
    rows, cols = np.nonzero(region2d)
    out[display_to_canonical(shape, plane, index, rows, cols)] = True
    return out


def brush_region(path, d_rows, d_cols, shape):
    region = np.zeros(shape, bool)
    for pts in parse_svg_path(path):
        region |= rasterize_brush(pts, d_rows, d_cols, shape)
    return region


def sk_region(vertices_xy, shape):
    region = np.zeros(shape, bool)
    v = np.asarray(vertices_xy, float)
    rr, cc = sk_polygon(v[:, 1], v[:, 0], shape)
    region[rr, cc] = True
    return region


def square_path(r0, c0, r1, c1):
    return f"M{c0},{r0}L{c1},{r0}L{c1},{r1}L{c0},{r1}Z"


# --------------------------------------------------------------------------- parsing
BASE = {"tool": "brush", "roi": 1, "plane": "axial", "index": 3, "parent": 0, "path": "M1,1L2,2"}


@pytest.mark.parametrize("change, message", [
    ({"tool": "saw"}, "Unknown tool 'saw'; use one of brush, eraser"),
    ({"tool": None}, "Unknown tool 'None'"),
    ({"plane": "oblique"}, "Unknown plane 'oblique'; use one of axial, coronal, sagittal"),
    ({"path": None}, "The brush tool needs the drawn path"),
    ({"tool": "lasso", "path": 12}, "The lasso tool needs the drawn path"),
    ({"brush": float("nan")}, "'brush' must be a finite number"),
    ({"brush": float("inf")}, "'brush' must be a finite number"),
    ({"index": float("nan")}, "'index' must be a finite whole number"),
    ({"index": 2.5}, "'index' must be a finite whole number"),
    ({"roi": "1"}, "'roi' must be a number, not '1'"),
    ({"roi": True}, "'roi' must be a number"),
    ({"depth": 51}, "'depth' must be between 0 and 50, not 51"),
    ({"depth": -1}, "'depth' must be between 0 and 50"),
    ({"radius": 0}, "'radius' must be between 1 and 20"),
    ({"threshold": [1]}, "'threshold' must be [low, high]"),
    ({"threshold": "1,2"}, "'threshold' must be [low, high]"),
    ({"threshold": ["a", 2]}, "'low' must be a number"),
    ({"threshold": [0, float("nan")]}, "'high' must be a finite number"),
    ({"point": [1, 2]}, "'point' must be three voxel indices"),
    ({"point": [1, 2, "x"]}, "'point' must be a number"),
    ({"point": [1, 2, -1]}, "'point' must be at least 0, not -1"),
    ({"brush_unit": "inch"}, "'brush_unit' must be 'vox' or 'mm'"),
    ({"scope": "world"}, "'scope' must be 'slice' or 'volume'"),
    ({"roi": None}, "An edit needs 'roi', 'index' and 'parent'"),
    ({"parent": None}, "An edit needs 'roi', 'index' and 'parent'"),
    ({"parent": -1}, "'parent' must be at least 0, not -1"),
    ({"tool": "fill", "row": 3}, "The fill tool needs the clicked pixel ('row', 'col')"),
    ({"tool": "point", "col": 3}, "The point tool needs the clicked pixel"),
])
def test_parse_refuses_with_a_clear_message(change, message):
    with pytest.raises(EditRefused) as info:
        parse_edit_request({**BASE, **change})
    assert message in str(info.value)
    assert "None," not in str(info.value) and "and None" not in str(info.value)


def test_parse_refuses_non_objects_and_keeps_good_fields():
    with pytest.raises(EditRefused, match="must be a JSON object"):
        parse_edit_request([1, 2])
    req = parse_edit_request({**BASE, "brush": 3, "brush_unit": "mm", "depth": 50,
                              "threshold": [-10, 20.5], "frame": 0})
    assert (req.tool, req.roi, req.plane, req.index, req.parent) == ("brush", 1, "axial", 3, 0)
    assert (req.brush, req.brush_unit, req.depth, req.threshold) == (3.0, "mm", 50, (-10.0, 20.5))
    # a path sent with a tool that needs none is dropped
    assert parse_edit_request({**BASE, "tool": "clear"}).path is None


# --------------------------------------------------------------------------- brush / lasso
def test_brush_stroke_paints_exactly_the_rasterised_voxels(editor, volume):
    shape3 = volume.data.shape[:3]
    path = "M1.2,2.7L6.4,3.1L7.9,8.6"
    assert edit(editor, tool="brush", path=path, brush=3) == 1
    region = brush_region(path, 3, 3, display_shape(shape3, "axial"))
    assert region.sum() > 10
    assert np.array_equal(mask(editor, LIVER), canonical(shape3, "axial", 3, region))
    # the same stroke on a coronal slice (rows = Z, cols = X)
    path2 = "M2,1L5,4"
    edit(editor, tool="brush", roi=SPLEEN, plane="coronal", index=7, path=path2, brush=2.5)
    region2 = brush_region(path2, 2.5, 2.5, display_shape(shape3, "coronal"))
    assert np.array_equal(mask(editor, SPLEEN), canonical(shape3, "coronal", 7, region2))


def test_brush_in_mm_follows_the_anisotropic_pixel_size(editor, volume):
    shape3 = volume.data.shape[:3]
    row_mm, col_mm = volume.pixel_spacing("axial")
    assert (row_mm, col_mm) == pytest.approx((1.1, 0.7))
    path = "M5,6"
    edit(editor, tool="brush", path=path, brush=4.4, brush_unit="mm")
    region = brush_region(path, 4.4 / 1.1, 4.4 / 0.7, display_shape(shape3, "axial"))
    assert np.array_equal(mask(editor, LIVER), canonical(shape3, "axial", 3, region))
    rows, cols = np.nonzero(region)
    assert np.ptp(cols) > np.ptp(rows)  # wider than tall: more voxels per mm across
    # coronal: rows are 2.5 mm slices, columns 0.7 mm
    edit(editor, tool="brush", roi=SPLEEN, plane="coronal", index=2, path="M4,2", brush=5,
         brush_unit="mm")
    region2 = brush_region("M4,2", 5 / 2.5, 5 / 0.7, display_shape(shape3, "coronal"))
    assert np.array_equal(mask(editor, SPLEEN), canonical(shape3, "coronal", 2, region2))


def test_lasso_equals_skimage_polygon_and_lasso_erase_removes_it(editor, volume):
    shape3 = volume.data.shape[:3]
    verts = [(1.3, 1.6), (8.2, 2.4), (7.1, 10.2), (2.0, 8.5)]
    path = "M" + "L".join(f"{x},{y}" for x, y in verts) + "Z"
    edit(editor, tool="lasso", path=path)
    region = sk_region(verts, display_shape(shape3, "axial"))
    assert region.sum() > 20
    assert np.array_equal(mask(editor, LIVER), canonical(shape3, "axial", 3, region))
    edit(editor, tool="lasso_erase", path=square_path(0, 0, 5, 5))
    region &= ~sk_region([(0, 0), (5, 0), (5, 5), (0, 5)], region.shape)
    assert np.array_equal(mask(editor, LIVER), canonical(shape3, "axial", 3, region))
    with pytest.raises(EditRefused, match="at least three points"):
        edit(editor, tool="lasso", path="M1,1L3,3")


def test_eraser_removes_only_its_roi_under_the_stroke(tmp_path, volume, series):
    ed = SeriesEditor(config_for(tmp_path, "multi_label"), volume, series, "ann")
    shape3 = volume.data.shape[:3]
    edit(ed, tool="lasso", path=square_path(1, 1, 9, 8))
    edit(ed, tool="lasso", roi=SPLEEN, path=square_path(1, 1, 9, 8))
    before_spleen = mask(ed, SPLEEN).copy()
    liver = mask(ed, LIVER).copy()
    edit(ed, tool="eraser", path="M2,5L7,5", brush=2)
    erased = canonical(shape3, "axial", 3, brush_region("M2,5L7,5", 2, 2, (12, 10)))
    assert np.array_equal(mask(ed, LIVER), liver & ~erased)
    assert np.array_equal(mask(ed, SPLEEN), before_spleen)
    # erasing where nothing is: no new version
    v = series.load().version
    assert edit(ed, tool="eraser", path="M2,5L7,5", brush=2) is None
    assert series.load().version == v


# --------------------------------------------------------------------------- fill / morph
def ring(editor):
    """A square ring of Liver on axial slice 3 (display rows 2..8, cols 2..7, hole 4..6 x 4..5)."""
    edit(editor, tool="lasso", path=square_path(2, 2, 8, 7))
    edit(editor, tool="lasso_erase", path=square_path(4, 4, 6, 5))


def test_fill_inside_a_closed_outline_and_refusal_outside(editor, volume):
    shape3 = volume.data.shape[:3]
    ring(editor)
    with pytest.raises(EditRefused, match="not enclosed"):
        edit(editor, tool="fill", row=0, col=0)
    v = edit(editor, tool="fill", row=5, col=4)
    assert v is not None
    full = np.zeros((12, 10), bool)
    full[2:9, 2:8] = True
    assert np.array_equal(mask(editor, LIVER), canonical(shape3, "axial", 3, full))
    assert edit(editor, tool="fill", row=5, col=4) is None  # already inside the ROI
    with pytest.raises(EditRefused, match="outside"):
        edit(editor, tool="fill", row=12, col=0)


def test_fill_holes(editor, volume):
    shape3 = volume.data.shape[:3]
    ring(editor)
    edit(editor, tool="fill_holes")
    full = np.zeros((12, 10), bool)
    full[2:9, 2:8] = True
    assert np.array_equal(mask(editor, LIVER), canonical(shape3, "axial", 3, full))


@pytest.mark.parametrize("op", ["dilate", "erode"])
def test_dilate_and_erode_on_a_slice_and_in_the_volume(editor, volume, op):
    edit(editor, tool="lasso", path=square_path(3, 3, 7, 6), depth=1)  # slices 2..4
    start = mask(editor, LIVER).copy()
    cross2 = ndimage.generate_binary_structure(2, 1)
    expected = start.copy()
    k = 3
    fn = ndimage.binary_dilation if op == "dilate" else ndimage.binary_erosion
    expected[:, :, k] = fn(start[:, :, k], cross2, iterations=2)
    edit(editor, tool=op, radius=2, scope="slice")
    assert np.array_equal(mask(editor, LIVER), expected)
    # whole volume, 3D cross (outside the array counts as background)
    now = mask(editor, LIVER).copy()
    edit(editor, tool=op, radius=1, scope="volume")
    assert np.array_equal(mask(editor, LIVER),
                          fn(now, ndimage.generate_binary_structure(3, 1), iterations=1))


def test_clear_removes_the_roi_everywhere(editor):
    edit(editor, tool="lasso", path=square_path(1, 1, 5, 5), depth=2)
    edit(editor, tool="lasso", roi=SPLEEN, path=square_path(6, 6, 9, 9))
    spleen = mask(editor, SPLEEN).copy()
    assert edit(editor, tool="clear") is not None
    assert not mask(editor, LIVER).any()
    assert np.array_equal(mask(editor, SPLEEN), spleen)
    assert edit(editor, tool="clear") is None


def test_cross_slice_depth_paints_the_slab_clipped_at_the_ends(editor, volume):
    shape3 = volume.data.shape[:3]
    path = "M4,4L6,7"
    edit(editor, tool="brush", path=path, brush=2, index=1, depth=2)  # slices 0..3
    region = brush_region(path, 2, 2, (12, 10))
    expected = np.zeros(shape3, bool)
    for k in range(4):
        expected |= canonical(shape3, "axial", k, region)
    assert np.array_equal(mask(editor, LIVER), expected)
    # provenance: one entry per display slice touched
    state = editor.annotations.load()
    assert sorted(i for (p, i) in state.provenance if p == "axial") == [0, 1, 2, 3]
    assert state.provenance[("axial", 2)]["kind"] == "manual"
    assert state.provenance[("axial", 2)]["roi"] == LIVER
    info = editor.annotations.versions()[0]
    assert (info.op, info.tool, info.roi, info.user, info.kind) == (
        "paint", "brush", LIVER, "ann", "manual")


def test_threshold_limits_the_painted_voxels(editor, volume):
    shape3 = volume.data.shape[:3]
    image = volume.data[..., 0]
    edit(editor, tool="lasso", path=square_path(0, 0, 11, 9), threshold=[0, 150])
    inside = canonical(shape3, "axial", 3, np.ones((12, 10), bool))
    expected = inside & (image >= 0) & (image <= 150)
    assert 0 < expected.sum() < inside.sum()
    assert np.array_equal(mask(editor, LIVER), expected)
    with pytest.raises(EditRefused, match="intensity window"):
        edit(editor, tool="lasso", path=square_path(0, 0, 11, 9), threshold=[10, -10])


def test_one_roi_per_voxel_vs_multi_label(tmp_path, volume, series):
    one = SeriesEditor(config_for(tmp_path), volume, series, "ann")
    edit(one, tool="lasso", path=square_path(1, 1, 6, 6))
    edit(one, tool="lasso", roi=SPLEEN, path=square_path(4, 4, 9, 9))
    liver, spleen = mask(one, LIVER), mask(one, SPLEEN)
    assert not (liver & spleen).any()  # Spleen took the overlap
    assert spleen.sum() == 36 and liver.sum() == 36 - 9

    other = AnnotationStore(tmp_path / "multi").series(SID, volume.data.shape[:3])
    multi = SeriesEditor(config_for(tmp_path, "multi_label"), volume, other, "ann")
    edit(multi, tool="lasso", path=square_path(1, 1, 6, 6))
    edit(multi, tool="lasso", roi=SPLEEN, path=square_path(4, 4, 9, 9))
    liver, spleen = mask(multi, LIVER), mask(multi, SPLEEN)
    assert (liver.sum(), spleen.sum(), (liver & spleen).sum()) == (36, 36, 9)


@pytest.mark.parametrize("overlap", ["one_roi_per_voxel", "multi_label"])
def test_locked_roi_is_refused_and_untouched_by_other_tools(tmp_path, volume, series, overlap):
    open_ = SeriesEditor(config_for(tmp_path, overlap), volume, series, "ann")
    edit(open_, tool="lasso", roi=LOCKED, path=square_path(3, 3, 7, 7), depth=1)
    kidney = mask(open_, LOCKED).copy()
    ed = SeriesEditor(config_for(tmp_path, overlap, locked=True), volume, series, "ann")
    for tool, extra in [("brush", {"path": "M1,1"}), ("clear", {}), ("eraser", {"path": "M4,4"}),
                        ("dilate", {}), ("fill_holes", {})]:
        with pytest.raises(EditRefused, match="Kidney is locked"):
            edit(ed, tool=tool, roi=LOCKED, **extra)
    # other ROIs painted over it leave its voxels alone
    edit(ed, tool="lasso", path=square_path(0, 0, 11, 9), depth=2)
    edit(ed, tool="dilate", scope="volume", radius=2)
    edit(ed, tool="eraser", path="M5,5", brush=30)
    edit(ed, tool="lasso", path=square_path(0, 0, 11, 9))
    edit(ed, tool="clear")
    assert np.array_equal(mask(ed, LOCKED), kidney)
    if overlap == "one_roi_per_voxel":
        edit(ed, tool="lasso", path=square_path(0, 0, 11, 9))
        assert not (mask(ed, LIVER) & kidney).any()
        assert mask(ed, LIVER).sum() == 120 - kidney[:, :, 3].sum()


# --------------------------------------------------------------------------- points
def test_points_on_a_point_roi(editor, volume):
    shape3 = volume.data.shape[:3]
    v = edit(editor, tool="point", roi=LESION, plane="coronal", index=5, row=2, col=7)
    xyz = [int(c) for c in display_to_canonical(shape3, "coronal", 5, 2, 7)]
    state = editor.annotations.load()
    assert state.points == {LESION: [xyz]} and state.version == v
    assert xyz[1] == 5
    assert edit(editor, tool="point", roi=LESION, plane="coronal", index=5, row=2, col=7) is None
    edit(editor, tool="point", roi=LESION, plane="axial", index=0, row=0, col=0)
    assert len(editor.annotations.load().points[LESION]) == 2
    with pytest.raises(EditRefused, match="outside the image"):
        edit(editor, tool="point", roi=LESION, row=12, col=0)
    edit(editor, tool="point_delete", roi=LESION, point=xyz)
    assert editor.annotations.load().points == {LESION: [[9, 11, 0]]}
    with pytest.raises(EditRefused, match="has no point there"):
        edit(editor, tool="point_delete", roi=LESION, point=xyz)
    edit(editor, tool="point_delete", roi=LESION, point=[9, 11, 0])
    assert editor.annotations.load().points == {}
    assert not editor.annotations.load().bits.any()


def test_points_refused_on_area_rois_and_painting_on_point_rois(editor):
    with pytest.raises(EditRefused, match="Liver is an area ROI"):
        edit(editor, tool="point", roi=LIVER, row=1, col=1)
    with pytest.raises(EditRefused, match="Lesion is a point ROI"):
        edit(editor, tool="brush", roi=LESION, path="M1,1")
    with pytest.raises(EditRefused, match="Lesion is a point ROI"):
        edit(editor, tool="fill", roi=LESION, row=1, col=1)
    with pytest.raises(EditRefused, match="No ROI has mask value 99"):
        edit(editor, tool="brush", roi=99, path="M1,1")
    with pytest.raises(EditRefused, match="Slice 6 is outside 0..5"):
        edit(editor, tool="brush", index=6, path="M1,1")
    with pytest.raises(EditRefused, match="Frame 1 is outside"):
        edit(editor, tool="brush", frame=1, path="M1,1")
    assert editor.annotations.load().version == 0


# --------------------------------------------------------------------------- versions / slots
def test_stale_parent_is_a_version_conflict_and_changes_nothing(editor):
    edit(editor, tool="brush", path="M3,3")
    edit(editor, tool="brush", path="M6,6")
    bits = editor.annotations.load().bits.copy()
    with pytest.raises(VersionConflict, match="Reload"):
        edit(editor, parent=1, tool="brush", path="M8,8")
    with pytest.raises(VersionConflict):
        edit(editor, parent=1, tool="point", roi=LESION, row=1, col=1)
    state = editor.annotations.refresh()
    assert state.version == 2 and np.array_equal(state.bits, bits)


def test_a_new_roi_value_gets_a_new_slot(editor):
    edit(editor, tool="brush", roi=SPLEEN, path="M3,3")
    assert editor.annotations.load().slots == {SPLEEN: 0}
    edit(editor, tool="brush", roi=LIVER, path="M6,6")
    edit(editor, tool="brush", roi=SPLEEN, path="M6,8")
    state = editor.annotations.load()
    assert state.slots == {SPLEEN: 0, LIVER: 1}
    assert state.bits.dtype == np.uint8
    assert set(np.unique(state.bits)) == {0, 1, 2}


def test_more_than_eight_rois_widen_the_bits_and_keep_earlier_voxels(tmp_path, volume, series):
    extra = "".join(f'  - {{name: R{v}, color: "#123456", value: {v}}}\n' for v in range(10, 20))
    ed = SeriesEditor(config_for(tmp_path, extra=extra), volume, series, "ann")
    shape3 = volume.data.shape[:3]
    values = [LIVER, SPLEEN, *range(10, 18)]  # 10 area ROIs
    for n, value in enumerate(values):
        row, col = divmod(n, 5)
        edit(ed, tool="brush", roi=value, path=f"M{2 * col},{2 * row}", brush=1)
        state = ed.annotations.load()
        assert state.slots[value] == n
        assert state.bits.dtype == (np.uint8 if n < 8 else np.uint16)
    state = ed.annotations.refresh()
    for n, value in enumerate(values):
        row, col = divmod(n, 5)
        one = np.zeros((12, 10), bool)
        one[row * 2, col * 2] = True
        assert np.array_equal(mask(ed, value), canonical(shape3, "axial", 3, one)), value
    # a fresh store object reads the same widened state back from disk
    again = AnnotationStore(tmp_path / "annotations").series(SID, shape3).load()
    assert again.bits.dtype == np.uint16 and np.array_equal(again.bits, state.bits)
    assert again.slots == state.slots


def test_provenance_slices_of_each_plane(editor):
    edit(editor, tool="brush", plane="sagittal", index=4, path="M2,1L9,4", brush=2, depth=1)
    state = editor.annotations.load()
    assert sorted(k for k in state.provenance) == [("sagittal", 3), ("sagittal", 4),
                                                   ("sagittal", 5)]
    assert {rec["version"] for rec in state.provenance.values()} == {1}
