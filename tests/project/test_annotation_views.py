"""Read-only views of a series' annotations: overlay PNGs, plane summaries, ROI statistics.

States are built by committing known masks to a real store (one of them as a model draft);
every view is compared with the same quantity computed here with numpy.
"""

from __future__ import annotations

import io
import types

import numpy as np
import pytest
from PIL import Image

from ril_dash.core.planes import (
    PLANES,
    canonical_to_display,
    display_to_canonical,
    display_view,
    plane_axes,
)
from ril_dash.core.volume import Volume
from ril_dash.errors import EditRefused
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.annotation_views import overlay_png, plane_summary, roi_stats
from ril_dash.project.schema import parse_project_yaml

SHAPE = (9, 8, 7)
SID = "P1/mr.nii.gz"
RED, GREEN = (255, 0, 0), (0, 128, 255)
YAML = """\
name: T
images: imgs
rois:
  - {name: Liver, color: "#ff0000", value: 1}
  - {name: Spleen, color: "#0080ff", value: 2}
  - {name: Lesion, color: "#ffff00", value: 3, type: point}
"""


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        assert img.mode == "P" and "transparency" in img.info  # a palette with alpha
        return np.asarray(img.convert("RGBA")).copy()


def commit(series, value, bit, mask, *, kind="manual", slices=(), points=None):
    state = series.refresh()
    bits = np.asarray(state.bits)
    new = np.where(mask, bits | np.uint8(1 << bit), bits)
    delta = types.SimpleNamespace(box=((0, SHAPE[0]), (0, SHAPE[1]), (0, SHAPE[2])),
                                  before=bits.copy(), after=new.astype(bits.dtype))
    meta = {"user": "ann", "op": "paint", "roi": value,
            "provenance": {"kind": kind, "model": "draft@1" if kind == "model" else None},
            "slices": [{"plane": p, "index": i, "roi": value} for p, i in slices]}
    return series.commit(state.version, delta, meta, points=points,
                         slots={**state.slots, value: bit})


@pytest.fixture
def world(tmp_path):
    config = parse_project_yaml(YAML, project_dir=tmp_path)
    series = AnnotationStore(tmp_path / "annotations").series(SID, SHAPE)
    liver = np.zeros(SHAPE, bool)
    liver[2:6, 1:4, 1:3] = True
    liver[3, 2, 5] = True  # a second run of axial slices
    spleen = np.zeros(SHAPE, bool)
    spleen[5:8, 4:7, 2] = True  # beside Liver on axial slice 2
    commit(series, 1, 0, liver, slices=[("axial", 1), ("axial", 2), ("axial", 5)])
    commit(series, 2, 1, spleen, kind="model", slices=[("axial", 2)])
    points = {3: [[1, 2, 3], [8, 0, 6]]}
    series.commit(series.load().version, None,
                  {"user": "ann", "op": "points", "roi": 3}, points=points)
    data = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE) * 0.5 - 20
    volume = Volume(data, np.diag([1.5, 2.0, 4.0, 1.0]))
    return types.SimpleNamespace(config=config, series=series, state=series.load(),
                                 liver=liver, spleen=spleen, volume=volume, points=points)


def test_overlay_none_on_empty_slices_and_hidden_rois(world):
    assert overlay_png(world.config, world.state, "axial", 0) is None
    assert overlay_png(world.config, world.state, "axial", 6) is None
    assert overlay_png(world.config, world.state, "axial", 1) is not None
    # axial 5 holds only the single Liver voxel: hiding Liver leaves nothing
    assert overlay_png(world.config, world.state, "axial", 5, hidden=frozenset({1})) is None
    # hidden Spleen on slice 2 (a model draft, so lighter): only Liver's colour remains
    rgba = decode(overlay_png(world.config, world.state, "axial", 2, hidden=frozenset({2})))
    shown = rgba[..., 3] > 0
    assert np.array_equal(shown, display_view(world.liver, "axial", 2))
    assert np.abs(rgba[shown][:, :3].astype(int) - [255, 128, 128]).max() <= 1
    rgba = decode(overlay_png(world.config, world.state, "axial", 1, hidden=frozenset({2})))
    assert (rgba[rgba[..., 3] > 0][:, :3] == RED).all()


def test_fill_and_outline_put_the_colour_on_the_roi_voxels(world):
    liver2d = display_view(world.liver, "axial", 1)
    rgba = decode(overlay_png(world.config, world.state, "axial", 1, opacity=0.5))
    assert rgba.shape == (8, 9, 4)  # rows = Y, cols = X
    assert np.array_equal(rgba[..., 3] > 0, liver2d)
    assert (rgba[liver2d][:, :3] == RED).all()
    alphas = set(rgba[liver2d][:, 3].tolist())
    assert alphas == {255, 128}  # solid outline, filled inside at the opacity
    outline = decode(overlay_png(world.config, world.state, "axial", 1, style="outline"))
    edge = outline[..., 3] == 255
    assert edge.any() and np.array_equal(outline[..., 3] > 0, edge)
    assert np.array_equal(edge, rgba[..., 3] == 255)
    assert (edge <= liver2d).all() and edge.sum() < liver2d.sum()
    # the one-voxel slice is all outline
    single = decode(overlay_png(world.config, world.state, "axial", 5))
    assert np.array_equal(single[..., 3] == 255, display_view(world.liver, "axial", 5))


