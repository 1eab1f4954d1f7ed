"""``ril-dash import-masks`` end to end, as a real ``python -m ril_dash`` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ril_dash.core.volume import load_volume
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.project import Project, init_project

pytestmark = pytest.mark.slow  # every test runs `python -m ril_dash` as a process

AFFINE = np.diag([-1.0, 1.0, 2.0, 1.0])
SHAPE = (6, 5, 4)


def run_cli(*args) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "ril_dash", *map(str, args)],
                            capture_output=True, text=True, env=dict(os.environ), timeout=60,
                            check=False)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def make_project(tmp_path: Path) -> Project:
    images = tmp_path / "images"
    for rel in ("P1/a.nii.gz", "P1/b.nii.gz"):
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.int16), AFFINE), images / rel)
    project = init_project(tmp_path / "proj", images)
    (project.dir / "project.yaml").write_text(
        f"name: cli\nimages: {images}\nrois:\n"
        "  - {name: Liver, color: \"#ff0000\", value: 1}\n"
        "  - {name: Spleen, color: \"#00ff00\", value: 2, locked: true}\n")
    return Project.open(project.dir)


def save(path: Path, data, affine=AFFINE):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data, np.uint8), affine), path)


def test_import_masks_cli(tmp_path):
    project = make_project(tmp_path)
    masks = tmp_path / "masks"
    labels = np.zeros(SHAPE, np.uint8)
    labels[1:3, 1:4, 2] = 7
    save(masks / "P1/a.nii.gz", labels)
    save(masks / "P1/b.nii.gz", np.ones((6, 5, 3)))  # wrong shape: refused, others go on
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"rois": [{"value": 7, "name": "Liver"}]}))
    result = run_cli("import-masks", project.dir, "--masks", masks, "--mapping", mapping)
    assert result.returncode == 0, result.stderr
    assert "P1/a.nii.gz: imported Liver" in result.stdout and "version 1" in result.stdout
    assert "P1/b.nii.gz: REFUSED" in result.stderr and "shape" in result.stderr
    vol = load_volume(project.series_path("P1/a.nii.gz"))
    state = AnnotationStore(project.config.annotations).series("P1/a.nii.gz", SHAPE).refresh()
    np.testing.assert_array_equal(state.bits != 0, vol.to_canonical(labels == 7))
    assert not AnnotationStore(project.config.annotations).series(
        "P1/b.nii.gz", SHAPE).has_annotations
    # audited, and the versions carry the same author: the OS user without --user
    import getpass

    from ril_dash.project.audit import AuditLog

    (entry,) = AuditLog.for_project(project.dir).read(action="import")
    assert entry["user"] == getpass.getuser()
    assert entry["detail"] == {"folder": str(masks), "series": 1, "cancelled": False}
    (version,) = AnnotationStore(project.config.annotations).series(
        "P1/a.nii.gz", SHAPE).versions()
    assert version.user == getpass.getuser()


def test_import_masks_cli_exit_2(tmp_path):
    project = make_project(tmp_path)
    masks = tmp_path / "masks"
    masks.mkdir()
    # nothing matches
    result = run_cli("import-masks", project.dir, "--masks", masks)
    assert result.returncode == 2 and "nothing was imported" in result.stderr
    # everything refused (unknown values)
    labels = np.zeros(SHAPE, np.uint8)
    labels[0, 0, 0] = 5
    save(masks / "P1/a.nii.gz", labels)
    result = run_cli("import-masks", project.dir, "--masks", masks)
    assert result.returncode == 2 and "5" in result.stderr and "a.nii.gz" in result.stderr
    # bad arguments
    result = run_cli("import-masks", project.dir, "--masks", tmp_path / "missing")
    assert result.returncode == 2 and "does not exist" in result.stderr
    bad_map = tmp_path / "m.csv"
    bad_map.write_text("value,name\n5,Pancreas\n")
    result = run_cli("import-masks", project.dir, "--masks", masks, "--mapping", bad_map)
    assert result.returncode == 2 and "Pancreas" in result.stderr
    result = run_cli("import-masks", project.dir)
    assert result.returncode == 2 and "--masks" in result.stderr
    result = run_cli("import-masks", tmp_path / "noproject", "--masks", masks)
    assert result.returncode == 2 and "ril-dash: error:" in result.stderr
