"""Tests of the synthetic abdominal CT phantom: determinism, anatomy, orientation and HU per phase."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from ril_dash.demo import anatomy as A
from ril_dash.demo.phantom import (
    KIDNEY_LABELS,
    LABELS,
    PHASES,
    PROJECT_ROI_LABELS,
    ct_affine,
    kidney_side,
    make_phantom,
    phase_hu,
)

SMALL = dict(shape=(64, 64, 10), spacing=(5.6, 5.6, 16.0))


@pytest.fixture(scope="module")
def phases():
    """The four phases of one patient at the default (full) resolution."""
    return {phase: make_phantom(11, phase) for phase in PHASES}


def _mean(p, *values, erode=False):
    mask = np.isin(p.labels, values)
    if erode:
        mask = ndimage.binary_erosion(mask, np.ones((3, 3, 1), bool))
    assert mask.sum() > 20, f"too few voxels for labels {values}"
    return float(p.hu[mask].mean())


def _centroid_world(p, *values):
    ijk = np.argwhere(np.isin(p.labels, values)).mean(axis=0)
    return nib.affines.apply_affine(p.affine, ijk)


def test_shapes_dtypes_and_affine(phases):
    p = phases["arterial"]
    assert p.hu.shape == p.labels.shape == (256, 256, 40)
    assert p.hu.dtype == np.int16 and p.labels.dtype == np.uint8
    assert p.phase == "arterial" and p.seed == 11
    assert p.spacing == pytest.approx((1.4, 1.4, 4.0))
    assert nib.aff2axcodes(p.affine) == ("L", "A", "S")
    centre = nib.affines.apply_affine(p.affine, (np.array(p.hu.shape) - 1) / 2)
    assert np.allclose(centre, 0)
    assert set(np.unique(p.labels)) == {0, *LABELS}  # every structure is present
    assert -1024 <= p.hu.min() and p.hu.max() <= 3071


def test_custom_shape_and_spacing():
    p = make_phantom(3, "delayed", **SMALL)
    assert p.hu.shape == (64, 64, 10)
    assert p.spacing == pytest.approx((5.6, 5.6, 16.0))
    assert np.array_equal(p.affine, ct_affine((64, 64, 10), (5.6, 5.6, 16.0)))
    for v in (A.LIVER, A.SPLEEN, A.AORTA, A.R_CORTEX, A.L_CORTEX, A.SPINE):
        assert (p.labels == v).any()


def test_determinism():
    a, b = make_phantom(5, "portal-venous", **SMALL), make_phantom(5, "portal-venous", **SMALL)
    assert np.array_equal(a.hu, b.hu) and np.array_equal(a.labels, b.labels)
    assert a.lesion_center == b.lesion_center
    other = make_phantom(6, "portal-venous", **SMALL)
    assert not np.array_equal(a.labels, other.labels)
    assert not np.array_equal(a.hu, other.hu)


def test_phases_share_anatomy_but_not_noise(phases):
    ref = phases["non-contrast"]
    for p in phases.values():
        assert np.array_equal(p.labels, ref.labels)
        assert np.array_equal(p.affine, ref.affine)
    fat = ref.labels == A.FAT  # same mean HU in every phase, independent noise
    diff = phases["delayed"].hu[fat].astype(float) - ref.hu[fat]
    assert abs(diff.mean()) < 5 and diff.std() > 10


def test_seed_jitters_geometry_moderately():
    volumes = [np.count_nonzero(make_phantom(s, "arterial", **SMALL).labels == A.LIVER)
               for s in (1, 2, 3, 4)]
    assert len(set(volumes)) == 4
    assert max(volumes) / min(volumes) < 1.8


def test_liver_on_patients_right(phases):
    # RAS+ world: +x points to the patient's Right, so right-sided organs have x > 0.
    p = phases["portal-venous"]
    assert _centroid_world(p, A.LIVER)[0] > 20
    assert _centroid_world(p, A.SPLEEN)[0] < -20
    assert _centroid_world(p, *KIDNEY_LABELS["right"].values())[0] > 20
    assert _centroid_world(p, *KIDNEY_LABELS["left"].values())[0] < -20
    # LAS voxel axes: small i is the patient's right, shown on the screen's left.
    assert np.argwhere(p.labels == A.LIVER)[:, 0].mean() < p.hu.shape[0] / 2
    # the spine is posterior (y < 0), the aorta anterior-left of it
    spine, aorta = _centroid_world(p, A.SPINE), _centroid_world(p, A.AORTA)
    assert spine[1] < _centroid_world(p, A.BODY, A.FAT, A.MUSCLE)[1]
    assert aorta[1] > spine[1] and aorta[0] < spine[0]


def test_kidney_side_and_tables():
    assert kidney_side(A.R_MEDULLA) == "right" and kidney_side(A.L_PELVIS) == "left"
    assert kidney_side(A.LIVER) is None
    assert phase_hu("non-contrast")[A.FAT] == -100
    with pytest.raises(ValueError, match="unknown contrast phase"):
        make_phantom(1, "venous", **SMALL)
    used = [v for values in PROJECT_ROI_LABELS.values() for v in values]
    assert len(used) == len(set(used)) and set(used) <= set(LABELS)


def test_hu_per_tissue_per_phase(phases):
    nc, art, pv, dl = (phases[p] for p in PHASES)
    # air outside the body, fat, muscle
    assert _mean(nc, 0, erode=True) == pytest.approx(-1000, abs=10)
    for p in phases.values():
        assert _mean(p, A.FAT, erode=True) == pytest.approx(-100, abs=12)
        assert _mean(p, A.MUSCLE, erode=True) == pytest.approx(55, abs=15)
        assert 400 < _mean(p, A.SPINE) < 1000
    # non-contrast
    assert _mean(nc, A.LIVER, erode=True) == pytest.approx(60, abs=10)
    assert _mean(nc, A.SPLEEN, erode=True) == pytest.approx(45, abs=10)
    assert _mean(nc, A.AORTA) < 70
    assert _mean(nc, A.R_CORTEX, A.L_CORTEX) == pytest.approx(30, abs=15)
    # arterial: bright aorta, corticomedullary differentiation
    assert _mean(art, A.AORTA, erode=True) > 280
    cortex, medulla = _mean(art, A.R_CORTEX, A.L_CORTEX), _mean(art, A.R_MEDULLA, A.L_MEDULLA)
    assert cortex - medulla > 60
    assert _mean(art, A.SPLEEN, erode=True) == pytest.approx(110, abs=20)
    spleen = ndimage.binary_erosion(art.labels == A.SPLEEN, np.ones((3, 3, 1), bool))
    assert art.hu[spleen].std() > nc.hu[spleen].std() + 8  # mottled
    assert _mean(art, A.LESION) > _mean(art, A.LIVER) + 50  # hypervascular lesion
    # portal-venous: liver enhanced, nephrographic kidneys, lesion washes out
    assert _mean(pv, A.LIVER, erode=True) == pytest.approx(110, abs=12)
    assert _mean(pv, A.AORTA, erode=True) == pytest.approx(160, abs=25)
    assert abs(_mean(pv, A.R_CORTEX, A.L_CORTEX) - _mean(pv, A.R_MEDULLA, A.L_MEDULLA)) < 25
    assert _mean(pv, A.LESION) < _mean(pv, A.LIVER)
    # delayed: excreted contrast in the collecting systems
    assert _mean(dl, A.R_PELVIS) > 300 and _mean(dl, A.L_PELVIS) > 300
    assert _mean(dl, A.AORTA, erode=True) == pytest.approx(90, abs=20)
    assert _mean(dl, A.LIVER, erode=True) == pytest.approx(80, abs=12)


def test_noise_and_soft_edges(phases):
    p = phases["non-contrast"]
    liver = ndimage.binary_erosion(p.labels == A.LIVER, np.ones((5, 5, 3), bool))
    assert p.hu[liver].std() == pytest.approx(12, abs=3)
    # partial volume at the skin: voxels just inside the body are between air and fat
    edge = (p.labels > 0) & ~ndimage.binary_erosion(p.labels > 0, np.ones((3, 3, 1), bool))
    assert -900 < p.hu[edge].mean() < -60
    assert np.mean((p.hu[edge] > -850) & (p.hu[edge] < -150)) > 0.3
    # smooth shapes: the liver's cross-section changes gradually from slice to slice
    area = (p.labels == A.LIVER).sum(axis=(0, 1)).astype(float)
    assert np.abs(np.diff(area)).max() < 0.25 * area.max()


def test_lesion_centre_lies_in_the_lesion(phases):
    p = phases["arterial"]
    ijk = tuple(int(round(c)) for c in p.lesion_center)
    assert p.labels[ijk] == A.LESION
    assert np.allclose(np.argwhere(p.labels == A.LESION).mean(axis=0), p.lesion_center, atol=1.5)


@pytest.mark.parametrize("shape", [(1, 1, 1), (8, 8, 2), (32, 32, 4)])
def test_coarse_grids_do_not_break(shape):
    fov = (256 * 1.4, 256 * 1.4, 40 * 4.0)
    p = make_phantom(2, "arterial", shape=shape, spacing=[f / n for f, n in zip(fov, shape)])
    assert p.hu.shape == p.labels.shape == shape
