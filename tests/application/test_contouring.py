"""Semi-automatic contouring of a series: one version per action, provenance ``semi-auto`` per
slice drawn lighter until a person edits it, the paint rules, refusals that write nothing,
batch contouring as a job, and the audit line."""

from __future__ import annotations

import io

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from ril_dash.application import series_edits
from ril_dash.application.contouring import CONTOUR_JOB, contour_series, start_batch_contour
from ril_dash.application.jobs import job_store, work_for
from ril_dash.application.services import Services
from ril_dash.core.paint import Rules, roi_mask, set_slices
from ril_dash.core.planes import display_view
from ril_dash.errors import EditRefused
from ril_dash.jobs import DONE, run_job
from ril_dash.project.annotation_views import overlay_png, plane_summary
from ril_dash.project.contouring import parse_contour_request
from ril_dash.project.editing import EditRequest
from ril_dash.project.project import Project
from tests.application.conftest import actor

SERIES = "P1/sphere.nii.gz"
SHAPE = (64, 64, 12)
RADII = [0, 0, 0, 10, 13, 15, 16, 15, 13, 10, 0, 0]
YY, XX = np.mgrid[:64, :64]
YAML = """\
name: Contouring
images: images
rois:
  - {name: Liver, color: "#c8763c", value: 1}
  - {name: Spleen, color: "#00ff00", value: 2, locked: true}
"""


def disc(r, cy=32, cx=32):
    return (YY - cy) ** 2 + (XX - cx) ** 2 <= r * r


def dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture
def services(tmp_path):
    root = tmp_path / "proj"
    path = root / "images" / SERIES
    path.parent.mkdir(parents=True)
    data = np.zeros(SHAPE, np.float32)
    rng = np.random.default_rng(3)
    for z, r in enumerate(RADII):
        display_view(data, "axial", z)[:] = np.where(disc(r), 200.0, 40.0) if r else 40.0
    data += rng.normal(0, 8, SHAPE).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    (root / "project.yaml").write_text(YAML)
    return Services(Project.open(root), background_checkpoints=False)


def paint(services, masks: dict, value: int = 1) -> int:
    """Commit ``masks`` {axial slice: display mask} of ROI ``value`` as a manual version."""
    annotations = services.annotations(SERIES)
    state = annotations.refresh()
    slots = {**state.slots}
    slots.setdefault(value, len(slots))
    bits = np.zeros(SHAPE, np.uint8) if not state.slots else np.array(state.bits)
    delta = set_slices(bits, "axial", masks, slots[value], Rules("one_roi_per_voxel"))
    return annotations.commit(state.version, delta, {"user": "ana", "op": "paint"},
                              slots=slots if slots != state.slots else None)


def roi_on(services, z, value=1):
    state = services.annotations(SERIES).refresh()
    return roi_mask(display_view(state.bits, "axial", z), state.slots[value])


def request(tool, parent, index=6, **extra):
    return parse_contour_request({"tool": tool, "roi": 1, "plane": "axial", "index": index,
                                  "parent": parent, **extra})


def test_snap_is_one_version_with_semi_auto_provenance_drawn_lighter_until_edited(services):
    ana = actor("ana")
    v = paint(services, {6: disc(19, 34, 31)})       # rough: too big and off centre
    assert dice(roi_on(services, 6), disc(16)) < 0.85
    done, change = contour_series(services, ana, SERIES, request("snap", v))
    assert (done.version, change.version, done.slices) == (v + 1, v + 1, (6,))
    assert dice(roi_on(services, 6), disc(16)) > 0.95
    state = change.state
    assert state.provenance[("axial", 6)] == {"kind": "semi-auto", "model": None,
                                              "tool": "snap", "version": v + 1, "roi": 1}
    assert plane_summary(services.project.config, state, "axial")["drafted"] == [6]
    history = services.annotations(SERIES).versions(limit=1)[0]
    assert (history.op, history.tool, history.kind) == ("contour", "snap", "semi-auto")
    audit = services.audit.read(action="save")
    assert audit[0]["detail"] == {"version": v + 1, "tool": "semi-auto:snap", "slices": 1}

    def centre_colour(st):
        png = overlay_png(services.project.config, st, "axial", 6, opacity=1.0)
        return Image.open(io.BytesIO(png)).convert("RGBA").getpixel((32, 32))[:3]

    assert centre_colour(state) == (227, 186, 157)  # #c8763c halfway to white
    brush = EditRequest(tool="eraser", roi=1, plane="axial", index=6, parent=v + 1,
                        path="M26,26L27,27", brush=2)
    edited = series_edits.edit_series(services, ana, SERIES, brush).state
    assert edited.provenance[("axial", 6)]["kind"] == "manual"
    assert plane_summary(services.project.config, edited, "axial")["drafted"] == []
    assert centre_colour(edited) == (200, 118, 60)


@pytest.mark.parametrize("setup, tool, extra, message", [
    ({}, "snap", {}, "has no voxels on this slice"),
    ({6: disc(40)}, "snap", {}, "touches the edge of the image"),
    ({6: disc(16)}, "snap", {"params": {"band": 0}}, "'band' must be between 1 and 50"),
    ({6: disc(16)}, "interpolate", {}, "at least two slices"),
    ({6: disc(16)}, "batch", {"first": 0, "last": 2}, "no annotated slice from 0 to 2"),
])
def test_bad_input_is_refused_and_nothing_is_written(services, setup, tool, extra, message):
    v = paint(services, setup) if setup else 0
    with pytest.raises(EditRefused, match=message):
        contour_series(services, actor("ana"), SERIES, request(tool, v, **extra))
    assert services.annotations(SERIES).refresh().version == v


