"""Masks per frame of 4D series: exact voxels per frame, old shared masks, export, import, copy."""

from __future__ import annotations

import types
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ril_dash.core.paint import Rules
from ril_dash.core.volume import load_volume
from ril_dash.errors import EditRefused, VersionConflict
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.editing import SeriesEditor, parse_edit_request
from ril_dash.project.export import export_project, mask_folder_name
from ril_dash.project.frames import (
    FrameAnnotations,
    copy_roi_to_frames,
    frame_masks,
    is_per_frame,
    series_annotations,
)
from ril_dash.project.history import read_version, version_name
from ril_dash.project.import_masks import import_masks, series_stem
from ril_dash.project.project import Project

SID = "P1/cine.nii.gz"
FILE_SHAPE = (6, 5, 4, 3)  # X, Y, Z, T
AFFINE = np.array([[0, 0, 2.0, 5], [-1.0, 0, 0, 7], [0, 1.5, 0, -3], [0, 0, 0, 1]])  # oblique order
YAML = """name: cine
images: images
annotations: annotations
settings: {overlap: one_roi_per_voxel}
rois:
  - {name: Myocardium, color: "#ff0000", value: 1}
  - {name: Blood pool, color: "#00ff00", value: 2}
"""


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    path = tmp_path / "images" / SID
    path.parent.mkdir(parents=True)
    img = nib.Nifti1Image(np.arange(np.prod(FILE_SHAPE), dtype=np.int16).reshape(FILE_SHAPE),
                          AFFINE)
    img.header.set_zooms((1.0, 1.5, 2.0, 0.04))
    nib.save(img, path)
    (tmp_path / "project.yaml").write_text(YAML)
    return Project.open(tmp_path)


def _whole(project):
    vol = load_volume(project.series_path(SID))
    store = AnnotationStore(project.config.annotations)
    return vol, series_annotations(store, SID, vol.data.shape[:3], vol.n_frames)


def _paint(project, frame, index=1, roi=1, path="M1,1L2,2"):
    vol, whole = _whole(project)
    per_frame = is_per_frame(whole, vol.data.shape[:3])  # else: an old mask shared by all frames
    view = FrameAnnotations(whole, frame, vol.n_frames) if per_frame else whole
    editor = SeriesEditor(project.config, vol, view, "ana")
    req = parse_edit_request({"tool": "brush", "roi": roi, "plane": "axial", "index": index,
                              "parent": whole.version, "frame": frame, "path": path,
                              "brush": 1})
    return editor.apply(req), vol, whole


def test_painting_a_frame_changes_that_frame_only(project):
    version, vol, whole = _paint(project, 2)
    assert version == 1 and is_per_frame(whole, vol.data.shape[:3])
    x, y, z = vol.data.shape[:3]
    assert whole.shape == (x, y, z * 3)
    frames = frame_masks(whole.load().bits, (x, y, z), 3)
    painted = np.argwhere(frames)
    assert len(painted) and set(painted[:, 3]) == {2} and set(painted[:, 2]) == {1}
    # the frame views agree with the whole, exactly
    for t in range(3):
        view = FrameAnnotations(whole, t, 3).load()
        assert view.bits.shape == (x, y, z)
        assert np.array_equal(view.bits, frames[..., t])
    meta = read_version(whole.folder / "v" / version_name(1), arrays=False).meta
    assert meta["frame"] == 2 and {s["plane"] for s in meta["slices"]} == {"axial@2"}
    # per-slice provenance is per frame
    assert FrameAnnotations(whole, 2, 3).load().provenance[("axial", 1)]["kind"] == "manual"
    assert FrameAnnotations(whole, 0, 3).load().provenance == {}
    # a new store (another process) reads the same
    _, again = _whole(project)
    assert np.array_equal(again.refresh().bits, whole.load().bits)


def test_frame_out_of_range_refused(project):
    _, whole = _whole(project)
    with pytest.raises(EditRefused, match="Frame 3 is outside 0..2"):
        FrameAnnotations(whole, 3, 3)


