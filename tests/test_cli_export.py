"""End-to-end test of ``python -m ril_dash export``."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from ril_dash.project.annotation_store import AnnotationStore

pytestmark = pytest.mark.slow  # every test runs `python -m ril_dash` as a process

ROOT = Path(__file__).resolve().parents[1]
YAML = """\
name: CLI export
images: images
rois:
  - name: Liver
    color: "#a0522d"
    value: 1
  - name: Spleen
    color: "#00ff00"
    value: 2
"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ril_dash", "export", *args], cwd=ROOT,
                          check=False,
                          capture_output=True, text=True, timeout=60)


def _project(tmp_path: Path) -> Path:
    shape = (6, 5, 4)
    for sid in ("P1/a.nii.gz", "P2/b.nii.gz"):
        path = tmp_path / "images" / sid
        path.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.ones(shape, np.int16), np.diag([-1.0, 1, 2, 1])), path)
        after = np.zeros(shape, np.uint8)
        after[1:3, 1:3, 1:3] = 1
        after[2:4, 2:4, 2:4] |= 2
        delta = types.SimpleNamespace(box=tuple((0, n) for n in shape),
                                      before=np.zeros(shape, np.uint8), after=after)
        AnnotationStore(tmp_path / "annotations").series(sid, shape).commit(
            0, delta, {"user": "t", "op": "paint"}, slots={1: 0, 2: 1})
    (tmp_path / "project.yaml").write_text(YAML)
    return tmp_path


def test_cli_export_end_to_end(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    out = tmp_path / "out"
    res = _cli(str(project), "--out", str(out), "--series", "P1/*", "--no-excel",
               "--copy-images")
    assert res.returncode == 0, res.stderr
    assert "[1/1] P1/a.nii.gz" in res.stdout and "exported 1 series" in res.stdout
    assert sorted(p.name for p in (out / "masks/P1/a").iterdir()) == [
        "Liver.nii.gz", "Spleen.nii.gz", "combined.nii.gz"]
    combined = np.asanyarray(nib.load(out / "masks/P1/a/combined.nii.gz").dataobj)
    assert combined.max() == 3 and set(np.unique(combined)) == {0, 1, 2, 3}
    assert len(pd.read_csv(out / "roi_statistics.csv")) == 2
    assert not (out / "ril_dash_export.xlsx").exists() and (out / "images/P1/a.nii.gz").exists()

    res = _cli(str(project), "--out", str(out), "--no-per-roi")
    assert res.returncode == 0, res.stderr
    assert (out / "ril_dash_export.xlsx").exists()
    assert sorted(p.name for p in (out / "masks/P2/b").iterdir()) == ["combined.nii.gz"]


def test_cli_export_refuses_with_status_2(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    res = _cli(str(project), "--out", str(project / "images" / "out"))
    assert res.returncode == 2
    assert "ril-dash: error: refusing to export" in res.stderr
    assert not (project / "images" / "out").exists()
    res = _cli(str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_cli_export_is_audited_under_the_given_or_the_os_user(tmp_path: Path) -> None:
    import getpass

    from ril_dash.project.audit import AuditLog

    project = _project(tmp_path / "proj")
    res = _cli(str(project), "--out", str(tmp_path / "out1"), "--user", "dana")
    assert res.returncode == 0, res.stderr
    res = _cli(str(project), "--out", str(tmp_path / "out2"), "--series", "P2/*")
    assert res.returncode == 0, res.stderr
    second, first = AuditLog.for_project(project).read(action="export")
    assert first["user"] == "dana"
    assert first["detail"] == {"folder": str(tmp_path / "out1"), "series": 2, "masks": 6,
                               "cancelled": False}
    assert second["user"] == getpass.getuser()
    assert second["detail"]["series"] == 1 and second["detail"]["folder"] == str(tmp_path / "out2")
