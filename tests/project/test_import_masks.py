"""Importing masks: three layouts, every orientation, refusals, locked ROIs, overlap modes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ril_dash.core.volume import load_volume
from ril_dash.errors import ImportRefused
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.frames import frame_masks, series_annotations
from ril_dash.project.import_masks import import_masks, sanitise_name, series_stem
from ril_dash.project.project import Project, init_project

SHAPE = (7, 6, 5)
C, S = np.cos(0.3), np.sin(0.3)
AFFINES = {
    "las.nii.gz": np.diag([-1.0, 1.0, 2.0, 1.0]),
    "ras.nii.gz": np.diag([1.0, 1.0, 2.0, 1.0]),
    "lps.nii": np.diag([-0.8, -0.8, 2.5, 1.0]),
    "oblique.nii.gz": np.array([[C, -S, 0, 10], [S, C, 0, -5], [0, 0, 2, 3], [0, 0, 0, 1.0]]),
    "dyn4d.nii.gz": np.array([[0, 0, 2.0, 0], [-1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]]),
}
ROIS = [("Liver", 1, False), ("Left kidney", 2, False), ("Spleen", 4, True), ("Tumour", 8, False)]


def write_project(tmp_path: Path, overlap: str = "one_roi_per_voxel", rois=ROIS) -> Project:
    images = tmp_path / "images"
    for name, affine in AFFINES.items():
        rel = images / "P1" / "ST1" / name
        rel.parent.mkdir(parents=True, exist_ok=True)
        shape = SHAPE + (3,) if "4d" in name else SHAPE
        nib.save(nib.Nifti1Image(np.zeros(shape, np.int16), affine), rel)
    project = init_project(tmp_path / "proj", images)
    lines = [f"name: test\nimages: {images}\nannotations: annotations\n",
             f"settings:\n  overlap: {overlap}\n", "rois:\n"]
    for name, value, locked in rois:
        lines.append(f"  - name: {name}\n    color: \"#ff0000\"\n    value: {value}\n"
                     f"    locked: {str(locked).lower()}\n")
    (project.dir / "project.yaml").write_text("".join(lines))
    return Project.open(project.dir)


def file_shape(project, sid):
    return tuple(nib.load(project.series_path(sid)).shape[:3])


def random_labels(shape, seed, values=(0, 1, 2, 8)):
    rng = np.random.default_rng(seed)
    return rng.choice(np.array(values, np.uint8), size=shape)


def save(path: Path, data, affine):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), path)


def history_of(project, sid):
    vol = load_volume(project.series_path(sid))
    return series_annotations(AnnotationStore(project.config.annotations), sid,
                              vol.data.shape[:3], vol.n_frames)


def state_of(project, sid):
    """The latest state; for a 4D series with masks per frame, that of frame 0 after checking
    that every frame holds the same mask (what a 3D mask imported into it gives)."""
    vol = load_volume(project.series_path(sid))
    shape = vol.data.shape[:3]
    state = history_of(project, sid).refresh()
    if state.bits.shape != shape:
        frames = frame_masks(state.bits, shape, vol.n_frames)
        assert all(np.array_equal(frames[..., t], frames[..., 0]) for t in range(vol.n_frames))
        state = dataclasses.replace(state, bits=np.ascontiguousarray(frames[..., 0]))
    return vol, state


def roi_canonical(state, value):
    bit = state.slots[value]
    return (state.bits >> bit) & 1 != 0


def lock_spleen(project, sid):
    """Give the locked Spleen some voxels through an earlier version (a plain commit)."""
    vol, state = state_of(project, sid)
    store = AnnotationStore(project.config.annotations).series(sid, vol.data.shape[:3])
    bits = np.zeros(vol.data.shape[:3], np.uint8)
    bits[0, 0, :] = 1 << 0  # slot 0 = Spleen
    from ril_dash.core.paint import make_delta
    delta = make_delta(state.bits, tuple((0, n) for n in bits.shape), bits)
    store.commit(state.version, delta, {"user": "ann", "op": "paint"}, slots={4: 0})
    return bits


@pytest.mark.parametrize("layout", ["per_roi", "combined", "label_map"])
def test_three_layouts_every_orientation(tmp_path, layout):
    project = write_project(tmp_path)
    masks = tmp_path / "masks"
    expected = {}
    for i, sid in enumerate(s.id for s in project.series):
        affine = nib.load(project.series_path(sid)).affine
        labels = random_labels(file_shape(project, sid), i)
        expected[sid] = labels
        stem = masks / series_stem(sid)
        if layout == "per_roi":
            for name, value, _ in ROIS:
                if value != 4:
                    save(stem / f"{sanitise_name(name)}.nii.gz", (labels == value).astype(np.uint8),
                         affine)
        elif layout == "combined":
            save(stem / "combined.nii.gz", labels, affine)
        else:
            save(masks / sid, labels, affine)
    report = import_masks(project, masks)
    assert not report.errors, [e.error for e in report.errors]
    assert len(report.imported) == len(AFFINES)
    for sid, labels in expected.items():
        vol, state = state_of(project, sid)
        assert state.version == 1
        for value in (1, 2, 8):
            np.testing.assert_array_equal(roi_canonical(state, value),
                                          vol.to_canonical(labels == value))
        info = history_of(project, sid).versions()[0]
        assert (info.op, info.kind, info.tool, info.user) == ("import", "import", "import-masks",
                                                              "import")
    # importing the same masks again changes nothing
    again = import_masks(project, masks)
    assert all(s.version is None and s.ok for s in again.series)


def test_multi_label_combined_bitwise(tmp_path):
    project = write_project(tmp_path, overlap="multi_label")
    masks = tmp_path / "masks"
    sid = "P1/ST1/las.nii.gz"
    affine = AFFINES["las.nii.gz"]
    rng = np.random.default_rng(3)
    combined = rng.integers(0, 16, size=SHAPE, dtype=np.uint8) & 0b1011  # no locked Spleen (4)
    save(masks / "P1/ST1/las/combined.nii.gz", combined, affine)
    report = import_masks(project, masks)
    assert report.by_id(sid).version == 1, report.by_id(sid)
    vol, state = state_of(project, sid)
    for value in (1, 2, 8):
        np.testing.assert_array_equal(roi_canonical(state, value),
                                      vol.to_canonical((combined & value) != 0))
    assert ((state.bits != 0).sum(axis=None)) > 0


def test_overlap_modes_per_roi(tmp_path):
    sid = "P1/ST1/ras.nii.gz"
    affine = AFFINES["ras.nii.gz"]
    a = np.zeros(SHAPE, np.uint8)
    a[1:4] = 1
    b = np.zeros(SHAPE, np.uint8)
    b[3:6] = 1
    for overlap in ("multi_label", "one_roi_per_voxel"):
        root = tmp_path / overlap
        root.mkdir()
        project = write_project(root, overlap=overlap)
        save(root / "m/P1/ST1/ras/Liver.nii.gz", a, affine)
        save(root / "m/P1/ST1/ras/Tumour.nii.gz", b, affine)
        report = import_masks(project, root / "m")
        result = report.by_id(sid)
        if overlap == "multi_label":
            assert result.version == 1
            _, state = state_of(project, sid)
            assert roi_canonical(state, 1)[3].all() and roi_canonical(state, 8)[3].all()
        else:
            assert result.version is None and "overlap" in result.error
            assert "Liver" in result.error and "Tumour" in result.error
            assert not AnnotationStore(project.config.annotations).series(
                sid, SHAPE).has_annotations


@pytest.mark.parametrize("overlap", ["one_roi_per_voxel", "multi_label"])
def test_locked_roi_untouched(tmp_path, overlap):
    project = write_project(tmp_path, overlap=overlap)
    sid = "P1/ST1/ras.nii.gz"
    spleen = lock_spleen(project, sid)
    masks = tmp_path / "masks"
    liver = np.ones(SHAPE, np.uint8)  # covers the locked voxels too
    save(masks / "P1/ST1/ras/Liver.nii.gz", liver, AFFINES["ras.nii.gz"])
    save(masks / "P1/ST1/ras/Spleen.nii.gz", np.zeros(SHAPE, np.uint8), AFFINES["ras.nii.gz"])
    report = import_masks(project, masks)
    result = report.by_id(sid)
    assert result.version == 2 and result.rois == ["Liver"]
    assert any("Spleen is locked" in s for s in result.skipped)
    _, state = state_of(project, sid)
    np.testing.assert_array_equal(roi_canonical(state, 4), spleen != 0)
    liver_now = roi_canonical(state, 1)
    if overlap == "one_roi_per_voxel":
        np.testing.assert_array_equal(liver_now, spleen == 0)
        assert any("locked" in s and "voxels" in s for s in result.skipped)
    else:
        assert liver_now.all()


def test_replaces_previous_voxels_of_imported_rois_only(tmp_path):
    project = write_project(tmp_path, overlap="multi_label")
    sid = "P1/ST1/ras.nii.gz"
    masks = tmp_path / "masks"
    first = np.zeros(SHAPE, np.uint8)
    first[:3] = 1
    first[4:] = 8
    save(masks / sid, first, AFFINES["ras.nii.gz"])
    assert import_masks(project, masks).by_id(sid).version == 1
    second = np.zeros(SHAPE, np.uint8)
    second[5:] = 1
    masks2 = tmp_path / "masks2"
    save(masks2 / "P1/ST1/ras/Liver.nii.gz", second, AFFINES["ras.nii.gz"])
    assert import_masks(project, masks2).by_id(sid).version == 2
    _, state = state_of(project, sid)
    np.testing.assert_array_equal(roi_canonical(state, 1), second == 1)
    np.testing.assert_array_equal(roi_canonical(state, 8), first == 8)


def refused(tmp_path, build, *words):
    project = write_project(tmp_path)
    masks = tmp_path / "masks"
    good = "P1/ST1/las.nii.gz"
    save(masks / good, np.ones(SHAPE, np.uint8), AFFINES["las.nii.gz"])
    bad = build(masks)
    report = import_masks(project, masks, **({} if not isinstance(bad, dict) else bad))
    result = report.by_id("P1/ST1/ras.nii.gz")
    assert result.error is not None and result.version is None
    for word in words:
        assert word in result.error, (word, result.error)
    assert not AnnotationStore(project.config.annotations).series(
        "P1/ST1/ras.nii.gz", SHAPE).has_annotations
    assert report.by_id(good).version == 1  # the other series still imported
    return result.error


def test_wrong_shape(tmp_path):
    refused(tmp_path, lambda m: save(m / "P1/ST1/ras.nii.gz", np.ones((7, 6, 4), np.uint8),
                                     AFFINES["ras.nii.gz"]), "ras.nii.gz", "(7, 6, 4)", "shape")


def test_wrong_affine(tmp_path):
    aff = AFFINES["ras.nii.gz"].copy()
    aff[0, 3] = 0.5
    refused(tmp_path, lambda m: save(m / "P1/ST1/ras/Liver.nii.gz", np.ones(SHAPE, np.uint8),
                                     aff), "Liver.nii.gz", "affine")


def test_unmapped_values(tmp_path):
    labels = np.zeros(SHAPE, np.uint8)
    labels[0, 0, 0], labels[1, 1, 1] = 5, 9
    refused(tmp_path, lambda m: save(m / "P1/ST1/ras.nii.gz", labels, AFFINES["ras.nii.gz"]),
            "ras.nii.gz", "5, 9")


def test_unknown_roi_name(tmp_path):
    refused(tmp_path, lambda m: save(m / "P1/ST1/ras/Pancreas.nii.gz", np.ones(SHAPE, np.uint8),
                                     AFFINES["ras.nii.gz"]), "Pancreas.nii.gz")


def test_unreadable_file(tmp_path):
    def build(m):
        (m / "P1/ST1/ras").mkdir(parents=True)
        (m / "P1/ST1/ras/Liver.nii.gz").write_bytes(b"not a nifti at all")
    refused(tmp_path, build, "Liver.nii.gz", "not a readable NIfTI")


def test_mapping_json_and_csv(tmp_path):
    project = write_project(tmp_path)
    masks = tmp_path / "masks"
    labels = random_labels(SHAPE, 7, values=(0, 10, 20))
    save(masks / "P1/ST1/lps.nii", labels, AFFINES["lps.nii"])
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"rois": [{"value": 10, "name": "Liver"},
                                            {"value": 20, "name": "Left kidney"}]}))
    report = import_masks(project, masks, mapping=mapping)
    assert report.by_id("P1/ST1/lps.nii").version == 1
    vol, state = state_of(project, "P1/ST1/lps.nii")
    np.testing.assert_array_equal(roi_canonical(state, 2), vol.to_canonical(labels == 20))
    csv_map = tmp_path / "mapping.csv"
    csv_map.write_text("value,name\n10,Tumour\n20,Liver\n")
    report = import_masks(project, masks, mapping=csv_map)
    _, state = state_of(project, "P1/ST1/lps.nii")
    np.testing.assert_array_equal(roi_canonical(state, 8), vol.to_canonical(labels == 10))
    np.testing.assert_array_equal(roi_canonical(state, 1), vol.to_canonical(labels == 20))
    bad = tmp_path / "bad.csv"
    bad.write_text("value,name\n10,Pancreas\n")
    with pytest.raises(ImportRefused, match="Pancreas"):
        import_masks(project, masks, mapping=bad)
    with pytest.raises(ImportRefused, match="does not exist"):
        import_masks(project, tmp_path / "nowhere")


@pytest.mark.parametrize("overlap,combined", [("multi_label", True), ("multi_label", False),
                                              ("one_roi_per_voxel", True)])
def test_round_trip_import_of_export(tmp_path, overlap, combined):
    export = pytest.importorskip("ril_dash.project.export")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    source = write_project(tmp_path / "a", overlap=overlap)
    masks = tmp_path / "in"
    values = (0, 1, 2, 8, 9, 11) if overlap == "multi_label" else (0, 1, 2, 8)
    for i, sid in enumerate(s.id for s in source.series):
        labels = random_labels(file_shape(source, sid), 10 + i, values)
        if overlap == "multi_label":
            save(masks / series_stem(sid) / "combined.nii.gz", labels,
                 nib.load(source.series_path(sid)).affine)
        else:
            save(masks / sid, labels, nib.load(source.series_path(sid)).affine)
    assert len(import_masks(source, masks).imported) == len(AFFINES)
    out = tmp_path / "out"
    export.export_project(source, out, combined=combined, tables=False, excel=False)
    target = write_project(tmp_path / "b", overlap=overlap)
    report = import_masks(target, out / "masks", mapping=out / "mapping.json")
    assert not report.errors, [e.error for e in report.errors]
    for sid in (s.id for s in source.series):
        _, a = state_of(source, sid)
        _, b = state_of(target, sid)
        for value in (1, 2, 8):
            np.testing.assert_array_equal(roi_canonical(a, value), roi_canonical(b, value))
