"""``ril-dash repair``: list the series with a damaged annotation file, then repair them, as a
real ``python -m ril_dash`` subprocess."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.audit import AuditLog
from ril_dash.project.project import init_project
from tests.test_cli import run_cli

pytestmark = pytest.mark.slow  # runs `python -m ril_dash` as a process

SHAPE = (6, 5, 4)


@dataclass
class Delta:
    box: tuple
    before: np.ndarray
    after: np.ndarray


def test_repair_lists_then_rolls_forward(tmp_path: Path):
    images = tmp_path / "images"
    for rel in ("P1/a.nii.gz", "P1/b.nii.gz"):
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.int16), np.eye(4)), images / rel)
    project = init_project(tmp_path / "proj", images)
    store = AnnotationStore(project.config.annotations)
    for rel in ("P1/a.nii.gz", "P1/b.nii.gz"):
        series = store.series(rel, SHAPE)
        for version, value in ((0, 1), (1, 3)):
            box = ((0, 2), (0, 2), (version, version + 1))
            series.commit(version, Delta(box, np.zeros((2, 2, 1), np.uint8),
                                         np.full((2, 2, 1), value, np.uint8)),
                          {"user": "ann", "op": "paint", "roi": 1}, slots={1: 0, 2: 1})
    assert "nothing to repair" in run_cli("repair", project.dir).stdout

    (store.series("P1/b.nii.gz", SHAPE).folder / "v" / "00000002.npz").write_bytes(b"PK\x03")
    listed = run_cli("repair", project.dir)
    assert listed.returncode == 2
    assert listed.stdout.splitlines() == [
        "P1/b.nii.gz: P1/b.nii.gz.ril/v/00000002.npz cannot be read (not an .npz archive: "
        "empty, cut short at its start or overwritten); last readable version 1"]
    assert f"Repair them with: ril-dash repair {project.dir} P1/b.nii.gz" in listed.stderr

    done = run_cli("repair", project.dir, "P1/b.nii.gz", "P1/a.nii.gz", "--user", "root")
    assert done.returncode == 2 and "1 of 2 series were not repaired" in done.stderr
    assert done.stdout.splitlines() == [
        "P1/b.nii.gz: repaired as version 2, equal to version 1; kept aside: "
        "00000002.npz.damaged",
        "P1/a.nii.gz: not repaired: Nothing to repair: every annotation file of P1/a.nii.gz "
        "can be read."]
    repaired = AnnotationStore(project.config.annotations).series("P1/b.nii.gz", SHAPE)
    assert repaired.damage is None and repaired.load().version == 2
    assert [v.op for v in repaired.versions()] == ["repair", "paint"]
    assert [(e["user"], e["action"], e["series"]) for e in AuditLog.for_project(project.dir)
            .read()] == [("root", "repair", "P1/b.nii.gz")]
    assert run_cli("repair", project.dir).returncode == 0
