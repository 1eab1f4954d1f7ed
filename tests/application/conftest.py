"""A small project with a workflow for the application-layer tests: two 8 × 8 × 4 series, two
ROIs, one text field, the example workflow of the design (analysts → reviewers → scientists,
admin root)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.project.project import Project
from tests.workflow.example import EXAMPLE

SHAPE = (8, 8, 4)
SERIES = ("P1/ct.nii.gz", "P2/ct.nii.gz")
YAML = """\
name: Commands
images: images
rois:
  - {name: Liver, color: "#c8763c", value: 1}
  - {name: Spleen, color: "#00ff00", value: 2, locked: true}
text_fields:
  - {name: Phase, type: choice, values: [arterial, venous]}
""" + EXAMPLE


@pytest.fixture
def services(tmp_path):
    root = tmp_path / "proj"
    for sid in SERIES:
        path = root / "images" / sid
        path.parent.mkdir(parents=True)
        data = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)
        nib.save(nib.Nifti1Image(data, np.diag([1.0, 1, 2, 1])), path)
    (root / "project.yaml").write_text(YAML)
    return Services(Project.open(root), background_checkpoints=False)


def actor(user: str, admin: bool = False) -> Actor:
    return Actor(user, admin, host="test")
