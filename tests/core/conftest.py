"""Builders of small synthetic NIfTI files for the core tests (all written under ``tmp_path``)."""

from __future__ import annotations

import math
import struct

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import axcodes2ornt, ornt_transform

SHAPE = (20, 24, 16)  # canonical RAS shape; all different so a wrong transpose shows
SPACING = (0.8, 0.9, 3.0)
RAS_VALUE = 1000  # block at patient right-anterior-superior
LPI_VALUE = 500  # block at patient left-posterior-inferior
RAS_BLOCK = (slice(15, 18), slice(19, 22), slice(12, 14))
LPI_BLOCK = (slice(2, 4), slice(3, 5), slice(2, 4))


def marker_array() -> np.ndarray:
    """Canonical RAS+ int16 array: +x = Right, +y = Anterior, +z = Superior."""
    a = np.zeros(SHAPE, np.int16)
    a[RAS_BLOCK] = RAS_VALUE
    a[LPI_BLOCK] = LPI_VALUE
    return a


def ras_affine() -> np.ndarray:
    aff = np.diag([*SPACING, 1.0])
    aff[:3, 3] = [-8.0, -10.0, -24.0]
    return aff


def rotation(deg: float) -> np.ndarray:
    """4x4 rotation about z, then about x, by ``deg`` degrees (oblique but close to RAS)."""
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    rz = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    rx = np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1.0]])
    return rx @ rz


def reoriented(axcodes: str, klass=nib.Nifti1Image, oblique_deg: float = 0.0):
    """The marker volume stored in ``axcodes`` order (same patient, different array layout)."""
    img = klass(marker_array(), ras_affine())
    img = img.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(tuple(axcodes))))
    if oblique_deg:
        img = klass(np.asanyarray(img.dataobj), rotation(oblique_deg) @ img.affine)
    return img


@pytest.fixture
def marker_files(tmp_path):
    """name → path of the same marker patient stored as RAS, LAS, LPS, PIR, oblique (10°)."""
    files = {}
    for name, codes, deg in [("RAS", "RAS", 0), ("LAS", "LAS", 0), ("LPS", "LPS", 0),
                             ("PIR", "PIR", 0), ("oblique", "RAS", 10), ("oblique_LPS", "LPS", 10)]:
        path = tmp_path / f"{name}.nii.gz"
        nib.save(reoriented(codes, oblique_deg=deg), path)
        files[name] = path
    return files


@pytest.fixture
def save(tmp_path):
    """save(array, name, affine=None, klass=Nifti1Image) → path of a new NIfTI file."""

    def _save(array, name="img.nii.gz", affine=None, klass=nib.Nifti1Image, **kw):
        path = tmp_path / name
        img = klass(array, np.eye(4) if affine is None else affine, **kw)
        nib.save(img, path)
        return path

    return _save


def hand_header(path, dims, *, nifti2=True, dtype=np.int16, payload=b"\0" * 64):
    """Write a header claiming ``dims`` (bypassing nibabel's checks) followed by ``payload``."""
    hdr = nib.Nifti2Header() if nifti2 else nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape((2,) * len(dims))
    hdr["dim"][0] = len(dims)
    hdr["dim"][1:1 + len(dims)] = dims
    hdr["vox_offset"] = hdr.single_vox_offset
    block = bytearray(hdr.binaryblock)
    path.write_bytes(bytes(block) + b"\0" * 4 + payload)
    return path


def patch_pixdim(path, values):
    """Overwrite pixdim[1:4] of an uncompressed NIfTI-1 file in place (offset 80)."""
    raw = bytearray(path.read_bytes())
    raw[80:92] = struct.pack("<3f", *values)
    path.write_bytes(bytes(raw))
    return path


@pytest.fixture
def nx():
    """The builders and constants above, for test modules (conftest cannot be imported)."""
    import types

    return types.SimpleNamespace(
        SHAPE=SHAPE, SPACING=SPACING, RAS_VALUE=RAS_VALUE, LPI_VALUE=LPI_VALUE,
        marker_array=marker_array, ras_affine=ras_affine, rotation=rotation,
        reoriented=reoriented, hand_header=hand_header, patch_pixdim=patch_pixdim)