def test_old_shared_mask_is_read_as_all_frames(project, tmp_path):
    vol = load_volume(project.series_path(SID))
    shape = vol.data.shape[:3]
    store = AnnotationStore(project.config.annotations)
    old = store.series(SID, shape)  # how 4D series were annotated before masks per frame
    after = np.zeros(shape, np.uint8)
    after[1:3, 2, 1] = 1
    old.commit(0, types.SimpleNamespace(box=((0, shape[0]), (0, shape[1]), (0, shape[2])),
                                        before=np.zeros(shape, np.uint8), after=after),
               {"user": "ana", "op": "paint"}, slots={1: 0})
    fresh = AnnotationStore(project.config.annotations)
    whole = series_annotations(fresh, SID, shape, 3)
    assert whole.shape == shape and not is_per_frame(whole, shape)
    # an edit on frame 2 changes the one shared mask, as before
    version, _, _ = _paint(project, 2, index=3)
    assert version == 2 and whole.refresh().bits.shape == shape
    # export: the source's 4D shape, the shared mask in every frame
    export_project(project, tmp_path / "out")
    img = nib.load(tmp_path / "out/masks" / mask_folder_name(SID) / "Myocardium.nii.gz")
    assert img.shape == FILE_SHAPE
    data = np.asanyarray(img.dataobj)
    assert all(np.array_equal(data[..., t], data[..., 0]) for t in range(3))
    assert np.array_equal(data[..., 0], vol.to_file_order(whole.load().bits & 1))
    # copying between frames makes no sense there
    with pytest.raises(EditRefused, match="one mask for all its frames"):
        copy_roi_to_frames(whole, shape, 3, 1, 0, [1], Rules("one_roi_per_voxel"), "ana")


def test_export_has_the_source_shape_and_only_the_painted_frame(project, tmp_path):
    _, vol, whole = _paint(project, 1)
    report = export_project(project, tmp_path / "out")
    assert report.exported == [SID]
    src = nib.load(project.series_path(SID))
    folder = tmp_path / "out/masks" / mask_folder_name(SID)
    for name in ("Myocardium.nii.gz", "combined.nii.gz"):
        img = nib.load(folder / name)
        assert img.shape == src.shape == FILE_SHAPE
        assert np.array_equal(img.affine, src.affine)
        assert img.header.get_zooms() == src.header.get_zooms()
        data = np.asanyarray(img.dataobj)
        assert data[..., 0].sum() == 0 and data[..., 2].sum() == 0
        view = FrameAnnotations(whole, 1, 3).load().bits
        assert np.array_equal(data[..., 1], vol.to_file_order(view & 1))
        assert data[..., 1].sum() > 0


def test_import_of_a_4d_mask_round_trips(project, tmp_path):
    vol = load_volume(project.series_path(SID))
    rng = np.random.default_rng(4)
    labels = rng.choice(np.array([0, 1, 2], np.uint8), size=FILE_SHAPE, p=[0.6, 0.2, 0.2])
    labels[..., 0] = 0  # frame 0 empty
    masks = tmp_path / "masks"
    (masks / series_stem(SID)).mkdir(parents=True)
    nib.save(nib.Nifti1Image(labels, AFFINE), masks / series_stem(SID) / "combined.nii.gz")
    report = import_masks(project, masks)
    assert not report.errors and report.by_id(SID).version == 1
    _, whole = _whole(project)
    frames = frame_masks(whole.refresh().bits, vol.data.shape[:3], 3)
    for t in range(3):
        for value, bit in whole.load().slots.items():
            want = vol.to_canonical(labels[..., t] == value)
            assert np.array_equal((frames[..., t] >> bit) & 1 == 1, want), (t, value)
    # exported again, the same labels come back
    export_project(project, tmp_path / "out")
    combined = nib.load(tmp_path / "out/masks" / mask_folder_name(SID) / "combined.nii.gz")
    assert np.array_equal(np.asanyarray(combined.dataobj), labels)
    # a mask with a wrong number of frames is refused with the series' shape
    nib.save(nib.Nifti1Image(labels[..., :2], AFFINE), masks / series_stem(SID) / "combined.nii.gz")
    result = import_masks(project, masks).by_id(SID)
    assert result.version is None and "(6, 5, 4, 3)" in result.error