def test_a_locked_roi_is_refused(services):
    with pytest.raises(EditRefused, match="Spleen is locked"):
        contour_series(services, actor("ana"), SERIES,
                       parse_contour_request({"tool": "snap", "roi": 2, "plane": "axial",
                                              "index": 6, "parent": 0}))


def test_auto_contouring_fills_the_sphere_in_one_version_and_says_where_it_stopped(services):
    v = paint(services, {6: disc(16)})
    done, change = contour_series(services, actor("ana"), SERIES, request("auto", v))
    assert done.slices == (3, 4, 5, 7, 8, 9) and change.version == v + 1
    assert "down: stopped at slice 2 (the region vanished)" in done.message
    assert "up: stopped at slice 10 (the region vanished)" in done.message
    for z in done.slices:
        assert dice(roi_on(services, z), disc(RADII[z])) > 0.9
        assert change.state.provenance[("axial", z)]["tool"] == "auto"
    assert ("axial", 6) not in change.state.provenance or \
        change.state.provenance[("axial", 6)]["kind"] == "manual"


def test_auto_contouring_never_passes_the_user_limit(services):
    v = paint(services, {6: disc(16)})
    done, _ = contour_series(services, actor("ana"), SERIES, request("auto", v, limit=1))
    assert done.slices == (5, 7)
    assert "stopped at slice 4 (the slice limit was reached)" in done.message


def test_fill_between_slices_and_the_intensity_window(services):
    v = paint(services, {3: disc(10), 9: disc(10)})
    done, change = contour_series(services, actor("ana"), SERIES,
                                  request("interpolate", v, targets=[5, 6]))
    assert done.slices == (5, 6)
    assert np.array_equal(roi_on(services, 6), disc(10))
    assert change.state.provenance[("axial", 5)]["tool"] == "interpolate"
    assert not roi_on(services, 4).any()
    ranged = contour_series(services, actor("ana"), SERIES,
                            request("interpolate", v + 1, first=8, last=11))[0]
    assert ranged.slices == (8,)
    v += 1
    with pytest.raises(EditRefused, match="No empty slice between annotated slices lies in 0..2"):
        contour_series(services, actor("ana"), SERIES,
                       request("interpolate", v + 1, first=0, last=2))
    # a window that excludes the bright disc: every interpolated voxel is in it, none changes
    done, _ = contour_series(services, actor("ana"), SERIES,
                             request("interpolate", v + 1, threshold=[0, 100]))
    assert (done.version, done.slices) == (None, ())
    assert done.message.startswith("Filled 2 slices between annotated slices. Nothing changed")
    done, _ = contour_series(services, actor("ana"), SERIES,
                             request("interpolate", v + 1, threshold=[100, 300]))
    assert done.slices == (4, 7) and np.array_equal(roi_on(services, 7), disc(10))


def test_batch_contouring_runs_as_a_job_and_leaves_bad_slices_alone(services):
    v = paint(services, {4: disc(15), 5: disc(17), 8: disc(15), 2: disc(31)})
    job = start_batch_contour(services, actor("ana"), SERIES,
                              request("batch", v, first=2, last=8))
    assert job.kind == CONTOUR_JOB
    ended = run_job(job_store(services), job.id, work_for(CONTOUR_JOB, services))
    assert ended.state == DONE and list(ended.steps) == [4, 4]
    assert ended.result["slices"] == [4, 5, 8] and ended.result["version"] == v + 1
    assert ended.result["skipped"][0][0] == 2
    assert "Snapped 3 of 4 annotated slices" in ended.result["message"]
    assert dice(roi_on(services, 5), disc(15)) > 0.95
    from ril_dash.ui.components.job_views import outcome  # the Jobs page's line for it

    line = outcome(ended)[0].children
    assert line.startswith(f"Batch contouring of {SERIES}: Snapped 3 of 4 annotated slices.")
    assert line.endswith(f"(version {v + 1})")


def test_on_a_4d_series_the_tools_work_on_the_frame_on_screen(tmp_path):
    """Masks per frame: a snap on frame 1 changes frame 1, never frame 0."""
    root = tmp_path / "proj"
    path = root / "images" / "P1" / "cine.nii.gz"
    path.parent.mkdir(parents=True)
    data = np.full(SHAPE + (2,), 40.0, np.float32)
    display_view(data[..., 1], "axial", 6)[:] = np.where(disc(16), 200.0, 40.0)
    data += np.random.default_rng(4).normal(0, 8, data.shape).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    (root / "project.yaml").write_text(YAML)
    services = Services(Project.open(root), background_checkpoints=False)
    series = "P1/cine.nii.gz"
    frame1 = services.annotations(series, 1)
    state = frame1.refresh()
    bits = np.zeros(SHAPE, np.uint8)
    delta = set_slices(bits, "axial", {6: disc(19, 34, 31)}, 0, Rules("one_roi_per_voxel"))
    v = frame1.commit(state.version, delta, {"user": "ana", "op": "paint"}, slots={1: 0})
    done, change = contour_series(services, actor("ana"), series,
                                  parse_contour_request({"tool": "snap", "roi": 1,
                                                         "plane": "axial", "index": 6,
                                                         "parent": v, "frame": 1}))
    assert done.version == v + 1
    states = {f: services.annotations(series, f).refresh() for f in (0, 1)}
    on = {f: roi_mask(display_view(st.bits, "axial", 6), st.slots[1]) for f, st in states.items()}
    assert dice(on[1], disc(16)) > 0.95  # the frame on screen was snapped
    assert not on[0].any()               # the other frame is untouched
