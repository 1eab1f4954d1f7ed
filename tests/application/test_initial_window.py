"""The window a series opens with: CT only when the values look like Hounsfield units (or the
metadata's ``Modality`` column says CT); any other image, such as an MR with a few negative
values, opens with the automatic percentile window instead of a white CT window."""

from __future__ import annotations

import os
import shutil

import nibabel as nib
import numpy as np
import pytest

from ril_dash.application.services import Services
from ril_dash.core.window import CT_PRESETS
from ril_dash.project.project import Project

ANATOMICAL = os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")


def ct_volume() -> np.ndarray:
    data = np.full((24, 24, 6), -1024, np.int16)
    data[4:20, 4:20] = 40 + np.random.default_rng(1).integers(-20, 20, (16, 16, 6))
    return data


@pytest.fixture
def project(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(ANATOMICAL, images / "mr.nii")
    shutil.copy(ANATOMICAL, images / "declared_ct.nii")
    nib.save(nib.Nifti1Image(ct_volume(), np.eye(4)), images / "ct.nii.gz")
    nib.save(nib.Nifti1Image(ct_volume(), np.eye(4)), images / "declared_mr.nii.gz")
    (tmp_path / "meta.csv").write_text(
        "series,MODALITY\ndeclared_ct.nii,CT\ndeclared_mr.nii.gz,mr\nmr.nii,\n")
    (tmp_path / "project.yaml").write_text(
        "name: Windows\nimages: images\nmetadata: {file: meta.csv}\n")
    return Services(Project.open(tmp_path), background_checkpoints=False)


def test_mr_with_negative_values_opens_with_the_auto_window(project):
    geometry = project.geometry_of("mr.nii")
    assert geometry["is_ct"] is False
    assert geometry["window"] == geometry["auto_window"]
    centre, width = geometry["window"]
    assert 4000 < centre < 12000 and width > 5000  # not 40/400: the brain is not white


def test_ct_values_open_with_the_soft_tissue_window(project):
    geometry = project.geometry_of("ct.nii.gz")
    assert geometry["is_ct"] is True
    assert geometry["window"] == list(CT_PRESETS["soft tissue"])


def test_a_modality_column_overrides_the_guess(project):
    assert project.declared_modality("declared_ct.nii") == "CT"
    assert project.geometry_of("declared_ct.nii")["window"] == list(CT_PRESETS["soft tissue"])
    mr = project.geometry_of("declared_mr.nii.gz")
    assert mr["is_ct"] is False and mr["window"] == mr["auto_window"]
    assert project.declared_modality("mr.nii") is None  # an empty cell guesses
