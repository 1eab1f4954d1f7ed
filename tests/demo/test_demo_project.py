"""Tests of the demo project builder: layout, files, project.yaml, stamp and atomic creation."""

from __future__ import annotations

import gzip
import json
import re
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from ril_dash.demo import demo_project as dp
from ril_dash.demo.demo_project import (
    MNI_SERIES,
    STAMP_NAME,
    demo_home_hint,
    ensure_demo_project,
    phantom_series,
)
from ril_dash.demo.phantom import LABELS, PHASES

SHAPE = (48, 48, 8)


def _make(root: Path, **kw) -> Path:
    return ensure_demo_project(root, progress=None, shape=SHAPE, **kw)


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def _raw_header(path: Path) -> nib.Nifti1Header:
    with gzip.open(path, "rb") as fh:
        return nib.Nifti1Header.from_fileobj(fh)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return _make(tmp_path_factory.mktemp("home") / "demo-project")


def test_layout(demo):
    assert demo.name == "demo-project" and (demo / STAMP_NAME).is_file()
    for rel in phantom_series():
        assert (demo / "images" / rel).is_file()
        assert (demo / "ground_truth" / rel).is_file()
    assert len(phantom_series()) == 3 * 4
    assert (demo / "images" / MNI_SERIES).is_file()
    for name in ("gm", "wm"):
        assert (demo / "ground_truth/MNI152/T1-2009a" / f"{name}.nii.gz").is_file()
    notice = (demo / "NOTICE-MNI152.md").read_text()
    assert "Louis Collins" in notice
    assert (demo / "annotations").is_dir() and not any((demo / "annotations").iterdir())
    labels = json.loads((demo / "ground_truth/labels.json").read_text())
    assert {int(k): v for k, v in labels.items() if k != "0"} == LABELS
    assert not list(demo.parent.glob(".demo-project.tmp-*"))


def test_project_yaml(demo):
    doc = yaml.safe_load((demo / "project.yaml").read_text())
    assert list(doc) == ["name", "images", "annotations", "hierarchy", "metadata", "settings",
                         "rois", "text_fields"]
    assert doc["images"] == "images" and doc["annotations"] == "annotations"
    assert doc["hierarchy"] == ["Patient", "Study", "Series"]
    assert doc["metadata"] == {"file": "metadata.csv", "path_column": "series"}
    assert doc["settings"] == {"overlap": "one_roi_per_voxel"}
    assert [r["value"] for r in doc["rois"]] == [1, 2, 3, 4, 5, 6]
    assert [r["name"] for r in doc["rois"]][:5] == ["Liver", "Spleen", "Right kidney",
                                                    "Left kidney", "Aorta"]
    for roi in doc["rois"]:
        assert set(roi) <= {"name", "radlex", "color", "value", "type", "locked"}
        assert re.fullmatch(r"RID\d+", roi["radlex"])
        assert re.fullmatch(r"#[0-9a-f]{6}", roi["color"])
    assert doc["rois"][-1]["type"] == "point"
    assert doc["text_fields"][0] == {"name": "Contrast phase", "type": "choice",
                                     "values": list(PHASES), "required": True}


def test_metadata_csv(demo):
    df = pd.read_csv(demo / "metadata.csv", dtype=str, keep_default_na=False)
    assert list(df.columns) == ["series", "patient", "study_date", "modality", "phase",
                                "description"]
    assert list(df["series"]) == phantom_series() + [MNI_SERIES]
    on_disk = sorted(p.relative_to(demo / "images").as_posix()
                     for p in (demo / "images").rglob("*.nii.gz"))
    assert sorted(df["series"]) == on_disk
    ct = df[df.modality == "CT"]
    assert list(ct["phase"]) == list(PHASES) * 3
    assert all(s.startswith(p + "/") for s, p in zip(df["series"], df["patient"]))
    assert df.set_index("series").loc[MNI_SERIES, "modality"] == "MR"


