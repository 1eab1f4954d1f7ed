"""Tests for export_project: aligned masks, combined OR, points, mapping, tables, safety."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from ril_dash.core.volume import load_volume
from ril_dash.errors import ExportError
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.export import (
    check_output_dir,
    export_project,
    mask_folder_name,
    sanitise_name,
)
from ril_dash.project.project import Project

PROJECT_YAML = """\
name: Export test
images: images
annotations: annotations
settings:
  overlap: multi_label
rois:
  - name: Liver
    radlex: RID58
    color: "#a0522d"
    value: 1
  - name: Tumour / core
    color: "#ff0000"
    value: 2
  - name: Vessel
    radlex: RID1
    color: "#00ff00"
    value: 4
  - name: Landmark
    color: "#0000ff"
    value: 8
    type: point
"""

SHAPE = (7, 6, 5)
OBLIQUE = np.array([[0.9, -0.3, 0.1, 10.0], [0.3, 0.9, -0.2, -5.0], [0.0, 0.2, 2.0, 3.0],
                    [0, 0, 0, 1.0]])
SOURCES = {  # id → (affine, qform code, sform code, shape)
    "P1/ST1/las.nii.gz": (np.diag([-1.0, 1.0, 2.0, 1.0]), 1, 1, SHAPE),
    "P1/ST1/ras.nii.gz": (np.diag([0.8, 0.8, 2.5, 1.0]), 2, 0, SHAPE),
    "P2/lps.nii": (np.diag([-1.0, -1.0, 1.5, 1.0]), 0, 2, SHAPE),
    "P2/oblique.nii.gz": (OBLIQUE, 1, 4, SHAPE),
    "P3/dyn4d.nii.gz": (np.diag([-1.2, 1.2, 3.0, 1.0]), 1, 1, SHAPE + (3,)),
}


def _save(path: Path, affine, qcode, scode, shape) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(len(str(path))).integers(-50, 200, shape).astype(np.int16)
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, qcode)
    img.set_sform(affine, scode)
    nib.save(img, str(path))


def _annotate(store: AnnotationStore, series_id: str, shape, seed: int, points=None):
    """Random overlapping multi-ROI annotations; returns the committed canonical bits."""
    rng = np.random.default_rng(seed)
    after = np.zeros(shape, np.uint8)
    for bit in range(3):
        after |= (rng.random(shape) < 0.3).astype(np.uint8) << bit
    after[0, 0, 0] = 0b111  # all three ROIs overlap here
    delta = types.SimpleNamespace(box=tuple((0, n) for n in shape),
                                  before=np.zeros(shape, np.uint8), after=after)
    s = store.series(series_id, shape)
    s.commit(0, delta, {"user": "t", "op": "paint"}, slots={1: 0, 2: 1, 4: 2, 8: 3},
             points=points)
    return after


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    for i, (sid, (aff, q, s, shape)) in enumerate(SOURCES.items()):
        _save(tmp_path / "images" / sid, aff, q, s, shape)
    _save(tmp_path / "images" / "P9" / "blank.nii.gz", np.eye(4), 1, 1, SHAPE)  # not annotated
    (tmp_path / "project.yaml").write_text(PROJECT_YAML)
    project = Project.open(tmp_path)
    store = AnnotationStore(project.config.annotations)
    project.expected = {}
    for i, sid in enumerate(SOURCES):
        canonical = load_volume(project.series_path(sid)).data.shape[:3]
        pts = {8: [[1, 2, 3], [6, 5, 4]]} if sid.endswith("oblique.nii.gz") else None
        project.expected[sid] = _annotate(store, sid, canonical, i, pts)
    return project


def test_masks_aligned_with_sources(project: Project, tmp_path: Path) -> None:
    report = export_project(project, tmp_path / "out")
    assert sorted(report.exported) == sorted(SOURCES)
    assert ("P9/blank.nii.gz", "no annotations") in report.skipped
    for sid, expected in project.expected.items():
        src = nib.load(project.series_path(sid))
        vol = load_volume(project.series_path(sid))
        folder = tmp_path / "out" / "masks" / mask_folder_name(sid)
        names = {"Liver": 0, "Tumour_core": 1, "Vessel": 2}
        # the 4D source was annotated with one (X, Y, Z) mask (before masks per frame): the
        # export has the source's 4D shape with that mask in every frame
        def every_frame(arr):
            return arr if len(src.shape) == 3 else np.stack([arr] * src.shape[3], axis=-1)
        for name, bit in names.items():
            img = nib.load(folder / f"{name}.nii.gz")
            assert img.shape == src.shape
            assert np.array_equal(img.affine, src.affine)
            assert img.header.get_qform(coded=True)[1] == src.header.get_qform(coded=True)[1]
            assert img.header.get_sform(coded=True)[1] == src.header.get_sform(coded=True)[1]
            assert img.header.get_zooms() == src.header.get_zooms()
            assert img.get_data_dtype() == np.uint8
            want = every_frame(vol.to_file_order((expected >> bit) & 1))
            assert np.array_equal(np.asanyarray(img.dataobj), want)
        comb = nib.load(folder / "combined.nii.gz")
        lut = np.array([(c & 1) | (c & 2) | (c & 4) for c in range(256)], np.uint8)
        assert np.array_equal(np.asanyarray(comb.dataobj),
                              every_frame(vol.to_file_order(lut[expected])))
        assert np.array_equal(comb.affine, src.affine) and comb.shape == src.shape
        assert not (folder / "Landmark.nii.gz").exists()  # point ROI: no mask


def test_combined_needs_uint16_for_large_values(tmp_path: Path) -> None:
    from ril_dash.project.export import _combined
    bits = np.array([[[0, 1, 2, 3]]], np.uint8)
    out = _combined(bits, {1: 0, 256: 1})
    assert out.dtype == np.uint16 and out.ravel().tolist() == [0, 1, 256, 257]
    bits32 = np.array([[[0, 1, 2, 3]]], np.uint32)
    assert _combined(bits32, {1: 0, 4: 1}).ravel().tolist() == [0, 1, 4, 5]


def test_mapping_points_and_tables(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = export_project(project, out)
    doc = json.loads((out / "mapping.json").read_text())
    assert doc["combined"] == "bitwise OR of values"
    assert doc["rois"][0] == {"value": 1, "name": "Liver", "radlex": "RID58",
                              "color": "#a0522d", "type": "area"}
    assert [r["value"] for r in doc["rois"]] == [1, 2, 4, 8]
    mapping = pd.read_csv(out / "mapping.csv")
    assert list(mapping.columns) == ["value", "name", "radlex", "color", "type"]
    assert mapping["type"].tolist() == ["area", "area", "area", "point"]

    pts = pd.read_csv(out / "points.csv")
    assert len(pts) == 2 == report.n_points
    sid = "P2/oblique.nii.gz"
    vol = load_volume(project.series_path(sid))
    src_affine = nib.load(project.series_path(sid)).affine
    for row, canon in zip(pts.itertuples(), [[1, 2, 3], [6, 5, 4]]):
        assert row.series == sid and row.roi == "Landmark"
        probe = np.zeros(vol.data.shape[:3], np.uint8)
        probe[tuple(canon)] = 1
        assert tuple(np.argwhere(vol.to_file_order(probe))[0]) == (row.i, row.j, row.k)
        world = src_affine @ [row.i, row.j, row.k, 1]
        assert np.allclose([row.x_mm, row.y_mm, row.z_mm], world[:3], atol=1e-3)

    stats = pd.read_csv(out / "roi_statistics.csv")
    assert list(stats.columns) == ["series", "roi", "count", "volume_ml", "mean", "sd", "min",
                                   "max", "median", "p5", "p25", "p75", "p95"]
    assert len(stats) == 3 * (len(SOURCES) - 1) + 3 * 3  # the 4D series: a row per frame
    dyn = stats[stats.series == "P3/dyn4d.nii.gz"]
    assert dyn.roi.tolist()[:3] == ["Liver [frame 0]", "Liver [frame 1]", "Liver [frame 2]"]
    row = stats[(stats.series == "P1/ST1/las.nii.gz") & (stats.roi == "Liver")].iloc[0]
    assert row["count"] == int((project.expected["P1/ST1/las.nii.gz"] & 1).sum())

    from openpyxl import load_workbook
    book = load_workbook(out / "ril_dash_export.xlsx")
    assert book.sheetnames == ["statistics", "points", "mapping"]
    assert [c.value for c in book["statistics"][1]] == list(stats.columns)
    assert book["mapping"]["B2"].value == "Liver"
    assert book["statistics"].column_dimensions["A"].width >= len("P1/ST1/las.nii.gz")
    sheets = pd.read_excel(out / "ril_dash_export.xlsx", sheet_name=None)
    assert len(sheets["statistics"]) == len(stats) and len(sheets["points"]) == 2


def test_series_selection_and_options(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = export_project(project, out, series="P1/*", per_roi=False, excel=False,
                            points=False)
    assert sorted(report.exported) == ["P1/ST1/las.nii.gz", "P1/ST1/ras.nii.gz"]
    assert sorted(p.name for p in (out / "masks/P1/ST1/las").iterdir()) == ["combined.nii.gz"]
    assert not (out / "ril_dash_export.xlsx").exists() and not (out / "points.csv").exists()
    report = export_project(project, out, series=["P2/lps.nii", "nope.nii"],
                            copy_images=True, copy_annotations=True)
    assert report.exported == ["P2/lps.nii"] and report.skipped[0][0] == "nope.nii"
    assert (out / "images/P2/lps.nii").read_bytes() == project.series_path("P2/lps.nii").read_bytes()
    assert (out / "annotations/P2/lps.nii.ril/v").is_dir()
    assert not list((out / "annotations/P2").glob(".*"))


def test_unreadable_series_skipped(project: Project, tmp_path: Path) -> None:
    project.series_path("P2/lps.nii").write_bytes(b"not a nifti")
    report = export_project(project, tmp_path / "out")
    assert [s for s, _ in report.skipped if s == "P2/lps.nii"]
    assert len(report.exported) == len(SOURCES) - 1


def test_refusals(project: Project, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ExportError, match="images folder"):
        export_project(project, tmp_path / "images" / "out")
    with pytest.raises(ExportError, match="annotation store"):
        export_project(project, tmp_path / "annotations" / "x")
    with pytest.raises(ExportError, match="contains"):
        export_project(project, tmp_path)
    (tmp_path / "ro").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access",
                        lambda p, m, *a, **k: False if Path(p).name == "ro" else real(p, m))
    with pytest.raises(ExportError, match="no write permission"):
        check_output_dir(project, tmp_path / "ro" / "sub" / "out")
    assert not (tmp_path / "ro" / "sub").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory modes")
def test_unwritable_folder(project: Project, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="no write permission"):
            export_project(project, ro / "out")
    finally:
        ro.chmod(0o700)


def test_names_cannot_escape() -> None:
    assert sanitise_name("../../etc/passwd") == "etc_passwd"
    assert mask_folder_name("../../a.nii.gz") == "series/series/a"
    assert ".." not in mask_folder_name("a/../b.nii")


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_interrupted_export_leaves_complete_files(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def boom(done, total, sid):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_project(project, out, progress=boom)
    files = _all_files(out)
    assert files and not [p for p in files if p.name.startswith(".")]
    for p in files:
        assert np.asanyarray(nib.load(p).dataobj).shape == SHAPE or p.suffix != ".gz"
    assert not (out / "roi_statistics.csv").exists()
    assert len({p.parent for p in files}) == 2  # two series folders, complete


def test_interrupt_inside_a_write_cleans_temp(project, tmp_path, monkeypatch) -> None:
    calls = []
    real_save = nib.save

    def failing_save(img, path):
        calls.append(path)
        real_save(img, path)
        if len(calls) == 3:
            raise OSError("disk full")

    monkeypatch.setattr(nib, "save", failing_save)
    with pytest.raises(OSError):
        export_project(project, tmp_path / "out")
    assert not [p for p in _all_files(tmp_path / "out") if p.name.startswith(".")]
    assert len(_all_files(tmp_path / "out")) == 2


def test_cancel_and_rerun(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    seen = []
    report = export_project(project, out, progress=lambda d, t, s: seen.append(d),
                            cancel=lambda: len(seen) >= 2)
    assert report.cancelled and len(report.exported) == 2
    assert len(pd.read_csv(out / "roi_statistics.csv")) == 6
    # a rerun overwrites, and drops masks of ROIs erased meanwhile
    store = AnnotationStore(project.config.annotations)
    sid = "P1/ST1/las.nii.gz"
    s = store.series(sid, project.expected[sid].shape)
    st = s.refresh()
    after = st.bits & np.uint8(0b011)
    delta = types.SimpleNamespace(box=tuple((0, n) for n in after.shape), before=st.bits.copy(),
                                  after=after)
    s.commit(st.version, delta, {"user": "t", "op": "erase"})
    report = export_project(project, out)
    assert not report.cancelled and len(report.exported) == len(SOURCES)
    folder = out / "masks" / mask_folder_name(sid)
    assert sorted(p.name for p in folder.iterdir()) == ["Liver.nii.gz", "Tumour_core.nii.gz",
                                                       "combined.nii.gz"]
    assert len(pd.read_csv(out / "roi_statistics.csv")) == 3 * len(SOURCES) - 1 + 6  # 4D: 3 frames
    assert not [p for p in _all_files(out) if p.name.startswith(".")]


def test_text_annotations_table(tmp_path: Path) -> None:
    from ril_dash.project.project import init_project
    from ril_dash.project.text_values import set_text_values

    (tmp_path / "images").mkdir()
    data = np.zeros(SHAPE, np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "images" / "a.nii.gz")
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "images" / "b.nii.gz")
    init_project(tmp_path / "p", tmp_path / "images")
    (tmp_path / "p" / "project.yaml").write_text(
        f"name: texts\nimages: {tmp_path / 'images'}\nannotations: annotations\n"
        "text_fields:\n"
        "  - {name: Phase, type: choice, values: [arterial, venous]}\n"
        "  - {name: Findings, type: multi_choice, values: [cyst, stone]}\n"
        "  - {name: Contrast given, type: yes_no}\n")
    project = Project.open(tmp_path / "p")
    store = AnnotationStore(project.config.annotations)
    ann = store.series("a.nii.gz", SHAPE)
    set_text_values(project.config, ann, 0, {"Phase": "venous", "Findings": ["cyst", "stone"],
                                             "Contrast given": True}, "tester")
    report = export_project(project, tmp_path / "out")
    assert report.exported == ["a.nii.gz"]  # b has no annotations at all
    table = pd.read_csv(tmp_path / "out" / "text_annotations.csv", keep_default_na=False)
    assert table.to_dict("records") == [{"series": "a.nii.gz", "Phase": "venous",
                                         "Findings": "cyst; stone", "Contrast given": "yes"}]
    sheets = pd.read_excel(tmp_path / "out" / "ril_dash_export.xlsx", sheet_name=None,
                           keep_default_na=False)
    assert sheets["text_annotations"].to_dict("records") == table.to_dict("records")