def test_3d_mask_imported_into_a_4d_series_sets_every_frame(project, tmp_path):
    vol = load_volume(project.series_path(SID))
    mask = np.zeros(FILE_SHAPE[:3], np.uint8)
    mask[2, 3, 1] = 1
    masks = tmp_path / "masks"
    (masks / series_stem(SID)).mkdir(parents=True)
    nib.save(nib.Nifti1Image(mask, AFFINE), masks / series_stem(SID) / "Myocardium.nii.gz")
    assert import_masks(project, masks).by_id(SID).version == 1
    _, whole = _whole(project)
    frames = frame_masks(whole.refresh().bits, vol.data.shape[:3], 3)
    for t in range(3):
        assert np.array_equal(frames[..., t] & 1, vol.to_canonical(mask))


def test_copy_to_frames_is_one_undoable_version(project):
    _, vol, whole = _paint(project, 0)
    _paint(project, 2, roi=2, path="M0,0L4,4")  # frame 2 has another ROI in the way
    x, y, z = vol.data.shape[:3]
    before = whole.refresh().bits.copy()
    assert (frame_masks(before, (x, y, z), 3)[..., 2] & 2).any()
    rules = Rules("one_roi_per_voxel")
    with pytest.raises(VersionConflict):
        copy_roi_to_frames(whole, (x, y, z), 3, 1, 0, [1, 2], rules, "ana", parent=1)
    version = copy_roi_to_frames(whole, (x, y, z), 3, 1, 0, [0, 1, 2], rules, "ana", parent=2)
    assert version == 3
    info = whole.versions()[0]
    assert (info.op, info.roi) == ("copy_frames", 1)
    frames = frame_masks(whole.load().bits, (x, y, z), 3)
    source = frames[..., 0] & 1
    for t in (1, 2):
        assert np.array_equal(frames[..., t] & 1, source)
    # one ROI per voxel: the copied ROI took its voxels from the other ROI in frame 2 only
    old2 = frame_masks(before, (x, y, z), 3)[..., 2]
    assert np.array_equal(frames[..., 2] & 2, np.where(source == 1, 0, old2 & 2))
    assert whole.undo("ana") == 4
    assert np.array_equal(whole.load().bits, before)
    assert whole.redo("ana") == 5 and np.array_equal(frame_masks(
        whole.load().bits, (x, y, z), 3)[..., 1] & 1, source)


def test_copy_to_frames_refusals(project):
    _, vol, whole = _paint(project, 0)
    x, y, z = vol.data.shape[:3]
    rules = Rules("one_roi_per_voxel")
    with pytest.raises(EditRefused, match="has no voxels in frame 1"):
        copy_roi_to_frames(whole, (x, y, z), 3, 1, 1, [2], rules, "ana")
    with pytest.raises(EditRefused, match="within 0..2"):
        copy_roi_to_frames(whole, (x, y, z), 3, 1, 0, [5], rules, "ana")
    with pytest.raises(EditRefused, match="other than the source"):
        copy_roi_to_frames(whole, (x, y, z), 3, 1, 0, [0], rules, "ana")
    with pytest.raises(EditRefused, match="locked"):
        copy_roi_to_frames(whole, (x, y, z), 3, 1, 0, [1],
                           Rules("one_roi_per_voxel", locked_bits=1), "ana")
    assert whole.version == 1


def test_a_3d_series_is_stored_as_before(tmp_path):
    store = AnnotationStore(tmp_path / "ann")
    s = series_annotations(store, "a.nii", (4, 4, 2), 1)
    assert s.shape == (4, 4, 2) and not is_per_frame(s, (4, 4, 2))
    with pytest.raises(EditRefused, match="one frame"):
        copy_roi_to_frames(s, (4, 4, 2), 1, 1, 0, [1], Rules("multi_label"), "ana")


def test_history_names_the_frame_of_voxel_edits_only(project):
    _, vol, whole = _paint(project, 2)
    view = FrameAnnotations(whole, 1, vol.n_frames)
    view.commit(1, None, {"user": "ana", "op": "texts"}, texts={"Phase": "systole"})
    texts, paint = whole.versions()
    assert (paint.op, paint.frame) == ("paint", 2)
    assert (texts.op, texts.frame) == ("texts", None)
    other = FrameAnnotations(whole, 0, 3).load()
    assert view.load().texts == other.texts == {"Phase": "systole"}