def test_nifti_files(demo):
    rel = phantom_series()[1]
    img = nib.load(demo / "images" / rel)
    assert img.shape == SHAPE and img.get_data_dtype() == np.int16
    header = _raw_header(demo / "images" / rel)
    assert (float(header["scl_slope"]), float(header["scl_inter"])) == (1.0, 0.0)
    assert header["qform_code"] > 0 and header["sform_code"] > 0
    assert header.get_xyzt_units()[0] == "mm"
    assert b"phantom" in header["descrip"].item()
    assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
    assert np.allclose(img.header.get_zooms(), (256 * 1.4 / 48, 256 * 1.4 / 48, 160 / 8))
    truth = nib.load(demo / "ground_truth" / rel)
    assert truth.get_data_dtype() == np.uint8
    assert np.allclose(truth.affine, img.affine) and truth.shape == img.shape
    assert _raw_header(demo / "ground_truth" / rel).get_intent()[0] == "label"
    # every phase of a patient shares the label map; patients differ
    maps = [np.asarray(nib.load(demo / "ground_truth" / r).dataobj) for r in phantom_series()]
    assert all(np.array_equal(maps[0], m) for m in maps[1:4])
    assert not np.array_equal(maps[0], maps[4]) and not np.array_equal(maps[4], maps[8])
    # different seeds per patient, so images differ too
    hu = np.asarray(img.dataobj)
    assert hu.min() >= -1024 and (maps[1] > 0).any() and hu[maps[1] == 0].mean() < -900


def test_idempotent(demo):
    before = _snapshot(demo.parent)
    assert _make(demo) == demo
    assert _snapshot(demo.parent) == before


def test_default_root_and_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("RIL_DASH_HOME", str(tmp_path / "home"))
    assert str(tmp_path / "home" / "demo-project") in demo_home_hint()
    root = ensure_demo_project(progress=None, shape=SHAPE)
    assert root == tmp_path / "home" / "demo-project" and (root / "project.yaml").is_file()


def test_progress_messages(tmp_path):
    lines = []
    ensure_demo_project(tmp_path / "demo", progress=lines.append, shape=SHAPE)
    assert lines[0].startswith("Creating the demo project") and "ready" in lines[-1]
    assert len(lines) == 2 + 13


def test_stale_temp_folder_is_cleaned(tmp_path):
    stale = tmp_path / ".demo-project.tmp-999999999-abc"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "half.nii.gz").write_bytes(b"\x1f\x8b")
    root = _make(tmp_path / "demo-project")
    assert not stale.exists()
    assert (root / STAMP_NAME).is_file() and (root / "images" / phantom_series()[-1]).is_file()


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    def broken(folder, shape, progress):
        (folder / "images").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(dp, "_build", broken)
    with pytest.raises(KeyboardInterrupt):
        _make(tmp_path / "demo-project")
    assert [p.name for p in tmp_path.iterdir()] == [".demo-project.lock"]


def test_outdated_stamp_rebuilds_and_keeps_annotations(tmp_path):
    root = _make(tmp_path / "demo-project")
    (root / STAMP_NAME).write_text("ril_dash demo project v0\n")
    (root / "images" / "junk.txt").write_text("from the old version")
    (root / "annotations" / "PHANTOM-001").mkdir()
    (root / "annotations" / "PHANTOM-001" / "mask.npz").write_bytes(b"work")
    assert _make(root) == root
    assert (root / STAMP_NAME).read_text().startswith(dp.DEMO_VERSION)
    assert not (root / "images" / "junk.txt").exists()
    assert (root / "annotations" / "PHANTOM-001" / "mask.npz").read_bytes() == b"work"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".demo-project.lock", "demo-project"]


def test_rebuild_keeps_users_sessions_and_audit_log(tmp_path):
    root = _make(tmp_path / "demo-project")
    (root / STAMP_NAME).write_text("ril_dash demo project v0\n")
    (root / "users.yaml").write_text("users: {}\n")
    (root / ".sessions").mkdir()
    (root / ".sessions" / "a.json").write_text("{}")
    (root / "audit.log.jsonl").write_text('{"action": "login"}\n')
    assert _make(root) == root
    assert (root / "users.yaml").read_text() == "users: {}\n"
    assert (root / ".sessions" / "a.json").read_text() == "{}"
    assert (root / "audit.log.jsonl").read_text() == '{"action": "login"}\n'
    assert (root / "workflow.yaml").is_file()


def test_other_shape_rebuilds(tmp_path):
    root = _make(tmp_path / "demo-project")
    ensure_demo_project(root, progress=None, shape=(32, 32, 4))
    assert nib.load(root / "images" / phantom_series()[0]).shape == (32, 32, 4)


def test_foreign_folder_is_moved_aside_not_deleted(tmp_path):
    foreign = tmp_path / "demo-project"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    root = _make(foreign)
    assert (root / STAMP_NAME).is_file()
    backups = list(tmp_path.glob("demo-project.backup-*"))
    assert len(backups) == 1 and (backups[0] / "mine.txt").read_text() == "keep me"


def test_concurrent_callers_build_once(tmp_path):
    root, results, errors = tmp_path / "demo-project", [], []

    def call():
        try:
            results.append(_make(root))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and results == [root] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".demo-project.lock", "demo-project"]
    assert (root / STAMP_NAME).is_file()