def test_model_drafted_slices_are_drawn_lighter(world):
    rgba = decode(overlay_png(world.config, world.state, "axial", 2, opacity=1.0))
    spleen2d, liver2d = (display_view(m, "axial", 2) for m in (world.spleen, world.liver))
    light = [round(c + (255 - c) * 0.5) for c in GREEN]
    assert np.abs(rgba[spleen2d][:, :3].astype(int) - light).max() <= 1
    # on a drafted slice every ROI is lighter; a manual slice keeps the plain colour
    assert np.abs(rgba[liver2d & ~spleen2d][:, :3].astype(int) - [255, 128, 128]).max() <= 1
    manual = decode(overlay_png(world.config, world.state, "axial", 1, opacity=1.0))
    assert (manual[display_view(world.liver, "axial", 1)][:, :3] == RED).all()
    # other planes have no model provenance: plain colours there
    cor = decode(overlay_png(world.config, world.state, "coronal", 5, opacity=1.0))
    assert (cor[display_view(world.spleen, "coronal", 5)][:, :3] == GREEN).all()
    assert plane_summary(world.config, world.state, "axial")["drafted"] == [2]
    assert plane_summary(world.config, world.state, "coronal")["drafted"] == []
    info = world.series.versions()
    assert [(v.op, v.kind, v.model) for v in info][1] == ("paint", "model", "draft@1")


def runs(present: np.ndarray) -> list[list[int]]:
    idx = np.flatnonzero(present)
    out = []
    for i in idx:
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([int(i), int(i) + 1])
    return out


@pytest.mark.parametrize("plane", PLANES)
def test_plane_summary_ranges_and_points(world, plane):
    summary = plane_summary(world.config, world.state, plane)
    axis = plane_axes(plane)[0]
    other = tuple(a for a in range(3) if a != axis)
    expected = {1: runs(world.liver.any(axis=other)), 2: runs(world.spleen.any(axis=other))}
    point_slices = sorted({p[axis] for p in world.points[3]})
    expected[3] = [[i, i + 1] for i in point_slices]
    assert summary["ranges"] == expected
    assert len(summary["points"]) == 2
    for p in summary["points"]:
        assert p["roi"] == 3 and p["xyz"] in world.points[3]
        back = display_to_canonical(SHAPE, plane, p["index"], p["row"], p["col"])
        assert [int(c) for c in back] == p["xyz"]
        assert (p["index"], p["row"], p["col"]) == canonical_to_display(SHAPE, plane, p["xyz"])
        rows, cols = display_view(world.liver, plane, p["index"]).shape
        assert 0 <= p["row"] < rows and 0 <= p["col"] < cols


def test_plane_summary_axial_values(world):
    summary = plane_summary(world.config, world.state, "axial")
    assert summary["ranges"][1] == [[1, 3], [5, 6]]
    assert summary["ranges"][2] == [[2, 3]]
    assert summary["ranges"][3] == [[3, 4], [6, 7]]
    # radiological display: row = Y - 1 - y, col = X - 1 - x
    corner = next(p for p in summary["points"] if p["xyz"] == [8, 0, 6])
    assert (corner["index"], corner["row"], corner["col"]) == (6, 7, 0)


def test_roi_stats_volume_and_slice_match_numpy(world):
    image = world.volume.data[..., 0]
    result = roi_stats(world.config, world.state, world.volume, 1)
    stats = result["stats"]
    values = image[world.liver]
    assert (result["roi"], result["name"], result["scope"]) == (1, "Liver", "volume")
    assert stats["count"] == world.liver.sum() == 25
    assert stats["volume_ml"] == pytest.approx(25 * 1.5 * 2.0 * 4.0 / 1000)
    assert stats["mean"] == pytest.approx(values.mean())
    assert stats["sd"] == pytest.approx(values.std())
    assert (stats["min"], stats["max"]) == (pytest.approx(values.min()),
                                            pytest.approx(values.max()))
    assert stats["median"] == pytest.approx(np.median(values))
    assert stats["p95"] == pytest.approx(np.percentile(values, 95))
    assert [list(b) for b in stats["bbox"]] == [[2, 5], [1, 3], [1, 5]]
    assert sum(result["histogram"]["counts"]) == 25

    sl = roi_stats(world.config, world.state, world.volume, 2, plane="coronal", index=5)
    on = np.zeros(SHAPE, bool)
    on[:, 5, :] = True
    values = image[world.spleen & on]
    assert sl["scope"] == "slice" and sl["stats"]["count"] == values.size == 3
    assert sl["stats"]["mean"] == pytest.approx(values.mean())
    assert [list(b) for b in sl["stats"]["bbox"]] == [[5, 7], [5, 5], [2, 2]]
    # a slice without the ROI; an ROI that has no slot yet; an unknown ROI
    assert roi_stats(world.config, world.state, world.volume, 1, plane="axial",
                     index=0)["stats"]["count"] == 0
    assert roi_stats(world.config, world.state, world.volume, 3)["stats"]["count"] == 0
    with pytest.raises(EditRefused, match="No ROI has mask value 7"):
        roi_stats(world.config, world.state, world.volume, 7)


def test_views_of_an_old_version(world):
    old = world.series.state_at(1)
    assert overlay_png(world.config, old, "axial", 2, hidden=frozenset()) is not None
    summary = plane_summary(world.config, old, "axial")
    assert summary["ranges"] == {1: [[1, 3], [5, 6]]} and summary["points"] == []
    assert summary["drafted"] == []
    assert plane_summary(world.config, world.series.state_at(0), "axial")["ranges"] == {}
